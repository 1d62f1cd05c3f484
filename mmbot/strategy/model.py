"""The interface between the engine and the quoting models.

The engine builds a :class:`MarketContext` at each decision step and asks the
model for a :class:`Decision`: the desired quotes as data (side, price, qty, level,
reason), plus an optional cancel-all (adverse-selection guard) and hedge order.
Models are pure and deterministic given the sequence of calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mmbot.domain.events import Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Quote
from mmbot.marketdata.book import L2Book


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketContext:
    now_ns: int
    instrument: Instrument
    mid_ticks: float
    best_bid: int
    best_ask: int
    inventory_lots: int
    resting_bid_lots: int  # quantity of our live bids (not counting ones we would replace)
    resting_ask_lots: int
    book: L2Book | None  # None in bar mode


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    quotes: tuple[Quote, ...] = ()
    cancel_all: bool = False
    hedge: Quote | None = None
    reasons: tuple[str, ...] = field(default=())


class QuoteModel(Protocol):
    """What the engine needs from a quoting model."""

    def on_trade(self, trade: Trade) -> None: ...

    def on_mid(self, now_ns: int, mid_ticks: float) -> None: ...

    def decide(self, ctx: MarketContext) -> Decision: ...
