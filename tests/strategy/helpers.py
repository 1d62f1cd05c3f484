"""Builders shared by the strategy tests: instruments, books and market contexts."""

from __future__ import annotations

from mmbot.domain.events import BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.marketdata.book import L2Book
from mmbot.strategy.model import MarketContext

INSTRUMENT = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")
LOTS_PER_BTC = 100_000_000
SEC = 1_000_000_000


def book_from(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> L2Book:
    book = L2Book(INSTRUMENT.symbol)
    book.apply_snapshot(BookSnapshot(INSTRUMENT.symbol, 0, 1, tuple(bids), tuple(asks)))
    return book


def ctx(
    *,
    now_ns: int = 0,
    mid_ticks: float = 5_000_000.0,
    best_bid: int | None = None,
    best_ask: int | None = None,
    inventory_lots: int = 0,
    resting_bid_lots: int = 0,
    resting_ask_lots: int = 0,
    book: L2Book | None = None,
) -> MarketContext:
    bb = best_bid if best_bid is not None else int(mid_ticks) - 1
    ba = best_ask if best_ask is not None else int(mid_ticks) + 1
    return MarketContext(
        now_ns=now_ns,
        instrument=INSTRUMENT,
        mid_ticks=mid_ticks,
        best_bid=bb,
        best_ask=ba,
        inventory_lots=inventory_lots,
        resting_bid_lots=resting_bid_lots,
        resting_ask_lots=resting_ask_lots,
        book=book,
    )


def trade(ts_ns: int, price_ticks: int, qty_lots: int, trade_id: int = 1) -> Trade:
    return Trade(INSTRUMENT.symbol, ts_ns, ts_ns, trade_id, price_ticks, qty_lots, False)
