"""The seed's simple market maker, with the inventory skew corrected.

Symbols and units:

=================  =====================  ==========================================
symbol             parameter              unit
=================  =====================  ==========================================
s                  mid (or bar close)     quote currency per base unit
q                  inventory              base units (signed; > 0 long)
Q                  max_inventory          base units
spread_bps         spread_bps             basis points of s (full bid-ask spread)
skew_factor        skew_factor            fraction of s per unit of q/Q
=================  =====================  ==========================================

The seed writes ``skew = q/Q * skew_factor`` then ``bid *= (1 - skew)`` and
``ask *= (1 + skew)``. When long (skew > 0) that lowers the bid but *raises* the
ask (the quotes move apart, the ask moves away from the sellers we want); when
short (skew < 0) it raises the bid and lowers the ask until they cross. What the
seed *means* is to shift both quotes against the position. We quote around a
reservation price::

    r   = s * (1 - skew)            skew = clip(q/Q, -1, 1) * skew_factor
    bid = r - s * spread_bps / 20000
    ask = r + s * spread_bps / 20000

so when long both quotes move down (we sell more readily, buy less), when short
both move up, and the spread is unchanged. Example: s = 50,000, spread_bps = 20,
q = 0 gives bid 49,950 and ask 50,050 (a 100-dollar, 20 bps spread).

Inventory limits count resting orders: a bid is placed only if
``q + resting_bid_qty + order_size <= Q`` (mirror for asks), so the position can
never pass ``Q`` whatever fills.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleParams:
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
    return mid * (1.0 - inventory_skew(inventory, max_inventory, skew_factor))


def simple_quote_prices(
    mid: float, inventory: float, spread_bps: float, max_inventory: float, skew_factor: float
) -> tuple[float, float]:
    """(bid, ask) prices of the corrected seed strategy, before tick rounding."""
    r = reservation_price(mid, inventory, max_inventory, skew_factor)
    half = mid * spread_bps / 20_000.0
    return r - half, r + half


def may_place(side_is_bid: bool, inventory: float, resting_same_side: float, size: float, max_inventory: float) -> bool:
    """Inventory limit counting resting orders (exact if callers pass lots)."""
    if side_is_bid:
        return inventory + resting_same_side + size <= max_inventory
    return -inventory + resting_same_side + size <= max_inventory


class SimpleMarketMaker:
    """Small stateful wrapper over the pure functions (the seed's examples import it).

    ``on_bar(close)`` returns the quotes to rest for the next bar as
    ``{"bid": (price, size) | None, "ask": (price, size) | None}``; ``on_fill``
    updates inventory.
    """

    def __init__(self, params: SimpleParams | None = None, **overrides: float) -> None:
        self.params = params or SimpleParams(**overrides)  # type: ignore[arg-type]
        self.inventory = 0.0
        self._bars = 0
        self._last: dict[str, tuple[float, float] | None] = {"bid": None, "ask": None}

    def on_bar(self, close: float) -> dict[str, tuple[float, float] | None]:
        p = self.params
        if self._bars % p.update_freq == 0:
            bid, ask = simple_quote_prices(close, self.inventory, p.spread_bps, p.max_inventory, p.skew_factor)
            self._last = {
                "bid": (bid, p.order_size) if may_place(True, self.inventory, 0.0, p.order_size, p.max_inventory) else None,
                "ask": (ask, p.order_size) if may_place(False, self.inventory, 0.0, p.order_size, p.max_inventory) else None,
            }
        self._bars += 1
        return self._last

    def on_fill(self, side: str, qty: float) -> None:
        self.inventory += qty if side == "buy" else -qty
