"""The asyncio paper-trading runner over a replayed capture.

One ``asyncio.TaskGroup`` (under uvloop from the CLI) owns the replay task, the
status line and any servers. The replay task feeds events through the same
:class:`~mmbot.engine.session.ReplaySession` the backtest uses, paced to wall-clock
time (``speed`` x real time; 0 = as fast as possible), so paper runs and backtests
agree fill for fill.

Signals: SIGUSR1 toggles the kill switch; SIGINT/SIGTERM stop quoting, cancel
everything, write the summary and exit 0; SIGHUP reloads the configuration (an
invalid file is refused and the old configuration stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from mmbot.app.controls import Controls
from mmbot.app.fills_json import FillLog
from mmbot.app.run_record import recorder_factory, write_l2_record
from mmbot.app.run_support import paper_summary, write_json_atomic
from mmbot.app.settings import Settings
from mmbot.app.status_line import status_line
from mmbot.app.wiring import Built, build_replay, replay_instrument
from mmbot.domain.engine_events import EngineEvent
from mmbot.domain.events import ClockJump, MarketEvent
from mmbot.engine.session import Fault
from mmbot.marketdata.capture import CaptureParser, RateLimitedWarn, ReadStats, read_stream
from mmbot.marketdata.validate import merge_counts
from mmbot.observability import counters

log = structlog.get_logger("mmbot.runner")

Observer = Callable[[list[EngineEvent]], None]


@dataclass
class RunOptions:
    paths: list[str]
    speed: float = 1.0
    duration_s: float | None = None
    loop: bool = False
    summary_json: str | None = None
    faults: tuple[Fault, ...] = ()
    config_path: str | None = None
    status: bool = True
    max_events: int | None = None
    fills_json: str | None = None
    resume_after_ns: int | None = None  # crash recovery: events up to here only rebuild the books
    force_resume: bool = False  # --resume: continue a crashed run's journal even of another config/account


@dataclass
class RunState:
    """What the status line, health endpoints and metrics read."""

    built: Built
    run_id: str
    settings: Settings
    started_wall: float = field(default_factory=time.monotonic)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    loops: int = 0
    read_stats: ReadStats = field(default_factory=ReadStats)
    observers: list[Observer] = field(default_factory=list)
    last_event_wall: float = 0.0
    # Tick-to-quote timing of the step whose engine events are being drained
    # (time.perf_counter_ns at event receipt and when the step returned; 0 = not a step).
    md_receipt_ns: int = 0
    step_done_ns: int = 0
    summary: dict[str, Any] | None = None
    stop_reason: str = ""
    # Audit journal (mmbot.app.hooks_audit): warm_up replays events before the resume point;
    # durable() returns an awaitable when journaled fills/risk changes must reach the disk
    # before the engine sees the next event; notes receive operator signals.
    warm_up: Callable[[MarketEvent], None] | None = None
    durable: Callable[[], Awaitable[None] | None] | None = None
    notes: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)
    exit_code: int = 0

    @property
    def engine(self) -> Any:
        return self.built.engine

    def note(self, kind: str, payload: dict[str, Any]) -> None:
        for recorder in self.notes:
            recorder(kind, payload)


def _log_warn(event: str, fields: dict[str, Any]) -> None:
    log.warning(event, **fields)


_warn = RateLimitedWarn(_log_warn)


SEAM = None  # yielded between two passes over the capture in loop mode


def iter_capture(paths: list[str], built: Built, stats: ReadStats, loop: bool) -> Iterator[MarketEvent | ClockJump | None]:
    """The capture as one stream; with ``loop``, again and again with shifted timestamps.

    Between passes it yields ``SEAM`` (None): the caller cancels resting orders and
    invalidates the books, which the capture's snapshot then rebuilds. Timestamps
    are offset by the capture's span so time stays monotonic.
    """
    parser = CaptureParser([built.instrument])
    offset = 0
    first_ts: int | None = None
    last_ts = 0
    while True:
        for event in read_stream(paths, parser, stats, _warn, max_clock_jump_ns=built.max_clock_jump_ns):
            if first_ts is None:
                first_ts = event.ts_local_ns
            if offset:
                event = event._replace(ts_local_ns=event.ts_local_ns + offset)
            last_ts = event.ts_local_ns
            yield event
        if not loop or first_ts is None:
            return
        offset = last_ts + 1_000_000 - first_ts  # the next pass starts 1 ms after this one
        yield SEAM


class Runner:
    def __init__(self, settings: Settings, run_id: str, options: RunOptions) -> None:
        self.settings = settings
        self.options = options
        self.run_id = run_id
        built = build_replay(settings, run_id, options.faults, instrument=replay_instrument(settings, options.paths))
        self.state = RunState(built=built, run_id=run_id, settings=settings)
        counters.add_market_data_source(built.instrument.symbol, self.market_data_rejections)
        # Kill switch, reload, loop-lag and dead-man watchdogs (mmbot/app/controls.py).
        self.controls = Controls(self)
        self.fill_log: FillLog | None = None
        if options.fills_json:
            self.fill_log = FillLog(built.instrument)
            self.state.observers.append(self.fill_log.observe)
        # The run record for `mmbot report` (mmbot/research/record.py), sampled every record.interval_ms.
        self.recorders: list[Any] = []
        make_recorder = recorder_factory(settings, self.recorders)
        if make_recorder is not None:
            self.state.observers.append(make_recorder(built.engine).on_events)

    def market_data_rejections(self) -> dict[str, int]:
        """Rule -> count so far (the reader's decoding rules, the session's value rules, the book)."""
        quality = self.state.built.session.data_quality()
        rejections = quality["market_data_rejections"]
        assert isinstance(rejections, dict)
        return merge_counts(self.state.read_stats.rejections, rejections)

    # --- operator actions -------------------------------------------------------------
    def toggle_kill_switch(self) -> None:
        engine = self.state.built.engine
        engaged = not engine.gate.kill_switch_engaged
        self.set_kill_switch(engaged, source="SIGUSR1")

    def set_kill_switch(self, engaged: bool, source: str) -> None:
        self.state.note("signal", {"action": "kill_switch", "engaged": engaged, "source": source})
        self.controls.set_kill_switch(engaged, source)

    def reload(self) -> None:
        # Validated like a start-up config; a refused reload keeps the old config (controls.py).
        if self.controls.reload():
            self.state.note("signal", {"action": "reload", "signal": "SIGHUP", "result": "reloaded"})
        else:
            error = self.controls.last_reload_error
            self.state.note("signal", {"action": "reload", "signal": "SIGHUP", "result": "refused", "error": error})

    def _drain(self) -> None:
        events = self.state.built.engine.drain_events()
        if events:
            for observer in self.state.observers:
                observer(events)

    # --- main loop ---------------------------------------------------------------------
    async def replay(self) -> None:
        opts = self.options
        state = self.state
        built = state.built
        session = built.session
        step = session.step
        speed = opts.speed
        wall0 = time.monotonic()
        cap0: int | None = None
        deadline = wall0 + opts.duration_s if opts.duration_s else None
        count = 0
        stats = state.read_stats
        engine = built.engine
        perf_ns = time.perf_counter_ns
        resume_ns = opts.resume_after_ns
        durable = state.durable
        recorder = self.recorders[0] if self.recorders else None
        for event in iter_capture(opts.paths, built, stats, opts.loop):
            if event is None:
                self._seam()
                continue
            ts = event.ts_local_ns
            if type(event) is ClockJump:
                # A real discontinuity in the capture: the empty time is not waited for.
                cap0 = ts
                wall0 = time.monotonic()
                if resume_ns is None or ts > resume_ns:
                    step(event)
                continue
            if resume_ns is not None:
                if ts <= resume_ns and state.warm_up is not None:
                    state.warm_up(event)  # type: ignore[arg-type]
                    continue
                resume_ns = None
            if cap0 is None:
                cap0 = ts
            if speed > 0:
                target = wall0 + (ts - cap0) / 1e9 / speed
                delay = target - time.monotonic()
                # Short naps: the dead-man sees the loop alive and a stop is noticed during long gaps.
                while delay > 0:
                    await asyncio.sleep(min(delay, 0.2))
                    self.controls.beat()
                    if state.stop.is_set():
                        break
                    delay = target - time.monotonic()
            if recorder is not None and ts >= recorder.next_ns:
                recorder.advance(ts)
            received_ns = perf_ns()
            step(event)
            if engine.has_events:
                state.md_receipt_ns = received_ns
                state.step_done_ns = perf_ns()
                self._drain()
                state.md_receipt_ns = 0
                if durable is not None and (barrier := durable()) is not None:
                    await barrier
            count += 1
            if count & 1023 == 0 or speed > 0:
                if speed == 0 and count & 1023 == 0:
                    await asyncio.sleep(0)
                state.last_event_wall = time.monotonic()
                self.controls.beat()  # the dead-man's sign of life
                if state.stop.is_set():
                    state.stop_reason = state.stop_reason or "signal"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    state.stop_reason = "duration"
                    break
            if opts.max_events is not None and count >= opts.max_events:
                state.stop_reason = "max_events"
                break
        else:
            state.stop_reason = state.stop_reason or "end_of_data"
        session.flush()
        self._drain()
        state.done = True

    def _seam(self) -> None:
        built = self.state.built
        engine = built.engine
        session = built.session
        state = self.state
        state.loops += 1
        session.operator(engine.cancel_everything(session.now_ns, "loop_seam"))
        built.venue.book.invalidate()
        if engine.book is not built.venue.book:
            engine.book.invalidate()
        self._drain()
        log.info("replay_looped", loop=state.loops, note="book rebuilt from the capture snapshot; price jumps at the seam")

    async def status_line(self, emit: Callable[[str], None]) -> None:
        interval = self.settings.run.status_interval_s
        while not self.state.done:
            await asyncio.sleep(interval)
            if not self.state.done:
                emit(self.status_text())

    def status_text(self) -> str:
        return status_line([self.state.built.engine])

    def finish(self) -> dict[str, Any]:
        """Stop quoting, cancel everything, confirm, build and write the summary."""
        built = self.state.built
        engine = built.engine
        session = built.session
        log.info("shutdown_phase", phase="halted", stop_reason=self.state.stop_reason)
        session.operator(engine.cancel_everything(session.now_ns, "shutdown"))
        # Let in-flight cancels (latency) reach the venue: advance capture time.
        for _ in range(100):
            due = built.venue.next_due_ns
            if due is None:
                break
            session.drain_until(due)
        self._drain()
        log.info("shutdown_phase", phase="cancelled", open_orders=len(built.venue.open_order_ids()))
        wall = time.monotonic() - self.state.started_wall
        summary = paper_summary(
            self.settings, built, run_id=self.run_id, wall_seconds=wall, stop_reason=self.state.stop_reason,
            stats=self.state.read_stats, recorders=self.recorders, loops=self.state.loops,
        )
        self.state.summary = summary
        write_l2_record(self.settings, summary, self.recorders, None, self.options.paths)
        if self.options.summary_json:
            write_json_atomic(self.options.summary_json, summary)
        if session.venue_gaps or engine.book.gap_count:
            log.warning("capture_sequence_gaps", data_gaps=session.venue_gaps, book_gaps=engine.book.gap_count, snapshot_requests=session.snapshot_requests)
        if self.fill_log is not None and self.options.fills_json:
            write_json_atomic(self.options.fills_json, self.fill_log.document(self.run_id, self.settings.mode))
        return summary


async def run_paper(runner: Runner, emit_status: Callable[[str], None], extra_tasks: list[Any] | None = None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    state = runner.state

    def on_stop(signame: str) -> None:
        log.warning("shutdown_requested", signal=signame)
        state.note("signal", {"action": "shutdown", "signal": signame})
        state.stop_reason = signame
        state.stop.set()

    handlers = {
        signal.SIGINT: lambda: on_stop("SIGINT"),
        signal.SIGTERM: lambda: on_stop("SIGTERM"),
        signal.SIGUSR1: runner.toggle_kill_switch,
        signal.SIGHUP: runner.reload,
    }
    for sig, handler in handlers.items():
        loop.add_signal_handler(sig, handler)
    try:
        async with asyncio.TaskGroup() as tg:
            replay = tg.create_task(runner.replay())
            if runner.options.status:
                status = tg.create_task(runner.status_line(emit_status))
            hook_tasks = [tg.create_task(factory(state)) for factory in extra_tasks or []]
            tg.create_task(runner.controls.run(state))
            await replay
            # Phased shutdown: quoting has stopped (halt) -> cancel all -> confirm -> summary,
            # then the hook tasks flush and close (journal, metrics, admin) within the deadline.
            shutdown_started = time.monotonic()
            summary = runner.finish()
            if runner.options.status:
                status.cancel()
            state.stop.set()
            deadline = runner.settings.risk.shutdown_deadline_s - (time.monotonic() - shutdown_started)
            if hook_tasks:
                _, late = await asyncio.wait(hook_tasks, timeout=max(deadline, 0.0))
                for task in late:
                    task.cancel()
                if late:
                    log.error("shutdown_deadline_exceeded", deadline_s=runner.settings.risk.shutdown_deadline_s, tasks_cancelled=len(late))
            log.info("shutdown_phase", phase="closed", elapsed_ms=round((time.monotonic() - shutdown_started) * 1000, 1))
    finally:
        for sig in handlers:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    return summary
