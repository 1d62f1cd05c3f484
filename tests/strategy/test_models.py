"""Avellaneda-Stoikov (2008) and GLFT (2013): formulas, estimation, the paper's simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmbot.strategy import (
    IntensityEstimator,
    as_infinite_horizon_quotes,
    as_optimal_spread,
    avellaneda_stoikov_quotes,
    fit_intensity,
    glft_coefficients,
    glft_quotes,
)
from mmbot.strategy.as2008 import format_table, simulate_as2008
from tests.strategy.helpers import SEC


def test_avellaneda_stoikov_quotes_when_paper_parameters_then_worked_example() -> None:
    bid, ask = avellaneda_stoikov_quotes(100.0, 0.0, 0.1, 2.0, 1.5, 1.0)
    bid_long, ask_long = avellaneda_stoikov_quotes(100.0, 2.0, 0.1, 2.0, 1.5, 1.0)

    assert ask - bid == pytest.approx(0.4 + 20 * math.log(1 + 0.1 / 1.5))
    assert (bid, ask) == (pytest.approx(99.1546, abs=1e-4), pytest.approx(100.8454, abs=1e-4))
    assert (bid_long, ask_long) == (pytest.approx(98.3546, abs=1e-4), pytest.approx(100.0454, abs=1e-4))


def test_as_optimal_spread_when_time_runs_out_then_only_the_intensity_term() -> None:
    assert as_optimal_spread(0.1, 2.0, 1.5, 0.0) == pytest.approx(20 * math.log(1 + 0.1 / 1.5))


def test_as_infinite_horizon_when_at_inventory_bound_then_no_bid_and_skewed_down() -> None:
    flat = as_infinite_horizon_quotes(100.0, 0.0, 0.1, 2.0, 1.5, 5.0)
    long = as_infinite_horizon_quotes(100.0, 2.0, 0.1, 2.0, 1.5, 5.0)
    at_bound = as_infinite_horizon_quotes(100.0, 5.0, 0.1, 2.0, 1.5, 5.0)

    assert flat[0] is not None and flat[1] is not None and flat[0] < 100.0 < flat[1]
    assert long[0] is not None and long[1] is not None and long[0] < flat[0] and long[1] < flat[1]
    assert at_bound[0] is None and at_bound[1] is not None


def test_fit_intensity_when_exponential_arrivals_then_recovers_a_and_k() -> None:
    rng = np.random.default_rng(1)
    span_s, a_true, k_true = 600.0, 15.0, 0.33
    distances = rng.exponential(1.0 / k_true, size=int(a_true * span_s))  # P(delta >= d) = exp(-k d)

    fit = fit_intensity(distances, span_s)

    assert fit is not None
    assert fit[0] == pytest.approx(a_true, rel=0.1)
    assert fit[1] == pytest.approx(k_true, rel=0.1)


def test_intensity_estimator_when_too_few_trades_then_none_then_fit() -> None:
    est = IntensityEstimator(window_s=600.0, min_trades=50, refit_ms=0)
    rng = np.random.default_rng(2)
    for i in range(10):
        est.on_trade(i * SEC // 10, float(rng.exponential(2.0)))
    early = est.estimate(SEC)
    for i in range(2000):
        est.on_trade(SEC + i * SEC // 10, float(rng.exponential(2.0)))

    assert early is None
    fit = est.estimate(201 * SEC)
    assert fit is not None and fit[1] == pytest.approx(0.5, rel=0.15)


def test_glft_coefficients_when_xi_equals_gamma_then_c1_is_as_term() -> None:
    c1, c2 = glft_coefficients(0.05, 0.05, 1.0, 15.0, 0.33)

    assert c1 == pytest.approx(math.log(1 + 0.05 / 0.33) / 0.05)
    assert c1 == pytest.approx(2.821, abs=1e-3)
    assert c2 == pytest.approx(0.1215, abs=1e-3)
    assert glft_coefficients(0.0, 0.05, 1.0, 15.0, 0.33)[0] == pytest.approx(1 / 0.33)


def test_glft_quotes_when_worked_example_then_skewed_against_inventory() -> None:
    bid, ask = glft_quotes(61_000.0, 2.0, sigma=7.3, gamma=0.05, A=15.0, k=0.33)
    bid0, ask0 = glft_quotes(61_000.0, 0.0, sigma=7.3, gamma=0.05, A=15.0, k=0.33)

    assert bid == pytest.approx(60_994.96, abs=0.01)
    assert ask == pytest.approx(61_001.49, abs=0.01)
    assert bid0 is not None and ask0 is not None and bid is not None and ask is not None
    assert bid < bid0 and ask < ask0
    assert ask0 - 61_000.0 == pytest.approx(61_000.0 - bid0)


def test_glft_quotes_when_at_inventory_bound_then_side_dropped() -> None:
    assert glft_quotes(100.0, 4.0, sigma=1, gamma=0.1, A=10, k=1, q_max=4.0)[0] is None
    assert glft_quotes(100.0, -4.0, sigma=1, gamma=0.1, A=10, k=1, q_max=4.0)[1] is None
    assert None not in glft_quotes(100.0, 3.0, sigma=1, gamma=0.1, A=10, k=1, q_max=4.0)


def test_simulate_as2008_when_paper_setup_then_inventory_strategy_has_lower_dispersion() -> None:
    result = simulate_as2008(n_paths=1000, s0=100, T=1, sigma=2, dt=0.005, gamma=0.1, k=1.5, A=140, seed=2008)

    inv, sym = result.inventory, result.symmetric
    assert inv.std_profit < 0.6 * sym.std_profit
    assert inv.std_final_q < 0.45 * sym.std_final_q
    assert 55 < inv.mean_profit < 75 and 55 < sym.mean_profit < 75  # the paper: 62.94 and 67.21
    assert "| inventory | paper | 1.29 | 62.94 | 5.89 |" in format_table(result)
