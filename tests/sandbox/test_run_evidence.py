"""Every mode leaves the same evidence (issue 30 item 6): a run record `mmbot report`
renders, for paper on a live feed and for sandbox, both against `mmbot emulate` with
real ccxt (loopback)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from mmbot.emulator.server import RunningEmulator
from tests.conftest import MMBOT
from tests.sandbox.conftest import sandbox_env


async def _run(env: dict[str, str], tmp: Path, mode: str) -> dict:
    summary = tmp / f"{mode}.summary.json"
    proc = await asyncio.create_subprocess_exec(
        *MMBOT, "run", "--mode", mode, "--duration", "8", "--no-status", "--summary-json", str(summary),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(tmp),
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(summary.read_text())


def _report(record_dir: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMBOT, "report", record_dir], env=env, capture_output=True, text=True, timeout=120)


async def test_paper_on_live_feed_and_sandbox_when_run_against_emulator_then_report_renders_their_run_record(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = sandbox_env(clean_env, emu.base_url, MMBOT_RECORD__DIR=str(tmp_path / "runs"))
    paper = await _run({**env, "MMBOT_DATA__SOURCE": "live"}, tmp_path, "paper")
    sandbox = await _run(env, tmp_path, "sandbox")

    for summary in (paper, sandbox):
        assert summary.get("record_dir"), sorted(summary)
        assert Path(summary["record_dir"], "series.csv").is_file() and Path(summary["record_dir"], "fills.csv").is_file()
        rendered = _report(summary["record_dir"], env)
        assert rendered.returncode == 0, rendered.stderr[-2000:]
        html = Path(summary["record_dir"], "report.html")
        assert str(html) in rendered.stdout and html.stat().st_size > 10_000
    assert paper["data_source"] == "live" and paper["mode"] == "paper"
    # One summary builder (mmbot.runtime.node): the replay's keys in every mode, the venue's view nested.
    replay = subprocess.run([*MMBOT, "backtest", "--summary-json", str(tmp_path / "bt.json")], env=env, capture_output=True,
                            text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr[-2000:]
    replay_keys = set(json.loads((tmp_path / "bt.json").read_text()))
    assert set(paper) == set(sandbox) == replay_keys, (set(paper) ^ replay_keys, set(sandbox) ^ replay_keys)
    assert set(paper["venue"]) == set(sandbox["venue"]) and sandbox["venue"]["kind"] == "exchange"
    assert sandbox["venue"]["open_orders"] == 0 and paper["venue"]["kind"] == "simulated"
