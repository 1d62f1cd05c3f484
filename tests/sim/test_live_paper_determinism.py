"""Live paper and the replay are one kernel (issue 30): fed the same events, the same fills.

The live runner's paper slot is built by the one composition root
(``mmbot.wiring.build_replay``): the same engine, venue class, venue config and
session as a backtest. Here it is fed the bundled capture's events in process through
``Node.on_item`` (the clock is the events' own receive times, as a replay's), and
its fills must equal ``run_l2_backtest``'s one by one; both summaries carry the same keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmbot.cli.backtest import run_l2_backtest
from mmbot.config.settings import load_settings
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
from mmbot.runtime.fill_log import FillLog
from mmbot.wiring import build_instrument
from tests.conftest import live_node, replay_node
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
    runner: Any = live_node(live_settings, "20260101T000000Z-livekern", observers=False)
    inst = build_instrument(live_settings)
    runner.open_lanes({inst.symbol: inst})
    assert runner.venue.kind == "simulated" and runner.source.kind == "live"
    live_log = FillLog(inst)
    runner.buses[inst.symbol].subscribe_batch(live_log.observe)
    for event in read_events([str(SOURCE)], CaptureParser([inst]), ReadStats()):
        await runner.on_item(event)
    runner.lanes[inst.symbol].session.flush()  # market data still in flight, as the backtest does
    live = await runner.finish()

    assert replay["fills"] > 100
    assert _fills(live_log) == _fills(replay_log)
    assert live["fills"] == replay["fills"] and live["net_pnl"] == replay["net_pnl"]


async def test_live_paper_summary_when_built_then_the_replay_runs_keys(tmp_path: Path) -> None:
    """`mmbot run` on a capture and paper on a live feed: one summary builder, the same keys."""
    from mmbot.wiring import ObserverRequest, open_observers

    settings = load_settings(None, environ={}, overrides={"audit": {"enabled": False}, "metrics": {"enabled": False},
                                                             "record": {"enabled": True, "dir": str(tmp_path / "a")}})
    runner: Any = replay_node(settings, "20260101T000000Z-keys0001", [str(SOURCE)], max_events=3000, observers=ObserverRequest())
    replay_keys = set(await runner.run())

    live_settings = load_settings(None, environ={}, overrides={"audit": {"enabled": False}, "metrics": {"enabled": False},
                                                                  "data": {"source": "live"}, "record": {"dir": str(tmp_path / "b")}})
    live_runner: Any = live_node(live_settings, "20260101T000000Z-keys0002", observers=False)
    inst = build_instrument(live_settings)
    live_runner.open_lanes({inst.symbol: inst})
    open_observers(live_runner, ObserverRequest())
    for i, event in enumerate(read_events([str(SOURCE)], CaptureParser([inst]), ReadStats())):
        await live_runner.on_item(event)
        if i > 3000:
            break
    live_keys = set(await live_runner.finish())

    assert live_keys == replay_keys
    assert len(list((tmp_path / "b").glob("*/series.csv"))) == 1  # live paper leaves a run record too
