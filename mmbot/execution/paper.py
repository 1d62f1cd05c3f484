"""PaperExecutor: the simulated venue behind the Executor protocol.

Used for paper trading on live market data: the feed applies each event to the
venue's book and calls :meth:`on_market`; commands go through :meth:`submit`.
Time is the event's local receive timestamp, so the venue never reads a clock.
(Replays use :class:`~mmbot.engine.session.ReplaySession`, which drives the same
:class:`~mmbot.sim.venue.SimVenue` synchronously.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, MarketEvent, Trade
from mmbot.domain.orders import CancelAll, Command, ExecReport
from mmbot.sim.venue import SimVenue


class PaperExecutor:
    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self._queue: asyncio.Queue[ExecReport] = asyncio.Queue()  # unbounded: reports are never dropped

    def _push(self, reports: list[ExecReport]) -> None:
        for report in reports:
            self._queue.put_nowait(report)

    async def submit(self, commands: Sequence[Command], now_ns: int) -> None:
        for command in commands:
            self.venue.submit(command, now_ns)
        self._push(self.venue.advance(now_ns))

    def on_market(self, event: MarketEvent) -> None:
        """Advance venue time to the event and match it (after the book applied it)."""
        venue = self.venue
        self._push(venue.advance(event.ts_local_ns))
        if isinstance(event, Trade):
            self._push(venue.on_trade(event))
        elif isinstance(event, (BookDelta, BookSnapshot)):
            self._push(venue.on_depth(event))
        elif isinstance(event, BestBidAsk):
            self._push(venue.on_bbo(event))

    async def reports(self) -> AsyncIterator[ExecReport]:
        while True:
            yield await self._queue.get()

    def pending_reports(self) -> list[ExecReport]:
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def open_order_ids(self) -> list[str]:
        return self.venue.open_order_ids()

    async def cancel_all(self, symbol: str, now_ns: int) -> None:
        await self.submit([CancelAll(symbol=symbol)], now_ns)

    async def close(self) -> None:
        return None
