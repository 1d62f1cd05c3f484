"""The audit journal of a run: one class for every mode (see :mod:`mmbot.audit`).

Which journal a run writes (:func:`open_run_journal`):

* ``mmbot run`` on a capture (account ``audit.account``): a crashed run's unsealed
  journal of the same config and account is continued (its state restored, see
  :mod:`mmbot.audit.recovery`); another config or account refuses the start (exit 2)
  unless ``--resume``; ``--fresh`` starts a new one.
* ``mmbot backtest`` (account ``backtest``), paper on a live feed
  (``<audit.account>-livefeed``) and sandbox/live (``<audit.account>-<mode>``): always a
  new journal; for live runs the venue or the feed, not the journal, is the state to
  recover.

Durability without blocking the event loop: observers append records to a buffer;
:meth:`Journal.run` writes them every ``audit.flush_interval_ms`` and fsyncs and
checkpoints the manifest every second, in a worker thread. When a step journals a
fill, a risk change or a signal, the node awaits :meth:`Journal.durable` (write +
fsync) before the engine sees the next event or its follow-up orders go out. A
backtest has no event loop: :meth:`Journal.flush_sync` applies the same policy
synchronously after every published batch.

A write failure calls ``on_failure`` once: the node halts every engine with
JOURNAL_FAILURE, stops (a backtest runs on halted) and exits 3; records that could not
be written are counted and logged (``journal_records_unwritten``), never silently
dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from mmbot import __version__
from mmbot.audit.recorder import Recorder
from mmbot.audit.recovery import Opened, RunIdentity, journal_root, open_journal
from mmbot.audit.state import instrument_json
from mmbot.audit.writer import JournalWriter
from mmbot.config.settings import Settings, config_hash, redacted_dict
from mmbot.engine.session import ReplaySession
from mmbot.errors import JournalError

log = structlog.get_logger("mmbot.audit")

CHECKPOINT_INTERVAL_S = 1.0
SYNC_FLUSH_BYTES = 1 << 18  # a backtest writes its buffer once it holds this much


def run_start_payload(settings: Settings, run_id: str, *, mode: str, account: str, data: list[str], instrument: Any, resumed: bool) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "version": __version__,
        "mode": mode,
        "account": account,
        "symbols": list(settings.symbols),
        "data": list(data),
        "config_hash": config_hash(settings),
        "config": redacted_dict(settings),
        "instrument": instrument_json(instrument),
        "resumed": resumed,
    }


JOURNAL_WRITE_WAIT_S = 30.0  # seal: the longest wait for a write still in flight (a stuck disk)


class Journal:
    """The journal of one run: a writer and one recorder per symbol."""

    def __init__(self, writer: JournalWriter, recorders: Mapping[str, Recorder], *, flush_interval_ms: float,
                 on_failure: Callable[[JournalError], None]) -> None:
        self.writer = writer
        self.recorders = dict(recorders)
        self.interval_s = max(flush_interval_ms / 1000.0, 0.005)
        self.on_failure_cb = on_failure
        self.failure: JournalError | None = None
        self._lock: asyncio.Lock | None = None
        # One writer thread, so writes land in the order they were taken; the last write in
        # flight is kept so seal() can wait for it (a write taken but never run would lose
        # its records: a cancelled flush must not cancel the write it started).
        self._io = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._inflight: concurrent.futures.Future[None] | None = None
        self._last_flush = self._last_checkpoint = time.monotonic()

    # --- records --------------------------------------------------------------------------
    def observe(self, symbol: str, events: list[Any]) -> None:
        self.recorders[symbol].observe(events)

    def note(self, kind: str, payload: dict[str, Any], ts_ns: int | None) -> None:
        self.writer.append(kind, payload, ts_ns)

    def _failed(self, exc: JournalError) -> None:
        if self.failure is None:
            self.failure = exc
            log.error("journal_write_failed", error=str(exc), journal=str(self.writer.directory),
                      action="trading halted with JOURNAL_FAILURE; the run stops; exit status 3")
            self.on_failure_cb(exc)

    # --- writing in an event loop ---------------------------------------------------------
    async def flush(self, *, fsync: bool, checkpoint: bool) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        writer = self.writer
        async with self._lock:
            if self.failure is not None:
                return
            chunks, seq, digest = writer.take()  # taken under the lock: file order = record order
            if not chunks and not checkpoint:
                return
            job = self._io.submit(writer.write, chunks, seq, digest, fsync=fsync, checkpoint=checkpoint)
            self._inflight = job
            try:
                await asyncio.shield(asyncio.wrap_future(job))
            except JournalError as exc:
                self._failed(exc)

    def durable(self) -> Awaitable[None] | None:
        """An awaitable when fills, risk changes or signals must reach the disk first; else None."""
        if self.writer.needs_sync and self.failure is None:
            return self.flush(fsync=True, checkpoint=False)
        return None

    async def run(self, stop: asyncio.Event) -> None:
        last_checkpoint = time.monotonic()
        while not stop.is_set() and self.failure is None:
            await asyncio.sleep(self.interval_s)
            for recorder in self.recorders.values():
                recorder.check_book()
            now = time.monotonic()
            checkpoint = now - last_checkpoint >= CHECKPOINT_INTERVAL_S
            if checkpoint:
                last_checkpoint = now
            if self.writer.pending_bytes or checkpoint:
                await self.flush(fsync=checkpoint, checkpoint=checkpoint)

    # --- writing without one (backtests) --------------------------------------------------
    def flush_sync(self) -> None:
        writer = self.writer
        if self.failure is not None:
            return
        try:
            now = time.monotonic()
            if now - self._last_checkpoint >= CHECKPOINT_INTERVAL_S:
                writer.flush(fsync=True, checkpoint=True)
                self._last_checkpoint = self._last_flush = now
            elif writer.needs_sync:
                writer.flush(fsync=True, checkpoint=False)
                self._last_flush = now
            elif writer.pending_bytes > SYNC_FLUSH_BYTES or now - self._last_flush >= self.interval_s:
                writer.flush(fsync=False, checkpoint=False)
                self._last_flush = now
        except JournalError as exc:
            self._failed(exc)

    # --- the end --------------------------------------------------------------------------
    def _drain_inflight(self) -> None:
        """Wait for the write in flight (its flush may have been cancelled at shutdown)."""
        job, self._inflight = self._inflight, None
        if job is not None:
            try:
                job.result(timeout=JOURNAL_WRITE_WAIT_S)
            except JournalError as exc:
                self._failed(exc)
            except concurrent.futures.TimeoutError:
                self._failed(JournalError(f"audit journal write in {self.writer.directory} did not finish within {JOURNAL_WRITE_WAIT_S:g} s"))
        self._io.shutdown(wait=False)

    def seal(self, summary: dict[str, Any], stop_reason: str, mark_ticks: int | None, ts_ns: int | None) -> JournalError | None:
        """Write run_stop and seal; the journal's error (exit 3) or None."""
        writer = self.writer
        payload: dict[str, Any] = {"summary": summary, "stop_reason": stop_reason}
        if mark_ticks is not None:
            payload["mark_ticks"] = mark_ticks
        self._drain_inflight()
        error = self.failure
        writer.append("run_stop", payload, ts_ns)
        try:
            writer.seal()
        except JournalError as exc:
            error = error or exc
            log.error("journal_write_failed", error=str(exc), journal=str(writer.directory), action="exit status 3")
        finally:
            writer.close()
        if writer.failed is not None:
            error = error or writer.failed
            log.error(
                "journal_records_unwritten", count=writer.unwritten, first_seq=writer.first_unwritten_seq, last_seq=writer.seq,
                journal=str(writer.directory), hint="these records exist only in this log line's count; the journal ends before them",
            )  # fmt: skip
            return error
        if error is None:
            log.info("journal_sealed", journal=str(writer.directory), records=writer.seq, last_hash=writer.last_hash)
        return error


def open_run_journal(
    settings: Settings,
    run_id: str,
    *,
    account: str,
    mode: str,
    data: list[str],
    engines: Mapping[str, Any],
    sessions: Mapping[str, ReplaySession],
    on_failure: Callable[[JournalError], None],
    resume: bool,
    fresh: bool = False,
    force_resume: bool = False,
) -> tuple[Journal, Opened]:
    """Open (or continue, with ``resume``) the run's journal and write its ``run_start``."""
    cfg = settings.audit
    identity = RunIdentity(account=account, config_hash=config_hash(settings), config=redacted_dict(settings)) if resume else None
    opened = open_journal(
        journal_root(cfg.dir, account, list(settings.symbols)),
        run_id=run_id, rotate_bytes=cfg.rotate_bytes,
        info={"account": account, "symbols": list(settings.symbols), "mode": mode},
        data=data, fresh=fresh, resume=resume, identity=identity, force_resume=force_resume,
    )  # fmt: skip
    if opened.note:
        log.warning("journal_new", journal=str(opened.writer.directory), note=opened.note)
    writer = opened.writer
    recorders = {symbol: Recorder(writer, engine, sessions.get(symbol)) for symbol, engine in engines.items()}
    first = next(iter(engines.values()))
    start = run_start_payload(settings, run_id, mode=mode, account=account, data=data, instrument=first.instrument,
                              resumed=opened.state is not None)
    if opened.abandoned is not None:
        start["abandoned"] = opened.abandoned  # the unsealed journal left behind, in this journal's chain
        log.warning("journal_abandoned", journal=opened.abandoned["journal"], new_journal=str(writer.directory), reason=opened.abandoned["reason"])
    writer.append("run_start", start)
    if opened.forced is not None:
        writer.append("resume_forced", opened.forced)
        log.warning(
            "journal_resume_forced", journal=str(writer.directory), journal_config_hash=opened.forced["journal_config_hash"],
            config_hash=opened.forced["config_hash"], journal_account=opened.forced["journal_account"],
            account=opened.forced["account"], differences=opened.forced["differences"],
        )  # fmt: skip
    if opened.repair is not None:
        writer.append("repair", opened.repair)
        log.warning("journal_repaired", journal=str(writer.directory), **opened.repair)
    return Journal(writer, recorders, flush_interval_ms=cfg.flush_interval_ms, on_failure=on_failure), opened


def first_flush(journal: Journal, resumed: bool) -> None:
    """The run_start (and recovery) records on disk before trading starts."""
    writer = journal.writer
    try:
        writer.flush(fsync=True, checkpoint=True)
    except JournalError as exc:
        writer.close()
        raise JournalError(f"{exc}; trading not started") from exc
    log.info("journal_opened", journal=str(writer.directory), resumed=resumed)
