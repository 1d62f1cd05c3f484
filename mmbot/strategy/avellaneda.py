"""Avellaneda-Stoikov (2008) quotes and the online estimation of sigma, k and A.

Avellaneda, M. and Stoikov, S. (2008), "High-frequency trading in a limit order
book", Quantitative Finance 8(3). With exponential utility and order arrivals at
distance delta from the mid with intensity ``lambda(delta) = A * exp(-k * delta)``::

    r      = s - q * gamma * sigma**2 * (T - t)                      (reservation price)
    spread = gamma * sigma**2 * (T - t) + (2 / gamma) * ln(1 + gamma / k)
    bid    = r - spread / 2,   ask = r + spread / 2

=========  =============  ==============================================================
symbol     parameter      unit
=========  =============  ==============================================================
s          mid            price units (quote currency per base unit)
q          inventory      order units (inventory / order_size, as hummingbot normalises;
                          the paper trades one share per fill)
gamma      gamma          1 / (price units x order units): risk aversion
sigma      sigma          price units per sqrt(second) (absolute, not a return)
k          k              1 / price units: decay of fill intensity with distance
A          A              fills per second at distance 0
T - t      time_left      seconds
=========  =============  ==============================================================

Worked example (the paper's parameters): s = 100, q = 0, gamma = 0.1, sigma = 2,
k = 1.5, T - t = 1: spread = 0.1*4*1 + 20*ln(1 + 0.0667) = 0.4 + 1.2908 = 1.6908,
quotes 99.1546 / 100.8454; with q = 2 the reservation price is 100 - 0.8 = 99.2 and
the quotes 98.3546 / 100.0454.

A 24/7 market has no terminal time. Two variants:

* rolling horizon (``variant: rolling``): ``T - t`` is held at a constant
  ``horizon_s`` (the paper's formulas with a moving end), so the inventory penalty
  never decays to zero at an arbitrary session end;
* infinite horizon (``variant: infinite``, the paper's section 2.3) with the
  discount ``omega = gamma**2 * sigma**2 * (q_max + 1)**2 / 2``::

      r_ask = s + (1/gamma) ln(1 + (1 - 2q) gamma**2 sigma**2 / (2 omega - gamma**2 q**2 sigma**2))
      r_bid = s + (1/gamma) ln(1 + (-1 - 2q) gamma**2 sigma**2 / (2 omega - gamma**2 q**2 sigma**2))
      bid = r_bid - (1/gamma) ln(1 + gamma/k),  ask = r_ask + (1/gamma) ln(1 + gamma/k)

  which is only defined for ``|q| <= q_max``: at ``q = q_max`` the bid's log
  argument reaches 0 and no bid is quoted (the inventory bound).

Online estimation (deviation from the paper, which takes sigma, k and A as known):
sigma is the EWMA of squared 1-second mid changes (``EwmaVolatility`` in absolute
mode); k and A come from trade arrivals: for each trade the distance
``delta = |p_trade - s|`` from the mid just before it is kept for ``window_s``;
``lambda(delta_j) = #{trades with delta >= delta_j} / span`` on a grid of distance
quantiles, and a least-squares line through ``ln lambda = ln A - k delta`` gives k
and A. Warm-up: until ``warmup_s`` seconds of data, ``min_trades`` trades and a
positive k, the model quotes the simple strategy (reason ``warmup``).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


def as_reservation_price(mid: float, inventory: float, gamma: float, sigma: float, time_left: float) -> float:
    return mid - inventory * gamma * sigma * sigma * time_left


def as_optimal_spread(gamma: float, sigma: float, k: float, time_left: float) -> float:
    """Total bid-ask spread of the paper's approximation (price units)."""
    return gamma * sigma * sigma * time_left + (2.0 / gamma) * math.log1p(gamma / k)


def avellaneda_stoikov_quotes(
    mid: float, inventory: float, gamma: float, sigma: float, k: float, time_left: float
) -> tuple[float, float]:
    """(bid, ask) around the reservation price, in the price units of ``mid``."""
    if gamma <= 0 or k <= 0 or sigma < 0 or time_left < 0:
        raise ValueError(f"need gamma > 0, k > 0, sigma >= 0, time_left >= 0; were {gamma}, {k}, {sigma}, {time_left}")
    r = as_reservation_price(mid, inventory, gamma, sigma, time_left)
    half = as_optimal_spread(gamma, sigma, k, time_left) / 2.0
    return r - half, r + half


def as_infinite_horizon_quotes(
    mid: float, inventory: float, gamma: float, sigma: float, k: float, q_max: float
) -> tuple[float | None, float | None]:
    """The paper's infinite-horizon (discounted) quotes; a side is None beyond its bound."""
    if gamma <= 0 or k <= 0 or sigma <= 0 or q_max <= 0:
        raise ValueError(f"need gamma, k, sigma, q_max > 0; were {gamma}, {k}, {sigma}, {q_max}")
    g2s2 = gamma * gamma * sigma * sigma
    omega = 0.5 * g2s2 * (q_max + 1.0) ** 2
    denom = 2.0 * omega - g2s2 * inventory * inventory
    if denom <= 0:
        return None, None
    edge = math.log1p(gamma / k) / gamma
    arg_ask = 1.0 + (1.0 - 2.0 * inventory) * g2s2 / denom
    arg_bid = 1.0 + (-1.0 - 2.0 * inventory) * g2s2 / denom
    ask = mid + math.log(arg_ask) / gamma + edge if arg_ask > 1e-9 else None  # 0 at the bound (float noise)
    bid = mid + math.log(arg_bid) / gamma - edge if arg_bid > 1e-9 else None
    return bid, ask


def fit_intensity(distances: np.ndarray, span_s: float, points: int = 9) -> tuple[float, float] | None:
    """Least-squares (A, k) of ``lambda(delta) = A exp(-k delta)``; None if it cannot fit.

    ``distances`` are trade distances from the mid (price units) seen over ``span_s``
    seconds. The grid is the 0, 10, ..., 80 % quantiles of the distances.
    """
    n = len(distances)
    if n < 3 or span_s <= 0:
        return None
    d = np.sort(distances)
    grid = np.unique(np.quantile(d, np.linspace(0.0, 0.8, points)))
    if len(grid) < 3:
        return None
    counts = n - np.searchsorted(d, grid, side="left")
    lam = counts / span_s
    slope, intercept = np.polyfit(grid, np.log(lam), 1)
    k = -float(slope)
    if not math.isfinite(k) or k <= 0:
        return None
    return float(math.exp(intercept)), k


class IntensityEstimator:
    """Rolling window of trade distances from the mid; refits (A, k) at most every refit_ms."""

    def __init__(self, window_s: float = 600.0, *, min_trades: int = 50, refit_ms: float = 5000.0) -> None:
        self.window_ns = int(window_s * 1e9)
        self.min_trades = min_trades
        self.refit_ns = int(refit_ms * 1_000_000)
        self._ts: deque[int] = deque()  # parallel deques: numpy reads the distances in C
        self._dist: deque[float] = deque()
        self._first_ns: int | None = None
        self._last_fit_ns: int | None = None
        self.fit: tuple[float, float] | None = None

    def on_trade(self, ts_ns: int, distance: float) -> None:
        if self._first_ns is None:
            self._first_ns = ts_ns
        self._ts.append(ts_ns)
        self._dist.append(distance)

    def elapsed_s(self, now_ns: int) -> float:
        return 0.0 if self._first_ns is None else (now_ns - self._first_ns) / 1e9

    def estimate(self, now_ns: int) -> tuple[float, float] | None:
        """(A, k) per second and per price unit, or None before enough data."""
        ts, dist = self._ts, self._dist
        while ts and now_ns - ts[0] > self.window_ns:
            ts.popleft()
            dist.popleft()
        last = self._last_fit_ns
        if last is not None and now_ns - last < self.refit_ns:
            return self.fit
        self._last_fit_ns = now_ns
        if len(dist) < self.min_trades or self._first_ns is None:
            self.fit = None
            return None
        span = min(self.window_ns, now_ns - self._first_ns) / 1e9
        self.fit = fit_intensity(np.fromiter(dist, dtype=float, count=len(dist)), span)
        return self.fit
