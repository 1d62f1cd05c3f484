"""Report building without a browser: SVG trace types, downsampling, record round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmbot.research.bars import bar_performance, bundled_bars_path, load_bars, run_bar_backtest
from mmbot.research.record import bar_tables, load_record, write_record
from mmbot.research.report import CHART_IDS, MAX_POINTS, build_figures, minmax_indices, write_png
from mmbot.strategy.simple import SimpleParams


def test_minmax_indices_when_long_series_then_keeps_spikes_and_ends_within_budget() -> None:
    values = np.zeros(100_000)
    values[12_345] = 50.0
    values[77_777] = -40.0

    keep = minmax_indices(values, 1000)

    assert keep.shape[0] <= 1002
    assert {0, 12_345, 77_777, 99_999} <= set(keep.tolist())


def test_build_figures_when_month_of_bars_then_svg_charts_downsampled_with_every_fill_kept(tmp_path: Path) -> None:
    bars = load_bars(bundled_bars_path())
    result = run_bar_backtest(bars, SimpleParams())
    perf = bar_performance(result, bars)
    series, fills = bar_tables(result, bars)
    summary = {"run_id": "month", "symbol": "BTC/USDT", "quote_ccy": "USDT", "max_inventory_limit": 10.0, **perf.fields()}
    d = write_record(tmp_path / "run", summary, series, fills, kind="bars", interval_s=60, markout_horizons_s=[60, 300, 1800])

    rec = load_record(d / "summary.json")
    figs = build_figures(rec)
    png = write_png(rec, tmp_path / "main.png")

    assert rec.series["ts_ns"].shape[0] == 43_199  # the record keeps every bar
    assert rec.fills["ts_ns"].shape[0] == len(result.fills)
    assert np.nanmax(rec.fills["markout_60s_bps"]) > 0  # markouts recorded per fill
    nf = len(result.fills)
    price = {t.name: t for t in figs["chart-price"].data}
    assert tuple(figs) == CHART_IDS
    for cid, fig in figs.items():
        for trace in fig.data:
            assert trace.type in ("scatter", "bar")  # SVG, never scattergl
            if cid != "chart-price":
                assert len(trace.x) <= 2 * MAX_POINTS + 4
    assert len(price["close"].x) <= 2 * MAX_POINTS + 4 + nf  # downsampled closes + the mid at every fill
    assert len(price["buy fills"].x) + len(price["sell fills"].x) == nf  # every fill, unthinned
    assert sorted(price["buy fills"].x.tolist() + price["sell fills"].x.tolist()) == sorted((rec.fills["ts_ns"] / 1e6).tolist())
    reasons = [t for t in figs["chart-fill-reasons"].data if t.name in ("buys", "sells")]
    assert [list(t.x) for t in reasons] == [["bar_range"], ["bar_range"]] and sum(t.y[0] for t in reasons) == nf
    for c in ("markout_60s_bps", "markout_300s_bps", "markout_1800s_bps"):  # every markout lands in one bin
        bars_of_h = [t for t in figs["chart-markout-dist"].data if t.xaxis == ("x" if c == "markout_60s_bps" else "x2" if "300" in c else "x3")]
        assert sum(int(sum(t.y)) for t in bars_of_h) == int((~np.isnan(rec.fills[c])).sum())
    assert png.stat().st_size > 20_000


def test_attribution_table_when_summary_has_pnl_attribution_then_rows_with_unit_and_sum() -> None:
    from types import SimpleNamespace
    from typing import cast

    from mmbot.research.record import RunRecord
    from mmbot.research.report import _attribution_table

    parts = {"unit": "USDT", "horizon_s": 5.0, "spread_capture": "0.5", "adverse_selection": "-2.25",
             "inventory_pnl": "0.75", "fees": "-0.1", "rebates": "0", "net_pnl": "-1.1"}  # fmt: skip
    table = _attribution_table(cast(RunRecord, SimpleNamespace(summary={"pnl_attribution": parts})))

    assert "adverse selection" in table and "-2.2500 USDT" in table and "-1.1000 USDT" in table
    assert _attribution_table(cast(RunRecord, SimpleNamespace(summary={}))) == ""


def test_write_html_when_two_runs_side_by_side_then_one_shared_plotly_bundle_and_small_pages(tmp_path: Path) -> None:
    from mmbot.research.report import write_html

    bars = load_bars(bundled_bars_path()).slice(0, 1440)
    result = run_bar_backtest(bars, SimpleParams())
    series, fills = bar_tables(result, bars)
    pages = []
    for name in ("run-a", "run-b"):
        d = write_record(tmp_path / name, {"run_id": name}, series, fills, kind="bars", interval_s=60, markout_horizons_s=[60])
        pages.append(write_html(load_record(d), d / "report.html"))

    bundles = list(tmp_path.glob("plotly-*.min.js"))
    assert len(bundles) == 1 and bundles[0].stat().st_size > 3_000_000
    for page in pages:
        text = page.read_text()
        assert f'src="../{bundles[0].name}"' in text
        assert page.stat().st_size < 1_000_000  # the bundle is not inlined
    assert list((tmp_path / "run-a").glob("*.js")) == []


def test_build_figures_when_risk_changes_recorded_then_timeline_steps_through_them_with_time_shares(tmp_path: Path) -> None:
    from mmbot.config.settings import load_settings
    from mmbot.domain.engine_events import RiskChanged
    from mmbot.research.record import SeriesRecorder
    from mmbot.wiring import build_replay

    s = 1_000_000_000
    rec = SeriesRecorder(build_replay(load_settings(None, environ={}), "20260101T000000Z-test0000").engine, 1000.0, 0.05)
    rec.advance(0)
    rec.on_events([RiskChanged(ts_ns=4 * s, old="ACTIVE", new="HALTED", reasons=("MAX_DRAWDOWN",), cause="raise:MAX_DRAWDOWN")])
    rec.advance(10 * s)
    figs = build_figures(load_record(rec.write(tmp_path / "run", {"run_id": "risk"})))

    risk = figs["chart-risk"]
    line = next(t for t in risk.data if t.name == "risk state")
    changes = next(t for t in risk.data if t.name == "state changes")
    assert list(line.y) == ["ACTIVE", "HALTED", "HALTED"] and line.line.shape == "hv"
    assert list(line.x) == [0.0, 4000.0, 10000.0]  # ms: start, the change, the last sample
    assert list(changes.y) == ["HALTED"] and "MAX_DRAWDOWN" in changes.text[0]
    assert "1 change;" in risk.layout.title.text and "ACTIVE 40.0%" in risk.layout.title.text and "HALTED 60.0%" in risk.layout.title.text
