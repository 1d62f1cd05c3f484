"""Runner hooks of the audit area: the paper run's journal (see mmbot.audit).

``tasks`` opens the journal before the run (recovering a crashed run's state, see
:mod:`mmbot.audit.recovery`), writes the ``run_start`` record and returns the
writer task; ``after_run`` writes the ``run_stop`` record and seals the journal.
It runs after the other start-up steps that can fail (capture files checked, the
metrics port bound: :mod:`mmbot.app.hooks` runs the metrics hook first), so a
start-up failure leaves no journal behind. A crashed run's journal is continued only
for the same configuration and account (else exit 2; ``--fresh``/``--resume``).

Durability without blocking the event loop: records are appended to a buffer by
the observers; the writer task writes them every ``audit.flush_interval_ms`` and
fsyncs and checkpoints the manifest every second, in a worker thread. When a
step journals a fill, a risk change or a signal, the replay task awaits a
flush + fsync (in the worker thread) before it feeds the engine the next event.

A write failure raises JOURNAL_FAILURE (HALTED: orders cancelled, no quoting),
logs ``journal_write_failed``, stops the run and makes ``mmbot run`` exit with
status 3; the records that could not be written are counted and logged
(``journal_records_unwritten``), never silently dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import structlog

from mmbot import __version__
from mmbot.app.runner import Runner, RunState
from mmbot.app.settings import Settings, config_hash, redacted_dict
from mmbot.audit.recorder import Recorder
from mmbot.audit.recovery import RunIdentity, journal_root, make_warm_up, open_journal, restore
from mmbot.audit.state import instrument_json
from mmbot.audit.writer import JournalWriter
from mmbot.domain.risk import RiskReason
from mmbot.errors import JournalError

log = structlog.get_logger("mmbot.audit")

EXIT_JOURNAL_FAILURE = JournalError.exit_code  # 3
CHECKPOINT_INTERVAL_S = 1.0


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


class PaperJournal:
    """The journal of one paper run, bound to its Runner."""

    def __init__(self, runner: Runner, writer: JournalWriter, recorder: Recorder) -> None:
        self.runner = runner
        self.writer = writer
        self.recorder = recorder
        self._lock: asyncio.Lock | None = None
        self.failure_handled = False

    async def flush(self, *, fsync: bool, checkpoint: bool) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        writer = self.writer
        async with self._lock:
            chunks, seq, digest = writer.take()  # taken under the lock: file order = record order
            if not chunks and not checkpoint:
                return
            try:
                await asyncio.to_thread(writer.write, chunks, seq, digest, fsync=fsync, checkpoint=checkpoint)
            except JournalError as exc:
                self.on_failure(exc)

    def durable(self) -> Awaitable[None] | None:
        if self.writer.needs_sync and self.writer.failed is None:
            return self.flush(fsync=True, checkpoint=False)
        return None

    def on_failure(self, exc: JournalError) -> None:
        if self.failure_handled:
            return
        self.failure_handled = True
        runner = self.runner
        state = runner.state
        engine = state.built.engine
        session = state.built.session
        log.error(
            "journal_write_failed",
            error=str(exc),
            journal=str(self.writer.directory),
            action="trading halted with JOURNAL_FAILURE; the run stops; exit status 3",
        )
        session.operator(engine.raise_reason(RiskReason.JOURNAL_FAILURE, session.now_ns, str(exc)))
        runner._drain()
        state.stop_reason = "journal_failure"
        state.exit_code = EXIT_JOURNAL_FAILURE
        state.stop.set()

    async def run(self, state: RunState) -> None:
        interval = max(self.runner.settings.audit.flush_interval_ms / 1000.0, 0.005)
        last_checkpoint = time.monotonic()
        while not state.stop.is_set() and self.writer.failed is None:
            await asyncio.sleep(interval)
            self.recorder.check_book()
            now = time.monotonic()
            checkpoint = now - last_checkpoint >= CHECKPOINT_INTERVAL_S
            if checkpoint:
                last_checkpoint = now
            if self.writer.pending_bytes or checkpoint:
                await self.flush(fsync=checkpoint, checkpoint=checkpoint)

    def seal(self) -> None:
        state = self.runner.state
        engine = state.built.engine
        writer = self.writer
        summary = state.summary or {}
        writer.append(
            "run_stop",
            {"summary": summary, "mark_ticks": engine.mark_ticks(), "stop_reason": state.stop_reason},
            state.built.session.now_ns,
        )
        try:
            writer.seal()
        except JournalError as exc:
            log.error("journal_write_failed", error=str(exc), journal=str(writer.directory), action="exit status 3")
            state.exit_code = EXIT_JOURNAL_FAILURE
        finally:
            writer.close()
        if writer.failed is not None:
            state.exit_code = EXIT_JOURNAL_FAILURE
            log.error(
                "journal_records_unwritten",
                count=writer.unwritten,
                first_seq=writer.first_unwritten_seq,
                last_seq=writer.seq,
                journal=str(writer.directory),
                hint="these records exist only in this log line's count; the journal ends before them",
            )
        else:
            log.info("journal_sealed", journal=str(writer.directory), records=writer.seq, last_hash=writer.last_hash)


_ACTIVE: dict[int, PaperJournal] = {}


def tasks(runner: Runner, *, fresh: bool) -> list[Any]:
    settings = runner.settings
    cfg = settings.audit
    if not cfg.enabled:
        return []
    state = runner.state
    built = state.built
    engine = built.engine
    data = list(runner.options.paths)
    info = {"account": cfg.account, "symbols": list(settings.symbols), "mode": settings.mode}
    opened = open_journal(
        journal_root(cfg.dir, cfg.account, settings.symbols),
        run_id=runner.run_id,
        rotate_bytes=cfg.rotate_bytes,
        info=info,
        data=data,
        fresh=fresh,
        resume=True,
        identity=RunIdentity(account=cfg.account, config_hash=config_hash(settings), config=redacted_dict(settings)),
        force_resume=runner.options.force_resume,
    )
    if opened.note:
        log.warning("journal_new", journal=str(opened.writer.directory), note=opened.note)
    writer = opened.writer
    recorder = Recorder(writer, engine, built.session)
    recorder.install(built.session)
    start = run_start_payload(settings, runner.run_id, mode=settings.mode, account=cfg.account, data=data, instrument=built.instrument, resumed=opened.state is not None)
    if opened.abandoned is not None:
        start["abandoned"] = opened.abandoned  # the unsealed journal left behind, in this journal's chain
        log.warning("journal_abandoned", journal=opened.abandoned["journal"], new_journal=str(writer.directory), reason=opened.abandoned["reason"])
    writer.append("run_start", start)
    if opened.forced is not None:
        writer.append("resume_forced", opened.forced)
        log.warning(
            "journal_resume_forced",
            journal=str(writer.directory),
            journal_config_hash=opened.forced["journal_config_hash"],
            config_hash=opened.forced["config_hash"],
            journal_account=opened.forced["journal_account"],
            account=opened.forced["account"],
            differences=opened.forced["differences"],
        )
    if opened.repair is not None:
        writer.append("repair", opened.repair)
        log.warning("journal_repaired", journal=str(writer.directory), **opened.repair)
    if opened.state is not None:
        restored = restore(opened.state, engine, built.venue, built.session)
        # Events of restored sticky reasons stay queued: journaled after the recovery record.
        writer.append("recovery", restored)
        runner.options.resume_after_ns = restored["resume_after_ns"]
        state.warm_up = make_warm_up(engine, built.session)
        log.warning(
            "journal_recovered",
            journal=str(writer.directory),
            position=restored["position"],
            cash=restored["cash"],
            fills=restored["fills"],
            open_orders=len(restored["open_orders"]),
            dropped_orders=len(restored["dropped_orders"]),
            resume_after_ns=restored["resume_after_ns"],
        )
    try:
        writer.flush(fsync=True, checkpoint=True)
    except JournalError as exc:
        writer.close()
        raise JournalError(f"{exc}; trading not started") from exc
    log.info("journal_opened", journal=str(writer.directory), resumed=opened.state is not None)
    journal = PaperJournal(runner, writer, recorder)
    _ACTIVE[id(runner)] = journal
    state.observers.insert(0, recorder.observe)
    state.notes.append(recorder.note)
    state.durable = journal.durable
    return [journal.run]


def after_run(runner: Runner) -> None:
    journal = _ACTIVE.pop(id(runner), None)
    if journal is not None:
        journal.seal()


class BacktestJournal:
    """The journal of one ``mmbot backtest`` run: synchronous writes, always a new journal.

    Account ``backtest``; a fill or risk change is flushed and fsynced before the
    next event is fed to the engine, other records every ``audit.flush_interval_ms``.
    """

    def __init__(self, settings: Settings, run_id: str, paths: list[str]) -> None:
        self.settings = settings
        self.run_id = run_id
        self.paths = list(paths)
        self.writer: JournalWriter | None = None
        self.recorder: Recorder | None = None
        self.built: Any = None
        self.error: JournalError | None = None
        self._last_flush = self._last_checkpoint = time.monotonic()
        self._interval = settings.audit.flush_interval_ms / 1000.0

    def attach(self, built: Any) -> None:
        settings = self.settings
        cfg = settings.audit
        opened = open_journal(
            journal_root(cfg.dir, "backtest", settings.symbols),
            run_id=self.run_id,
            rotate_bytes=cfg.rotate_bytes,
            info={"account": "backtest", "symbols": list(settings.symbols), "mode": "backtest"},
            data=self.paths,
            fresh=True,
            resume=False,
        )
        self.writer = writer = opened.writer
        self.built = built
        self.recorder = Recorder(writer, built.engine, built.session)
        self.recorder.install(built.session)
        writer.append(
            "run_start",
            run_start_payload(settings, self.run_id, mode="backtest", account="backtest", data=self.paths, instrument=built.instrument, resumed=False),
        )
        writer.flush(fsync=True, checkpoint=True)

    def observe(self, events: list[Any]) -> None:
        writer = self.writer
        if writer is None or self.recorder is None:
            return
        self.recorder.observe(events)
        if writer.failed is not None:
            return
        try:
            now = time.monotonic()
            if now - self._last_checkpoint >= CHECKPOINT_INTERVAL_S:
                writer.flush(fsync=True, checkpoint=True)
                self._last_checkpoint = self._last_flush = now
            elif writer.needs_sync:
                writer.flush(fsync=True, checkpoint=False)
                self._last_flush = now
            elif writer.pending_bytes > 1 << 18 or now - self._last_flush >= self._interval:
                writer.flush(fsync=False, checkpoint=False)
                self._last_flush = now
        except JournalError as exc:
            self._fail(exc)

    def _fail(self, exc: JournalError) -> None:
        self.error = exc
        engine = self.built.engine
        session = self.built.session
        log.error("journal_write_failed", error=str(exc), action="trading halted with JOURNAL_FAILURE; exit status 3")
        # The commands go to the venue now; the resulting events reach the observers after this step.
        session.operator(engine.raise_reason(RiskReason.JOURNAL_FAILURE, session.now_ns, str(exc)))

    def seal(self, summary: dict[str, Any]) -> JournalError | None:
        """Write run_stop and seal; return the journal error to raise once the summary is shown."""
        writer = self.writer
        if writer is None:
            return None
        writer.append("run_stop", {"summary": summary, "mark_ticks": self.built.engine.mark_ticks(), "stop_reason": summary.get("stop_reason", "")}, self.built.session.now_ns)
        try:
            writer.seal()
        except JournalError as exc:
            self.error = self.error or exc
        finally:
            writer.close()
        if writer.failed is not None:
            self.error = self.error or writer.failed
            log.error("journal_records_unwritten", count=writer.unwritten, first_seq=writer.first_unwritten_seq, last_seq=writer.seq, journal=str(writer.directory))
            return self.error
        log.info("journal_sealed", journal=str(writer.directory), records=writer.seq, last_hash=writer.last_hash)
        return None


def backtest_journal(settings: Settings, run_id: str, paths: list[str]) -> BacktestJournal | None:
    return BacktestJournal(settings, run_id, paths) if settings.audit.enabled else None
