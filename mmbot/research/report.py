"""HTML and PNG reports of a run record (``mmbot report RUN_OR_SUMMARY``).

The HTML file is self-contained: plotly.js is inlined once (no network needed to
view it), every chart uses SVG traces (``go.Scatter``/``go.Bar``, never WebGL
``scattergl``), and long series are downsampled for display, so a month of 1-minute
bars stays light. Charts (div ids in brackets):

- price with our quotes and fills [chart-price]
- inventory, with the limit [chart-inventory]
- cumulative PnL, gross vs net [chart-pnl]
- spread: our quoted spread and the market's (L2) or the bar's high-low range (bars), bps [chart-spread]
- drawdown of net PnL [chart-drawdown]
- fill markouts: mean bps by horizon, buys and sells [chart-markouts]

Downsampling (display only; metrics use every sample): the series is cut into
``max_points / 2`` equal buckets and each bucket keeps the samples where the chart's
main line is lowest and highest, so spikes and drawdowns stay visible. Fill markers
beyond ``max_fills`` are thinned to an even stride (the chart title says so).

The PNG (matplotlib, Agg) shows the main chart: price with quotes and fills, with
inventory and net/gross PnL panels below it.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mmbot.extras import REPORT_MODULES, RESEARCH, require
from mmbot.portfolio.metrics import CONTEXT_FIELDS, drawdown_series
from mmbot.research.record import RunRecord

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

CHART_IDS = ("chart-price", "chart-inventory", "chart-pnl", "chart-spread", "chart-drawdown", "chart-markouts")
MAX_POINTS = 2000
MAX_FILLS = 1500
BUY_COLOUR = "#1a9850"
SELL_COLOUR = "#d73027"


def minmax_indices(values: F64, max_points: int = MAX_POINTS) -> I64:
    """Indices to keep: per bucket the min and max of ``values`` (NaN ignored), plus the ends."""
    n = values.shape[0]
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [0, n - 1]
    filled = np.where(np.isnan(values), np.nanmean(values) if np.any(~np.isnan(values)) else 0.0, values)
    for a, b in itertools.pairwise(edges.tolist()):
        if b <= a:
            continue
        seg = filled[a:b]
        keep.append(a + int(np.argmin(seg)))
        keep.append(a + int(np.argmax(seg)))
    return np.unique(np.array(keep, dtype=np.int64))


def thin(n: int, max_items: int = MAX_FILLS) -> I64:
    if n <= max_items:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, max_items).round().astype(np.int64))


def _times(ts_ns: F64) -> npt.NDArray[np.datetime64]:
    return np.asarray(ts_ns, dtype=np.int64).astype("datetime64[ns]").astype("datetime64[ms]")


def _col(rec: RunRecord, name: str) -> F64:
    v = rec.series.get(name)
    if v is None:
        return np.full(rec.series["ts_ns"].shape[0], np.nan)
    return v


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.2f}"
    return html.escape(str(v))


SUMMARY_ROWS = (
    ("fills", "fills"),
    ("orders_placed", "orders placed"),
    ("fill_rate", "fill rate (filled orders / orders placed)"),
    ("gross_pnl", "gross PnL"),
    ("fees_paid", "fees"),
    ("slippage_paid", "slippage"),
    ("net_pnl", "net PnL"),
    ("win_rate", "win rate (FIFO round trips)"),
    ("round_trips", "round trips"),
    ("avg_spread_captured_bps", "avg spread captured per round trip, bps"),
    ("avg_fill_edge_bps", "avg fill edge vs mid, bps"),
    ("max_inventory", "max |inventory|"),
    ("time_at_max_inventory_share", "share of time at the inventory limit"),
    ("inventory_balance", "inventory balance (share of time within the neutral band)"),
    ("sharpe", "Sharpe (annualised)"),
    ("sortino", "Sortino (annualised)"),
    ("return_interval_s", "Sharpe return interval, s"),
    ("max_drawdown", "max drawdown"),
    ("trades_per_day", "trades per day"),
)


def build_figures(rec: RunRecord, max_points: int = MAX_POINTS, max_fills: int = MAX_FILLS) -> dict[str, Any]:
    """The six plotly figures, keyed by their div id."""
    require(RESEARCH, "the run report's charts", "plotly")
    import plotly.graph_objects as go  # plotly is heavy and optional: only when a report is written

    s = rec.series
    ts = s["ts_ns"]
    times = _times(ts)
    mid = _col(rec, "mid")
    bid = _col(rec, "bid")
    ask = _col(rec, "ask")
    inv = _col(rec, "inventory")
    gross = _col(rec, "gross_pnl")
    net = _col(rec, "net_pnl")
    ccy = rec.summary.get("quote_ccy", "")
    base = str(rec.summary.get("symbol", "/")).split("/")[0]
    layout = {
        "height": 380, "margin": {"l": 70, "r": 20, "t": 50, "b": 40}, "hovermode": "x",
        "template": "plotly", "plot_bgcolor": "#e8edf5", "showlegend": True,
    }  # fmt: skip
    figs: dict[str, Any] = {}

    # price with quotes and fills
    k = minmax_indices(mid, max_points)
    f = rec.fills
    nf = f["ts_ns"].shape[0] if "ts_ns" in f else 0
    fk = thin(nf, max_fills)
    fig = go.Figure(layout=layout)
    fig.add_trace(go.Scatter(x=times[k], y=mid[k], name="mid" if rec.kind != "bars" else "close", mode="lines", line={"color": "#444", "width": 1}))
    fig.add_trace(go.Scatter(x=times[k], y=bid[k], name="our bid", mode="lines", line={"color": BUY_COLOUR, "width": 1, "shape": "hv"}, opacity=0.6))
    fig.add_trace(go.Scatter(x=times[k], y=ask[k], name="our ask", mode="lines", line={"color": SELL_COLOUR, "width": 1, "shape": "hv"}, opacity=0.6))
    if nf:
        side = f["side"][fk]
        ft = _times(f["ts_ns"][fk])
        price = f["price"][fk]
        for sgn, label, colour, symbol in ((1, "buy fills", BUY_COLOUR, "triangle-up"), (-1, "sell fills", SELL_COLOUR, "triangle-down")):
            m = side == sgn
            fig.add_trace(go.Scatter(x=ft[m], y=price[m], name=label, mode="markers", marker={"color": colour, "symbol": symbol, "size": 7}))
    shown = f" (showing {fk.shape[0]} of {nf} fills)" if fk.shape[0] < nf else f" ({nf} fills)"
    fig.update_layout(title=f"Price, our quotes and fills{shown}", yaxis_title=f"{ccy} per {base}")
    figs["chart-price"] = fig

    # inventory
    k = minmax_indices(inv, max_points)
    fig = go.Figure(layout=layout)
    fig.add_trace(go.Scatter(x=times[k], y=inv[k], name="inventory", mode="lines", line={"color": "#3366cc", "shape": "hv"}, fill="tozeroy"))
    limit = rec.summary.get("max_inventory_limit")
    if isinstance(limit, (int, float)) and times.shape[0]:
        for sgn in (1, -1):
            fig.add_trace(go.Scatter(x=[times[0], times[-1]], y=[sgn * limit] * 2, name="limit" if sgn > 0 else None, mode="lines", line={"color": "#999", "dash": "dash"}, showlegend=sgn > 0))
    fig.update_layout(title="Inventory", yaxis_title=base)
    figs["chart-inventory"] = fig

    # cumulative PnL gross vs net
    k = np.union1d(minmax_indices(net, max_points), minmax_indices(gross, max_points))
    fig = go.Figure(layout=layout)
    fig.add_trace(go.Scatter(x=times[k], y=gross[k], name="gross PnL", mode="lines", line={"color": "#7f7f7f"}))
    fig.add_trace(go.Scatter(x=times[k], y=net[k], name="net PnL (after fees, slippage)", mode="lines", line={"color": "#1f77b4"}))
    fig.update_layout(title="Cumulative PnL: gross vs net", yaxis_title=ccy)
    figs["chart-pnl"] = fig

    # spread
    with np.errstate(invalid="ignore", divide="ignore"):
        ours = (ask - bid) / mid * 10_000
        if rec.kind == "bars":
            market = (_col(rec, "high") - _col(rec, "low")) / mid * 10_000
            market_name = "bar range high-low"
        else:
            mb, ma = _col(rec, "market_bid"), _col(rec, "market_ask")
            market = (ma - mb) / ((ma + mb) / 2) * 10_000
            market_name = "market spread (touch)"
    k = np.union1d(minmax_indices(ours, max_points), minmax_indices(market, max_points))
    fig = go.Figure(layout=layout)
    fig.add_trace(go.Scatter(x=times[k], y=ours[k], name="our quoted spread", mode="lines", line={"color": "#ff7f0e", "shape": "hv"}))
    fig.add_trace(go.Scatter(x=times[k], y=market[k], name=market_name, mode="lines", line={"color": "#9467bd", "width": 1}, opacity=0.7))
    fig.update_layout(title="Spread", yaxis_title="bps of mid")
    figs["chart-spread"] = fig

    # drawdown
    dd = np.asarray(drawdown_series(np.nan_to_num(net).tolist()), dtype=np.float64)
    k = minmax_indices(dd, max_points)
    fig = go.Figure(layout=layout)
    fig.add_trace(go.Scatter(x=times[k], y=-dd[k], name="drawdown", mode="lines", line={"color": "#d62728"}, fill="tozeroy"))
    fig.update_layout(title=f"Drawdown of net PnL (max {dd.max(initial=0.0):,.2f} {ccy})", yaxis_title=ccy)
    figs["chart-drawdown"] = fig

    # fill markouts
    fig = go.Figure(layout=layout)
    horizons = [c for c in f if c.startswith("markout_")]
    labels = [c.removeprefix("markout_").removesuffix("_bps") for c in horizons]
    for sgn, label, colour in ((1, "buys", BUY_COLOUR), (-1, "sells", SELL_COLOUR), (0, "all fills", "#1f77b4")):
        means = []
        counts = []
        for c in horizons:
            vals = f[c] if sgn == 0 else f[c][f["side"] == sgn]
            vals = vals[~np.isnan(vals)]
            means.append(float(vals.mean()) if vals.shape[0] else 0.0)
            counts.append(int(vals.shape[0]))
        fig.add_trace(go.Bar(x=labels, y=means, name=label, marker_color=colour, customdata=counts, hovertemplate="%{y:.3f} bps over %{customdata} fills"))
    fig.update_layout(title="Fill markouts: mean signed mid move after fills (> 0: the price moved our way)", yaxis_title="bps", barmode="group")
    if not nf:
        fig.add_annotation(text="no fills in this run", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    figs["chart-markouts"] = fig
    return figs


def _summary_table(rec: RunRecord) -> str:
    rows = []
    summ = rec.summary
    ccy = summ.get("quote_ccy", "")
    for key, label in SUMMARY_ROWS:
        if key not in summ:
            continue
        v = summ[key]
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = float(v)
        unit = f" {ccy}" if key in ("gross_pnl", "net_pnl", "fees_paid", "slippage_paid", "max_drawdown") else ""
        if v is None and key in CONTEXT_FIELDS and summ.get("sharpe_note"):
            v = "n/a (run too short)"
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{_fmt(v)}{html.escape(unit)}</td></tr>")
    span = f"data {summ['data_start']} to {summ['data_end']}" if summ.get("data_start") else ""
    caption = f"<caption>{html.escape(span)}</caption>" if span else ""
    return "<table class='metrics'>" + caption + "".join(rows) + "</table>"


ATTRIBUTION_LABELS = (
    ("spread_capture", "spread capture (fill vs mid at fill)"),
    ("adverse_selection", "adverse selection (mid move within the horizon)"),
    ("inventory_pnl", "inventory (mid move after the horizon, to the mark)"),
    ("fees", "fees"),
    ("rebates", "rebates"),
    ("net_pnl", "net PnL (sum)"),
)


def _attribution_table(rec: RunRecord) -> str:
    """The summary's ``pnl_attribution`` (:mod:`mmbot.portfolio.attribution`) as a table."""
    parts = rec.summary.get("pnl_attribution")
    if not isinstance(parts, dict):
        return ""
    unit = html.escape(str(parts.get("unit", "")))
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{float(parts[key]):,.4f} {unit}</td></tr>"
        for key, label in ATTRIBUTION_LABELS
        if key in parts
    )
    caption = f"PnL attribution (horizon {html.escape(str(parts.get('horizon_s')))} s)"
    return f"<table class='attribution'><caption>{caption}</caption>{rows}</table>"


def _notes(rec: RunRecord) -> str:
    notes = [str(n) for n in rec.summary.get("data_notes", [])]
    return "".join(f"<li>{html.escape(n)}</li>" for n in notes)


def write_html(rec: RunRecord, path: str | Path, figs: dict[str, Any] | None = None) -> Path:
    require(RESEARCH, "the HTML run report", "plotly")
    import plotly.io as pio  # plotly is heavy and optional: only when a report is written
    from plotly.offline import get_plotlyjs  # plotly is heavy and optional: only when a report is written

    figs = figs or build_figures(rec)
    out = Path(path)
    summ = rec.summary
    title = f"mmbot {rec.kind} run {summ.get('run_id', '')}"
    parts = []
    for div_id in CHART_IDS:
        fig_html = pio.to_html(
            figs[div_id], full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False, "responsive": True}
        )
        parts.append(f"<section class='chart'>{fig_html}</section>")
    info = {
        "mode": summ.get("mode"),
        "symbol": summ.get("symbol"),
        "data": summ.get("data_source") or summ.get("bars_source"),
        "parameters": summ.get("parameters"),
    }
    info_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in info.items() if v is not None
    )
    notes = _notes(rec)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: DejaVu Sans, Arial, sans-serif; margin: 16px 24px; color: #222; }}
h1 {{ font-size: 20px; }} table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; }} th {{ background: #f5f5f5; font-weight: normal; }}
.cols {{ display: flex; gap: 24px; flex-wrap: wrap; }} section.chart {{ margin: 6px 0 14px; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<div class="cols"><div>{_summary_table(rec)}</div><div>{_attribution_table(rec)}</div><div><table>{info_rows}</table>{f"<ul>{notes}</ul>" if notes else ""}</div></div>
{"".join(parts)}
</body></html>
"""
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    return out


def write_png(rec: RunRecord, path: str | Path, max_points: int = 4000) -> Path:
    """The main chart as a PNG: price with quotes and fills, inventory, PnL."""
    require(RESEARCH, "the PNG chart of a run", "matplotlib")
    import matplotlib  # matplotlib is heavy and optional: only for the PNG chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib is heavy and optional: only for the PNG chart

    s = rec.series
    times = _times(s["ts_ns"])
    mid, bid, ask = _col(rec, "mid"), _col(rec, "bid"), _col(rec, "ask")
    inv, gross, net = _col(rec, "inventory"), _col(rec, "gross_pnl"), _col(rec, "net_pnl")
    k = minmax_indices(mid, max_points)
    ccy = rec.summary.get("quote_ccy", "")
    fig, axes = plt.subplots(3, 1, figsize=(13, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2, 1.2]})
    ax = axes[0]
    ax.plot(times[k], mid[k], color="#444", lw=0.8, label="mid" if rec.kind != "bars" else "close")
    ax.plot(times[k], bid[k], color=BUY_COLOUR, lw=0.6, alpha=0.6, drawstyle="steps-post", label="our bid")
    ax.plot(times[k], ask[k], color=SELL_COLOUR, lw=0.6, alpha=0.6, drawstyle="steps-post", label="our ask")
    f = rec.fills
    nf = f["ts_ns"].shape[0] if "ts_ns" in f else 0
    if nf:
        fk = thin(nf, MAX_FILLS)
        ft = _times(f["ts_ns"][fk])
        side, price = f["side"][fk], f["price"][fk]
        ax.scatter(ft[side > 0], price[side > 0], marker="^", s=14, color=BUY_COLOUR, label="buy fills", zorder=3)
        ax.scatter(ft[side < 0], price[side < 0], marker="v", s=14, color=SELL_COLOUR, label="sell fills", zorder=3)
    summ = rec.summary
    ax.set_title(
        f"{summ.get('symbol', '')} {rec.kind} run {summ.get('run_id', '')}: {summ.get('fills', nf)} fills, "
        f"net PnL {_num(summ.get('net_pnl'))} {ccy}, Sharpe {_num(summ.get('sharpe'))}, "
        f"max DD {_num(summ.get('max_drawdown'))} {ccy}, max |inv| {_num(summ.get('max_inventory'))}",
        fontsize=10,
    )
    ax.set_ylabel(f"price ({ccy})")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    ax.grid(alpha=0.3)
    ki = minmax_indices(inv, max_points)
    axes[1].fill_between(times[ki], inv[ki], step="post", color="#3366cc", alpha=0.5)
    axes[1].set_ylabel("inventory")
    axes[1].grid(alpha=0.3)
    kp = np.union1d(minmax_indices(net, max_points), minmax_indices(gross, max_points))
    axes[2].plot(times[kp], gross[kp], color="#7f7f7f", lw=0.9, label="gross")
    axes[2].plot(times[kp], net[kp], color="#1f77b4", lw=0.9, label="net")
    axes[2].set_ylabel(f"PnL ({ccy})")
    axes[2].legend(loc="upper left", fontsize=8)
    axes[2].grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _num(v: Any) -> str:
    if v is None:
        return "n/a"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{x:,.2f}"


def write_report(rec: RunRecord, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write report.html and report.png (default: into the record's directory)."""
    require(RESEARCH, "the run report", *REPORT_MODULES)  # both checked before either file is written
    d = Path(out_dir) if out_dir is not None else rec.dir
    d.mkdir(parents=True, exist_ok=True)
    html_path = write_html(rec, d / "report.html")
    png_path = write_png(rec, d / "report.png")
    return html_path, png_path

