"""Priority 2 of issue 33: the emulator applies the venue's hidden ``sim`` settings.

Latency in wall time (entry, cancel, market data) and the queue model's ``prob_power``,
from ``mmbot emulate --config`` as from ``run_emulator``; real ccxt measures them.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from mmbot.emulator.server import run_emulator
from tests.conftest import CAPTURE, MMBOT
from tests.emulator.conftest import ccxt_client


async def _round_trips(**options: object) -> tuple[list[float], list[float], list[float]]:
    """(place: transactTime - send ms, cancel reply - send ms, trade receive - T ms) through real ccxt."""
    async with run_emulator(CAPTURE, port=0, speed=5.0, **options) as emu:  # type: ignore[arg-type]
        ex = ccxt_client(emu.base_url)
        try:
            await ex.load_markets()
            ticker = await ex.fetch_ticker("BTC/USDT")
            price = round(float(ticker["bid"]) * 0.97, 2)
            place, cancel = [], []
            for _ in range(6):
                sent = time.time_ns()
                order = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"timeInForce": "GTC"})
                place.append(order["timestamp"] - sent / 1e6)
                sent = time.time_ns()
                await ex.cancel_order(order["id"], "BTC/USDT")
                cancel.append((time.time_ns() - sent) / 1e6)
            md = []
            while len(md) < 20:
                for trade in await ex.watch_trades("BTC/USDT"):
                    md.append(time.time_ns() / 1e6 - trade["timestamp"])
        finally:
            await ex.close()
        powers = {m.venue.config.prob_power for m in emu.emulator.markets.values()}
        assert powers == {options.get("prob_power", 2.0)}
    return place, cancel, md


async def test_emulator_when_latency_configured_then_orders_and_frames_delayed_in_wall_time() -> None:
    fast = await _round_trips()
    slow = await _round_trips(entry_latency_ms=150.0, cancel_latency_ms=250.0, md_latency_ms=200.0, prob_power=3.0,
                              fill_model="probabilistic")
    med = [statistics.median(x) for x in slow]
    base = [statistics.median(x) for x in fast]

    assert 150.0 <= med[0] < base[0] + 150.0 + 60.0  # the order reached the engine 150 ms after it was sent
    assert 250.0 <= med[1] < base[1] + 250.0 + 60.0
    assert 200.0 <= med[2] < base[2] + 200.0 + 60.0
    assert base[0] < 100.0 and base[2] < 100.0


def test_emulate_cli_when_config_has_latency_then_applied(tmp_path: Path) -> None:
    cfg = tmp_path / "hidden.yaml"
    cfg.write_text("sim:\n  fill_model: probabilistic\n  prob_power: 3\n  latency_model: lognormal\n  latency_jitter_ms: 40\n"
                   "  entry_latency_ms: 5\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sim:\n  latency_jitter_ms: 120000\n")
    ok = subprocess.run([*MMBOT, "emulate", "--config", str(cfg), "--port", "0", "--duration", "1.5"], capture_output=True, text=True, timeout=60)
    refused = subprocess.run([*MMBOT, "emulate", "--config", str(bad), "--port", "0", "--duration", "1"], capture_output=True, text=True, timeout=60)

    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "listening" in ok.stdout
    assert refused.returncode == 2


@pytest.mark.parametrize("field", ["entry_latency_ms", "md_latency_ms", "latency_jitter_ms"])
async def test_emulator_when_latency_out_of_range_then_refused(field: str) -> None:
    from mmbot.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        async with run_emulator(CAPTURE, port=0, **{field: -1.0}):  # type: ignore[arg-type]
            await asyncio.sleep(0)
