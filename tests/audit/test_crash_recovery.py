"""SIGKILL during a replay, restart: state rebuilt from the journal, no fill lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import orjson

from mmbot.audit.state import fold
from mmbot.audit.verify import find_journals, verify_journal
from tests.conftest import CAPTURE, MMBOT

FIRST_FILE = CAPTURE[:1]  # 6 minutes of capture: enough fills, shorter test


def _fill_count(journal_root: Path) -> int:
    n = 0
    for seg in journal_root.rglob("seg-*.jsonl"):
        n += seg.read_bytes().count(b'"type":"fill"')
    return n


def test_run_when_killed_and_restarted_then_state_restored_and_run_completes(tmp_path: Path, clean_env: dict[str, str]) -> None:
    root = Path(clean_env["MMBOT_AUDIT__DIR"])
    args = [*MMBOT, "run", "--no-status", "--data", FIRST_FILE[0]]
    first = subprocess.Popen([*args, "--speed", "20"], env=clean_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while _fill_count(root) < 25:
            assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read().decode()[-2000:] if first.stderr else ''}"
            assert time.monotonic() < deadline, "no 25 fills journaled within 120 s"
            time.sleep(0.05)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    (journal,) = find_journals([str(root)])
    crashed = verify_journal(journal)
    assert crashed.status == "unsealed", crashed.describe()
    before = fold(crashed.records)
    assert before.ledger is not None and before.ledger.fills >= 25
    crashed_hashes = [r["hash"] for r in crashed.records]

    summary_path = tmp_path / "summary.json"
    second = subprocess.run([*args, "--speed", "0", "--summary-json", str(summary_path)], env=clean_env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "journal_recovered" in second.stderr

    # The restarted run continued the same journal, and it is now intact and sealed.
    assert find_journals([str(root)]) == [journal]
    final = verify_journal(journal)
    assert final.status == "ok", final.describe()
    # No fill lost: every record of the crashed run is still there, unchanged, in order.
    assert [r["hash"] for r in final.records[: len(crashed_hashes)]] == crashed_hashes
    recovery = next(r for r in final.records if r["type"] == "recovery")["payload"]
    # Position and cash after the restart equal what the journal said.
    assert recovery["position_lots"] == before.ledger.position_lots
    assert recovery["cash"] == f"{before.ledger.cash:.8f}"
    assert recovery["fills"] == before.ledger.fills
    assert recovery["resume_after_ns"] == before.last_capture_ns

    summary = orjson.loads(summary_path.read_bytes())
    after = fold(final.records)
    assert summary["stop_reason"] == "end_of_data"
    assert after.duplicate_fills == []
    assert summary["fills"] == sum(1 for r in final.records if r["type"] == "fill") > before.ledger.fills
    assert after.compare_with_run() == []
    assert after.summary()["net_pnl"] == summary["net_pnl"]
    assert after.summary()["final_inventory"] == summary["final_inventory"]
    # The paper wallet was rebuilt from the journal: it still reconciles with the whole run.
    start, end = summary["balances_start"], summary["balances_end"]
    assert Decimal(end["BTC"]) == Decimal(start["BTC"]) + Decimal(summary["final_inventory"])
    assert Decimal(end["USDT"]) == Decimal(start["USDT"]) + Decimal(summary["cash"]) - Decimal(summary["fees_paid"])

    audit = subprocess.run([*MMBOT, "audit", "summary", str(journal), "--json"], env=clean_env, capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0, audit.stderr
    doc = orjson.loads(audit.stdout)
    assert doc["matches_run_summary"] is True and doc["runs"] == 2
    assert doc["fills"] == summary["fills"] and doc["net_pnl"] == summary["net_pnl"]
