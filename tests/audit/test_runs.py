"""Whole runs: summary equality, no resume after a clean stop, journal write failure, secrets."""

from __future__ import annotations

import resource
import subprocess
from decimal import Decimal
from pathlib import Path

import orjson

from mmbot.audit.verify import find_journals, verify_journal
from tests.conftest import CAPTURE, MMBOT

FIRST_FILE = CAPTURE[0]
VOLATILE = {"run_id", "wall_seconds", "events_per_second", "record_dir"}  # record_dir: per-run path


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd: a run writes relative paths (var/...) there, never into the source tree.
    return subprocess.run([*MMBOT, *args], env=env, capture_output=True, text=True, timeout=600, cwd=cwd)


def test_run_when_same_replay_twice_then_same_summary_and_two_sealed_journals(tmp_path: Path, clean_env: dict[str, str]) -> None:
    summaries = []
    for i in range(2):
        out = tmp_path / f"s{i}.json"
        proc = _run(["run", "--speed", "0", "--no-status", "--data", FIRST_FILE, "--summary-json", str(out)], clean_env, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "journal_recovered" not in proc.stderr
        summaries.append({k: v for k, v in orjson.loads(out.read_bytes()).items() if k not in VOLATILE})
    assert summaries[0] == summaries[1]
    assert summaries[0]["fills"] > 0
    journals = find_journals([clean_env["MMBOT_AUDIT__DIR"]])
    assert len(journals) == 2
    for j in journals:
        assert verify_journal(j).status == "ok"
    audit = _run(["audit", "summary", str(journals[-1]), "--json"], clean_env, tmp_path)
    assert audit.returncode == 0, audit.stderr
    doc = orjson.loads(audit.stdout)
    assert doc["matches_run_summary"] is True
    for key in ("fills", "volume_base", "fees_paid", "net_pnl", "final_inventory"):
        assert doc[key] == summaries[1][key]


def test_backtest_when_run_then_own_sealed_journal_matches_summary_and_holds_no_secret(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_EXCHANGE__SECRET="sEcReT-value-4242", MMBOT_EXCHANGE__API_KEY="kEy-value-4242")
    out = tmp_path / "b.json"
    proc = _run(["backtest", "--data", FIRST_FILE, "--summary-json", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (journal,) = find_journals([clean_env["MMBOT_AUDIT__DIR"]])
    assert journal.parent.name == "backtest__BTCUSDT"
    assert verify_journal(journal).status == "ok"
    blob = b"".join(p.read_bytes() for p in journal.iterdir())
    assert b"sEcReT-value-4242" not in blob and b"kEy-value-4242" not in blob
    assert b"config_hash" in blob
    audit = _run(["audit", "summary", str(journal), "--json"], env, tmp_path)
    assert audit.returncode == 0, audit.stderr
    summary = orjson.loads(out.read_bytes())
    doc = orjson.loads(audit.stdout)
    assert doc["matches_run_summary"] is True
    assert (doc["fills"], doc["net_pnl"], doc["fees_paid"]) == (summary["fills"], summary["net_pnl"], summary["fees_paid"])
    # The journal's attribution (its split uses the mids the journal holds), same exact sum.
    parts = doc["pnl_attribution"]
    names = ("spread_capture", "adverse_selection", "inventory_pnl", "fees", "rebates")
    assert sum(Decimal(parts[p]) for p in names) == Decimal(parts["net_pnl"]) == Decimal(summary["net_pnl"])
    wash = _run(["audit", "wash", str(journal)], env, tmp_path)
    assert wash.returncode == 0 and "0 fills against our own orders" in wash.stdout


def _limit_file_size() -> None:
    # Writes beyond 256 KiB fail with EFBIG even for root (Python ignores SIGXFSZ).
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))


def test_run_when_journal_write_fails_then_halted_with_journal_failure_and_exit_3(tmp_path: Path, clean_env: dict[str, str]) -> None:
    out = tmp_path / "s.json"
    proc = subprocess.run(
        [*MMBOT, "run", "--speed", "0", "--no-status", "--data", FIRST_FILE, "--summary-json", str(out)],
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_file_size,
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "journal_write_failed" in proc.stderr and "File too large" in proc.stderr
    assert "journal_records_unwritten" in proc.stderr
    summary = orjson.loads(out.read_bytes())
    assert summary["risk_state"] == "HALTED"
    assert "JOURNAL_FAILURE" in summary["risk_reasons"]
    assert summary["stop_reason"] == "journal_failure"
    assert summary["open_orders"] == 0


def test_backtest_when_journal_write_fails_then_halted_and_exit_3(tmp_path: Path, clean_env: dict[str, str]) -> None:
    out = tmp_path / "b.json"
    proc = subprocess.run(
        [*MMBOT, "backtest", "--data", FIRST_FILE, "--summary-json", str(out)],
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_file_size,
        cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "journal_write_failed" in proc.stderr and "File too large" in proc.stderr
    summary = orjson.loads(out.read_bytes())
    assert summary["risk_state"] == "HALTED" and "JOURNAL_FAILURE" in summary["risk_reasons"]


def test_run_when_sigterm_then_signal_journaled_and_journal_sealed(tmp_path: Path, clean_env: dict[str, str]) -> None:
    import signal
    import time

    root = Path(clean_env["MMBOT_AUDIT__DIR"])
    proc = subprocess.Popen([*MMBOT, "run", "--speed", "5", "--no-status", "--data", FIRST_FILE], env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not any(b'"type":"place"' in p.read_bytes() for p in root.rglob("seg-*.jsonl")):
            assert proc.poll() is None and time.monotonic() < deadline, "no order journaled within 60 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    (journal,) = find_journals([str(root)])
    result = verify_journal(journal)
    assert result.status == "ok", result.describe()
    signals = [r["payload"] for r in result.records if r["type"] == "signal"]
    assert {"action": "shutdown", "signal": "SIGTERM"} in signals
    assert result.records[-1]["payload"]["stop_reason"] == "SIGTERM"
