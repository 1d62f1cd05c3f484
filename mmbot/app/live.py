"""The live driver: market data through ccxt.pro, paper execution on SimVenue.

``mmbot run --mode paper --exchange binance --symbols BTC/USDT`` with
``data.source: live``. One ``asyncio.TaskGroup`` owns the feed
(:class:`~mmbot.marketdata.feeds.live.LiveFeed`), the timer (watchdogs, every
``run.timer_interval_ms``), the status line, the stop waiter (signals,
``--duration``) and the operator controls of :mod:`mmbot.app.controls` (the same
ones the replay runner has, applied to every symbol's engine): the kill switch file
(``risk.kill_switch_file``), the LOOP_LAG and DEAD_MAN watchdogs (the timer and the
market data beat the dead-man), confirmation of zero open orders after the kill
switch, SIGHUP reload (strategy and risk sections; a refused reload keeps the old
config) and the admin endpoint for ``mmbot ctl`` when ``MMBOT_ADMIN__TOKEN`` is set.

Per symbol, paper trading runs the replay's kernel (``mmbot.app.wiring.build_replay``):
the engine with its own book, a :class:`~mmbot.sim.venue.SimVenue` with the exchange's
true book and the run's wallet, and the :class:`~mmbot.engine.session.ReplaySession`
that steps them, fed the feed's events at their wall-clock receive times (the same
validation, latency model, resync path and fills as a backtest). The sandbox runner
(mmbot.app.sandbox) reuses the feed, controls and journal here with its own executor;
the non-paper branches below (``submit``/``drain``/``advance`` on ``slot.executor``)
are its path. Time is the wall clock in ns.

Feed health reaches the risk gate: a sequence gap raises BOOK_GAP, a dropped or
silent connection raises STALE_BOOK (both HALT and cancel resting orders); the
engine clears them once the resynced book updates again and the calm period passed.
The engine's own watchdogs (``risk.stale_book_ms``, ``risk.feed_silent_ms``) fire
from the timer when a feed freezes without any error.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from rich.console import Console

from mmbot import __version__
from mmbot.adapters.ccxt.exchange import ExchangeParams
from mmbot.app import hooks_admin, run_record, wiring
from mmbot.app.console import print_summary
from mmbot.app.controls import Controls, LiveTarget
from mmbot.app.live_journal import LiveJournal
from mmbot.app.run_support import paper_summary, write_json_atomic
from mmbot.app.settings import Settings, config_hash
from mmbot.app.status_line import status_line
from mmbot.domain.engine_events import EngineEvent
from mmbot.domain.events import BookDelta, BookSnapshot, MarketEvent
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Command
from mmbot.domain.risk import RiskReason
from mmbot.engine.engine import Engine
from mmbot.errors import ConfigError, JournalError, MmbotError, TemporaryVenueError
from mmbot.execution.paper import PaperExecutor
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.capture import ReadStats
from mmbot.marketdata.feeds.live import FeedConfig, FeedSignal, LiveFeed
from mmbot.marketdata.validate import MarketDataValidator, merge_counts
from mmbot.observability import counters

if TYPE_CHECKING:
    from mmbot.app.wiring import Built

log = structlog.get_logger("mmbot.live")


@dataclass
class Slot:
    """Everything one symbol needs."""

    instrument: Instrument
    book: L2Book
    engine: Engine
    executor: PaperExecutor | Any  # the sandbox runner plugs in its CcxtExecutor (mmbot.app.sandbox)
    signals: dict[str, int] = field(default_factory=dict)
    # The market-data rules (mmbot.marketdata.validate), one set of counters per symbol.
    validator: MarketDataValidator = field(default_factory=MarketDataValidator)
    # Paper trading: the same kernel as a replay (engine + simulated venue with its own
    # book, stepped by the session with the feed's events); None on sandbox/live.
    built: Built | None = None
    recorder: Any = None  # the run record's sampler (mmbot report), when record.enabled
    # Subscribers to the engine's drained event batches (metrics).
    observers: list[Callable[[list[EngineEvent], int, int], None]] = field(default_factory=list)
    md_receipt_ns: int = 0  # perf_counter_ns of the market-data message being processed

    def market_data_rejections(self) -> dict[str, int]:
        return merge_counts(self.validator.counts, {"crossed_book": self.book.crossed_count})

    def publish(self, events: list[EngineEvent]) -> None:
        if events:
            done = time.perf_counter_ns()
            for observer in self.observers:
                observer(events, self.md_receipt_ns, done)


def exchange_params(settings: Settings) -> ExchangeParams:
    return ExchangeParams.from_settings(settings.exchange)


def feed_config(settings: Settings) -> FeedConfig:
    ex = settings.exchange
    return FeedConfig(
        watch_timeout_s=ex.watch_timeout_s,
        reconnect_initial_s=ex.reconnect_initial_s,
        reconnect_max_s=ex.reconnect_max_s,
        bids_asks=ex.watch_bids_asks,
    )


class LiveRunner:
    def __init__(self, settings: Settings, run_id: str, *, duration_s: float | None, status: bool,
                 emit: Callable[[str], None], config_path: str | None = None) -> None:
        self.settings = settings
        self.run_id = run_id
        self.config_path = config_path  # re-read on SIGHUP
        self.duration_s = duration_s
        self.status = status
        self.emit = emit
        self.slots: dict[str, Slot] = {}
        self.stop = asyncio.Event()
        self.stop_reason = ""
        self.started = time.monotonic()
        self.last_event_wall = 0.0
        self.servers: list[Any] = []
        self.feed = LiveFeed(exchange_params(settings), settings.symbols, feed_config(settings), self.on_feed)

        self.global_limit = wiring.build_global_limit(settings)  # one limit across every symbol
        # One paper account across every symbol (a shared quote asset is spent once);
        # the sandbox runner trades against the exchange's balances instead.
        self.wallet = wiring.build_wallet(settings)
        # Operator commands (kill switch, watchdogs) per symbol, sent by send_deferred.
        self._deferred: list[tuple[str, list[Command]]] = []

        # Kill switch, reload, loop-lag and dead-man watchdogs (mmbot/app/controls.py).
        self.controls = Controls(LiveTarget(self))
        self.journal: LiveJournal | None = None  # audit.enabled: opened once the symbols are known
        self.recorders: list[Any] = []  # run record samplers (paper), the first one is written

    # --- wiring ---------------------------------------------------------------------------
    def build_slot(self, instrument: Instrument) -> Slot:
        """Paper trading on a live feed: the replay's kernel (mmbot.app.wiring.build_replay),
        the same engine, venue class, config and session, stepped with the feed's events."""
        s = self.settings
        built = wiring.build_replay(s, self.run_id, instrument=instrument, global_limit=self.global_limit, wallet=self.wallet)
        slot = Slot(instrument=instrument, book=built.engine.book, engine=built.engine, executor=PaperExecutor(built.venue),
                    validator=built.session.validator, built=built)
        make_recorder = run_record.recorder_factory(s, self.recorders)
        if make_recorder is not None:
            slot.recorder = make_recorder(built.engine)
            on_events = slot.recorder.on_events
            slot.observers.append(lambda events, _receipt, _done: on_events(events))
        counters.add_market_data_source(instrument.symbol, slot.market_data_rejections)
        return slot

    # --- events ---------------------------------------------------------------------------
    async def on_feed(self, item: MarketEvent | FeedSignal) -> None:
        now = time.time_ns()
        slot = self.slots.get(item.symbol)
        if slot is None:
            return
        engine = slot.engine
        if slot.built is not None:
            await self._on_paper_feed(slot, item, now)
            return
        if isinstance(item, FeedSignal):
            slot.signals[item.kind] = slot.signals.get(item.kind, 0) + 1
            if item.kind == "gap":
                slot.book.invalidate()
                await self.submit(slot, engine.raise_reason(RiskReason.BOOK_GAP, now, item.detail), now)
            elif item.kind in ("down", "silent"):
                slot.book.invalidate()
                await self.submit(slot, engine.raise_reason(RiskReason.STALE_BOOK, now, item.detail), now)
            elif item.kind == "resynced" and item.outage_s > 0:
                counters.websocket_reconnected(item.symbol)  # back after a drop or a rebuilt client
            self.observe()
            return
        slot.md_receipt_ns = time.perf_counter_ns()
        self.last_event_wall = time.monotonic()
        if slot.recorder is not None and item.ts_local_ns >= slot.recorder.next_ns:
            slot.recorder.advance(item.ts_local_ns)
        # The same market-data rules as a replay (mmbot.marketdata.validate): a message that
        # breaks one is counted and goes no further.
        if not slot.validator.check(item, slot.book):
            self.controls.beat()
            return
        if isinstance(item, BookSnapshot):
            slot.book.apply_snapshot(item)
        elif isinstance(item, BookDelta):
            result = slot.book.apply_delta(item)
            if result is ApplyResult.GAP or result is ApplyResult.CROSSED:
                # A gap should not happen (the feed chains ids itself); a crossed book is not
                # believed. Either way: a fresh snapshot, the gate holds until it is valid.
                log.warning("book_invalid", symbol=item.symbol, result=result.value, first_update_id=item.first_update_id)
                slot.validator.reset_symbol(item.symbol)
                self.feed.request_resync(item.symbol)
        slot.executor.on_market(item)
        await self.drain(slot, now)
        await self.submit(slot, engine.on_market(item, now), now)
        self.observe()
        slot.md_receipt_ns = 0
        self.controls.beat()  # the dead-man's sign of life

    async def _on_paper_feed(self, slot: Slot, item: MarketEvent | FeedSignal, now: int) -> None:
        """Paper: feed health to the gate, market data through the session (validation,
        the venue's true book, the engine's own book with its resync path), as on a replay."""
        built = slot.built
        assert built is not None
        session = built.session
        engine = slot.engine
        if isinstance(item, FeedSignal):
            slot.signals[item.kind] = slot.signals.get(item.kind, 0) + 1
            if item.kind in ("gap", "down", "silent"):
                session.invalidate_books()
                reason = RiskReason.BOOK_GAP if item.kind == "gap" else RiskReason.STALE_BOOK
                session.act(engine.raise_reason(reason, max(now, session.now_ns), item.detail), now)
            elif item.kind == "resynced" and item.outage_s > 0:
                counters.websocket_reconnected(item.symbol)
            self.observe()
            return
        slot.md_receipt_ns = time.perf_counter_ns()
        self.last_event_wall = time.monotonic()
        if item.ts_local_ns < session.now_ns:
            # The feed's loops stamp their own receive times: the session's clock never goes back.
            item = item._replace(ts_local_ns=session.now_ns)
        recorder = slot.recorder
        if recorder is not None and item.ts_local_ns >= recorder.next_ns:
            recorder.advance(item.ts_local_ns)
        venue_gaps = session.venue_gaps
        session.step(item)
        if session.venue_gaps != venue_gaps:
            # The feed's own chain broke (it should not: the feed chains ids itself): re-snapshot.
            # The engine's book resyncs from the venue's, as on a replay.
            self.feed.request_resync(item.symbol)
        self.observe()
        slot.md_receipt_ns = 0
        self.controls.beat()  # the dead-man's sign of life

    async def submit(self, slot: Slot, commands: list[Command], now: int) -> None:
        if slot.built is not None:
            slot.built.session.act(commands, now)
            return
        if commands:
            await slot.executor.submit(commands, now)
            await self.drain(slot, now)

    async def drain(self, slot: Slot, now: int) -> None:
        """Execution reports go to the engine at once; its follow-up commands are sent."""
        journal = self.journal
        for _ in range(1000):
            reports = slot.executor.pending_reports()
            if not reports:
                return
            commands: list[Command] = []
            for report in reports:
                commands.extend(slot.engine.on_exec(report, now))
            if commands:
                if journal is not None:
                    # Fills and risk changes on disk before the engine's follow-up orders go out.
                    self.observe()
                    await journal.durable()
                await slot.executor.submit(commands, now)

    def observe(self) -> None:
        """Each engine's new events to the journal and its observers, then cleared."""
        journal = self.journal
        for symbol, slot in self.slots.items():
            events = slot.engine.drain_events()
            if not events:
                continue
            if journal is not None:
                journal.observe(symbol, events)
            slot.publish(events)

    async def advance(self, slot: Slot, now: int) -> None:
        """Deliver commands whose simulated entry/cancel latency has elapsed."""
        commands: list[Command] = []
        for report in slot.executor.venue.advance(now):
            commands.extend(slot.engine.on_exec(report, now))
        await self.submit(slot, commands, now)
        await self.drain(slot, now)

    # --- tasks ----------------------------------------------------------------------------
    async def timer(self) -> None:
        interval = self.settings.run.timer_interval_ms / 1000.0
        while True:
            await asyncio.sleep(interval)
            now = time.time_ns()
            for slot in self.slots.values():
                if slot.built is not None:
                    # Paper: the session's own timers (run.timer_interval_ms on its clock),
                    # the venue's latency queue and snapshot answers, up to now.
                    slot.built.session.drain_until(now)
                else:
                    await self.advance(slot, now)
                    await self.submit(slot, slot.engine.on_timer(now), now)
                self.observe()
            self.controls.beat()  # the quoting loop ran: the dead-man's sign of life

    async def status_line(self) -> None:
        while True:
            await asyncio.sleep(self.settings.run.status_interval_s)
            self.emit(self.status_text())

    def status_text(self) -> str:
        return status_line(slot.engine for slot in self.slots.values())

    async def stopper(self) -> None:
        if self.duration_s is None:
            await self.stop.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.duration_s):
                await self.stop.wait()
        self.stop_reason = self.stop_reason or "duration"
        self.stop.set()  # servers serve until stop is set

    def request_stop(self, why: str) -> None:
        log.warning("shutdown_requested", signal=why)
        if self.journal is not None:
            self.journal.append("signal", {"action": "shutdown", "signal": why})
        self.stop_reason = why
        self.stop.set()

    def open_journal(self) -> None:
        """Paper trading on a live feed: its own journal (``<audit.account>-livefeed``) when audit.enabled."""
        s = self.settings
        if not s.audit.enabled or not self.slots:
            return
        for slot in self.slots.values():
            slot.engine.record_decisions = s.audit.record_decisions
        self.journal = LiveJournal(s, self.run_id, self.slots, self.on_journal_failure, account=f"{s.audit.account}-livefeed")

    def on_journal_failure(self, exc: JournalError) -> None:
        """The journal cannot write: halt every engine (JOURNAL_FAILURE), stop, exit 3."""
        log.error("journal_write_failed", error=str(exc), action="trading halted with JOURNAL_FAILURE; the run stops; exit status 3")
        now = time.time_ns()
        for symbol, slot in self.slots.items():
            self.defer(symbol, slot.engine.raise_reason(RiskReason.JOURNAL_FAILURE, now, str(exc)[:200]))
        self.stop_reason = "journal_failure"
        self.stop.set()

    # --- operator controls (mmbot/app/controls.py through LiveTarget) ------------------------
    def toggle_kill_switch(self) -> None:
        """SIGUSR1: every symbol's engine together (engage: HALTED, cancel all, confirm)."""
        self.controls.toggle_kill_switch("SIGUSR1")

    def reload(self) -> None:
        """SIGHUP: re-read the config; applied to every engine, or refused and the old config kept."""
        self.controls.reload()

    def defer(self, symbol: str, commands: list[Command]) -> None:
        """Queue an operator's commands (called synchronously); send_deferred sends them."""
        self._deferred.append((symbol, commands))

    async def send_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        now = time.time_ns()
        for symbol, commands in deferred:
            slot = self.slots.get(symbol)
            if slot is not None:
                await self.submit(slot, commands, now)
        self.observe()

    def open_order_count(self) -> int:
        """Our open orders at the (simulated) venues."""
        return sum(len(slot.built.venue.open_order_ids()) for slot in self.slots.values() if slot.built is not None)

    def control_tasks(self) -> list[Any]:
        """Coroutines for the supervisor: the controls' supervision task and the admin endpoint."""
        return [self.controls.run(), *(factory(self) for factory in hooks_admin.tasks(self, fresh=False))]

    def install_signals(self, loop: asyncio.AbstractEventLoop) -> dict[signal.Signals, Callable[[], None]]:
        """SIGINT/SIGTERM stop, SIGUSR1 toggles the kill switch, SIGHUP reloads; returns the handlers to remove later."""
        handlers: dict[signal.Signals, Callable[[], None]] = {
            signal.SIGINT: lambda: self.request_stop("SIGINT"),
            signal.SIGTERM: lambda: self.request_stop("SIGTERM"),
            signal.SIGUSR1: self.toggle_kill_switch,
            signal.SIGHUP: self.reload,
        }
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        return handlers

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        handlers = self.install_signals(loop)
        try:
            try:
                instruments = await self.feed.start()
            except TemporaryVenueError as exc:
                raise ConfigError(f"cannot load markets from {self.settings.exchange.id}: {exc}") from exc
            for symbol, inst in instruments.items():
                self.slots[symbol] = self.build_slot(inst)
            # The port first: a taken one fails the start before a journal is created.
            self.servers = self.metrics_servers()
            self.open_journal()
            log.info("live_started", symbols=list(instruments), exchange=self.settings.exchange.id,
                     base_url=self.settings.exchange.base_url, mode=self.settings.mode)
            try:
                await self._supervise()
            except* MmbotError as group:
                # A configuration problem found while streaming (unknown symbol, no order
                # books in ccxt): one line and its exit status, not a traceback.
                raise group.exceptions[0] from None
        finally:
            for sig in handlers:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.risk.shutdown_deadline_s):
                    await self.feed.close()
        return await self.finish()

    async def _supervise(self) -> None:
        async with asyncio.TaskGroup() as tg:
            feed = tg.create_task(self.feed.run())
            timer = tg.create_task(self.timer())
            status = tg.create_task(self.status_line()) if self.status else None
            for server in self.servers:
                tg.create_task(server.run(self))
            for coro in self.control_tasks():  # these exit by themselves once stop is set
                tg.create_task(coro)
            if self.journal is not None:
                tg.create_task(self.journal.run(self.stop))
            await tg.create_task(self.stopper())
            for task in (feed, timer, status):
                if task is not None:
                    task.cancel()

    def metrics_servers(self) -> list[Any]:
        """Prometheus /metrics, /healthz, /readyz for every symbol (metrics.enabled)."""
        s = self.settings
        if not s.metrics.enabled:
            return []
        from mmbot.observability.metrics import Metrics  # prometheus_client: only when metrics.enabled
        from mmbot.observability.server import MetricsServer, bind_socket  # aiohttp: only when metrics.enabled

        metrics = Metrics(version=__version__, config_hash=config_hash(s), mode=s.mode)
        for slot in self.slots.values():
            slot.observers.append(metrics.add_engine(slot.engine, last_event_wall=lambda: self.last_event_wall).on_events)

        def books_synced() -> str | None:
            waiting = [sym for sym, slot in self.slots.items() if not slot.book.is_synced]
            return f"order book not synced: {', '.join(waiting)}" if waiting else None

        def running() -> str | None:
            return f"stopping ({self.stop_reason})" if self.stop.is_set() else None

        return [MetricsServer(metrics, bind_socket(s.metrics.host, s.metrics.port), ready_checks=[running, books_synced])]

    def _feed_fields(self, symbol: str) -> dict[str, Any]:
        stats = self.feed.stats[symbol]
        return {
            "feed_snapshots": stats.snapshots, "feed_deltas": stats.deltas, "feed_gaps": stats.gaps,
            "feed_disconnects": stats.downs, "feed_silences": stats.silences, "feed_resyncs": stats.resyncs,
            "feed_last_outage_s": round(stats.last_outage_s, 3),
        }

    def _paper_finish(self) -> dict[str, Any]:
        """Paper: cancel everything through the session, then the replay's summary and run record."""
        now = time.time_ns()
        wall = time.monotonic() - self.started
        per_symbol: dict[str, Any] = {}
        for symbol, slot in self.slots.items():
            built = slot.built
            assert built is not None
            session = built.session
            session.act(slot.engine.cancel_everything(max(now, session.now_ns), "shutdown"), now)
            for _ in range(100):  # latency-delayed cancels reach the venue
                due = built.venue.next_due_ns
                if due is None:
                    break
                session.drain_until(due)
            self.observe()
            summary = paper_summary(
                self.settings, built, run_id=self.run_id, wall_seconds=wall, stop_reason=self.stop_reason or "end",
                stats=ReadStats(), recorders=[slot.recorder] if slot.recorder is not None else [],
                feed=self._feed_fields(symbol), data_source="live",
            )
            if slot.recorder is not None and slot is next(iter(self.slots.values())):
                run_record.write_l2_record(self.settings, summary, [slot.recorder], None, [])
            per_symbol[symbol] = summary
        return per_symbol

    async def finish(self) -> dict[str, Any]:
        """Stop quoting, cancel every order, build the summary (the sandbox runner has its own)."""
        return await self._seal(self._paper_finish())

    async def _seal(self, per_symbol: dict[str, Any]) -> dict[str, Any]:
        if not per_symbol:
            return {"run_id": self.run_id, "stop_reason": self.stop_reason, "symbols": {}}
        first = next(iter(per_symbol.values()))
        summary = dict(first)
        if len(per_symbol) > 1:
            summary["symbols"] = per_symbol
        if self.journal is not None:
            await self.journal.seal(summary, self.stop_reason or "end")
        return summary


def drive(make_runner: Callable[[Callable[[str], None]], LiveRunner], summary_json: str | None, hide: tuple[str, ...]) -> dict[str, Any]:
    """Run a live/sandbox runner under uvloop, write and print its summary (``hide``: fields not in the table)."""
    out = Console(stderr=False)

    def emit(text: str) -> None:
        out.print(text, highlight=False, markup=False)

    async def main() -> dict[str, Any]:
        return await make_runner(emit).run()

    try:
        import uvloop  # uvloop is optional (ImportError falls back to asyncio)

        summary: dict[str, Any] = uvloop.run(main())
    except ImportError:  # pragma: no cover - platforms without uvloop
        summary = asyncio.run(main())
    if summary_json:
        write_json_atomic(summary_json, summary)
    print_summary({k: v for k, v in summary.items() if k not in hide})
    return summary


def run_live(
    settings: Settings,
    *,
    run_id: str,
    config_path: str | None,
    duration: float | None,
    summary_json: str | None,
    status: bool,
) -> int:
    if settings.mode != "paper":
        raise ConfigError(
            f"mode: {settings.mode} needs the sandbox executor; run_live here drives paper execution on live data "
            "(use --mode paper with data.source: live)"
        )
    if settings.data.source != "live":
        raise ConfigError("run_live needs data.source: live (MMBOT_DATA__SOURCE=live)")
    summary = drive(
        lambda emit: LiveRunner(settings, run_id, duration_s=duration, status=status, emit=emit, config_path=config_path),
        summary_json,
        hide=("symbols",),
    )
    log.info("run_stopped", stop_reason=summary.get("stop_reason"), fills=summary.get("fills"))
    sys.stdout.flush()
    return JournalError.exit_code if summary.get("stop_reason") == "journal_failure" else 0
