"""``mmbot calibrate``'s latency fit on samples drawn by the simulator's own sampler."""

from __future__ import annotations

import random
import statistics

import pytest

from mmbot.research.calibrate import binomial_interval, fit_streams
from mmbot.sim.latency import LatencyModel, LatencySampler


def draws(base_ms: float, model: LatencyModel, jitter_ms: float, n: int = 400, seed: int = 7, stream: str = "entry") -> list[float]:
    sampler = LatencySampler(base_ms, model, jitter_ms, seed=seed, stream=stream)
    return [sampler.sample_ns() / 1e6 for _ in range(n)]


@pytest.mark.parametrize(
    ("base", "model", "jitter"),
    [(0.0, LatencyModel.LOGNORMAL, 40.0), (20.0, LatencyModel.LOGNORMAL, 15.0), (30.0, LatencyModel.UNIFORM, 50.0), (80.0, LatencyModel.CONSTANT, 0.0)],
)
def test_fit_streams_when_sampler_draws_then_model_and_median_recovered(base: float, model: LatencyModel, jitter: float) -> None:
    rng = random.Random(3)
    entry = [x + rng.uniform(0.0, 0.2) for x in draws(base, model, jitter)]  # a little transport noise
    md = draws(base + 5.0, model, jitter, stream="md")
    fit = fit_streams({"entry": entry, "cancel": [], "md": md})

    assert fit.model == model.value or (model is LatencyModel.CONSTANT and fit.jitter_ms < 1.0)
    assert abs(fit.entry_median_ms - statistics.median(entry)) < 1e-3  # rounded to the microsecond
    assert abs(fit.entry_ms - base) <= max(0.1 * max(base, jitter), 1.0)
    assert abs(fit.md_ms - (base + 5.0)) <= max(0.1 * max(base, jitter), 1.0)
    assert fit.cancel_ms == 0.0


def test_fit_streams_when_too_few_samples_then_refused() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        fit_streams({"entry": [1.0, 2.0], "cancel": [], "md": []})


def test_binomial_interval_when_rate_then_contains_it_and_narrows() -> None:
    low, high = binomial_interval(30, 135)
    low2, high2 = binomial_interval(300, 1350)
    assert low < 30 / 135 < high and low2 < 30 / 135 < high2 and high2 - low2 < high - low
