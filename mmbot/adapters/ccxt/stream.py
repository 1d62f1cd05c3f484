"""ccxt.pro watch calls with timeouts, error translation and rebuild-on-silence.

One :class:`CcxtStream` owns one ccxt.pro exchange object used for one kind of
stream (order books, trades or bookTicker) across symbols, so rebuilding it after a
stall does not disturb the other kinds.

Why rebuild (measured with ccxt 4.5.90): a malformed frame starting with ``{`` stops
ccxt's receive loop silently (every watch on that socket hangs, nothing is raised
until the ping/pong watchdog after 2-3 x keepAlive); a frozen feed whose server
still answers pings raises nothing at all. So every watch runs under
``asyncio.timeout(watch_timeout_s)``; a timeout means *silent*, and the caller
closes the exchange (``await ex.close()`` closes every socket; the object is reused,
its markets stay loaded) and watches again, which reconnects and re-snapshots.

Errors are translated here, the only module that sees ccxt exceptions:

==============================================  ===============  ==========================
ccxt                                            raised here      meaning
==============================================  ===============  ==========================
ChecksumError / InvalidNonce (sequence gap)     StreamGap        book invalid; ccxt resyncs
                                                                 on the next watch
NetworkError (closed socket 1000/1006, keepalive StreamDown       reconnect with backoff
RequestTimeout, ExchangeNotAvailable, 429/418),
ExchangeClosedByUser, other ExchangeError,
a watch future cancelled by ccxt's close()
``asyncio.timeout`` expired                     StreamSilent     rebuild the client
BadSymbol                                       ConfigError      stop: fix the config
NotSupported                                    StreamUnsupported that stream is skipped
==============================================  ===============  ==========================

Conversions (floats from ccxt to integer ticks/lots) are described in
:mod:`mmbot.adapters.ccxt.exchange`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt

from mmbot.adapters.ccxt.exchange import ExchangeParams, build_exchange, close_exchange, market_instrument
from mmbot.domain.events import BestBidAsk, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.errors import BookIntegrityError, ConfigError, TemporaryVenueError, VenueError


class StreamGap(BookIntegrityError):
    """The exchange's update ids skipped: the local book is invalid until resynced."""


class StreamDown(TemporaryVenueError):
    """The connection failed or was closed; the next watch reconnects."""


class StreamSilent(TemporaryVenueError):
    """No update within the watch timeout: the client is rebuilt."""


class StreamUnsupported(VenueError):
    """The exchange has no such stream in ccxt (e.g. no watch_bids_asks)."""


def book_levels(side: list[list[float]], ticks_per_unit: int, lots_per_unit: int) -> tuple[tuple[int, int], ...]:
    return tuple((round(p * ticks_per_unit), round(q * lots_per_unit)) for p, q, *_ in side)


class CcxtStream:
    """A rebuildable ccxt.pro exchange object for one stream kind."""

    def __init__(self, params: ExchangeParams, kind: str, *, watch_timeout_s: float, load_timeout_s: float = 30.0) -> None:
        self.params = params
        self.kind = kind
        self.watch_timeout_s = watch_timeout_s
        self.load_timeout_s = load_timeout_s
        self.exchange: Any = None
        self.generation = 0
        self.rebuilds = 0
        self._lock = asyncio.Lock()
        self._local_seq: dict[str, int] = {}  # per symbol, for exchanges whose books carry no nonce

    async def ensure(self) -> Any:
        """The exchange object with markets loaded (built on first use)."""
        if self.exchange is not None:
            return self.exchange
        async with self._lock:
            if self.exchange is None:
                ex = build_exchange(self.params)
                try:
                    async with asyncio.timeout(self.load_timeout_s):
                        await ex.load_markets()
                except TimeoutError as exc:
                    await close_exchange(ex)
                    raise StreamDown(f"{self.params.id}: load_markets took longer than {self.load_timeout_s} s") from exc
                except ccxt.BaseError as exc:
                    await close_exchange(ex)
                    raise StreamDown(f"{self.params.id}: load_markets failed: {type(exc).__name__}: {exc}") from exc
                self.exchange = ex
            return self.exchange

    async def instrument(self, symbol: str) -> Instrument:
        return market_instrument(await self.ensure(), symbol)

    async def rebuild(self, generation: int) -> None:
        """Close every socket of this client, unless another task already did since ``generation``."""
        async with self._lock:
            if generation != self.generation or self.exchange is None:
                return
            self.generation += 1
            self.rebuilds += 1
            ex = self.exchange
            # The object is reused after close() (markets stay loaded, sockets and the
            # session are recreated lazily), as observed with ccxt 4.5.90.
            try:
                async with asyncio.timeout(self.watch_timeout_s):
                    await close_exchange(ex)
            except TimeoutError:
                self.exchange = None  # a fresh object next time

    async def close(self) -> None:
        if self.exchange is not None:
            ex, self.exchange = self.exchange, None
            async with asyncio.timeout(self.watch_timeout_s):
                await close_exchange(ex)

    async def _watch(self, call: Any, what: str, timeout_s: float | None = None) -> Any:
        limit = timeout_s or self.watch_timeout_s
        try:
            async with asyncio.timeout(limit):
                return await call
        except TimeoutError as exc:
            raise StreamSilent(f"{what}: no update for {limit} s") from exc
        except asyncio.CancelledError as exc:
            # ccxt's close() (a rebuild by another symbol's loop) cancels every pending
            # watch future: that is a closed connection, not a cancellation of this task.
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            raise StreamDown(f"{what}: connection closed by a client rebuild") from exc
        except ccxt.BadSymbol as exc:
            raise ConfigError(f"{what}: {exc}") from exc
        except ccxt.NotSupported as exc:
            raise StreamUnsupported(f"{what}: not supported by {self.params.id} in ccxt") from exc
        except ccxt.InvalidNonce as exc:  # ChecksumError is a subclass
            raise StreamGap(f"{what}: sequence gap ({type(exc).__name__})") from exc
        except ccxt.BaseError as exc:
            raise StreamDown(f"{what}: {type(exc).__name__}: {str(exc)[:200]}") from exc
        except OSError as exc:
            raise StreamDown(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def watch_book(self, symbol: str, inst: Instrument, timeout_s: float | None = None) -> BookSnapshot:
        """The merged book after the next update, as a full snapshot (``last_update_id`` = nonce).

        ``timeout_s``: longer for the first watch after a (re)subscription, which waits
        for the REST snapshot (ccxt's rate limiter spaces 1000-level snapshots ~0.5 s
        apart, so several symbols resubscribing at once take a while).
        """
        ex = await self.ensure()
        ob = await self._watch(ex.watch_order_book(symbol), f"watch_order_book {symbol}", timeout_s)
        now = time.time_ns()
        tpu, lpu = inst.ticks_per_unit, inst.lots_per_unit
        nonce = ob.get("nonce")
        if nonce is None:
            # No venue sequence number: count the updates we saw, so downstream books chain.
            nonce = self._local_seq[symbol] = self._local_seq.get(symbol, 0) + 1
        return BookSnapshot(symbol, now, int(nonce), book_levels(ob["bids"], tpu, lpu), book_levels(ob["asks"], tpu, lpu))

    async def watch_trades(self, symbol: str, inst: Instrument) -> list[Trade]:
        ex = await self.ensure()
        trades = await self._watch(ex.watch_trades(symbol), f"watch_trades {symbol}")
        now = time.time_ns()
        out = []
        for t in trades:
            info = t.get("info") or {}
            out.append(
                Trade(
                    symbol,
                    now,
                    int(t.get("timestamp") or 0) * 1_000_000,
                    int(t["id"]) if str(t.get("id") or "").isdigit() else 0,  # 0: the venue's ids are not numbers
                    round(float(t["price"]) * inst.ticks_per_unit),
                    round(float(t["amount"]) * inst.lots_per_unit),
                    bool(info.get("m", t.get("side") == "sell")),
                )
            )
        return out

    async def watch_bbo(self, symbol: str, inst: Instrument) -> BestBidAsk | None:
        ex = await self.ensure()
        tickers = await self._watch(ex.watch_bids_asks([symbol]), f"watch_bids_asks {symbol}")
        t = tickers.get(symbol)
        if not t or t.get("bid") is None or t.get("ask") is None:
            return None
        info = t.get("info") or {}
        tpu, lpu = inst.ticks_per_unit, inst.lots_per_unit
        return BestBidAsk(
            symbol,
            time.time_ns(),
            int(info.get("u") or 0),
            round(float(t["bid"]) * tpu),
            round(float(t.get("bidVolume") or 0) * lpu),
            round(float(t["ask"]) * tpu),
            round(float(t.get("askVolume") or 0) * lpu),
        )
