"""The ports of a :class:`~mmbot.runtime.node.Node`: clock, market source, execution venue.

A node runs every mode the same way; only what is plugged into these ports differs,
and only the composition root (:mod:`mmbot.wiring`) picks them:

============  =======================  ===========================  ===========
mode          market source            execution venue              clock
============  =======================  ===========================  ===========
backtest      ReplaySource (sync)      SimExecution (own book)      replay time
run (replay)  ReplaySource (--speed)   SimExecution                 replay time
run (paper)   LiveSource (ccxt.pro)    SimExecution                 wall time
sandbox/live  LiveSource (ccxt.pro)    ExchangeExecution (ccxt)     wall time
============  =======================  ===========================  ===========

A :class:`Lane` is one symbol of a run: its engine and the path of its market data
and commands to the venue. Times are integer nanoseconds (Unix epoch for the wall
clock; the capture's local receive time for a replay).
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from mmbot.domain.events import ClockJump, FeedSignal, MarketEvent
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Command
from mmbot.engine.engine import Engine
from mmbot.marketdata.book import L2Book
from mmbot.marketdata.capture import ReadStats
from mmbot.runtime.status_line import ReplayProgress


class Clock(Protocol):
    """Engine time: the runtime reads time only through its clock."""

    def now_ns(self) -> int: ...


class WallClock:
    """Wall time (live feeds): Unix epoch in ns."""

    def now_ns(self) -> int:
        return time.time_ns()


class Lane(Protocol):
    """One symbol: the engine and how its market data and commands reach the venue.

    Every handler returns the commands still to be sent to a remote venue (the
    simulated venue executes them itself and returns none).
    """

    instrument: Instrument
    engine: Engine
    recorder: Any  # the run record's sampler (mmbot.research.record.SeriesRecorder) or None

    @property
    def book(self) -> L2Book: ...

    @property
    def now_ns(self) -> int:
        """The lane's own clock (replay time of its session; the wall clock live)."""

    def on_market(self, event: MarketEvent, now: int) -> list[Command]: ...

    def on_signal(self, signal: FeedSignal, now: int) -> list[Command]: ...

    def on_jump(self, jump: ClockJump) -> None: ...

    def on_timer(self, now: int) -> list[Command]: ...

    def act(self, commands: list[Command], now: int) -> list[Command]: ...

    def seam(self, now: int) -> None: ...

    def open_orders(self) -> int: ...

    def market_data_rejections(self) -> dict[str, int]: ...

    def data_fields(self, stats: ReadStats) -> dict[str, Any]:
        """The summary's market-data figures (the same keys in every mode)."""


class Sink(Protocol):
    """What a market source feeds: the node."""

    async def on_item(self, item: MarketEvent | FeedSignal) -> None: ...


class MarketSource(Protocol):
    """Market data: a replayed capture or a live feed."""

    kind: str  # "replay" | "live"
    stats: ReadStats
    loops: int

    async def start(self) -> dict[str, Instrument]: ...

    async def run(self, node: Any) -> str:
        """Feed the node until the data ends (returns the stop reason) or the task is cancelled."""

    def request_resync(self, symbol: str) -> None: ...

    async def close(self) -> None: ...

    def feed_fields(self, symbol: str) -> dict[str, Any]: ...

    def describe(self) -> list[str]:
        """What the data is (capture paths or the venue), for the run record and the journal."""

    def progress(self, data_ts_ns: int) -> ReplayProgress | None:
        """A replay's progress and ETA for the status line; None for a live feed."""


class ExecutionVenue(Protocol):
    """Where orders go: the simulated venue, or an exchange through ccxt."""

    kind: str  # "simulated" | "exchange"
    synchronous: bool  # commands executed at once (True) or sent over the network

    def bind(self, node: Any) -> None:
        """The node this venue serves (an exchange venue publishes and drains through it)."""

    async def connect(self, instruments: Mapping[str, Instrument]) -> None: ...

    def open_lane(self, instrument: Instrument) -> Any: ...  # a Lane

    def start_record(self) -> dict[str, Any] | None:
        """The journal's start-up record of the venue (an exchange's reconciliation), if any."""

    def after_lanes(self, lanes: Mapping[str, Lane]) -> None: ...

    async def send(self, lane: Lane, commands: list[Command], now: int) -> None: ...

    async def pump(self, now: int) -> None:
        """Timer work of the venue (latency queues, reports), for every lane."""

    def tasks(self, node: Any) -> list[Coroutine[Any, Any, None]]: ...

    async def finish(self, lanes: Mapping[str, Lane], deadline_s: float) -> int:
        """Cancel everything until the venue confirms; the number of our orders left open."""

    def summary_fields(self, lane: Lane, left: int) -> dict[str, Any]:
        """The summary's ``venue`` block (the same keys in every mode)."""

    def ready(self) -> str | None: ...

    def open_orders(self) -> int: ...

    async def close(self) -> None: ...


VENUE_FIELDS: dict[str, Any] = {
    "kind": None, "open_orders": 0, "position_matches_venue": True, "rejections": {}, "exchange": None,
    "order_prefix": None, "position": None, "balances": {}, "baseline": {}, "baseline_created": False,
    "orphans_cancelled_at_start": 0, "orphans_cancelled": 0, "orders_sent": 0, "outcomes": {},
    "lookups_after_timeout": 0, "fill_sources": {}, "cancel_sources": {}, "balance_updates": 0,
    "stream_balances": {}, "time_resyncs": 0, "connection_resets": 0, "user_stream_reconnects": 0,
    "reconciliations": 0, "reconcile_mismatches": 0,
}  # fmt: skip


def venue_block(**fields: Any) -> dict[str, Any]:
    """The summary's ``venue`` block: the same keys for the simulated venue and an exchange."""
    unknown = set(fields) - set(VENUE_FIELDS)
    if unknown:
        raise KeyError(f"not a venue summary field: {', '.join(sorted(unknown))}")
    return {**VENUE_FIELDS, **fields}
