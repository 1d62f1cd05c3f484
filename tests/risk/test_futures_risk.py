"""Risk for futures (issue 32 item 3): the net-delta limit across instruments and the margin watchdog."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.config.settings import load_settings
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import PlaceOrder, Side
from mmbot.domain.risk import RiskReason, TradingState
from mmbot.errors import ConfigError
from mmbot.risk.gate import Allow, Deny, GlobalLimit, RiskConfig, RiskGate

ROOT = Path(__file__).resolve().parents[2]
SPOT = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")
PERP = Instrument.from_symbol("BTC/USDT:USDT", tick_size="0.1", step_size="0.001", min_notional="100")
INVERSE = Instrument.from_symbol("BTC/USD:BTC", tick_size="0.1", step_size="1")
BTC = 100_000_000  # lots per BTC (qty unit 1e-8)


def gate(inst: Instrument, shared: GlobalLimit | None = None, **cfg: object) -> RiskGate:
    config = RiskConfig(max_inventory_lots=10 * BTC, calm_period_ms=1000, **cfg)  # type: ignore[arg-type]
    return RiskGate(config, inst, global_limit=shared)


def check(g: RiskGate, side: Side, qty: int, price: int, position: int = 0, resting: int = 0) -> Allow | Deny:
    order = PlaceOrder(client_order_id="c", symbol=g.instrument.symbol, side=side, price_ticks=price, qty_lots=qty)
    return g.check_place(order, now_ns=1, position_lots=position, resting_same_side_lots=resting, open_orders=0,
                         mid_ticks=float(price) + (-0.5 if side is Side.BUY else 0.5), best_bid=None, best_ask=None,
                         own_best_opposite=None)


# --- margin watchdog ---------------------------------------------------------------------------------
def test_margin_watchdog_when_ratio_above_reducing_then_reducing_with_margin_ratio() -> None:
    g = gate(PERP, margin_ratio_reducing=Decimal("0.5"), margin_ratio_halt=Decimal("0.8"))
    g.on_margin(Fraction(6, 10), 10)
    assert g.state is TradingState.REDUCING and g.reasons == ("MARGIN_RATIO",)


def test_margin_watchdog_when_ratio_above_halt_then_halted_with_margin_call_and_orders_denied() -> None:
    g = gate(PERP, margin_ratio_reducing=Decimal("0.5"), margin_ratio_halt=Decimal("0.8"))
    g.on_margin(Fraction(9, 10), 10)
    denied = check(g, Side.SELL, 1000 * 1000, 600_000, position=1000 * 1000)  # even a reducing order
    assert g.state is TradingState.HALTED and set(g.reasons) == {"MARGIN_CALL", "MARGIN_RATIO"}
    assert isinstance(denied, Deny) and denied.reason == "HALTED"


def test_margin_watchdog_when_ratio_falls_back_then_clears_after_calm_period() -> None:
    g = gate(PERP, margin_ratio_reducing=Decimal("0.5"), margin_ratio_halt=Decimal("0.8"))
    g.on_margin(Fraction(9, 10), 0)
    g.on_margin(Fraction(6, 10), 1_000_000)  # below halt: MARGIN_CALL clearing; still above reducing
    mid = g.state
    g.on_margin(Fraction(6, 10), 2_000_000_000)
    after_calm = (g.state, g.reasons)
    g.on_margin(None, 2_100_000_000)  # flat
    g.tick(4_000_000_000)
    assert mid is TradingState.HALTED and after_calm == (TradingState.REDUCING, ("MARGIN_RATIO",))
    assert g.state is TradingState.ACTIVE and g.reasons == ()


def test_risk_config_when_reducing_level_not_below_halt_then_value_error() -> None:
    with pytest.raises(ValueError, match="margin_ratio_reducing"):
        RiskConfig(max_inventory_lots=1, margin_ratio_reducing=Decimal("0.8"), margin_ratio_halt=Decimal("0.8"))


def test_settings_when_margin_levels_reversed_then_config_error_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"risk.margin_ratio_reducing \(0.9\) must be below risk.margin_ratio_halt \(0.5\)"):
        load_settings(None, environ={}, overrides={"risk": {"margin_ratio_reducing": "0.9", "margin_ratio_halt": "0.5"}})


# --- net delta -------------------------------------------------------------------------------------
def test_net_delta_when_spot_long_then_perp_buy_denied_and_perp_sell_hedge_allowed() -> None:
    shared = GlobalLimit(None, Decimal("0.05"))
    spot, perp = gate(SPOT, shared), gate(PERP, shared)
    spot.on_delta(4 * BTC // 100, 0, 0, 6_000_000.0, 1)  # long 0.04 BTC spot at 60,000
    buy = check(perp, Side.BUY, 2 * BTC // 100, 600_000)  # 0.04 + 0.02 > 0.05
    sell = check(perp, Side.SELL, 4 * BTC // 100, 600_001)  # a hedge lowers the net long
    small = check(perp, Side.BUY, BTC // 100, 600_000)  # 0.04 + 0.01 = 0.05: within
    assert isinstance(buy, Deny) and buy.reason == RiskReason.NET_DELTA.value and "0.06" in buy.detail
    assert isinstance(sell, Allow) and isinstance(small, Allow) and shared.delta_denials == 1
    assert perp.denials == {"NET_DELTA": 1}


def test_net_delta_when_positions_beyond_limit_then_reducing_until_back_within() -> None:
    shared = GlobalLimit(None, Decimal("0.05"))
    spot, perp = gate(SPOT, shared), gate(PERP, shared)
    spot.on_delta(4 * BTC // 100, 0, 0, 6_000_000.0, 1)
    perp.on_delta(3 * BTC // 100, 0, 0, 600_000.0, 2)  # net 0.07 > 0.05
    raised = (perp.state, perp.reasons)
    perp.on_delta(-3 * BTC // 100, 0, 0, 600_000.0, 3)  # the perp hedged short: net 0.01
    perp.tick(2_000_000_000)
    assert raised == (TradingState.REDUCING, ("NET_DELTA",)) and perp.state is TradingState.ACTIVE
    assert shared.net_delta() == Fraction(1, 100)


def test_net_delta_when_inverse_contracts_then_delta_in_base_at_the_mid() -> None:
    shared = GlobalLimit(None, Decimal("0.1"))
    inv = gate(INVERSE, shared)
    inv.on_delta(60, 0, 0, 600_000.0, 1)  # 60 x 100 USD at 60,000 = 0.1 BTC: at the limit
    at_limit = inv.state
    inv.on_delta(60, 0, 0, 590_000.0, 2)  # the same contracts are more BTC when the price falls
    assert at_limit is TradingState.ACTIVE and inv.state is TradingState.REDUCING
    assert shared.positions[INVERSE.symbol] == Fraction(6000, 59_000)


def test_global_limit_when_no_limit_at_all_then_value_error_free_and_checks_pass() -> None:
    shared = GlobalLimit(None, None)
    g = gate(PERP, shared)
    assert isinstance(check(g, Side.BUY, 5 * BTC, 600_000), Allow) and shared.delta_denials == 0


# --- in a run ----------------------------------------------------------------------------------------
def test_coinm_backtest_when_collateral_thin_then_margin_watchdog_reduces_and_halts() -> None:
    from mmbot.cli.backtest import run_l2_backtest
    from mmbot.wiring import capture_paths

    settings = load_settings(str(ROOT / "config" / "profiles" / "perp-coinm.yaml"), environ={}, overrides={
        "audit": {"enabled": False}, "futures": {"leverage": 100}, "paper": {"balances": {"BTC": "0.001"}},
        "risk": {"margin_ratio_reducing": "0.03", "margin_ratio_halt": "0.05"},
    })
    summary, _ = run_l2_backtest(settings, capture_paths(settings))
    raised = {r for t in summary["risk_transitions"] for r in t["reasons"]}
    peak = summary["futures"]["max_margin_ratio"]
    assert {"MARGIN_RATIO", "MARGIN_CALL"} <= raised and peak > 0.05
    first = [(t["new"], t["reasons"]) for t in summary["risk_transitions"][:2]]
    assert first == [("REDUCING", ["MARGIN_RATIO"]), ("HALTED", ["MARGIN_CALL", "MARGIN_RATIO"])]
    assert summary["open_orders"] == 0  # HALTED cancelled every order


@given(actions=st.lists(st.tuples(st.sampled_from(["place", "fill", "cancel"]), st.integers(0, 1), st.booleans(),
                                  st.integers(1, 40)), max_size=60))
@settings(max_examples=150, deadline=None)
def test_net_delta_when_random_placements_and_fills_on_two_instruments_then_never_beyond_limit(
    actions: list[tuple[str, int, bool, int]],
) -> None:
    """Every placement passes the shared gate; fills and cancels only move or remove checked
    quantity; the engine republishes after each (on_delta), so |net delta| <= limit always."""
    limit = Decimal("0.05")
    shared = GlobalLimit(None, limit)
    gates = [gate(SPOT, shared), gate(PERP, shared)]
    step_lots = [SPOT.step_lots, PERP.step_lots]
    prices = [6_000_000, 600_000]
    positions = [0, 0]
    resting: list[list[tuple[bool, int]]] = [[], []]  # (is_buy, lots) per instrument
    for n, (kind, i, is_buy, size) in enumerate(actions):
        g = gates[i]
        if kind == "place":
            qty = size * step_lots[i] * 10  # 0.001 .. 0.04 BTC on the perp, 0.0001 .. 0.004 spot
            same = sum(q for b, q in resting[i] if b == is_buy)
            order = PlaceOrder(client_order_id=f"c{n}", symbol=g.instrument.symbol, side=Side.BUY if is_buy else Side.SELL,
                               price_ticks=prices[i], qty_lots=qty, post_only=False)
            verdict = g.check_place(order, now_ns=n * 10**9, position_lots=positions[i], resting_same_side_lots=same,
                                    open_orders=len(resting[i]), mid_ticks=float(prices[i]), best_bid=None, best_ask=None,
                                    own_best_opposite=None)
            if isinstance(verdict, Allow):
                resting[i].append((is_buy, qty))
        elif resting[i]:
            b, q = resting[i].pop(0)
            if kind == "fill":
                positions[i] += q if b else -q
        buys = sum(q for b, q in resting[i] if b)
        sells = sum(q for b, q in resting[i] if not b)
        g.on_delta(positions[i], buys, sells, float(prices[i]), n * 10**9)
        net = SPOT.delta_base(positions[0], prices[0]) + PERP.delta_base(positions[1], prices[1])
        assert abs(net) <= Fraction(limit), (n, positions, resting)
