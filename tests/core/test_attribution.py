"""PnL attribution: hand numbers, and the parts add up to the ledger's net PnL exactly."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Side
from mmbot.portfolio.attribution import ATTRIBUTION_PARTS, AttributionTracker, attribution_table
from mmbot.portfolio.ledger import Ledger

INST = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")
UNIT = INST.tick_size * INST.qty_unit  # 0.01 USDT x 1e-8 BTC = 1e-10 USDT per tick x lot
S = 1_000_000_000


def test_attribution_when_buy_below_mid_then_mid_falls_then_recovers_then_parts_by_hand() -> None:
    tracker = AttributionTracker(UNIT, "USDT", horizon_ns=5 * S)
    # buy 10 lots at 100 with the mid at 100.5 (bid 100, ask 101): spread 10 x 0.5 = 5 tick-lots
    tracker.on_fill(0, +1, 100, 10, Decimal("0.000002"), 100.5)
    tracker.on_mid(4 * S, 99.0)  # before the horizon: ignored
    tracker.on_mid(5 * S, 98.5)  # horizon mid: adverse 10 x (98.5 - 100.5) = -20 tick-lots
    result = tracker.result(mark_ticks=103)  # inventory 10 x (103 - 98.5) = 45 tick-lots

    assert result.spread_capture == 5 * UNIT
    assert result.adverse_selection == -20 * UNIT
    assert result.inventory_pnl == 45 * UNIT
    assert result.fees == Decimal("-0.000002")
    assert result.rebates == 0
    ledger = Ledger(INST)
    ledger.apply_fill(Side.BUY, 100, 10, Decimal("0.000002"))
    assert result.total == ledger.net_pnl(103)


def test_attribution_when_fill_horizon_beyond_data_then_adverse_runs_to_the_mark_and_rebate_positive() -> None:
    tracker = AttributionTracker(UNIT, "USDT", horizon_ns=5 * S)
    tracker.on_fill(0, -1, 101, 4, Decimal("-0.5"), 100.5)  # sell 4 at 101, mid 100.5: +2 tick-lots
    tracker.on_mid(1 * S, 100.0)
    result = tracker.result(mark_ticks=99)  # unresolved: h = M, adverse -4 x (99 - 100.5) = +6

    assert result.spread_capture == 2 * UNIT
    assert result.adverse_selection == 6 * UNIT
    assert result.inventory_pnl == 0
    assert result.rebates == Decimal("0.5")
    fields = result.fields()
    assert fields["unit"] == "USDT" and Decimal(str(fields["net_pnl"])) == 8 * UNIT + Decimal("0.5")
    assert "adverse_selection" in attribution_table(fields)


_fill = st.tuples(
    st.integers(0, 20 * S),  # ts
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(-30, 30),  # price offset from the mid, ticks
    st.integers(1, 50),  # lots
    st.integers(-300, 300),  # fee in 1e-8 USDT (< 0: rebate)
)


@settings(max_examples=300, deadline=None)
@given(
    fills=st.lists(_fill, max_size=40),
    mids=st.lists(st.tuples(st.integers(0, 30 * S), st.integers(19_000, 21_000)), min_size=1, max_size=60),
    horizon_s=st.integers(0, 10),
)
def test_attribution_property_parts_sum_to_ledger_net_pnl_exactly(
    fills: list[tuple[int, Side, int, int, int]], mids: list[tuple[int, int]], horizon_s: int
) -> None:
    # One merged time line: mids are 2 x mid (half ticks), fills priced off the last mid.
    events = sorted([(t, 0, m) for t, m in mids] + [(f[0], 1, f) for f in fills], key=lambda e: (e[0], e[1]))
    tracker = AttributionTracker(UNIT, "USDT", horizon_ns=horizon_s * S)
    ledger = Ledger(INST)
    mid2: int | None = None
    for ts, kind, payload in events:
        if kind == 0:
            assert isinstance(payload, int)
            mid2 = payload
            tracker.on_mid(ts, mid2 / 2)
        else:
            assert isinstance(payload, tuple)
            _, side, offset, lots, fee_e8 = payload
            price = max(1, (mid2 if mid2 is not None else 40_000) // 2 + offset)
            fee = Decimal(fee_e8) / Decimal(10**8)
            ledger.apply_fill(side, price, lots, fee)
            tracker.on_fill(ts, int(side), price, lots, fee, None if mid2 is None else mid2 / 2)
    mark = round(mid2 / 2) if mid2 is not None else 0
    result = tracker.result(mark)

    assert result.total == ledger.net_pnl(mark)
    assert sum(Decimal(str(result.fields()[p])) for p in ATTRIBUTION_PARTS) == Decimal(str(result.fields()["net_pnl"]))
    assert result.fees <= 0 <= result.rebates


def test_bar_attribution_when_bundled_month_with_fees_and_slippage_then_parts_sum_to_bar_net_pnl() -> None:
    from mmbot.research.bars import BarFees, bar_attribution, bundled_bars_path, load_bars, run_bar_backtest
    from mmbot.strategy.simple import SimpleParams

    bars = load_bars(bundled_bars_path())
    params = SimpleParams(spread_bps=10.0, order_size=0.001, max_inventory=0.01, skew_factor=0.5, update_freq=1)
    result = run_bar_backtest(bars, params, BarFees(maker_fee_bps=Decimal(-1), slippage_bps=Decimal(2)))
    assert result.ledger is not None and result.fills
    net = result.ledger.net_pnl(result.close_ticks[-1]) - result.slippage_paid

    attribution = bar_attribution(result, bars)

    assert attribution.total == net
    assert attribution.rebates > 0 and attribution.fees < 0  # maker rebate, slippage charged
    assert attribution.fills == len(result.fills)
