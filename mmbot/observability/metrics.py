"""Prometheus metrics of the daemon (with ``counters`` and ``server``, the only code importing prometheus_client).

Cost model (the replay must not slow down):

* What the engine already counts or holds (book updates, trades, quotes, fills by
  side, denials by reason, position, PnL, quoted spread, risk state) is read at
  scrape time by :class:`EngineCollector`: nothing per market event.
* The per-batch observer (:meth:`SymbolMetrics.on_events`, one call per drained
  list of ``EngineEvent``) adds one dict lookup per engine event, observes
  tick-to-quote latency when the batch holds an order action and feeds the markout
  histogram from ``markout`` events. Average entry and realised/unrealised PnL are
  the ledger's (:mod:`mmbot.portfolio.ledger`), read at scrape time, never recomputed.
* :meth:`Metrics.refresh` (periodic, and before each scrape) updates book staleness.

Units and formulas (all series carry ``symbol`` unless noted; money is in the
quote currency, e.g. USDT, suffix ``_quote``; quantities in the base currency,
suffix ``_base``; prices as floats of ``ticks x tick_size``):

* ``mmbot_pnl_gross_quote`` = cash + position x mark; ``mmbot_pnl_net_quote`` =
  gross - fees; ``mmbot_pnl_unrealized_quote`` = position x (mark - average entry);
  ``mmbot_avg_entry_price_quote`` = the ledger's average entry of the open position
  (average-cost method, reset when the position crosses zero; NaN when flat);
  realised = net - unrealised. The mark is the one mark rule of every PnL figure,
  :func:`mmbot.portfolio.ledger.mark_ticks_from_mid` (the mid rounded to a tick).
* ``mmbot_quoted_spread_bps`` = (our ask - our bid) / mid x 10^4; NaN while not
  quoting both sides.
* ``mmbot_notional_quote`` = position x mid (signed).
* ``mmbot_book_staleness_seconds`` = wall time since the replay/feed last delivered
  a depth update to the engine (resolution: the scrape or refresh interval, and
  1024 events at replay speed 0).
* ``mmbot_tick_to_quote_seconds`` = wall time from market-data receipt (the runner
  takes the event) to the order actions leaving for the executor (the session step
  returned with commands submitted).
* ``mmbot_markout_bps{horizon}`` = side x (mid(t_fill + h) - fill price) / fill
  price x 10^4 (positive = good for us), see :mod:`mmbot.portfolio.markout`.
* ``mmbot_pnl_attribution_quote{part}`` = net PnL split into spread_capture,
  adverse_selection, inventory_pnl, fees (<= 0), rebates (>= 0); the parts sum to
  ``mmbot_pnl_net_quote`` (exactly in Decimal; floats here), see
  :mod:`mmbot.portfolio.attribution`. Absent before the first mid.
* Perpetuals (mmbot.portfolio.margin, docs/futures.md): ``mmbot_margin_ratio`` =
  maintenance margin / margin balance, ``mmbot_margin_used_settle`` = initial margin at
  the mark, ``mmbot_funding_paid_settle`` = funding paid so far (< 0 received), all in the
  settlement asset; NaN for spot. ``mmbot_net_delta_base`` = net delta over every
  instrument of the account (base units; NaN without ``risk.max_net_delta``).
  ``mmbot_pnl_net_quote`` subtracts the funding too.
* ``mmbot_risk_state`` = 0 ACTIVE, 1 REDUCING, 2 HALTED;
  ``mmbot_risk_reason_active{reason}`` = 1 while that reason is raised.
* ``mmbot_venue_balance{asset}`` = free + locked: the paper wallet's in every paper
  mode; sandbox/live the venue's, as last pushed by the user stream (absent until the
  first push).
* ``mmbot_quote_price_quote{side}`` = our resting bid/ask (the best of ours per side);
  NaN while that side has none. ``mmbot_market_best_price_quote{side}`` = the
  market's best bid/offer in the engine's book (our own orders included, as the
  venue shows them); NaN while the book has no level on that side.
* ``mmbot_traded_volume_base_total`` / ``mmbot_traded_volume_quote_total`` = the
  quantity and notional (price x quantity) of our fills.
* ``mmbot_pnl_realized_quote`` = the ledger's realised PnL net of fees (R - fees), so
  realised + unrealised = net exactly (up to float rounding).
* ``mmbot_quoting`` = 1 while at least one of our quotes rests at the venue (an
  acknowledged, open, non-taker order), else 0: halted by the kill switch or a
  risk reason, waiting for a book, or between a cancel and the next place. It is
  not readiness (``/readyz``, docs/observability.md).
* ``mmbot_exchange_errors_total{symbol,kind}``: venue errors by symbol and outcome
  kind; account-wide calls (user stream, balances, the ws-api probe) count under
  ``symbol="account"``.

Every known label value (each risk reason, denial reason, order action/result,
side, error kind, markout horizon) is exported at zero from startup.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mmbot.domain.engine_events import (
    CancelAllRequested,
    CancelRequested,
    EngineEvent,
    MarkoutResolved,
    OrderCancelConfirmed,
    OrderDenied,
    OrderPlaced,
    VenueRejected,
)
from mmbot.domain.orders import OrderStatus
from mmbot.domain.risk import ACCOUNT_WIDE, RiskReason
from mmbot.engine.engine import Engine
from mmbot.observability import counters
from mmbot.portfolio.attribution import ATTRIBUTION_PARTS
from mmbot.portfolio.ledger import mark_ticks_from_mid

# ``*_created`` series double the exposition and no dashboard uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Order actions and their results, from engine event kinds.
ORDER_SERIES: tuple[tuple[str, str], ...] = (
    ("place", "sent"),
    ("place", "denied"),
    ("place", "rejected"),
    ("cancel", "sent"),
    ("cancel", "confirmed"),
    ("cancel_all", "sent"),
)
_ORDER_INDEX: dict[type[EngineEvent], int] = {
    OrderPlaced: 0, OrderDenied: 1, VenueRejected: 2, CancelRequested: 3, OrderCancelConfirmed: 4, CancelAllRequested: 5,
}
# Kinds that mean an order action left for the executor (tick-to-quote ends here).
_ACTION_KINDS: frozenset[type[EngineEvent]] = frozenset({OrderPlaced, CancelRequested, CancelAllRequested})

# Pre-trade denial reasons of mmbot.risk.gate (check names and risk reasons).
DENY_REASONS: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            "HALTED",
            "REDUCING",
            "STEP_SIZE",
            "MIN_NOTIONAL",
            "MAX_NOTIONAL",
            "MAX_OPEN_ORDERS",
            "PRICE_BAND",
            "POST_ONLY_CROSS",
            "SELF_TRADE",
            *(r.value for r in RiskReason),
        )
    )
)
RISK_REASONS: tuple[str, ...] = tuple(r.value for r in RiskReason)

# 10 us .. 1 s: the replay decides in tens of microseconds, a live loop in milliseconds.
TICK_TO_QUOTE_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
# Symmetric around 0 bps (negative = adverse selection).
MARKOUT_BUCKETS = (-50.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def _horizon_label(horizon_ns: int) -> str:
    return f"{horizon_ns / 1e9:g}s"


class SymbolMetrics:
    """Per-engine state the collector cannot read from the engine itself."""

    def __init__(
        self,
        engine: Engine,
        *,
        tick_to_quote: Histogram,
        markout: Histogram,
        last_event_wall: Callable[[], float],
        clock: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.symbol = engine.symbol
        self.clock = clock
        self.last_event_wall = last_event_wall
        self.order_counts = [0] * len(ORDER_SERIES)
        self._t2q = tick_to_quote.labels(self.symbol)
        horizons = engine.markouts.horizons_ns
        self.horizon_labels = tuple(_horizon_label(h) for h in horizons)
        self._markout_children = {h: markout.labels(self.symbol, label) for h, label in zip(horizons, self.horizon_labels, strict=True)}
        self._seen_book_updates = engine.book_updates
        self._last_book_wall = clock()
        inst = engine.instrument
        self._tick = float(inst.tick_size)
        self._qty_unit = float(inst.qty_unit)

    # --- per batch (hot path) -------------------------------------------------------------
    def on_events(self, events: Sequence[EngineEvent], md_receipt_ns: int = 0, step_done_ns: int = 0) -> None:
        """One drained batch of engine events; times are ``time.perf_counter_ns`` values (0 = unknown)."""
        counts = self.order_counts
        index = _ORDER_INDEX
        acted = False
        for ev in events:
            kind = type(ev)
            i = index.get(kind)
            if i is not None:
                counts[i] += 1
                if kind in _ACTION_KINDS:
                    acted = True
            elif kind is MarkoutResolved:
                child = self._markout_children.get(ev.horizon_ns)  # type: ignore[attr-defined]
                if child is not None:
                    child.observe(ev.bps)  # type: ignore[attr-defined]
        if acted and md_receipt_ns and step_done_ns >= md_receipt_ns:
            self._t2q.observe((step_done_ns - md_receipt_ns) * 1e-9)

    # --- periodic / at scrape ----------------------------------------------------------------
    def refresh(self) -> None:
        engine = self.engine
        if engine.book_updates != self._seen_book_updates:
            self._seen_book_updates = engine.book_updates
            last = self.last_event_wall()
            self._last_book_wall = last if last > 0 else self.clock()

    def staleness_seconds(self) -> float:
        return max(0.0, self.clock() - self._last_book_wall)

    def unrealized_pnl(self, mid_ticks: float | None) -> float:
        """The ledger's unrealised PnL at the mark of ``mid_ticks`` (0 before the first mid)."""
        if mid_ticks is None:
            return 0.0
        return float(self.engine.ledger.unrealized_pnl(mark_ticks_from_mid(mid_ticks)))

    def avg_entry_price(self) -> float:
        """The ledger's average entry, quote per base unit; NaN when flat."""
        avg = self.engine.ledger.avg_entry_ticks
        return math.nan if avg is None else float(avg) * self._tick


class EngineCollector(Collector):
    """Reads engine counters and state at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        symbols = self.metrics.symbols
        sym = ["symbol"]

        def counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=labels or sym)

        def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels or sym)

        events = counter("mmbot_events", "Market events processed (depth levels + trades), project definition")
        book_updates = counter("mmbot_book_updates", "Depth messages (diffs and snapshots) seen by the engine")
        trades = counter("mmbot_trades_seen", "Public trades seen by the engine")
        quotes = counter("mmbot_quotes", "Desired quotes produced by the strategy")
        orders = counter("mmbot_orders", "Order actions by action and result", ["symbol", "action", "result"])
        fills = counter("mmbot_fills", "Fills (partial fills count one each) by our order side", ["symbol", "side"])
        denials = counter("mmbot_risk_denials", "Orders denied by the pre-trade risk gate, by reason", ["symbol", "reason"])
        position = gauge("mmbot_position_base", "Signed inventory in the base currency")
        notional = gauge("mmbot_notional_quote", "Signed inventory value at mid, quote currency")
        mid = gauge("mmbot_mid_price_quote", "Mid price the engine uses, quote currency per base unit")
        gross = gauge("mmbot_pnl_gross_quote", "Gross PnL: cash + position x mid, quote currency")
        net = gauge("mmbot_pnl_net_quote", "Net PnL: gross - fees, quote currency")
        unreal = gauge("mmbot_pnl_unrealized_quote", "Unrealised PnL: position x (mark - average entry), quote currency")
        avg_entry = gauge("mmbot_avg_entry_price_quote", "Average entry price of the open position (ledger, average cost); NaN when flat")
        fees = gauge("mmbot_fees_paid_quote", "Cumulative fees paid (negative = rebates), quote currency")
        spread = gauge("mmbot_quoted_spread_bps", "Our quoted spread (ask - bid) / mid in bps; NaN when not two-sided")
        open_orders = gauge("mmbot_open_orders", "Orders the engine tracks as open")
        state = gauge("mmbot_risk_state", "Trading state: 0 ACTIVE, 1 REDUCING, 2 HALTED")
        reasons = gauge("mmbot_risk_reason_active", "1 while the risk reason is raised", ["symbol", "reason"])
        kill = gauge("mmbot_kill_switch_engaged", "1 while the kill switch is engaged")
        max_dd = gauge("mmbot_risk_max_drawdown_quote", "Configured drawdown limit from peak net PnL, quote currency")
        max_inv = gauge("mmbot_risk_max_inventory_base", "Configured inventory limit, base currency")
        staleness = gauge("mmbot_book_staleness_seconds", "Wall seconds since the engine last received a depth update")
        synced = gauge("mmbot_book_synced", "1 while the engine's L2 book is in sync")
        markout_mean = gauge("mmbot_markout_mean_bps", "Mean fill markout so far, bps (positive = good)", ["symbol", "horizon"])
        attribution = gauge(
            "mmbot_pnl_attribution_quote", "Net PnL by source (mmbot.portfolio.attribution), quote currency", ["symbol", "part"]
        )
        margin_ratio = gauge("mmbot_margin_ratio", "Perpetuals: maintenance margin / margin balance; NaN for spot or flat")
        margin_used = gauge("mmbot_margin_used_settle", "Perpetuals: initial margin at the mark, settlement asset; NaN for spot")
        funding = gauge("mmbot_funding_paid_settle", "Perpetuals: funding paid so far (< 0 received), settlement asset; NaN for spot")
        net_delta = gauge("mmbot_net_delta_base", "Net delta over every instrument of the account, base units; NaN without the limit")
        reconnects = counter("mmbot_websocket_reconnects", "Websocket (market data / user stream) reconnects")
        side_labels = ["symbol", "side"]
        our_quote = gauge("mmbot_quote_price_quote", "Our resting quote (best of ours per side), quote currency; NaN when none", side_labels)
        market_best = gauge("mmbot_market_best_price_quote", "The market's best bid/offer in the engine's book, quote currency; NaN when empty", side_labels)
        volume_base = counter("mmbot_traded_volume_base", "Quantity of our fills, base currency")
        volume_quote = counter("mmbot_traded_volume_quote", "Notional of our fills (price x quantity), quote currency")
        realized = gauge("mmbot_pnl_realized_quote", "Realised PnL net of fees (ledger), quote currency")
        quoting = gauge("mmbot_quoting", "1 while at least one of our quotes rests at the venue (acknowledged, open); else 0")
        journal_records, reconnect_counts, error_counts = counters.snapshot()
        for s in symbols:
            s.refresh()
            e = s.engine
            ledger = e.ledger
            gate = e.gate
            label = [s.symbol]
            events.add_metric(label, e.events_count)
            book_updates.add_metric(label, e.book_updates)
            trades.add_metric(label, e.trades_seen)
            quotes.add_metric(label, e.quotes)
            for (action, result), count in zip(ORDER_SERIES, s.order_counts, strict=True):
                orders.add_metric([s.symbol, action, result], count)
            fills.add_metric([s.symbol, "buy"], ledger.bid_fills)
            fills.add_metric([s.symbol, "sell"], ledger.ask_fills)
            denied = gate.denials
            for reason in DENY_REASONS:
                denials.add_metric([s.symbol, reason], denied.get(reason, 0))
            for reason in sorted(set(denied) - set(DENY_REASONS)):  # reasons added later in the gate
                denials.add_metric([s.symbol, reason], denied[reason])
            mid_ticks = e.mid_ticks
            pos = ledger.position_lots * s._qty_unit
            position.add_metric(label, pos)
            mid_price = mid_ticks * s._tick if mid_ticks is not None else math.nan
            mid.add_metric(label, mid_price)
            notional.add_metric(label, pos * mid_price if mid_ticks is not None else 0.0)
            gross_value = ledger.gross_pnl_float(mark_ticks_from_mid(mid_ticks)) if mid_ticks is not None else float(ledger.cash)
            fees_value = float(ledger.fees_paid)
            gross.add_metric(label, gross_value)
            net.add_metric(label, gross_value - fees_value - float(ledger.funding_paid))
            unreal.add_metric(label, s.unrealized_pnl(mid_ticks))
            avg_entry.add_metric(label, s.avg_entry_price())
            fees.add_metric(label, fees_value)
            bid, ask = e.quoted_bid, e.quoted_ask
            spread.add_metric(
                label, (ask - bid) / mid_ticks * 1e4 if bid is not None and ask is not None and mid_ticks else math.nan
            )
            open_orders.add_metric(label, e.om.open_count())
            state.add_metric(label, int(gate.state))
            active = set(gate.reasons)
            for reason in RISK_REASONS:
                reasons.add_metric([s.symbol, reason], 1.0 if reason in active else 0.0)
            kill.add_metric(label, 1.0 if gate.kill_switch_engaged else 0.0)
            max_dd.add_metric(label, float(gate.config.max_drawdown))
            max_inv.add_metric(label, gate.config.max_inventory_lots * s._qty_unit)
            staleness.add_metric(label, s.staleness_seconds())
            synced.add_metric(label, 1.0 if e.book.is_synced else 0.0)
            for horizon_ns, horizon in zip(e.markouts.horizons_ns, s.horizon_labels, strict=True):
                mean = e.markouts.mean_bps(horizon_ns)
                markout_mean.add_metric([s.symbol, horizon], math.nan if mean is None else mean)
            if mid_ticks is not None:
                parts = e.attribution.result(mark_ticks_from_mid(mid_ticks))
                for part in ATTRIBUTION_PARTS:
                    attribution.add_metric([s.symbol, part], float(getattr(parts, part)))
            state_m = e.margin()
            perp = e.margin_params is not None
            margin_ratio.add_metric(label, float(state_m.margin_ratio) if state_m is not None and state_m.margin_ratio is not None else math.nan)
            margin_used.add_metric(label, float(state_m.margin_used) if state_m is not None else math.nan)
            funding.add_metric(label, float(ledger.funding_paid) if perp else math.nan)
            glob = gate.global_limit
            net_delta.add_metric(label, float(glob.net_delta()) if glob is not None and glob.max_net_delta is not None else math.nan)
            reconnects.add_metric(label, reconnect_counts.get(s.symbol, 0))
            tick = s._tick
            for side, price in (("bid", bid), ("ask", ask)):
                our_quote.add_metric([s.symbol, side], price * tick if price is not None else math.nan)
            for side, price in (("bid", e.book.best_bid()), ("ask", e.book.best_ask())):
                market_best.add_metric([s.symbol, side], price * tick if price is not None else math.nan)
            volume_base.add_metric(label, ledger.volume_lots * s._qty_unit)
            volume_quote.add_metric(label, float(ledger.volume_notional))
            realized.add_metric(label, float(ledger.realized_pnl()))
            live = any(o.status is OrderStatus.OPEN and not o.is_taker for o in e.om.orders.values())
            quoting.add_metric(label, 1.0 if live else 0.0)
        errors = CounterMetricFamily("mmbot_exchange_errors", "Venue errors by symbol and outcome kind", labels=["symbol", "kind"])
        error_symbols = [s.symbol for s in symbols] + [ACCOUNT_WIDE]
        for symbol in dict.fromkeys([*error_symbols, *(sym for sym, _ in error_counts)]):
            for kind in counters.ERROR_KINDS:
                errors.add_metric([symbol, kind], error_counts.get((symbol, kind), 0))
        md_rejected = CounterMetricFamily(
            "mmbot_market_data_rejections", "Market-data messages dropped by a validation rule (docs/market-data.md)", labels=["symbol", "rule"]
        )
        for (symbol, rule), count in sorted(counters.market_data_rejections().items()):
            md_rejected.add_metric([symbol, rule], count)
        journal = CounterMetricFamily("mmbot_journal_records", "Records appended to the audit journal")
        journal.add_metric([], journal_records + sum(source() for source in self.metrics.journal_sources))
        yield from (
            events, book_updates, trades, quotes, orders, fills, denials, position, notional, mid, gross, net,
            unreal, avg_entry, fees, spread, open_orders, state, reasons, kill, max_dd, max_inv, staleness, synced,
            markout_mean, attribution, margin_ratio, margin_used, funding, net_delta, reconnects, our_quote, market_best,
            volume_base, volume_quote, realized, quoting, errors, md_rejected, journal,
        )  # fmt: skip
        if self.metrics.venue_balances is not None:
            balances = GaugeMetricFamily("mmbot_venue_balance", "Venue balance (free + locked) per asset, from the user stream", labels=["asset"])
            for asset, total in sorted(self.metrics.venue_balances().items()):
                balances.add_metric([asset], float(total))
            yield balances


class Metrics:
    """One registry per daemon: build info, histograms, loop lag and the engine collector."""

    def __init__(
        self,
        *,
        version: str,
        config_hash: str,
        mode: str,
        clock: Callable[[], float] = time.monotonic,
        process_metrics: bool = True,
    ) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        build = Gauge(
            "mmbot_build_info", "Always 1; labels carry the version and the resolved config's hash",
            ["version", "config_hash", "mode"], registry=self.registry,
        )  # fmt: skip
        build.labels(version, config_hash, mode).set(1)
        self.tick_to_quote = Histogram(
            "mmbot_tick_to_quote_seconds",
            "Market-data receipt to order action leaving for the executor, wall seconds",
            ["symbol"], buckets=TICK_TO_QUOTE_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.markout = Histogram(
            "mmbot_markout_bps", "Fill markout at the horizon, bps (positive = good for us)",
            ["symbol", "horizon"], buckets=MARKOUT_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.loop_lag = Gauge(
            "mmbot_event_loop_lag_seconds", "Delay of the last event-loop probe beyond its scheduled wake-up",
            registry=self.registry,
        )  # fmt: skip
        self.symbols: list[SymbolMetrics] = []
        # Extra journal-record counts (e.g. a journal writer's own counter), added to counters.journal_records.
        self.journal_sources: list[Callable[[], int]] = []
        # Latest venue balances per asset (sandbox/live: the executor's balance stream).
        self.venue_balances: Callable[[], Mapping[str, Decimal]] | None = None
        self.registry.register(EngineCollector(self))

    def add_engine(self, engine: Engine, last_event_wall: Callable[[], float] | None = None) -> SymbolMetrics:
        view = SymbolMetrics(
            engine,
            tick_to_quote=self.tick_to_quote,
            markout=self.markout,
            last_event_wall=last_event_wall or (lambda: 0.0),
            clock=self.clock,
        )
        self.symbols.append(view)
        return view

    def refresh(self) -> None:
        for s in self.symbols:
            s.refresh()

    def exposition(self) -> bytes:
        """The Prometheus text format (0.0.4) of every metric, refreshed first."""
        self.refresh()
        return generate_latest(self.registry)
