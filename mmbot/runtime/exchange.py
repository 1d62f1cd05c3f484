"""The exchange as the execution venue: sandbox and live trading through ccxt.

``mmbot run --mode sandbox`` (an exchange testnet through ccxt's sandbox mode, or any
Binance-compatible endpoint through ``exchange.base_url`` / ``exchange.urls``, e.g.
``mmbot emulate``) and ``--mode live`` (refused unless ``MMBOT_ALLOW_LIVE=yes``).
One :class:`~mmbot.execution.ccxt_executor.CcxtExecutor` serves every symbol; its
tasks run in the node's TaskGroup:

* the user stream (``watch_my_trades``; fills de-duplicated by trade id), the order
  and balance streams,
* periodic REST reconciliation every ``exchange.reconcile_interval_s``.

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

Shutdown: the engines cancel everything, then a cancel-all per symbol is repeated
until the venue lists none of our open orders or ``risk.shutdown_deadline_s``
passes; a last reconciliation books fills that raced the cancels. The summary's
``venue`` block carries the venue's view (open orders, position, balances, outcome
counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from mmbot.domain.events import BookDelta, BookSnapshot, ClockJump, FeedSignal, MarketEvent
from mmbot.domain.instrument import Instrument, plain
from mmbot.domain.orders import Command, ExecReport, OrderRejected
from mmbot.domain.risk import RiskReason
from mmbot.engine.engine import Engine
from mmbot.errors import ConfigError
from mmbot.execution.ccxt_executor import LOCAL_BUDGET_CODE, CcxtExecutor, ReconcileResult
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.capture import ReadStats
from mmbot.marketdata.validate import MarketDataValidator, merge_counts
from mmbot.observability import counters
from mmbot.observability.logging import scrub
from mmbot.runtime.ports import Clock, Lane, venue_block

log = structlog.get_logger("mmbot.sandbox")

DRAIN_ROUNDS = 1000  # report -> follow-up command rounds per drain (a loop guard, never reached)


# --- baseline ---------------------------------------------------------------------------------
def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def baseline_path(audit_dir: str, account: str, exchange: str) -> Path:
    return Path(audit_dir) / f"sandbox-baseline-{_safe(account)}-{_safe(exchange)}.json"


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


# --- one symbol ---------------------------------------------------------------------------------
@dataclass
class ExchangeLane:
    """A symbol traded at the exchange: the engine's own book, applied from the feed."""

    instrument: Instrument
    engine: Engine
    validator: MarketDataValidator
    clock: Clock
    resync: Any  # callable(symbol): ask the live feed for a new snapshot
    recorder: Any = None
    signals: dict[str, int] = field(default_factory=dict)
    snapshot_requests: int = 0

    @property
    def book(self) -> L2Book:
        return self.engine.book

    @property
    def now_ns(self) -> int:
        return self.clock.now_ns()

    def on_market(self, event: MarketEvent, now: int) -> list[Command]:
        recorder = self.recorder
        if recorder is not None and event.ts_local_ns >= recorder.next_ns:
            recorder.advance(event.ts_local_ns)
        book = self.engine.book
        # The same market-data rules as a replay (mmbot.marketdata.validate): a message that
        # breaks one is counted and goes no further.
        if not self.validator.check(event, book):
            return []
        if type(event) is BookSnapshot:
            book.apply_snapshot(event)
        elif type(event) is BookDelta:
            result = book.apply_delta(event)
            if result is ApplyResult.GAP or result is ApplyResult.CROSSED:
                # A gap should not happen (the feed chains ids itself); a crossed book is not
                # believed. Either way: a fresh snapshot, the gate holds until it is valid.
                log.warning("book_invalid", symbol=event.symbol, result=result.value, first_update_id=event.first_update_id)
                self.validator.reset_symbol(event.symbol)
                self.snapshot_requests += 1
                self.resync(event.symbol)
        return self.engine.on_market(event, now)

    def on_signal(self, signal: FeedSignal, now: int) -> list[Command]:
        self.signals[signal.kind] = self.signals.get(signal.kind, 0) + 1
        if signal.kind in ("gap", "down", "silent"):
            self.engine.book.invalidate()
            reason = RiskReason.BOOK_GAP if signal.kind == "gap" else RiskReason.STALE_BOOK
            return self.engine.raise_reason(reason, now, signal.detail)
        return []

    def on_jump(self, jump: ClockJump) -> None:
        return None  # live time is the wall clock

    def on_timer(self, now: int) -> list[Command]:
        return self.engine.on_timer(now)

    def act(self, commands: list[Command], now: int) -> list[Command]:
        return commands

    def seam(self, now: int) -> None:
        return None

    def open_orders(self) -> int:
        return self.engine.om.open_count()

    def market_data_rejections(self) -> dict[str, int]:
        return merge_counts(self.validator.counts, {"crossed_book": self.engine.book.crossed_count})

    def data_fields(self, stats: ReadStats) -> dict[str, Any]:
        book = self.engine.book
        return {
            "garbage_lines": 0, "backwards_timestamps": 0, "clock_discontinuities": 0, "truncated_files": 0, "ignored_trades": {},
            "market_data_rejections": self.market_data_rejections(),
            "book_gaps": book.gap_count,
            "snapshot_requests": self.snapshot_requests,
            "data_sequence_gaps": self.signals.get("gap", 0),
            "book_ever_valid": book.update_count > 0 or book.is_synced,
            "update_id_discontinuities": self.validator.update_id_discontinuities,
            "venue_healed_levels": 0,
            "engine_book_synced": book.is_synced,
        }  # fmt: skip


# --- the venue ----------------------------------------------------------------------------------
class ExchangeExecution:
    """Every symbol's orders through one CcxtExecutor; reconciliation against the venue."""

    kind = "exchange"
    synchronous = False

    def __init__(self, exchange: Any, executor: CcxtExecutor, *, make_lane: Any, clock: Clock, exchange_id: str,
                 load_timeout_s: float, reconcile_interval_s: float, baseline_file: Path, order_prefix: str) -> None:
        self.exchange = exchange
        self.executor = executor
        self.make_lane = make_lane  # instrument -> ExchangeLane (the composition root builds the engine)
        self.clock = clock
        self.exchange_id = exchange_id
        self.load_timeout_s = load_timeout_s
        self.reconcile_interval_s = reconcile_interval_s
        self.baseline_file = baseline_file
        self.order_prefix = order_prefix
        self.lanes: dict[str, Lane] = {}
        self.node: Any = None
        self._risk_pending: list[tuple[RiskReason, bool, str]] = []
        self.baseline: dict[str, Decimal] = {}
        self.baseline_created = False
        self.startup: ReconcileResult | None = None
        self.final = ReconcileResult()
        self.reconciles = 0
        self._mismatch: dict[str, int] = {}
        self.mismatches = 0
        executor.on_risk = self.on_risk
        executor.on_outcome = counters.exchange_error  # mmbot_exchange_errors_total{symbol,kind}
        executor.on_reconnect = self._user_stream_reconnected
        executor.on_action = self._journal_action

    def bind(self, node: Any) -> None:
        self.node = node

    # --- start-up -------------------------------------------------------------------------
    async def connect(self, instruments: Mapping[str, Instrument]) -> None:
        """Markets, clock, start-up reconciliation (orphans cancelled), baseline."""
        try:
            async with asyncio.timeout(self.load_timeout_s):
                await self.exchange.load_markets()
        except (TimeoutError, Exception) as exc:
            raise ConfigError(f"cannot load markets for orders from {self.exchange_id}: {scrub(str(exc))[:200]}") from exc
        self.executor.instruments = dict(instruments)
        await self.executor._resync_time()
        result = await self.executor.reconcile()
        if result.mismatch or not result.balances:
            raise ConfigError(f"start-up reconciliation with {self.exchange_id} failed ({result.mismatch or 'no balances'}); not trading")
        self.startup = result
        assets = sorted({a for i in instruments.values() for a in (i.base, i.quote_ccy)})
        self.baseline, self.baseline_created = load_or_create_baseline(self.baseline_file, result.balances, assets)
        log.info(
            "sandbox_reconciled_at_start", orphans_cancelled=len(result.orphans_cancelled), open_at_venue=result.open_at_venue,
            baseline_created=self.baseline_created, baseline={a: str(v) for a, v in self.baseline.items()},
        )  # fmt: skip

    def open_lane(self, instrument: Instrument) -> Lane:
        lane: Lane = self.make_lane(instrument)
        self.lanes[instrument.symbol] = lane
        return lane

    def after_lanes(self, lanes: Mapping[str, Lane]) -> None:
        """Positions from the venue's balances minus the baseline."""
        if self.startup is None:
            return
        balances = self.startup.balances
        for lane in lanes.values():
            lots = self.venue_position_lots(lane.instrument, balances) or 0
            inst = lane.instrument
            cash = Decimal(0)
            if len(lanes) == 1 and inst.quote_ccy in balances:
                cash = balances[inst.quote_ccy] - self.baseline.get(inst.quote_ccy, Decimal(0))
            lane.engine.ledger.restore(lots, cash, Decimal(0))
            if lots:
                log.warning("sandbox_position_restored", symbol=inst.symbol, position=plain(inst.qty(lots)), cash=str(cash))

    def start_record(self) -> dict[str, Any]:
        """The journal's start-up reconciliation record."""
        startup = self.startup
        return {
            "at": "start", "orphans_cancelled": startup.orphans_cancelled if startup else [],
            "open_at_venue": startup.open_at_venue if startup else 0,
            "baseline": {a: str(v) for a, v in self.baseline.items()}, "baseline_created": self.baseline_created,
        }  # fmt: skip

    def _user_stream_reconnected(self) -> None:
        # The user stream is per account: a reconnect counts for every symbol traded on it.
        for symbol in self.lanes:
            counters.websocket_reconnected(symbol)

    def _journal_action(self, record: dict[str, Any]) -> None:
        """An order action as it went out (send and reply times, the venue's answer): ``order_sent``."""
        journal = None if self.node is None else self.node.journal
        if journal is not None:
            journal.note("order_sent", record, record["sent_ns"])

    def _journal_risk(self, reason: RiskReason, raised: bool, cause: str) -> None:
        """A risk input from the venue (not the engine's own rule): ``venue_risk``, so a rerun can apply it again."""
        if self.node is not None:
            self.node.note("venue_risk", {"reason": reason.value, "raised": raised, "cause": cause[:200]})

    def on_risk(self, reason: RiskReason, raised: bool, cause: str) -> None:
        """Called by the executor (synchronously); applied to every engine by the next drain."""
        self._risk_pending.append((reason, raised, scrub(cause)))

    # --- order flow -------------------------------------------------------------------------
    async def send(self, lane: Lane | None, commands: list[Command], now: int) -> None:
        node = self.node
        if commands:
            # Published (journal, tick-to-quote) as they leave for the venue, not after the
            # venue answered: the REST round trip is not part of tick-to-quote.
            node.publish()
            await self.executor.submit(commands, now)  # order actions go one at a time, in this order
        await self.drain(now)

    async def drain(self, now: int) -> None:
        """Executor reports and risk events to the engines (by symbol); their follow-ups are sent."""
        node = self.node
        for _ in range(DRAIN_ROUNDS):
            per_symbol: dict[str, list[Command]] = {}
            pending, self._risk_pending = self._risk_pending, []
            for reason, raised, cause in pending:
                self._journal_risk(reason, raised, cause)
                for symbol, lane in self.lanes.items():
                    engine = lane.engine
                    cmds = engine.raise_reason(reason, now, cause) if raised else engine.watchdog(reason, False, now, cause)
                    per_symbol.setdefault(symbol, []).extend(cmds)
            reports: list[ExecReport] = self.executor.pending_reports()
            for report in reports:
                target = self.lanes.get(report.symbol)
                if target is None:
                    continue
                if isinstance(report, OrderRejected) and report.code == LOCAL_BUDGET_CODE:
                    # Never reached the venue: forget the order, do not count a venue reject.
                    target.engine.om.on_report(report)
                    target.engine.deny_outside(now, "ORDER_BUDGET", report.message, report.client_order_id)
                    continue
                per_symbol.setdefault(report.symbol, []).extend(target.engine.on_exec(report, now))
            deferred = node.take_deferred()
            for symbol, cmds in deferred:
                per_symbol.setdefault(symbol, []).extend(cmds)
            if not pending and not reports and not deferred:
                break
            # Fills and risk changes on disk before the engines' follow-up orders go out.
            await node.durable_publish()
            for cmds in per_symbol.values():
                if cmds:
                    await self.executor.submit(cmds, now)
        node.publish()

    async def pump(self, now: int) -> None:
        self.executor.tick()
        await self.drain(now)

    def raise_everywhere(self, reason: RiskReason, cause: str) -> None:
        self._risk_pending.append((reason, True, scrub(cause)))

    # --- reconciliation ---------------------------------------------------------------------
    def venue_position_lots(self, inst: Instrument, balances: dict[str, Decimal]) -> int | None:
        if inst.base not in balances:
            return None
        return inst.to_lots(balances[inst.base] - self.baseline.get(inst.base, Decimal(0)))

    async def check_positions(self, result: ReconcileResult) -> None:
        now = self.clock.now_ns()
        for symbol, lane in self.lanes.items():
            engine = lane.engine
            venue_lots = self.venue_position_lots(lane.instrument, result.balances)
            if venue_lots is None:
                continue
            diff = venue_lots - engine.ledger.position_lots
            if diff == 0:
                self._mismatch.pop(symbol, None)
                if engine.gate.has(RiskReason.RECONCILE_MISMATCH):
                    self._journal_risk(RiskReason.RECONCILE_MISMATCH, False, "venue position matches again")
                    await self.send(lane, engine.watchdog(RiskReason.RECONCILE_MISMATCH, False, now), now)
                continue
            seen = self._mismatch.get(symbol)
            self._mismatch[symbol] = diff
            if seen == diff:  # the same difference twice in a row: not fills in flight
                self.mismatches += 1
                inst = lane.instrument
                cause = f"venue position {inst.qty(venue_lots)} != ledger {inst.qty(engine.ledger.position_lots)}"
                log.error("reconcile_mismatch", symbol=symbol, cause=cause)
                self._journal_risk(RiskReason.RECONCILE_MISMATCH, True, cause)
                await self.send(lane, engine.watchdog(RiskReason.RECONCILE_MISMATCH, True, now, cause), now)

    async def reconciler(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.reconcile_interval_s):
                    await stop.wait()
            if stop.is_set():
                return
            result = await self.executor.reconcile()
            self.reconciles += 1
            await self.drain(self.clock.now_ns())
            if result.orphans_cancelled or result.fills_recovered or result.closed_while_away:
                self.node.note("reconcile", {
                    "orphans_cancelled": result.orphans_cancelled, "fills_recovered": result.fills_recovered,
                    "closed_while_away": result.closed_while_away,
                })  # fmt: skip
            if result.balances and not result.mismatch:
                await self.check_positions(result)

    def tasks(self, node: Any) -> list[Coroutine[Any, Any, None]]:
        stop = node.stop
        ex = self.executor
        return [ex.run_user_stream(stop), ex.run_order_stream(stop), ex.run_balance_stream(stop), self.reconciler(stop)]

    # --- shutdown ---------------------------------------------------------------------------
    async def cancel_until_flat(self, deadline: float) -> int:
        """Cancel-all per symbol until the venue lists none of our orders; the count left."""
        left = -1
        while True:
            now = self.clock.now_ns()
            for symbol in self.lanes:
                await self.executor.cancel_all(symbol, now)
            try:
                left = len(await self.executor.open_order_ids())
            except Exception as exc:  # the venue may still be failing; try until the deadline
                log.warning("open_orders_unavailable", error=scrub(str(exc))[:200])
                left = -1
            if left == 0 or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)

    async def finish(self, lanes: Mapping[str, Lane], deadline_s: float) -> int:
        """Cancel every order until the venue confirms, book the last fills; the count left open."""
        deadline = time.monotonic() + deadline_s
        now = self.clock.now_ns()
        for lane in lanes.values():
            await self.send(lane, lane.engine.cancel_everything(now, "shutdown"), now)
        left = await self.cancel_until_flat(deadline) if lanes else 0
        if lanes:
            self.final = await self.executor.reconcile()
            await self.drain(self.clock.now_ns())
        if left == 0:  # the venue confirmed: nothing of ours is open
            for lane in lanes.values():
                lane.engine.om.forget_all()
        return left

    def rejections(self, lane: Lane) -> dict[str, int]:
        return {}  # the venue's rejections reach the engine as OrderRejected (risk: reject storms)

    def balances(self) -> dict[str, dict[str, str]]:
        start = self.startup.balances if self.startup is not None else {}
        end = self.final.balances or start
        return {"balances_start": {a: str(v) for a, v in sorted(start.items())},
                "balances_end": {a: str(v) for a, v in sorted(end.items())}}

    def summary_fields(self, lane: Lane, left: int) -> dict[str, Any]:
        inst = lane.instrument
        ex = self.executor
        final = self.final
        venue_lots = self.venue_position_lots(inst, final.balances)
        assets = (inst.base, inst.quote_ccy)
        return venue_block(
            kind=self.kind,
            open_orders=left,
            position_matches_venue=venue_lots == lane.engine.ledger.position_lots,
            rejections={},
            exchange=self.exchange_id,
            order_prefix=self.order_prefix,
            position=None if venue_lots is None else plain(inst.qty(venue_lots)),
            balances={a: str(final.balances[a]) for a in assets if a in final.balances},
            baseline={a: str(self.baseline[a]) for a in assets if a in self.baseline},
            baseline_created=self.baseline_created,
            orphans_cancelled_at_start=len(self.startup.orphans_cancelled) if self.startup else 0,
            orphans_cancelled=ex.orphans_cancelled,
            orders_sent=ex.orders_sent,
            outcomes=dict(sorted(ex.outcomes.items())),
            lookups_after_timeout=ex.lookups_after_timeout,
            fill_sources=dict(sorted(ex.fill_sources.items())),
            cancel_sources=dict(sorted(ex.cancel_sources.items())),
            balance_updates=ex.balance_updates,
            stream_balances={a: str(ex.stream_balances[a]) for a in assets if a in ex.stream_balances},
            time_resyncs=ex.time_resyncs,
            connection_resets=ex.ws_resets,
            user_stream_reconnects=ex.user_stream_reconnects,
            reconciliations=self.reconciles,
            reconcile_mismatches=self.mismatches,
        )


    def ready(self) -> str | None:
        return None if self.executor.connected else "executor not connected to the venue"

    def open_orders(self) -> int:
        """Our orders the engines still track as open (no REST call)."""
        return sum(lane.engine.om.open_count() for lane in self.lanes.values())

    async def close(self) -> None:
        await self.executor.close()
