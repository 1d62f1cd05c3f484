"""RiskGate: state machine, sticky/transient reasons, pre-trade checks, global limit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmbot.config.settings import load_settings
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import PlaceOrder, Side
from mmbot.domain.risk import RiskReason, TradingState, parse_reason
from mmbot.risk.gate import Allow, Deny, GlobalLimit, RiskConfig, RiskGate
from mmbot.wiring import build_gate, build_global_limit, build_instrument

MID = 6_100_000  # 61,000.00 USDT in ticks
STEP = 1000  # lots per 0.00001 BTC
SIZE = 1000 * STEP  # 0.01 BTC
MS = 1_000_000


def make_gate(instrument: Instrument, **overrides: object) -> RiskGate:
    fields: dict[str, object] = {"max_inventory_lots": 5 * SIZE, "calm_period_ms": 1000, "max_orders_per_second": 1000,
                                 "max_orders_per_minute": 100_000, "price_band_bps": 50.0, "max_open_orders": 50}
    fields.update(overrides)
    return RiskGate(RiskConfig(**fields), instrument)  # type: ignore[arg-type]


def order(side: Side, price: int = MID, qty: int = SIZE, *, coid: str = "c1", post_only: bool = True, symbol: str = "BTC/USDT") -> PlaceOrder:
    return PlaceOrder(client_order_id=coid, symbol=symbol, side=side, price_ticks=price, qty_lots=qty, post_only=post_only)


def check(gate: RiskGate, o: PlaceOrder, *, now: int = 0, position: int = 0, same: int = 0, opposite: int = 0,
          open_orders: int = 0, own_opposite: int | None = None, bid: int = MID - 1, ask: int = MID + 1) -> Allow | Deny:
    return gate.check_place(
        o, now_ns=now, position_lots=position, resting_same_side_lots=same, resting_opposite_side_lots=opposite,
        open_orders=open_orders, mid_ticks=float(MID), best_bid=bid, best_ask=ask, own_best_opposite=own_opposite,
    )


def test_check_place_when_halted_then_denies_every_order_with_reason(instrument: Instrument) -> None:
    gate = make_gate(instrument)
    gate.raise_reason(RiskReason.KILL_SWITCH, 0, "operator")

    buy = check(gate, order(Side.BUY, MID - 10))
    sell = check(gate, order(Side.SELL, MID + 10), position=SIZE)

    assert gate.state is TradingState.HALTED
    assert isinstance(buy, Deny) and buy.reason == "HALTED" and "KILL_SWITCH" in buy.detail
    assert isinstance(sell, Deny) and sell.reason == "HALTED"
    assert gate.denials == {"HALTED": 2}


def test_check_place_when_position_plus_resting_would_pass_limit_then_denies_max_position(instrument: Instrument) -> None:
    gate = make_gate(instrument)

    at_limit = check(gate, order(Side.BUY, MID - 10), position=2 * SIZE, same=2 * SIZE)
    over = check(gate, order(Side.BUY, MID - 10), position=3 * SIZE, same=2 * SIZE)
    short_over = check(gate, order(Side.SELL, MID + 10), position=-3 * SIZE, same=2 * SIZE)
    reducing_sell = check(gate, order(Side.SELL, MID + 10), position=3 * SIZE, same=2 * SIZE)

    assert isinstance(at_limit, Allow)
    assert isinstance(over, Deny) and over.reason == "MAX_POSITION"
    assert isinstance(short_over, Deny) and short_over.reason == "MAX_POSITION"
    assert isinstance(reducing_sell, Allow)


def test_check_place_when_reducing_then_allows_only_orders_toward_flat(instrument: Instrument) -> None:
    gate = make_gate(instrument)
    gate.raise_reason(RiskReason.ORDER_RATE, 0, "venue 429")

    adds = check(gate, order(Side.BUY, MID - 10), position=2 * SIZE)
    reduces = check(gate, order(Side.SELL, MID + 10), position=2 * SIZE)
    overshoots = check(gate, order(Side.SELL, MID + 10), position=2 * SIZE, same=2 * SIZE)

    assert gate.state is TradingState.REDUCING
    assert isinstance(adds, Deny) and adds.reason == "REDUCING"
    assert isinstance(reduces, Allow)
    assert isinstance(overshoots, Deny) and overshoots.reason == "REDUCING"


@pytest.mark.parametrize(
    ("o", "kwargs", "reason"),
    [
        (order(Side.BUY, MID - 10, qty=SIZE + 1), {}, "STEP_SIZE"),
        (order(Side.BUY, MID - 10, qty=STEP), {}, "MIN_NOTIONAL"),
        (order(Side.BUY, MID - 10, qty=4 * SIZE), {}, "MAX_NOTIONAL"),
        (order(Side.BUY, MID - 10), {"open_orders": 50}, "MAX_OPEN_ORDERS"),
        (order(Side.BUY, MID - 40_000), {}, "PRICE_BAND"),
        (order(Side.BUY, MID + 1), {}, "POST_ONLY_CROSS"),
        (order(Side.SELL, MID - 1), {}, "POST_ONLY_CROSS"),
        (order(Side.BUY, MID - 10), {"own_opposite": MID - 10, "ask": MID + 100}, "SELF_TRADE"),
        (order(Side.SELL, MID + 10), {"own_opposite": MID + 11, "bid": MID - 100}, "SELF_TRADE"),
    ],
)
def test_check_place_when_a_filter_fails_then_denies_naming_the_check(
    instrument: Instrument, o: PlaceOrder, kwargs: dict[str, int], reason: str
) -> None:
    gate = make_gate(instrument, max_order_notional=Decimal("2000"))

    verdict = check(gate, o, **kwargs)

    assert isinstance(verdict, Deny) and verdict.reason == reason
    assert gate.denials == {reason: 1}


def test_check_place_when_rate_budget_spent_then_denies_until_window_passes(instrument: Instrument) -> None:
    gate = make_gate(instrument, max_orders_per_second=3, max_orders_per_minute=5)
    s = 1_000_000_000

    first_second = [check(gate, order(Side.BUY, MID - 10), now=i * MS) for i in range(4)]
    next_second = [check(gate, order(Side.BUY, MID - 10), now=s + i * MS) for i in range(3)]
    next_minute = check(gate, order(Side.BUY, MID - 10), now=61 * s)

    assert [isinstance(v, Allow) for v in first_second] == [True, True, True, False]
    assert [isinstance(v, Allow) for v in next_second] == [True, True, False]  # 5 per minute
    assert isinstance(next_minute, Allow)
    assert gate.denials == {"ORDER_RATE": 2}


def test_raise_reason_when_several_hold_then_state_is_the_worst_and_clears_in_order(instrument: Instrument) -> None:
    gate = make_gate(instrument, calm_period_ms=1000)

    gate.raise_reason(RiskReason.MAX_POSITION, 0, "breach")
    after_reducing = gate.state
    gate.raise_reason(RiskReason.STALE_BOOK, 1 * MS, "stale")
    after_halt = gate.state
    gate.condition_cleared(RiskReason.STALE_BOOK, 10 * MS)
    still_halted = gate.tick(500 * MS)
    back = gate.tick(1010 * MS)

    assert after_reducing is TradingState.REDUCING
    assert after_halt is TradingState.HALTED
    assert still_halted is None  # inside the calm period
    assert back is not None and back.new_state is TradingState.REDUCING
    assert gate.reasons == ("MAX_POSITION",)
    assert [(t.old_state, t.new_state) for t in gate.transitions] == [
        (TradingState.ACTIVE, TradingState.REDUCING),
        (TradingState.REDUCING, TradingState.HALTED),
        (TradingState.HALTED, TradingState.REDUCING),
    ]


def test_condition_cleared_when_condition_returns_during_calm_then_reason_stays(instrument: Instrument) -> None:
    gate = make_gate(instrument, calm_period_ms=1000)
    gate.raise_reason(RiskReason.BOOK_GAP, 0, "gap")

    gate.condition_cleared(RiskReason.BOOK_GAP, 100 * MS)
    gate.raise_reason(RiskReason.BOOK_GAP, 600 * MS, "gap again")
    gate.tick(1200 * MS)

    assert gate.has(RiskReason.BOOK_GAP)
    assert gate.state is TradingState.HALTED


@pytest.mark.parametrize("reason", [RiskReason.KILL_SWITCH, RiskReason.MAX_DRAWDOWN, RiskReason.DAILY_LOSS, RiskReason.MANUAL])
def test_condition_cleared_when_reason_is_sticky_then_only_operator_clear_releases(instrument: Instrument, reason: RiskReason) -> None:
    gate = make_gate(instrument, calm_period_ms=0)
    gate.raise_reason(reason, 0, "test")

    gate.condition_cleared(reason, 1 * MS)
    gate.tick(10_000 * MS)
    held = gate.state
    transition = gate.clear(reason, 10_001 * MS)

    assert held is TradingState.HALTED
    assert transition is not None and transition.new_state is TradingState.ACTIVE
    assert "clear" in transition.cause
    assert gate.reasons == ()


def test_on_pnl_when_drawdown_passes_limit_then_halts_until_cleared_and_measures_afresh(instrument: Instrument) -> None:
    gate = make_gate(instrument, max_drawdown=Decimal("100"))

    gate.on_pnl(Decimal("50"), 0)
    gate.on_pnl(Decimal("-40"), 1 * MS)
    within = gate.state
    gate.on_pnl(Decimal("-51"), 2 * MS)
    tripped = gate.state
    gate.clear(RiskReason.MAX_DRAWDOWN, 3 * MS)
    gate.on_pnl(Decimal("-60"), 4 * MS)  # 9 below the new peak (-51): fine

    assert within is TradingState.ACTIVE
    assert tripped is TradingState.HALTED
    assert gate.state is TradingState.ACTIVE


def test_on_pnl_when_daily_loss_passes_limit_then_halts_sticky(instrument: Instrument) -> None:
    gate = make_gate(instrument, daily_loss_limit=Decimal("10"))

    gate.on_pnl(Decimal("0"), 0)
    gate.on_pnl(Decimal("-11"), 1 * MS)
    gate.condition_cleared(RiskReason.DAILY_LOSS, 2 * MS)
    gate.tick(10**12)

    assert gate.reasons == ("DAILY_LOSS",)
    assert gate.state is TradingState.HALTED


def test_on_reject_when_storm_then_halts_and_clears_after_window_and_calm(instrument: Instrument) -> None:
    gate = make_gate(instrument, reject_storm_count=3, reject_storm_window_ms=1000, calm_period_ms=100)

    for i in range(3):
        gate.on_reject(i * MS)
    storm = gate.state
    gate.on_reject(5000 * MS)  # the old rejects left the window: the condition is gone
    gate.tick(5200 * MS)

    assert storm is TradingState.HALTED
    assert gate.state is TradingState.ACTIVE


def test_on_position_when_beyond_limit_then_reducing_until_back_within(instrument: Instrument) -> None:
    gate = make_gate(instrument, calm_period_ms=0)

    gate.on_position(6 * SIZE, 0)
    breached = gate.state
    gate.on_position(4 * SIZE, 1 * MS)

    assert breached is TradingState.REDUCING
    assert gate.state is TradingState.ACTIVE


def test_check_place_when_global_limit_shared_then_second_symbol_is_denied(instrument: Instrument) -> None:
    eth = Instrument.from_symbol("ETH/USDT", tick_size="0.01", step_size="0.0001", min_notional="5")
    shared = GlobalLimit(Decimal("1500"))  # quote currency
    btc_gate = RiskGate(RiskConfig(max_inventory_lots=5 * SIZE), instrument, global_limit=shared)
    eth_gate = RiskGate(RiskConfig(max_inventory_lots=10**12), eth, global_limit=shared)
    eth_order = PlaceOrder(client_order_id="e1", symbol="ETH/USDT", side=Side.BUY, price_ticks=300_000, qty_lots=10_000_000)

    btc = btc_gate.check_place(order(Side.BUY, MID - 10), now_ns=0, position_lots=SIZE, resting_same_side_lots=0,
                               open_orders=0, mid_ticks=float(MID), best_bid=MID - 1, best_ask=MID + 1, own_best_opposite=None)
    eth_denied = eth_gate.check_place(eth_order, now_ns=0, position_lots=0, resting_same_side_lots=0, open_orders=0,
                                      mid_ticks=300_000.0, best_bid=299_999, best_ask=300_001, own_best_opposite=None)
    btc_gate.publish_exposure(0, 0, 0, float(MID))  # BTC flat again, orders cancelled
    eth_allowed = eth_gate.check_place(eth_order, now_ns=1, position_lots=0, resting_same_side_lots=0, open_orders=0,
                                       mid_ticks=300_000.0, best_bid=299_999, best_ask=300_001, own_best_opposite=None)

    assert isinstance(btc, Allow)  # 0.02 BTC ~ 1220 USDT
    assert isinstance(eth_denied, Deny) and eth_denied.reason == "GLOBAL_LIMIT"  # + 0.1 ETH x 3000 = 300
    assert isinstance(eth_allowed, Allow)
    assert shared.denials == 1


def test_build_gate_when_symbol_override_then_uses_per_symbol_limits() -> None:
    settings = load_settings(None, overrides={
        "risk": {"symbols": {"BTC/USDT": {"max_inventory": 0.02, "max_open_orders": 3}}, "global_max_inventory_notional": "5000"},
    })
    instrument = build_instrument(settings)
    shared = build_global_limit(settings)

    gate = build_gate(settings, instrument, shared)

    assert gate.config.max_inventory_lots == 2 * SIZE
    assert gate.config.max_open_orders == 3
    assert gate.global_limit is shared and shared is not None
    assert shared.max_inventory_notional == Decimal("5000")


def test_parse_reason_when_unknown_then_value_error_lists_codes() -> None:
    assert parse_reason("kill_switch") is RiskReason.KILL_SWITCH
    with pytest.raises(ValueError, match=r"must be one of .*KILL_SWITCH.*was 'NOPE'"):
        parse_reason("NOPE")
