"""Priority 3 of issue 33: ``mmbot rerun`` of a recorded sandbox run that hit faults.

The run (tests/loop/conftest.py) saw a market-data freeze and an HTTP 5xx outage at
the emulator. Closed loop: the rerun reproduces its risk-state transitions in the same
order, and every summary field either equals the run's or is listed with the reason it
cannot match. Open loop: the run's own order actions through the simulated venue,
deterministic.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

from mmbot.config.settings import Settings
from mmbot.research.rerun import compare_closed_loop, load_recorded_run, open_loop
from mmbot.wiring import venue_config
from tests.conftest import MMBOT
from tests.loop.conftest import RecordedRun


def test_rerun_closed_loop_when_run_hit_faults_then_same_transitions_in_order(faulted_run: RecordedRun, tmp_path: Path) -> None:
    out = tmp_path / "rerun.json"
    proc = subprocess.run([*MMBOT, "rerun", str(faulted_run.journal_dir), "--closed-loop", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=faulted_run.env)
    result = json.loads(out.read_text())
    reasons = {r for step in result["run_transitions"] for r in step[2]}
    fields = result["fields"]

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert result["transitions_equal"], (result["run_transitions"], result["rerun_transitions"])
    assert {"STALE_BOOK", "EXCHANGE_DOWN"} <= reasons  # the freeze and the 5xx outage
    assert result["fields_unexplained"] == []
    assert fields["events"]["equal"] and fields["book_updates"]["equal"] and fields["trades_seen"]["equal"]  # the recording is complete
    assert fields["risk_transitions_total"]["equal"] and fields["risk_state"]["equal"]
    assert "transitions in the same order: yes" in proc.stdout


def test_rerun_closed_loop_when_venue_inputs_dropped_then_outage_not_reproduced(faulted_run: RecordedRun) -> None:
    from mmbot.cli.rerun import closed_loop

    run = load_recorded_run(faulted_run.journal_dir)
    without = dataclasses.replace(run, inputs=[i for i in run.inputs if i[1] != "venue_risk"])
    settings = Settings.model_validate(run.config)
    result = compare_closed_loop(run.summary, closed_loop(without, settings))
    rerun_reasons = {r for step in result["rerun_transitions"] for r in step[2]}

    assert not result["transitions_equal"]
    assert "EXCHANGE_DOWN" not in rerun_reasons


def test_rerun_open_loop_when_replayed_twice_then_identical_fills(faulted_run: RecordedRun) -> None:
    run = load_recorded_run(faulted_run.journal_dir)
    settings = Settings.model_validate(run.config)
    first = open_loop(run, venue_config(settings))
    second = open_loop(run, venue_config(settings))
    placed = {a.command.client_order_id for a in run.actions if type(a.command).__name__ == "PlaceOrder"}

    assert first.fills == second.fills and first.fills
    assert set(first.orders) == placed  # every placement that went out, none invented
    assert all(f.qty_lots <= first.orders[f.client_order_id].qty_lots for f in first.fills)


def test_rerun_open_loop_cli_when_recorded_run_then_venue_and_model_figures(faulted_run: RecordedRun, tmp_path: Path) -> None:
    out = tmp_path / "open.json"
    proc = subprocess.run([*MMBOT, "rerun", str(faulted_run.journal_dir), "--out", str(out)], capture_output=True, text=True,
                          timeout=120, env=faulted_run.env)
    result = json.loads(out.read_text())
    missing = subprocess.run([*MMBOT, "rerun", str(tmp_path / "no-such-run")], capture_output=True, text=True, timeout=60, env=faulted_run.env)

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert result["mode"] == "open_loop" and result["venue"]["fills"] == faulted_run.summary["fills"]
    assert result["model"]["fills"] > 0 and "pnl_at_last_mid" in result["model"]
    assert missing.returncode == 2 and "no journal" in (missing.stdout + missing.stderr)
