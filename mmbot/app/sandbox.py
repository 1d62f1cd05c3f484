"""Sandbox and live trading: the live driver with a real venue behind ccxt.

``mmbot run --mode sandbox`` (an exchange testnet through ccxt's sandbox mode, or any
Binance-compatible endpoint through ``exchange.base_url`` / ``exchange.urls``, e.g.
``mmbot emulate``) and ``--mode live`` (refused unless ``MMBOT_ALLOW_LIVE=yes``, see
:func:`mmbot.app.daemon.startup_checks`).

:class:`SandboxRunner` reuses :class:`~mmbot.app.live.LiveRunner` (feed, books,
engines, timer, status line, signals, operator controls: kill switch from SIGUSR1,
the file flag and ``mmbot ctl``; LOOP_LAG/DEAD_MAN; SIGHUP reload; the admin
endpoint) and swaps the paper executor for one shared
:class:`~mmbot.execution.ccxt_executor.CcxtExecutor`. Its supervisor TaskGroup adds:

* the user stream (``watch_my_trades``; fills de-duplicated by trade id),
* periodic REST reconciliation every ``exchange.reconcile_interval_s``,
* the journal flusher and the ``/metrics`` server.

Start-up: load markets, resync the clock (``load_time_difference``), reconcile (our
open orders left by a crashed run are cancelled: they carry the stable account
prefix of the client order id), then read balances.

Position (base units) survives restarts without trusting local state:

    position = exchange balance(base) - baseline(base)
    cash     = exchange balance(quote) - baseline(quote)   (single-symbol runs)

The baseline is written once, on the first start of an account on an exchange, to
``<audit.dir>/sandbox-baseline-<account>-<exchange>.json`` and reused afterwards
(delete the file to start flat from the current balances). After each periodic
reconciliation the engine's ledger position is compared with the venue's; a
difference still there at the next check (so not fills in flight) raises
RECONCILE_MISMATCH (HALTED) until they agree again.

Shutdown (SIGTERM/SIGINT/--duration): the engine cancels everything, then a
cancel-all per symbol is repeated until the venue lists none of our open orders or
``risk.shutdown_deadline_s`` passes; a last reconciliation books fills that raced
the cancels; the summary adds the venue's view (``venue_open_orders``,
``venue_position``, balances, outcome counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import SecretStr

from mmbot import __version__, strict_yaml
from mmbot.adapters.ccxt.exchange import build_exchange
from mmbot.app import run_record, wiring
from mmbot.app.live import LiveRunner, Slot, drive, exchange_params
from mmbot.app.live_journal import LiveJournal
from mmbot.app.settings import Settings, config_hash
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Command, ExecReport, OrderRejected
from mmbot.domain.risk import RiskReason
from mmbot.engine.summary import build_summary
from mmbot.errors import ConfigError, JournalError, TemporaryVenueError
from mmbot.execution.budget import OrderBudget
from mmbot.execution.ccxt_executor import LOCAL_BUDGET_CODE, CcxtExecutor, ReconcileResult, account_prefix
from mmbot.marketdata.validate import MarketDataValidator
from mmbot.observability import counters
from mmbot.observability.logging import register_secret, scrub

log = structlog.get_logger("mmbot.sandbox")


# --- secrets --------------------------------------------------------------------------------
def apply_secrets_file(settings: Settings) -> Settings:
    """Keys from ``exchange.secrets_file`` (YAML/JSON ``api_key``, ``secret``); the environment wins."""
    path = settings.exchange.secrets_file
    if not path:
        return settings
    p = Path(path)
    # Every scalar is read as the text written (strict_yaml.StringsLoader): YAML 1.1
    # would turn an unquoted `secret: 0123` into 83. A key written twice is an error.
    # No message quotes the file's contents (only the key and line numbers).
    try:
        data = strict_yaml.load(p.read_text(), strings_only=True)
    except strict_yaml.DuplicateKeyError as exc:
        raise ConfigError(f"exchange.secrets_file {p}: {exc}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"exchange.secrets_file {p} cannot be read: {type(exc).__name__}") from exc
    if not isinstance(data, dict) or not {"api_key", "secret"} <= set(data):
        raise ConfigError(f"exchange.secrets_file {p} must hold a mapping with api_key and secret")
    update: dict[str, Any] = {}
    for key in ("api_key", "secret"):
        register_secret(str(data[key]))
        if getattr(settings.exchange, key) is None:
            update[key] = SecretStr(str(data[key]))
    return settings.model_copy(update={"exchange": settings.exchange.model_copy(update=update)})


# --- baseline ---------------------------------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def baseline_path(settings: Settings) -> Path:
    return Path(settings.audit.dir) / f"sandbox-baseline-{_safe(settings.audit.account)}-{_safe(settings.exchange.id)}.json"


def load_or_create_baseline(path: Path, balances: dict[str, Decimal], assets: list[str]) -> tuple[dict[str, Decimal], bool]:
    """(baseline per asset, created now?). Assets missing from an old file are added at today's balance."""
    stored: dict[str, Decimal] = {}
    if path.exists():
        try:
            raw = json.loads(path.read_text())
            stored = {str(a): Decimal(str(v)) for a, v in raw["assets"].items()}
        except (OSError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise ConfigError(f"the sandbox baseline {path} is unreadable ({type(exc).__name__}); delete it to start flat") from exc
    created = not stored
    changed = False
    for asset in assets:
        if asset not in stored:
            stored[asset] = balances.get(asset, Decimal(0))
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"assets": {a: str(v) for a, v in stored.items()}, "created_wall_ns": time.time_ns()}, indent=1))
        os.replace(tmp, path)
    return stored, created


# --- the runner -------------------------------------------------------------------------------
class SandboxRunner(LiveRunner):
    def __init__(self, settings: Settings, run_id: str, *, duration_s: float | None, status: bool, emit: Any,
                 config_path: str | None = None) -> None:
        super().__init__(settings, run_id, duration_s=duration_s, status=status, emit=emit, config_path=config_path)

        ex = settings.exchange
        self.exchange = build_exchange(exchange_params(settings))
        self.order_prefix = wiring.order_prefix(settings, run_id)
        self.executor = CcxtExecutor(
            self.exchange, {}, account_prefix=account_prefix(settings.audit.account),
            order_timeout_s=ex.timeout_s, watch_timeout_s=ex.watch_timeout_s,
            budget=OrderBudget(per_window=ex.order_weight_budget_per_10s), use_ws=ex.ws_orders,
            on_risk=self.on_risk, down_grace_s=ex.down_grace_s,
        )  # fmt: skip

        self.executor.on_outcome = counters.exchange_error  # mmbot_exchange_errors_total{kind}
        self.executor.on_reconnect = self._user_stream_reconnected
        self._risk_pending: list[tuple[RiskReason, bool, str]] = []
        self.baseline: dict[str, Decimal] = {}
        self.baseline_created = False
        self.startup: ReconcileResult | None = None
        self.last_reconcile: ReconcileResult | None = None
        self.reconciles = 0
        self._mismatch: dict[str, int] = {}
        self.mismatches = 0
        self.journal: LiveJournal | None = None
        self.metrics_views: dict[str, Any] = {}
        self.metrics_server: Any = None

    # --- wiring ---------------------------------------------------------------------------
    def build_slot(self, instrument: Instrument) -> Slot:
        """The exchange is the venue: the engine (the one construction, mmbot.app.wiring) and
        its own book, applied by this driver from the feed; no simulated venue."""
        engine = wiring.build_engine(self.settings, instrument, wiring.coid_prefix(self.settings, self.run_id, instrument), self.global_limit)
        slot = Slot(instrument=instrument, book=engine.book, engine=engine, executor=self.executor,
                    validator=MarketDataValidator(wiring.validation_rules(self.settings)))
        counters.add_market_data_source(instrument.symbol, slot.market_data_rejections)

        make_recorder = run_record.recorder_factory(self.settings, self.recorders)
        if make_recorder is not None:
            slot.recorder = make_recorder(engine)  # the run record (mmbot report), as every mode
        return slot

    def _user_stream_reconnected(self) -> None:
        # The user stream is per account: a reconnect counts for every symbol traded on it.
        for symbol in self.slots:
            counters.websocket_reconnected(symbol)

    def on_journal_failure(self, exc: JournalError) -> None:
        """The journal cannot write: halt (JOURNAL_FAILURE), stop; finish() cancels at the venue; exit 3."""
        log.error("journal_write_failed", error=str(exc), action="trading halted with JOURNAL_FAILURE; the run stops; exit status 3")
        self._risk_pending.append((RiskReason.JOURNAL_FAILURE, True, scrub(str(exc))[:200]))
        self.stop_reason = "journal_failure"
        self.stop.set()


    def on_risk(self, reason: RiskReason, raised: bool, cause: str) -> None:
        """Called by the executor (synchronously); applied to every engine by the next drain."""
        self._risk_pending.append((reason, raised, scrub(cause)))

    # --- order flow -------------------------------------------------------------------------
    async def _send(self, commands: list[Command], now: int) -> None:
        if commands:  # the executor runs order actions one at a time, in this order
            await self.executor.submit(commands, now)

    async def submit(self, slot: Slot, commands: list[Command], now: int) -> None:
        if commands:
            # Published (journal, tick-to-quote) as they leave for the venue, not after the
            # venue answered: the REST round trip is not part of tick-to-quote.
            self.observe()
        await self._send(commands, now)
        await self.drain(slot, now)

    async def drain(self, slot: Slot | None, now: int) -> None:
        """Executor reports and risk events to the engines (by symbol); their follow-ups are sent."""
        for _ in range(1000):
            per_symbol: dict[str, list[Command]] = {}
            pending, self._risk_pending = self._risk_pending, []
            for reason, raised, cause in pending:
                for symbol, s in self.slots.items():
                    cmds = s.engine.raise_reason(reason, now, cause) if raised else s.engine.watchdog(reason, False, now, cause)
                    per_symbol.setdefault(symbol, []).extend(cmds)
            reports: list[ExecReport] = self.executor.pending_reports()
            for report in reports:
                target = self.slots.get(report.symbol)
                if target is None:
                    continue
                if isinstance(report, OrderRejected) and report.code == LOCAL_BUDGET_CODE:
                    # Never reached the venue: forget the order, do not count a venue reject.
                    target.engine.om.on_report(report)
                    target.engine.deny_outside(now, "ORDER_BUDGET", report.message, report.client_order_id)
                    continue
                per_symbol.setdefault(report.symbol, []).extend(target.engine.on_exec(report, now))
            deferred, self._deferred = self._deferred, []
            for symbol, cmds in deferred:
                per_symbol.setdefault(symbol, []).extend(cmds)
            if not pending and not reports and not deferred:
                break
            if self.journal is not None:
                # Fills and risk changes on disk before the engines' follow-up orders go out.
                self.observe()
                await self.journal.durable()
            for cmds in per_symbol.values():
                await self._send(cmds, now)
        self.observe()

    def observe(self) -> None:
        """Engine events to the journal and metrics (the live driver has no other observer)."""
        now_perf = time.perf_counter_ns()
        for symbol, slot in self.slots.items():
            events = slot.engine.drain_events()
            if not events:
                continue
            if self.journal is not None:
                self.journal.observe(symbol, events)
            view = self.metrics_views.get(symbol)
            if view is not None:
                view.on_events(events, slot.md_receipt_ns, now_perf)
            if slot.recorder is not None:
                slot.recorder.on_events(events)

    async def advance(self, slot: Slot, now: int) -> None:
        self.executor.tick()
        await self.drain(slot, now)

    async def send_deferred(self) -> None:
        """Operator commands (kill switch, watchdogs) go out with the executor's reports (drain)."""
        await self.drain(None, time.time_ns())

    def open_order_count(self) -> int:
        """Our orders the engines still track as open (no REST call; an order leaves once the venue confirmed its cancel)."""
        return sum(slot.engine.om.open_count() for slot in self.slots.values())

    def toggle_kill_switch(self) -> None:
        super().toggle_kill_switch()  # mmbot/app/controls.py: every engine, then confirmation
        for symbol, slot in self.slots.items():
            engaged = slot.engine.gate.kill_switch_engaged
            if self.journal is not None:
                self.journal.append("signal", {"action": "kill_switch", "symbol": symbol, "engaged": engaged, "source": "SIGUSR1"})

    # --- reconciliation ---------------------------------------------------------------------
    def venue_position_lots(self, slot: Slot, balances: dict[str, Decimal]) -> int | None:
        inst = slot.instrument
        if inst.base not in balances:
            return None
        return inst.to_lots(balances[inst.base] - self.baseline.get(inst.base, Decimal(0)))

    async def connect(self, instruments: dict[str, Instrument]) -> None:
        """Markets, clock, start-up reconciliation (orphans cancelled), baseline, positions."""
        ex = self.settings.exchange
        try:
            async with asyncio.timeout(max(ex.timeout_s * 3, 10.0)):
                await self.exchange.load_markets()
        except (TimeoutError, Exception) as exc:
            raise ConfigError(f"cannot load markets for orders from {ex.id}: {scrub(str(exc))[:200]}") from exc
        self.executor.instruments = dict(instruments)
        await self.executor._resync_time()
        result = await self.executor.reconcile()
        if result.mismatch or not result.balances:
            raise ConfigError(f"start-up reconciliation with {ex.id} failed ({result.mismatch or 'no balances'}); not trading")
        self.startup = result
        assets = sorted({a for i in instruments.values() for a in (i.base, i.quote_ccy)})
        self.baseline, self.baseline_created = load_or_create_baseline(baseline_path(self.settings), result.balances, assets)
        log.info(
            "sandbox_reconciled_at_start", orphans_cancelled=len(result.orphans_cancelled), open_at_venue=result.open_at_venue,
            baseline_created=self.baseline_created, baseline={a: str(v) for a, v in self.baseline.items()},
        )  # fmt: skip

    def restore_positions(self) -> None:
        assert self.startup is not None
        balances = self.startup.balances
        for slot in self.slots.values():
            lots = self.venue_position_lots(slot, balances) or 0
            inst = slot.instrument
            cash = Decimal(0)
            if len(self.slots) == 1 and inst.quote_ccy in balances:
                cash = balances[inst.quote_ccy] - self.baseline.get(inst.quote_ccy, Decimal(0))
            slot.engine.ledger.restore(lots, cash, Decimal(0))
            if lots:
                log.warning("sandbox_position_restored", symbol=inst.symbol, position=str(inst.qty(lots)), cash=str(cash))

    async def check_positions(self, result: ReconcileResult) -> None:
        now = time.time_ns()
        for symbol, slot in self.slots.items():
            venue_lots = self.venue_position_lots(slot, result.balances)
            if venue_lots is None:
                continue
            diff = venue_lots - slot.engine.ledger.position_lots
            if diff == 0:
                self._mismatch.pop(symbol, None)
                if slot.engine.gate.has(RiskReason.RECONCILE_MISMATCH):
                    await self.submit(slot, slot.engine.watchdog(RiskReason.RECONCILE_MISMATCH, False, now), now)
                continue
            seen = self._mismatch.get(symbol)
            self._mismatch[symbol] = diff
            if seen == diff:  # the same difference twice in a row: not fills in flight
                self.mismatches += 1
                inst = slot.instrument
                cause = f"venue position {inst.qty(venue_lots)} != ledger {inst.qty(slot.engine.ledger.position_lots)}"
                log.error("reconcile_mismatch", symbol=symbol, cause=cause)
                await self.submit(slot, slot.engine.watchdog(RiskReason.RECONCILE_MISMATCH, True, now, cause), now)

    async def reconciler(self) -> None:
        interval = self.settings.exchange.reconcile_interval_s
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.stop.wait()
            if self.stop.is_set():
                return
            result = await self.executor.reconcile()
            self.reconciles += 1
            self.last_reconcile = result
            await self.drain(None, time.time_ns())
            if self.journal is not None and (result.orphans_cancelled or result.fills_recovered or result.closed_while_away):
                self.journal.append("reconcile", {
                    "orphans_cancelled": result.orphans_cancelled, "fills_recovered": result.fills_recovered,
                    "closed_while_away": result.closed_while_away,
                })  # fmt: skip
            if result.balances and not result.mismatch:
                await self.check_positions(result)

    # --- observability ----------------------------------------------------------------------
    def start_observers(self) -> list[Any]:
        """The journal flusher and the metrics server; the port is bound before the journal is created."""
        tasks: list[Any] = []
        s = self.settings
        sock = None
        if s.metrics.enabled:
            from mmbot.observability.server import bind_socket  # aiohttp: only when metrics.enabled

            sock = bind_socket(s.metrics.host, s.metrics.port)  # a taken port: ConfigError, no journal created
        if s.audit.enabled:
            self.journal = LiveJournal(s, self.run_id, self.slots, self.on_journal_failure, account=f"{s.audit.account}-{s.mode}")
            if self.startup is not None:
                self.journal.append("reconcile", {
                    "at": "start", "orphans_cancelled": self.startup.orphans_cancelled,
                    "open_at_venue": self.startup.open_at_venue, "baseline": {a: str(v) for a, v in self.baseline.items()},
                    "baseline_created": self.baseline_created,
                })  # fmt: skip
            tasks.append(self.journal.run(self.stop))
        if sock is not None:
            from mmbot.observability.metrics import Metrics  # prometheus_client: only when metrics.enabled
            from mmbot.observability.server import MetricsServer  # aiohttp: only when metrics.enabled

            metrics = Metrics(version=__version__, config_hash=config_hash(s), mode=s.mode)
            for symbol, slot in self.slots.items():
                self.metrics_views[symbol] = metrics.add_engine(slot.engine)
            metrics.venue_balances = lambda: self.executor.stream_balances
            if self.journal is not None:
                writer = self.journal.writer
                metrics.journal_sources.append(lambda: int(writer.written_records))

            def ready() -> str | None:
                if not self.executor.connected:
                    return "executor not connected to the venue"
                unsynced = [sym for sym, sl in self.slots.items() if not sl.book.is_synced]
                return f"order book not synced: {', '.join(unsynced)}" if unsynced else None

            self.metrics_server = MetricsServer(metrics, sock, ready_checks=[ready])
            log.info("metrics_listening", port=self.metrics_server.port)
            tasks.append(self.metrics_server.run(self))
        return tasks

    # --- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        handlers = self.install_signals(loop)
        try:
            return await self._run(loop, handlers)
        finally:
            await self.executor.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.risk.shutdown_deadline_s):
                    await self.feed.close()

    async def _run(self, loop: asyncio.AbstractEventLoop, handlers: dict[Any, Any]) -> dict[str, Any]:
        try:
            try:
                instruments = await self.feed.start()
            except TemporaryVenueError as exc:
                raise ConfigError(f"cannot load markets from {self.settings.exchange.id}: {scrub(str(exc))}") from exc
            await self.connect(instruments)
            for symbol, inst in instruments.items():
                self.slots[symbol] = self.build_slot(inst)
            self.restore_positions()
            observers = self.start_observers()
            log.info("sandbox_started", symbols=list(instruments), exchange=self.settings.exchange.id, mode=self.settings.mode,
                     base_url=self.settings.exchange.base_url, sandbox=self.settings.exchange.sandbox, order_prefix=self.order_prefix)
            async with asyncio.TaskGroup() as tg:
                workers = [
                    tg.create_task(self.feed.run()),
                    tg.create_task(self.timer()),
                    tg.create_task(self.executor.run_user_stream(self.stop)),
                    tg.create_task(self.executor.run_order_stream(self.stop)),
                    tg.create_task(self.executor.run_balance_stream(self.stop)),
                    tg.create_task(self.reconciler()),
                ]
                if self.status:
                    workers.append(tg.create_task(self.status_line()))
                for coro in self.control_tasks():  # kill switch file, watchdogs, admin: exit once stop is set
                    tg.create_task(coro)
                for coro in observers:  # these exit by themselves once stop is set (final flush)
                    tg.create_task(coro)
                await tg.create_task(self.stopper())
                self.stop.set()
                for task in workers:
                    task.cancel()
        finally:
            for sig in handlers:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.risk.shutdown_deadline_s):
                    await self.feed.close()
        return await self.finish()

    async def cancel_until_flat(self, deadline: float) -> int:
        """Cancel-all per symbol until the venue lists none of our orders; the count left."""
        left = -1
        while True:
            now = time.time_ns()
            for symbol in self.slots:
                await self.executor.cancel_all(symbol, now)
            try:
                left = len(await self.executor.open_order_ids())
            except Exception as exc:  # the venue may still be failing; try until the deadline
                log.warning("open_orders_unavailable", error=scrub(str(exc))[:200])
                left = -1
            if left == 0 or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)

    async def finish(self) -> dict[str, Any]:
        """Stop quoting, cancel every order until the venue confirms, book the last fills, summarise."""
        deadline = time.monotonic() + self.settings.risk.shutdown_deadline_s
        now = time.time_ns()
        for slot in self.slots.values():
            await self.submit(slot, slot.engine.cancel_everything(now, "shutdown"), now)
        left = await self.cancel_until_flat(deadline) if self.slots else 0
        final = ReconcileResult()
        if self.slots:
            final = await self.executor.reconcile()
            await self.drain(None, time.time_ns())
        if left == 0:  # the venue confirmed: nothing of ours is open
            for slot in self.slots.values():
                slot.engine.om.forget_all()
        wall = time.monotonic() - self.started
        per_symbol: dict[str, Any] = {}
        ex = self.executor
        for symbol, slot in self.slots.items():
            stats = self.feed.stats[symbol]
            venue_lots = self.venue_position_lots(slot, final.balances)
            inst = slot.instrument
            per_symbol[symbol] = build_summary(
                slot.engine, run_id=self.run_id, wall_seconds=wall, open_orders=max(left, 0),
                extra={
                    "mode": self.settings.mode, "data_source": "live", "exchange": self.settings.exchange.id,
                    "symbol": symbol, "stop_reason": self.stop_reason or "end",
                    "venue_open_orders": left,
                    "order_prefix": self.order_prefix,
                    "venue_position": None if venue_lots is None else str(inst.qty(venue_lots)),
                    "position_matches_venue": venue_lots == slot.engine.ledger.position_lots,
                    "venue_balances": {a: str(final.balances[a]) for a in (inst.base, inst.quote_ccy) if a in final.balances},
                    "baseline": {a: str(self.baseline[a]) for a in (inst.base, inst.quote_ccy) if a in self.baseline},
                    "baseline_created": self.baseline_created,
                    "orphans_cancelled_at_start": len(self.startup.orphans_cancelled) if self.startup else 0,
                    "orphans_cancelled": ex.orphans_cancelled,
                    "orders_sent": ex.orders_sent,
                    "venue_outcomes": dict(sorted(ex.outcomes.items())),
                    "lookups_after_timeout": ex.lookups_after_timeout,
                    "fill_sources": dict(sorted(ex.fill_sources.items())),
                    "cancel_sources": dict(sorted(ex.cancel_sources.items())),
                    "balance_updates": ex.balance_updates,
                    "stream_balances": {a: str(ex.stream_balances[a]) for a in (inst.base, inst.quote_ccy) if a in ex.stream_balances},
                    "time_resyncs": ex.time_resyncs,
                    "connection_resets": ex.ws_resets,
                    "user_stream_reconnects": ex.user_stream_reconnects,
                    "reconciliations": self.reconciles,
                    "reconcile_mismatches": self.mismatches,
                    "feed_snapshots": stats.snapshots, "feed_deltas": stats.deltas, "feed_gaps": stats.gaps,
                    "feed_disconnects": stats.downs, "feed_silences": stats.silences, "feed_resyncs": stats.resyncs,
                },
            )  # fmt: skip
        if not per_symbol:
            summary: dict[str, Any] = {"run_id": self.run_id, "stop_reason": self.stop_reason, "symbols": {}}
        else:
            first_slot = next(iter(self.slots.values()))
            if first_slot.recorder is not None:
                first = per_symbol[first_slot.instrument.symbol]
                first.update(first_slot.recorder.performance().fields())
                run_record.write_l2_record(self.settings, first, [first_slot.recorder], None, [])
            summary = dict(next(iter(per_symbol.values())))
            if len(per_symbol) > 1:
                summary["symbols"] = per_symbol
        if self.journal is not None:
            await self.journal.seal(summary, self.stop_reason or "end")
        return summary


def run_sandbox(settings: Settings, *, run_id: str, duration: float | None, summary_json: str | None, status: bool,
                config_path: str | None = None) -> int:
    """``mmbot run --mode sandbox|live``: exit 0 after a clean stop with zero open orders, 1 otherwise."""
    ex = settings.exchange
    if ex.api_key is None or ex.secret is None:
        raise ConfigError(
            f"mode: {settings.mode} signs orders: set MMBOT_EXCHANGE__API_KEY and MMBOT_EXCHANGE__SECRET "
            "(or exchange.secrets_file)"
        )
    if settings.data.source != "live":
        # Orders go to a real venue, so its own market data drives the quotes.
        settings = settings.model_copy(update={"data": settings.data.model_copy(update={"source": "live"})})
    summary = drive(
        lambda emit: SandboxRunner(settings, run_id, duration_s=duration, status=status, emit=emit, config_path=config_path),
        summary_json,
        hide=("symbols", "risk_transitions"),
    )
    left = summary.get("venue_open_orders", 0)
    log.info("run_stopped", stop_reason=summary.get("stop_reason"), fills=summary.get("fills"), venue_open_orders=left)
    sys.stdout.flush()
    if left:
        log.error("orders_left_open", count=left, action="cancel them at the venue; the next start cancels them too")
        return 1
    if summary.get("stop_reason") == "journal_failure":
        return JournalError.exit_code
    return 0
