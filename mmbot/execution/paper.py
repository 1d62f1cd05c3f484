"""PaperExecutor: the simulated venue behind the Executor protocol.

Used for paper trading on live market data: the feed applies each event to the
venue's book and calls :meth:`on_market`; commands go through :meth:`submit`.
Time is the event's local receive timestamp, so the venue never reads a clock.
(Replays use :class:`~mmbot.engine.session.ReplaySession`, which drives the same
:class:`~mmbot.sim.venue.SimVenue` synchronously.)
"""

from __future__ import annotations

from collections.abc import Sequence

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, MarketEvent, Trade
from mmbot.domain.orders import CancelAll, Command
from mmbot.execution.protocol import ReportQueue
from mmbot.sim.venue import SimVenue


class PaperExecutor(ReportQueue):
    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        super().__init__()

    async def submit(self, commands: Sequence[Command], now_ns: int) -> None:
        for command in commands:
            self.venue.submit(command, now_ns)
        self._push_all(self.venue.advance(now_ns))

    def on_market(self, event: MarketEvent) -> None:
        """Advance venue time to the event and match it (after the book applied it)."""
        venue = self.venue
        self._push_all(venue.advance(event.ts_local_ns))
        if isinstance(event, Trade):
            self._push_all(venue.on_trade(event))
        elif isinstance(event, (BookDelta, BookSnapshot)):
            self._push_all(venue.on_depth(event))
        elif isinstance(event, BestBidAsk):
            self._push_all(venue.on_bbo(event))

    async def open_order_ids(self) -> list[str]:
        return self.venue.open_order_ids()

    async def cancel_all(self, symbol: str, now_ns: int) -> None:
        await self.submit([CancelAll(symbol=symbol)], now_ns)

    async def close(self) -> None:
        return None
