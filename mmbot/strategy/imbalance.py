"""Order-book imbalance and the asymmetric spread adjustment.

Depth is summed over the top ``levels`` price levels of each side, or over all
levels within ``within_bps`` of the mid when that is set::

    I = (D_bid - D_ask) / (D_bid + D_ask)          in [-1, 1]; 0 for an empty book

    I >  theta:  h_bid *= (1 - f),  h_ask *= (1 + f)    more buyers: the price is
                                                        likely to rise, so buy more
                                                        readily and sell dearer
    I < -theta:  h_bid *= (1 + f),  h_ask *= (1 - f)    the mirror case

=============  ===================  =============================================
symbol         parameter            unit
=============  ===================  =============================================
D_bid, D_ask   depth                lots
I              imbalance            1
theta          threshold            1 (default 0.2, the seed's)
f              adjust_fraction      1 (fraction of the half-spread)
h_bid, h_ask   half-spreads         ticks (distance of each quote from the centre)
=============  ===================  =============================================

Worked example: D_bid 30, D_ask 10 -> I = 0.5 > 0.2; with f = 0.25 and a
half-spread of 6 ticks on each side the bid moves to 4.5 ticks and the ask to
7.5 ticks from the centre.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from mmbot.marketdata.book import L2Book


def book_imbalance(bid_depth: float, ask_depth: float) -> float:
    total = bid_depth + ask_depth
    if total <= 0:
        return 0.0
    return (bid_depth - ask_depth) / total


def depth_of(levels: Iterable[tuple[int, int]]) -> int:
    return sum(qty for _, qty in levels)


def book_depths(book: L2Book, mid_ticks: float, levels: int = 5, within_bps: float | None = None) -> tuple[int, int]:
    """(bid depth, ask depth) in lots: top ``levels`` levels, or within ``within_bps`` of mid."""
    if within_bps is not None:
        reach = mid_ticks * within_bps / 10_000.0
        bid_limit = math.ceil(mid_ticks - reach)  # bids at or above mid - reach
        ask_limit = math.floor(mid_ticks + reach)
        return book.depth_within(True, bid_limit), book.depth_within(False, ask_limit)
    return depth_of(book.top_bids(levels)), depth_of(book.top_asks(levels))


def imbalance_adjust(bid_half: float, ask_half: float, imbalance: float, threshold: float, fraction: float) -> tuple[float, float]:
    """Half-spreads after the imbalance rule (unchanged when |I| <= threshold)."""
    if imbalance > threshold:
        return bid_half * (1.0 - fraction), ask_half * (1.0 + fraction)
    if imbalance < -threshold:
        return bid_half * (1.0 + fraction), ask_half * (1.0 - fraction)
    return bid_half, ask_half
