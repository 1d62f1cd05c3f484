"""Normalised market events (integer ticks/lots, integer-ns timestamps).

``ts_local_ns`` is when the event was received (capture clock, the replay clock);
``ts_event_ns`` is the exchange's own event time where it sends one (0 if not).

Counting events, one definition for the whole project: each price level in a depth
diff or a snapshot counts one, each trade counts one; best-bid/ask messages are read
and used but not counted (see docs/architecture.md).

These are NamedTuples rather than dataclasses: they are created a few hundred
thousand times per replay and NamedTuple construction is the cheapest immutable record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

Level = tuple[int, int]  # (price_ticks, qty_lots); qty 0 deletes the level


class BookDelta(NamedTuple):
    symbol: str
    ts_local_ns: int
    ts_event_ns: int
    first_update_id: int  # Binance "U"
    last_update_id: int  # Binance "u"
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    # Binance futures "pu": the previous diff's "u" (the futures chain); -1 when the
    # venue sends none (spot). Spot books ignore it (mmbot.marketdata.book).
    prev_update_id: int = -1


class BookSnapshot(NamedTuple):
    symbol: str
    ts_local_ns: int
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class Trade(NamedTuple):
    symbol: str
    ts_local_ns: int
    ts_event_ns: int
    trade_id: int
    price_ticks: int
    qty_lots: int
    is_buyer_maker: bool  # True: the seller was the aggressor (trade hit the bids)


class BestBidAsk(NamedTuple):
    symbol: str
    ts_local_ns: int
    update_id: int
    bid_ticks: int
    bid_lots: int
    ask_ticks: int
    ask_lots: int


MarketEvent = BookDelta | BookSnapshot | Trade | BestBidAsk


class ClockJump(NamedTuple):
    """A real discontinuity in a capture's receive times, before the event at ``ts_local_ns``.

    Not a market event: the replay session acts on it (the engine's book is invalidated
    and resynced, timers and samplers skip the empty time) and passes nothing on.
    ``jump_ns`` is the raw step in the file (negative: the file's clock went back and
    the replay re-based it).
    """

    ts_local_ns: int
    jump_ns: int


def count_events(event: MarketEvent) -> int:
    """Events as the project counts them: levels of diffs/snapshots, trades."""
    if isinstance(event, Trade):
        return 1
    if isinstance(event, (BookDelta, BookSnapshot)):
        return len(event.bids) + len(event.asks)
    return 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSignal:
    """A feed-health fact for the risk gate and the logs."""

    kind: str  # gap | down | silent | resynced
    symbol: str
    ts_ns: int
    detail: str = ""
    outage_s: float = 0.0  # resynced: seconds since the first failure
