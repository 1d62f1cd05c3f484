"""Live paper and the replay are one kernel (issue 30): fed the same events, the same fills.

The live runner's paper slot is built by the one composition root
(``mmbot.app.wiring.build_replay``): the same engine, venue class, venue config and
session as a backtest. Here it is fed the bundled capture's events in process through
``LiveRunner.on_feed`` (the clock is the events' own receive times, as a replay's), and
its fills must equal ``run_l2_backtest``'s one by one; both summaries carry the same keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmbot.app.backtest_cmd import run_l2_backtest
from mmbot.app.fills_json import FillLog
from mmbot.app.live import LiveRunner
from mmbot.app.settings import load_settings
from mmbot.app.wiring import build_instrument
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
from tests.integrity.cases import SOURCE


def _fills(log: FillLog) -> list[dict[str, Any]]:
    # Client order ids differ by design (per-run prefixes); the sequence part and the rest must not.
    return [{**f, "client_order_id": f["client_order_id"].rsplit("-", 1)[-1]} for f in log.fills]


@pytest.mark.parametrize("latency", [{}, {"entry_latency_ms": 20.0, "cancel_latency_ms": 20.0, "md_latency_ms": 5.0}])
async def test_live_paper_when_fed_the_replay_events_then_the_same_fills_one_by_one(latency: dict[str, float]) -> None:
    overrides: dict[str, Any] = {"audit": {"enabled": False}, "record": {"enabled": False}, "metrics": {"enabled": False},
                                 "sim": latency}
    replay_settings = load_settings(None, environ={}, overrides=overrides)
    replay_log = FillLog(build_instrument(replay_settings))
    replay, _ = run_l2_backtest(replay_settings, [str(SOURCE)], observers=[replay_log.observe])

    live_settings = load_settings(None, environ={}, overrides={**overrides, "data": {"source": "live"}})
    runner = LiveRunner(live_settings, "20260101T000000Z-livekern", duration_s=None, status=False, emit=print)
    inst = build_instrument(live_settings)
    slot = runner.slots[inst.symbol] = runner.build_slot(inst)
    live_log = FillLog(inst)
    slot.observers.append(lambda events, _r, _d: live_log.observe(events))
    for event in read_events([str(SOURCE)], CaptureParser([inst]), ReadStats()):
        await runner.on_feed(event)
    slot.built.session.flush()  # type: ignore[union-attr]  # market data still in flight, as the backtest does
    live = runner._paper_finish()[inst.symbol]

    assert replay["fills"] > 100
    assert _fills(live_log) == _fills(replay_log)
    assert live["fills"] == replay["fills"] and live["net_pnl"] == replay["net_pnl"]


async def test_live_paper_summary_when_built_then_the_replay_runs_keys(tmp_path: Path) -> None:
    """`mmbot run` on a capture and paper on a live feed: one summary builder, the same keys."""
    from mmbot.app.runner import Runner, RunOptions

    settings = load_settings(None, environ={}, overrides={"audit": {"enabled": False}, "metrics": {"enabled": False},
                                                             "record": {"enabled": True, "dir": str(tmp_path / "a")}})
    runner = Runner(settings, "20260101T000000Z-keys0001", RunOptions(paths=[str(SOURCE)], speed=0, status=False, max_events=3000))
    await runner.replay()
    replay_keys = set(runner.finish())

    live_settings = load_settings(None, environ={}, overrides={"audit": {"enabled": False}, "metrics": {"enabled": False},
                                                                  "data": {"source": "live"}, "record": {"dir": str(tmp_path / "b")}})
    live_runner = LiveRunner(live_settings, "20260101T000000Z-keys0002", duration_s=None, status=False, emit=print)
    inst = build_instrument(live_settings)
    live_runner.slots[inst.symbol] = live_runner.build_slot(inst)
    for i, event in enumerate(read_events([str(SOURCE)], CaptureParser([inst]), ReadStats())):
        await live_runner.on_feed(event)
        if i > 3000:
            break
    live_keys = set(live_runner._paper_finish()[inst.symbol])

    assert live_keys == replay_keys
    assert len(list((tmp_path / "b").glob("*/series.csv"))) == 1  # live paper leaves a run record too
