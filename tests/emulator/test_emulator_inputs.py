"""Input validation of the emulator (issue 29, build item 8), over loopback against the real app.

* admin fault inputs (query string and JSON body) and scheduled ``--faults`` specs:
  finite, bounded numbers or HTTP 400 / ValueError, and nothing activated;
* a fault of a kind already running is replaced (shorter or longer);
* ``kind=none`` and ``DELETE /admin/fault`` clear every fault and what it set;
* integer REST / ws-api parameters: Binance-style 400s, ``depth`` limit capped at 5000,
  never a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import subprocess
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from mmbot.emulator.faults import FaultSpec, parse_fault_specs
from mmbot.emulator.server import DEFAULT_API_KEY, DEFAULT_SECRET, RunningEmulator
from tests.conftest import MMBOT
from tests.emulator.conftest import inject, wait_until

MSG_LIMIT_ILLEGAL = "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."
MSG_LIMIT_MISSING = "Mandatory parameter 'limit' was not sent, was empty/null, or malformed."


async def post_fault(base_url: str, query: str = "", json: Any = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(f"{base_url}/admin/fault{query}", json=json) as r:
        return r.status, await r.json()


async def get(base_url: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{base_url}{path}") as r:
        return r.status, await r.json(content_type=None)


async def signed_get(base_url: str, path: str, query: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base_url}/api/v3/time") as r:
            now = (await r.json())["serverTime"]
        q = f"{query}&timestamp={now}" if query else f"timestamp={now}"
        sig = hmac.new(DEFAULT_SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
        async with s.get(f"{base_url}{path}?{q}&signature={sig}", headers={"X-MBX-APIKEY": DEFAULT_API_KEY}) as r:
            return r.status, await r.json(content_type=None)


async def assert_nothing_active(emu: RunningEmulator) -> None:
    status, _ = await get(emu.base_url, "/api/v3/ping")
    assert status == 200
    assert emu.emulator.state()["faults_active"] == {}
    assert emu.emulator.state()["faults_injected"] == {}


# --- 1. admin fault inputs ---------------------------------------------------------------

BAD_DURATIONS = ["nan", "NaN", "1e999", "inf", "-inf", "-5", "0", "abc", "", "3601", "86401", "1e300"]


@pytest.mark.parametrize("raw", BAD_DURATIONS)
async def test_admin_fault_when_query_duration_bad_then_400_naming_it_and_nothing_active(
    emulator: RunningEmulator, raw: str
) -> None:
    status, body = await post_fault(emulator.base_url, f"?kind=http5xx&duration_s={quote(raw)}")
    assert status == 400, body
    assert body["param"] == "duration_s" and body["value"] == raw
    assert "duration_s" in body["error"] and "3600" in body["error"]
    await assert_nothing_active(emulator)


@pytest.mark.parametrize("raw", ["nan", "inf", "1e999", -1, 0, 1e6, 3600.5, True, "x", [5]])
async def test_admin_fault_when_json_duration_bad_then_400_naming_it_and_nothing_active(
    emulator: RunningEmulator, raw: Any
) -> None:
    status, body = await post_fault(emulator.base_url, json={"kind": "http5xx", "duration_s": raw})
    assert status == 400, body
    assert body["param"] == "duration_s" and body["value"] == (raw if isinstance(raw, str) else str(raw))
    await assert_nothing_active(emulator)


async def test_admin_fault_when_json_number_overflows_then_400_and_nothing_active(emulator: RunningEmulator) -> None:
    # 1e999 as a bare JSON number is not a double: the body itself is refused.
    async with aiohttp.ClientSession() as s, s.post(
        f"{emulator.base_url}/admin/fault", data=b'{"kind": "http5xx", "duration_s": 1e999}',
        headers={"Content-Type": "application/json"},
    ) as r:
        status = r.status
    assert status == 400
    await assert_nothing_active(emulator)


@pytest.mark.parametrize(
    ("kind", "param", "raw"),
    [
        ("slow", "delay_ms", "nan"), ("slow", "delay_ms", "inf"), ("slow", "delay_ms", "1e999"),
        ("slow", "delay_ms", "-1"), ("slow", "delay_ms", "60001"), ("slow", "delay_ms", "abc"),
        ("skew", "skew_ms", "nan"), ("skew", "skew_ms", "-inf"), ("skew", "skew_ms", "3600001"),
    ],
)
async def test_admin_fault_when_value_ms_bad_then_400_naming_it_and_nothing_active(
    emulator: RunningEmulator, kind: str, param: str, raw: str
) -> None:
    for form in ("query", "json"):
        if form == "query":
            status, body = await post_fault(emulator.base_url, f"?kind={kind}&duration_s=5&{param}={quote(raw)}")
        else:
            status, body = await post_fault(emulator.base_url, json={"kind": kind, "duration_s": 5, param: raw})
        assert status == 400, (form, body)
        assert body["param"] == param and body["value"] == raw, form
    await assert_nothing_active(emulator)
    assert emulator.emulator.faults.slow_ms == 3000.0 and emulator.emulator.faults.skew_ms == 15000.0


async def test_admin_fault_when_in_bounds_then_injected(emulator: RunningEmulator) -> None:
    status, body = await post_fault(emulator.base_url, "?kind=slow&duration_s=3600&delay_ms=1")
    assert status == 200, body
    assert 3590 < body["active"]["slow"] <= 3600 and emulator.emulator.faults.slow_ms == 1.0


@pytest.mark.parametrize(
    "spec", ["http5xx@0:nan", "http5xx@0:inf", "http5xx@0:1e999", "http5xx@0:-3", "http5xx@0:3601",
             "http5xx@nan:5", "http5xx@inf:5", "gap@1e999", "gap@604801"],
)
def test_scheduled_fault_when_time_not_finite_or_out_of_bounds_then_value_error(spec: str) -> None:
    with pytest.raises(ValueError, match="_s"):
        parse_fault_specs(spec)


def test_fault_spec_when_built_directly_with_bad_numbers_then_value_error() -> None:
    for kwargs in ({"duration_s": float("nan")}, {"duration_s": float("inf")}, {"at_s": float("nan"), "duration_s": 1.0},
                   {"duration_s": 1.0, "value_ms": float("nan")}):
        with pytest.raises(ValueError):
            FaultSpec(kind="slow", **kwargs)


def test_emulate_cli_when_fault_duration_infinite_then_exit_2_with_one_line(clean_env: dict[str, str]) -> None:
    result = subprocess.run([*MMBOT, "emulate", "--faults", "http5xx@0:inf"], capture_output=True, text=True,
                            env=clean_env, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "duration_s" in result.stderr and "Traceback" not in result.stderr


# --- 2. a new activation replaces the running fault of its kind ---------------------------------

async def test_admin_fault_when_shorter_fault_of_same_kind_then_it_replaces_the_longer(emulator: RunningEmulator) -> None:
    await inject(emulator.base_url, "http5xx", duration_s=600)
    replaced = await inject(emulator.base_url, "http5xx", duration_s=0.3)
    assert replaced["active"]["http5xx"] <= 0.3
    await wait_until(lambda: not emulator.emulator.faults.is_active("http5xx", emulator.emulator.mono()), 3, "short fault over")
    status, _ = await get(emulator.base_url, "/api/v3/ping")
    assert status == 200


async def test_admin_fault_when_longer_fault_of_same_kind_then_it_extends(emulator: RunningEmulator) -> None:
    await inject(emulator.base_url, "reject", duration_s=1)
    extended = await inject(emulator.base_url, "reject", duration_s=100)
    assert 99 < extended["active"]["reject"] <= 100


# --- 3. clearing faults -----------------------------------------------------------------------

async def _inject_everything(emu: RunningEmulator) -> None:
    for kind, fields in (("http5xx", {"duration_s": 600}), ("reject", {"duration_s": 600}),
                         ("freeze", {"duration_s": 600}), ("slow", {"duration_s": 600, "delay_ms": 50}),
                         ("skew", {"duration_s": 600, "skew_ms": 20000}), ("gap", {})):
        await inject(emu.base_url, kind, **fields)
    assert emu.emulator.account.reject_orders
    assert (await get(emu.base_url, "/api/v3/ping"))[0] == 503


async def _assert_cleared(emu: RunningEmulator, ws: aiohttp.ClientWebSocketResponse) -> None:
    e = emu.emulator
    assert e.state()["faults_active"] == {}
    assert not e.account.reject_orders and e.faults.pending_gaps == 0 and not e._gap_symbols
    assert e.skew_ms() == 0 and e.faults.slow_ms == 3000.0 and e.faults.skew_ms == 15000.0
    assert (await get(emu.base_url, "/api/v3/ping"))[0] == 200
    # the frozen stream resumes
    msg = await ws.receive_json(timeout=5)
    assert msg.get("e") == "depthUpdate"


async def _frozen_socket(s: aiohttp.ClientSession, emu: RunningEmulator) -> aiohttp.ClientWebSocketResponse:
    ws = await s.ws_connect(f"{emu.ws_url}/ws/btcusdt@depth@100ms")
    await ws.receive_json(timeout=5)  # flowing before the freeze
    await _inject_everything(emu)
    await asyncio.sleep(0.3)
    while not ws.closed:  # drain what was queued before the freeze
        try:
            await ws.receive_json(timeout=0.3)
        except TimeoutError:
            break
    return ws


async def test_admin_fault_when_kind_none_then_all_faults_and_their_state_cleared(emulator: RunningEmulator) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await _frozen_socket(s, emulator)
        status, body = await post_fault(emulator.base_url, "?kind=none")
        assert status == 200, body
        assert set(body["cleared"]) == {"http5xx", "reject", "freeze", "slow", "skew"} and body["active"] == {}
        await _assert_cleared(emulator, ws)
        await ws.close()


async def test_admin_fault_when_delete_then_all_faults_and_their_state_cleared(emulator: RunningEmulator) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await _frozen_socket(s, emulator)
        async with s.delete(f"{emulator.base_url}/admin/fault") as r:
            status, body = r.status, await r.json()
        assert status == 200, body
        assert body["active"] == {}
        await _assert_cleared(emulator, ws)
        await ws.close()


@pytest.mark.parametrize("form", ["query", "json"])
async def test_admin_fault_when_kind_unknown_then_400_listing_allowed_kinds(emulator: RunningEmulator, form: str) -> None:
    if form == "query":
        status, body = await post_fault(emulator.base_url, "?kind=meltdown&duration_s=5")
    else:
        status, body = await post_fault(emulator.base_url, json={"kind": "meltdown", "duration_s": 5})
    assert status == 400
    assert body["param"] == "kind" and body["value"] == "meltdown"
    assert "none" in body["allowed"] and "http5xx" in body["allowed"] and "gap" in body["allowed"]
    await assert_nothing_active(emulator)


# --- 4. integer REST / ws-api parameters ---------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "code", "msg"),
    [
        ("-1", -1100, MSG_LIMIT_ILLEGAL), ("abc", -1100, MSG_LIMIT_ILLEGAL), ("1.5", -1100, MSG_LIMIT_ILLEGAL),
        ("+5", -1100, MSG_LIMIT_ILLEGAL), ("1_0", -1100, MSG_LIMIT_ILLEGAL), (" 5", -1100, MSG_LIMIT_ILLEGAL),
        ("\u0665", -1100, MSG_LIMIT_ILLEGAL),  # an Arabic-Indic digit: int() would take it
        ("", -1102, MSG_LIMIT_MISSING), ("0", -1102, MSG_LIMIT_MISSING), ("000", -1102, MSG_LIMIT_MISSING),
    ],
)
async def test_depth_when_limit_bad_then_400_binance_error(emulator: RunningEmulator, raw: str, code: int, msg: str) -> None:
    status, body = await get(emulator.base_url, f"/api/v3/depth?symbol=BTCUSDT&limit={quote(raw)}")
    assert (status, body) == (400, {"code": code, "msg": msg})


@pytest.mark.parametrize("raw", ["5000", "5001", str(10**23), "9" * 5000])
async def test_depth_when_limit_huge_then_capped_at_5000(emulator: RunningEmulator, raw: str) -> None:
    status, body = await get(emulator.base_url, f"/api/v3/depth?symbol=BTCUSDT&limit={raw}")
    assert status == 200, body
    assert 0 < len(body["bids"]) <= 5000 and 0 < len(body["asks"]) <= 5000


async def test_depth_when_limit_small_then_that_many_levels(emulator: RunningEmulator) -> None:
    status, body = await get(emulator.base_url, "/api/v3/depth?symbol=BTCUSDT&limit=3")
    assert status == 200 and len(body["bids"]) == 3 and len(body["asks"]) == 3


@pytest.mark.parametrize(
    ("path", "query", "param"),
    [
        ("/api/v3/myTrades", "symbol=BTCUSDT&limit=-5", "limit"),
        ("/api/v3/myTrades", "symbol=BTCUSDT&limit=abc", "limit"),
        ("/api/v3/myTrades", "symbol=BTCUSDT&fromId=1.5", "fromId"),
        ("/api/v3/myTrades", "symbol=BTCUSDT&startTime=-1", "startTime"),
        ("/api/v3/myTrades", "symbol=BTCUSDT&endTime=x", "endTime"),
        ("/api/v3/myTrades", "symbol=BTCUSDT&orderId=nan", "orderId"),
        ("/api/v3/order", "symbol=BTCUSDT&orderId=-1", "orderId"),
        ("/api/v3/order", "symbol=BTCUSDT&orderId=1e3", "orderId"),
        ("/api/v3/openOrders", "symbol=BTCUSDT&recvWindow=abc", "recvWindow"),
        ("/api/v3/openOrders", "symbol=BTCUSDT&recvWindow=-1", "recvWindow"),
    ],
)
async def test_signed_endpoint_when_integer_param_bad_then_400_naming_it(
    emulator: RunningEmulator, path: str, query: str, param: str
) -> None:
    status, body = await signed_get(emulator.base_url, path, query)
    assert status == 400, body
    assert body == {"code": -1100, "msg": f"Illegal characters found in parameter '{param}'; legal range is '^[0-9]{{1,20}}$'."}


async def test_signed_endpoint_when_integer_params_good_then_200(emulator: RunningEmulator) -> None:
    status, body = await signed_get(emulator.base_url, "/api/v3/myTrades", f"symbol=BTCUSDT&limit={10**23}&fromId=0&recvWindow=5000")
    assert (status, body) == (200, [])
    status, body = await signed_get(emulator.base_url, "/api/v3/order", f"symbol=BTCUSDT&orderId={10**20 - 1}")
    assert (status, body["code"]) == (400, -2013)  # 20 digits: legal, no such order
    status, body = await signed_get(emulator.base_url, "/api/v3/order", f"symbol=BTCUSDT&orderId={10**23}")
    assert (status, body["code"]) == (400, -1100)  # more than Binance's 20 digits, and no cap for an id
    status, body = await signed_get(emulator.base_url, "/api/v3/myTrades", "symbol=BTCUSDT&limit=0")
    assert (status, body["code"]) == (400, -1102)


def _ws_sign(params: dict[str, Any]) -> dict[str, Any]:
    def text(v: Any) -> str:
        return v if isinstance(v, str) else orjson.dumps(v).decode()

    payload = "&".join(f"{k}={text(params[k])}" for k in sorted(params))
    return {**params, "signature": hmac.new(DEFAULT_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()}


async def test_ws_api_when_params_bad_then_error_replies_and_connection_stays_usable(emulator: RunningEmulator) -> None:
    now = emulator.emulator.now_ms()
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{emulator.ws_url}/ws-api/v3") as ws:
        requests: list[dict[str, Any]] = [
            {"id": 1, "method": "order.status", "params": [1, 2]},
            {"id": 2, "method": "myTrades", "params": _ws_sign({"apiKey": DEFAULT_API_KEY, "symbol": "BTCUSDT", "timestamp": now, "limit": [1]})},
            {"id": 3, "method": "myTrades", "params": _ws_sign({"apiKey": DEFAULT_API_KEY, "symbol": "BTCUSDT", "timestamp": now, "limit": -3})},
            {"id": 4, "method": "order.status", "params": _ws_sign({"apiKey": DEFAULT_API_KEY, "symbol": "BTCUSDT", "timestamp": now, "orderId": True})},
            {"id": 5, "method": "account.status", "params": _ws_sign({"apiKey": DEFAULT_API_KEY, "timestamp": float(now) + 0.5})},
            {"id": 6, "method": "ping"},
        ]
        replies = {}
        for req in requests:
            await ws.send_str(orjson.dumps(req).decode())
            reply = await ws.receive_json(timeout=5)
            replies[reply["id"]] = reply
    assert replies[1]["status"] == 400 and replies[1]["error"]["code"] == -1102
    assert replies[2]["error"] == {"code": -1100, "msg": "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."}
    assert replies[3]["error"]["code"] == -1100 and "'limit'" in replies[3]["error"]["msg"]
    assert replies[4]["error"]["code"] == -1100 and "'orderId'" in replies[4]["error"]["msg"]
    assert replies[5]["error"]["code"] == -1100 and "'timestamp'" in replies[5]["error"]["msg"]
    assert replies[6] == {"id": 6, "status": 200, "result": {}}


async def test_market_ws_when_subscribe_params_not_a_list_then_error_reply_and_socket_open(emulator: RunningEmulator) -> None:
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{emulator.ws_url}/ws") as ws:
        await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": 5, "id": 1}).decode())
        bad = await ws.receive_json(timeout=5)
        await ws.send_str(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}).decode())
        listed = await ws.receive_json(timeout=5)
    assert bad["id"] == 1 and "error" in bad
    assert listed == {"result": [], "id": 2}


async def test_order_when_price_negative_then_price_filter_and_nothing_locked(emulator: RunningEmulator) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{emulator.base_url}/api/v3/time") as r:
            now = (await r.json())["serverTime"]
        body = f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=-1&timestamp={now}"
        sig = hmac.new(DEFAULT_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        async with s.post(f"{emulator.base_url}/api/v3/order", data=f"{body}&signature={sig}",
                          headers={"X-MBX-APIKEY": DEFAULT_API_KEY, "Content-Type": "application/x-www-form-urlencoded"}) as r:
            status, reply = r.status, await r.json()
    assert (status, reply) == (400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"})
    assert emulator.emulator.account.orders == {}
