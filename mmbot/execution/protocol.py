"""The Executor protocol: what the engine's commands go through.

Executors only execute: the engine's OrderManager decides what to place and
cancel. Reports (acks, rejects, cancels, fills) come back through ``reports()``
and are never dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from mmbot.domain.orders import Command, ExecReport


class Executor(Protocol):
    async def submit(self, commands: Sequence[Command], now_ns: int) -> None: ...

    def reports(self) -> AsyncIterator[ExecReport]: ...

    async def open_order_ids(self) -> list[str]: ...

    async def cancel_all(self, symbol: str, now_ns: int) -> None: ...

    async def close(self) -> None: ...
