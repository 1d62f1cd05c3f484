"""Property: on any bars and parameters the compiled kernel equals the reference bar backtest and its metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.research.bars import BarRules, Bars, bar_performance, run_bar_backtest
from mmbot.research.grid import GridRules, run_one, tick_bars_from_bars
from mmbot.strategy.simple import SimpleParams


@st.composite
def bar_series(draw: st.DrawFn) -> Bars:
    n = draw(st.integers(min_value=1, max_value=60))
    start = draw(st.integers(min_value=2_000_000, max_value=3_000_000))
    moves = draw(st.lists(st.integers(min_value=-800, max_value=800), min_size=n, max_size=n))
    opens, highs, lows, closes = [], [], [], []
    price = start
    for m in moves:
        o = price + draw(st.integers(min_value=-30, max_value=30))  # small gaps between bars
        c = o + m
        h = max(o, c) + draw(st.integers(min_value=0, max_value=400))
        lo = min(o, c) - draw(st.integers(min_value=0, max_value=400))
        opens.append(o)
        highs.append(h)
        lows.append(lo)
        closes.append(c)
        price = c
    ts = np.arange(n, dtype=np.int64) * 60_000 + 1_680_000_000_000
    as_price = lambda xs: np.array(xs, dtype=np.float64) / 100  # noqa: E731 - ticks of 0.01
    return Bars(ts, as_price(opens), as_price(highs), as_price(lows), as_price(closes), np.ones(n))


@settings(max_examples=150, deadline=None)
@given(
    bars=bar_series(),
    spread_bps=st.sampled_from([1.0, 5.0, 10.0, 20.0, 30.0]),
    max_inventory=st.sampled_from([1.0, 2.0, 5.0]),
    order_size=st.sampled_from([0.5, 1.0, 1.5]),
    skew_factor=st.sampled_from([0.0, 0.0005, 0.002, 0.01]),
    update_freq=st.integers(min_value=1, max_value=4),
    fill_rule=st.sampled_from(["quote", "open_gap"]),
    semantics=st.sampled_from(["strict", "backtrader"]),
    cross=st.sampled_from(["clamp", "allow"]),
)
def test_run_one_when_any_bars_and_params_then_equals_reference(
    bars: Bars, spread_bps: float, max_inventory: float, order_size: float, skew_factor: float,
    update_freq: int, fill_rule: str, semantics: str, cross: str,
) -> None:  # fmt: skip
    params = SimpleParams(spread_bps=spread_bps, max_inventory=max_inventory, order_size=order_size,
                          skew_factor=skew_factor, update_freq=update_freq)  # fmt: skip
    ref = run_bar_backtest(bars, params, rules=BarRules(fill_rule=fill_rule, fill_semantics=semantics, cross_policy=cross))
    ours = run_one(
        tick_bars_from_bars(bars),
        {"spread_bps": spread_bps, "max_inventory": max_inventory, "order_size": order_size,
         "skew_factor": skew_factor, "update_freq": update_freq},
        GridRules(fill_rule=fill_rule, fill_semantics=semantics, cross_policy=cross, period_bars=5, periods_per_year=365 * 288),
    )  # fmt: skip
    perf = bar_performance(ref, bars, sharpe_interval_s=300.0)
    assert [(f.bar, int(f.side), f.price_ticks) for f in ref.fills] == list(
        zip(ours.fill_bar.tolist(), ours.fill_side.tolist(), ours.fill_price_ticks.tolist(), strict=True)
    )
    assert ours.inventory_lots.tolist() == ref.inventory_lots
    assert ours.equity.tolist() == ref.net_pnl
    assert ours.objectives["orders"] == ref.orders_placed
    assert abs(ours.inventory_lots).max() <= round(max_inventory * 1e8)
    assert ours.objectives["max_drawdown"] == pytest.approx(perf.max_drawdown, rel=1e-12, abs=1e-9)
    assert ours.objectives["inventory_balance"] == perf.inventory_balance
    assert ours.objectives["time_at_max_inventory"] == perf.time_at_max_inventory_share
    assert ours.objectives["max_abs_inventory"] == pytest.approx(perf.max_inventory, abs=1e-12)
    if perf.sharpe is None:
        assert math.isnan(ours.objectives["sharpe"])
    else:
        assert ours.objectives["sharpe"] == pytest.approx(perf.sharpe, rel=1e-6)
