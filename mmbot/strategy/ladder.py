"""Multi-level quoting (ladders), tick rounding and post-only safety.

A ladder is a list of levels ``{offset_bps, size}`` quoted on each side, sorted by
offset. Level ``i`` sits at a distance proportional to its offset from the
centre ``c`` (the reservation price)::

    d_bid_i = h_bid * o_i / o_0            bid_i = floor(c - d_bid_i)
    d_ask_i = h_ask * o_i / o_0            ask_i = ceil(c + d_ask_i)

where ``h_bid``, ``h_ask`` are the model's half-spreads after the modifiers. For
the simple model ``h = s * o_0 / 10000``, so each level is exactly ``o_i`` bps of
the mid away from the reservation price, as the seed writes it
(``bid = mid * (1 - offset)``, with our corrected skew moving the centre). For
Avellaneda-Stoikov and GLFT ``h`` is the model's optimal distance and the ladder
repeats it at ``o_i / o_0`` times.

Rounding is away from the touch (bids down, asks up). Post-only safety
(``cross_policy="clamp"``): every bid is at most ``best_ask - 1`` tick and every ask
at least ``best_bid + 1`` tick, and each deeper level is at least one tick further
out than the one before, so no quote is ever at or through the opposite touch and
no two levels share a price. In bar mode the close stands in for both touches.

Inventory limits count the whole ladder: level ``i`` of the bids is quoted only if
``q + size_0 + ... + size_i <= Q`` (mirror for asks). The desired ladder replaces
the resting one level by level, so the position cannot pass ``Q`` whatever fills.

=============  =============  ==============================================
symbol         parameter      unit
=============  =============  ==============================================
o_i            offset_bps     basis points of the mid
size_i         size           base units (lots inside the engine)
c, h           centre, half   ticks
=============  =============  ==============================================

Worked example (the seed's ladder): mid 50,000.00, flat, offsets 10/20/30 bps,
sizes 2.0/1.5/1.0 -> bids 49,950 / 49,900 / 49,850 and asks 50,050 / 50,100 /
50,150; at q = 8 of Q = 10 only the first bid level fits (8 + 2 <= 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmbot.strategy.simple import CrossPolicy, SimpleParams, reservation_price, round_ask, round_bid


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderLevel:
    offset_bps: float
    size: float

    def __post_init__(self) -> None:
        if self.offset_bps <= 0:
            raise ValueError(f"offset_bps must be > 0, was {self.offset_bps}")
        if self.size <= 0:
            raise ValueError(f"size must be > 0, was {self.size}")


SEED_LADDER: tuple[LadderLevel, ...] = (
    LadderLevel(offset_bps=10.0, size=2.0),
    LadderLevel(offset_bps=20.0, size=1.5),
    LadderLevel(offset_bps=30.0, size=1.0),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelQuote:
    """One rung of a ladder: side, tick price, size (caller's unit), level index."""

    is_bid: bool
    price_ticks: int
    size: float
    level: int


def sorted_levels(levels: Sequence[LadderLevel]) -> tuple[LadderLevel, ...]:
    return tuple(sorted(levels, key=lambda lv: lv.offset_bps))


def ladder_quotes(
    center_ticks: float,
    bid_half_ticks: float,
    ask_half_ticks: float,
    levels: Sequence[LadderLevel],
    *,
    best_bid: int,
    best_ask: int,
    inventory: float,
    max_inventory: float,
    cross_policy: CrossPolicy = "clamp",
    bid_enabled: bool = True,
    ask_enabled: bool = True,
) -> list[LevelQuote]:
    """Every rung that fits the inventory limit, post-only safe under ``clamp``."""
    ordered = sorted_levels(levels)
    if not ordered:
        return []
    base = ordered[0].offset_bps
    out: list[LevelQuote] = []
    clamp = cross_policy == "clamp"
    if bid_enabled:
        used = 0.0
        prev: int | None = None
        for i, lv in enumerate(ordered):
            used += lv.size
            if inventory + used > max_inventory:
                break
            price = round_bid(center_ticks - bid_half_ticks * lv.offset_bps / base)
            if clamp:
                price = min(price, best_ask - 1)
                if prev is not None:
                    price = min(price, prev - 1)
            if price <= 0:
                break
            out.append(LevelQuote(is_bid=True, price_ticks=price, size=lv.size, level=i))
            prev = price
    if ask_enabled:
        used = 0.0
        prev = None
        for i, lv in enumerate(ordered):
            used += lv.size
            if -inventory + used > max_inventory:
                break
            price = round_ask(center_ticks + ask_half_ticks * lv.offset_bps / base)
            if clamp:
                price = max(price, best_bid + 1)
                if prev is not None:
                    price = max(price, prev + 1)
            out.append(LevelQuote(is_bid=False, price_ticks=price, size=lv.size, level=i))
            prev = price
    return out


def bar_ladder_quotes(
    close_ticks: int,
    inventory: float,
    params: SimpleParams,
    levels: Sequence[LadderLevel],
    cross_policy: CrossPolicy = "clamp",
) -> list[LevelQuote]:
    """Bar-mode ladder: the seed's multi-level quoting around the corrected reservation price.

    Each level is ``offset_bps`` of the close from the reservation price
    ``close * (1 - skew)``; the close stands in for both touches. ``inventory`` and
    the level sizes share ``params.max_inventory``'s unit.
    """
    ordered = sorted_levels(levels)
    if not ordered:
        return []
    center = reservation_price(float(close_ticks), inventory, params.max_inventory, params.skew_factor)
    half = close_ticks * ordered[0].offset_bps / 10_000.0
    return ladder_quotes(
        center,
        half,
        half,
        ordered,
        best_bid=close_ticks,
        best_ask=close_ticks,
        inventory=inventory,
        max_inventory=params.max_inventory,
        cross_policy=cross_policy,
    )
