"""GLFT: Gueant, Lehalle and Fernandez-Tapia (2013) closed-form approximation.

Gueant, O., Lehalle, C.-A. and Fernandez-Tapia, J. (2013), "Dealing with the
inventory risk: a solution to the market making problem", Mathematics and
Financial Economics 7(4); the asymptotic approximation as written in Gueant (2017)
and hftbacktest's GLFT example (``compute_coeff(xi, gamma, delta, A, k)``)::

    c1 = 1/(xi*Delta) * ln(1 + xi*Delta/k)
    c2 = sqrt( gamma / (2*A*Delta*k) * (1 + xi*Delta/k) ** (k/(xi*Delta) + 1) )

    delta_bid(q) = c1 + (q + Delta/2) * sigma * c2        (distance below the mid)
    delta_ask(q) = c1 - (q - Delta/2) * sigma * c2        (distance above the mid)

so the half-spread is ``c1 + Delta/2 * sigma * c2`` and the skew (the shift of
both quotes per unit of inventory) is ``sigma * c2``. Inventory bounds
(``|q| <= Q``): no bid when ``q + Delta > Q``, no ask when ``q - Delta < -Q``.
With ``xi = gamma`` (the default) ``c1`` equals Avellaneda-Stoikov's
``(1/gamma) ln(1 + gamma/k)``; ``xi = 0`` is the risk-neutral limit ``c1 = 1/k``.

=========  ==========  ===========================================================
symbol     parameter   unit
=========  ==========  ===========================================================
s          mid         price units
q          inventory   order units (inventory / order_size)
Delta      delta       order units per fill (1: each fill is one order_size)
Q          q_max       order units (max_inventory / order_size)
gamma      gamma       1 / (price units x order units)
xi         xi          like gamma (xi = gamma: the model with the same aversion)
sigma      sigma       price units per sqrt(second)
A          A           fills per second at distance 0
k          k           1 / price units
=========  ==========  ===========================================================

Worked example: gamma = xi = 0.05, Delta = 1, A = 15, k = 0.33, sigma = 7.3:
c1 = 20*ln(1.1515) = 2.821, c2 = sqrt(0.05/9.9 * 1.1515**7.6) = 0.1215; half-spread
2.821 + 0.5*7.3*0.1215 = 3.265, skew 0.887 per order unit. With s = 61,000 and q = 2:
bid = 61,000 - (2.821 + 2.5*0.887) = 60,994.96, ask = 61,000 + 2.821 - 1.5*0.887 = 61,001.49.
"""

from __future__ import annotations

import math


def glft_coefficients(xi: float, gamma: float, delta: float, A: float, k: float) -> tuple[float, float]:
    """(c1, c2) of the approximation; ``xi = 0`` gives the risk-neutral c1 = 1/k."""
    if gamma <= 0 or delta <= 0 or A <= 0 or k <= 0 or xi < 0:
        raise ValueError(f"need gamma, delta, A, k > 0 and xi >= 0; were {gamma}, {delta}, {A}, {k}, {xi}")
    xd = xi * delta
    if xd == 0:
        c1 = 1.0 / k
        growth = math.e  # lim (1 + x/k)**(k/x + 1) as x -> 0
    else:
        c1 = math.log1p(xd / k) / xd
        growth = (1.0 + xd / k) ** (k / xd + 1.0)
    c2 = math.sqrt(gamma / (2.0 * A * delta * k) * growth)
    return c1, c2


def glft_half_spread_and_skew(sigma: float, c1: float, c2: float, delta: float = 1.0) -> tuple[float, float]:
    return c1 + delta / 2.0 * sigma * c2, sigma * c2


def glft_quotes(
    mid: float,
    inventory: float,
    *,
    sigma: float,
    gamma: float,
    A: float,
    k: float,
    xi: float | None = None,
    delta: float = 1.0,
    q_max: float = math.inf,
) -> tuple[float | None, float | None]:
    """(bid, ask) in the price units of ``mid``; a side is None beyond the inventory bound."""
    c1, c2 = glft_coefficients(gamma if xi is None else xi, gamma, delta, A, k)
    half, skew = glft_half_spread_and_skew(sigma, c1, c2, delta)
    center = mid - skew * inventory
    bid = center - half if inventory + delta <= q_max + 1e-12 else None
    ask = center + half if inventory - delta >= -q_max - 1e-12 else None
    return bid, ask
