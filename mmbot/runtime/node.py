"""The Node: the one run lifecycle of every mode.

A node owns its lanes (one per symbol: the engine and the path of its data and
commands), the loop, the signal table, the operator controls, the observers' event
buses, the phased shutdown and the summary. What differs between modes is plugged
into its ports (:mod:`mmbot.runtime.ports`) by the composition root
(:mod:`mmbot.wiring`): the market source, the execution venue and the clock.

Loop: one ``asyncio.TaskGroup`` (under uvloop) holds the market source, the timer
(live sources: watchdogs and the venue's queues every ``run.timer_interval_ms``), the
status line, the venue's tasks (user streams, reconciliation), the services
(metrics server, admin endpoint, journal writer; each exits once ``stop`` is set),
the operator controls and the stopper (signals, ``--duration``). A backtest runs the
same lanes, observers and summary without an event loop (:meth:`Node.run_sync`).

Signals: SIGINT/SIGTERM stop, SIGUSR1 toggles the kill switch, SIGHUP reloads the
config (strategy and risk; a refused reload keeps the old config).

Phased shutdown: the data stops -> (replay) market data still in flight is delivered
-> every engine cancels everything and the venue confirms (the simulated venue at
once, an exchange by repeated cancel-all until it lists none of our orders, within
``risk.shutdown_deadline_s``) -> the summary and the run record -> ``stop`` is set and
the services close within what is left of the deadline -> the journal is sealed.

Observers subscribe to a lane's :class:`~mmbot.domain.engine_events.EventBus` (by
event type or per batch). The node publishes each engine's new events after every
step; when a step journaled a fill, a risk change or a signal, the next event waits
until the journal has them on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from mmbot.config.settings import Settings
from mmbot.domain.engine_events import EventBus
from mmbot.domain.events import ClockJump, FeedSignal, MarketEvent
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Command
from mmbot.domain.risk import RiskReason
from mmbot.engine.engine import Engine
from mmbot.engine.summary import build_summary
from mmbot.errors import JournalError, MmbotError
from mmbot.observability import counters
from mmbot.risk.gate import RiskConfig
from mmbot.runtime.controls import HOT_RELOAD_SECTIONS, Controls, ControlTarget
from mmbot.runtime.journal import Journal
from mmbot.runtime.ports import Clock, ExecutionVenue, Lane, MarketSource
from mmbot.runtime.record import run_fields, write_l2_record
from mmbot.runtime.run_file import RunFile
from mmbot.runtime.status_line import iso_utc, status_line
from mmbot.runtime.views import OperatorViews
from mmbot.strategy.model import QuoteModel

log = structlog.get_logger("mmbot.runner")

FEED_FIELDS = ("feed_snapshots", "feed_deltas", "feed_gaps", "feed_disconnects", "feed_silences", "feed_resyncs", "feed_last_outage_s")

Service = Callable[["Node"], Coroutine[Any, Any, None]]


class Node:
    def __init__(
        self,
        settings: Settings,
        run_id: str,
        *,
        source: MarketSource,
        venue: ExecutionVenue,
        clock: Clock,
        mode: str,
        rebuild: Callable[[Settings, Instrument], tuple[QuoteModel, RiskConfig]],
        duration_s: float | None = None,
        status: bool = False,
        emit: Callable[[str], None] | None = None,
        config_path: str | None = None,
        extra_fields: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        self.source = source
        self.venue = venue
        self.clock = clock
        self.mode = mode
        self.rebuild = rebuild
        self.duration_s = duration_s
        self.status = status
        self.emit = emit or (lambda _text: None)
        self.config_path = config_path  # re-read on SIGHUP
        self.extra_fields = dict(extra_fields or {})  # summary fields of the command (e.g. break-even flags)
        self.extra_fields.setdefault("market_recording", None)  # live-fed runs: the recording's path and hash
        self.lanes: dict[str, Lane] = {}
        self.buses: dict[str, EventBus] = {}
        self._single: tuple[Lane, Engine, EventBus] | None = None
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.exit_code = 0
        self.done = False
        self.started = time.monotonic()
        self.last_event_wall = 0.0
        # Tick-to-quote timing of the step whose events are being published
        # (time.perf_counter_ns at event receipt and when the step returned; 0 = not a step).
        self.md_receipt_ns = 0
        self.step_done_ns = 0
        self.journal: Journal | None = None
        self.recorders: list[Any] = []  # run-record samplers by lane; the first one is written
        self.write_record = True  # False: the samplers only feed the summary's figures (the L2 optimiser)
        self.services: list[Service] = []  # metrics server, admin endpoint, journal writer
        self.on_finish: list[Callable[[dict[str, Any]], None]] = []  # e.g. the fills file
        self.record_out: str | None = None
        self.fill_log: Any = None  # mmbot.runtime.fill_log.FillLog with --fills-json
        self.metrics_server: Any = None  # mmbot.observability.server.MetricsServer when metrics.enabled
        self.run_file: RunFile | None = None  # written when the loop starts, removed at stop (mmbot ctl)
        self.views: OperatorViews | None = None  # mmbot ctl orders/fills/pnl through the admin endpoint
        # Live sources: the observers open once the lanes exist (set by the composition root).
        self.open_observers: Callable[[Node], None] | None = None
        self.record_dir: Any = None
        # Live sources: every market event received, in the capture format (mmbot.runtime.market_record).
        self.market_recording: Any = None
        self.summary: dict[str, Any] | None = None
        self._deferred: list[tuple[str, list[Command]]] = []
        self.target = NodeTarget(self)
        self.controls = Controls(self.target)
        self.opened = False
        venue.bind(self)

    # --- lanes -----------------------------------------------------------------------------
    def open_lanes(self, instruments: dict[str, Instrument]) -> None:
        for instrument in instruments.values():
            lane = self.venue.open_lane(instrument)
            symbol = instrument.symbol
            self.lanes[symbol] = lane
            self.buses[symbol] = EventBus()
            counters.add_market_data_source(symbol, lane.market_data_rejections)
        self.venue.after_lanes(self.lanes)
        if len(self.lanes) == 1:
            lane = next(iter(self.lanes.values()))
            self._single = (lane, lane.engine, self.buses[lane.instrument.symbol])
        self.opened = True

    @property
    def engines(self) -> list[Engine]:
        return [lane.engine for lane in self.lanes.values()]

    # --- events ----------------------------------------------------------------------------
    def publish(self) -> None:
        """Each engine's new events to its bus (journal, metrics, run record, fill log)."""
        for symbol, lane in self.lanes.items():
            engine = lane.engine
            if engine.has_events:
                self.buses[symbol].publish(engine.drain_events())

    def durable(self) -> Awaitable[None] | None:
        journal = self.journal
        return journal.durable() if journal is not None else None

    async def durable_publish(self) -> None:
        self.publish()
        barrier = self.durable()
        if barrier is not None:
            await barrier

    def step(self, event: MarketEvent | ClockJump) -> bool:
        """A replayed event (synchronous); True when it produced events (published)."""
        single = self._single
        if single is None:  # a replay trades one symbol; a clock jump concerns them all
            lane = next(iter(self.lanes.values())) if type(event) is ClockJump else self.lanes[event.symbol]  # type: ignore[union-attr]
            engine = lane.engine
        else:
            lane, engine, _bus = single
        if type(event) is ClockJump:
            lane.on_jump(event)
        else:
            received = time.perf_counter_ns()
            lane.on_market(event, event.ts_local_ns)  # type: ignore[arg-type]
            if not engine.has_events:
                return False
            self.md_receipt_ns = received
            self.step_done_ns = time.perf_counter_ns()
        if not engine.has_events:
            return False
        self.publish()
        self.md_receipt_ns = 0
        if self.journal is not None and not self.opened_async:
            self.journal.flush_sync()
        return True

    opened_async = False  # a backtest's journal is flushed synchronously after each batch

    async def on_item(self, item: MarketEvent | FeedSignal) -> None:
        """A live feed's message or signal."""
        lane = self.lanes.get(item.symbol)
        if lane is None:
            return
        now = self.clock.now_ns()
        if isinstance(item, FeedSignal):
            # Journaled as received: mmbot rerun feeds the signal to the engine again at this time.
            self.note("feed_signal", {"symbol": item.symbol, "kind": item.kind, "detail": item.detail[:200],
                                      "outage_s": round(item.outage_s, 6), "received_ns": now})
            if item.kind == "resynced" and item.outage_s > 0:
                counters.websocket_reconnected(item.symbol)  # back after a drop or a rebuilt client
            commands = lane.on_signal(item, now)
        else:
            self.md_receipt_ns = time.perf_counter_ns()
            self.last_event_wall = time.monotonic()
            recording = self.market_recording
            if recording is not None:
                recording.write(item, now)
            commands = lane.on_market(item, now)
            self.step_done_ns = time.perf_counter_ns()
        if commands or not self.venue.synchronous:
            await self.venue.send(lane, commands, now)
        await self.durable_publish()
        self.md_receipt_ns = 0
        self.controls.beat()  # the dead-man's sign of life

    def apply_input(self, item: Any) -> None:
        """A recorded run's feed signal or venue risk input (``mmbot rerun``), at its time.

        ``feed_signal``: the lane handles it as the live feed's signal (books invalidated,
        BOOK_GAP or STALE_BOOK raised); ``venue_risk``: raised as the exchange venue raised
        it, or cleared as its watchdog rule clears it (after the calm period).
        """
        p = item.payload
        t = item.ts_ns
        lanes = [self.lanes[p["symbol"]]] if p.get("symbol") in self.lanes else list(self.lanes.values())
        for lane in lanes:
            t = max(t, lane.now_ns)
            if item.kind == "feed_signal":
                signal = FeedSignal(kind=p["kind"], symbol=lane.instrument.symbol, ts_ns=t, detail=p.get("detail", ""),
                                    outage_s=float(p.get("outage_s", 0.0)))
                lane.act(lane.on_signal(signal, t), t)
            elif item.kind == "venue_risk":
                reason = RiskReason(p["reason"])
                engine = lane.engine
                commands = engine.raise_reason(reason, t, p.get("cause", "")) if p["raised"] else engine.watchdog(reason, False, t, p.get("cause", ""))
                lane.act(commands, t)
        self.publish()

    def seam(self) -> None:
        for lane in self.lanes.values():
            lane.seam(lane.now_ns)
        self.publish()
        log.info("replay_looped", loop=self.source.loops, note="book rebuilt from the capture snapshot; price jumps at the seam")

    def beat(self) -> None:
        self.last_event_wall = time.monotonic()
        self.controls.beat()

    # --- operator actions ------------------------------------------------------------------
    def note(self, kind: str, payload: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.note(kind, payload, self.now_ns())

    def now_ns(self) -> int:
        """The engines' clock: replay time of the (first) session, the wall clock live."""
        if self.source.kind == "replay" and self.lanes:
            return next(iter(self.lanes.values())).now_ns
        return self.clock.now_ns()

    def act(self, engine: Engine, commands: list[Command]) -> None:
        """An operator's commands: at once on the simulated venue, queued for an exchange."""
        if not commands:
            return
        symbol = engine.instrument.symbol
        lane = self.lanes[symbol]
        if self.venue.synchronous:
            lane.act(commands, lane.now_ns if self.source.kind == "replay" else self.clock.now_ns())
            self.publish()
        else:
            self._deferred.append((symbol, commands))

    def take_deferred(self) -> list[tuple[str, list[Command]]]:
        deferred, self._deferred = self._deferred, []
        return deferred

    async def send_deferred(self) -> None:
        if not self.venue.synchronous:
            await self.venue.send(None, [], self.clock.now_ns())  # type: ignore[arg-type]  # drains the queue
        self.publish()

    def toggle_kill_switch(self) -> None:
        engaged = not self.controls.kill_engaged()
        self.note("signal", {"action": "kill_switch", "engaged": engaged, "source": "SIGUSR1"})
        self.controls.set_kill_switch(engaged, "SIGUSR1")

    def set_kill_switch(self, engaged: bool, source: str) -> None:
        self.note("signal", {"action": "kill_switch", "engaged": engaged, "source": source})
        self.controls.set_kill_switch(engaged, source)

    def reload(self) -> None:
        # Validated like a start-up config; a refused reload keeps the old config (controls.py).
        if self.controls.reload():
            self.note("signal", {"action": "reload", "signal": "SIGHUP", "result": "reloaded"})
        else:
            self.note("signal", {"action": "reload", "signal": "SIGHUP", "result": "refused", "error": self.controls.last_reload_error})

    def request_stop(self, why: str) -> None:
        log.warning("shutdown_requested", signal=why)
        self.note("signal", {"action": "shutdown", "signal": why})
        self.stop_reason = why
        self.stop.set()

    def on_journal_failure(self, exc: JournalError) -> None:
        """The journal cannot write: halt every engine (JOURNAL_FAILURE) and stop; exit 3."""
        cause = str(exc)[:200]
        for lane in self.lanes.values():
            now = lane.now_ns
            self.act(lane.engine, lane.engine.raise_reason(RiskReason.JOURNAL_FAILURE, now, cause))
        self.stop_reason = "journal_failure"
        self.exit_code = JournalError.exit_code
        if self.opened_async:
            self.stop.set()  # a backtest runs on, halted, to the end of its data

    def open_orders(self) -> int:
        return self.venue.open_orders()

    def ready_checks(self) -> list[Callable[[], str | None]]:
        """Readiness: the run is running, every book is synced, the venue is connected."""

        def running() -> str | None:
            if self.done or self.stop.is_set():
                return f"run stopped ({self.stop_reason or 'stopping'})"
            return None

        def books_synced() -> str | None:
            waiting = [sym for sym, lane in self.lanes.items() if not lane.book.is_synced]
            return f"order book not synced: {', '.join(waiting)}" if waiting else None

        return [running, books_synced, self.venue.ready]

    def status_text(self, *, final: bool = False) -> str:
        """The status line (mmbot.runtime.status_line); ``final``: the one written at stop."""
        progress = self.source.progress(self.now_ns()) if self.source.kind == "replay" and self.lanes else None
        return status_line(self.engines, wall_ns=time.time_ns(), progress=progress,
                           stopped=(self.stop_reason or "end") if final else None)

    def announce(self, **fields: Any) -> None:
        """Write (or update) the run file, if this run keeps one (mmbot.runtime.run_file)."""
        run_file = self.run_file
        if run_file is None:
            return
        try:
            if run_file.written:
                run_file.update(**fields)
                return
            metrics = self.metrics_server
            run_file.write(
                mode=self.mode, symbols=list(self.lanes), started_at=iso_utc(time.time_ns()), cwd=os.getcwd(),
                config_path=self.config_path, data=self.source.describe(),
                metrics=None if metrics is None else {"host": self.settings.metrics.host, "port": metrics.port},
                admin=run_file.info.get("admin"), **fields,
            )  # fmt: skip
        except OSError as exc:
            # A convenience for mmbot ctl and kill, never a reason to stop trading: logged once.
            log.error("run_file_unavailable", dir=str(run_file.directory), error=str(exc),
                      hint="set run.dir to a writable directory; SIGUSR1 and the admin port still work")
            self.run_file = None

    # --- tasks -----------------------------------------------------------------------------
    async def timer(self) -> None:
        interval = self.settings.run.timer_interval_ms / 1000.0
        venue = self.venue
        while True:
            await asyncio.sleep(interval)
            now = self.clock.now_ns()
            await venue.pump(now)
            for lane in self.lanes.values():
                commands = lane.on_timer(now)
                if commands:
                    await venue.send(lane, commands, now)
            await self.durable_publish()
            self.controls.beat()  # the quoting loop ran: the dead-man's sign of life

    async def status_task(self) -> None:
        while not self.done:
            await asyncio.sleep(self.settings.run.status_interval_s)
            if not self.done:
                self.emit(self.status_text())

    async def stopper(self) -> None:
        if self.duration_s is None:
            await self.stop.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.duration_s):
                await self.stop.wait()
        if not self.stop.is_set():
            self.stop_reason = self.stop_reason or "duration"
            self.stop.set()

    def install_signals(self, loop: asyncio.AbstractEventLoop) -> dict[signal.Signals, Callable[[], None]]:
        handlers: dict[signal.Signals, Callable[[], None]] = {
            signal.SIGINT: lambda: self.request_stop("SIGINT"),
            signal.SIGTERM: lambda: self.request_stop("SIGTERM"),
            signal.SIGUSR1: self.toggle_kill_switch,
            signal.SIGHUP: self.reload,
        }
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        return handlers

    # --- the run ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Live sources: markets from the venue, the venue connected, the lanes opened."""
        instruments = await self.source.start()
        await self.venue.connect(instruments)
        self.open_lanes(instruments)

    async def run(self) -> dict[str, Any]:
        """The whole run; returns the summary."""
        self.opened_async = True
        loop = asyncio.get_running_loop()
        handlers = self.install_signals(loop)
        try:
            try:
                if not self.opened:
                    await self.start()
                if self.open_observers is not None:
                    opener, self.open_observers = self.open_observers, None
                    opener(self)
                log.info("run_started", mode=self.mode, symbols=list(self.lanes), data=self.source.describe(), venue=self.venue.kind)
                self.announce()
                async with asyncio.TaskGroup() as tg:
                    await self._supervise(tg)
            except* MmbotError as group:
                # A configuration problem found while streaming (unknown symbol, no order
                # books in ccxt): one line and its exit status, not a traceback.
                raise group.exceptions[0] from None
        finally:
            if self.run_file is not None:
                self.run_file.remove()
            for sig in handlers:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            await self.source.close()
            await self.venue.close()
            recording = self.market_recording
            if recording is not None and recording.closed is None:
                with contextlib.suppress(OSError):
                    recording.close()  # a run that failed: the file is still a valid gzip
        summary = self.summary or {}
        self.seal(summary)
        return summary

    async def _supervise(self, tg: asyncio.TaskGroup) -> None:
        data = tg.create_task(self.source.run(self))
        workers: list[asyncio.Task[Any]] = [data]
        if self.source.kind == "live":
            workers.append(tg.create_task(self.timer()))
        if self.status:
            workers.append(tg.create_task(self.status_task()))
        workers += [tg.create_task(coro) for coro in self.venue.tasks(self)]
        services = [tg.create_task(service(self)) for service in self.services]
        services.append(tg.create_task(self.controls.run()))
        stopper: asyncio.Task[Any] = tg.create_task(self.stopper())
        workers.append(stopper)
        await asyncio.wait({data, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if data.done() and not data.cancelled() and data.exception() is None:
            self.stop_reason = self.stop_reason or data.result() or "end"
        else:
            self.stop_reason = self.stop_reason or "end"
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for task in workers:
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc
        shutdown_started = time.monotonic()
        self.summary = await self.finish()
        self.stop.set()
        deadline = self.settings.risk.shutdown_deadline_s - (time.monotonic() - shutdown_started)
        _, late = await asyncio.wait(services, timeout=max(deadline, 0.0))
        for task in late:
            task.cancel()
        if late:
            log.error("shutdown_deadline_exceeded", deadline_s=self.settings.risk.shutdown_deadline_s, tasks_cancelled=len(late))
        log.info("shutdown_phase", phase="closed", elapsed_ms=round((time.monotonic() - shutdown_started) * 1000, 1))

    async def finish(self) -> dict[str, Any]:
        """Stop quoting, cancel everything until the venue confirms, build the summary."""
        log.info("shutdown_phase", phase="halted", stop_reason=self.stop_reason)
        self.end_of_data()
        left = await self.venue.finish(self.lanes, self.settings.risk.shutdown_deadline_s)
        await self.durable_publish()
        log.info("shutdown_phase", phase="cancelled", open_orders=left)
        self.close_recording()
        summary = self.summarise(left)
        if self.status:
            self.emit(self.status_text(final=True))  # the position the run ends with, flat or not
        return summary

    def close_recording(self) -> None:
        """The market recording closed and hashed into the journal (``audit verify`` checks it)."""
        recording = self.market_recording
        if recording is None:
            return
        try:
            closed = recording.close()
        except OSError as exc:
            log.error("market_recording_failed", path=str(recording.path), error=str(exc))
            self.note("market_recording_failed", {"path": str(recording.path), "error": str(exc)[:200]})
            return
        self.note("market_recording_closed", closed)
        self.extra_fields["market_recording"] = {k: closed[k] for k in ("path", "sha256", "lines", "bytes")}
        log.info("market_recording_closed", path=closed["path"], lines=closed["lines"], sha256=closed["sha256"][:16])

    def end_of_data(self) -> None:
        if self.source.kind == "replay":
            for lane in self.lanes.values():
                flush = getattr(lane, "session", None)
                if flush is not None:
                    flush.flush()  # market data still in flight reaches the engine first
        self.publish()

    def run_sync(self) -> dict[str, Any]:
        """A backtest: the replay at once, no event loop; returns the summary."""
        self.stop_reason = self.source.run_sync(self)  # type: ignore[attr-defined]
        self.end_of_data()
        left = self.venue.finish_now("end_of_data")  # type: ignore[attr-defined]
        self.publish()
        self.summary = self.summarise(left)
        return self.summary

    # --- summary ---------------------------------------------------------------------------
    def lane_summary(self, lane: Lane, left: int, wall: float) -> dict[str, Any]:
        s = self.settings
        symbol = lane.instrument.symbol
        feed = self.source.feed_fields(symbol)
        recorder = lane.recorder
        return build_summary(
            lane.engine,
            run_id=self.run_id,
            wall_seconds=wall,
            open_orders=left,
            metrics=recorder.performance().fields() if recorder is not None else None,
            extra={
                "mode": self.mode,
                "fill_model": s.sim.fill_model,
                "exchange": s.exchange.id,
                "stop_reason": self.stop_reason or "end",
                "loops": self.source.loops,  # replays: passes of a looped capture; live: 0
                **lane.data_fields(self.source.stats),
                "venue_rejections": self.venue.rejections(lane),  # type: ignore[attr-defined]
                **self.venue.balances(),  # type: ignore[attr-defined]
                **{name: feed.get(name, 0) for name in FEED_FIELDS},
                "venue": self.venue.summary_fields(lane, left),
                **run_fields(s, self.source.describe() if self.source.kind == "replay" else self.source.kind),
                **self.extra_fields,
            },
        )

    def summarise(self, left: int) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        per_symbol = {symbol: self.lane_summary(lane, max(left, 0) if not self.venue.synchronous else lane.open_orders(), wall)
                      for symbol, lane in self.lanes.items()}
        if not per_symbol:
            return {"run_id": self.run_id, "stop_reason": self.stop_reason, "symbols": {}}
        first = next(iter(per_symbol.values()))
        first_lane = next(iter(self.lanes.values()))
        if first_lane.recorder is not None and self.write_record:
            self.record_dir = write_l2_record(self.settings, first, [first_lane.recorder], self.record_out)
        summary = dict(first)
        if len(per_symbol) > 1:
            summary["symbols"] = per_symbol
        for hook in self.on_finish:
            hook(summary)
        gaps, book_gaps = summary.get("data_sequence_gaps"), summary.get("book_gaps")
        if gaps or book_gaps:
            log.warning("capture_sequence_gaps", data_gaps=gaps, book_gaps=book_gaps, snapshot_requests=summary.get("snapshot_requests"))
        self.done = True
        return summary

    def seal(self, summary: dict[str, Any]) -> JournalError | None:
        journal = self.journal
        if journal is None:
            return None
        lane = next(iter(self.lanes.values()), None)
        replay = self.source.kind == "replay"
        mark = lane.engine.mark_ticks() if lane is not None and replay else None
        ts = lane.now_ns if lane is not None and replay else self.clock.now_ns()
        error = journal.seal(summary, self.stop_reason or "end", mark, ts)
        self.journal = None
        if error is not None:
            self.exit_code = JournalError.exit_code
        return error


class NodeTarget(ControlTarget):
    """What the operator controls act on: the node's engines, its clock and venue."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.run_id = node.run_id

    @property
    def settings(self) -> Settings:
        return self.node.settings

    @property
    def config_path(self) -> str | None:
        return self.node.config_path

    def engines(self) -> list[Engine]:
        return self.node.engines

    def now_ns(self) -> int:
        return self.node.now_ns()

    def act(self, engine: Engine, commands: list[Command]) -> None:
        self.node.act(engine, commands)

    def open_orders(self) -> int:
        return self.node.open_orders()

    def drain(self) -> None:
        self.node.publish()

    async def flush(self) -> None:
        await self.node.send_deferred()

    def merge_settings(self, loaded: Settings) -> Settings:
        if self.node.source.kind == "replay":
            return loaded
        # Live: only the hot sections; mode, symbols, secrets and data source stay as started.
        return self.node.settings.model_copy(update={s: getattr(loaded, s) for s in HOT_RELOAD_SECTIONS})

    def needs_restart(self, loaded: Settings) -> list[str]:
        if self.node.source.kind == "live":
            # A live run always takes its market data live and its keys from the start-up
            # environment or secrets file: those differences are not changes to the file.
            old = self.node.settings
            keys = {"api_key": old.exchange.api_key, "secret": old.exchange.secret}
            loaded = loaded.model_copy(update={
                "data": loaded.data.model_copy(update={"source": old.data.source}),
                "exchange": loaded.exchange.model_copy(update=keys),
            })  # fmt: skip
        return super().needs_restart(loaded)

    def apply_settings(self, new: Settings) -> None:
        self.node.settings = new

    def rebuild(self, new: Settings, instrument: Instrument) -> tuple[QuoteModel, RiskConfig]:
        return self.node.rebuild(new, instrument)

    @property
    def done(self) -> bool:
        return self.node.done

    @property
    def stopping(self) -> bool:
        return self.node.stop.is_set()

    @property
    def stop_reason(self) -> str:
        return self.node.stop_reason
