"""The live driver (paper execution on live ccxt data) through every market-data fault."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from mmbot.config.settings import Settings, load_settings
from mmbot.domain.risk import TradingState
from mmbot.emulator.server import run_emulator
from tests.conftest import CAPTURE, live_node
from tests.emulator.conftest import inject, wait_until


def live_settings(base_url: str, **risk: Any) -> Settings:
    return load_settings(
        None,
        environ={},
        overrides={
            "data": {"source": "live"},
            "exchange": {"base_url": base_url, "watch_timeout_s": 1.5, "keepalive_ms": 3000},
            # Faults are detected by the 1.5 s watch timeout; the engine's own watchdogs are
            # slower so a loaded machine does not trip them spuriously.
            "risk": {"stale_book_ms": 3000, "feed_silent_ms": 5000, "calm_period_ms": 300, **risk},
            "run": {"timer_interval_ms": 50, "status_interval_s": 60},
            "audit": {"enabled": False},
            "metrics": {"enabled": True, "port": 0},
        },
    )


async def test_live_runner_when_each_feed_fault_injected_then_halts_and_recovers_without_crash() -> None:
    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        runner = live_node(live_settings(emu.base_url), "20261126T000000Z-test0001")
        observed: dict[str, tuple[bool, float]] = {}
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(runner.run())
            await wait_until(lambda: "BTC/USDT" in runner.lanes and runner.lanes["BTC/USDT"].book.is_synced, 20, "first sync")
            gate = runner.lanes["BTC/USDT"].engine.gate
            await wait_until(lambda: gate.state is TradingState.ACTIVE, 5, "ACTIVE")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{runner.metrics_server.port}/readyz") as r:
                    ready = (r.status, await r.text())
                async with http.get(f"http://127.0.0.1:{runner.metrics_server.port}/metrics") as r:
                    exposition = await r.text()
            for kind, fields in (("gap", {}), ("drop", {}), ("garbage", {}), ("malformed", {}), ("freeze", {"duration_s": 4})):
                t0 = time.monotonic()
                await inject(emu.base_url, kind, **fields)
                try:
                    await wait_until(lambda: gate.state is TradingState.HALTED, 3, f"HALTED after {kind}")
                    halted = True
                except AssertionError:
                    halted = False
                if kind == "freeze":
                    # Recovery is measured from the end of the freeze.
                    await asyncio.sleep(max(t0 + fields["duration_s"] - time.monotonic(), 0.0))
                    t0 = time.monotonic()
                    await wait_until(lambda: gate.state is TradingState.HALTED, 3, "HALTED after the freeze")
                await wait_until(lambda: gate.state is TradingState.ACTIVE and runner.lanes["BTC/USDT"].book.is_synced, 20, f"recovery after {kind}")
                observed[kind] = (halted, time.monotonic() - t0)
            runner.request_stop("test")
            summary = await task
    print("live runner faults (halted, seconds to ACTIVE):", {k: (h, round(t, 2)) for k, (h, t) in observed.items()})
    assert {k: h for k, (h, _) in observed.items()} == {
        "gap": True, "drop": True, "garbage": False, "malformed": True, "freeze": True,
    }
    assert summary["open_orders"] == 0 and summary["data_source"] == "live"
    assert summary["feed_gaps"] >= 1 and summary["feed_disconnects"] >= 1 and summary["feed_silences"] >= 2
    assert summary["risk_state"] == "ACTIVE"
    # Live paper trades against the simulated wallet (paper.balances), which reconciles.
    start, end = summary["balances_start"], summary["balances_end"]
    assert Decimal(end["BTC"]) == Decimal(start["BTC"]) + Decimal(summary["final_inventory"])
    assert "venue_rejections" in summary
    assert ready == (200, "ready\n")
    assert 'mmbot_build_info{' in exposition and 'symbol="BTC/USDT"' in exposition
    assert not runner.lanes["BTC/USDT"].engine.has_events  # drained to the observers


async def test_live_runner_when_audit_enabled_then_paper_run_journaled_sealed_and_verifiable(tmp_path: Path) -> None:
    """Paper trading on a live feed keeps its own journal (``<account>-livefeed``), as every other mode does."""
    from mmbot.audit.verify import find_journals, verify_journal

    async with run_emulator(CAPTURE, port=0, speed=3.0) as emu:
        settings = live_settings(emu.base_url).model_copy(
            update={"audit": load_settings(None, environ={}, overrides={"audit": {"dir": str(tmp_path / "journal")}}).audit}
        )
        runner = live_node(settings, "20261126T000000Z-test0002")
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(runner.run())
            await wait_until(lambda: runner.journal is not None and runner.journal.writer.written_records > 20, 30, "records written")
            runner.request_stop("SIGTERM")
            summary = await task
    journals = find_journals([str(tmp_path / "journal")])
    result = verify_journal(journals[0])
    kinds = Counter(r["type"] for r in result.records)

    assert len(journals) == 1 and "paper-livefeed__BTCUSDT" in str(journals[0])
    assert result.exit_code == 0 and result.sealed, result.describe()
    assert kinds["run_start"] == 1 and kinds["run_stop"] == 1 and kinds["signal"] == 1 and kinds["decision"] >= 1
    assert kinds["place"] >= 1 and kinds["ack"] >= 1
    assert result.records[-1]["payload"]["summary"]["run_id"] == summary["run_id"]
