"""Sandbox end-to-end helpers: the emulator in-process (inspectable), the daemon as a subprocess.

The daemon is the real CLI (``python -m mmbot run --mode sandbox``) talking real
ccxt to the emulator on 127.0.0.1; the test reads the emulator's account directly
(open orders, every order ever placed, balances) to check what reached the venue.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mmbot.emulator.server import RunningEmulator, run_emulator
from tests.conftest import CAPTURE, MMBOT

API_KEY = "sbx-key-" + secrets.token_hex(6)
SECRET = "sbx-secret-" + secrets.token_hex(12)
SPEED = 3.0


@pytest.fixture
async def emu() -> AsyncIterator[RunningEmulator]:
    async with run_emulator(CAPTURE, port=0, speed=SPEED, api_key=API_KEY, secret=SECRET, slow_ms=3000.0, skew_ms=15000.0) as running:
        yield running


def sandbox_env(clean_env: dict[str, str], base_url: str, **extra: str) -> dict[str, str]:
    env = dict(clean_env)
    env.update(
        {
            "MMBOT_EXCHANGE__BASE_URL": base_url,
            "MMBOT_EXCHANGE__API_KEY": API_KEY,
            "MMBOT_EXCHANGE__SECRET": SECRET,
            "MMBOT_EXCHANGE__TIMEOUT_S": "2",
            "MMBOT_EXCHANGE__WATCH_TIMEOUT_S": "3",
            "MMBOT_EXCHANGE__KEEPALIVE_MS": "5000",
            "MMBOT_EXCHANGE__RECONCILE_INTERVAL_S": "2",
            "MMBOT_EXCHANGE__DOWN_GRACE_S": "1",
            "MMBOT_LOG__FORMAT": "json",
            # The emulator replays 3x real time: re-quote less often so the order budget holds.
            "MMBOT_STRATEGY__MIN_REQUOTE_INTERVAL_MS": "500",
            "MMBOT_STRATEGY__REQUOTE_TOLERANCE_TICKS": "2",
        }
    )
    env.update(extra)
    return env


@dataclass
class Daemon:
    proc: asyncio.subprocess.Process
    out: Path
    err: Path
    summary: Path

    async def wait(self, timeout_s: float) -> int:
        async with asyncio.timeout(timeout_s):
            return await self.proc.wait()

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.summary.read_text())
        return data

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.err.read_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    async def metrics_port(self, timeout_s: float = 30.0) -> int:
        async with asyncio.timeout(timeout_s):
            while True:
                for rec in self.log_lines():
                    if rec.get("event") == "metrics_listening":
                        return int(rec["port"])
                await asyncio.sleep(0.1)


async def start_daemon(env: dict[str, str], tmp: Path, name: str, *args: str) -> Daemon:
    out, err, summary = tmp / f"{name}.out", tmp / f"{name}.err", tmp / f"{name}.summary.json"
    proc = await asyncio.create_subprocess_exec(
        *MMBOT, "run", "--mode", "sandbox", "--summary-json", str(summary), *args,
        env=env, stdout=out.open("wb"), stderr=err.open("wb"), cwd=str(tmp),
    )  # fmt: skip
    return Daemon(proc, out, err, summary)


def open_orders(emu: RunningEmulator) -> list[Any]:
    return [r for r in emu.emulator.account.orders.values() if r.is_open]


def base_total(emu: RunningEmulator, asset: str = "BTC") -> Decimal:
    acc = emu.emulator.account
    return acc.free[asset] + acc.locked[asset]


async def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.1)
    assert condition(), what


async def inject(emu: RunningEmulator, kind: str, **fields: Any) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{emu.base_url}/admin/fault", json={"kind": kind, **fields}) as r:
        assert r.status == 200, await r.text()


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        return await r.text()


def files_containing(root: Path, needle: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(str(path))
    return hits

