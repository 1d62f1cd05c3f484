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

Per symbol: one L2 book (applied by this driver, then read by the engine and the
venue: paper trading on live data has no simulated market-data latency), one
:class:`~mmbot.engine.engine.Engine`, one :class:`~mmbot.execution.paper.PaperExecutor`
over a :class:`~mmbot.sim.venue.SimVenue`. Time is the wall clock in ns.

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
from typing import Any

import structlog

from mmbot.adapters.ccxt.exchange import ExchangeParams
from mmbot.app.live_journal import LiveJournal
from mmbot.app.settings import Settings
from mmbot.domain.events import BookDelta, BookSnapshot, MarketEvent
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Command
from mmbot.domain.risk import RiskReason
from mmbot.engine.engine import Engine, EngineConfig, EngineEvent
from mmbot.engine.summary import build_summary
from mmbot.errors import ConfigError, JournalError, MmbotError, TemporaryVenueError
from mmbot.execution.paper import PaperExecutor
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.feeds.live import FeedConfig, FeedSignal, LiveFeed
from mmbot.observability import counters
from mmbot.sim.venue import SimVenue

log = structlog.get_logger("mmbot.live")


@dataclass
class Slot:
    """Everything one symbol needs."""

    instrument: Instrument
    book: L2Book
    engine: Engine
    executor: PaperExecutor | Any  # the sandbox runner plugs in its CcxtExecutor (mmbot.app.sandbox)
    signals: dict[str, int] = field(default_factory=dict)
    # Subscribers to the engine's event batches (metrics); the batch is cleared after them,
    # so engine.events never grows in a long live run.
    observers: list[Callable[[list[EngineEvent], int, int], None]] = field(default_factory=list)
    md_receipt_ns: int = 0  # perf_counter_ns of the market-data message being processed

    def publish(self) -> None:
        events = self.engine.events
        if events:
            done = time.perf_counter_ns()
            for observer in self.observers:
                observer(events, self.md_receipt_ns, done)
            events.clear()


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
        from mmbot.app import wiring

        self.global_limit = wiring.build_global_limit(settings)  # one limit across every symbol
        # Operator commands (kill switch, watchdogs) per symbol, sent by send_deferred.
        self._deferred: list[tuple[str, list[Command]]] = []
        from mmbot.app.controls import Controls, LiveTarget

        # Kill switch, reload, loop-lag and dead-man watchdogs (mmbot/app/controls.py).
        self.controls = Controls(LiveTarget(self))
        self.journal: LiveJournal | None = None  # audit.enabled: opened once the symbols are known

    # --- wiring ---------------------------------------------------------------------------
    def build_slot(self, instrument: Instrument) -> Slot:
        from mmbot.app import wiring

        s = self.settings
        book = L2Book(instrument.symbol)
        engine = Engine(
            instrument,
            book,
            wiring.build_model(s, instrument),
            wiring.build_gate(s, instrument, self.global_limit),
            EngineConfig(
                min_requote_interval_ms=s.strategy.min_requote_interval_ms,
                update_every_n=s.strategy.update_freq,
                stale_book_ms=s.risk.stale_book_ms,
                feed_silent_ms=s.risk.feed_silent_ms,
                coid_prefix=f"mmb-{self.run_id[-8:]}-{instrument.base.lower()}-",
                requote_tolerance_ticks=s.strategy.requote_tolerance_ticks,
            ),
        )
        venue = SimVenue(instrument, book, wiring.venue_config(s))
        return Slot(instrument=instrument, book=book, engine=engine, executor=PaperExecutor(venue))

    # --- events ---------------------------------------------------------------------------
    async def on_feed(self, item: MarketEvent | FeedSignal) -> None:
        now = time.time_ns()
        slot = self.slots.get(item.symbol)
        if slot is None:
            return
        engine = slot.engine
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
        if isinstance(item, BookSnapshot):
            slot.book.apply_snapshot(item)
        elif isinstance(item, BookDelta) and slot.book.apply_delta(item) is ApplyResult.GAP:
            # Should not happen (the feed chains ids itself); if it does, ask for a snapshot.
            log.warning("book_gap_detected", symbol=item.symbol, first_update_id=item.first_update_id)
            self.feed.request_resync(item.symbol)
        slot.executor.on_market(item)
        await self.drain(slot, now)
        await self.submit(slot, engine.on_market(item, now), now)
        self.observe()
        slot.md_receipt_ns = 0
        self.controls.beat()  # the dead-man's sign of life

    async def submit(self, slot: Slot, commands: list[Command], now: int) -> None:
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
            if journal is not None:
                journal.recorders[slot.instrument.symbol].on_reports(reports)  # acks
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
            if journal is not None and slot.engine.events:
                journal.observe(symbol, slot.engine.events)
            slot.publish()

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
                await self.advance(slot, now)
                await self.submit(slot, slot.engine.on_timer(now), now)
                self.observe()
            self.controls.beat()  # the quoting loop ran: the dead-man's sign of life

    async def status_line(self) -> None:
        while True:
            await asyncio.sleep(self.settings.run.status_interval_s)
            self.emit(self.status_text())

    def status_text(self) -> str:
        parts = []
        for slot in self.slots.values():
            e = slot.engine
            inst = slot.instrument
            mid = "-" if e.mid_ticks is None else str(inst.price(int(e.mid_ticks)))
            reasons = ("" if not e.gate.reasons else " " + ",".join(e.gate.reasons))
            parts.append(
                f"{inst.symbol} mid {mid} pos {inst.qty(e.ledger.position_lots)} pnl {e.net_pnl():.2f} "
                f"fills {e.ledger.bid_fills}b/{e.ledger.ask_fills}a state {e.gate.state.name}{reasons}"
                f"{' KILL SWITCH' if e.gate.kill_switch_engaged else ''} open {e.om.open_count()}"
            )
        return " | ".join(parts)

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
        return sum(len(slot.executor.venue.open_order_ids()) for slot in self.slots.values())

    def control_tasks(self) -> list[Any]:
        """Coroutines for the supervisor: the controls' supervision task and the admin endpoint."""
        from mmbot.app import hooks_admin

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
        from mmbot import __version__
        from mmbot.app.settings import config_hash
        from mmbot.observability.metrics import Metrics
        from mmbot.observability.server import MetricsServer, bind_socket

        metrics = Metrics(version=__version__, config_hash=config_hash(s), mode=s.mode)
        for slot in self.slots.values():
            slot.observers.append(metrics.add_engine(slot.engine, last_event_wall=lambda: self.last_event_wall).on_events)

        def books_synced() -> str | None:
            waiting = [sym for sym, slot in self.slots.items() if not slot.book.is_synced]
            return f"order book not synced: {', '.join(waiting)}" if waiting else None

        def running() -> str | None:
            return f"stopping ({self.stop_reason})" if self.stop.is_set() else None

        return [MetricsServer(metrics, bind_socket(s.metrics.host, s.metrics.port), ready_checks=[running, books_synced])]

    async def finish(self) -> dict[str, Any]:
        """Stop quoting, cancel every order, build the summary."""
        now = time.time_ns()
        for slot in self.slots.values():
            await self.submit(slot, slot.engine.cancel_everything(now, "shutdown"), now)
            # Let latency-delayed cancels reach the venue.
            await self.advance(slot, now + 60 * 10**9)
            self.observe()
        wall = time.monotonic() - self.started
        per_symbol: dict[str, Any] = {}
        for symbol, slot in self.slots.items():
            stats = self.feed.stats[symbol]
            per_symbol[symbol] = build_summary(
                slot.engine,
                run_id=self.run_id,
                wall_seconds=wall,
                open_orders=len(slot.executor.venue.open_order_ids()),
                extra={
                    "mode": self.settings.mode,
                    "data_source": "live",
                    "exchange": self.settings.exchange.id,
                    "symbol": symbol,
                    "stop_reason": self.stop_reason or "end",
                    "feed_snapshots": stats.snapshots,
                    "feed_deltas": stats.deltas,
                    "feed_gaps": stats.gaps,
                    "feed_disconnects": stats.downs,
                    "feed_silences": stats.silences,
                    "feed_resyncs": stats.resyncs,
                    "feed_last_outage_s": round(stats.last_outage_s, 3),
                },
            )
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
    from rich.console import Console

    from mmbot.app.cli import print_summary
    from mmbot.app.runner import write_json_atomic

    out = Console(stderr=False)

    def emit(text: str) -> None:
        out.print(text, highlight=False, markup=False)

    async def main() -> dict[str, Any]:
        return await make_runner(emit).run()

    try:
        import uvloop

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
