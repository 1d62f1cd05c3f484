"""Measure the fault table (fault -> observed behaviour -> time to recover) for the report.

Run: ``.venv/bin/python -m tests.emulator.fault_table [REPEATS]``. Real ccxt.pro through
mmbot's live driver against the in-process emulator (BTC/USDT, real-time replay),
exchange.watch_timeout_s 1.5 s, ccxt keepAlive 3 s, ccxt rate limiter on (default),
risk.stale_book_ms 1000, calm_period_ms 300. Times are from the injection; for freeze
from the end of the freeze.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from mmbot.domain.events import FeedSignal
from mmbot.domain.risk import TradingState
from mmbot.emulator.server import run_emulator
from tests.conftest import CAPTURE, live_node
from tests.emulator.conftest import inject, wait_until
from tests.emulator.test_live_runner import live_settings

FAULTS: tuple[tuple[str, dict[str, float]], ...] = (
    ("gap", {}), ("drop", {}), ("garbage", {}), ("malformed", {}), ("freeze", {"duration_s": 4}),
)


async def measure(repeats: int) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {k: [] for k, _ in FAULTS}
    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        runner: Any = live_node(live_settings(emu.base_url, stale_book_ms=1000, feed_silent_ms=3000), "20261126T000000Z-measure1")
        signals: list[tuple[float, str]] = []
        original = runner.on_item

        async def tap(item: Any) -> None:
            if isinstance(item, FeedSignal):
                signals.append((time.monotonic(), item.kind))
            await original(item)

        runner.source.feed.sink = tap
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(runner.run())
            await wait_until(lambda: "BTC/USDT" in runner.lanes and runner.lanes["BTC/USDT"].book.is_synced, 30, "sync")
            slot = runner.lanes["BTC/USDT"]
            gate = slot.engine.gate
            for _ in range(repeats):
                for kind, fields in FAULTS:
                    await wait_until(lambda: gate.state is TradingState.ACTIVE, 20, "ACTIVE before the fault")
                    await asyncio.sleep(1.0)
                    t0 = time.monotonic()
                    await inject(emu.base_url, kind, **fields)
                    if kind == "freeze":
                        await asyncio.sleep(fields["duration_s"])
                        t0 = time.monotonic()
                    halted_at = None
                    deadline = t0 + 15
                    while time.monotonic() < deadline:
                        if gate.state is TradingState.HALTED and halted_at is None:
                            halted_at = time.monotonic()
                        if halted_at is not None and gate.state is TradingState.ACTIVE and slot.book.is_synced:
                            break
                        if halted_at is None and kind == "garbage" and time.monotonic() - t0 > 3:
                            break
                        await asyncio.sleep(0.01)
                    active_at = time.monotonic()
                    sigs = [(t - t0, k) for t, k in signals if t >= t0 - (fields.get("duration_s", 0) if kind == "freeze" else 0)]
                    resynced = [t for t, k in sigs if k == "resynced"]
                    results[kind].append({
                        "signals": [k for _, k in sigs],
                        "first_signal_s": round(sigs[0][0], 3) if sigs else None,
                        "resynced_s": round(resynced[-1], 3) if resynced else None,
                        "halted": halted_at is not None,
                        "active_s": round(active_at - t0, 3) if halted_at is not None else None,
                        "outage_s": round(runner.feed.stats["BTC/USDT"].last_outage_s, 3),
                    })
                    signals.clear()
            runner.request_stop("measure")
            summary = await task
    print("final:", {k: summary[k] for k in ("feed_gaps", "feed_disconnects", "feed_silences", "feed_resyncs", "open_orders", "risk_state")})
    return results


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = asyncio.run(measure(repeats))
    for kind, rows in results.items():
        outages = [r["outage_s"] for r in rows if r["resynced_s"] is not None]
        actives = [r["active_s"] for r in rows if r["active_s"] is not None]
        print(f"{kind:10s} halted={[r['halted'] for r in rows]} signals={rows[0]['signals']}")
        if outages:
            print(f"           feed outage (first failure -> resynced) s: median {statistics.median(outages):.2f} max {max(outages):.2f}")
        if actives:
            print(f"           fault -> gate ACTIVE again s: median {statistics.median(actives):.2f} max {max(actives):.2f}")
        for r in rows:
            print("          ", r)


if __name__ == "__main__":
    main()
