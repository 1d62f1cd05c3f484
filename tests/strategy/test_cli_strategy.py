"""Subprocess tests: the break-even refusal at start-up, the shipped configs start, `mmbot breakeven`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import MMBOT, ROOT

SHIPPED = [ROOT / "config" / "default.yaml", *sorted((ROOT / "config" / "profiles").glob("*.yaml"))]


def test_run_when_spread_below_breakeven_then_exit_2_naming_both_figures(tmp_path: Path, clean_env: dict[str, str]) -> None:
    cfg = tmp_path / "thin.yaml"
    cfg.write_text('fees:\n  maker_fee_bps: "5"\n  slippage_bps: "2"\n  profit_bps: "10"\nstrategy:\n  spread_bps: 20\n')

    proc = subprocess.run([*MMBOT, "run", "--speed", "0", "--no-status", "--config", str(cfg)], cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 2
    assert "20 bps" in proc.stderr and "22 bps" in proc.stderr
    assert "allow_below_breakeven" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_when_below_breakeven_but_allowed_then_starts(tmp_path: Path, clean_env: dict[str, str]) -> None:
    cfg = tmp_path / "thin.yaml"
    cfg.write_text('fees:\n  maker_fee_bps: "5"\n  slippage_bps: "2"\n  profit_bps: "10"\nstrategy:\n  spread_bps: 20\n  allow_below_breakeven: true\n')
    out = tmp_path / "s.json"

    proc = subprocess.run(
        [*MMBOT, "run", "--speed", "0", "--no-status", "--duration", "1", "--config", str(cfg), "--summary-json", str(out)],
        cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(out.read_text())["events"] > 0


@pytest.mark.parametrize("config", SHIPPED, ids=[p.name for p in SHIPPED])
def test_run_when_shipped_config_then_passes_startup_checks_and_trades(config: Path, tmp_path: Path, clean_env: dict[str, str]) -> None:
    out = tmp_path / "s.json"

    proc = subprocess.run(
        [*MMBOT, "run", "--speed", "0", "--no-status", "--duration", "1", "--config", str(config), "--summary-json", str(out)],
        cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["events"] > 0 and summary["quotes"] > 0
    assert summary["open_orders"] == 0


def test_breakeven_command_when_seed_figures_then_prints_22_and_verdict(clean_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [*MMBOT, "breakeven", "--fee-bps", "5", "--slippage-bps", "2", "--profit-bps", "10"], env=clean_env, capture_output=True, text=True, timeout=60
    )
    default = subprocess.run([*MMBOT, "breakeven"], env=clean_env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert "break-even spread: 22 bps" in proc.stdout
    assert "BELOW break-even" in proc.stdout
    assert default.returncode == 0 and "break-even spread: 0.5 bps" in default.stdout and "ok:" in default.stdout
