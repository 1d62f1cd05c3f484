"""Hand-built books, events and a small driver for SimVenue scenario tests."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import CancelOrder, ExecReport, OrderFilled, PlaceOrder, Side
from mmbot.marketdata.book import L2Book
from mmbot.sim.venue import FillModel, SimVenue, VenueConfig

SYM = "BTC/USDT"
MS = 1_000_000
LOT = 1_000  # one step (0.00001 BTC) in lots of 1e-8
PX = 6_000_000  # 60,000.00 USDT in ticks of 0.01


def instrument() -> Instrument:
    return Instrument.from_symbol(SYM, tick_size="0.01", step_size="0.00001", min_notional="5")


def book_from(bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], update_id: int = 100) -> L2Book:
    book = L2Book(SYM)
    book.apply_snapshot(BookSnapshot(SYM, 0, update_id, tuple(bids), tuple(asks)))
    return book


class Market:
    """Drives a venue the way ReplaySession does: book first, then the venue."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self.book = venue.book
        self.reports: list[ExecReport] = []
        self.bbo_id = 0

    def at(self, ts: int) -> list[ExecReport]:
        out = self.venue.advance(ts)
        self.reports.extend(out)
        return out

    def send(self, command: PlaceOrder | CancelOrder, ts: int) -> list[ExecReport]:
        self.venue.submit(command, ts)
        return self.at(ts)

    def depth(self, ts: int, bids: Iterable[tuple[int, int]] = (), asks: Iterable[tuple[int, int]] = ()) -> list[ExecReport]:
        out = self.at(ts)
        uid = self.book.last_update_id + 1
        self.book.apply_delta(BookDelta(SYM, ts, ts, uid, uid, tuple(bids), tuple(asks)))
        more = self.venue.on_depth(BookDelta(SYM, ts, ts, uid, uid, tuple(bids), tuple(asks)))
        self.reports.extend(more)
        return out + more

    def trade(self, ts: int, price: int, qty: int, *, seller_aggressor: bool) -> list[ExecReport]:
        out = self.at(ts)
        more = self.venue.on_trade(Trade(SYM, ts, ts, ts, price, qty, seller_aggressor))
        self.reports.extend(more)
        return out + more

    def bbo(self, ts: int, bid: tuple[int, int], ask: tuple[int, int]) -> list[ExecReport]:
        out = self.at(ts)
        # A bookTicker newer than the depth book (its update id is higher).
        self.bbo_id = max(self.bbo_id, self.book.last_update_id) + 1
        more = self.venue.on_bbo(BestBidAsk(SYM, ts, self.bbo_id, bid[0], bid[1], ask[0], ask[1]))
        self.reports.extend(more)
        return out + more

    def fills(self, coid: str | None = None) -> list[OrderFilled]:
        return [r for r in self.reports if isinstance(r, OrderFilled) and (coid is None or r.client_order_id == coid)]

    def filled_lots(self, coid: str) -> int:
        return sum(f.qty_lots for f in self.fills(coid))


def venue(
    book: L2Book,
    model: FillModel = FillModel.RISK_AVERSE,
    *,
    entry_ms: float = 0.0,
    cancel_ms: float = 0.0,
    maker_bps: str = "0",
    taker_bps: str = "0",
    prob_power: float = 2.0,
) -> SimVenue:
    return SimVenue(
        instrument(),
        book,
        VenueConfig(
            fill_model=model,
            entry_latency_ms=entry_ms,
            cancel_latency_ms=cancel_ms,
            maker_fee_bps=Decimal(maker_bps),
            taker_fee_bps=Decimal(taker_bps),
            prob_power=prob_power,
        ),
    )


def place(coid: str, side: Side, price: int, qty: int, *, post_only: bool = True, taker: bool = False) -> PlaceOrder:
    return PlaceOrder(client_order_id=coid, symbol=SYM, side=side, price_ticks=price, qty_lots=qty, post_only=post_only, is_taker=taker)


def cancel(coid: str) -> CancelOrder:
    return CancelOrder(client_order_id=coid, symbol=SYM)
