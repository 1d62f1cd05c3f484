"""Backtests and paper runs produce a summary, a run record and a report whose charts
really render in headless Chromium (Debian package; a missing browser fails with the
install command)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from mmbot.research.bars import bar_performance, bundled_bars_path, load_bars, run_bar_backtest
from mmbot.research.record import bar_tables, write_record
from mmbot.research.report import CHART_IDS, write_html
from mmbot.strategy.simple import SimpleParams
from tests.conftest import CAPTURE, MMBOT, ROOT
from tests.research.chromium import chart_problems, drawn_trace_counts, render, screenshot_problem

pytestmark = pytest.mark.browser

# traces drawn per chart at least: price (mid, bid, ask, buy fills, sell fills), inventory (+ limits),
# pnl (gross, net), spread (ours, market), drawdown, markouts (buys, sells, all)
MIN_TRACES = {"chart-price": 5, "chart-inventory": 1, "chart-pnl": 2, "chart-spread": 2, "chart-drawdown": 1, "chart-markouts": 3}


def _printed_path(stdout: str, label: str) -> Path:
    m = re.search(rf"^{label}:\s+(\S+)$", stdout, re.MULTILINE)
    assert m, f"no '{label}:' line in the output:\n{stdout[-2000:]}"
    return Path(m.group(1))


def _assert_renders(html_path: Path, tmp_path: Path) -> dict[str, int]:
    text = html_path.read_text()
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js inlined: no network needed
    assert html_path.stat().st_size < 8_000_000
    shot = render(html_path, tmp_path / f"{html_path.parent.name}-shot.png")
    problems = chart_problems(shot.dom, CHART_IDS)
    counts = drawn_trace_counts(shot.dom, CHART_IDS)
    assert problems == {}, problems
    assert "<canvas" not in shot.dom  # SVG traces only, no WebGL
    assert screenshot_problem(shot.png) is None, screenshot_problem(shot.png)
    for cid, least in MIN_TRACES.items():
        assert counts[cid] >= least, (cid, counts)
    return counts


def test_backtest_when_seed_bars_profile_on_bundled_month_then_summary_record_and_report_render(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    out = tmp_path / "seed-bars"
    proc = subprocess.run(
        [
            *MMBOT, "backtest", "--bars", "bundled", "--config", str(ROOT / "config/profiles/seed-bars.yaml"),
            "--out", str(out), "--report", "--summary-json", str(tmp_path / "s.json"),
        ],
        cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    html_path = _printed_path(proc.stdout, "report")
    png_path = _printed_path(proc.stdout, "chart")

    assert summary["bars"] == 43_199 and summary["bar_gaps"] == 0 and summary["zero_volume_bars"] == 0
    assert summary["parameters"]["spread_bps"] == 20 and summary["parameters"]["max_inventory"] == 10
    assert summary["fills"] == summary["bid_fills"] + summary["ask_fills"] > 1000
    assert summary["return_interval_s"] == 86_400 and summary["sharpe"] is not None
    assert float(summary["max_abs_inventory"]) <= 10
    assert summary["record"]["kind"] == "bars"
    assert json.loads((out / "summary.json").read_text())["net_pnl"] == summary["net_pnl"]
    assert png_path.stat().st_size > 20_000
    _assert_renders(html_path, tmp_path)


def test_backtest_when_default_config_on_l2_capture_then_summary_record_and_report_render(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    out = tmp_path / "default-l2"
    proc = subprocess.run(
        [*MMBOT, "backtest", "--out", str(out), "--report", "--summary-json", str(tmp_path / "s.json")],
        cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    html_path = _printed_path(proc.stdout, "report")

    assert summary["events"] == 320_015
    assert summary["fills"] > 0 and summary["round_trips"] > 0
    assert summary["record"]["kind"] == "l2" and summary["return_interval_s"] == 1.0
    assert summary["max_inventory"] <= 0.05
    assert html_path.parent == out.resolve() or html_path.parent == out
    _assert_renders(html_path, tmp_path)


def test_report_when_paper_run_summary_json_then_report_written_from_its_record(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_RECORD__DIR=str(tmp_path / "runs"))
    run = subprocess.run(
        [*MMBOT, "run", "--speed", "0", "--no-status", "--data", CAPTURE[0], "--summary-json", str(tmp_path / "s.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    rep = subprocess.run([*MMBOT, "report", str(tmp_path / "s.json")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    summary = json.loads((tmp_path / "s.json").read_text())
    lines = rep.stdout.split()

    assert rep.returncode == 0, rep.stderr[-3000:]
    assert Path(summary["record_dir"]).parent == tmp_path / "runs"
    assert summary["record"]["kind"] == "l2"
    for field in ("win_rate", "sharpe", "sortino", "max_drawdown", "inventory_balance", "trades_per_day", "time_at_max_inventory_s"):
        assert field in summary, field
    assert Path(lines[0]).name == "report.html" and Path(lines[0]).is_file()
    assert Path(lines[1]).name == "report.png" and Path(lines[1]).is_file()


def test_report_when_path_is_not_a_run_then_exit_2_with_one_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"run_id": "x"}))
    proc = subprocess.run([*MMBOT, "report", str(tmp_path / "s.json")], env=clean_env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 2
    assert "no run record" in proc.stderr
    assert "Traceback" not in proc.stderr


def _small_report(tmp_path: Path) -> Path:
    bars = load_bars(bundled_bars_path()).slice(0, 1440)
    result = run_bar_backtest(bars, SimpleParams())
    perf = bar_performance(result, bars)
    summary = {"run_id": "one-day", "symbol": "BTC/USDT", "quote_ccy": "USDT", "fills": len(result.fills), **perf.fields()}
    series, fills = bar_tables(result, bars)
    d = write_record(tmp_path / "day", summary, series, fills, kind="bars", interval_s=60, markout_horizons_s=[60, 300, 1800])
    from mmbot.research.record import load_record

    return write_html(load_record(d), d / "report.html")


def test_chart_checker_when_plotly_fails_or_page_is_error_text_then_rejects(tmp_path: Path) -> None:
    good = _small_report(tmp_path)
    broken = tmp_path / "broken.html"
    text = good.read_text()
    start = text.index("<script type=\"text/javascript\">")
    end = text.index("</script>", start)
    # plotly.js replaced by an error: the page keeps its tables and headings but draws no chart
    broken.write_text(text[:start] + "<script>throw new Error('plotly failed to load')</script>" + text[end + len("</script>") :])
    error_page = tmp_path / "error.html"
    error_page.write_text("<html><body><h1>Error</h1><p>Internal error: the report could not be built.</p></body></html>")

    broken_shot = render(broken, tmp_path / "broken.png")
    error_shot = render(error_page, tmp_path / "error.png", height=900)

    assert set(chart_problems(broken_shot.dom, CHART_IDS)) == set(CHART_IDS)
    assert all(p == "no plotly SVG inside" for p in chart_problems(broken_shot.dom, CHART_IDS).values())
    assert screenshot_problem(broken_shot.png) is not None
    assert set(chart_problems(error_shot.dom, CHART_IDS)) == set(CHART_IDS)
    assert screenshot_problem(error_shot.png) is not None
