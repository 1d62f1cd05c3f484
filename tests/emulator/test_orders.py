"""Order path of the emulator, driven by real ccxt (REST and ws-api)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from decimal import Decimal

import aiohttp
import ccxt
import pytest

from mmbot.emulator.server import RunningEmulator, run_emulator
from tests.conftest import CAPTURE
from tests.emulator.conftest import ccxt_client, inject, wait_until


async def test_load_markets_when_emulator_serves_exchange_info_then_filters_map_to_precision(emulator: RunningEmulator) -> None:
    ex = ccxt_client(emulator.base_url)
    try:
        await ex.load_markets()
        market = ex.market("BTC/USDT")
        book = await ex.fetch_order_book("BTC/USDT", 5)
        ticker = await ex.fetch_ticker("BTC/USDT")
        server_time = await ex.fetch_time()
        mini = await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)  # <s>@miniTicker, every second
    finally:
        await ex.close()
    assert list(ex.markets) == ["BTC/USDT"]
    assert market["precision"]["price"] == 0.01 and market["precision"]["amount"] == 0.00001
    assert market["limits"]["cost"]["min"] == 5.0
    assert len(book["bids"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
    assert book["nonce"] == emulator.emulator.markets["BTCUSDT"].last_update_id or book["nonce"] > 0
    assert ticker["bid"] is not None and ticker["ask"] is not None
    assert server_time > 1_600_000_000_000
    assert mini["symbol"] == "BTC/USDT" and mini["last"] is not None


async def test_rest_order_lifecycle_when_post_only_rests_then_query_cancel_and_balance_agree(emulator: RunningEmulator) -> None:
    ex = ccxt_client(emulator.base_url)
    try:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        price = book["bids"][0][0] - 50
        order = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"postOnly": True, "clientOrderId": "mmb-test-1"})
        open_orders = await ex.fetch_open_orders("BTC/USDT")
        fetched = await ex.fetch_order(order["id"], "BTC/USDT")
        balance = await ex.fetch_balance()
        cancelled = await ex.cancel_order(order["id"], "BTC/USDT")
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order(order["id"], "BTC/USDT")
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order("999999", "BTC/USDT")
        after = await ex.fetch_balance()
    finally:
        await ex.close()
    assert order["status"] == "open" and order["clientOrderId"] == "mmb-test-1" and order["postOnly"] is True
    assert [o["id"] for o in open_orders] == [order["id"]]
    assert fetched["status"] == "open" and fetched["price"] == price
    assert Decimal(str(balance["USDT"]["used"])) == Decimal(str(price)) * Decimal("0.001")
    assert cancelled["status"] == "canceled"
    assert after["USDT"]["used"] == 0 and after["USDT"]["free"] == 1_000_000


async def test_create_order_when_post_only_would_cross_then_order_immediately_fillable(emulator: RunningEmulator) -> None:
    ex = ccxt_client(emulator.base_url)
    try:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        with pytest.raises(ccxt.OrderImmediatelyFillable):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.001, book["asks"][0][0] + 1, {"postOnly": True})
        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order("BTC/USDT", "limit", "sell", 100, book["asks"][0][0] + 100, {"postOnly": True})
        with pytest.raises(ccxt.BadRequest):  # -1013 Filter failure: NOTIONAL (ccxt: BadRequest)
            await ex.create_order("BTC/USDT", "limit", "buy", 0.00002, book["bids"][0][0] - 10)
    finally:
        await ex.close()


async def test_market_order_when_sent_then_filled_at_book_prices_and_in_my_trades(emulator: RunningEmulator) -> None:
    ex = ccxt_client(emulator.base_url)
    try:
        await ex.load_markets()
        order = await ex.create_order("BTC/USDT", "market", "buy", 0.002)
        trades = await ex.fetch_my_trades("BTC/USDT")
        balance = await ex.fetch_balance()
    finally:
        await ex.close()
    assert order["status"] == "closed" and order["filled"] == 0.002
    assert sum(t["amount"] for t in trades) == pytest.approx(0.002)
    assert all(t["takerOrMaker"] == "taker" for t in trades)
    assert balance["BTC"]["free"] == pytest.approx(10.002)


async def test_ws_api_when_order_placed_and_cancelled_then_execution_reports_pushed(emulator: RunningEmulator) -> None:
    ex = ccxt_client(emulator.base_url, options={"ws": {"cost": 1}})
    try:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        watcher = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
        await wait_until(lambda: any(c.user_data for c in emulator.emulator.conns), 5, "user data subscription")
        placed = await ex.create_order_ws("BTC/USDT", "limit", "sell", 0.001, book["asks"][0][0] + 20, {"postOnly": True})
        pushed = await asyncio.wait_for(watcher, 5)
        status = await ex.fetch_order_ws(placed["id"], "BTC/USDT")
        open_ws = await ex.fetch_open_orders_ws("BTC/USDT")
        cancelled = await ex.cancel_order_ws(placed["id"], "BTC/USDT")
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order_ws(placed["id"], "BTC/USDT")
        balance = await ex.fetch_balance_ws()
    finally:
        await ex.close()
    assert placed["status"] == "open"
    assert [o["id"] for o in pushed] == [placed["id"]]  # ccxt updates the cached order in place
    assert status["status"] == "open" and [o["id"] for o in open_ws] == [placed["id"]]
    assert cancelled["status"] == "canceled"
    # ccxt 4.5.90 parses account.status without a market type and returns empty totals
    # for spot; the emulator's answer itself is right.
    assert {"asset": "BTC", "free": "10.00000000", "locked": "0.00000000"} in balance["info"]["balances"]


async def test_resting_bid_when_market_trades_through_then_filled_by_replay() -> None:
    async with run_emulator(CAPTURE, port=0, speed=5.0, fill_model="touch") as emu:
        ex = ccxt_client(emu.base_url, options={"ws": {"cost": 1}})
        try:
            await ex.load_markets()
            watcher = asyncio.ensure_future(ex.watch_my_trades("BTC/USDT"))
            await wait_until(lambda: any(c.user_data for c in emu.emulator.conns), 5, "user data subscription")
            for attempt in range(5):
                # The replay runs at 5x: the touch can move between the book and the order,
                # and a post-only bid at a stale best bid may then be refused as taking.
                book = await ex.fetch_order_book("BTC/USDT", 5)
                try:
                    order = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, book["bids"][0][0], {"postOnly": True})
                    break
                except ccxt.OrderImmediatelyFillable:
                    if attempt == 4:
                        raise
            fills = await asyncio.wait_for(watcher, 30)
            closed = await ex.fetch_order(order["id"], "BTC/USDT")
        finally:
            await ex.close()
    assert fills[0]["order"] == order["id"] and fills[0]["takerOrMaker"] == "maker"
    assert closed["filled"] > 0


async def test_signed_request_when_secret_wrong_then_authentication_error(emulator: RunningEmulator) -> None:
    ex = ccxt_client(emulator.base_url, secret="not-the-secret")
    try:
        await ex.load_markets()
        with pytest.raises(ccxt.AuthenticationError):
            await ex.fetch_balance()
    finally:
        await ex.close()


async def test_rest_signature_when_checked_by_hand_then_raw_query_is_signed(emulator: RunningEmulator) -> None:
    query = "symbol=BTCUSDT&timestamp=%d&recvWindow=5000"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{emulator.base_url}/api/v3/time") as r:
            now = (await r.json())["serverTime"]
        q = query % now
        sig = hmac.new(b"mmbot-emulator-secret", q.encode(), hashlib.sha256).hexdigest()
        async with s.get(f"{emulator.base_url}/api/v3/openOrders?{q}&signature={sig}", headers={"X-MBX-APIKEY": "mmbot-emulator-key"}) as r:
            ok = (r.status, await r.json())
        async with s.get(f"{emulator.base_url}/api/v3/openOrders?{q}&signature={'0' * 64}", headers={"X-MBX-APIKEY": "mmbot-emulator-key"}) as r:
            bad = (r.status, await r.json())
        async with s.get(f"{emulator.base_url}/sapi/v1/capital/config/getall") as r:
            unknown = r.status
    assert ok == (200, [])
    assert bad == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    assert unknown == 404


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        ("http429", {"duration_s": 30}, ccxt.DDoSProtection),
        ("http418", {"duration_s": 30}, ccxt.DDoSProtection),
        ("http5xx", {"duration_s": 30}, ccxt.OperationFailed),
        ("reject", {"duration_s": 30}, ccxt.InvalidOrder),
        ("skew", {"duration_s": 30, "skew_ms": 20000}, ccxt.InvalidNonce),
        ("slow", {"duration_s": 30, "delay_ms": 2500}, ccxt.RequestTimeout),
    ],
)
async def test_order_path_fault_when_injected_then_ccxt_raises_mapped_error(
    emulator: RunningEmulator, kind: str, fields: dict[str, float], expected: type[Exception]
) -> None:
    ex = ccxt_client(emulator.base_url, timeout_s=1.0)
    try:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        await inject(emulator.base_url, kind, **fields)
        with pytest.raises(expected):
            await ex.create_order("BTC/USDT", "limit", "buy", 0.001, book["bids"][0][0] - 20, {"postOnly": True})
    finally:
        await ex.close()


async def test_orders_when_placed_during_and_after_skew_then_live_at_once_and_cancels_take_effect(emulator: RunningEmulator) -> None:
    """The skew fault shifts the clocks the server reports, not the matching engine's.

    Regression: orders sent while the clock was skewed entered the SimVenue 15 s in
    the future, and every later command queued behind them (FIFO), so an order placed
    and cancelled after the fault was still pending when its cancel was answered, and
    filled later: the account and the client then disagreed about inventory.
    """
    ex = ccxt_client(emulator.base_url)
    venue = emulator.emulator.markets["BTCUSDT"].venue
    try:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        await inject(emulator.base_url, "skew", duration_s=1.5, skew_ms=15000)
        await ex.load_time_difference()
        during = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, book["bids"][0][0] - 30, {"postOnly": True})
        live_during = str(during["id"]) in venue.open_order_ids()
        await asyncio.sleep(1.6)
        await ex.load_time_difference()
        after = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, book["bids"][0][0] - 40, {"postOnly": True})
        live_after = str(after["id"]) in venue.open_order_ids()
        await ex.cancel_order(after["id"], "BTC/USDT")
        await ex.cancel_order(during["id"], "BTC/USDT")
    finally:
        await ex.close()
    assert live_during and live_after
    assert venue.open_order_ids() == [] and venue.next_due_ns is None
    assert all(not r.is_open for r in emulator.emulator.account.orders.values())


async def test_ws_api_when_connection_dropped_then_next_watch_resubscribes_user_data(emulator: RunningEmulator) -> None:
    ex = ccxt_client(emulator.base_url, options={"ws": {"cost": 1}})
    try:
        await ex.load_markets()
        book = await ex.fetch_order_book("BTC/USDT", 5)
        first = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
        await wait_until(lambda: any(c.user_data for c in emulator.emulator.conns), 5, "user data subscription")
        await inject(emulator.base_url, "drop")
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(first, 5)
        second = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
        await wait_until(lambda: any(c.user_data for c in emulator.emulator.conns), 5, "user data resubscribed")
        placed = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, book["bids"][0][0] - 30, {"postOnly": True})
        pushed = await asyncio.wait_for(second, 5)
    finally:
        await ex.close()
    assert [o["id"] for o in pushed] == [placed["id"]]


async def test_emulator_when_faults_given_at_start_then_injected_on_schedule() -> None:
    from mmbot.emulator.faults import parse_fault_specs

    async with run_emulator(CAPTURE, port=0, faults=parse_fault_specs("gap@0.5,http429@0.5:30")) as emu:
        await wait_until(lambda: emu.emulator.markets["BTCUSDT"].skipped_updates == 1, 5, "one skipped depth update")
        async with aiohttp.ClientSession() as s, s.get(f"{emu.base_url}/api/v3/time") as r:
            status, body = r.status, await r.json()
        state = emu.emulator.state()
    assert status == 429 and body["code"] == -1003
    assert state["faults_injected"] == {"gap": 1, "http429": 1} and "http429" in state["faults_active"]
