"""The seed's simple market maker, with the inventory skew corrected.

Symbols and units:

=================  =====================  ==========================================
symbol             parameter              unit
=================  =====================  ==========================================
s                  mid (or bar close)     quote currency per base unit (or ticks)
q                  inventory              base units (signed; > 0 long) or lots
Q                  max_inventory          same unit as q
spread_bps         spread_bps             basis points of s (full bid-ask spread)
skew_factor        skew_factor            fraction of s per unit of q/Q
=================  =====================  ==========================================

The seed writes ``skew = q/Q * skew_factor`` then ``bid *= (1 - skew)`` and
``ask *= (1 + skew)``. When long (skew > 0) that lowers the bid but *raises* the
ask: the quotes move apart and the ask moves away from the buyers we need to sell
to. When short (skew < 0) it raises the bid and lowers the ask, pulling both
inward until they cross (they meet at ``skew = -spread/(2 s)``: with the seed's
20 bps and skew_factor 0.001 at q = -Q, and cross beyond). What the seed *means*
("when long, decrease prices to encourage selling") is to shift both quotes
against the position. We quote around a reservation price::

    r   = s * (1 - skew)            skew = clip(q/Q, -1, 1) * skew_factor
    bid = r - s * spread_bps / 20000
    ask = r + s * spread_bps / 20000

so when long both quotes move down (we sell more readily, buy less), when short
both move up, and the spread is unchanged. Example: s = 50,000, spread_bps = 20,
q = 0 gives bid 49,950 and ask 50,050 (a 100-dollar, 20 bps spread); with
q = 5 of Q = 10 and skew_factor 0.001, skew = 0.0005, r = 49,975, bid 49,925,
ask 50,025.

Inventory limits count resting orders: a bid is placed only if
``q + resting_bid_qty + order_size <= Q`` (mirror for asks), so the position can
never pass ``Q`` whatever fills.

Bar mode (no book): the bar's close stands in for both touches. Prices are
rounded to the tick away from the touch (bids down, asks up). When skew pushes a
quote through the close (a bid at or above it, an ask at or below it) the
``cross_policy`` decides: ``clamp`` (the default) moves it to one tick inside the
close, because a resting post-only order can never be at or through the opposite
touch and a real venue would reject it (or fill it as a taker, paying the taker
fee, which the bar backtest cannot price); ``allow`` keeps the price as the seed
computes it, for reproducing the seed literally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

CrossPolicy = Literal["clamp", "allow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleParams:
    """The seed's parameters (sizes in any one unit: base units or lots)."""

    spread_bps: float = 20.0
    order_size: float = 1.0
    max_inventory: float = 10.0
    skew_factor: float = 0.001
    update_freq: int = 1

    def __post_init__(self) -> None:
        if self.spread_bps <= 0:
            raise ValueError(f"spread_bps must be > 0, was {self.spread_bps}")
        if self.order_size <= 0:
            raise ValueError(f"order_size must be > 0, was {self.order_size}")
        if self.max_inventory <= 0:
            raise ValueError(f"max_inventory must be > 0, was {self.max_inventory}")
        if self.skew_factor < 0:
            raise ValueError(f"skew_factor must be >= 0, was {self.skew_factor}")
        if self.update_freq < 1:
            raise ValueError(f"update_freq must be >= 1, was {self.update_freq}")


def inventory_skew(inventory: float, max_inventory: float, skew_factor: float) -> float:
    """Fractional price shift, clipped to +-skew_factor at the inventory limit."""
    ratio = inventory / max_inventory
    ratio = 1.0 if ratio > 1.0 else (-1.0 if ratio < -1.0 else ratio)
    return ratio * skew_factor


def reservation_price(mid: float, inventory: float, max_inventory: float, skew_factor: float) -> float:
    """r = s * (1 - skew): below the mid when long, above when short."""
    return mid * (1.0 - inventory_skew(inventory, max_inventory, skew_factor))


def simple_quote_prices(
    mid: float, inventory: float, spread_bps: float, max_inventory: float, skew_factor: float
) -> tuple[float, float]:
    """(bid, ask) prices of the corrected seed strategy, before tick rounding."""
    r = reservation_price(mid, inventory, max_inventory, skew_factor)
    half = mid * spread_bps / 20_000.0
    return r - half, r + half


def simple_quotes(mid: float, inventory: float, params: SimpleParams) -> tuple[float | None, float | None]:
    """(bid, ask) of the corrected seed strategy with its inventory limits applied.

    A side is None when placing ``order_size`` more would pass ``max_inventory``.
    Prices are not rounded (use :func:`bar_quotes` for tick prices).
    """
    bid, ask = simple_quote_prices(mid, inventory, params.spread_bps, params.max_inventory, params.skew_factor)
    bid_ok = may_place(True, inventory, 0.0, params.order_size, params.max_inventory)
    ask_ok = may_place(False, inventory, 0.0, params.order_size, params.max_inventory)
    return (bid if bid_ok else None), (ask if ask_ok else None)


def seed_quote_prices(mid: float, inventory: float, spread_bps: float, max_inventory: float, skew_factor: float) -> tuple[float, float]:
    """The seed's formula exactly as written (kept for the docs and tests: it is wrong)."""
    skew = inventory / max_inventory * skew_factor
    half = mid * spread_bps / 20_000.0
    return (mid - half) * (1.0 - skew), (mid + half) * (1.0 + skew)


def may_place(side_is_bid: bool, inventory: float, resting_same_side: float, size: float, max_inventory: float) -> bool:
    """Inventory limit counting resting orders (exact if callers pass lots)."""
    if side_is_bid:
        return inventory + resting_same_side + size <= max_inventory
    return -inventory + resting_same_side + size <= max_inventory


def round_bid(price_ticks: float) -> int:
    """Away from the touch: bids round down to the tick grid."""
    return math.floor(price_ticks)


def round_ask(price_ticks: float) -> int:
    """Away from the touch: asks round up to the tick grid."""
    return math.ceil(price_ticks)


def apply_cross_policy(bid: int, ask: int, best_bid: int, best_ask: int, cross_policy: CrossPolicy = "clamp") -> tuple[int, int]:
    """Keep a bid below ``best_ask`` and an ask above ``best_bid`` (``clamp``), or not (``allow``)."""
    if cross_policy == "allow":
        return bid, ask
    return min(bid, best_ask - 1), max(ask, best_bid + 1)


def bar_quotes(
    close_ticks: int,
    inventory: float,
    params: SimpleParams,
    cross_policy: CrossPolicy = "clamp",
) -> tuple[int | None, int | None]:
    """Bar-mode quotes in ticks: ``(bid_ticks | None, ask_ticks | None)``.

    ``close_ticks`` is the bar's close in ticks (it stands in for both touches);
    ``inventory`` is in the same unit as ``params.order_size`` and
    ``params.max_inventory``. Prices are the corrected-skew quotes rounded away from
    the close (bids down, asks up); with ``cross_policy="clamp"`` a bid is at most
    ``close - 1`` and an ask at least ``close + 1`` tick. A side is None when its
    order would pass the inventory limit or its price would be <= 0.
    Seed example: close 5,000,000 ticks (50,000.00 at tick 0.01), spread 20 bps,
    flat -> (4,995,000, 5,005,000).
    """
    bid_f, ask_f = simple_quote_prices(float(close_ticks), inventory, params.spread_bps, params.max_inventory, params.skew_factor)
    bid, ask = apply_cross_policy(round_bid(bid_f), round_ask(ask_f), close_ticks, close_ticks, cross_policy)
    bid_out = bid if bid > 0 and may_place(True, inventory, 0.0, params.order_size, params.max_inventory) else None
    ask_out = ask if ask > 0 and may_place(False, inventory, 0.0, params.order_size, params.max_inventory) else None
    return bid_out, ask_out


class SimpleMarketMaker:
    """Small stateful wrapper over the pure functions (the seed's examples import it).

    ``on_bar(close)`` returns the quotes to rest for the next bar as
    ``{"bid": (price, size) | None, "ask": (price, size) | None}`` (re-computed every
    ``update_freq`` bars, the previous quotes kept in between); ``on_fill`` updates
    inventory. ``quote(mid)`` gives the current (bid, ask) without counting a bar.

    >>> mm = SimpleMarketMaker(spread_bps=20, max_inventory=10, order_size=1.0, skew_factor=0.001)
    >>> mm.on_bar(50_000.0)
    {'bid': (49950.0, 1.0), 'ask': (50050.0, 1.0)}
    """

    def __init__(self, params: SimpleParams | None = None, **overrides: float) -> None:
        if params is None:
            update_freq = int(overrides.pop("update_freq", 1))
            params = SimpleParams(update_freq=update_freq, **overrides)
        self.params = params
        self.inventory = 0.0
        self._bars = 0
        self._last: dict[str, tuple[float, float] | None] = {"bid": None, "ask": None}

    def quote(self, mid: float) -> tuple[float | None, float | None]:
        return simple_quotes(mid, self.inventory, self.params)

    def on_bar(self, close: float) -> dict[str, tuple[float, float] | None]:
        p = self.params
        if self._bars % p.update_freq == 0:
            bid, ask = self.quote(close)
            self._last = {
                "bid": (bid, p.order_size) if bid is not None else None,
                "ask": (ask, p.order_size) if ask is not None else None,
            }
        self._bars += 1
        return self._last

    def on_fill(self, side: str, qty: float) -> None:
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', was {side!r}")
        self.inventory += qty if side == "buy" else -qty
