"""Live market data through ccxt.pro, as normalised domain events.

For each symbol three loops run concurrently in one ``asyncio.TaskGroup``: order
book (``watch_order_book``), trades (``watch_trades``) and, optionally, bookTicker
(``watch_bids_asks``). Each kind uses its own ccxt client
(:class:`~mmbot.adapters.ccxt.stream.CcxtStream`), so rebuilding one after a stall
leaves the others streaming.

Books: ccxt.pro hands back the merged book, not the raw diffs. The first book after
a (re)subscription goes out as a ``BookSnapshot`` (``last_update_id`` = ccxt's
nonce, the last applied Binance ``u``); later ones as a ``BookDelta`` holding the
levels that changed (qty 0 = deleted) with ``U = previous nonce + 1`` and
``u = nonce``, so a downstream :class:`~mmbot.marketdata.book.L2Book` stays equal to
ccxt's book level for level.

Failures and signals (``FeedSignal`` to the sink; the live runner tells the risk gate):

* gap (ccxt ChecksumError): ``gap``; the next watch resubscribes and re-snapshots.
* connection closed / error: ``down``; retry after ``min(max, initial x 2^n) x U(0.5, 1)``
  seconds (exponential backoff with jitter); from the second consecutive error on,
  the client is rebuilt too.
* no book update within ``watch_timeout_s`` (frozen feed, or ccxt's receive loop
  stopped by a malformed frame): ``silent``; the client is rebuilt (close + watch).
  The first book after a (re)subscription may take ``max(3 x watch_timeout_s, 5 s)``
  (it waits for the REST snapshot).
* the first book after any of these: ``resynced`` with the outage duration.

Trade and bookTicker timeouts rebuild their own client without a signal: a quiet
market may simply not trade.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from mmbot.adapters.ccxt.exchange import ExchangeParams
from mmbot.adapters.ccxt.stream import CcxtStream, StreamDown, StreamGap, StreamSilent, StreamUnsupported
from mmbot.domain.events import BookDelta, BookSnapshot, FeedSignal, Level, MarketEvent
from mmbot.domain.instrument import Instrument
from mmbot.errors import ConfigError

log = structlog.get_logger("mmbot.feed.live")


# The sink may be async: the feed then waits for it (backpressure instead of a queue).
Sink = Callable[[MarketEvent | FeedSignal], Awaitable[None] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    watch_timeout_s: float = 10.0
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 10.0
    bids_asks: bool = True


def backoff_s(failures: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """``min(max, initial x 2^(failures-1)) x U(0.5, 1)``; 0 before the first failure."""
    if failures <= 0:
        return 0.0
    return min(max_s, initial_s * 2.0 ** (failures - 1)) * (0.5 + rng.random() / 2)


def diff_levels(old: dict[int, int], new: tuple[Level, ...]) -> tuple[Level, ...]:
    """Levels that turn ``old`` into ``new`` (qty 0 deletes)."""
    new_map = dict(new)
    changes = [(p, q) for p, q in new_map.items() if old.get(p) != q]
    changes.extend((p, 0) for p in old if p not in new_map)
    return tuple(changes)


@dataclass
class SymbolFeedStats:
    snapshots: int = 0
    deltas: int = 0
    trades: int = 0
    bbo: int = 0
    gaps: int = 0
    downs: int = 0
    silences: int = 0
    resyncs: int = 0
    last_outage_s: float = 0.0


class LiveFeed:
    def __init__(
        self,
        params: ExchangeParams,
        symbols: Sequence[str],
        config: FeedConfig,
        sink: Sink,
        *,
        seed: int | None = None,
    ) -> None:
        self.params = params
        self.symbols = list(symbols)
        self.config = config
        self.sink = sink
        self.rng = random.Random(seed)
        timeout = config.watch_timeout_s
        self.books = CcxtStream(params, "book", watch_timeout_s=timeout)
        self.trades = CcxtStream(params, "trades", watch_timeout_s=timeout)
        self.bbo = CcxtStream(params, "bbo", watch_timeout_s=timeout)
        self.instruments: dict[str, Instrument] = {}
        self.stats: dict[str, SymbolFeedStats] = {s: SymbolFeedStats() for s in self.symbols}
        self._resync: set[str] = set()

    def request_resync(self, symbol: str) -> None:
        """Send the next book of ``symbol`` as a full snapshot (the consumer lost sync)."""
        self._resync.add(symbol)

    async def start(self) -> dict[str, Instrument]:
        """Load markets once and return each symbol's instrument (exchange filters)."""
        for symbol in self.symbols:
            self.instruments[symbol] = await self.books.instrument(symbol)
        return self.instruments

    async def run(self) -> None:
        if not self.instruments:
            await self.start()
        async with asyncio.TaskGroup() as tg:
            for symbol in self.symbols:
                tg.create_task(self._book_loop(symbol))
                tg.create_task(self._trade_loop(symbol))
                if self.config.bids_asks:
                    tg.create_task(self._bbo_loop(symbol))

    async def close(self) -> None:
        for stream in (self.books, self.trades, self.bbo):
            await stream.close()

    # --- loops ------------------------------------------------------------------------------
    async def _emit(self, item: MarketEvent | FeedSignal) -> None:
        result = self.sink(item)
        if result is not None:
            await result

    async def _signal(self, kind: str, symbol: str, detail: str = "", outage_s: float = 0.0) -> None:
        await self._emit(FeedSignal(kind=kind, symbol=symbol, ts_ns=time.time_ns(), detail=detail, outage_s=outage_s))

    async def _book_loop(self, symbol: str) -> None:
        inst = self.instruments[symbol]
        stats = self.stats[symbol]
        cfg = self.config
        stream = self.books
        # The first book after (re)subscribing waits for a REST snapshot.
        sync_timeout = max(3 * cfg.watch_timeout_s, 5.0)
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        last_id: int | None = None
        failures = 0
        outage_since: float | None = None
        while True:
            generation = stream.generation
            try:
                snap = await stream.watch_book(symbol, inst, None if last_id is not None else sync_timeout)
            except StreamUnsupported as exc:
                raise ConfigError(f"{exc}: live market data needs order books") from exc
            except StreamGap as exc:
                stats.gaps += 1
                failures += 1
                outage_since = outage_since or time.monotonic()
                last_id = None
                log.warning("feed_gap_detected", symbol=symbol, error=str(exc))
                await self._signal("gap", symbol, str(exc))
                if failures > 1:
                    await asyncio.sleep(backoff_s(failures - 1, cfg.reconnect_initial_s, cfg.reconnect_max_s, self.rng))
                continue  # ccxt resubscribes and re-snapshots on the next watch
            except StreamSilent as exc:
                stats.silences += 1
                failures += 1
                outage_since = outage_since or time.monotonic()
                last_id = None
                log.warning("feed_silence_detected", symbol=symbol, error=str(exc), action="rebuilding the client")
                await self._signal("silent", symbol, str(exc))
                await stream.rebuild(generation)
                await asyncio.sleep(backoff_s(failures, cfg.reconnect_initial_s, cfg.reconnect_max_s, self.rng))
                continue
            except StreamDown as exc:
                stats.downs += 1
                failures += 1
                outage_since = outage_since or time.monotonic()
                last_id = None
                log.warning("feed_disconnected", symbol=symbol, error=str(exc), failures=failures)
                await self._signal("down", symbol, str(exc))
                if failures >= 2:
                    await stream.rebuild(generation)
                await asyncio.sleep(backoff_s(failures, cfg.reconnect_initial_s, cfg.reconnect_max_s, self.rng))
                continue
            failures = 0
            if symbol in self._resync:
                self._resync.discard(symbol)
                last_id = None
            if last_id is None or snap.last_update_id < last_id:
                bids = dict(snap.bids)
                asks = dict(snap.asks)
                last_id = snap.last_update_id
                stats.snapshots += 1
                await self._emit(snap)
                if outage_since is not None:
                    outage = time.monotonic() - outage_since
                    outage_since = None
                    stats.resyncs += 1
                    stats.last_outage_s = outage
                    log.info("book_resynced", symbol=symbol, outage_s=round(outage, 3), last_update_id=last_id)
                    await self._signal("resynced", symbol, outage_s=outage)
                continue
            if snap.last_update_id == last_id:
                continue
            bid_changes = diff_levels(bids, snap.bids)
            ask_changes = diff_levels(asks, snap.asks)
            for p, q in bid_changes:
                if q:
                    bids[p] = q
                else:
                    bids.pop(p, None)
            for p, q in ask_changes:
                if q:
                    asks[p] = q
                else:
                    asks.pop(p, None)
            delta = BookDelta(symbol, snap.ts_local_ns, snap.ts_local_ns, last_id + 1, snap.last_update_id, bid_changes, ask_changes,
                              last_id)  # chained by U == last + 1 (spot rule) and pu == last (futures rule) alike
            last_id = snap.last_update_id
            stats.deltas += 1
            await self._emit(delta)

    async def _side_loop(self, symbol: str, stream: CcxtStream, kind: str) -> None:
        inst = self.instruments[symbol]
        stats = self.stats[symbol]
        cfg = self.config
        last_trade_id = -1
        failures = 0
        while True:
            generation = stream.generation
            try:
                if kind == "trades":
                    for trade in await stream.watch_trades(symbol, inst):
                        if trade.trade_id > last_trade_id or trade.trade_id == 0:
                            last_trade_id = max(last_trade_id, trade.trade_id)
                            stats.trades += 1
                            await self._emit(trade)
                else:
                    bbo = await stream.watch_bbo(symbol, inst)
                    if bbo is not None:
                        stats.bbo += 1
                        await self._emit(bbo)
                failures = 0
            except StreamSilent:
                log.info("feed_stream_timed_out", symbol=symbol, stream=kind, action="rebuilding the client")
                await stream.rebuild(generation)
            except StreamUnsupported as exc:
                log.warning("feed_stream_skipped", symbol=symbol, stream=kind, error=str(exc))
                return
            except (StreamDown, StreamGap) as exc:
                failures += 1
                log.warning("feed_stream_disconnected", symbol=symbol, stream=kind, error=str(exc), failures=failures)
                if failures >= 2:
                    await stream.rebuild(generation)
                await asyncio.sleep(backoff_s(failures, cfg.reconnect_initial_s, cfg.reconnect_max_s, self.rng))

    async def _trade_loop(self, symbol: str) -> None:
        await self._side_loop(symbol, self.trades, "trades")

    async def _bbo_loop(self, symbol: str) -> None:
        await self._side_loop(symbol, self.bbo, "bbo")


__all__ = ["BookSnapshot", "FeedConfig", "FeedSignal", "LiveFeed", "backoff_s", "diff_levels"]
