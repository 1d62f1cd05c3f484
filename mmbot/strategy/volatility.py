"""Volatility: EWMA estimates and the spread multiplier.

The mid is sampled at most once per ``sample_ms`` (1 s by default: the book's
bid/ask bounce at a one-tick touch would otherwise dominate the estimate). For each
sample ``i`` with return ``x_i`` over ``dt_i`` seconds::

    alpha_i  = 1 - 2 ** (-dt_i / H)                 (H = half-life in seconds)
    v_i      = v_{i-1} + alpha_i * (x_i**2 / dt_i - v_{i-1})
    sigma    = sqrt(v)                              (per sqrt(second))

``x`` is the log return ``ln(s_i / s_{i-1})`` (``mode="log"``, dimensionless,
used for the spread multiplier) or the price change ``s_i - s_{i-1}``
(``mode="absolute"``, in price units, the sigma of Avellaneda-Stoikov and GLFT).
Two half-lives give the current volatility (``half_life_s``, e.g. 30 s) and the
long-run average (``long_half_life_s``, e.g. 600 s)::

    multiplier = clip(sigma_current / sigma_average, min_multiplier, max_multiplier)
    spread_bps = base_spread_bps * multiplier

=====================  ==================  =========================================
symbol                 parameter           unit
=====================  ==================  =========================================
H, H_long              half_life_s, ...    seconds
x                      return              1 (log) or price units (absolute)
sigma                  current()           per sqrt(second)
m_min, m_max           min/max_multiplier  1
=====================  ==================  =========================================

Worked example: sigma_current 3e-5, sigma_average 2e-5 per sqrt(s) -> multiplier
1.5; a 2 bps base spread becomes 3 bps. Until the estimates have seen
``half_life_s`` seconds of data (warm-up) the multiplier is 1; the long-run
average starts from the first returns, so it is a running mean early on.
"""

from __future__ import annotations

import math
from typing import Literal


def ewma_alpha(dt_s: float, half_life_s: float) -> float:
    """Weight of a new observation that arrives ``dt_s`` after the previous one."""
    return 1.0 - math.pow(2.0, -dt_s / half_life_s)


def ewma_update(previous: float | None, value: float, dt_s: float, half_life_s: float) -> float:
    """One EWMA step with a time-based half-life; the first value seeds it."""
    if previous is None:
        return value
    return previous + ewma_alpha(dt_s, half_life_s) * (value - previous)


def volatility_multiplier(current: float, average: float, min_multiplier: float, max_multiplier: float) -> float:
    """clip(current / average, min, max); 1 when either estimate is missing or zero."""
    if current <= 0.0 or average <= 0.0 or not math.isfinite(current) or not math.isfinite(average):
        return 1.0
    ratio = current / average
    return min(max(ratio, min_multiplier), max_multiplier)


def volatility_adjusted_spread_bps(base_spread_bps: float, multiplier: float) -> float:
    return base_spread_bps * multiplier


class EwmaVolatility:
    """Short and long EWMA variance of sampled mid returns (state for the pure functions)."""

    __slots__ = (
        "_first_ns",
        "_last_mid",
        "_last_ns",
        "half_life_s",
        "long_half_life_s",
        "mode",
        "sample_ns",
        "samples",
        "var_long",
        "var_short",
    )

    def __init__(
        self,
        half_life_s: float = 30.0,
        long_half_life_s: float = 600.0,
        *,
        sample_ms: float = 1000.0,
        mode: Literal["log", "absolute"] = "log",
    ) -> None:
        if half_life_s <= 0 or long_half_life_s <= 0:
            raise ValueError(f"half-lives must be > 0, were {half_life_s} and {long_half_life_s}")
        if sample_ms <= 0:
            raise ValueError(f"sample_ms must be > 0, was {sample_ms}")
        self.half_life_s = half_life_s
        self.long_half_life_s = long_half_life_s
        self.sample_ns = int(sample_ms * 1_000_000)
        self.mode = mode
        self.var_short: float | None = None
        self.var_long: float | None = None
        self.samples = 0
        self._last_ns: int | None = None
        self._last_mid = 0.0
        self._first_ns = 0

    def on_mid(self, now_ns: int, mid: float) -> None:
        if mid <= 0.0:
            return
        last = self._last_ns
        if last is None:
            self._last_ns = now_ns
            self._first_ns = now_ns
            self._last_mid = mid
            return
        if now_ns - last < self.sample_ns:
            return
        dt_s = (now_ns - last) / 1e9
        x = math.log(mid / self._last_mid) if self.mode == "log" else mid - self._last_mid
        rate = x * x / dt_s
        self.var_short = ewma_update(self.var_short, rate, dt_s, self.half_life_s)
        self.var_long = ewma_update(self.var_long, rate, dt_s, self.long_half_life_s)
        self.samples += 1
        self._last_ns = now_ns
        self._last_mid = mid

    def elapsed_s(self, now_ns: int) -> float:
        return 0.0 if self._last_ns is None else (now_ns - self._first_ns) / 1e9

    def current(self) -> float | None:
        """Short-half-life sigma per sqrt(second), None before the first return."""
        return None if self.var_short is None else math.sqrt(self.var_short)

    def average(self) -> float | None:
        return None if self.var_long is None else math.sqrt(self.var_long)

    def is_warm(self, now_ns: int, warmup_s: float) -> bool:
        return self.samples >= 2 and self.elapsed_s(now_ns) >= warmup_s

    def multiplier(self, now_ns: int, min_multiplier: float, max_multiplier: float, warmup_s: float | None = None) -> float:
        warm = self.half_life_s if warmup_s is None else warmup_s
        cur, avg = self.current(), self.average()
        if cur is None or avg is None or not self.is_warm(now_ns, warm):
            return 1.0
        return volatility_multiplier(cur, avg, min_multiplier, max_multiplier)
