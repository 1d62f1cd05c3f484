"""`mmbot backtest` and the asyncio `mmbot run --speed 20` give the same fills, fill by fill."""

from __future__ import annotations

import gzip
import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CAPTURE, MMBOT

SLICE_SECONDS = 120  # the first two minutes of the bundled capture (it holds the snapshot)


@pytest.fixture(scope="module")
def capture_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("slice") / "btcusdt_first_2min.gz"
    with gzip.open(CAPTURE[0], "rb") as src, gzip.open(out, "wb") as dst:
        first_ts = None
        for line in src:
            ts = int(line.split(b" ", 1)[0])
            first_ts = first_ts or ts
            if ts - first_ts > SLICE_SECONDS * 1_000_000_000:
                break
            dst.write(line)
    return out


def _run(args: list[str], env: dict[str, str], timeout: float) -> None:
    proc = subprocess.run(MMBOT + args, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _comparable(fills: list[dict]) -> list[dict]:
    # The client order id prefix holds the config hash (run.speed differs); keep the sequence part.
    return [{**f, "client_order_id": f["client_order_id"].rsplit("-", 1)[-1]} for f in fills]


@pytest.mark.parametrize(
    ("fill_model", "latency_ms", "jitter"),
    [("risk_averse", "0", None), ("probabilistic", "20", "lognormal")],
)
def test_replay_when_backtest_and_asyncio_run_at_speed_20_then_identical_fills(
    capture_slice: Path, clean_env: dict[str, str], tmp_path: Path, fill_model: str, latency_ms: str, jitter: str | None
):
    env = dict(clean_env)
    # Wall-clock watchdogs off: a loaded CI machine must not change a decision.
    env["MMBOT_RISK__WALL_CLOCK_WATCHDOGS"] = "'off'"  # quoted: YAML reads a bare off as false
    if jitter:
        env["MMBOT_SIM__LATENCY_MODEL"] = jitter  # seeded sampling must agree too
        env["MMBOT_SIM__LATENCY_JITTER_MS"] = "3"
    common = ["--data", str(capture_slice), "--fill-model", fill_model, "--latency-ms", latency_ms]
    bt_fills, bt_sum = tmp_path / "bt_fills.json", tmp_path / "bt_summary.json"
    rt_fills, rt_sum = tmp_path / "rt_fills.json", tmp_path / "rt_summary.json"

    _run(["backtest", *common, "--fills-json", str(bt_fills), "--summary-json", str(bt_sum)], env, 120)
    _run(["run", *common, "--speed", "20", "--no-status", "--fills-json", str(rt_fills), "--summary-json", str(rt_sum)], env, 120)

    backtest = json.loads(bt_fills.read_text())["fills"]
    realtime = json.loads(rt_fills.read_text())["fills"]
    bt_summary, rt_summary = json.loads(bt_sum.read_text()), json.loads(rt_sum.read_text())
    assert len(backtest) >= 20  # enough fills for the comparison to mean something
    assert _comparable(realtime) == _comparable(backtest)
    assert bt_summary["open_orders"] == rt_summary["open_orders"] == 0  # nothing quoted after the final cancel-all
    for key in ("fills", "bid_fills", "ask_fills", "orders_placed", "net_pnl", "fees_paid", "final_inventory", "markout_5s_bps"):
        assert rt_summary[key] == bt_summary[key], key
    # The summary reconciles with its fill list: position, cash and fees.
    position = sum(Decimal(f["qty"]) * (1 if f["side"] == "BUY" else -1) for f in backtest)
    cash = sum(-Decimal(f["qty"]) * Decimal(f["price"]) * (1 if f["side"] == "BUY" else -1) for f in backtest)
    assert Decimal(bt_summary["final_inventory"]) == position
    assert Decimal(bt_summary["cash"]) == cash
    assert Decimal(bt_summary["fees_paid"]) == sum(Decimal(f["fee"]) for f in backtest)
    assert Decimal(bt_summary["net_pnl"]) == cash + position * Decimal(bt_summary["mark_price"]) - Decimal(bt_summary["fees_paid"])
