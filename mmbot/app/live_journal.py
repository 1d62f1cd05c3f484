"""The journal of runs on live market data (paper on a live feed, sandbox, live).

Fresh per run: for these runs the venue (or the live feed), not the journal, is the
state to recover, so a restart opens a new journal instead of resuming one. The
record format, hash chain, rotation and ``mmbot audit`` tooling are those of
:mod:`mmbot.audit`; the account names keep these journals apart from the replay's
(``<audit.account>-livefeed`` for paper on a live feed, ``<audit.account>-<mode>`` for
sandbox and live).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog

from mmbot.app.hooks_audit import run_start_payload
from mmbot.app.settings import Settings
from mmbot.audit.recorder import Recorder
from mmbot.audit.recovery import journal_root
from mmbot.audit.writer import JournalWriter
from mmbot.domain.instrument import Instrument
from mmbot.engine.engine import Engine
from mmbot.errors import JournalError

log = structlog.get_logger("mmbot.audit")


class Slot(Protocol):
    """What the journal reads of a symbol's slot (mmbot.app.live.Slot satisfies it structurally)."""

    instrument: Instrument
    engine: Engine


class LiveJournal:
    """The journal of a run on live market data (paper, sandbox or live execution).

    Records are buffered by the observers and written by :meth:`run` every
    ``audit.flush_interval_ms`` (fsync + manifest checkpoint every second). When the
    engines journal a fill, a risk change or a signal, the runner awaits
    :meth:`durable` (write + fsync in a worker thread) before it sends the follow-up
    orders. A write failure calls ``on_failure`` once (the runner halts with
    JOURNAL_FAILURE, cancels at the venue and exits 3); nothing already written is lost.
    """

    def __init__(
        self, settings: Settings, run_id: str, slots: Mapping[str, Slot], on_failure: Callable[[JournalError], None], *, account: str
    ) -> None:
        cfg = settings.audit
        root = journal_root(cfg.dir, account, list(settings.symbols))
        self.writer = JournalWriter.create(root, run_id, rotate_bytes=cfg.rotate_bytes, info={"account": account, "symbols": list(settings.symbols), "mode": settings.mode})
        self.recorders = {sym: Recorder(self.writer, slot.engine) for sym, slot in slots.items()}
        first = next(iter(slots.values()))
        data = [settings.exchange.base_url or f"{settings.exchange.id}{' sandbox' if settings.exchange.sandbox else ''}"]
        self.writer.append("run_start", run_start_payload(settings, run_id, mode=settings.mode, account=account, data=data, instrument=first.instrument, resumed=False))
        self.writer.flush(fsync=True, checkpoint=True)
        self.interval_s = max(cfg.flush_interval_ms / 1000.0, 0.05)
        self._lock = asyncio.Lock()
        self.on_failure = on_failure
        self.failure: JournalError | None = None

    def observe(self, symbol: str, events: list[Any]) -> None:
        self.recorders[symbol].observe(events)

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        self.writer.append(kind, payload, time.time_ns())

    async def flush(self, *, checkpoint: bool, fsync: bool | None = None) -> None:
        async with self._lock:
            if self.failure is not None:
                return
            chunks, seq, digest = self.writer.take()
            if not chunks and not checkpoint:
                return
            try:
                await asyncio.to_thread(self.writer.write, chunks, seq, digest, fsync=checkpoint if fsync is None else fsync, checkpoint=checkpoint)
            except JournalError as exc:
                self.failure = exc
                self.on_failure(exc)

    async def durable(self) -> None:
        """Fills, risk changes and signals on disk (fsynced) before the runner acts on them further."""
        if self.writer.needs_sync and self.failure is None:
            await self.flush(checkpoint=False, fsync=True)

    async def run(self, stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set() and self.failure is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await stop.wait()
            now = time.monotonic()
            await self.flush(checkpoint=now - last >= 1.0)
            if now - last >= 1.0:
                last = now

    async def seal(self, summary: dict[str, Any], stop_reason: str) -> None:
        if self.failure is None:
            self.writer.append("run_stop", {"summary": summary, "stop_reason": stop_reason}, time.time_ns())
            await self.flush(checkpoint=True)
        if self.failure is None:
            try:
                await asyncio.to_thread(self.writer.seal)
            except JournalError as exc:
                self.failure = exc
                log.error("journal_seal_failed", error=str(exc), journal=str(self.writer.directory))
        self.writer.close()
