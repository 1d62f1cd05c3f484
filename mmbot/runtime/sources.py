"""Market sources of a node: a replayed capture, or a live feed through ccxt.pro.

:class:`ReplaySource` reads the capture files as one stream (the reader's decoding and
time rules, :mod:`mmbot.marketdata.capture`). ``--speed S`` paces events at S times
the capture's own rate (0 = as fast as possible); a real clock discontinuity
(``ClockJump``) restarts the pacing instead of waiting out the empty time. With
``loop`` the capture is replayed again with shifted timestamps; between two passes the
node cancels resting orders and invalidates the books (the seam), which the
capture's snapshot rebuilds. Crash recovery: events up to ``resume_after_ns`` only
rebuild the books (``warm_up``).

:class:`LiveSource` wraps :class:`~mmbot.marketdata.feeds.live.LiveFeed`: every
message or feed signal goes to the node as it arrives, stamped with its wall-clock
receive time.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import structlog

from mmbot.domain.events import ClockJump, FeedSignal, MarketEvent
from mmbot.domain.instrument import Instrument
from mmbot.errors import ConfigError, TemporaryVenueError
from mmbot.marketdata.capture import CaptureParser, RateLimitedWarn, ReadStats, read_stream

if TYPE_CHECKING:
    from mmbot.marketdata.feeds.live import LiveFeed  # ccxt: built by the composition root for live runs

log = structlog.get_logger("mmbot.runner")

SEAM = None  # yielded between two passes over the capture in loop mode
NAP_S = 0.2  # longest sleep while pacing: a stop and the dead-man are noticed during long gaps
YIELD_EVERY = 1024  # events between two yields to the event loop at --speed 0


def _log_warn(event: str, fields: dict[str, Any]) -> None:
    # Damaged capture input (truncated tail, garbage line, time going back): logged, survived.
    log.warning(event, **fields)


_warn = RateLimitedWarn(_log_warn)


class ReplaySource:
    kind = "replay"

    def __init__(self, paths: list[str], instrument: Instrument, *, speed: float = 0.0, loop: bool = False,
                 max_clock_jump_ns: int, max_events: int | None = None,
                 groups: list[tuple[Instrument, list[str]]] | None = None) -> None:
        self.paths = list(paths)
        self.instrument = instrument
        # Several instruments (a quoted book and its hedge, issue 32): each its own capture
        # files and parser (spot and USD-M share the venue symbol BTCUSDT), merged by receive time.
        self.groups = groups if groups else [(instrument, list(paths))]
        self.speed = speed
        self.loop = loop
        self.max_clock_jump_ns = max_clock_jump_ns
        self.max_events = max_events
        self.stats = ReadStats()
        self.loops = 0
        self.resume_after_ns: int | None = None  # crash recovery: events up to here only rebuild the books
        self.warm_up: Callable[[MarketEvent], None] | None = None

    async def start(self) -> dict[str, Instrument]:
        return {inst.symbol: inst for inst, _ in self.groups}

    def describe(self) -> list[str]:
        return [p for _, paths in self.groups for p in paths]

    def feed_fields(self, symbol: str) -> dict[str, Any]:
        return {}

    def request_resync(self, symbol: str) -> None:
        return None  # the session answers its own snapshot requests from the capture

    async def close(self) -> None:
        return None

    def events(self) -> Iterator[MarketEvent | ClockJump | None]:
        """The capture as one stream; with ``loop``, again and again with shifted timestamps."""
        offset = 0
        first_ts: int | None = None
        last_ts = 0
        while True:
            for event in self._stream():
                if first_ts is None:
                    first_ts = event.ts_local_ns
                if offset:
                    event = event._replace(ts_local_ns=event.ts_local_ns + offset)
                last_ts = event.ts_local_ns
                yield event
            if not self.loop or first_ts is None:
                return
            offset = last_ts + 1_000_000 - first_ts  # the next pass starts 1 ms after this one
            self.loops += 1
            yield SEAM

    def _stream(self) -> Iterator[MarketEvent | ClockJump]:
        """One pass: the one capture's stream, or the groups' streams merged by receive time
        (ties: the order of ``groups``, so a replay is deterministic)."""
        jump = self.max_clock_jump_ns
        if len(self.groups) == 1:
            inst, paths = self.groups[0]
            yield from read_stream(paths, CaptureParser([inst]), self.stats, _warn, max_clock_jump_ns=jump)
            return
        ignored: dict[str, int] = {}
        streams = []
        for inst, paths in self.groups:
            parser = CaptureParser([inst])
            parser.ignored_trades = ignored  # one counter for the summary
            streams.append(read_stream(paths, parser, self.stats, _warn, max_clock_jump_ns=jump))
        yield from heapq.merge(*streams, key=lambda ev: ev.ts_local_ns)

    def run_sync(self, node: Any) -> str:
        """A backtest: every event at once, no event loop."""
        step = node.step
        for event in self.events():
            if event is None:
                node.seam()
            else:
                step(event)
        return "end_of_data"

    async def run(self, node: Any) -> str:
        """Paced replay (``--speed``); returns why it stopped."""
        speed = self.speed
        stop = node.stop
        wall0 = time.monotonic()
        cap0: int | None = None
        count = 0
        resume_ns = self.resume_after_ns
        step = node.step
        durable = node.durable
        for event in self.events():
            if event is None:
                node.seam()
                continue
            ts = event.ts_local_ns
            if type(event) is ClockJump:
                # A real discontinuity in the capture: the empty time is not waited for.
                cap0 = ts
                wall0 = time.monotonic()
                if resume_ns is None or ts > resume_ns:
                    step(event)
                continue
            if resume_ns is not None:
                if ts <= resume_ns and self.warm_up is not None:
                    self.warm_up(event)  # type: ignore[arg-type]
                    continue
                resume_ns = None
            if cap0 is None:
                cap0 = ts
            if speed > 0:
                target = wall0 + (ts - cap0) / 1e9 / speed
                delay = target - time.monotonic()
                while delay > 0:
                    await asyncio.sleep(min(delay, NAP_S))
                    node.beat()
                    if stop.is_set():
                        break
                    delay = target - time.monotonic()
            if step(event) and (barrier := durable()) is not None:
                await barrier
            count += 1
            if count & (YIELD_EVERY - 1) == 0 or speed > 0:
                if speed == 0 and count & (YIELD_EVERY - 1) == 0:
                    await asyncio.sleep(0)
                node.beat()
                if stop.is_set():
                    return node.stop_reason or "signal"
            if self.max_events is not None and count >= self.max_events:
                return "max_events"
        return "end_of_data"


class LiveSource:
    kind = "live"

    def __init__(self, make_feed: Callable[[Callable[[MarketEvent | FeedSignal], Any]], LiveFeed], *, venue_name: str,
                 exchange_id: str, close_timeout_s: float) -> None:
        self.feed = make_feed(self._on_item)
        self.venue_name = venue_name
        self.exchange_id = exchange_id
        self.close_timeout_s = close_timeout_s
        self.stats = ReadStats()
        self.loops = 0
        self.node: Any = None

    async def _on_item(self, item: MarketEvent | FeedSignal) -> None:
        if self.node is not None:
            await self.node.on_item(item)

    async def start(self) -> dict[str, Instrument]:
        try:
            return await self.feed.start()
        except TemporaryVenueError as exc:
            raise ConfigError(f"cannot load markets from {self.exchange_id}: {exc}") from exc

    def describe(self) -> list[str]:
        return [self.venue_name]

    async def run(self, node: Any) -> str:
        self.node = node
        await self.feed.run()
        return ""

    def request_resync(self, symbol: str) -> None:
        self.feed.request_resync(symbol)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.close_timeout_s):
                await self.feed.close()

    def feed_fields(self, symbol: str) -> dict[str, Any]:
        stats = self.feed.stats.get(symbol)
        if stats is None:
            return {}
        return {
            "feed_snapshots": stats.snapshots, "feed_deltas": stats.deltas, "feed_gaps": stats.gaps,
            "feed_disconnects": stats.downs, "feed_silences": stats.silences, "feed_resyncs": stats.resyncs,
            "feed_last_outage_s": round(stats.last_outage_s, 3),
        }  # fmt: skip
