"""The compiled grid kernel reproduces the reference bar backtest fill by fill."""

from __future__ import annotations

import itertools
import math
import random
from decimal import Decimal

import numpy as np
import pytest

from mmbot.portfolio.metrics import fill_rate
from mmbot.research.bars import BarFees, BarRules, Bars, bar_performance, run_bar_backtest
from mmbot.research.grid import COL, GridRules, TickBars, param_matrix, run_chunk, run_one
from mmbot.strategy.simple import SimpleParams
from tests.optimize.conftest import SEED_SPACE

RULE_VARIANTS = [
    ("quote", "strict", "clamp"),
    ("open_gap", "strict", "clamp"),
    ("quote", "strict", "allow"),
    ("open_gap", "strict", "allow"),
    ("quote", "backtrader", "clamp"),
    ("quote", "backtrader", "allow"),
]


def _sample_combos(k: int, seed: int) -> list[dict[str, float]]:
    every = [dict(zip(SEED_SPACE, v, strict=True)) for v in itertools.product(*SEED_SPACE.values())]
    return random.Random(seed).sample(every, k)


@pytest.mark.parametrize(("fill_rule", "semantics", "cross"), RULE_VARIANTS)
def test_run_one_when_sampled_seed_combos_on_month_then_fills_and_pnl_equal_reference(
    month_bars: Bars, month_ticks: TickBars, fill_rule: str, semantics: str, cross: str
) -> None:
    rules = GridRules(fill_rule=fill_rule, fill_semantics=semantics, cross_policy=cross)
    combos = _sample_combos(2, seed=RULE_VARIANTS.index((fill_rule, semantics, cross)))
    mismatches = []
    for combo in combos:
        ref = run_bar_backtest(
            month_bars,
            SimpleParams(**{k: (int(v) if k == "update_freq" else float(v)) for k, v in combo.items()}),
            rules=BarRules(fill_rule=fill_rule, fill_semantics=semantics, cross_policy=cross),
        )
        ours = run_one(month_ticks, combo, rules)
        ref_fills = [(f.bar, int(f.side), f.price_ticks) for f in ref.fills]
        our_fills = list(zip(ours.fill_bar.tolist(), ours.fill_side.tolist(), ours.fill_price_ticks.tolist(), strict=True))
        grid_row = run_chunk(month_ticks, param_matrix([combo]), rules)[0]
        if (
            ref_fills != our_fills
            or not np.array_equal(np.array(ref.net_pnl), ours.equity)
            or ours.inventory_lots.tolist() != ref.inventory_lots
            or grid_row[COL["net_pnl"]] != ref.net_pnl[-1]
            or grid_row[COL["orders"]] != ref.orders_placed
        ):
            mismatches.append(combo)
    assert mismatches == []
    assert len(combos) == 2


def test_run_chunk_when_seed_combo_then_objectives_equal_metrics_module(month_bars: Bars, month_ticks: TickBars) -> None:
    combo = {"spread_bps": 20, "max_inventory": 10, "order_size": 1.0, "skew_factor": 0.001, "update_freq": 1}
    ref = run_bar_backtest(month_bars, SimpleParams(**combo))  # type: ignore[arg-type]
    perf = bar_performance(ref, month_bars)
    row = run_chunk(month_ticks, param_matrix([combo]), GridRules())[0]
    assert row[COL["net_pnl"]] == ref.net_pnl[-1]
    assert row[COL["max_drawdown"]] == pytest.approx(perf.max_drawdown, rel=1e-12, abs=1e-9)
    assert perf.sharpe is not None
    assert row[COL["sharpe"]] == pytest.approx(perf.sharpe, rel=1e-9)
    assert row[COL["inventory_balance"]] == perf.inventory_balance
    assert row[COL["time_at_max_inventory"]] == perf.time_at_max_inventory_share
    assert row[COL["max_abs_inventory"]] == pytest.approx(perf.max_inventory, abs=1e-12)
    assert row[COL["fill_rate"]] == fill_rate(len(ref.fills), ref.orders_placed)
    assert row[COL["fills"]] == len(ref.fills) == perf.fills


def test_run_one_when_fees_and_slippage_then_pnl_matches_reference_within_float_rounding(
    month_bars: Bars, month_ticks: TickBars
) -> None:
    combo = {"spread_bps": 25, "max_inventory": 15, "order_size": 0.5, "skew_factor": 0.0015, "update_freq": 5}
    ref = run_bar_backtest(
        month_bars,
        SimpleParams(**combo),  # type: ignore[arg-type]
        fees=BarFees(maker_fee_bps=Decimal("1"), slippage_bps=Decimal("0.5")),
    )
    ours = run_one(month_ticks, combo, GridRules(maker_fee_bps=1.0, slippage_bps=0.5))
    ref_fee = float(ref.ledger.fees_paid + ref.slippage_paid) if ref.ledger else math.nan
    assert [(f.bar, f.price_ticks) for f in ref.fills] == list(zip(ours.fill_bar.tolist(), ours.fill_price_ticks.tolist(), strict=True))
    assert ours.objectives["fees"] == pytest.approx(ref_fee, rel=1e-9)
    assert ours.equity[-1] == pytest.approx(ref.net_pnl[-1], rel=1e-9, abs=1e-6)
    assert ours.objectives["fees"] > 0
