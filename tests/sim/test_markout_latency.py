"""Markouts at +1/+5/+30 s and seeded latency sampling."""

from __future__ import annotations

import pytest

from mmbot.portfolio.markout import MarkoutTracker
from mmbot.sim.latency import LatencyModel, LatencySampler

S = 1_000_000_000


def test_markout_when_mid_moves_against_a_buy_then_negative_bps_per_horizon():
    tracker = MarkoutTracker()
    index = tracker.on_fill(0, +1, 6_000_000.0)  # bought at 60,000.00
    early = tracker.on_mid(S // 2, 6_000_600.0)  # before +1 s: nothing resolves
    at_1s = tracker.on_mid(1 * S, 5_999_400.0)  # -6.00 USDT = -1 bps
    at_5s = tracker.on_mid(6 * S, 6_001_200.0)  # first mid at or after +5 s: +2 bps
    at_30s = tracker.on_mid(30 * S, 6_000_000.0)

    assert index == 0 and early == ()
    assert [(i, h, round(v, 9)) for i, h, v in at_1s] == [(0, 1 * S, -1.0)]
    assert [(i, h, round(v, 9)) for i, h, v in at_5s] == [(0, 5 * S, 2.0)]
    assert [(i, h, round(v, 9)) for i, h, v in at_30s] == [(0, 30 * S, 0.0)]
    assert tracker.mean_bps(1 * S) == pytest.approx(-1.0)


def test_markout_when_sell_and_price_falls_then_positive_and_mean_over_fills():
    tracker = MarkoutTracker(horizons_ns=(S,))
    tracker.on_fill(0, -1, 6_000_000.0)
    tracker.on_fill(0, +1, 6_000_000.0)
    tracker.on_mid(S, 5_998_800.0)  # -2 bps move: the sell gains 2, the buy loses 2

    assert tracker.count(S) == 2
    assert tracker.mean_bps(S) == pytest.approx(0.0)


def test_markout_when_no_mid_after_horizon_then_not_counted():
    tracker = MarkoutTracker()
    tracker.on_fill(0, +1, 6_000_000.0)
    tracker.on_mid(2 * S, 6_000_000.0)

    assert tracker.mean_bps(5 * S) is None and tracker.count(1 * S) == 1


@pytest.mark.parametrize("model", [LatencyModel.UNIFORM, LatencyModel.LOGNORMAL])
def test_latency_sampler_when_same_seed_then_same_draws_and_within_support(model: LatencyModel):
    a = LatencySampler(5.0, model, 3.0, seed=7, stream="entry")
    b = LatencySampler(5.0, model, 3.0, seed=7, stream="entry")
    other_stream = LatencySampler(5.0, model, 3.0, seed=7, stream="cancel")
    draws = [a.sample_ns() for _ in range(200)]

    assert draws == [b.sample_ns() for _ in range(200)]
    assert draws != [other_stream.sample_ns() for _ in range(200)]
    assert min(draws) >= 5_000_000
    if model is LatencyModel.UNIFORM:
        assert max(draws) <= 8_000_000


def test_latency_sampler_when_constant_then_exact_and_zero_detected():
    assert LatencySampler(20.0).sample_ns() == 20_000_000
    assert LatencySampler(0.0, LatencyModel.UNIFORM, 0.0).is_zero
    with pytest.raises(ValueError, match="latency must be >= 0 ms, was -1"):
        LatencySampler(-1.0)
