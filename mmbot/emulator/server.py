"""Binance-spot-protocol emulator: an aiohttp server on 127.0.0.1.

Serves what unmodified ccxt (4.5.90) needs for Binance spot (see
docs/emulator.md and ../shared/docs/REAL-COMPONENTS-ccxt.md):

* REST ``/api/v3``: ``exchangeInfo``, ``time``, ``ping``, ``depth``, ``ticker/24hr``,
  signed ``account``, ``order`` (GET/POST/DELETE), ``openOrders`` (GET/DELETE),
  ``myTrades``. Signed calls carry ``X-MBX-APIKEY`` and an HMAC-SHA256 hex
  ``signature`` over the exact raw query (GET/DELETE) or body (POST) before
  ``&signature=``; ``timestamp`` must lie in ``[server - recvWindow, server + 1000 ms]``.
* Market-data websockets ``/ws/<anything>`` (ccxt: one socket per subscription,
  ``SUBSCRIBE`` acked with ``{"result": null, "id": id}``, bare events) and
  ``/stream?streams=a/b`` (combined ``{"stream", "data"}`` envelopes).
  Streams: ``<sym>@depth[@100ms|@1000ms]``, ``<sym>@trade``, ``<sym>@bookTicker``,
  ``<sym>@miniTicker`` (every second).
* ws-api ``/ws-api/v3``: ``userDataStream.subscribe.signature``, ``order.place``,
  ``order.cancel``, ``order.status``, ``openOrders.status``, ``openOrders.cancelAll``,
  ``account.status``, ``time``, ``ping``; params signed sorted by key.
  User data is pushed as ``{"subscriptionId": 0, "event": executionReport |
  outboundAccountPosition}``.
* Admin (loopback only): ``POST /admin/fault`` ``{"kind", "duration_s", "delay_ms"}``
  (``kind=none`` or ``DELETE /admin/fault`` clears every fault), ``POST /admin/pause``,
  ``POST /admin/resume``, ``GET /admin/state``.

Inputs are validated so that no request can wedge the emulator or crash a handler:

* admin fault parameters (query string or JSON body) must be finite and bounded
  (``0 < duration_s <= 3600``, ``0 <= delay_ms <= 60000``, ``|skew_ms| <= 3600000``;
  see :mod:`mmbot.emulator.faults`); a bad one answers 400
  ``{"error", "param", "value"}`` (plus ``"allowed"`` for an unknown ``kind``) and
  activates nothing. ``--faults``, ``--slow-ms``, ``--skew-ms`` and ``speed`` are
  checked the same way at start.
* integer REST / ws-api parameters follow Binance's ``^[0-9]{1,20}$`` through
  :func:`~mmbot.emulator.account.int_param`: ``-1100`` for anything else, ``-1102``
  for empty text and for ``limit=0`` (our choice: below the minimum of 1 counts as
  malformed); ``depth`` ``limit`` above 5000 (any number of digits) is capped at 5000,
  as Binance's spot docs say. ws-api ``params`` must be an object (``-1102``).

The capture replays at ``speed`` x real time and loops for ever; orders go through
:class:`~mmbot.emulator.account.Account` and the per-symbol SimVenue.

Venue settings (``mmbot emulate --config``: the ``sim`` and ``fees`` sections): the
fill model and ``prob_power`` go to every SimVenue; latency is applied in wall time,
each stream drawn from :class:`~mmbot.sim.latency.LatencySampler` (``base +
X`` ms, ``X`` constant, uniform or lognormal with median ``latency_jitter_ms``; seeded
by ``sim.seed``):

* ``entry_latency_ms``: an order (REST ``POST /order``, ws-api ``order.place``) reaches
  the matching engine this long after the request arrived; the answer follows it, so
  ``transactTime`` is the arrival time;
* ``cancel_latency_ms``: the same for cancels (``DELETE /order``, ``order.cancel``,
  cancel-all);
* ``md_latency_ms``: every market-data frame leaves this long after the matching
  engine saw the event (``E``/``T`` are the engine's times), in order: ``due =
  max(now + latency, previous due)``.

A test bed for ``mmbot calibrate``: the daemon does not know these settings.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import ipaddress
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from aiohttp import WSMsgType, web

from mmbot.domain.instrument import Instrument
from mmbot.emulator.account import Account, ApiError, int_param
from mmbot.emulator.faults import (
    MAX_DELAY_MS,
    MAX_SKEW_MS,
    FaultInputError,
    FaultSpec,
    FaultState,
    admin_fault_spec,
    allowed_admin_kinds,
    check_range,
)
from mmbot.emulator.market import Frame, SymbolMarket
from mmbot.emulator.tape import DEPTH, Tape, load_tapes_cached
from mmbot.errors import ConfigError
from mmbot.sim.latency import LatencyModel, LatencySampler
from mmbot.sim.venue import FillModel, VenueConfig

log = structlog.get_logger("mmbot.emulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_API_KEY = "mmbot-emulator-key"
DEFAULT_SECRET = "mmbot-emulator-secret"
SEND_TIMEOUT_S = 10.0
MAX_QUEUE = 20_000  # frames per connection; a slower consumer is disconnected (as Binance does)

MSG_BAD_SIGNATURE = "Signature for this request is not valid."
MSG_BAD_KEY = "Invalid API-key, IP, or permissions for action."
MSG_KEY_FORMAT = "API-key format invalid."
MSG_TS_WINDOW = "Timestamp for this request is outside of the recvWindow."
MSG_TS_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_429 = "Too many requests; current limit is 6000 request weight per 1 MINUTE. Please use the websocket for live updates to avoid polling the API."
MSG_418 = "Way too many requests; IP banned until {until}. Please use the websocket for live updates to avoid bans."
MSG_5XX = "Internal error; unable to process your request. Please try again."


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    paths: tuple[str, ...]
    symbols: tuple[str, ...] = ("BTC/USDT",)
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal("5")
    speed: float = 1.0
    api_key: str = DEFAULT_API_KEY
    secret: str = DEFAULT_SECRET
    fill_model: str = "risk_averse"
    maker_fee_bps: Decimal = Decimal(0)
    taker_fee_bps: Decimal = Decimal(0)
    balances: tuple[tuple[str, Decimal], ...] = ()  # empty: 10 of each base, 1,000,000 of each quote
    faults: tuple[FaultSpec, ...] = ()
    slow_ms: float = 3000.0
    skew_ms: float = 15000.0
    prob_power: float = 2.0
    entry_latency_ms: float = 0.0
    cancel_latency_ms: float = 0.0
    md_latency_ms: float = 0.0
    latency_model: str = "constant"
    latency_jitter_ms: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed) and self.speed > 0):  # nan passes "<= 0"
            raise ValueError(f"speed must be a finite number > 0, was {self.speed}")
        check_range("slow_ms", self.slow_ms, 0.0, MAX_DELAY_MS)
        check_range("skew_ms", self.skew_ms, -MAX_SKEW_MS, MAX_SKEW_MS)
        if not self.symbols:
            raise ValueError("symbols must list at least one symbol")
        for name in ("entry_latency_ms", "cancel_latency_ms", "md_latency_ms", "latency_jitter_ms"):
            check_range(name, getattr(self, name), 0.0, MAX_DELAY_MS)
        if not (math.isfinite(self.prob_power) and self.prob_power > 0):
            raise ValueError(f"prob_power must be a finite number > 0, was {self.prob_power}")
        if self.latency_model not in {m.value for m in LatencyModel}:
            raise ValueError(f"latency_model must be one of constant, uniform, lognormal, was {self.latency_model!r}")


@dataclass(eq=False)
class _Conn:
    """One websocket with a bounded outgoing queue drained by its own writer."""

    ws: web.WebSocketResponse
    kind: str  # "md" | "api"
    combined: bool = False
    subs: dict[str, str] = field(default_factory=dict)  # stream key -> name as subscribed
    user_data: bool = False
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUE))

    def send(self, text: str | None) -> bool:
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            return False

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if text is None or self.ws.closed:
                return
            try:
                # A client that stops reading blocks only its own writer, and not for ever.
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError, TimeoutError):
                return


def stream_key(name: str) -> str:
    """``btcusdt@depth@100ms`` and ``btcusdt@depth`` are the same feed here."""
    name = name.strip()
    lower = name.lower()
    symbol, _, rest = lower.partition("@")
    kind = rest.split("@", 1)[0]
    if kind == "bookticker":
        kind = "bookTicker"
    elif kind == "miniticker":
        kind = "miniTicker"
    elif kind.startswith("depth"):
        kind = "depth"  # depth5/10/20 partial streams are not served; plain diffs are
    return f"{symbol}@{kind}"


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _ws_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        base = config.symbols[0]
        self.instrument_template = Instrument.from_symbol(
            base, tick_size=config.tick_size, step_size=config.step_size, min_notional=config.min_notional
        )
        tapes = load_tapes_cached(config.paths, self.instrument_template)
        first = next(iter(tapes.values()))
        # Latency is the server's (wall time, below): the matching engine itself gets none.
        venue_cfg = VenueConfig(
            fill_model=FillModel(config.fill_model), prob_power=config.prob_power, maker_fee_bps=config.maker_fee_bps,
            taker_fee_bps=config.taker_fee_bps, seed=config.seed,
        )
        model = LatencyModel(config.latency_model)
        jitter = config.latency_jitter_ms
        self.entry_latency = LatencySampler(config.entry_latency_ms, model, jitter, seed=config.seed, stream="entry")
        self.cancel_latency = LatencySampler(config.cancel_latency_ms, model, jitter, seed=config.seed, stream="cancel")
        self.md_latency = LatencySampler(config.md_latency_ms, model, jitter, seed=config.seed, stream="md")
        self._md_delayed: collections.deque[tuple[float, SymbolMarket, list[Frame]]] = collections.deque()
        self._md_last_due = 0.0
        self._md_ready = asyncio.Event()
        self.markets: dict[str, SymbolMarket] = {}
        self.renamed: dict[str, str] = {}
        for symbol in config.symbols:
            inst = Instrument.from_symbol(
                symbol, tick_size=config.tick_size, step_size=config.step_size, min_notional=config.min_notional
            )
            tape: Tape = tapes.get(inst.venue_symbol) or first
            if tape.venue_symbol != inst.venue_symbol:
                self.renamed[inst.venue_symbol] = tape.venue_symbol
            self.markets[inst.venue_symbol] = SymbolMarket(inst, tape, venue_cfg)
        balances = dict(config.balances)
        if not balances:
            for m in self.markets.values():
                balances.setdefault(m.instrument.base, Decimal(10))
                balances.setdefault(m.instrument.quote_ccy, Decimal(1_000_000))
        self.account = Account(self.markets, balances)
        self.account.listeners.append(self._push_user_event)
        self.faults = FaultState(slow_ms=config.slow_ms, skew_ms=config.skew_ms)
        self.conns: set[_Conn] = set()
        self.paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.started_mono = time.monotonic()
        self.frames_sent = 0
        self.connections_total = 0
        self.dropped_slow = 0
        self.replay_error: BaseException | None = None
        self._schedule: list[FaultSpec] = sorted(config.faults, key=lambda f: f.at_s)
        self._gap_symbols: set[str] = set()  # symbols whose next depth update is skipped

    # --- clocks ---------------------------------------------------------------------------
    def mono(self) -> float:
        return time.monotonic()

    def skew_ms(self) -> int:
        return int(self.faults.skew_ms) if self.faults.is_active("skew", self.mono()) else 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.skew_ms()

    def now_ns(self) -> int:
        """The matching engine's clock: never skewed.

        The skew fault shifts what the server reports and checks (``serverTime``,
        ``recvWindow``), standing in for a client clock that is off. Feeding the
        shifted time to the SimVenue would queue every later command behind one sent
        15 s "in the future" (commands are FIFO), so orders placed after the fault
        would become live only later, after their cancels had been answered.
        """
        return time.time_ns()

    # --- faults ---------------------------------------------------------------------------
    async def inject(self, spec: FaultSpec) -> None:
        now = self.mono()
        self.faults.activate(spec, now)
        log.warning("emulator_fault_injected", kind=spec.kind, duration_s=spec.duration_s)
        if spec.kind == "gap":
            self._gap_symbols = set(self.markets)
        elif spec.kind in ("garbage", "malformed"):
            text = "this is not json" if spec.kind == "garbage" else "{this is not json"
            for conn in list(self.conns):
                if conn.kind == "md":
                    conn.send(text)
        elif spec.kind == "drop":
            await asyncio.gather(*(self._close(c, 1001, b"emulator fault: drop") for c in list(self.conns)))
        self.account.reject_orders = self.faults.is_active("reject", now)

    def clear_faults(self) -> list[str]:
        """End every fault now and undo what they set. -> the timed kinds that were active."""
        cleared = sorted(self.faults.active(self.mono()))
        self.faults.clear()
        self._gap_symbols.clear()
        # The replay loop refreshes this flag too, but an order sent before its next
        # pass must not be rejected by a fault already cleared.
        self.account.reject_orders = False
        log.warning("emulator_faults_cleared", cleared=cleared)
        return cleared

    async def _close(self, conn: _Conn, code: int, message: bytes) -> None:
        self.conns.discard(conn)
        conn.send(None)
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            async with asyncio.timeout(2.0):
                await conn.ws.close(code=code, message=message)

    async def fault_scheduler(self) -> None:
        for spec in self._schedule:
            delay = self.started_mono + spec.at_s - self.mono()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.inject(spec)

    # --- replay ---------------------------------------------------------------------------
    async def replay(self) -> None:
        """Replay every symbol's tape at ``speed`` x real time, looping for ever."""
        merged: list[tuple[int, int, SymbolMarket, Any]] = []
        for idx, m in enumerate(self.markets.values()):
            merged.extend((e.ts_ns, idx, m, e) for e in m.tape.entries)
        merged.sort(key=lambda x: (x[0], x[1]))
        t0 = merged[0][0]
        span_ns = merged[-1][0] - t0 + 1_000_000
        speed = self.config.speed
        wall0 = self.mono()
        passes = 0
        i = 0
        next_mini = wall0 + 1.0
        try:
            while True:
                if self.paused:
                    paused_at = self.mono()
                    await self._resumed.wait()
                    wall0 += self.mono() - paused_at
                    next_mini = self.mono() + 1.0
                now = self.mono()
                if now >= next_mini:
                    next_mini = now + 1.0
                    self._mini_tickers()
                self.account.reject_orders = self.faults.is_active("reject", now)
                frozen = self.faults.is_active("freeze", now)
                capture_now = t0 + int((now - wall0) * speed * 1e9) - passes * span_ns
                processed = 0
                while i < len(merged) and merged[i][0] <= capture_now and processed < 2000:
                    _, _, m, entry = merged[i]
                    i += 1
                    processed += 1
                    self._step(m, entry, frozen)
                if i >= len(merged):
                    now_ns = self.now_ns()
                    for m in self.markets.values():
                        frames, reports = m.seam(now_ns)
                        self.account.on_reports(m, reports, self.now_ms())
                        if not self.faults.is_active("freeze", self.mono()):
                            self._send_market(m, frames)
                    passes += 1
                    i = 0
                    log.info("emulator_looped", passes=passes)
                    continue
                if processed < 2000:
                    due = wall0 + (merged[i][0] - t0 + passes * span_ns) / 1e9 / speed
                    await asyncio.sleep(min(max(due - self.mono(), 0.0), 0.05, max(next_mini - self.mono(), 0.0)))
                else:
                    await asyncio.sleep(0)
        except Exception as exc:  # our bug: make it visible in /admin/state and the log, then stop
            self.replay_error = exc
            log.exception("emulator_replay_failed")
            raise

    def _step(self, m: SymbolMarket, entry: Any, frozen: bool) -> None:
        skip = False
        if entry.kind == DEPTH and m.venue_symbol in self._gap_symbols:
            self._gap_symbols.discard(m.venue_symbol)
            skip = True
        now_ns = self.now_ns()
        frames, reports = m.step(entry, now_ns, skip)
        if reports:
            self.account.on_reports(m, reports, self.now_ms())
        if frames and not frozen:
            self._send_market(m, frames)

    def _send_market(self, m: SymbolMarket, frames: list[Frame]) -> None:
        """Now, or after the market-data latency (in order)."""
        if self.md_latency.is_zero:
            self._broadcast(m, frames)
            return
        due = max(self.mono() + self.md_latency.sample_ns() / 1e9, self._md_last_due)
        self._md_last_due = due
        self._md_delayed.append((due, m, frames))
        self._md_ready.set()

    async def md_pump(self) -> None:
        """Sends the delayed market-data frames when they fall due."""
        queue = self._md_delayed
        while True:
            if not queue:
                self._md_ready.clear()
                await self._md_ready.wait()
                continue
            due, m, frames = queue[0]
            delay = due - self.mono()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            queue.popleft()
            self._broadcast(m, frames)

    async def entry_delay(self) -> None:
        """An order's trip to the matching engine (``entry_latency_ms``, wall time)."""
        if not self.entry_latency.is_zero:
            await asyncio.sleep(self.entry_latency.sample_ns() / 1e9)

    async def cancel_delay(self) -> None:
        if not self.cancel_latency.is_zero:
            await asyncio.sleep(self.cancel_latency.sample_ns() / 1e9)

    def _broadcast(self, m: SymbolMarket, frames: list[Frame]) -> None:
        for key, payload in frames:
            bare: str | None = None
            for conn in list(self.conns):
                name = conn.subs.get(key)
                if name is None:
                    continue
                if conn.combined:
                    text = orjson.dumps({"stream": name, "data": payload}).decode()
                else:
                    bare = bare or orjson.dumps(payload).decode()
                    text = bare
                if conn.send(text):
                    self.frames_sent += 1
                else:
                    self.dropped_slow += 1
                    self.conns.discard(conn)
                    with contextlib.suppress(Exception):
                        conn.queue.get_nowait()
                    conn.queue.put_nowait(None)

    def _mini_tickers(self) -> None:
        if self.faults.is_active("freeze", self.mono()):
            return
        now_ms = self.now_ms()
        for m in self.markets.values():
            self._broadcast(m, [(f"{m.stream_prefix}@miniTicker", m.mini_ticker(now_ms))])

    def _push_user_event(self, event: dict[str, Any]) -> None:
        for conn in list(self.conns):
            if conn.kind == "api" and conn.user_data:
                conn.send(orjson.dumps({"subscriptionId": 0, "event": event}).decode())

    # --- auth -----------------------------------------------------------------------------
    def _check_key(self, api_key: str | None) -> None:
        if not api_key:
            raise ApiError(401, -2014, MSG_KEY_FORMAT)
        if not hmac.compare_digest(api_key, self.config.api_key):
            raise ApiError(401, -2015, MSG_BAD_KEY)

    def _check_signature(self, payload: str, signature: str | None) -> None:
        expected = hmac.new(self.config.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(400, -1022, MSG_BAD_SIGNATURE)

    def _check_timestamp(self, params: dict[str, Any]) -> None:
        ts = int_param(params, "timestamp")
        if ts is None:
            raise ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        window = int_param(params, "recvWindow", 5000) or 0
        if window > 60000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        server = self.now_ms()
        if ts > server + 1000:
            raise ApiError(400, -1021, MSG_TS_AHEAD)
        if server - ts > window:
            raise ApiError(400, -1021, MSG_TS_WINDOW)

    async def signed_rest_params(self, request: web.Request) -> dict[str, Any]:
        self._check_key(request.headers.get("X-MBX-APIKEY"))
        raw_query = request.raw_path.partition("?")[2]
        raw = (await request.text()) if request.method == "POST" else raw_query
        if request.method == "POST" and raw_query:
            raw = raw_query + ("&" + raw if raw else "")
        payload, sep, tail = raw.partition("signature=")
        signature = tail.split("&", 1)[0] if sep else None
        self._check_signature(payload[:-1] if payload.endswith("&") else payload, signature)
        params = dict(parse_qsl(raw, keep_blank_values=True))
        params.pop("signature", None)
        self._check_timestamp(params)
        return params

    # --- REST -----------------------------------------------------------------------------
    @web.middleware
    async def rest_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        now = self.mono()
        error = self._http_fault(now)
        if error is not None:
            return web.json_response(error.body(), status=error.status)
        try:
            response = await handler(request)
        except ApiError as err:
            response = web.json_response(err.body(), status=err.status)
        if self.faults.is_active("slow", now):
            # The request is carried out, only the answer is late: a client that gives
            # up has an order it does not know about (the case to look up by client id).
            await asyncio.sleep(self.faults.slow_ms / 1000.0)
        return response

    def _http_fault(self, now: float) -> ApiError | None:
        if self.faults.is_active("http418", now):
            until = self.now_ms() + int(self.faults.until.get("http418", now) - now) * 1000
            return ApiError(418, -1003, MSG_418.format(until=until))
        if self.faults.is_active("http429", now):
            return ApiError(429, -1003, MSG_429)
        if self.faults.is_active("http5xx", now):
            return ApiError(503, -1001, MSG_5XX)
        return None

    async def h_exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.now_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                ],
                "exchangeFilters": [],
                "symbols": [m.exchange_info_entry() for m in self.markets.values()],
            },
            dumps=_dumps,
        )

    async def h_time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now_ms()})

    async def h_ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def h_depth(self, request: web.Request) -> web.Response:
        m = self.account.market(request.query.get("symbol"))
        limit = int_param(request.query, "limit", 100, minimum=1, cap=5000) or 100
        return web.json_response(m.depth(limit), dumps=_dumps)

    async def h_ticker(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        if symbol:
            return web.json_response(self.account.market(symbol).ticker_24h(self.now_ms()), dumps=_dumps)
        return web.json_response([m.ticker_24h(self.now_ms()) for m in self.markets.values()], dumps=_dumps)

    async def h_account(self, request: web.Request) -> web.Response:
        await self.signed_rest_params(request)
        return web.json_response(self.account.account_body(self.now_ms()), dumps=_dumps)

    async def h_order(self, request: web.Request) -> web.Response:
        params = await self.signed_rest_params(request)
        acc = self.account
        if request.method == "POST":
            await self.entry_delay()
            body: Any = acc.place(params, self.now_ms(), self.now_ns())
        elif request.method == "DELETE":
            await self.cancel_delay()
            body = acc.cancel(params, self.now_ms(), self.now_ns())
        else:
            body = acc.get_order(params)
        return web.json_response(body, dumps=_dumps)

    async def h_open_orders(self, request: web.Request) -> web.Response:
        params = await self.signed_rest_params(request)
        if request.method == "DELETE":
            await self.cancel_delay()
            return web.json_response(self.account.cancel_all(params, self.now_ms(), self.now_ns()), dumps=_dumps)
        return web.json_response(self.account.open_orders(params), dumps=_dumps)

    async def h_my_trades(self, request: web.Request) -> web.Response:
        params = await self.signed_rest_params(request)
        return web.json_response(self.account.my_trades(params), dumps=_dumps)

    async def h_not_found(self, request: web.Request) -> web.Response:
        log.warning("emulator_unknown_path_requested", method=request.method, path=request.path)
        return web.Response(status=404, text="Not Found")

    # --- market-data websockets -------------------------------------------------------------
    async def h_ws_market(self, request: web.Request) -> web.WebSocketResponse:
        combined = request.path.startswith("/stream")
        ws = web.WebSocketResponse(autoping=True, timeout=2.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = _Conn(ws=ws, kind="md", combined=combined)
        names: list[str] = []
        if combined:
            names = [n for n in request.query.get("streams", "").split("/") if n]
        else:
            tail = request.match_info.get("tail", "")
            names = [n for n in tail.split("/") if "@" in n]
        for name in names:
            conn.subs[stream_key(name)] = name
        await self._serve(conn, self._md_message)
        return ws

    def _md_message(self, conn: _Conn, data: Any) -> None:
        if not isinstance(data, dict):
            conn.send(orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON: expected an object"}}).decode())
            return
        method = data.get("method")
        req_id = data.get("id")
        params = data.get("params") or []
        if not isinstance(params, list):  # iterated below; a number would end the connection
            conn.send(orjson.dumps({"error": {"code": 2, "msg": "Invalid request: params must be an array"}, "id": req_id}).decode())
            return
        if method == "SUBSCRIBE":
            for name in params:
                conn.subs[stream_key(str(name))] = str(name)
            conn.send(orjson.dumps({"result": None, "id": req_id}).decode())
        elif method == "UNSUBSCRIBE":
            for name in params:
                conn.subs.pop(stream_key(str(name)), None)
            conn.send(orjson.dumps({"result": None, "id": req_id}).decode())
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send(orjson.dumps({"result": list(conn.subs.values()), "id": req_id}).decode())
        else:
            conn.send(orjson.dumps({"error": {"code": 1, "msg": f"Unknown method {method!r}"}, "id": req_id}).decode())

    async def _serve(self, conn: _Conn, on_message: Any) -> None:
        self.conns.add(conn)
        self.connections_total += 1
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(conn.writer())
                try:
                    async for msg in conn.ws:
                        if msg.type != WSMsgType.TEXT:
                            continue
                        try:
                            data = orjson.loads(msg.data)
                        except orjson.JSONDecodeError:
                            conn.send(orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}).decode())
                            continue
                        result = on_message(conn, data)
                        if asyncio.iscoroutine(result):
                            await result
                finally:
                    conn.send(None)  # stops the writer
        finally:
            self.conns.discard(conn)

    # --- ws-api -----------------------------------------------------------------------------
    async def h_ws_api(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=2.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        await self._serve(_Conn(ws=ws, kind="api"), self._api_message)
        return ws

    async def _api_message(self, conn: _Conn, data: Any) -> None:
        req_id = data.get("id") if isinstance(data, dict) else None
        try:
            if not isinstance(data, dict):
                raise ApiError(400, -1102, "Request must be a JSON object.")
            params = data.get("params") or {}
            if not isinstance(params, dict):  # every handler reads it with .get()
                raise ApiError(400, -1102, "Mandatory parameter 'params' was not sent, was empty/null, or malformed.")
            result = await self._api_call(conn, str(data.get("method", "")), params)
            reply: dict[str, Any] = {"id": req_id, "status": 200, "result": result}
        except ApiError as err:
            reply = {"id": req_id, "status": err.status, "error": err.body()}
        conn.send(_dumps(reply))

    def _ws_signed(self, params: dict[str, Any]) -> None:
        self._check_key(params.get("apiKey"))
        payload = "&".join(f"{k}={_ws_value(params[k])}" for k in sorted(params) if k != "signature")
        self._check_signature(payload, params.get("signature"))
        self._check_timestamp(params)

    async def _api_call(self, conn: _Conn, method: str, params: dict[str, Any]) -> Any:
        error = self._http_fault(self.mono())
        if error is not None:
            raise error
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.now_ms()}
        acc = self.account
        signed = {
            "userDataStream.subscribe.signature", "order.place", "order.cancel", "order.status",
            "openOrders.status", "openOrders.cancelAll", "account.status", "myTrades",
        }
        if method not in signed and method != "userDataStream.unsubscribe":
            raise ApiError(400, -1100, f"Unknown method '{method}'.")
        if method in signed:
            self._ws_signed(params)
        if method == "userDataStream.subscribe.signature":
            conn.user_data = True
            return {"subscriptionId": 0}
        if method == "userDataStream.unsubscribe":
            conn.user_data = False
            return {}
        if method == "order.place":
            await self.entry_delay()
            return acc.place(params, self.now_ms(), self.now_ns())
        if method == "order.cancel":
            await self.cancel_delay()
            return acc.cancel(params, self.now_ms(), self.now_ns())
        if method == "order.status":
            return acc.get_order(params)
        if method == "openOrders.status":
            return acc.open_orders(params)
        if method == "openOrders.cancelAll":
            await self.cancel_delay()
            return acc.cancel_all(params, self.now_ms(), self.now_ns())
        if method == "myTrades":
            return acc.my_trades(params)
        return acc.account_body(self.now_ms())

    # --- admin ------------------------------------------------------------------------------
    @web.middleware
    async def loopback_admin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/admin") and not _is_loopback(request.remote):
            return web.json_response({"error": "admin endpoint is loopback only"}, status=403)
        return await handler(request)

    async def h_admin_fault(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            try:
                data = await request.json(loads=orjson.loads)
            except (orjson.JSONDecodeError, ValueError):
                return web.json_response({"error": "body must be a JSON object"}, status=400)
            if isinstance(data, dict):
                body.update(data)
        try:
            spec = admin_fault_spec(body)
        except FaultInputError as exc:
            # Refused before anything is activated: a NaN or an endless duration used
            # to leave the emulator failing every request until it was restarted.
            error: dict[str, Any] = {"error": str(exc), "param": exc.param, "value": exc.value}
            if exc.param == "kind":
                error["allowed"] = allowed_admin_kinds()
            return web.json_response(error, status=400)
        if spec is None:  # kind=none
            return web.json_response({"cleared": self.clear_faults(), "active": self.faults.active(self.mono())})
        await self.inject(spec)
        return web.json_response({"injected": spec.kind, "active": self.faults.active(self.mono())})

    async def h_admin_fault_delete(self, request: web.Request) -> web.Response:
        return web.json_response({"cleared": self.clear_faults(), "active": self.faults.active(self.mono())})

    async def h_admin_pause(self, request: web.Request) -> web.Response:
        self.paused = True
        self._resumed.clear()
        return web.json_response(self.state())

    async def h_admin_resume(self, request: web.Request) -> web.Response:
        self.paused = False
        self._resumed.set()
        return web.json_response(self.state())

    async def h_admin_cancel_orders(self, request: web.Request) -> web.Response:
        """The venue cancels every open order on its own (maintenance, delisting): users learn it from the stream."""
        cancelled = self.account.venue_cancel_open(self.now_ms(), self.now_ns())
        return web.json_response({"cancelled": cancelled})

    async def h_admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    def state(self) -> dict[str, Any]:
        now = self.mono()
        return {
            "symbols": {
                s: {"lastUpdateId": m.last_update_id, "passes": m.passes, "skipped_updates": m.skipped_updates,
                    "renamed_from": self.renamed.get(s)}
                for s, m in self.markets.items()
            },
            "paused": self.paused,
            "faults_active": self.faults.active(now),
            "faults_injected": dict(self.faults.injected),
            "connections": {"market_data": sum(1 for c in self.conns if c.kind == "md"),
                            "ws_api": sum(1 for c in self.conns if c.kind == "api"),
                            "total_since_start": self.connections_total},
            "open_orders": sum(1 for r in self.account.orders.values() if r.is_open),
            "frames_sent": self.frames_sent,
            "replay_error": None if self.replay_error is None else repr(self.replay_error),
        }

    # --- app --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.loopback_admin, self.rest_faults])
        r = app.router
        r.add_get("/api/v3/exchangeInfo", self.h_exchange_info)
        r.add_get("/api/v3/time", self.h_time)
        r.add_get("/api/v3/ping", self.h_ping)
        r.add_get("/api/v3/depth", self.h_depth)
        r.add_get("/api/v3/ticker/24hr", self.h_ticker)
        r.add_get("/api/v3/account", self.h_account)
        for method in ("GET", "POST", "DELETE"):
            r.add_route(method, "/api/v3/order", self.h_order)
        for method in ("GET", "DELETE"):
            r.add_route(method, "/api/v3/openOrders", self.h_open_orders)
        r.add_get("/api/v3/myTrades", self.h_my_trades)
        r.add_get("/ws-api/v3", self.h_ws_api)
        r.add_get("/ws", self.h_ws_market)
        r.add_get("/ws/{tail:.*}", self.h_ws_market)
        r.add_get("/stream", self.h_ws_market)
        r.add_post("/admin/fault", self.h_admin_fault)
        r.add_delete("/admin/fault", self.h_admin_fault_delete)
        r.add_post("/admin/pause", self.h_admin_pause)
        r.add_post("/admin/resume", self.h_admin_resume)
        r.add_get("/admin/state", self.h_admin_state)
        r.add_post("/admin/cancel-orders", self.h_admin_cancel_orders)
        r.add_route("*", "/{tail:.*}", self.h_not_found)
        return app


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def env_credentials(api_key: str | None, secret: str | None) -> tuple[str, str]:
    """Flags first, then MMBOT_EXCHANGE__API_KEY / MMBOT_EXCHANGE__SECRET, then the documented test pair."""
    key = api_key or os.environ.get("MMBOT_EXCHANGE__API_KEY") or DEFAULT_API_KEY
    sec = secret or os.environ.get("MMBOT_EXCHANGE__SECRET") or DEFAULT_SECRET
    return key, sec


@dataclass
class RunningEmulator:
    emulator: Emulator
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def run_emulator(
    paths: Sequence[str],
    *,
    port: int = 0,
    symbols: Sequence[str] = ("BTC/USDT",),
    speed: float = 1.0,
    faults: Sequence[FaultSpec] = (),
    api_key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_SECRET,
    host: str = "127.0.0.1",
    **options: Any,
) -> AsyncIterator[RunningEmulator]:
    """Run the emulator in-process on 127.0.0.1 (``port=0``: a free port).

    ``async with run_emulator(paths) as emu: ... emu.base_url ...`` — the replay and
    fault tasks stop and every socket closes when the block exits.
    """
    try:
        config = EmulatorConfig(
            paths=tuple(str(p) for p in paths), symbols=tuple(symbols), speed=speed, faults=tuple(faults),
            api_key=api_key, secret=secret, **options,
        )
        emulator = Emulator(config)  # builds the instrument from the same options
    except ValueError as exc:
        raise ConfigError(f"emulator: {exc}") from exc
    runner = web.AppRunner(emulator.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    # 127.0.0.1 unless the operator opts in (docker-compose's offline profile serves the
    # compose network); /admin stays loopback-only whatever the bind address.
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"emulator: cannot listen on {host}:{port}: {exc.strerror}") from exc
    bound = int(runner.addresses[0][1])
    emulator.started_mono = time.monotonic()
    try:
        async with asyncio.TaskGroup() as tg:
            replay = tg.create_task(emulator.replay())
            scheduler = tg.create_task(emulator.fault_scheduler())
            pump = tg.create_task(emulator.md_pump())
            try:
                yield RunningEmulator(emulator, bound)
            finally:
                replay.cancel()
                scheduler.cancel()
                pump.cancel()
                await asyncio.gather(*(emulator._close(c, 1001, b"emulator stopping") for c in list(emulator.conns)))
    finally:
        await runner.cleanup()


__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "Emulator",
    "EmulatorConfig",
    "RunningEmulator",
    "env_credentials",
    "run_emulator",
]
