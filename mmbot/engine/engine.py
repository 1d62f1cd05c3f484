"""Engine (one per symbol): strategy -> risk gate -> order manager -> portfolio.

Pure: driven by ``on_market(event, now_ns)``, ``on_exec(report, now_ns)`` and
``on_timer(now_ns)``; returns commands for the executor. The L2 book is applied by
the feed/driver before ``on_market`` is called (the engine only reads it).

Mid: the freshest of the L2 book's touch and the last best bid/ask message. A
bookTicker whose update id is newer than the last applied depth diff is used; the
depth stream arrives every 100 ms while bookTicker is real time.

Every notable thing (fill, order action, ack, denial, risk transition, decision) is
recorded as a typed event (mmbot.domain.engine_events); the driver takes them with
:meth:`Engine.drain_events` and publishes them to the observers (journal, metrics,
fill log, run record, status line), which subscribe by type and never steer.

Risk: every placement passes ``RiskGate.check_place`` (mmbot/risk/gate.py). The
market-data watchdogs run on the engine's clock: STALE_BOOK (no depth update for
``stale_book_ms``) and FEED_SILENT (no message at all for ``feed_silent_ms``) in
``on_timer``; BOOK_GAP and CROSSED_BOOK per update. Whenever the gate is HALTED the
engine cancels everything at once (``_halt_cancels``) and ``on_timer`` re-sends the
cancel-all while orders remain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from mmbot.domain.engine_events import (
    CancelAllRequested,
    CancelRequested,
    EngineEvent,
    FillBooked,
    FundingBooked,
    MarkoutResolved,
    Noted,
    OrderAcked,
    OrderCancelConfirmed,
    OrderDenied,
    OrderPlaced,
    QuotesDecided,
    RiskChanged,
    VenueRejected,
)
from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, MarketEvent, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import (
    Command,
    ExecReport,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    PlaceOrder,
    Quote,
    Side,
)
from mmbot.domain.risk import RiskReason, TradingState
from mmbot.engine.order_manager import OrderManager
from mmbot.marketdata.book import L2Book
from mmbot.portfolio.attribution import AttributionTracker
from mmbot.portfolio.ledger import Ledger, mark_ticks_from_mid
from mmbot.portfolio.margin import MarginParams, MarginState, margin_state
from mmbot.portfolio.markout import MarkoutTracker
from mmbot.risk.gate import Deny, RiskGate, RiskTransition
from mmbot.risk.watchdog import SilenceWatchdog, apply_rule, check_silence
from mmbot.strategy.model import Decision, MarketContext, QuoteModel
from mmbot.strategy.plugin import MODEL_RAISED, check_decision


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    min_requote_interval_ms: float = 100.0
    update_every_n: int = 1  # decide on every N-th eligible step
    stale_book_ms: float = 5_000.0  # STALE_BOOK: no depth update for this long (capture/exchange time)
    feed_silent_ms: float = 10_000.0  # FEED_SILENT: no market-data message of any kind for this long
    coid_prefix: str = "mmb-"
    requote_tolerance_ticks: int = 0


__all__ = ["Engine", "EngineConfig", "EngineEvent"]


class Engine:
    def __init__(
        self,
        instrument: Instrument,
        book: L2Book,
        model: QuoteModel,
        gate: RiskGate,
        config: EngineConfig | None = None,
    ) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.book = book
        self.model = model
        self.gate = gate
        self.config = config or EngineConfig()
        self.om = OrderManager(self.symbol, self.config.coid_prefix, self.config.requote_tolerance_ticks)
        self.ledger = Ledger(instrument)
        self.markouts = MarkoutTracker()
        self.attribution = AttributionTracker(instrument.tick_size * instrument.qty_unit, instrument.quote_ccy)
        self._outbox: list[EngineEvent] = []
        self.record_decisions = False
        self.bbo: BestBidAsk | None = None
        self.mid_ticks: float | None = None
        self.last_decision_ns = -(10**18)
        self._steps = 0
        self._last_desired: tuple[Quote, ...] = ()
        self._last_book_update_ns = 0
        self._last_book_id = -1
        self._gaps_seen = 0
        self._crossed_seen = 0
        self.quoted_bid: int | None = None
        self.quoted_ask: int | None = None
        # counters
        self.events_count = 0
        self.book_updates = 0
        self.trades_seen = 0
        self.quotes = 0
        self.decisions = 0
        self.filled_orders: set[str] = set()
        self.denials = 0
        self.fill_reasons: dict[str, int] = {}
        # Watchdogs on market-data time (risk/watchdog.py); evaluated in on_timer.
        self.book_watchdog = SilenceWatchdog(RiskReason.STALE_BOOK, self.config.stale_book_ms)
        self.feed_watchdog = SilenceWatchdog(RiskReason.FEED_SILENT, self.config.feed_silent_ms)
        # Cross-instrument hedging (mmbot.engine.hedging.HedgeLink, set by the composition root):
        # net-delta inventory, the withdrawn side while a hedge is in flight, hedges routed.
        self.hedge_link: Any = None
        self.fill_observers: list[Callable[[], None]] = []  # called after each booked fill (the hedge link's net-delta peak)
        # Perpetuals: the margin watchdog's inputs (set by the composition root) and its peaks.
        self.margin_params: MarginParams | None = None
        self.collateral_start = Decimal(0)  # settlement asset at the start (paper.balances / the venue)
        self.max_margin_ratio: Fraction | None = None
        self.max_margin_used = Fraction(0)

    def margin(self) -> MarginState | None:
        """The position's margin figures now (perpetuals with margin_params; mmbot.portfolio.margin).

        Collateral = the start balance + realised PnL - fees - funding (the ledger's): what
        the venue's wallet books, computed from the engine's own ledger in every mode.
        """
        if self.margin_params is None or self.mid_ticks is None:
            return None
        ledger = self.ledger
        return margin_state(self.instrument, position_lots=ledger.position_lots, entry_ticks=ledger.avg_entry_ticks,
                            mark_ticks=self.mark_ticks(), params=self.margin_params,
                            wallet_balance=Fraction(self.collateral_start) + ledger.realized_pnl())

    def book_funding(self, *, funding_ns: int, payment: Decimal, position_lots: int, mark_ticks: int, rate: Decimal,
                     now_ns: int) -> None:
        """A funding payment the venue booked (mmbot.portfolio.funding): into the ledger, and a
        FundingBooked event for the journal (``mmbot audit summary`` books it again)."""
        self.ledger.book_funding(payment)
        self._outbox.append(FundingBooked(ts_ns=now_ns, funding_ts_ns=funding_ns, position=position_lots, mark=mark_ticks,
                                          rate=str(rate), payment=str(payment)))

    def _watch_account(self, now_ns: int) -> None:
        """Net delta (shared limit) and the margin watchdog, after fills and on timers."""
        gate = self.gate
        om = self.om
        if gate.global_limit is not None and gate.global_limit.max_net_delta is not None:
            self._transition(gate.on_delta(
                self.ledger.position_lots,
                sum(o.leaves_lots for o in om.orders.values() if o.side is Side.BUY),
                sum(o.leaves_lots for o in om.orders.values() if o.side is Side.SELL),
                self.mid_ticks, now_ns,
            ))
        state = self.margin()
        if state is not None:
            ratio = state.margin_ratio
            if ratio is not None and (self.max_margin_ratio is None or ratio > self.max_margin_ratio):
                self.max_margin_ratio = ratio
            self.max_margin_used = max(self.max_margin_used, state.margin_used)
            self._transition(gate.on_margin(ratio, now_ns))

    # --- helpers ---------------------------------------------------------------------
    def drain_events(self) -> list[EngineEvent]:
        """The events recorded since the last call, in order (the driver publishes them)."""
        out = self._outbox
        if out:
            self._outbox = []
        return out

    @property
    def has_events(self) -> bool:
        return bool(self._outbox)

    def note(self, kind: str, ts: int, **fields: Any) -> None:
        """A fact decided outside the engine (kill switch confirmed, reload) for the observers."""
        self._outbox.append(Noted(ts_ns=ts, name=kind, fields=fields))

    def deny_outside(self, ts: int, reason: str, detail: str, client_order_id: str = "") -> None:
        """A placement refused outside the risk gate (the executor's order budget): for the
        observers only, not a gate denial (``denials`` counts the gate's)."""
        self._outbox.append(OrderDenied(ts_ns=ts, reason=reason, detail=detail, client_order_id=client_order_id))

    def _halt_cancels(self, now_ns: int, reason: str) -> list[Command]:
        """Cancel-all when HALTED and some order is not already being cancelled."""
        if self.gate.state is TradingState.HALTED and any(o.status is not OrderStatus.PENDING_CANCEL for o in self.om.orders.values()):
            return self._cancel_all(now_ns, reason)
        return []

    def _transition(self, t: RiskTransition | None) -> None:
        if t is not None:
            self._outbox.append(
                RiskChanged(ts_ns=t.ts_ns, old=t.old_state.name, new=t.new_state.name, reasons=tuple(t.reasons), cause=t.cause)
            )

    def current_mid(self) -> float | None:
        book = self.book
        bbo = self.bbo
        if bbo is not None and bbo.update_id > book.last_update_id and bbo.bid_ticks < bbo.ask_ticks:
            return (bbo.bid_ticks + bbo.ask_ticks) / 2.0
        bid = book.best_bid()
        ask = book.best_ask()
        if bid is None or ask is None:
            return None
        return (bid + ask) / 2.0

    def touch(self) -> tuple[int, int] | None:
        book = self.book
        bbo = self.bbo
        if bbo is not None and bbo.update_id > book.last_update_id and bbo.bid_ticks < bbo.ask_ticks:
            return bbo.bid_ticks, bbo.ask_ticks
        bid = book.best_bid()
        ask = book.best_ask()
        if bid is None or ask is None:
            return None
        return bid, ask

    # --- market data -------------------------------------------------------------------
    def on_market(self, event: MarketEvent, now_ns: int) -> list[Command]:
        self.feed_watchdog.beat(now_ns)
        if type(event) is BestBidAsk:
            self.bbo = event
        elif type(event) is Trade:
            self.events_count += 1
            self.trades_seen += 1
            try:
                self.model.on_trade(event)
            except Exception as exc:  # a plugin's bug must not stop the daemon: counted, not raised
                self._refuse_model(now_ns, MODEL_RAISED, f"on_trade: {type(exc).__name__}: {exc}")
            return []
        else:
            assert isinstance(event, (BookDelta, BookSnapshot))
            self.events_count += len(event.bids) + len(event.asks)
            self.book_updates += 1
            book = self.book
            # STALE_BOOK watches the book, not the messages: a diff that was dropped
            # (stale ids, a rejected jump) is no sign of life of the book.
            moved = book.last_update_id != self._last_book_id or (type(event) is BookSnapshot and book.is_synced)
            if moved:
                self._last_book_id = book.last_update_id
                self._last_book_update_ns = now_ns
                self.book_watchdog.beat(now_ns)
            self._check_book(now_ns, moved)
            if self.gate.state is TradingState.HALTED:
                halt = self._halt_cancels(now_ns, "halted:" + ",".join(self.gate.reasons))
                if halt:
                    return halt
        book = self.book
        if not book.is_synced:
            return []
        mid = self.current_mid()
        if mid is None:
            return []
        self.mid_ticks = mid
        # Resolved markouts are published for metrics and fill dumps (fill index, horizon, bps).
        for index, horizon_ns, bps in self.markouts.on_mid(now_ns, mid):
            self._outbox.append(MarkoutResolved(ts_ns=now_ns, fill_index=index, horizon_ns=horizon_ns, bps=bps))
        self.attribution.on_mid(now_ns, mid)
        try:
            self.model.on_mid(now_ns, mid)
        except Exception as exc:  # a plugin's bug must not stop the daemon: counted, not raised
            self._refuse_model(now_ns, MODEL_RAISED, f"on_mid: {type(exc).__name__}: {exc}")
        if now_ns - self.last_decision_ns < self.config.min_requote_interval_ms * 1_000_000:
            return []
        self._steps += 1
        if self._steps % self.config.update_every_n:
            return []
        self.last_decision_ns = now_ns
        return self._decide(now_ns)

    def _check_book(self, now_ns: int, moved: bool = True) -> None:
        """BOOK_GAP and CROSSED_BOOK hold while the book is invalid; both clear (after the
        calm period) once a resynced book is valid; STALE_BOOK clears when the book moves."""
        book = self.book
        gate = self.gate
        if book.gap_count != self._gaps_seen:
            self._gaps_seen = book.gap_count
            self._transition(gate.raise_reason(RiskReason.BOOK_GAP, now_ns, "update id gap"))
        elif book.is_synced and gate.has(RiskReason.BOOK_GAP):
            self._transition(gate.condition_cleared(RiskReason.BOOK_GAP, now_ns))
        if book.crossed_count != self._crossed_seen:
            self._crossed_seen = book.crossed_count
            self._transition(gate.raise_reason(RiskReason.CROSSED_BOOK, now_ns, "crossed book"))
        elif gate.has(RiskReason.CROSSED_BOOK) and book.is_synced and not book.is_crossed():
            self._transition(gate.condition_cleared(RiskReason.CROSSED_BOOK, now_ns))
        if moved and gate.has(RiskReason.STALE_BOOK):
            self._transition(gate.condition_cleared(RiskReason.STALE_BOOK, now_ns))

    # --- decisions ---------------------------------------------------------------------
    def _decide(self, now_ns: int) -> list[Command]:
        gate = self.gate
        self._transition(gate.tick(now_ns))
        if gate.state is TradingState.HALTED:
            return self._cancel_all(now_ns, "halted")
        touch = self.touch()
        if touch is None or self.mid_ticks is None:
            return []
        om = self.om
        link = self.hedge_link
        ctx = MarketContext(
            now_ns=now_ns,
            instrument=self.instrument,
            mid_ticks=self.mid_ticks,
            best_bid=touch[0],
            best_ask=touch[1],
            # Hedged on another instrument: the model sees the net delta (quoted + hedge).
            inventory_lots=self.ledger.position_lots + (link.offset_lots() if link is not None else 0),
            resting_bid_lots=om.resting_lots(Side.BUY),
            resting_ask_lots=om.resting_lots(Side.SELL),
            book=self.book,
        )
        decision = self._model_decision(ctx, now_ns)
        self.decisions += 1
        if self.record_decisions:
            self._outbox.append(QuotesDecided(
                ts_ns=now_ns,
                quotes=tuple((q.side.name, q.price_ticks, q.qty_lots, q.level, q.reason) for q in decision.quotes),
                cancel_all=decision.cancel_all,
                reasons=tuple(decision.reasons),
            ))
        if decision.cancel_all:
            self._last_desired = ()
            return self._cancel_all(now_ns, ",".join(decision.reasons) or "model")
        quotes = decision.quotes
        if link is not None and (withdraw := link.withdraw_side()) is not None:
            quotes = tuple(q for q in quotes if q.side is not withdraw)  # a hedge is in flight
        self.quotes += len(quotes)
        self._last_desired = quotes
        bids = [q.price_ticks for q in quotes if q.side is Side.BUY]
        asks = [q.price_ticks for q in quotes if q.side is Side.SELL]
        self.quoted_bid = max(bids) if bids else None
        self.quoted_ask = min(asks) if asks else None
        commands = self._apply_desired(quotes, now_ns, touch)
        if decision.hedge is not None:
            if link is not None:
                link.send(decision.hedge, now_ns)  # a taker order on the hedge instrument
            else:
                commands.extend(self._place([decision.hedge], now_ns, touch))
        return commands

    def place_external(self, quotes: list[Quote], now_ns: int) -> list[Command]:
        """Orders decided outside this engine's model (a hedge for another instrument's
        quotes), through the same risk gate and order manager; [] without a valid book."""
        touch = self.touch()
        if touch is None or self.gate.state is TradingState.HALTED:
            return []
        return self._place(quotes, now_ns, touch)

    def _model_decision(self, ctx: MarketContext, now_ns: int) -> Decision:
        """The model's decision, checked (:func:`mmbot.strategy.plugin.check_decision`); a
        decision that raised or cannot be traded is refused, counted, and becomes a cancel-all."""
        try:
            decision = self.model.decide(ctx)
        except Exception as exc:  # a plugin's bug must not stop the daemon: counted, not raised
            reason, detail = MODEL_RAISED, f"decide: {type(exc).__name__}: {exc}"
        else:
            bad = check_decision(decision, self.instrument)
            if bad is None:
                return decision
            reason, detail = bad
        self._refuse_model(now_ns, reason, detail)
        return Decision(cancel_all=True, reasons=(reason.lower(),))

    def _refuse_model(self, now_ns: int, reason: str, detail: str) -> None:
        self.gate.count_denial(reason)
        self.denials += 1
        self._outbox.append(OrderDenied(ts_ns=now_ns, reason=reason, detail=detail[:500]))

    def _apply_desired(self, desired: tuple[Quote, ...], now_ns: int, touch: tuple[int, int]) -> list[Command]:
        om = self.om
        cancels, new = om.diff(desired)
        commands: list[Command] = []
        for cancel in cancels:
            om.mark_cancel_sent(cancel.client_order_id)
            commands.append(cancel)
            self._outbox.append(CancelRequested(ts_ns=now_ns, client_order_id=cancel.client_order_id, reason=cancel.reason))
        commands.extend(self._place(new, now_ns, touch))
        return commands

    def _place(self, quotes: list[Quote], now_ns: int, touch: tuple[int, int]) -> list[Command]:
        om = self.om
        gate = self.gate
        commands: list[Command] = []
        for q in quotes:
            cmd = PlaceOrder(
                client_order_id=om.next_coid(),
                symbol=self.symbol,
                side=q.side,
                price_ticks=q.price_ticks,
                qty_lots=q.qty_lots,
                post_only=not q.is_taker,
                is_taker=q.is_taker,
                level=q.level,
                reason=q.reason,
            )
            verdict = gate.check_place(
                cmd,
                now_ns=now_ns,
                position_lots=self.ledger.position_lots,
                # Every live order on the side can still fill, takers in flight included.
                resting_same_side_lots=sum(o.leaves_lots for o in om.orders.values() if o.side is q.side),
                resting_opposite_side_lots=sum(o.leaves_lots for o in om.orders.values() if o.side is not q.side),
                open_orders=om.open_count(),
                mid_ticks=self.mid_ticks,
                best_bid=touch[0],
                best_ask=touch[1],
                own_best_opposite=om.own_best(q.side.opposite),
            )
            if isinstance(verdict, Deny):
                self.denials += 1
                self._outbox.append(OrderDenied(ts_ns=now_ns, reason=verdict.reason, detail=verdict.detail, side=q.side.name, price=q.price_ticks))
                continue
            om.register_place(cmd, now_ns)
            commands.append(cmd)
            self._outbox.append(OrderPlaced(
                ts_ns=now_ns,
                client_order_id=cmd.client_order_id,
                side=cmd.side.name,
                price=cmd.price_ticks,
                qty=cmd.qty_lots,
                level=cmd.level,
                taker=cmd.is_taker,
                reason=cmd.reason,
            ))
        return commands

    def _cancel_all(self, now_ns: int, reason: str) -> list[Command]:
        self._last_desired = ()  # nothing to re-place when the cancels come back
        commands = self.om.cancel_all_commands()
        if commands:
            self._outbox.append(CancelAllRequested(ts_ns=now_ns, reason=reason))
        self.quoted_bid = None
        self.quoted_ask = None
        return commands

    # --- execution reports -----------------------------------------------------------------
    def on_exec(self, report: ExecReport, now_ns: int) -> list[Command]:
        order = self.om.on_report(report)
        if isinstance(report, OrderFilled):
            if order is None:
                # A fill for an order we no longer track (e.g. after a restart): book it anyway.
                pass
            self.ledger.apply_fill(report.side, report.price_ticks, report.qty_lots, report.fee)
            self.filled_orders.add(report.client_order_id)
            self.fill_reasons[report.reason.value] = self.fill_reasons.get(report.reason.value, 0) + 1
            fill_index = self.markouts.on_fill(report.ts_ns, int(report.side), float(report.price_ticks))
            self.attribution.on_fill(report.ts_ns, int(report.side), report.price_ticks, report.qty_lots, report.fee, self.mid_ticks)
            self._outbox.append(FillBooked(
                ts_ns=report.ts_ns,
                fill_index=fill_index,
                client_order_id=report.client_order_id,
                side=report.side.name,
                price=report.price_ticks,
                qty=report.qty_lots,
                leaves=report.leaves_lots,
                fee=str(report.fee),
                liquidity=report.liquidity.value,
                reason=report.reason.value,
                queue_ahead=report.queue_ahead_at_placement_lots,
                position=self.ledger.position_lots,
                trade_id=report.trade_id,
                received_ns=now_ns if report.trade_id else 0,
            ))
            if self.mid_ticks is not None:
                net = self.ledger.net_pnl_quote(self.mark_ticks())  # the limits are in the quote currency
                self._transition(self.gate.on_pnl(net, now_ns))
            self._transition(self.gate.on_position(self.ledger.position_lots, now_ns))
            self._watch_account(now_ns)
            for observe in self.fill_observers:
                observe()
            return self._halt_cancels(now_ns, "halted:" + ",".join(self.gate.reasons))
        if type(report) is OrderAccepted:
            self._outbox.append(OrderAcked(
                ts_ns=report.ts_ns, client_order_id=report.client_order_id, venue_order_id=report.venue_order_id,
                queue_ahead=report.queue_ahead_lots, venue_ts_ns=report.venue_ts_ns,
            ))
            return []
        if isinstance(report, OrderRejected):
            if not report.for_cancel:
                self._outbox.append(VenueRejected(ts_ns=report.ts_ns, client_order_id=report.client_order_id, code=report.code, message=report.message))
                self._transition(self.gate.on_reject(now_ns))
            return []
        if isinstance(report, OrderCancelled):
            self._outbox.append(OrderCancelConfirmed(ts_ns=report.ts_ns, client_order_id=report.client_order_id, reason=report.reason))
            # A replaced quote: place the desired one now that the old order is gone.
            if self._last_desired and self.gate.state is not TradingState.HALTED:
                touch = self.touch()
                if touch is not None:
                    _, new = self.om.diff(self._last_desired)
                    if new:
                        return self._place(new, now_ns, touch)
        return []

    # --- timers and operator actions ---------------------------------------------------------
    def on_timer(self, now_ns: int) -> list[Command]:
        gate = self.gate
        # A book that is not synced is BOOK_GAP's business (or not started yet).
        if self.book.is_synced or gate.has(RiskReason.STALE_BOOK):
            self._transition(check_silence(gate, self.book_watchdog, now_ns))
        self._transition(check_silence(gate, self.feed_watchdog, now_ns))
        # A reload may have lowered the limit below the position: REDUCING until back within.
        self._transition(gate.on_position(self.ledger.position_lots, now_ns))
        if self.mid_ticks is not None:
            # Mark-to-market between fills counts toward drawdown and daily loss too.
            self._transition(gate.on_pnl(self.ledger.net_pnl_quote(self.mark_ticks()), now_ns))
            om = self.om
            gate.publish_exposure(
                self.ledger.position_lots,
                sum(o.leaves_lots for o in om.orders.values() if o.side is Side.BUY),
                sum(o.leaves_lots for o in om.orders.values() if o.side is Side.SELL),
                self.mid_ticks,
            )
            self._watch_account(now_ns)
        self._transition(gate.tick(now_ns))
        if gate.state is TradingState.HALTED and self.om.orders:
            return self._cancel_all(now_ns, "halted")
        return []

    def raise_reason(self, reason: RiskReason, now_ns: int, cause: str = "") -> list[Command]:
        self._transition(self.gate.raise_reason(reason, now_ns, cause))
        if self.gate.state is TradingState.HALTED:
            return self._cancel_all(now_ns, reason.value)
        return []

    def watchdog(self, reason: RiskReason, tripped: bool, now_ns: int, cause: str = "") -> list[Command]:
        """An outside watchdog's verdict (loop lag, dead-man): raise while tripped, then clear after calm."""
        self._transition(apply_rule(self.gate, reason, tripped, now_ns, cause))
        return self._halt_cancels(now_ns, reason.value) if tripped else []

    def clear_reason(self, reason: RiskReason, now_ns: int, cause: str = "operator") -> None:
        self._transition(self.gate.clear(reason, now_ns, cause))

    def set_kill_switch(self, engaged: bool, now_ns: int) -> list[Command]:
        if engaged:
            return self.raise_reason(RiskReason.KILL_SWITCH, now_ns, "kill switch engaged")
        self.clear_reason(RiskReason.KILL_SWITCH, now_ns, "kill switch released")
        return []

    def cancel_everything(self, now_ns: int, reason: str) -> list[Command]:
        return self._cancel_all(now_ns, reason)

    # --- results ---------------------------------------------------------------------------
    def mark_ticks(self) -> int:
        """The mark of every PnL figure (:func:`mmbot.portfolio.ledger.mark_ticks_from_mid`);
        0 before the first mid."""
        if self.mid_ticks is not None:
            return mark_ticks_from_mid(self.mid_ticks)
        return 0

    def net_pnl(self) -> Decimal:
        return self.ledger.net_pnl(self.mark_ticks())
