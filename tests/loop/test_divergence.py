"""Priority 4 of issue 33: ``mmbot divergence`` classifies every order, and its page renders.

Unit: each cause from hand-built orders (one rule per row of the module's table).
End to end: the recorded faulted sandbox run, its table by cause, JSON, summary
figures, the Prometheus textfile and the HTML page in headless Chromium.
"""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from mmbot.research.divergence import CAUSES, CHART_IDS, classify
from mmbot.research.rerun import Fill, OrderLife
from tests.conftest import MMBOT
from tests.loop.conftest import RecordedRun
from tests.research.chromium import chart_problems, render, screenshot_problem

T0 = 1_000_000_000_000


def fill(ts_ms: float, qty: int = 10, fee: str = "0") -> Fill:
    return Fill(client_order_id="o", ts_ns=T0 + int(ts_ms * 1e6), side=1, price_ticks=100, qty_lots=qty, fee=Decimal(fee), liquidity="maker")


def order(*fills: Fill, ack_ms: float | None = 10.0, reject: str = "", cancelled_ms: float | None = None, cancel_lost: bool = False) -> OrderLife:
    return OrderLife(client_order_id="o", side=1, price_ticks=100, qty_lots=10, sent_ns=T0, ack_ns=None if ack_ms is None else T0 + int(ack_ms * 1e6),
                     reject=reject, cancelled_ns=None if cancelled_ms is None else T0 + int(cancelled_ms * 1e6), cancel_lost=cancel_lost,
                     fills=list(fills))


@pytest.mark.parametrize(
    ("venue", "model", "venue_accepted", "cause"),
    [
        (order(ack_ms=None), order(), False, "rejected_venue"),
        (order(fill(50)), order(reject="Order would immediately match and take."), True, "rejected_model"),
        (order(fill(80), cancel_lost=True), order(cancelled_ms=60), True, "cancel_lost_race"),
        (order(cancelled_ms=60), order(fill(80), cancel_lost=True), True, "cancel_lost_race"),
        (order(fill(50)), order(ack_ms=70), True, "venue_only_late"),
        (order(fill(50)), order(ack_ms=20), True, "venue_only_queue"),
        (order(cancelled_ms=900), order(fill(300)), True, "model_only"),
        (order(fill(50, qty=10)), order(fill(60, qty=4)), True, "different_qty"),
        (order(fill(50)), order(fill(2000)), True, "different_time"),
        (order(fill(50, fee="0.01")), order(fill(60, fee="-0.002")), True, "fee_difference"),
        (order(fill(50)), order(fill(120)), True, "matched"),
        (order(cancelled_ms=50), order(cancelled_ms=55), True, "matched"),
    ],
)
def test_classify_when_sides_differ_then_one_cause(venue: OrderLife, model: OrderLife, venue_accepted: bool, cause: str) -> None:
    assert classify(venue, model, venue_accepted) == cause
    assert cause in CAUSES


@pytest.mark.browser
def test_divergence_when_recorded_run_then_table_json_summary_metrics_and_page_renders(faulted_run: RecordedRun, tmp_path: Path) -> None:
    out = tmp_path / "div"
    proc = subprocess.run([*MMBOT, "divergence", str(faulted_run.journal_dir), "--out", str(out)], capture_output=True, text=True,
                          timeout=120, env=faulted_run.env)
    report = json.loads((out / "divergence.json").read_text())
    summary = json.loads((faulted_run.record_dir / "summary.json").read_text())
    prom = (out / "divergence.prom").read_text()
    shot = render(out / "divergence.html", tmp_path / "div.png")
    causes = {c["cause"]: c for c in report["causes"]}
    orders = report["orders"]
    placed = {p["payload"]["client_order_id"] for p in map(json.loads, _journal_lines(faulted_run)) if p["type"] == "place"}

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "divergence score" in proc.stdout and "matched" in proc.stdout
    assert set(causes) == set(CAUSES) and sum(c["orders"] for c in causes.values()) == len(orders) == report["totals"]["orders"]
    assert {o["client_order_id"] for o in orders} <= placed and len(orders) >= len(placed) - 3  # every order that went out
    assert sum(Decimal(c["pnl_impact"]) for c in causes.values()) == Decimal(report["totals"]["pnl_difference"])
    assert summary["divergence"]["score"] == report["totals"]["score"]
    assert 'mmbot_divergence_orders{run_id="' in prom and "mmbot_divergence_score" in prom
    assert chart_problems(shot.dom, CHART_IDS) == {}
    assert screenshot_problem(shot.png) is None


def _journal_lines(run: RecordedRun) -> list[str]:
    return [line for seg in sorted(run.journal_dir.glob("seg-*.jsonl")) for line in seg.read_text().splitlines() if line]


def test_divergence_when_paper_run_on_live_feed_then_every_order_matches(tmp_path: Path) -> None:
    """Paper on the emulator's feed: its venue is the same SimVenue as the open loop's, so nothing may diverge."""
    from tests.loop.conftest import record_sandbox_run

    run = record_sandbox_run(tmp_path / "paper", faults="", duration_s=15.0, mode="paper")
    out = tmp_path / "div"
    proc = subprocess.run([*MMBOT, "divergence", str(run.journal_dir), "--out", str(out)], capture_output=True, text=True, timeout=120,
                          env=run.env)
    report = json.loads((out / "divergence.json").read_text())
    totals = report["totals"]

    assert run.exit_code == 0 and proc.returncode == 0, proc.stderr[-2000:]
    assert totals["orders"] > 0 and totals["venue_fills"] > 0
    assert totals["diverged"] == 0 and totals["venue_pnl"] == totals["model_pnl"]
    assert totals["venue_filled_lots"] == totals["model_filled_lots"]
