"""Property: whatever the strategy wants and whatever the venue does, the gate holds the line.

For any sequence of desired quotes, acks, fills, partial fills, cancels, kill-switch
toggles and stale-book timers driven through the real Engine (strategy -> gate ->
order manager -> ledger):

* ``position + all live buys <= max_inventory`` and ``all live sells - position <=
  max_inventory`` (so ``|position| + same-side resting <= max_inventory``), counting
  orders in flight and being cancelled, since any of them can still fill;
* no order is placed while the gate is HALTED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import (
    FillReason,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    PlaceOrder,
    Quote,
    Side,
)
from mmbot.domain.risk import RiskReason, TradingState, reason_state
from mmbot.engine.engine import Engine, EngineConfig
from mmbot.marketdata.book import L2Book
from mmbot.risk.gate import Allow, RiskConfig, RiskGate
from mmbot.strategy.model import Decision, MarketContext

MID = 6_100_000
SIZE = 1_000_000  # 0.01 BTC in lots
MAX_INVENTORY = 3 * SIZE
MS = 1_000_000
INSTRUMENT = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


@dataclass
class ScriptedModel:
    """A strategy that wants whatever the test says, ignoring inventory on purpose."""

    quotes: tuple[Quote, ...] = ()
    seen: list[int] = field(default_factory=list)

    def on_trade(self, trade: Trade) -> None:
        return None

    def on_mid(self, now_ns: int, mid_ticks: float) -> None:
        return None

    def decide(self, ctx: MarketContext) -> Decision:
        self.seen.append(ctx.inventory_lots)
        return Decision(quotes=self.quotes)


quote_st = st.builds(
    lambda side, offset, mult, level: Quote(
        side=side, price_ticks=MID - offset if side is Side.BUY else MID + offset, qty_lots=mult * SIZE, level=level
    ),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(min_value=-2, max_value=30),  # <= 0 crosses our side of the touch: post-only must stop it
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=2),
)
op_st = st.one_of(
    st.tuples(st.just("quote"), st.lists(quote_st, max_size=6)),
    st.tuples(st.just("ack"), st.integers(min_value=0, max_value=10)),
    st.tuples(st.just("fill"), st.integers(min_value=0, max_value=10), st.integers(min_value=1, max_value=4)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=10)),
    st.tuples(st.just("kill"), st.booleans()),
    st.tuples(st.just("stale"), st.just(0)),
    st.tuples(st.just("book"), st.just(0)),
)


def exposure(engine: Engine) -> tuple[int, int]:
    orders = engine.om.orders.values()
    buys = sum(o.leaves_lots for o in orders if o.side is Side.BUY)
    sells = sum(o.leaves_lots for o in orders if o.side is Side.SELL)
    position = engine.ledger.position_lots
    return position + buys, sells - position


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op_st, min_size=1, max_size=60))
def test_gate_when_any_sequence_of_quotes_fills_and_cancels_then_inventory_limit_holds_and_halted_places_nothing(
    ops: list[tuple[object, ...]],
) -> None:
    book = L2Book("BTC/USDT")
    book.apply_snapshot(BookSnapshot("BTC/USDT", 0, 100, ((MID - 1, 10**9),), ((MID + 1, 10**9),)))
    model = ScriptedModel()
    gate = RiskGate(
        RiskConfig(max_inventory_lots=MAX_INVENTORY, max_orders_per_second=10_000, max_orders_per_minute=10**6,
                   max_open_orders=1000, calm_period_ms=50, max_order_notional=Decimal("10000000")),
        INSTRUMENT,
    )
    engine = Engine(INSTRUMENT, book, model, gate, EngineConfig(min_requote_interval_ms=0, stale_book_ms=1000))
    now = 1 * MS
    update_id = 100
    placed_while_halted = 0
    max_seen = (0, 0)
    for op in ops:
        now += 10 * MS
        kind = op[0]
        commands: list[object] = []
        live = list(engine.om.orders.values())
        if kind == "quote":
            model.quotes = tuple(op[1])  # type: ignore[arg-type]
            commands = list(engine.on_market(BestBidAsk("BTC/USDT", now, update_id + 1, MID - 1, 10**6, MID + 1, 10**6), now))
        elif kind == "book":
            update_id += 1
            delta = BookDelta("BTC/USDT", now, now, update_id, update_id, ((MID - 1, 10**9),), ())
            book.apply_delta(delta)
            commands = list(engine.on_market(delta, now))
        elif kind == "stale":
            now += 2000 * MS
            commands = list(engine.on_timer(now))
        elif kind == "kill":
            commands = list(engine.set_kill_switch(bool(op[1]), now))
        elif live:
            o = live[int(op[1]) % len(live)]  # type: ignore[call-overload]
            if kind == "ack":
                commands = list(engine.on_exec(OrderAccepted(client_order_id=o.client_order_id, symbol="BTC/USDT", ts_ns=now), now))
            elif kind == "fill":
                qty = min(o.leaves_lots, int(op[2]) * SIZE // 2)  # type: ignore[call-overload]
                if qty > 0:
                    report = OrderFilled(
                        client_order_id=o.client_order_id, symbol="BTC/USDT", ts_ns=now, side=o.side, price_ticks=o.price_ticks,
                        qty_lots=qty, leaves_lots=o.leaves_lots - qty, fee=Decimal(0), liquidity=Liquidity.MAKER,
                        reason=FillReason.TRADE_THROUGH,
                    )
                    commands = list(engine.on_exec(report, now))
            elif kind == "cancel":
                commands = list(engine.on_exec(OrderCancelled(client_order_id=o.client_order_id, symbol="BTC/USDT", ts_ns=now), now))
        places = [c for c in commands if isinstance(c, PlaceOrder)]
        if gate.state is TradingState.HALTED:
            placed_while_halted += len(places)
        long_worst, short_worst = exposure(engine)
        max_seen = (max(max_seen[0], long_worst), max(max_seen[1], short_worst))
        assert long_worst <= MAX_INVENTORY, (op, long_worst)
        assert short_worst <= MAX_INVENTORY, (op, short_worst)
        assert abs(engine.ledger.position_lots) <= MAX_INVENTORY

    # Replay the event stream: every "place" happened while the last "risk" event said not HALTED.
    state = "ACTIVE"
    places_in_halted = 0
    for event in engine.drain_events():
        if event.kind == "risk":
            state = event.payload["new"]
        elif event.kind == "place" and state == "HALTED":
            places_in_halted += 1
    assert placed_while_halted == 0
    assert places_in_halted == 0
    assert sum(gate.denials.values()) == engine.denials


reason_st = st.sampled_from(list(RiskReason))
gate_op_st = st.one_of(
    st.tuples(st.just("raise"), reason_st),
    st.tuples(st.just("gone"), reason_st),
    st.tuples(st.just("clear"), reason_st),
    st.tuples(
        st.just("place"),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=-4, max_value=4),  # position in SIZE units
        st.integers(min_value=0, max_value=4),  # resting same side
        st.integers(min_value=1, max_value=3),  # order size
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(gate_op_st, min_size=1, max_size=40))
def test_check_place_when_any_reasons_come_and_go_then_halted_allows_nothing_and_reducing_only_reduces(
    ops: list[tuple[object, ...]],
) -> None:
    gate = RiskGate(RiskConfig(max_inventory_lots=MAX_INVENTORY, max_orders_per_second=10**6, max_orders_per_minute=10**6,
                               max_open_orders=10**6, calm_period_ms=5, max_order_notional=Decimal("10000000")), INSTRUMENT)
    now = 0
    allowed_in_halted = 0
    for op in ops:
        now += 3 * MS
        gate.tick(now)
        if op[0] == "raise":
            gate.raise_reason(op[1], now, "test")  # type: ignore[arg-type]
        elif op[0] == "gone":
            gate.condition_cleared(op[1], now)  # type: ignore[arg-type]
        elif op[0] == "clear":
            gate.clear(op[1], now)  # type: ignore[arg-type]
        else:
            _, side, pos, same, qty = op
            position, resting, size = int(pos) * SIZE, int(same) * SIZE, int(qty) * SIZE  # type: ignore[call-overload]
            price = MID - 5 if side is Side.BUY else MID + 5
            state = gate.state
            verdict = gate.check_place(
                PlaceOrder(client_order_id="x", symbol="BTC/USDT", side=side, price_ticks=price, qty_lots=size),  # type: ignore[arg-type]
                now_ns=now, position_lots=position, resting_same_side_lots=resting, open_orders=0, mid_ticks=float(MID),
                best_bid=MID - 1, best_ask=MID + 1, own_best_opposite=None,
            )
            if isinstance(verdict, Allow):
                allowed_in_halted += state is TradingState.HALTED
                worst = position + resting + size if side is Side.BUY else resting + size - position
                assert worst <= MAX_INVENTORY
                if state is TradingState.REDUCING:
                    reduces = (position > 0 and side is Side.SELL) or (position < 0 and side is Side.BUY)
                    assert reduces and resting + size <= abs(position)
        expected = max((reason_state(r) for r in RiskReason if gate.has(r)), default=TradingState.ACTIVE)
        assert gate.state is expected
    assert allowed_in_halted == 0
