"""The Executor protocol: what the engine's commands go through.

Executors only execute: the engine's OrderManager decides what to place and
cancel. Reports (acks, rejects, cancels, fills) come back through ``reports()``
and are never dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from mmbot.domain.orders import Command, ExecReport


class Executor(Protocol):
    async def submit(self, commands: Sequence[Command], now_ns: int) -> None: ...

    def reports(self) -> AsyncIterator[ExecReport]: ...

    async def open_order_ids(self) -> list[str]: ...

    async def cancel_all(self, symbol: str, now_ns: int) -> None: ...

    async def close(self) -> None: ...


class ReportQueue:
    """The executors' report queue: unbounded, because reports are never dropped."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[ExecReport] = asyncio.Queue()

    def _push(self, report: ExecReport) -> None:
        self._queue.put_nowait(report)

    def _push_all(self, reports: list[ExecReport]) -> None:
        for report in reports:
            self._queue.put_nowait(report)

    async def reports(self) -> AsyncIterator[ExecReport]:
        while True:
            yield await self._queue.get()

    def pending_reports(self) -> list[ExecReport]:
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out
