"""Backtests and paper runs produce a summary, a run record and a report whose charts
really render in headless Chromium (Debian package; a missing browser fails with the
install command): every chart draws traces, the fills table is built and sorts, and
plotly.js comes from the one shared bundle beside the run directories."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from mmbot.research.bars import bar_performance, bundled_bars_path, load_bars, run_bar_backtest
from mmbot.research.record import bar_tables, write_record
from mmbot.research.report import CHART_IDS, FILLS_TABLE_ID, MAX_TABLE_ROWS, write_html
from mmbot.strategy.simple import SimpleParams
from tests.conftest import CAPTURE, MMBOT, ROOT
from tests.research.chromium import chart_problems, drawn_trace_counts, element_attrs, render, screenshot_problem, table_column

pytestmark = pytest.mark.browser

# traces drawn per chart at least: price (mid, bids, asks, buy fills, sell fills), risk (state line),
# inventory (+ limits), pnl (gross, net), spread (ours, market), drawdown, fill reasons (buys, sells,
# markout per horizon), markouts (buys, sells, all), markout distributions (buys, sells)
MIN_TRACES = {
    "chart-price": 5, "chart-risk": 1, "chart-inventory": 1, "chart-pnl": 2, "chart-spread": 2, "chart-drawdown": 1,
    "chart-fill-reasons": 3, "chart-markouts": 3, "chart-markout-dist": 2,
}  # fmt: skip
L2_REPORT_MAX_BYTES = 1_500_000  # issue 35: the bundled capture's report (5.1 MB with plotly.js inlined)
PAGE_HEIGHT = 5600


def _printed_path(stdout: str, label: str) -> Path:
    m = re.search(rf"^{label}:\s+(\S+)$", stdout, re.MULTILINE)
    assert m, f"no '{label}:' line in the output:\n{stdout[-2000:]}"
    return Path(m.group(1))


def _assert_renders(html_path: Path, tmp_path: Path, fills: int, max_bytes: int = 8_000_000) -> dict[str, int]:
    text = html_path.read_text()
    sources = re.findall(r"<script[^>]+src=\"([^\"]+)\"", text)
    shot = render(html_path, tmp_path / f"{html_path.parent.name}-shot.png", height=PAGE_HEIGHT)
    problems = chart_problems(shot.dom, CHART_IDS)
    counts = drawn_trace_counts(shot.dom, CHART_IDS)
    table = element_attrs(shot.dom, FILLS_TABLE_ID) or {}
    times = table_column(shot.dom, FILLS_TABLE_ID, "ts_ns")

    # one local bundle, shared by the reports beside this one: no network needed
    assert len(sources) == 1 and re.fullmatch(r"\.\./plotly-[\d.]+\.min\.js", sources[0]), sources
    assert (html_path.parent / sources[0]).resolve().is_file()
    assert html_path.stat().st_size < max_bytes, html_path.stat().st_size
    assert problems == {}, problems
    assert "<canvas" not in shot.dom  # SVG traces only, no WebGL
    assert screenshot_problem(shot.png) is None, screenshot_problem(shot.png)
    for cid, least in MIN_TRACES.items():
        assert counts[cid] >= least, (cid, counts)
    assert table.get("data-sortable") == "ready"  # the sorting script ran
    assert times is not None and len(times) == min(fills, MAX_TABLE_ROWS) and times == sorted(times)
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
    _assert_renders(html_path, tmp_path, summary["fills"])


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
    counts = _assert_renders(html_path, tmp_path, summary["fills"], max_bytes=L2_REPORT_MAX_BYTES)
    by_price = render(html_path, tmp_path / "sorted.png", height=PAGE_HEIGHT, fragment="fills-sort=price:desc")
    prices = [float(v) for v in table_column(by_price.dom, FILLS_TABLE_ID, "price") or []]
    reasons = table_column(by_price.dom, FILLS_TABLE_ID, "reason") or []
    header = (out / "fills.csv").read_text().splitlines()[0].split(",")
    assert counts["chart-risk"] >= 2  # the state line and the cumulative denials
    assert len(prices) == summary["fills"] and prices == sorted(prices, reverse=True)
    assert (element_attrs(by_price.dom, FILLS_TABLE_ID) or {}).get("data-sorted") == "price:desc"
    assert set(reasons) == set(summary["fill_reasons"])
    assert header[:2] == ["time", "order_id"] and {"reason", "queue_ahead", "liquidity"} <= set(header)


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


def test_chart_checker_when_plotly_bundle_missing_or_page_is_error_text_then_rejects(tmp_path: Path) -> None:
    good = _small_report(tmp_path)
    bundle = next(tmp_path.glob("plotly-*.min.js"))
    bundle.rename(tmp_path / "moved.js")  # the shared bundle is gone: the page keeps its tables but draws no chart
    error_page = tmp_path / "error.html"
    error_page.write_text("<html><body><h1>Error</h1><p>Internal error: the report could not be built.</p></body></html>")

    broken_shot = render(good, tmp_path / "broken.png", height=PAGE_HEIGHT)
    error_shot = render(error_page, tmp_path / "error.png", height=900)

    assert set(chart_problems(broken_shot.dom, CHART_IDS)) == set(CHART_IDS)
    assert all(p == "no plotly SVG inside" for p in chart_problems(broken_shot.dom, CHART_IDS).values())
    assert "plotly.js, expected at" in broken_shot.dom  # the page says why
    assert screenshot_problem(broken_shot.png) is not None
    assert set(chart_problems(error_shot.dom, CHART_IDS)) == set(CHART_IDS)
    assert screenshot_problem(error_shot.png) is not None


def test_report_when_self_contained_then_plotly_inlined_and_charts_render_without_the_bundle(tmp_path: Path) -> None:
    bars = load_bars(bundled_bars_path()).slice(0, 1440)
    result = run_bar_backtest(bars, SimpleParams())
    series, fills = bar_tables(result, bars)
    d = write_record(tmp_path / "day", {"run_id": "one-day", "symbol": "BTC/USDT"}, series, fills, kind="bars", interval_s=60, markout_horizons_s=[60])
    from mmbot.research.record import load_record

    page = write_html(load_record(d), d / "report.html", inline_plotly=True)
    shot = render(page, tmp_path / "inline.png", height=PAGE_HEIGHT)

    assert not re.search(r"<script[^>]+src=", page.read_text())
    assert list(tmp_path.glob("plotly-*.min.js")) == [] and list(d.glob("plotly-*.min.js")) == []
    assert chart_problems(shot.dom, CHART_IDS) == {}
