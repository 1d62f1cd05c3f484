"""``mmbot record``: live market data (or the emulator's) -> the capture format.

Binance and Binance-compatible hosts (the emulator): ccxt.pro hands back merged
books, not raw frames, so the recorder opens the raw combined stream itself
(aiohttp) at ``<ws>/stream?streams=<s>@depth@100ms/<s>@trade/<s>@bookTicker/...``
and writes every frame as received: ``<local receive ts ns> <frame>``. After the
first depth diff of each symbol on a connection it fetches the REST snapshot
``GET <rest>/depth?symbol=S&limit=1000`` and writes it as its own line, exactly as
the bundled capture does (the diff straddling the snapshot comes before it; readers
buffer diffs, see mmbot.marketdata.book). With one symbol the snapshot line is the
bare REST body; with several it is wrapped as
``{"stream": "<s>@depthSnapshot", "data": {...}}`` so readers know its symbol.

A dropped or silent connection (no frame for ``exchange.watch_timeout_s``) is
re-opened with exponential backoff and jitter, and new snapshots are written: a
reader sees the gap and resyncs from the next snapshot, as it would live.

Other ccxt exchanges: a normalised format is written instead (the ccxt feed's
events as JSON: ``{"stream": "<symbol>@mmbotBook", "data": {"s", "lastUpdateId",
"bids", "asks"}}`` for a full book, ``<symbol>@mmbotBookDelta`` (``"U"`` and
``"lastUpdateId"``, the changed levels, quantity 0 = gone) after it, and
``{"stream": "<symbol>@mmbotTrade", "data": {"s", "t", "p", "q", "m", "T"}}`` per
trade), documented in docs/emulator.md; the replay reader
(:class:`mmbot.marketdata.capture.CaptureParser`) reads it like the Binance lines.

Endpoints come from the same construction as the live feed (sandbox, then
``exchange.base_url``, then ``exchange.urls``), so ``--base-url`` of the emulator
records the emulator.

Metadata: next to the capture, ``<capture>.meta.json`` (mmbot.marketdata.capture.
metadata_path) records the exchange, the venue kind, the symbols and each one's
instrument rules (tick, step, min notional) from ccxt's ``load_markets``; a replay of
the capture takes its rules from there before the config's (docs/market-data.md).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog

from mmbot.adapters.ccxt.exchange import ExchangeParams, build_exchange, close_exchange, load_instruments
from mmbot.domain.events import BookDelta, BookSnapshot, Trade
from mmbot.errors import ConfigError, VenueError
from mmbot.marketdata.capture import CaptureWriter, write_metadata
from mmbot.marketdata.feeds.live import backoff_s

log = structlog.get_logger("mmbot.record")

MAX_FAILED_CONNECTS = 6  # before the first successful connection: give up with an error


@dataclass
class RecordStats:
    lines: int = 0
    frames: int = 0
    snapshots: int = 0
    connections: int = 0
    reconnects: int = 0


async def binance_endpoints(params: ExchangeParams) -> tuple[str, str]:
    """(REST base ending in /api/v3, combined-stream url ending in /stream)."""
    ex = build_exchange(params)
    try:
        api = ex.urls["api"]
        rest = str(api["public"]).rstrip("/")
        ws = str(api["ws"]["spot"]).rstrip("/")
    finally:
        await close_exchange(ex)
    if ws.endswith("/ws"):
        ws = ws[: -len("/ws")]
    return rest, ws + "/stream"


class BinanceRecorder:
    def __init__(self, params: ExchangeParams, symbols: Sequence[str], writer: CaptureWriter, *,
                 watch_timeout_s: float, reconnect_initial_s: float = 0.2, reconnect_max_s: float = 10.0) -> None:
        self.params = params
        self.venue = {s: s.replace("/", "").upper() for s in symbols}
        self.writer = writer
        self.watch_timeout_s = watch_timeout_s
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.stats = RecordStats()
        self.rng = random.Random()

    def stream_names(self) -> list[str]:
        names: list[str] = []
        for v in self.venue.values():
            low = v.lower()
            names.extend((f"{low}@depth@100ms", f"{low}@trade", f"{low}@bookTicker"))
        return names

    def _write(self, ts: int, body: bytes) -> None:
        self.writer.write(ts, body)
        self.stats.lines += 1

    async def _snapshot(self, session: aiohttp.ClientSession, rest: str, venue: str) -> None:
        async with asyncio.timeout(self.params.timeout_s):
            async with session.get(f"{rest}/depth", params={"symbol": venue, "limit": "1000"}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise VenueError(f"depth snapshot for {venue}: HTTP {resp.status}: {body[:200]!r}")
        ts = time.time_ns()
        if len(self.venue) > 1:
            body = b'{"stream":"%s@depthSnapshot","data":%s}' % (venue.lower().encode(), body)
        self._write(ts, body)
        self.stats.snapshots += 1

    async def run(self) -> None:
        rest, stream_url = await binance_endpoints(self.params)
        url = f"{stream_url}?streams={'/'.join(self.stream_names())}"
        failures = 0
        timeout = aiohttp.ClientTimeout(total=None, connect=self.params.timeout_s, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    await self._connection(session, rest, url)
                    failures = 0
                except (aiohttp.ClientError, OSError, TimeoutError, VenueError) as exc:
                    failures += 1
                    if self.stats.connections == 0 and failures >= MAX_FAILED_CONNECTS:
                        raise VenueError(f"cannot record from {stream_url}: {type(exc).__name__}: {exc}") from exc
                    log.warning("record_connection_failed", error=f"{type(exc).__name__}: {exc}", failures=failures)
                self.stats.reconnects += 1
                await asyncio.sleep(backoff_s(max(failures, 1), self.reconnect_initial_s, self.reconnect_max_s, self.rng))

    async def _connection(self, session: aiohttp.ClientSession, rest: str, url: str) -> None:
        async with asyncio.timeout(self.params.timeout_s):
            ws = await session.ws_connect(url, heartbeat=max(self.watch_timeout_s / 2, 1.0), max_msg_size=1 << 24)
        self.stats.connections += 1
        log.info("record_connected", url=url.split("?", 1)[0], streams=len(self.stream_names()))
        pending = set(self.venue.values())  # symbols still needing a snapshot on this connection
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    try:
                        async with asyncio.timeout(self.watch_timeout_s):
                            msg = await ws.receive()
                    except TimeoutError:
                        log.warning("record_stream_timed_out", timeout_s=self.watch_timeout_s, action="reconnecting")
                        return
                    ts = time.time_ns()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        log.warning("record_stream_closed", type=str(msg.type), code=ws.close_code)
                        return
                    body = msg.data.encode() if isinstance(msg.data, str) else bytes(msg.data)
                    if not body.startswith(b'{"stream"'):
                        continue  # acks, errors and garbage are not market data
                    self._write(ts, body)
                    self.stats.frames += 1
                    if pending and b"depthUpdate" in body:
                        try:
                            venue = str(orjson.loads(body)["data"]["s"])
                        except (orjson.JSONDecodeError, KeyError, TypeError):
                            continue
                        if venue in pending:
                            pending.discard(venue)
                            tg.create_task(self._snapshot(session, rest, venue))
        finally:
            async with asyncio.timeout(self.params.timeout_s):
                await ws.close()


class NormalisedRecorder:
    """Any ccxt exchange: the live feed's merged books and trades as JSON lines."""

    def __init__(self, params: ExchangeParams, symbols: Sequence[str], writer: CaptureWriter, *, watch_timeout_s: float) -> None:
        from mmbot.marketdata.feeds.live import FeedConfig, LiveFeed  # ccxt: only when a recorder is built

        self.writer = writer
        self.stats = RecordStats()
        self.feed = LiveFeed(params, symbols, FeedConfig(watch_timeout_s=watch_timeout_s, bids_asks=False), self.on_item)

    async def on_item(self, item: Any) -> None:
        symbol = getattr(item, "symbol", "")
        if isinstance(item, (BookSnapshot, BookDelta)):
            slot = self.feed.instruments[symbol]
            kind = "mmbotBook" if isinstance(item, BookSnapshot) else "mmbotBookDelta"
            data: dict[str, Any] = {
                "s": slot.venue_symbol,
                **({"U": item.first_update_id} if isinstance(item, BookDelta) else {}),
                "lastUpdateId": item.last_update_id,
                # format(..., "f"): a removed level is "0.00000000", never Decimal's "0E-8".
                "bids": [[format(slot.price(p), "f"), format(slot.qty(q), "f")] for p, q in item.bids],
                "asks": [[format(slot.price(p), "f"), format(slot.qty(q), "f")] for p, q in item.asks],
            }
        elif isinstance(item, Trade):
            slot = self.feed.instruments[symbol]
            kind = "mmbotTrade"
            data = {"s": slot.venue_symbol, "t": item.trade_id, "p": format(slot.price(item.price_ticks), "f"),
                    "q": format(slot.qty(item.qty_lots), "f"), "m": item.is_buyer_maker, "T": item.ts_event_ns // 1_000_000}
        else:
            return
        self.writer.write(time.time_ns(), {"stream": f"{symbol}@{kind}", "data": data})
        self.stats.lines += 1

    async def run(self) -> None:
        try:
            await self.feed.run()
        finally:
            await self.feed.close()


async def record_capture(
    params: ExchangeParams,
    symbols: Sequence[str],
    out_path: str,
    *,
    watch_timeout_s: float = 10.0,
    reconnect_initial_s: float = 0.2,
    reconnect_max_s: float = 10.0,
    normalised: bool | None = None,
) -> RecordStats:
    """Record until cancelled; the file is closed (a valid gzip) whatever happens.

    ``normalised``: None = raw streams for Binance ids, the normalised format otherwise.
    """
    await write_capture_metadata(params, symbols, out_path, timeout_s=watch_timeout_s)
    writer = CaptureWriter(out_path)
    recorder: BinanceRecorder | NormalisedRecorder
    if normalised is None:
        normalised = not params.id.startswith("binance")
    if not normalised:
        recorder = BinanceRecorder(params, symbols, writer, watch_timeout_s=watch_timeout_s,
                                   reconnect_initial_s=reconnect_initial_s, reconnect_max_s=reconnect_max_s)
    else:
        recorder = NormalisedRecorder(params, symbols, writer, watch_timeout_s=watch_timeout_s)
    try:
        await recorder.run()
    finally:
        writer.close()
        log.info("record_stopped", path=out_path, lines=recorder.stats.lines)
    return recorder.stats


async def write_capture_metadata(params: ExchangeParams, symbols: Sequence[str], out_path: str, *, timeout_s: float) -> None:
    """``<capture>.meta.json``: exchange, venue kind, symbols and their rules from the markets."""
    instruments: dict[str, dict[str, str]] = {}
    try:
        for symbol, inst in (await load_instruments(params, symbols, timeout_s=timeout_s)).items():
            instruments[symbol] = {
                "venue_symbol": inst.venue_symbol, "tick_size": str(inst.tick_size),
                "step_size": str(inst.step_size), "min_notional": str(inst.min_notional),
            }
    except (ConfigError, VenueError) as exc:
        # The capture is still worth having: replays then take the rules from the config.
        log.warning("record_metadata_incomplete", error=str(exc)[:200])
    write_metadata(out_path, {
        "written_by": "mmbot record", "version": 1, "exchange": params.id, "kind": "spot",
        "symbols": list(symbols), "instruments": instruments,
    })
