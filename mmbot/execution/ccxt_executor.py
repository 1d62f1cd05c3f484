"""CcxtExecutor: the Executor protocol over a ccxt exchange (sandbox/testnet or live).

* Post-only orders are LIMIT_MAKER on Binance spot; client order ids are
  ``[A-Za-z0-9_-]``, at most 36 characters, with a stable per-account prefix (to
  recognise our orders after a restart) and a per-run unique part.
* Order creation is never retried blindly: on a timeout (including a ws-api call
  that hangs after the order reached the venue) the order is looked up by client
  id first. Only idempotent calls (lookups, cancels) are retried.
* Order state comes from the user stream (``watch_my_trades`` for fills,
  ``watch_orders`` for acks and for cancels and expiries the venue makes on its
  own, ``watch_balance`` for balances) and from REST reconciliation on start-up,
  after reconnects and periodically; fills are de-duplicated by trade id.
* Fills are reconciled per order by cumulative quantity: whenever a venue payload
  (order reply, lookup, open-orders snapshot) says an order has filled more than we
  have booked, that order's trades are fetched by order id. A time window ("trades
  since the last one seen") alone is not enough: the venue's trade timestamps need
  not be monotonic for us (a server clock that jumped, trades reported late), and a
  fill missed in a user-stream gap must still be booked.
* Venue outcomes (``mmbot.adapters.ccxt.errors``) become reports and risk reasons:
  insufficient funds -> REDUCING, rejects -> REJECT_STORM counting, 429/418 ->
  back-off and ORDER_RATE, venue down past a grace period -> EXCHANGE_DOWN, an
  unexplained reconciliation difference -> RECONCILE_MISMATCH.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from mmbot.adapters.ccxt import orders as venue
from mmbot.adapters.ccxt.orders import VenueCallError
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import (
    CancelAll,
    CancelOrder,
    Command,
    FillReason,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    Side,
)
from mmbot.domain.risk import ACCOUNT_WIDE, RiskReason, VenueOutcome
from mmbot.execution.budget import OrderBudget
from mmbot.execution.protocol import ReportQueue

RECOVERY_OVERLAP_MS = 60_000
MAX_CATCH_UPS = 3

log = structlog.get_logger("mmbot.ccxt_executor")

RiskHook = Callable[[RiskReason, bool, str], None]  # (reason, raised?, cause)
# An order refused by our own budget before reaching the venue (not a venue reject:
# it must not count toward REJECT_STORM; ORDER_RATE already throttles quoting).
LOCAL_BUDGET_CODE = -91015


@dataclass
class _Tracked:
    coid: str
    symbol: str
    side: Side
    price_ticks: int
    qty_lots: int
    filled_lots: int = 0
    venue_id: str = ""
    acked: bool = False
    done: bool = False
    in_flight: bool = False  # the create call has not returned yet
    venue_filled_lots: int = 0  # cumulative fill the venue reported (order payloads)
    catch_ups: int = 0  # order-trade fetches that came back short


@dataclass
class ReconcileResult:
    open_at_venue: int = 0
    orphans_cancelled: list[str] = field(default_factory=list)
    fills_recovered: int = 0
    closed_while_away: list[str] = field(default_factory=list)
    base_balance: Decimal | None = None
    quote_balance: Decimal | None = None
    balances: dict[str, Decimal] = field(default_factory=dict)  # asset -> total (free + locked)
    mismatch: str = ""


class CcxtExecutor(ReportQueue):
    def __init__(
        self,
        exchange: Any,
        instruments: dict[str, Instrument],
        *,
        account_prefix: str,
        order_timeout_s: float = 10.0,
        watch_timeout_s: float = 10.0,
        budget: OrderBudget | None = None,
        use_ws: bool = False,
        on_risk: RiskHook | None = None,
        down_grace_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.exchange = exchange
        self.instruments = instruments
        self.account_prefix = account_prefix
        self.order_timeout_s = order_timeout_s
        self.watch_timeout_s = watch_timeout_s
        self.budget = budget or OrderBudget(per_window=50)
        self.use_ws = use_ws
        self.on_risk = on_risk or (lambda reason, raised, cause: None)
        self.down_grace_s = down_grace_s
        self.clock = clock
        super().__init__()
        self._orders: dict[str, _Tracked] = {}
        self._seen_trades: set[str] = set()
        self._short: set[str] = set()  # orders the venue says filled more than we booked
        self.cancel_sources: dict[str, int] = {}  # where each cancel/expiry report came from
        self.stream_balances: dict[str, Decimal] = {}  # latest totals from watch_balance
        self.balance_updates = 0
        self._down_since: float | None = None
        self.outcomes: dict[str, int] = {}
        self.connected = False
        self.last_trade_ms: dict[str, int] = {}
        self._raised: set[RiskReason] = set()
        self._lock = asyncio.Lock()  # order actions and reconciliation never interleave
        self._need_time_resync = False
        self.ws_resets = 0
        self.user_stream_reconnects = 0
        self.orphans_cancelled = 0
        self.lookups_after_timeout = 0
        self.orders_sent = 0
        self.time_resyncs = 0
        self.fill_sources: dict[str, int] = {}  # stream (user stream), rest (reconciliation), order (order reply)
        # e.g. the exchange-errors metric: (outcome, symbol; ACCOUNT_WIDE for account-wide calls)
        self.on_outcome: Callable[[VenueOutcome, str], None] | None = None
        self.on_reconnect: Callable[[], None] | None = None  # e.g. the websocket-reconnects metric
        # Every order action as it went out: local send and reply times, the venue's answer
        # (the journal's ``order_sent`` records; mmbot rerun and mmbot calibrate read them).
        self.on_action: Callable[[dict[str, Any]], None] | None = None

    # --- helpers --------------------------------------------------------------------------
    def _count(self, outcome: VenueOutcome, symbol: str) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1
        if self.on_outcome is not None:
            self.on_outcome(outcome, symbol)

    def _ts(self) -> int:
        return time.time_ns()

    def _action(self, action: str, coid: str, symbol: str, sent_ns: int, result: Any = None, error: VenueCallError | None = None,
                **extra: Any) -> None:
        """One order action (place, cancel, cancel_all) for the journal: times in ns, the venue's in ms."""
        if self.on_action is None:
            return
        record: dict[str, Any] = {"action": action, "client_order_id": coid, "symbol": symbol, "sent_ns": sent_ns,
                                  "reply_ns": time.time_ns(), "outcome": "ok" if error is None else error.outcome.kind.value}
        if isinstance(result, dict):
            if result.get("id") is not None:
                record["venue_order_id"] = str(result["id"])
            if result.get("timestamp") is not None:
                record["venue_ts_ms"] = int(result["timestamp"])
            if result.get("status") is not None:
                record["status"] = str(result["status"])
        if error is not None:
            record["message"] = error.outcome.message[:160]
        # When the request really left (ms, after the client's own rate limiter): ccxt notes it per REST call.
        wire_ms = getattr(self.exchange, "lastRestRequestTimestamp", None)
        if isinstance(wire_ms, int) and wire_ms * 1_000_000 >= sent_ns - 1_000_000:
            record["wire_sent_ms"] = wire_ms
        record.update(extra)
        self.on_action(record)

    def owns(self, client_order_id: str | None) -> bool:
        return bool(client_order_id) and str(client_order_id).startswith(self.account_prefix)

    def _raise(self, reason: RiskReason, cause: str) -> None:
        self._raised.add(reason)
        self.on_risk(reason, True, cause)

    def _clear(self, reason: RiskReason, cause: str) -> None:
        if reason in self._raised:
            self._raised.discard(reason)
            self.on_risk(reason, False, cause)

    def _venue_ok(self) -> None:
        if self._down_since is not None:
            self._down_since = None
        self._clear(RiskReason.EXCHANGE_DOWN, "venue answered again")
        if self.clock() >= self.budget.paused_until:
            self._clear(RiskReason.ORDER_RATE, "order traffic resumed")
        self.connected = True

    def on_market(self, event: object) -> None:
        """The paper executor matches market data; a real venue does not need it."""
        return None

    def tick(self) -> None:
        """Periodic: clear ORDER_RATE once the venue's back-off has expired."""
        if RiskReason.ORDER_RATE in self._raised and self.clock() >= self.budget.paused_until:
            self._clear(RiskReason.ORDER_RATE, "back-off expired")

    def _venue_down(self, cause: str) -> None:
        now = self.clock()
        if self._down_since is None:
            self._down_since = now
        if now - self._down_since >= self.down_grace_s:
            self._raise(RiskReason.EXCHANGE_DOWN, cause)

    def _handle_outcome(self, err: VenueCallError, *, context: str, symbol: str = ACCOUNT_WIDE) -> None:
        outcome = err.outcome
        self._count(outcome.kind, symbol)
        now = self.clock()
        if outcome.kind in (VenueOutcome.RATE_LIMITED, VenueOutcome.IP_BANNED):
            banned = outcome.kind is VenueOutcome.IP_BANNED
            self.budget.on_rate_limited(now, outcome.retry_after_s or 1.0, banned)
            self._raise(RiskReason.ORDER_RATE, f"{context}: {outcome.kind.value} status {outcome.status}")
        elif outcome.kind is VenueOutcome.INSUFFICIENT_FUNDS:
            self._raise(RiskReason.INSUFFICIENT_FUNDS, context)
        elif outcome.kind in (VenueOutcome.VENUE_DOWN, VenueOutcome.TIMEOUT):
            self._venue_down(f"{context}: {outcome.message[:120]}")
        elif outcome.kind is VenueOutcome.CLOCK_SKEW:
            self._need_time_resync = True
        elif outcome.kind is VenueOutcome.AUTH:
            self._raise(RiskReason.EXCHANGE_DOWN, f"{context}: authentication failed")
        log.warning("venue_error", context=context, outcome=outcome.kind.value, status=outcome.status, message=outcome.message[:200])

    # --- Executor protocol ----------------------------------------------------------------
    async def submit(self, commands: Sequence[Command], now_ns: int) -> None:
        """Order actions one at a time, in order (reconciliation waits for them, and they for it)."""
        async with self._lock:
            for command in commands:
                if isinstance(command, PlaceOrder):
                    await self._place(command)
                elif isinstance(command, CancelOrder):
                    await self._cancel(command.client_order_id, command.symbol)
                elif isinstance(command, CancelAll):
                    await self._cancel_all(command.symbol)

    async def _place(self, cmd: PlaceOrder) -> None:
        inst = self.instruments[cmd.symbol]
        await self._maybe_resync_time()
        if not self.budget.try_spend(self.clock()):
            self._count(VenueOutcome.RATE_LIMITED, cmd.symbol)
            self._raise(RiskReason.ORDER_RATE, "local order budget exhausted")
            self._push(OrderRejected(client_order_id=cmd.client_order_id, symbol=cmd.symbol, ts_ns=self._ts(), code=LOCAL_BUDGET_CODE, message="order budget exhausted (local)"))
            return
        tracked = _Tracked(cmd.client_order_id, cmd.symbol, cmd.side, cmd.price_ticks, cmd.qty_lots, in_flight=True)
        self._orders[cmd.client_order_id] = tracked
        side = "buy" if cmd.side is Side.BUY else "sell"
        self.orders_sent += 1
        sent_ns = time.time_ns()
        try:
            if cmd.is_taker:
                result = await venue.create_market(self.exchange, cmd.symbol, side, inst.qty(cmd.qty_lots), cmd.client_order_id, timeout_s=self.order_timeout_s)
            else:
                result = await venue.create_limit(
                    self.exchange, cmd.symbol, side, inst.qty(cmd.qty_lots), inst.price(cmd.price_ticks), cmd.client_order_id,
                    post_only=cmd.post_only, use_ws=self.use_ws, timeout_s=self.order_timeout_s,
                )  # fmt: skip
        except VenueCallError as err:
            tracked.in_flight = False
            self._action("place", cmd.client_order_id, cmd.symbol, sent_ns, error=err)
            self._handle_outcome(err, context=f"place {cmd.client_order_id}", symbol=cmd.symbol)
            if err.outcome.kind in (VenueOutcome.TIMEOUT, VenueOutcome.VENUE_DOWN, VenueOutcome.UNKNOWN):
                # The order may have reached the venue (a hung ws-api call, a 5xx with
                # "execution status unknown"): never re-send, look it up by client id.
                if self.use_ws:
                    await self.reset_connections("order call timed out on the ws-api")
                await self._resolve_unknown(tracked)
                return
            if err.outcome.kind is VenueOutcome.CLOCK_SKEW:
                await self._resync_time()
            tracked.done = True
            self._orders.pop(cmd.client_order_id, None)
            code = {VenueOutcome.WOULD_TAKE: -2010, VenueOutcome.INSUFFICIENT_FUNDS: -2010, VenueOutcome.RATE_LIMITED: -1003, VenueOutcome.IP_BANNED: -1003, VenueOutcome.CLOCK_SKEW: -1021}.get(err.outcome.kind, -1)
            self._push(OrderRejected(client_order_id=cmd.client_order_id, symbol=cmd.symbol, ts_ns=self._ts(), code=code, message=f"{err.outcome.kind.value}: {err.outcome.message[:160]}"))
            return
        tracked.in_flight = False
        self._action("place", cmd.client_order_id, cmd.symbol, sent_ns, result)
        self._venue_ok()
        self._clear(RiskReason.INSUFFICIENT_FUNDS, "an order was accepted")
        self._on_order_update(result)

    async def _maybe_resync_time(self) -> None:
        if self._need_time_resync:
            self._need_time_resync = False
            await self._resync_time()

    async def reset_connections(self, why: str) -> None:
        """Close every websocket of the exchange (the next watch/ws call reconnects); see REAL-COMPONENTS §9.

        Only the websockets: after ``exchange.close()`` ccxt 4.5.90 refuses REST calls
        ("instance was closed by the user") until ``open()``, and the lookup by client
        id that follows a hung ws-api order call goes over REST.
        """
        self.ws_resets += 1
        log.warning("venue_connections_reset", why=why)
        close = getattr(self.exchange, "close_ws_clients", None)
        if close is not None:
            try:
                async with asyncio.timeout(5):
                    await close()
            except Exception as exc:  # closing a broken socket may raise anything; we only log it
                log.warning("exchange_close_failed", error=str(exc)[:200])

    async def _resolve_unknown(self, tracked: _Tracked) -> None:
        """After a timed-out create: find out whether the order exists before doing anything."""
        self.lookups_after_timeout += 1
        for attempt in range(3):
            await self._maybe_resync_time()
            try:
                found = await venue.fetch_by_client_id(self.exchange, tracked.symbol, tracked.coid, timeout_s=self.order_timeout_s)
            except VenueCallError as err:
                self._handle_outcome(err, context=f"lookup {tracked.coid}", symbol=tracked.symbol)
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if found is None:
                tracked.done = True
                self._orders.pop(tracked.coid, None)
                self._push(OrderRejected(client_order_id=tracked.coid, symbol=tracked.symbol, ts_ns=self._ts(), code=-1007, message="timed out; the venue has no such order"))
            else:
                log.warning("order_found_after_timeout", client_order_id=tracked.coid, status=found.get("status"))
                self._on_order_update(found, source="lookup")
                await self._catch_up_fills(tracked)
            return
        # Still unknown: reconciliation will settle it; keep tracking so a fill is not lost.
        log.error("order_state_unknown", client_order_id=tracked.coid)

    async def _cancel(self, coid: str, symbol: str) -> None:
        tracked = self._orders.get(coid)
        if tracked is None or tracked.done:
            # Never sent (refused locally) or its final report is already queued
            # (rejected, filled, cancelled): nothing to cancel at the venue.
            return
        if not self.budget.try_spend(self.clock()) and self.clock() < self.budget.paused_until:
            # Banned/paused: the cancel is retried by reconciliation once traffic resumes.
            self._push(OrderRejected(client_order_id=coid, symbol=symbol, ts_ns=self._ts(), code=-1003, message="order traffic paused", for_cancel=True))
            return
        for attempt in range(3):  # cancels are idempotent: retry temporary errors
            await self._maybe_resync_time()
            sent_ns = time.time_ns()
            try:
                result = await venue.cancel(self.exchange, symbol, coid, use_ws=self.use_ws, timeout_s=self.order_timeout_s)
            except VenueCallError as err:
                self._action("cancel", coid, symbol, sent_ns, error=err)
                self._handle_outcome(err, context=f"cancel {coid}", symbol=symbol)
                if err.outcome.kind is VenueOutcome.ORDER_NOT_FOUND:
                    await self._settle_missing(coid, symbol)
                    return
                if err.outcome.is_retryable and attempt < 2:
                    if self.use_ws and err.outcome.kind is VenueOutcome.TIMEOUT:
                        await self.reset_connections("cancel timed out on the ws-api")
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                self._push(OrderRejected(client_order_id=coid, symbol=symbol, ts_ns=self._ts(), code=-1, message=err.outcome.message[:160], for_cancel=True))
                return
            self._action("cancel", coid, symbol, sent_ns, result)
            self._venue_ok()
            self._on_order_update(result)
            if not tracked.done:
                self._gone(tracked, "cancelled", "reply")
            return

    async def _settle_missing(self, coid: str, symbol: str) -> None:
        """A cancel said 'unknown order': learn its final state over REST."""
        try:
            found = await venue.fetch_by_client_id(self.exchange, symbol, coid, timeout_s=self.order_timeout_s)
        except VenueCallError as err:
            self._handle_outcome(err, context=f"settle {coid}", symbol=symbol)
            found = None
        tracked = self._orders.get(coid)
        if found is not None:
            self._on_order_update(found, source="lookup")
            if tracked is not None:
                await self._catch_up_fills(tracked)
            if found.get("status") == "open":
                return  # still resting (it was created after the open-orders snapshot)
        if found is None or found.get("filled") is None:
            await self._recover_trades(symbol)  # no cumulative fill to go by: the time window
        if tracked is not None and not tracked.done:
            self._gone(tracked, "not_found", "lookup")

    async def cancel_all(self, symbol: str, now_ns: int) -> None:
        async with self._lock:
            await self._cancel_all(symbol)

    async def _cancel_all(self, symbol: str) -> None:
        results: list[dict[str, Any]] = []
        for attempt in range(3):
            await self._maybe_resync_time()
            sent_ns = time.time_ns()
            try:
                results = await venue.cancel_all(self.exchange, symbol, timeout_s=self.order_timeout_s)
                self._action("cancel_all", "", symbol, sent_ns, cancelled=[str(r.get("clientOrderId") or "") for r in results])
                break
            except VenueCallError as err:
                self._action("cancel_all", "", symbol, sent_ns, error=err)
                self._handle_outcome(err, context=f"cancel_all {symbol}", symbol=symbol)
                if err.outcome.kind is VenueOutcome.ORDER_NOT_FOUND:  # -2011: nothing open
                    results = []
                    break
                if attempt == 2:
                    # Still open at the venue: tell the engine the cancel did not happen;
                    # the next halt/timer or reconciliation sends it again.
                    for tracked in list(self._orders.values()):
                        if tracked.symbol == symbol and not tracked.done:
                            self._push(OrderRejected(client_order_id=tracked.coid, symbol=symbol, ts_ns=self._ts(), code=-1, message="cancel_all failed", for_cancel=True))
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
        for result in results:
            self._on_order_update(result)
        for tracked in list(self._orders.values()):
            if tracked.symbol == symbol and not tracked.done:
                self._gone(tracked, "cancel_all", "reply")

    async def open_order_ids(self) -> list[str]:
        ids: list[str] = []
        for symbol in self.instruments:
            for order in await venue.fetch_open_orders(self.exchange, symbol, timeout_s=self.order_timeout_s):
                if self.owns(order.get("clientOrderId")):
                    ids.append(str(order["clientOrderId"]))
        return ids

    async def close(self) -> None:
        close = getattr(self.exchange, "close", None)
        if close is not None:
            try:
                async with asyncio.timeout(5):
                    await close()
            except Exception as exc:
                log.warning("exchange_close_failed", error=str(exc)[:200])

    # --- translation of venue payloads ----------------------------------------------------------
    def _on_order_update(self, order: dict[str, Any], source: str = "reply") -> None:
        coid = order.get("clientOrderId")
        if not coid:
            return
        tracked = self._orders.get(str(coid))
        if tracked is None:
            return
        status = order.get("status")
        if order.get("id") is not None:
            tracked.venue_id = str(order["id"])
        if order.get("filled") is not None:
            filled = self.instruments[tracked.symbol].qty_lots(format(Decimal(str(order["filled"])), "f"))
            tracked.venue_filled_lots = max(tracked.venue_filled_lots, filled)
            if tracked.venue_filled_lots > tracked.filled_lots:
                # Usually the stream's trade is just behind the reply; reconciliation
                # fetches the order's trades if it is still short by then.
                self._short.add(tracked.coid)
        if not tracked.acked and status in ("open", "closed", "canceled", "expired"):
            tracked.acked = True
            venue_ms = order.get("timestamp")
            self._push(OrderAccepted(client_order_id=tracked.coid, symbol=tracked.symbol, ts_ns=self._ts(), venue_order_id=tracked.venue_id,
                                     venue_ts_ns=int(venue_ms) * 1_000_000 if venue_ms else 0))
        for trade in order.get("trades") or []:
            self._on_trade(trade, tracked, source="order")
        if status in ("canceled", "expired", "rejected") and not tracked.done:
            # Fills, if any, arrive through trades; only mark the order gone.
            self._gone(tracked, str(status), source)

    def _gone(self, tracked: _Tracked, reason: str, source: str) -> None:
        """The order is no longer working at the venue: report it once, count where we learnt it."""
        tracked.done = True
        self.cancel_sources[source] = self.cancel_sources.get(source, 0) + 1
        self._push(OrderCancelled(client_order_id=tracked.coid, symbol=tracked.symbol, ts_ns=self._ts(), reason=reason))

    def _on_trade(self, trade: dict[str, Any], tracked: _Tracked | None = None, source: str = "stream") -> None:
        trade_id = str(trade.get("id") or "")
        if not trade_id or trade_id in self._seen_trades:
            return
        if tracked is None:
            coid = trade.get("clientOrderId") or (trade.get("info") or {}).get("c")
            order_id = str(trade.get("order") or "")
            tracked = self._orders.get(str(coid)) if coid else None
            if tracked is None and order_id:
                tracked = next((t for t in self._orders.values() if t.venue_id == order_id), None)
            if tracked is None:
                return  # not ours (or from before a restart: reconciliation books those)
        self._seen_trades.add(trade_id)
        self.fill_sources[source] = self.fill_sources.get(source, 0) + 1
        inst = self.instruments[tracked.symbol]
        qty_lots = inst.qty_lots(format(Decimal(str(trade["amount"])), "f"))
        price_ticks = inst.price_ticks(format(Decimal(str(trade["price"])), "f"))
        fee_info = trade.get("fee") or {}
        fee = Decimal(str(fee_info.get("cost") or 0))
        if fee and fee_info.get("currency") == inst.base:
            fee = fee * inst.price(price_ticks)  # commission in base: value it in quote
        tracked.filled_lots += qty_lots
        if tracked.filled_lots >= tracked.venue_filled_lots:
            self._short.discard(tracked.coid)
        leaves = max(tracked.qty_lots - tracked.filled_lots, 0)
        if leaves == 0:
            tracked.done = True
        ts_ms = int(trade.get("timestamp") or 0)
        self.last_trade_ms[tracked.symbol] = max(self.last_trade_ms.get(tracked.symbol, 0), ts_ms)
        self._push(
            OrderFilled(
                client_order_id=tracked.coid, symbol=tracked.symbol, ts_ns=ts_ms * 1_000_000 or self._ts(), side=tracked.side,
                price_ticks=price_ticks, qty_lots=qty_lots, leaves_lots=leaves, fee=fee,
                liquidity=Liquidity.MAKER if trade.get("takerOrMaker") != "taker" else Liquidity.TAKER,
                reason=FillReason.VENUE, trade_id=trade_id,
            )
        )  # fmt: skip

    # --- user stream and reconciliation ------------------------------------------------------------
    async def run_user_stream(self, stop: asyncio.Event) -> None:
        """Consume fills and order updates until ``stop``; reconcile after each reconnect."""
        failures = 0
        while not stop.is_set():
            try:
                trades = await venue.watch_my_trades(self.exchange, None, timeout_s=self.watch_timeout_s)
            except VenueCallError as err:
                if err.outcome.kind is VenueOutcome.TIMEOUT and await self._ws_api_alive():
                    continue  # nothing traded for a while, and the ws-api still answers: fine
                failures += 1
                self.user_stream_reconnects += 1
                if self.on_reconnect is not None:
                    self.on_reconnect()
                if err.outcome.kind is not VenueOutcome.TIMEOUT:
                    self._handle_outcome(err, context="user_stream")
                # A silent or broken ws-api socket (e.g. a malformed frame stopped ccxt's
                # receive loop): close it; the next watch reconnects and re-subscribes.
                await self.reset_connections(f"user stream: {err.outcome.kind.value}")
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                await self.reconcile()
                continue
            if failures:
                failures = 0
                await self.reconcile()
            for trade in trades:
                self._on_trade(trade, source="stream")

    async def run_order_stream(self, stop: asyncio.Event) -> None:
        """Order updates until ``stop``: acks, and cancels or expiries the venue makes on its own.

        Our own cancels are confirmed by their replies as well; whichever arrives first
        reports the order gone, the other finds it done. Connection failures are left
        to :meth:`run_user_stream` (it resets the sockets and reconciles); this loop
        only waits and subscribes again.
        """
        failures = 0
        while not stop.is_set():
            try:
                orders = await venue.watch_orders(self.exchange, None, timeout_s=self.watch_timeout_s)
            except VenueCallError as err:
                if err.outcome.kind is VenueOutcome.TIMEOUT:
                    continue  # no order activity for a while: normal
                failures += 1
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            failures = 0
            for order in orders:
                self._on_order_update(order, source="stream")

    async def run_balance_stream(self, stop: asyncio.Event) -> None:
        """Balance pushes until ``stop`` (``outboundAccountPosition``): the latest totals per asset.

        Positions are still checked against REST balances at each reconciliation (a
        push can precede the trade that explains it); these figures are for operators
        (the ``mmbot_venue_balance`` gauge) and the summary.
        """
        failures = 0
        while not stop.is_set():
            try:
                balance = await venue.watch_balance(self.exchange, timeout_s=self.watch_timeout_s)
            except VenueCallError as err:
                if err.outcome.kind is VenueOutcome.TIMEOUT:
                    continue
                failures += 1
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))
                continue
            failures = 0
            self.balance_updates += 1
            for asset, total in (balance.get("total") or {}).items():
                if total is not None:
                    self.stream_balances[str(asset)] = Decimal(str(total))

    async def _ws_api_alive(self) -> bool:
        """A cheap signed ws-api request on the user stream's socket (account.status)."""
        probe = getattr(self.exchange, "fetch_balance_ws", None)
        if probe is None:
            return True
        try:
            await venue.call(probe(), min(self.watch_timeout_s, 5.0))
        except VenueCallError as err:
            if err.outcome.kind is VenueOutcome.TIMEOUT:
                return False
            self._handle_outcome(err, context="ws-api probe")
            return err.outcome.kind not in (VenueOutcome.VENUE_DOWN, VenueOutcome.UNKNOWN)
        return True

    async def _catch_up_fills(self, tracked: _Tracked) -> int:
        """Book the trades of an order the venue says filled more than we booked (by order id).

        Returns the number of fills booked.
        """
        if tracked.venue_filled_lots <= tracked.filled_lots or not tracked.venue_id:
            return 0
        try:
            trades = await venue.fetch_order_trades(self.exchange, tracked.symbol, tracked.venue_id, timeout_s=self.order_timeout_s)
        except VenueCallError as err:
            self._handle_outcome(err, context=f"order trades {tracked.coid}", symbol=tracked.symbol)
            return 0  # the next reconciliation tries again (the order payload still says more)
        before = len(self._seen_trades)
        for trade in trades:
            self._on_trade(trade, tracked, source="rest")
        if tracked.filled_lots < tracked.venue_filled_lots:
            tracked.catch_ups += 1
            log.error("fills_missing", client_order_id=tracked.coid, booked_lots=tracked.filled_lots, venue_lots=tracked.venue_filled_lots)
            if tracked.catch_ups >= MAX_CATCH_UPS:
                # The venue's trade list disagrees with its own order record: stop asking;
                # the balance check (RECONCILE_MISMATCH) halts quoting if it matters.
                self._short.discard(tracked.coid)
        return len(self._seen_trades) - before

    async def _recover_trades(self, symbol: str) -> int:
        last = self.last_trade_ms.get(symbol)
        # Overlap the window: trade times need not arrive in order (de-dup by id is free).
        since = None if last is None else last - RECOVERY_OVERLAP_MS
        try:
            trades = await venue.fetch_my_trades(self.exchange, symbol, since, timeout_s=self.order_timeout_s)
        except VenueCallError as err:
            self._handle_outcome(err, context=f"myTrades {symbol}", symbol=symbol)
            return 0
        before = len(self._seen_trades)
        for trade in trades:
            self._on_trade(trade, source="rest")
        return len(self._seen_trades) - before

    async def reconcile(self) -> ReconcileResult:
        async with self._lock:
            return await self._reconcile()

    async def _reconcile(self) -> ReconcileResult:
        """REST reconciliation: open orders, trades since the last seen one, balances.

        Open orders with our account prefix that this run does not track (left by a
        crashed run, or a create that raced a cancel) are cancelled; tracked orders
        missing from the venue are settled by a lookup plus the trades since the last
        one seen.
        """
        await self._maybe_resync_time()
        result = ReconcileResult()
        for symbol in self.instruments:
            try:
                open_orders = await venue.fetch_open_orders(self.exchange, symbol, timeout_s=self.order_timeout_s)
            except VenueCallError as err:
                self._handle_outcome(err, context=f"reconcile {symbol}", symbol=symbol)
                result.mismatch = "open orders unavailable"
                continue
            self._venue_ok()
            result.open_at_venue += len(open_orders)
            venue_ids = set()
            for order in open_orders:
                coid = str(order.get("clientOrderId") or "")
                venue_ids.add(coid)
                known = self._orders.get(coid)
                if known is not None and not known.done:
                    self._on_order_update(order, source="reconcile")
                    result.fills_recovered += await self._catch_up_fills(known)
                elif self.owns(coid):
                    # Ours, but not of this run (left behind by a crash): cancel it.
                    try:
                        await venue.cancel(self.exchange, symbol, coid, use_ws=False, timeout_s=self.order_timeout_s)
                        result.orphans_cancelled.append(coid)
                        self.orphans_cancelled += 1
                        log.warning("orphan_order_cancelled", client_order_id=coid, symbol=symbol)
                    except VenueCallError as err:
                        self._handle_outcome(err, context=f"cancel orphan {coid}", symbol=symbol)
            result.fills_recovered += await self._recover_trades(symbol)
            for coid in sorted(self._short):
                short = self._orders.get(coid)
                if short is not None and short.symbol == symbol:
                    result.fills_recovered += await self._catch_up_fills(short)
            for tracked in list(self._orders.values()):
                if tracked.symbol == symbol and not tracked.done and not tracked.in_flight and tracked.coid not in venue_ids:
                    result.closed_while_away.append(tracked.coid)
                    await self._settle_missing(tracked.coid, symbol)
        try:
            balance = await venue.fetch_balance(self.exchange, timeout_s=self.order_timeout_s)
            inst = next(iter(self.instruments.values()))
            total = balance.get("total") or {}
            result.balances = {str(a): Decimal(str(v)) for a, v in total.items() if v is not None}
            if inst.base in total:
                result.base_balance = Decimal(str(total[inst.base]))
            if inst.quote_ccy in total:
                result.quote_balance = Decimal(str(total[inst.quote_ccy]))
        except VenueCallError as err:
            self._handle_outcome(err, context="balance")
        log.info(
            "reconciled",
            open_at_venue=result.open_at_venue,
            orphans_cancelled=len(result.orphans_cancelled),
            fills_recovered=result.fills_recovered,
            closed_while_away=len(result.closed_while_away),
        )
        return result

    async def _resync_time(self) -> None:
        self.time_resyncs += 1
        load = getattr(self.exchange, "load_time_difference", None)
        if load is None:
            return
        try:
            async with asyncio.timeout(self.order_timeout_s):
                await load()
            log.info("time_resynced", offset_ms=self.exchange.options.get("timeDifference"))
        except Exception as exc:
            log.warning("time_resync_failed", error=str(exc)[:200])


def account_prefix(account: str) -> str:
    """Stable per-account part of our client order ids (recognises our orders after a restart)."""
    return f"mm{hashlib.sha256(account.encode()).hexdigest()[:4]}-"


def run_order_prefix(account: str, run_id: str, pid: int) -> str:
    """Account part + a per-run unique part; ids stay within [A-Za-z0-9_-]{1,36}."""
    return f"{account_prefix(account)}{hashlib.sha256(f'{run_id}:{pid}'.encode()).hexdigest()[:6]}-"
