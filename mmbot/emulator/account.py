"""The emulated spot account: orders, balances, trades and user-data events.

Orders go through each symbol's :class:`~mmbot.sim.venue.SimVenue` (entry latency 0:
the network is real), so they rest, queue and fill exactly as in paper mode. The
venue is keyed by the decimal order id.

Order types: ``LIMIT_MAKER`` (post-only: -2010 "Order would immediately match and
take." if it would cross), ``LIMIT`` with ``timeInForce`` GTC/IOC/FOK (a crossing
part takes liquidity at the book's prices, a GTC remainder rests), ``MARKET``
(takes up to 50 levels; the rest expires).

Balances: each order locks ``price x qty`` quote (buys) or ``qty`` base (sells);
fills move the assets; the commission is ``fee`` from the venue (maker/taker bps)
and is charged in the quote currency. Wire numbers are decimal strings with 8
decimals, as Binance sends them.

Integer parameters (``orderId``, ``limit``, ``fromId``, ``startTime``, ``endTime``,
``timestamp``, ``recvWindow``) all go through :func:`int_param`, on REST and ws-api
alike, so none can raise past the handler (a 500 and a traceback) or be taken in a
form Binance refuses (Python's ``int()`` accepts ``" 5"``, ``"+5"``, ``"1_0"`` and
non-ASCII digits). Binance's rule is the regex ``^[0-9]{1,20}$``:

* absent (or JSON null): the endpoint's default;
* empty text, or a value below the parameter's minimum (``limit=0``):
  ``-1102 Mandatory parameter 'X' was not sent, was empty/null, or malformed.``
  (our choice for zero: Binance documents no answer for it, and "malformed" is the
  closest of its messages);
* anything but ASCII digits (``-1``, ``1.5``, ``abc``; on ws-api anything but a
  non-negative integer or an integral float): ``-1100 Illegal characters found in
  parameter 'X'; legal range is '^[0-9]{1,20}$'.``;
* more than 20 digits: -1100 too, except for a parameter with a cap: ``limit`` is
  capped (depth at 5000, as Binance's spot docs say, myTrades at 1000), so
  ``limit=10**23`` answers 5000 levels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mmbot.domain.orders import (
    CancelOrder,
    ExecReport,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    Side,
)
from mmbot.emulator.market import SymbolMarket
from mmbot.emulator.tape import fmt_price, fmt_qty
from mmbot.errors import VenueError

# Binance's wording (ccxt matches messages before codes).
MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_NO_ORDER = "Order does not exist."
MSG_DUPLICATE = "Duplicate order sent."
MSG_INVALID_SYMBOL = "Invalid symbol."
MSG_REJECTED_FAULT = "Order rejected by the emulator (fault injection)."


class ApiError(VenueError):
    """A Binance error answer: HTTP status, code and message (the server turns it into
    the HTTP response; it never leaves a request handler)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def missing(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str) -> ApiError:
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")


_DIGITS = re.compile(r"[0-9]+")  # ASCII only, unlike str.isdigit() and int()
_MAX_DIGITS = 20  # Binance's ^[0-9]{1,20}$; also keeps int() far from its 4300-digit limit


def int_param(params: Mapping[str, Any], name: str, default: int | None = None, *,
              minimum: int = 0, cap: int | None = None) -> int | None:
    """An integer parameter by Binance's rules (module docstring); ``default`` when absent."""
    raw = params.get(name)
    if raw is None:
        return default
    value: int
    if isinstance(raw, str):
        if raw == "":
            raise missing(name)
        if not _DIGITS.fullmatch(raw):
            raise illegal(name)
        digits = raw.lstrip("0") or "0"
        if len(digits) > _MAX_DIGITS:
            if cap is None:
                raise illegal(name)
            return cap
        value = int(digits)
    elif isinstance(raw, bool):  # JSON true is not 1
        raise illegal(name)
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        value = int(raw)
    else:
        raise illegal(name)
    if value < 0 or (cap is None and value >= 10**_MAX_DIGITS):
        raise illegal(name)
    if value < minimum:
        raise missing(name)
    return value if cap is None else min(value, cap)


@dataclass
class OrderRecord:
    order_id: int
    symbol: str  # venue symbol
    client_order_id: str
    side: str  # BUY | SELL
    type: str  # LIMIT | LIMIT_MAKER | MARKET
    time_in_force: str
    price_ticks: int  # 0 for MARKET
    qty_lots: int
    time_ms: int
    filled_lots: int = 0
    cum_quote: Decimal = Decimal(0)
    status: str = "NEW"
    update_ms: int = 0
    locked: Decimal = Decimal(0)  # still locked for this order (quote for buys, base for sells)
    fills: list[dict[str, Any]] = field(default_factory=list)
    working: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


class Account:
    """One account shared by every API key the emulator accepts (there is one)."""

    def __init__(self, markets: dict[str, SymbolMarket], balances: dict[str, Decimal]) -> None:
        self.markets = markets
        self.free: dict[str, Decimal] = dict(balances)
        self.locked: dict[str, Decimal] = {asset: Decimal(0) for asset in balances}
        for m in markets.values():
            for asset in (m.instrument.base, m.instrument.quote_ccy):
                self.free.setdefault(asset, Decimal(0))
                self.locked.setdefault(asset, Decimal(0))
        self.orders: dict[int, OrderRecord] = {}
        self.trades: list[dict[str, Any]] = []
        self._next_order_id = 1000
        self._next_trade_id = 1
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.reject_orders = False  # the reject fault

    # --- helpers ----------------------------------------------------------------------
    def market(self, symbol: str | None) -> SymbolMarket:
        if not symbol:
            raise missing("symbol")
        m = self.markets.get(symbol)
        if m is None:
            raise ApiError(400, -1121, MSG_INVALID_SYMBOL)
        return m

    def _push(self, event: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(event)

    def _find(self, symbol: str, order_id: Any, client_order_id: Any, *, for_cancel: bool) -> OrderRecord:
        rec: OrderRecord | None = None
        if order_id not in (None, ""):
            rec = self.orders.get(int_param({"orderId": order_id}, "orderId") or 0)
        elif client_order_id not in (None, ""):
            # The newest order with that id wins, as on Binance.
            matches = [r for r in self.orders.values() if r.client_order_id == client_order_id and r.symbol == symbol]
            rec = matches[-1] if matches else None
        else:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if rec is None or rec.symbol != symbol:
            raise ApiError(400, -2011, MSG_UNKNOWN_ORDER) if for_cancel else ApiError(400, -2013, MSG_NO_ORDER)
        return rec

    def _balance_event(self, assets: set[str], now_ms: int) -> None:
        self._push(
            {
                "e": "outboundAccountPosition",
                "E": now_ms,
                "u": now_ms,
                "B": [{"a": a, "f": f"{self.free[a]:.8f}", "l": f"{self.locked[a]:.8f}"} for a in sorted(assets)],
            }
        )

    # --- order entry --------------------------------------------------------------------
    def place(self, params: dict[str, Any], now_ms: int, now_ns: int) -> dict[str, Any]:
        m = self.market(params.get("symbol"))
        inst = m.instrument
        side = str(params.get("side", "")).upper()
        if side not in ("BUY", "SELL"):
            raise missing("side") if not side else ApiError(400, -1117, "Invalid side.")
        otype = str(params.get("type", "")).upper()
        if otype not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise missing("type") if not otype else ApiError(400, -1116, "Invalid orderType.")
        tif = str(params.get("timeInForce", "")).upper()
        if otype == "LIMIT":
            if not tif:
                raise missing("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise ApiError(400, -1115, "Invalid timeInForce.")
        elif otype == "LIMIT_MAKER":
            tif = "GTC"
        else:
            tif = "GTC"
        qty_text = params.get("quantity")
        if qty_text in (None, ""):
            raise missing("quantity")
        try:
            qty_lots = inst.qty_lots(str(qty_text))
        except ValueError as exc:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE") from exc
        price_ticks = 0
        if otype != "MARKET":
            price_text = params.get("price")
            if price_text in (None, ""):
                raise missing("price")
            try:
                price_ticks = inst.price_ticks(str(price_text))
            except ValueError as exc:
                raise ApiError(400, -1013, "Filter failure: PRICE_FILTER") from exc
        if qty_lots <= 0 or qty_lots % inst.step_lots:
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        if self.reject_orders:
            raise ApiError(400, -2010, MSG_REJECTED_FAULT)
        coid = str(params.get("newClientOrderId") or f"emu-{self._next_order_id}")
        if any(r.client_order_id == coid and r.is_open for r in self.orders.values()):
            raise ApiError(400, -2010, MSG_DUPLICATE)
        book = m.book
        is_buy = side == "BUY"
        # Funds check and lock.
        if is_buy:
            ref = price_ticks or (book.best_ask() or 0)
            need = inst.notional(ref, qty_lots)
            asset = inst.quote_ccy
        else:
            need = inst.qty(qty_lots)
            asset = inst.base
        if need > self.free[asset]:
            raise ApiError(400, -2010, MSG_INSUFFICIENT)
        if otype == "LIMIT" and tif == "FOK" and book.depth_within(not is_buy, price_ticks) < qty_lots:
            rec = self._new_record(m, coid, side, otype, tif, price_ticks, qty_lots, now_ms)
            self._new_event(rec, now_ms)
            self._finish(rec, "EXPIRED", now_ms)
            return self.order_body(rec, full=True)
        rec = self._new_record(m, coid, side, otype, tif, price_ticks, qty_lots, now_ms)
        self._lock(rec, asset, need)
        # MARKET and IOC/FOK limits are IOC takers; LIMIT_MAKER is post-only; a GTC LIMIT
        # that crosses takes at the book's prices and the SimVenue rests the remainder.
        is_taker = otype == "MARKET" or tif in ("IOC", "FOK")
        limit = price_ticks if otype != "MARKET" else (10**15 if is_buy else 1)
        m.venue.submit(
            PlaceOrder(client_order_id=str(rec.order_id), symbol=inst.symbol, side=Side.BUY if is_buy else Side.SELL,
                       price_ticks=limit, qty_lots=qty_lots, post_only=otype == "LIMIT_MAKER", is_taker=is_taker),
            now_ns,
        )
        reports = m.venue.advance(now_ns)
        rejected = next((r for r in reports if isinstance(r, OrderRejected)), None)
        if rejected is not None:
            self._unlock(rec)
            del self.orders[rec.order_id]
            raise ApiError(400, rejected.code, rejected.message)
        rec.working = True
        self._new_event(rec, now_ms)
        self._balance_event({asset}, now_ms)  # the lock, as Binance reports it after NEW
        self._handle(m, [r for r in reports if not isinstance(r, OrderAccepted)], now_ms)
        return self.order_body(rec, full=True)

    def _new_record(
        self, m: SymbolMarket, coid: str, side: str, otype: str, tif: str, price_ticks: int, qty_lots: int, now_ms: int
    ) -> OrderRecord:
        oid = self._next_order_id
        self._next_order_id += 1
        rec = OrderRecord(
            order_id=oid, symbol=m.venue_symbol, client_order_id=coid, side=side, type=otype, time_in_force=tif,
            price_ticks=price_ticks, qty_lots=qty_lots, time_ms=now_ms, update_ms=now_ms,
        )
        self.orders[oid] = rec
        return rec

    def _lock(self, rec: OrderRecord, asset: str, amount: Decimal) -> None:
        rec.locked = amount
        self.free[asset] -= amount
        self.locked[asset] += amount

    def _unlock(self, rec: OrderRecord) -> set[str]:
        m = self.markets[rec.symbol]
        asset = m.instrument.quote_ccy if rec.side == "BUY" else m.instrument.base
        self.free[asset] += rec.locked
        self.locked[asset] -= rec.locked
        rec.locked = Decimal(0)
        return {asset}

    def _finish(self, rec: OrderRecord, status: str, now_ms: int, orig_coid: str = "") -> None:
        rec.status = status
        rec.update_ms = now_ms
        rec.working = False
        assets = self._unlock(rec)
        exec_type = "CANCELED" if status == "CANCELED" else "EXPIRED"
        self._push(self.execution_report(rec, exec_type, now_ms, orig_coid=orig_coid))
        self._balance_event(assets, now_ms)

    def _new_event(self, rec: OrderRecord, now_ms: int) -> None:
        self._push(self.execution_report(rec, "NEW", now_ms))

    # --- cancels ------------------------------------------------------------------------
    def cancel(self, params: dict[str, Any], now_ms: int, now_ns: int) -> dict[str, Any]:
        m = self.market(params.get("symbol"))
        rec = self._find(m.venue_symbol, params.get("orderId"), params.get("origClientOrderId"), for_cancel=True)
        if not rec.is_open:
            raise ApiError(400, -2011, MSG_UNKNOWN_ORDER)
        self._cancel_rec(m, rec, now_ms, now_ns)
        body = self.order_body(rec)
        body["origClientOrderId"] = rec.client_order_id
        body["clientOrderId"] = str(params.get("newClientOrderId") or f"cancel-{rec.order_id}")
        body["transactTime"] = now_ms
        return body

    def _cancel_rec(self, m: SymbolMarket, rec: OrderRecord, now_ms: int, now_ns: int) -> None:
        venue = m.venue
        coid = str(rec.order_id)
        if rec.working:
            # Resting, or still on its way to the matching engine: the cancel travels
            # behind the place (one FIFO connection), so it cannot miss the order.
            venue.submit(CancelOrder(client_order_id=coid, symbol=m.instrument.symbol, reason="cancel"), now_ns)
            reports = venue.advance(now_ns)
            # Other commands that fell due on the way (their fills) still count.
            self._handle(m, [r for r in reports if r.client_order_id != coid], now_ms)
        if rec.is_open:
            self._finish(rec, "CANCELED", now_ms)

    def cancel_all(self, params: dict[str, Any], now_ms: int, now_ns: int) -> list[dict[str, Any]]:
        m = self.market(params.get("symbol"))
        recs = [r for r in self.orders.values() if r.symbol == m.venue_symbol and r.is_open]
        if not recs:
            raise ApiError(400, -2011, MSG_UNKNOWN_ORDER)
        out = []
        for rec in recs:
            self._cancel_rec(m, rec, now_ms, now_ns)
            body = self.order_body(rec)
            body["origClientOrderId"] = rec.client_order_id
            body["transactTime"] = now_ms
            out.append(body)
        return out

    # --- queries ------------------------------------------------------------------------
    def venue_cancel_open(self, now_ms: int, now_ns: int) -> list[str]:
        """Cancel every open order, as the venue does on its own; the client order ids cancelled."""
        out = []
        for rec in [r for r in self.orders.values() if r.is_open]:
            self._cancel_rec(self.markets[rec.symbol], rec, now_ms, now_ns)
            out.append(rec.client_order_id)
        return out

    def get_order(self, params: dict[str, Any]) -> dict[str, Any]:
        m = self.market(params.get("symbol"))
        rec = self._find(m.venue_symbol, params.get("orderId"), params.get("origClientOrderId"), for_cancel=False)
        return self.order_body(rec, query=True)

    def open_orders(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        symbol = params.get("symbol")
        if symbol:
            self.market(symbol)
        return [self.order_body(r, query=True) for r in self.orders.values() if r.is_open and (not symbol or r.symbol == symbol)]

    def my_trades(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        m = self.market(params.get("symbol"))
        limit = int_param(params, "limit", 500, minimum=1, cap=1000) or 500
        start = int_param(params, "startTime")
        end = int_param(params, "endTime")
        from_id = int_param(params, "fromId")
        order_id = int_param(params, "orderId")
        out = [
            t for t in self.trades
            if t["symbol"] == m.venue_symbol
            and (start is None or t["time"] >= start)
            and (end is None or t["time"] <= end)
            and (from_id is None or t["id"] >= from_id)
            and (order_id is None or t["orderId"] == order_id)
        ]
        return out[:limit] if from_id is not None or start is not None else out[-limit:]

    def account_body(self, now_ms: int) -> dict[str, Any]:
        return {
            "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00000000", "taker": "0.00000000", "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ms,
            "accountType": "SPOT",
            "balances": [{"asset": a, "free": f"{self.free[a]:.8f}", "locked": f"{self.locked[a]:.8f}"} for a in sorted(self.free)],
            "permissions": ["SPOT"], "uid": 1,
        }

    # --- venue reports -----------------------------------------------------------------
    def on_reports(self, m: SymbolMarket, reports: list[ExecReport], now_ms: int) -> None:
        """Fills (and cancels) produced by market data moving through the venue."""
        if reports:
            self._handle(m, reports, now_ms)

    def _handle(self, m: SymbolMarket, reports: list[ExecReport], now_ms: int) -> None:
        changed: set[str] = set()
        for report in reports:
            try:
                oid = int(report.client_order_id)
            except ValueError:
                continue
            rec = self.orders.get(oid)
            if rec is None:
                continue
            if isinstance(report, OrderFilled):
                changed |= self._fill(m, rec, report, now_ms)
            elif isinstance(report, OrderCancelled) and rec.is_open:
                # IOC remainder (expired) or self-trade prevention (expired_in_match).
                status = "EXPIRED_IN_MATCH" if report.reason == "expired_in_match" else "EXPIRED"
                self._finish(rec, status, now_ms)
        if changed:
            self._balance_event(changed, now_ms)

    def _fill(self, m: SymbolMarket, rec: OrderRecord, fill: OrderFilled, now_ms: int) -> set[str]:
        inst = m.instrument
        qty = inst.qty(fill.qty_lots)
        quote = inst.notional(fill.price_ticks, fill.qty_lots)
        base, quote_ccy = inst.base, inst.quote_ccy
        if rec.side == "BUY":
            release = inst.notional(rec.price_ticks, fill.qty_lots) if rec.price_ticks else quote
            release = min(release, rec.locked)
            rec.locked -= release
            self.locked[quote_ccy] -= release
            self.free[quote_ccy] += release - quote
            self.free[base] += qty
        else:
            release = min(qty, rec.locked)
            rec.locked -= release
            self.locked[base] -= release
            self.free[base] += release - qty
            self.free[quote_ccy] += quote
        self.free[quote_ccy] -= fill.fee
        rec.filled_lots += fill.qty_lots
        rec.cum_quote += quote
        rec.update_ms = now_ms
        done = rec.filled_lots >= rec.qty_lots
        rec.status = "FILLED" if done else "PARTIALLY_FILLED"
        if done:
            rec.working = False
            if rec.locked:
                self._unlock(rec)
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        is_maker = fill.liquidity is Liquidity.MAKER
        price_s, qty_s = fmt_price(inst, fill.price_ticks), fmt_qty(inst, fill.qty_lots)
        rec.fills.append({"price": price_s, "qty": qty_s, "commission": f"{fill.fee:.8f}", "commissionAsset": quote_ccy, "tradeId": trade_id})
        self.trades.append(
            {
                "symbol": rec.symbol, "id": trade_id, "orderId": rec.order_id, "orderListId": -1,
                "price": price_s, "qty": qty_s, "quoteQty": f"{quote:.8f}", "commission": f"{fill.fee:.8f}",
                "commissionAsset": quote_ccy, "time": now_ms, "isBuyer": rec.side == "BUY", "isMaker": is_maker,
                "isBestMatch": True,
            }
        )
        self._push(self.execution_report(rec, "TRADE", now_ms, fill=fill, trade_id=trade_id))
        return {base, quote_ccy}

    # --- wire bodies --------------------------------------------------------------------
    def order_body(self, rec: OrderRecord, *, full: bool = False, query: bool = False) -> dict[str, Any]:
        inst = self.markets[rec.symbol].instrument
        body: dict[str, Any] = {
            "symbol": rec.symbol,
            "orderId": rec.order_id,
            "orderListId": -1,
            "clientOrderId": rec.client_order_id,
            "transactTime": rec.time_ms,
            "price": fmt_price(inst, rec.price_ticks),
            "origQty": fmt_qty(inst, rec.qty_lots),
            "executedQty": fmt_qty(inst, rec.filled_lots),
            "cummulativeQuoteQty": f"{rec.cum_quote:.8f}",
            "status": rec.status,
            "timeInForce": rec.time_in_force,
            "type": rec.type,
            "side": rec.side,
            "workingTime": rec.time_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if full:
            body["fills"] = list(rec.fills)
        if query:
            del body["transactTime"]
            body.update(
                {
                    "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": rec.time_ms,
                    "updateTime": rec.update_ms, "isWorking": rec.working, "origQuoteOrderQty": "0.00000000",
                }
            )
        return body

    def execution_report(
        self, rec: OrderRecord, exec_type: str, now_ms: int, *, fill: OrderFilled | None = None, trade_id: int = -1,
        orig_coid: str = "",
    ) -> dict[str, Any]:
        inst = self.markets[rec.symbol].instrument
        last_qty = fmt_qty(inst, fill.qty_lots) if fill else "0.00000000"
        last_px = fmt_price(inst, fill.price_ticks) if fill else "0.00000000"
        last_quote = f"{inst.notional(fill.price_ticks, fill.qty_lots):.8f}" if fill else "0.00000000"
        return {
            "e": "executionReport", "E": now_ms, "s": rec.symbol, "c": rec.client_order_id, "S": rec.side,
            "o": rec.type, "f": rec.time_in_force, "q": fmt_qty(inst, rec.qty_lots), "p": fmt_price(inst, rec.price_ticks),
            "P": "0.00000000", "F": "0.00000000", "g": -1, "C": orig_coid or (rec.client_order_id if exec_type == "CANCELED" else ""),
            "x": exec_type, "X": rec.status, "r": "NONE", "i": rec.order_id, "l": last_qty,
            "z": fmt_qty(inst, rec.filled_lots), "L": last_px, "n": f"{fill.fee:.8f}" if fill else "0",
            "N": inst.quote_ccy if fill else None, "T": now_ms, "t": trade_id, "I": rec.order_id * 2,
            "w": rec.working, "m": bool(fill and fill.liquidity is Liquidity.MAKER), "M": False,
            "O": rec.time_ms, "Z": f"{rec.cum_quote:.8f}", "Y": last_quote, "Q": "0.00000000",
            "W": rec.time_ms, "V": "EXPIRE_MAKER",
        }
