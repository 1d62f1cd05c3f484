"""End-to-end: the real CLI in a subprocess on the bundled capture."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

from tests.conftest import MMBOT, ROOT

SUMMARY_FIELDS = [
    "run_id", "events", "book_updates", "trades_seen", "quotes", "orders_placed", "orders_cancelled",
    "fills", "bid_fills", "ask_fills", "fill_rate", "volume_base", "gross_pnl", "fees_paid", "net_pnl",
    "max_abs_inventory", "final_inventory", "open_orders", "wall_seconds", "events_per_second",
]  # fmt: skip


def test_run_when_speed_zero_on_bundled_capture_then_summary_has_fills_both_sides(tmp_path: Path, clean_env: dict[str, str]) -> None:
    out = tmp_path / "s.json"
    proc = subprocess.run(
        [*MMBOT, "run", "--speed", "0", "--no-status", "--summary-json", str(out)],
        cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(out.read_text())
    for field in SUMMARY_FIELDS:
        assert field in summary, field
    assert summary["events"] == 320_015
    assert summary["bid_fills"] > 0 and summary["ask_fills"] > 0
    assert float(summary["max_abs_inventory"]) <= 0.05  # max_inventory of config/default.yaml
    assert summary["open_orders"] == 0
    assert summary["fills"] == summary["bid_fills"] + summary["ask_fills"]
    # The paper wallet: the same balances a backtest reports, reconciled with the fills.
    start, end = summary["balances_start"], summary["balances_end"]
    assert start == {"BTC": "15", "USDT": "1000000"}
    assert Decimal(end["BTC"]) == Decimal(start["BTC"]) + Decimal(summary["final_inventory"])
    assert Decimal(end["USDT"]) == Decimal(start["USDT"]) + Decimal(summary["cash"]) - Decimal(summary["fees_paid"])
    assert summary["wall_seconds"] < 60
    # The PnL attribution's parts add up to net PnL exactly (mmbot/portfolio/attribution.py).
    parts = summary["pnl_attribution"]
    total = sum(Decimal(parts[p]) for p in ("spread_capture", "adverse_selection", "inventory_pnl", "fees", "rebates"))
    assert total == Decimal(parts["net_pnl"]) == Decimal(summary["net_pnl"])


def test_check_config_when_bad_value_and_unknown_key_then_exit_2_naming_both(tmp_path: Path, clean_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy:\n  spread_bps: -3\n  sprad: 1\nsim:\n  fill_model: magic\n")
    proc = subprocess.run([*MMBOT, "check-config", str(bad)], env=clean_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    text = proc.stdout + proc.stderr
    assert "strategy.spread_bps" in text
    assert "strategy.sprad" in text and "unknown key" in text
    assert "sim.fill_model" in text
    assert "Traceback" not in text


def test_check_config_when_valid_then_prints_resolved_config_with_secrets_redacted(clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_EXCHANGE__SECRET="s3cr3t-value-xyz", MMBOT_STRATEGY__SPREAD_BPS="3.5")
    proc = subprocess.run([*MMBOT, "check-config", str(ROOT / "config" / "default.yaml")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "s3cr3t-value-xyz" not in proc.stdout + proc.stderr
    assert "spread_bps: 3.5" in proc.stdout


def test_run_when_config_missing_then_exit_2_one_line(clean_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run([*MMBOT, "run", "--config", str(tmp_path / "nope.yaml")], env=clean_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_when_bad_cli_argument_then_usage_exit_2(clean_env: dict[str, str]) -> None:
    proc = subprocess.run([*MMBOT, "run", "--speed", "fast"], env=clean_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
