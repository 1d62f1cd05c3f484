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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from mmbot.app.settings import Settings, load_settings
from mmbot.app.wiring import Built, build_model, build_replay
from mmbot.domain.events import MarketEvent
from mmbot.engine.engine import EngineEvent
from mmbot.engine.session import Fault
from mmbot.engine.summary import build_summary
from mmbot.errors import MmbotError
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events

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
    summary: dict[str, Any] | None = None
    stop_reason: str = ""

    @property
    def engine(self) -> Any:
        return self.built.engine


def _warn(event: str, fields: dict[str, Any]) -> None:
    log.warning(event, **fields)


SEAM = None  # yielded between two passes over the capture in loop mode


def iter_capture(paths: list[str], built: Built, stats: ReadStats, loop: bool) -> Iterator[MarketEvent | None]:
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
        for event in read_events(paths, parser, stats, _warn):
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
        built = build_replay(settings, run_id, options.faults)
        self.state = RunState(built=built, run_id=run_id, settings=settings)

    # --- operator actions -------------------------------------------------------------
    def toggle_kill_switch(self) -> None:
        engine = self.state.built.engine
        engaged = not engine.gate.kill_switch_engaged
        self.set_kill_switch(engaged, source="SIGUSR1")

    def set_kill_switch(self, engaged: bool, source: str) -> None:
        built = self.state.built
        engine = built.engine
        session = built.session
        commands = engine.set_kill_switch(engaged, session.now_ns)
        session.operator(commands)
        self._drain()
        open_orders = len(built.venue.open_order_ids())
        if engaged:
            log.warning(
                "kill_switch_engaged",
                source=source,
                risk_state=engine.gate.state.name,
                open_orders=open_orders,
                hint="send SIGUSR1 again (or mmbot ctl kill-switch off) to release",
            )
        else:
            log.warning(
                "kill_switch_released",
                source=source,
                risk_state=engine.gate.state.name,
                risk_reasons=list(engine.gate.reasons),
            )

    def reload(self) -> None:
        try:
            new = load_settings(self.options.config_path)
        except MmbotError as exc:
            log.error("config_reload_refused", error=str(exc))
            return
        engine = self.state.built.engine
        engine.model = build_model(new, self.state.built.instrument)
        self.settings = new
        self.state.settings = new
        log.info("config_reloaded", config_path=self.options.config_path)

    def _drain(self) -> None:
        engine = self.state.built.engine
        if engine.events:
            for observer in self.state.observers:
                observer(engine.events)
            engine.events.clear()

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
        for event in iter_capture(opts.paths, built, stats, opts.loop):
            if event is None:
                self._seam()
                continue
            ts = event.ts_local_ns
            if cap0 is None:
                cap0 = ts
            if speed > 0:
                target = wall0 + (ts - cap0) / 1e9 / speed
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            step(event)
            if engine.events:
                self._drain()
            count += 1
            if count & 1023 == 0 or speed > 0:
                if speed == 0 and count & 1023 == 0:
                    await asyncio.sleep(0)
                state.last_event_wall = time.monotonic()
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
        engine = self.state.built.engine
        inst = engine.instrument
        mid = engine.mid_ticks
        bid = engine.quoted_bid
        ask = engine.quoted_ask
        def fmt(t: float | None) -> str:
            return "-" if t is None else str(inst.price(int(t)))

        return (
            f"mid {fmt(mid)}  quotes {fmt(bid)} / {fmt(ask)}  pos {inst.qty(engine.ledger.position_lots)} {inst.base}  "
            f"pnl {engine.net_pnl():.2f} {inst.quote_ccy}  fills {engine.ledger.bid_fills}b/{engine.ledger.ask_fills}a  "
            f"state {engine.gate.state.name}{' ' + ','.join(engine.gate.reasons) if engine.gate.reasons else ''}"
            f"{'  KILL SWITCH' if engine.gate.kill_switch_engaged else ''}"
        )

    def finish(self) -> dict[str, Any]:
        """Stop quoting, cancel everything, confirm, build and write the summary."""
        built = self.state.built
        engine = built.engine
        session = built.session
        session.operator(engine.cancel_everything(session.now_ns, "shutdown"))
        # Let in-flight cancels (latency) reach the venue: advance capture time.
        for _ in range(100):
            due = built.venue.next_due_ns
            if due is None:
                break
            session.drain_until(due)
        self._drain()
        wall = time.monotonic() - self.state.started_wall
        stats = self.state.read_stats
        summary = build_summary(
            engine,
            run_id=self.run_id,
            wall_seconds=wall,
            open_orders=len(built.venue.open_order_ids()),
            extra={
                "mode": self.settings.mode,
                "fill_model": self.settings.sim.fill_model,
                "stop_reason": self.state.stop_reason,
                "loops": self.state.loops,
                "garbage_lines": stats.garbage_lines + session.garbage_injected,
                "backwards_timestamps": stats.backwards_ts,
                "truncated_files": stats.truncated_files,
                "book_gaps": engine.book.gap_count,
                "snapshot_requests": session.snapshot_requests,
            },
        )
        self.state.summary = summary
        if self.options.summary_json:
            write_json_atomic(self.options.summary_json, summary)
        return summary


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(target)


async def run_paper(runner: Runner, emit_status: Callable[[str], None], extra_tasks: list[Any] | None = None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    state = runner.state

    def on_stop(signame: str) -> None:
        log.warning("shutdown_requested", signal=signame)
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
            for factory in extra_tasks or []:
                tg.create_task(factory(state))
            await replay
            if runner.options.status:
                status.cancel()
            state.stop.set()
    finally:
        for sig in handlers:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    return runner.finish()
