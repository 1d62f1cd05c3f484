"""`mmbot emulate` + `mmbot run --mode paper` as the README shows them (subprocesses)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import MMBOT


def start_emulator(env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*MMBOT, "emulate", "--port", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return proc, match.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("mmbot emulate did not print its address")


def test_emulate_and_run_paper_when_started_as_in_readme_then_paper_trades_on_live_data(clean_env: dict[str, str], tmp_path: Path) -> None:
    emu, base_url = start_emulator(clean_env, "--symbols", "BTC/USDT")
    try:
        env = dict(clean_env, MMBOT_DATA__SOURCE="live", MMBOT_EXCHANGE__BASE_URL=base_url)
        summary_path = tmp_path / "summary.json"
        run = subprocess.run(
            [*MMBOT, "run", "--mode", "paper", "--exchange", "binance", "--symbols", "BTC/USDT", "--duration", "8",
             "--summary-json", str(summary_path), "--no-status"],
            capture_output=True, text=True, env=env, timeout=120,
        )
    finally:
        emu.send_signal(signal.SIGTERM)
        emu_rc = emu.wait(timeout=30)
        emu_out = emu.stdout.read() if emu.stdout else ""
    summary = json.loads(summary_path.read_text())
    assert run.returncode == 0, run.stderr[-2000:]
    assert summary["data_source"] == "live" and summary["mode"] == "paper" and summary["symbol"] == "BTC/USDT"
    assert summary["book_updates"] > 20 and summary["trades_seen"] > 0
    assert summary["open_orders"] == 0 and summary["stop_reason"] == "duration"
    assert emu_rc == 0 and "emulator stopped (SIGTERM)" in emu_out


def test_emulate_when_fault_spec_invalid_then_exit_2_with_one_line(clean_env: dict[str, str]) -> None:
    result = subprocess.run([*MMBOT, "emulate", "--faults", "meltdown@3"], capture_output=True, text=True, env=clean_env, timeout=60)
    assert result.returncode == 2
    assert "fault kind must be one of" in result.stderr and "Traceback" not in result.stderr


def test_run_live_when_exchange_unreachable_then_exit_2_without_traceback(clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_DATA__SOURCE="live", MMBOT_EXCHANGE__BASE_URL="http://127.0.0.1:9", MMBOT_EXCHANGE__TIMEOUT_S="2")
    result = subprocess.run([*MMBOT, "run", "--mode", "paper", "--duration", "5"], capture_output=True, text=True, env=env, timeout=90)
    assert result.returncode == 2
    assert "cannot load markets from binance" in result.stderr and "Traceback" not in result.stderr
