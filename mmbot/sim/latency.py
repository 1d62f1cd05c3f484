"""Latency in capture time: constant or sampled from a seeded distribution.

A latency sample is ``base + X`` milliseconds, converted to integer nanoseconds:

    constant:   X = 0
    uniform:    X ~ U(0, jitter)
    lognormal:  X ~ LogNormal(mu = ln(jitter), sigma = 0.5)   (median = jitter, right tail)

| symbol | parameter           | unit |
|--------|---------------------|------|
| base   | ``*_latency_ms``    | ms   |
| jitter | ``latency_jitter_ms`` | ms |

Each stream (order entry, cancel, market data) owns a ``random.Random`` seeded from
the run's seed and the stream's name, so the samples of one stream do not depend on
how many samples another stream drew: a backtest and a paper run that send the same
commands draw the same latencies. Nothing here reads a clock.
"""

from __future__ import annotations

import math
import random
from enum import Enum

NS_PER_MS = 1_000_000
_LOGNORMAL_SIGMA = 0.5


class LatencyModel(Enum):
    CONSTANT = "constant"
    UNIFORM = "uniform"  # base + U(0, jitter)
    LOGNORMAL = "lognormal"  # base + LogNormal(ln(jitter), 0.5)


_STREAM_SALT = {"entry": 1, "cancel": 2, "md": 3}


class LatencySampler:
    """Draws latencies (ns) for one stream; deterministic for a given seed."""

    __slots__ = ("_base_ns", "_jitter_ms", "_model", "_rng", "base_ms")

    def __init__(self, base_ms: float, model: LatencyModel = LatencyModel.CONSTANT, jitter_ms: float = 0.0, *, seed: int = 0, stream: str = "entry") -> None:
        if base_ms < 0:
            raise ValueError(f"latency must be >= 0 ms, was {base_ms}")
        if jitter_ms < 0:
            raise ValueError(f"latency_jitter_ms must be >= 0, was {jitter_ms}")
        if stream not in _STREAM_SALT:
            raise ValueError(f"latency stream must be one of {sorted(_STREAM_SALT)}, was {stream!r}")
        self.base_ms = base_ms
        self._base_ns = round(base_ms * NS_PER_MS)
        self._model = model if jitter_ms > 0 else LatencyModel.CONSTANT
        self._jitter_ms = jitter_ms
        # A stable integer seed per stream (str seeds would also be stable, ints are explicit).
        self._rng = random.Random(seed * 16 + _STREAM_SALT[stream])

    @property
    def is_zero(self) -> bool:
        return self._base_ns == 0 and self._model is LatencyModel.CONSTANT

    def sample_ns(self) -> int:
        if self._model is LatencyModel.CONSTANT:
            return self._base_ns
        if self._model is LatencyModel.UNIFORM:
            extra_ms = self._rng.uniform(0.0, self._jitter_ms)
        else:
            extra_ms = self._rng.lognormvariate(math.log(self._jitter_ms), _LOGNORMAL_SIGMA)
        return self._base_ns + round(extra_ms * NS_PER_MS)
