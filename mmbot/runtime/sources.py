"""Market sources of a node: a replayed capture, or a live feed through ccxt.pro.

:class:`ReplaySource` reads the capture files as one stream (the reader's decoding and
time rules, :mod:`mmbot.marketdata.capture`). ``--speed S`` paces events at S times
the capture's own rate (0 = as fast as possible); a real clock discontinuity
(``ClockJump``) restarts the pacing instead of waiting out the empty time. With
``loop`` the capture is replayed again with shifted timestamps; between two passes the
node cancels resting orders and invalidates the books (the seam), which the
capture's snapshot rebuilds. Crash recovery: events up to ``resume_after_ns`` only
rebuild the books (``warm_up``).

``inputs`` (``mmbot rerun``): what a recorded run received besides market data, at
its receive time: feed signals (gap, silent, down, resynced) and venue risk inputs
(EXCHANGE_DOWN raised or cleared, ...). Each goes to the node
(:meth:`~mmbot.runtime.node.Node.apply_input`) before the first event after it.

:class:`LiveSource` wraps :class:`~mmbot.marketdata.feeds.live.LiveFeed`: every
message or feed signal goes to the node as it arrives, stamped with its wall-clock
receive time.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import heapq
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from mmbot.domain.events import ClockJump, FeedSignal, MarketEvent
from mmbot.domain.instrument import Instrument
from mmbot.errors import ConfigError, TemporaryVenueError
from mmbot.marketdata.capture import CaptureParser, RateLimitedWarn, ReadStats, read_stream
from mmbot.runtime.status_line import ReplayProgress

if TYPE_CHECKING:
    from mmbot.marketdata.feeds.live import LiveFeed  # ccxt: built by the composition root for live runs

log = structlog.get_logger("mmbot.runner")

SEAM = None  # yielded between two passes over the capture in loop mode


@dataclass(frozen=True, slots=True)
class RecordedInput:
    """A recorded run's non-market input (``feed_signal`` or ``venue_risk``) at its receive time."""

    ts_ns: int
    kind: str
    payload: dict[str, Any]
NAP_S = 0.2  # longest sleep while pacing: a stop and the dead-man are noticed during long gaps
YIELD_EVERY = 1024  # events between two yields to the event loop at --speed 0


def _log_warn(event: str, fields: dict[str, Any]) -> None:
    # Damaged capture input (truncated tail, garbage line, time going back): logged, survived.
    log.warning(event, **fields)


_warn = RateLimitedWarn(_log_warn)


@dataclass(frozen=True)
class DecodedCapture:
    """A capture decoded once (events and the reader's counters), replayed many times.

    The L2 optimiser decodes the capture once per worker and runs every combination
    from it: the same events the reader yields, so the same fills as a run from the file.
    """

    paths: tuple[str, ...]
    events: tuple[MarketEvent | ClockJump, ...]
    stats: ReadStats

    @classmethod
    def read(cls, paths: list[str], instrument: Instrument, *, max_clock_jump_ns: int) -> DecodedCapture:
        stats = ReadStats()
        parser = CaptureParser([instrument])
        events = tuple(read_stream(paths, parser, stats, _warn, max_clock_jump_ns=max_clock_jump_ns))
        return cls(tuple(paths), events, stats)


class ReplaySource:
    kind = "replay"

    def __init__(self, paths: list[str], instrument: Instrument, *, speed: float = 0.0, loop: bool = False,
                 max_clock_jump_ns: int, max_events: int | None = None, decoded: DecodedCapture | None = None,
                 inputs: list[RecordedInput] | None = None, groups: list[tuple[Instrument, list[str]]] | None = None) -> None:
        self.paths = list(paths)
        self.inputs = sorted(inputs or [], key=lambda i: i.ts_ns)
        self.instrument = instrument
        # Several instruments (a quoted book and its hedge, issue 32): each its own capture
        # files and parser (spot and USD-M share the venue symbol BTCUSDT), merged by receive time.
        self.groups = groups if groups else [(instrument, list(paths))]
        self.speed = speed
        self.loop = loop
        self.max_clock_jump_ns = max_clock_jump_ns
        self.max_events = max_events
        if decoded is not None and list(decoded.paths) != self.paths:
            raise ConfigError(f"decoded capture of {list(decoded.paths)} given for a replay of {self.paths}")
        if decoded is not None and (loop or len(self.groups) > 1):
            raise ConfigError("a decoded capture replays one instrument once: --loop and hedged replays read the files")
        self.decoded = decoded
        self.stats = ReadStats()
        self.loops = 0
        self.resume_after_ns: int | None = None  # crash recovery: events up to here only rebuild the books
        self.warm_up: Callable[[MarketEvent], None] | None = None
        self.wall_started: float | None = None  # time.monotonic() when the paced replay began
        self._total_bytes: int | None = None

    async def start(self) -> dict[str, Instrument]:
        return {inst.symbol: inst for inst, _ in self.groups}

    def progress(self, data_ts_ns: int) -> ReplayProgress:
        """How far through the capture (module status_line: bytes read / total, ETA)."""
        if self._total_bytes is None:
            total = 0
            for path in self.paths:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(path)
            self._total_bytes = total
        total = self._total_bytes
        done = self.stats.bytes_read() - self.loops * total  # this pass
        fraction = min(max(done / total, 0.0), 1.0) if total else 0.0
        eta: float | None = None
        if not self.loop and self.wall_started is not None and fraction >= 0.01:
            eta = (time.monotonic() - self.wall_started) * (1.0 - fraction) / fraction
        return ReplayProgress(fraction=fraction, data_ts_ns=data_ts_ns, eta_s=eta, passes=self.loops, looping=self.loop)

    def describe(self) -> list[str]:
        return [p for _, paths in self.groups for p in paths]

    def feed_fields(self, symbol: str) -> dict[str, Any]:
        return {}

    def request_resync(self, symbol: str) -> None:
        return None  # the session answers its own snapshot requests from the capture

    async def close(self) -> None:
        return None

    def events(self) -> Iterator[MarketEvent | ClockJump | RecordedInput | None]:
        """The capture as one stream (``inputs`` merged in by time)."""
        inputs = self.inputs
        if not inputs:
            yield from self._market()
            return
        k = 0
        for event in self._market():
            if event is not None:
                while k < len(inputs) and inputs[k].ts_ns <= event.ts_local_ns:
                    yield inputs[k]
                    k += 1
            yield event
        yield from inputs[k:]

    def _market(self) -> Iterator[MarketEvent | ClockJump | None]:
        """The capture as one stream; with ``loop``, again and again with shifted timestamps."""
        offset = 0
        first_ts: int | None = None
        last_ts = 0
        while True:
            stream: Iterable[MarketEvent | ClockJump]
            if self.decoded is not None:
                stream = self.decoded.events
                self.stats = copy.deepcopy(self.decoded.stats)  # the counters a read of the files gives
            else:
                stream = self._stream()
            for event in stream:
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
            elif type(event) is RecordedInput:
                node.apply_input(event)
            else:
                step(event)
        return "end_of_data"

    async def run(self, node: Any) -> str:
        """Paced replay (``--speed``); returns why it stopped."""
        speed = self.speed
        stop = node.stop
        wall0 = self.wall_started = time.monotonic()
        cap0: int | None = None
        count = 0
        resume_ns = self.resume_after_ns
        step = node.step
        durable = node.durable
        for event in self.events():
            if event is None:
                node.seam()
                continue
            if isinstance(event, RecordedInput):
                node.apply_input(event)
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

    def progress(self, data_ts_ns: int) -> ReplayProgress | None:
        return None  # a live feed has no end

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
