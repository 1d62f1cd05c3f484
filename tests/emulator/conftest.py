"""Helpers to run the Binance-protocol emulator in a test (in-process, 127.0.0.1).

Start it::

    from mmbot.emulator.server import run_emulator

    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        ex = ccxt_client(emu.base_url)          # real ccxt.pro, built by mmbot's adapter
        await ex.load_markets()
        ...
        await ex.close()

or use the ``emulator`` fixture (BTC/USDT at real-time speed). The API key and
secret are ``mmbot.emulator.server.DEFAULT_API_KEY`` / ``DEFAULT_SECRET`` unless
given (CLI: ``--api-key/--secret`` or MMBOT_EXCHANGE__API_KEY/MMBOT_EXCHANGE__SECRET).
Faults at run time: ``await inject(emu.base_url, "gap")``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from mmbot.adapters.ccxt.exchange import ExchangeParams, build_exchange
from mmbot.emulator.server import DEFAULT_API_KEY, DEFAULT_SECRET, RunningEmulator, run_emulator
from tests.conftest import CAPTURE


def ccxt_params(base_url: str, **overrides: Any) -> ExchangeParams:
    values: dict[str, Any] = {
        "id": "binance",
        "sandbox": True,
        "base_url": base_url,
        "api_key": DEFAULT_API_KEY,
        "secret": DEFAULT_SECRET,
        "keepalive_ms": 3000,
        "timeout_s": 5.0,
        "enable_rate_limit": False,
    }
    values.update(overrides)
    return ExchangeParams(**values)


def ccxt_client(base_url: str, **overrides: Any) -> Any:
    """A real ccxt.pro binance object pointed at the emulator (sandbox first, then urls)."""
    return build_exchange(ccxt_params(base_url, **overrides))


async def inject(base_url: str, kind: str, **fields: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(f"{base_url}/admin/fault", json={"kind": kind, **fields}) as r:
        assert r.status == 200, await r.text()
        result: dict[str, Any] = await r.json()
        return result


async def admin(base_url: str, action: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        method = s.get if action == "state" else s.post
        async with method(f"{base_url}/admin/{action}") as r:
            assert r.status == 200, await r.text()
            result: dict[str, Any] = await r.json()
            return result


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float, what: str) -> float:
    """Poll ``condition`` every 20 ms; return the seconds it took; fail after ``timeout_s``."""
    start = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        yield emu
