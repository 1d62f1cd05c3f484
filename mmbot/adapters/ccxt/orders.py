"""ccxt order-path calls, each under a timeout, with errors translated to outcomes.

Binance spot post-only orders are LIMIT_MAKER (ccxt: ``params={'postOnly': True}``).
Client order ids go in ``newClientOrderId`` (ccxt param ``clientOrderId``).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import ccxt

from mmbot.adapters.ccxt.errors import Outcome, classify
from mmbot.domain.risk import VenueOutcome
from mmbot.errors import VenueError


class VenueCallError(VenueError):
    """A ccxt call failed; ``outcome`` says what it means for us.

    Callers classify it by ``outcome.kind`` (retryable or not, reject, back off), never
    by its class: a VenueError, not a TemporaryVenueError, so no ``except
    TemporaryVenueError`` retries an order call that must not be repeated blindly.
    """

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


async def call(coro: Any, timeout_s: float) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            return await coro
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being cancelled: never swallow it
        # ccxt cancelled the call's future itself (its sockets were closed by
        # ``close()``/``close_ws_clients()``): the connection is gone, not our task.
        raise VenueCallError(classify(ccxt.NetworkError("connection closed while waiting"))) from None
    except Exception as exc:  # every ccxt (and ccxt-bug) exception becomes an outcome
        # now_ms: a 418's "banned until <ms>" becomes the retry-after.
        raise VenueCallError(classify(exc, now_ms=time.time_ns() // 1_000_000)) from exc


def fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


async def create_limit(
    exchange: Any,
    symbol: str,
    side: str,
    amount: Decimal,
    price: Decimal,
    client_order_id: str,
    *,
    post_only: bool,
    use_ws: bool,
    timeout_s: float,
) -> dict[str, Any]:
    params: dict[str, Any] = {"clientOrderId": client_order_id}
    if post_only:
        params["postOnly"] = True
    amount_f = float(exchange.amount_to_precision(symbol, float(amount)))
    price_f = float(exchange.price_to_precision(symbol, float(price)))
    if use_ws and hasattr(exchange, "create_order_ws"):
        coro = exchange.create_order_ws(symbol, "limit", side, amount_f, price_f, params)
    else:
        coro = exchange.create_order(symbol, "limit", side, amount_f, price_f, params)
    result: dict[str, Any] = await call(coro, timeout_s)
    return result


async def create_market(exchange: Any, symbol: str, side: str, amount: Decimal, client_order_id: str, *, timeout_s: float) -> dict[str, Any]:
    amount_f = float(exchange.amount_to_precision(symbol, float(amount)))
    result: dict[str, Any] = await call(
        exchange.create_order(symbol, "market", side, amount_f, None, {"clientOrderId": client_order_id}), timeout_s
    )
    return result


async def cancel(exchange: Any, symbol: str, client_order_id: str, *, use_ws: bool, timeout_s: float) -> dict[str, Any]:
    params = {"clientOrderId": client_order_id, "origClientOrderId": client_order_id}
    if use_ws and hasattr(exchange, "cancel_order_ws"):
        coro = exchange.cancel_order_ws(None, symbol, params)
    else:
        coro = exchange.cancel_order(None, symbol, params)
    result: dict[str, Any] = await call(coro, timeout_s)
    return result


async def cancel_all(exchange: Any, symbol: str, *, timeout_s: float) -> list[dict[str, Any]]:
    result = await call(exchange.cancel_all_orders(symbol), timeout_s)
    return list(result or [])


async def fetch_by_client_id(exchange: Any, symbol: str, client_order_id: str, *, timeout_s: float) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = await call(
            exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id, "origClientOrderId": client_order_id}), timeout_s
        )
        return result
    except VenueCallError as exc:
        if exc.outcome.kind is VenueOutcome.ORDER_NOT_FOUND:
            return None
        raise


async def fetch_open_orders(exchange: Any, symbol: str, *, timeout_s: float) -> list[dict[str, Any]]:
    return list(await call(exchange.fetch_open_orders(symbol), timeout_s) or [])


async def fetch_my_trades(exchange: Any, symbol: str, since_ms: int | None, *, timeout_s: float) -> list[dict[str, Any]]:
    return list(await call(exchange.fetch_my_trades(symbol, since_ms), timeout_s) or [])


async def fetch_order_trades(exchange: Any, symbol: str, order_id: str, *, timeout_s: float) -> list[dict[str, Any]]:
    """Every trade of one order (Binance ``GET /api/v3/myTrades?orderId=``): exact, no time window."""
    return list(await call(exchange.fetch_order_trades(order_id, symbol), timeout_s) or [])


async def fetch_balance(exchange: Any, *, timeout_s: float) -> dict[str, Any]:
    result: dict[str, Any] = await call(exchange.fetch_balance(), timeout_s)
    return result


async def watch_orders(exchange: Any, symbol: str | None, *, timeout_s: float) -> list[dict[str, Any]]:
    return list(await call(exchange.watch_orders(symbol), timeout_s) or [])


async def watch_my_trades(exchange: Any, symbol: str | None, *, timeout_s: float) -> list[dict[str, Any]]:
    return list(await call(exchange.watch_my_trades(symbol), timeout_s) or [])


async def watch_balance(exchange: Any, *, timeout_s: float) -> dict[str, Any]:
    result: dict[str, Any] = await call(exchange.watch_balance(), timeout_s)
    return result
