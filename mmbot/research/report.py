"""HTML and PNG reports of a run record (``mmbot report RUN_OR_SUMMARY``).

Every chart uses SVG traces (``go.Scatter``/``go.Bar``, never WebGL ``scattergl``).
Charts (div ids in brackets):

- price: the mid, each of our orders as a segment from its ack to its end at its
  exact price, and every fill at its exact time and price [chart-price]
- risk state timeline (ACTIVE / REDUCING / HALTED, from the exact state changes) with
  the cumulative gate denials [chart-risk]
- inventory, with the limit [chart-inventory]
- cumulative PnL, gross vs net [chart-pnl]
- spread: our quoted spread and the market's (L2) or the bar's high-low range (bars), bps [chart-spread]
- drawdown of net PnL [chart-drawdown]
- fill reasons: fills per fill rule and side, and the mean markout per rule [chart-fill-reasons]
- fill markouts: mean bps by horizon, buys and sells [chart-markouts]
- markout distributions: a histogram per horizon, buys and sells stacked [chart-markout-dist]

and a sortable fills table [fills-table] (click a header; ``#fills-sort=<column>:desc``
in the address sorts on load).

Size: plotly.js (4.7 MB) is not inlined by default. It is written once as
``plotly-<version>.min.js`` into the directory that holds the run directories (the
report's parent directory, ``record.dir`` for a default run) and every report there
loads it by a relative path: one shared bundle, no network needed; a page whose bundle
is missing says so. ``inline_plotly=True`` (``mmbot report --self-contained``) inlines
it for a single file to send. Times are sent as epoch milliseconds in binary arrays
(the x axes are date axes), not as text.

Downsampling (display only; metrics use every sample): the series is cut into
``max_points / 2`` equal buckets and each bucket keeps the samples where the chart's
main line is lowest and highest, so spikes and drawdowns stay visible. The exact fills
are always kept: the mid line also holds the mid at every fill time, every fill is a
marker (thinned to an even stride only beyond ``max_fills``, the title says so), and
orders with fills are always drawn (the others are thinned beyond ``max_orders``).
The fills table shows the first ``MAX_TABLE_ROWS`` fills (all of them are in fills.csv).

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

from mmbot.errors import DataError
from mmbot.extras import REPORT_MODULES, RESEARCH, require
from mmbot.portfolio.metrics import CONTEXT_FIELDS, drawdown_series
from mmbot.research.record import Columns, RunRecord, iso_ns, parse_iso_ns

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

CHART_IDS = (
    "chart-price", "chart-risk", "chart-inventory", "chart-pnl", "chart-spread", "chart-drawdown",
    "chart-fill-reasons", "chart-markouts", "chart-markout-dist",
)  # fmt: skip
FILLS_TABLE_ID = "fills-table"
MAX_POINTS = 2000
MAX_FILLS = 20_000
MAX_ORDERS = 5_000  # order segments drawn per side at most (orders with fills always)
MAX_TABLE_ROWS = 2_000
HIST_BINS = 30
BUY_COLOUR = "#1a9850"
SELL_COLOUR = "#d73027"
RISK_STATES = ("ACTIVE", "REDUCING", "HALTED")
RISK_COLOURS = {"ACTIVE": "#1a9850", "REDUCING": "#fdae61", "HALTED": "#d73027"}


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


def _ms(ts_ns: F64) -> F64:
    """Epoch milliseconds (what a plotly date axis reads from a number); NaN stays NaN."""
    return np.asarray(ts_ns, dtype=np.float64) / 1e6


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


def _markout_columns(fills: dict[str, F64]) -> list[tuple[str, str]]:
    """(column, label) of each markout horizon, shortest first."""
    cols = [c for c in fills if c.startswith("markout_") and c.endswith("_bps")]
    labels = [c.removeprefix("markout_").removesuffix("_bps") for c in cols]
    return sorted(zip(cols, labels, strict=True), key=lambda cl: float(cl[1].rstrip("s") or 0))


def _layout(**extra: Any) -> dict[str, Any]:
    base = {
        "height": 380, "margin": {"l": 70, "r": 20, "t": 50, "b": 40}, "hovermode": "closest",
        "template": "plotly", "plot_bgcolor": "#e8edf5", "showlegend": True,
    }  # fmt: skip
    base.update(extra)
    return base


def _date_axes(fig: Any) -> None:
    fig.update_xaxes(type="date", hoverformat="%Y-%m-%d %H:%M:%S.%L")


def _order_segments(orders: Columns, sign: int, end_ns: float, max_orders: int) -> tuple[F64, F64, int, int]:
    """x (ms), y of one side's order segments, NaN-separated: (x, y, drawn, total).

    A segment runs from the ack (the placement if never acked) to the fill, cancel or
    reject, or to the end of the run for an order still open."""
    o = orders.num
    if orders.rows == 0 or "side" not in o:
        return np.empty(0), np.empty(0), 0, 0
    sel = np.flatnonzero(o["side"] == sign)
    total = int(sel.shape[0])
    if total > max_orders:
        filled = sel[np.nan_to_num(o["filled_qty"][sel]) > 0]
        rest = sel[np.nan_to_num(o["filled_qty"][sel]) <= 0]
        room = max(0, max_orders - filled.shape[0])
        sel = np.union1d(filled, rest[thin(rest.shape[0], room)] if room else np.empty(0, dtype=np.int64))
    start = np.where(np.isnan(o["acked_ns"][sel]), o["placed_ns"][sel], o["acked_ns"][sel])
    end = np.where(np.isnan(o["ended_ns"][sel]), end_ns, o["ended_ns"][sel])
    n = sel.shape[0]
    x = np.full(3 * n, np.nan)
    y = np.full(3 * n, np.nan)
    x[0::3], x[1::3] = _ms(start), _ms(end)
    y[0::3] = y[1::3] = o["price"][sel]
    return x, y, int(n), total


def _price_figure(rec: RunRecord, go: Any, max_points: int, max_fills: int) -> Any:
    ts = rec.series["ts_ns"]
    mid, bid, ask = _col(rec, "mid"), _col(rec, "bid"), _col(rec, "ask")
    ccy = rec.summary.get("quote_ccy", "")
    base = str(rec.summary.get("symbol", "/")).split("/")[0]
    f, text = rec.fills, rec.fill_text
    nf = f["ts_ns"].shape[0] if "ts_ns" in f else 0
    fig = go.Figure(layout=_layout(height=460))
    # The mid: downsampled samples plus the exact mid at every fill, in time order.
    k = minmax_indices(mid, max_points)
    mx, my = _ms(ts[k]), mid[k]
    if nf and "mid_ref" in f:
        mx, my = np.concatenate([mx, _ms(f["ts_ns"])]), np.concatenate([my, f["mid_ref"]])
        order = np.argsort(mx, kind="stable")
        mx, my = mx[order], my[order]
    fig.add_trace(go.Scatter(x=mx, y=my, name="mid" if rec.kind != "bars" else "close", mode="lines", line={"color": "#444", "width": 1}, connectgaps=True))
    end_ns = float(np.nanmax(ts)) if ts.shape[0] else 0.0
    notes = []
    if rec.orders.rows:
        for sgn, label, colour in ((1, "our bids (orders)", BUY_COLOUR), (-1, "our asks (orders)", SELL_COLOUR)):
            x, y, drawn, total = _order_segments(rec.orders, sgn, end_ns, MAX_ORDERS)
            fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines", line={"color": colour, "width": 1.5}, opacity=0.55, connectgaps=False, hoverinfo="skip"))
            if drawn < total:
                notes.append(f"{drawn} of {total} {'bid' if sgn > 0 else 'ask'} orders drawn")
    else:  # bars: the quote of each bar is exact at the bar's resolution
        k = minmax_indices(mid, max_points)
        fig.add_trace(go.Scatter(x=_ms(ts[k]), y=bid[k], name="our bid", mode="lines", line={"color": BUY_COLOUR, "width": 1, "shape": "hv"}, opacity=0.6))
        fig.add_trace(go.Scatter(x=_ms(ts[k]), y=ask[k], name="our ask", mode="lines", line={"color": SELL_COLOUR, "width": 1, "shape": "hv"}, opacity=0.6))
    fk = thin(nf, max_fills)
    if nf:
        side = f["side"][fk]
        cols = [c for c in ("order_id", "reason", "liquidity") if c in text]
        hover = np.array([[text[c][i] for c in cols] for i in fk.tolist()], dtype=object) if cols else None
        for sgn, label, colour, symbol in ((1, "buy fills", BUY_COLOUR, "triangle-up"), (-1, "sell fills", SELL_COLOUR, "triangle-down")):
            m = side == sgn
            custom = None if hover is None else hover[m]
            template = "%{x}<br>%{y} " + str(ccy)
            if cols:
                template += "".join(f"<br>{c}: %{{customdata[{j}]}}" for j, c in enumerate(cols))
            fig.add_trace(go.Scatter(
                x=_ms(f["ts_ns"][fk][m]), y=f["price"][fk][m], name=label, mode="markers", customdata=custom,
                hovertemplate=template + "<extra></extra>", marker={"color": colour, "symbol": symbol, "size": 8, "line": {"width": 0.5, "color": "#222"}},
            ))  # fmt: skip
    shown = f"showing {fk.shape[0]} of {nf} fills" if fk.shape[0] < nf else f"{nf} fills at their exact time and price"
    fig.update_layout(title="Price, our orders and fills (" + "; ".join([shown, *notes]) + ")", yaxis_title=f"{ccy} per {base}")
    _date_axes(fig)
    return fig


def _risk_figure(rec: RunRecord, go: Any) -> Any:
    ts = rec.series["ts_ns"]
    start_state = str(rec.summary.get("record", {}).get("risk_state_start") or "ACTIVE")
    start = rec.summary.get("record", {}).get("start")
    t0 = float(parse_iso_ns(start)) if start else (float(np.nanmin(ts)) if ts.shape[0] else 0.0)
    t_end = float(np.nanmax(ts)) if ts.shape[0] else t0
    r = rec.risk
    change_ts = r.num.get("ts_ns", np.empty(0))
    new = list(r.text.get("new", ()))
    times = np.concatenate([[t0], change_ts, [max(t_end, float(change_ts.max(initial=t0)))]])
    states = [start_state, *new, new[-1] if new else start_state]
    durations = np.diff(times)
    share = {s: float(durations[[i for i, st in enumerate(states[:-1]) if st == s]].sum()) for s in RISK_STATES}
    span = float(durations.sum()) or 1.0
    fig = go.Figure(layout=_layout(height=300, yaxis={"type": "category", "categoryorder": "array", "categoryarray": list(RISK_STATES), "title": "risk state"}))
    fig.add_trace(go.Scatter(x=_ms(times), y=states, name="risk state", mode="lines", line={"shape": "hv", "color": "#333", "width": 2}))
    if r.rows:
        hover = [f"{o} → {n}<br>reasons: {rs or '–'}<br>cause: {c}" for o, n, rs, c in zip(r.text["old"], new, r.text["reasons"], r.text["cause"], strict=True)]
        fig.add_trace(go.Scatter(
            x=_ms(change_ts), y=new, name="state changes", mode="markers", text=hover, hovertemplate="%{x}<br>%{text}<extra></extra>",
            marker={"color": [RISK_COLOURS.get(s, "#333") for s in new], "size": 9, "symbol": "diamond"},
        ))  # fmt: skip
    denials = rec.series.get("risk_denials")
    if denials is not None:
        k = minmax_indices(denials)
        fig.add_trace(go.Scatter(x=_ms(ts[k]), y=denials[k], name="gate denials (cumulative)", mode="lines", yaxis="y2", line={"color": "#7570b3", "dash": "dot", "shape": "hv"}))
        top = max(1.0, float(np.nanmax(denials, initial=0.0))) * 1.05
        fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "title": "denials", "range": [0, top], "showgrid": False})
    time_in = ", ".join(f"{s} {share[s] / span:.1%}" for s in RISK_STATES)
    dropped = int(rec.summary.get("record", {}).get("risk_changes_dropped") or 0)
    title = f"Risk state: {r.rows} change{'s' if r.rows != 1 else ''}{f' (+{dropped} not kept)' if dropped else ''}; time in {time_in}"
    if rec.kind == "bars":
        title = "Risk state: the bar backtest has no risk gate (ACTIVE throughout)"
    fig.update_layout(title=title, margin={"l": 90, "r": 60, "t": 50, "b": 40})
    _date_axes(fig)
    return fig


def _fill_reasons_figure(rec: RunRecord, go: Any) -> Any:
    from plotly.subplots import make_subplots  # plotly is heavy and optional: only when a report is written

    f, text = rec.fills, rec.fill_text
    reasons = np.array(text.get("reason", ()), dtype=object)
    nf = reasons.shape[0]
    names = sorted(set(reasons.tolist()), key=lambda r: -int((reasons == r).sum())) if nf else []
    fig = make_subplots(rows=1, cols=2, subplot_titles=("fills per fill rule", "mean markout per fill rule, bps (> 0: the price moved our way)"), horizontal_spacing=0.12)
    fig.update_layout(_layout(barmode="group"))
    liquidity = np.array(text.get("liquidity", ("",) * nf), dtype=object)
    for sgn, label, colour in ((1, "buys", BUY_COLOUR), (-1, "sells", SELL_COLOUR)):
        counts = [int(((reasons == r) & (f["side"] == sgn)).sum()) for r in names]
        taker = [int(((reasons == r) & (f["side"] == sgn) & (liquidity == "taker")).sum()) for r in names]
        fig.add_trace(go.Bar(x=names, y=counts, name=label, marker_color=colour, customdata=taker, hovertemplate="%{y} fills (%{customdata} taker)<extra>" + label + "</extra>"), row=1, col=1)
    palette = ("#9ecae1", "#4292c6", "#08519c", "#08306b")
    for j, (c, lab) in enumerate(_markout_columns(f)):
        means, ns = [], []
        for r in names:
            v = f[c][reasons == r]
            v = v[~np.isnan(v)]
            means.append(float(v.mean()) if v.shape[0] else 0.0)
            ns.append(int(v.shape[0]))
        fig.add_trace(go.Bar(x=names, y=means, name=f"markout {lab}", marker_color=palette[j % len(palette)], customdata=ns, hovertemplate="%{y:.3f} bps over %{customdata} fills"), row=1, col=2)
    fig.update_layout(title=f"Fill reasons: {nf} fills by the rule that filled them", margin={"l": 70, "r": 20, "t": 90, "b": 40})
    fig.update_yaxes(title_text="fills", row=1, col=1)
    fig.update_yaxes(title_text="bps", row=1, col=2)
    if not nf:
        fig.add_annotation(text="no fills in this run", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _histogram(values: F64, bins: int = HIST_BINS) -> tuple[F64, float]:
    """Bin edges over the 1st..99th percentile (values beyond go in the end bins), width."""
    if values.shape[0] == 0:
        return np.linspace(-1.0, 1.0, bins + 1), 2.0 / bins
    lo, hi = np.percentile(values, [1, 99])
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    return edges, float(edges[1] - edges[0])


def _markout_dist_figure(rec: RunRecord, go: Any) -> Any:
    from plotly.subplots import make_subplots  # plotly is heavy and optional: only when a report is written

    f = rec.fills
    horizons = _markout_columns(f) or [("", "none")]
    titles = []
    for c, lab in horizons:
        v = f[c][~np.isnan(f[c])] if c else np.empty(0)
        stats = f"mean {v.mean():+.2f}, median {np.median(v):+.2f} bps, n={v.shape[0]}" if v.shape[0] else "no markouts"
        titles.append(f"{lab}: {stats}")
    fig = make_subplots(rows=1, cols=len(horizons), subplot_titles=titles, horizontal_spacing=0.06)
    fig.update_layout(_layout(barmode="stack", height=340))
    for j, (c, _lab) in enumerate(horizons, start=1):
        values = f[c] if c else np.empty(0)
        ok = ~np.isnan(values)
        edges, width = _histogram(values[ok])
        centres = (edges[:-1] + edges[1:]) / 2
        for sgn, label, colour in ((1, "buys", BUY_COLOUR), (-1, "sells", SELL_COLOUR)):
            v = np.clip(values[ok & (f["side"] == sgn)], edges[0], edges[-1])
            counts, _ = np.histogram(v, bins=edges)
            fig.add_trace(go.Bar(x=centres, y=counts, width=width, name=label, marker_color=colour, showlegend=j == 1, legendgroup=label, hovertemplate="%{x:.2f} bps: %{y} fills<extra>" + label + "</extra>"), row=1, col=j)
        fig.add_vline(x=0, line={"color": "#333", "width": 1, "dash": "dash"}, row=1, col=j)
        fig.update_xaxes(title_text="bps (end bins hold the tails)", row=1, col=j)
    fig.update_yaxes(title_text="fills", row=1, col=1)
    fig.update_layout(title="Markout distributions: signed mid move after each fill, by horizon (> 0: the price moved our way)", margin={"l": 70, "r": 20, "t": 90, "b": 50})
    return fig


def build_figures(rec: RunRecord, max_points: int = MAX_POINTS, max_fills: int = MAX_FILLS) -> dict[str, Any]:
    """The plotly figures, keyed by their div id (``CHART_IDS``)."""
    require(RESEARCH, "the run report's charts", "plotly")
    import plotly.graph_objects as go  # plotly is heavy and optional: only when a report is written

    s = rec.series
    ts = s["ts_ns"]
    times = _ms(ts)
    mid = _col(rec, "mid")
    bid = _col(rec, "bid")
    ask = _col(rec, "ask")
    inv = _col(rec, "inventory")
    gross = _col(rec, "gross_pnl")
    net = _col(rec, "net_pnl")
    ccy = rec.summary.get("quote_ccy", "")
    base = str(rec.summary.get("symbol", "/")).split("/")[0]
    figs: dict[str, Any] = {"chart-price": _price_figure(rec, go, max_points, max_fills), "chart-risk": _risk_figure(rec, go)}

    # inventory
    k = minmax_indices(inv, max_points)
    fig = go.Figure(layout=_layout(hovermode="x"))
    fig.add_trace(go.Scatter(x=times[k], y=inv[k], name="inventory", mode="lines", line={"color": "#3366cc", "shape": "hv"}, fill="tozeroy"))
    limit = rec.summary.get("max_inventory_limit")
    if isinstance(limit, (int, float)) and times.shape[0]:
        for sgn in (1, -1):
            fig.add_trace(go.Scatter(x=[times[0], times[-1]], y=[sgn * limit] * 2, name="limit" if sgn > 0 else None, mode="lines", line={"color": "#999", "dash": "dash"}, showlegend=sgn > 0))
    fig.update_layout(title="Inventory", yaxis_title=base)
    figs["chart-inventory"] = fig

    # cumulative PnL gross vs net
    k = np.union1d(minmax_indices(net, max_points), minmax_indices(gross, max_points))
    fig = go.Figure(layout=_layout(hovermode="x"))
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
    fig = go.Figure(layout=_layout(hovermode="x"))
    fig.add_trace(go.Scatter(x=times[k], y=ours[k], name="our quoted spread", mode="lines", line={"color": "#ff7f0e", "shape": "hv"}))
    fig.add_trace(go.Scatter(x=times[k], y=market[k], name=market_name, mode="lines", line={"color": "#9467bd", "width": 1}, opacity=0.7))
    fig.update_layout(title="Spread", yaxis_title="bps of mid")
    figs["chart-spread"] = fig

    # drawdown
    dd = np.asarray(drawdown_series(np.nan_to_num(net).tolist()), dtype=np.float64)
    k = minmax_indices(dd, max_points)
    fig = go.Figure(layout=_layout(hovermode="x"))
    fig.add_trace(go.Scatter(x=times[k], y=-dd[k], name="drawdown", mode="lines", line={"color": "#d62728"}, fill="tozeroy"))
    fig.update_layout(title=f"Drawdown of net PnL (max {dd.max(initial=0.0):,.2f} {ccy})", yaxis_title=ccy)
    figs["chart-drawdown"] = fig
    for cid in ("chart-inventory", "chart-pnl", "chart-spread", "chart-drawdown"):
        _date_axes(figs[cid])

    figs["chart-fill-reasons"] = _fill_reasons_figure(rec, go)

    # fill markouts
    f = rec.fills
    nf = f["ts_ns"].shape[0] if "ts_ns" in f else 0
    fig = go.Figure(layout=_layout())
    horizons = _markout_columns(f)
    for sgn, label, colour in ((1, "buys", BUY_COLOUR), (-1, "sells", SELL_COLOUR), (0, "all fills", "#1f77b4")):
        means = []
        counts = []
        for c, _lab in horizons:
            vals = f[c] if sgn == 0 else f[c][f["side"] == sgn]
            vals = vals[~np.isnan(vals)]
            means.append(float(vals.mean()) if vals.shape[0] else 0.0)
            counts.append(int(vals.shape[0]))
        fig.add_trace(go.Bar(x=[lab for _c, lab in horizons], y=means, name=label, marker_color=colour, customdata=counts, hovertemplate="%{y:.3f} bps over %{customdata} fills"))
    fig.update_layout(title="Fill markouts: mean signed mid move after fills (> 0: the price moved our way)", yaxis_title="bps", barmode="group")
    if not nf:
        fig.add_annotation(text="no fills in this run", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    figs["chart-markouts"] = fig
    figs["chart-markout-dist"] = _markout_dist_figure(rec, go)
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


TABLE_COLUMNS = (
    # (header, fills column or derived key, kind)
    ("time (UTC)", "ts_ns", "time"),
    ("order id", "order_id", "text"),
    ("side", "side", "side"),
    ("price", "price", "num"),
    ("qty", "qty", "num"),
    ("liquidity", "liquidity", "text"),
    ("reason", "reason", "text"),
    ("queue ahead", "queue_ahead", "num"),
    ("position after", "position", "num"),
    ("fee", "fee", "num"),
    ("mid at fill", "mid_ref", "num"),
    ("edge vs mid, bps", "edge_bps", "num"),
)

SORT_SCRIPT = """
(function () {
  var table = document.getElementById('fills-table');
  if (!table) return;
  var body = table.tBodies[0];
  function sortBy(col, desc) {
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
      var nx = parseFloat(x), ny = parseFloat(y), r;
      if (!isNaN(nx) && !isNaN(ny)) r = nx - ny;
      else if (isNaN(nx) !== isNaN(ny)) r = isNaN(nx) ? 1 : -1;
      else r = x < y ? -1 : (x > y ? 1 : 0);
      return desc ? -r : r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute('aria-sort', i === col ? (desc ? 'descending' : 'ascending') : 'none');
    });
    table.setAttribute('data-sorted', table.tHead.rows[0].cells[col].getAttribute('data-key') + (desc ? ':desc' : ':asc'));
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.addEventListener('click', function () { sortBy(i, th.getAttribute('aria-sort') === 'ascending'); });
  });
  var m = /fills-sort=([\\w-]+)(?::(asc|desc))?/.exec(location.hash);
  if (m) {
    var cells = table.tHead.rows[0].cells;
    for (var i = 0; i < cells.length; i++) if (cells[i].getAttribute('data-key') === m[1]) sortBy(i, m[2] === 'desc');
  }
  table.setAttribute('data-sortable', 'ready');
})();
"""

PLOTLY_MISSING_SCRIPT = """
if (typeof Plotly === 'undefined') {
  var p = document.createElement('p'); p.className = 'error';
  p.textContent = 'The charts need plotly.js, expected at %s next to this report\\'s directory; '
    + 'it is missing (moved or deleted). Run `mmbot report <run> --self-contained` for a single-file report.';
  document.body.insertBefore(p, document.body.firstChild);
}
"""


def _number(x: float, decimals: int) -> str:
    """Fixed point with trailing zeros trimmed (no exponent: quantities read as quantities)."""
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fills_table(rec: RunRecord, max_rows: int = MAX_TABLE_ROWS) -> str:
    f, text = rec.fills, rec.fill_text
    n = f["ts_ns"].shape[0] if "ts_ns" in f else 0
    columns = list(TABLE_COLUMNS) + [(f"markout {lab}, bps", c, "num") for c, lab in _markout_columns(f)]
    with np.errstate(invalid="ignore", divide="ignore"):
        derived = {"edge_bps": f["side"] * (f["mid_ref"] - f["price"]) / f["mid_ref"] * 10_000} if n and "mid_ref" in f else {}
    columns = [c for c in columns if c[1] in f or c[1] in text or c[1] in derived]
    head = "".join(f"<th data-key='{html.escape(key)}' aria-sort='none'>{html.escape(label)}</th>" for label, key, _kind in columns)
    rows = []
    for i in range(min(n, max_rows)):
        cells = []
        for _label, key, kind in columns:
            if kind == "text":
                v = text[key][i]
                cells.append(f"<td data-v='{html.escape(v)}'>{html.escape(v)}</td>")
                continue
            x = float(derived[key][i] if key in derived else f[key][i])
            if math.isnan(x):
                cells.append("<td data-v=''>–</td>")
            elif kind == "time":
                exact = text["time"][i] if "time" in text else iso_ns(int(x))  # v1 records: from the float
                cells.append(f"<td data-v='{html.escape(exact)}'>{html.escape(exact)}</td>")
            elif kind == "side":
                cells.append(f"<td data-v='{int(x)}' class='{'buy' if x > 0 else 'sell'}'>{'buy' if x > 0 else 'sell'}</td>")
            else:
                cells.append(f"<td data-v='{x!r}'>{_number(x, 3 if key.endswith('_bps') else 8)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f" (the first {max_rows} of {n}; every fill is in fills.csv)" if n > max_rows else ""
    caption = f"Fills: {n} at their exact capture time{more}. Click a column header to sort."
    return (
        f"<section class='fills'><table id='{FILLS_TABLE_ID}' class='fills'><caption>{html.escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def plotly_bundle(report_dir: Path) -> str:
    """Write plotly.js once into the directory holding the run directories; the ``src``.

    Written to ``report_dir.parent`` (shared by every report there) unless that is not
    writable, then into ``report_dir``. An existing bundle of the right size is reused.
    """
    from plotly.offline import get_plotlyjs, get_plotlyjs_version  # plotly is heavy and optional

    name = f"plotly-{get_plotlyjs_version()}.min.js"
    js = get_plotlyjs().encode("utf-8")
    for directory, src in ((report_dir.resolve().parent, f"../{name}"), (report_dir.resolve(), name)):
        target = directory / name
        try:
            if not (target.is_file() and target.stat().st_size == len(js)):
                tmp = target.with_name(f".{name}.{id(js)}.tmp")
                tmp.write_bytes(js)
                tmp.replace(target)
        except OSError:
            continue
        return src
    raise DataError(f"cannot write {name} into {report_dir.resolve().parent} or {report_dir.resolve()}")


def write_html(rec: RunRecord, path: str | Path, figs: dict[str, Any] | None = None, *, inline_plotly: bool = False) -> Path:
    require(RESEARCH, "the HTML run report", "plotly")
    import plotly.io as pio  # plotly is heavy and optional: only when a report is written
    from plotly.offline import get_plotlyjs  # plotly is heavy and optional: only when a report is written

    figs = figs or build_figures(rec)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
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
    if inline_plotly:
        plotly_tag = f'<script type="text/javascript">{get_plotlyjs()}</script>'
    else:
        src = plotly_bundle(out.parent)
        plotly_tag = f'<script type="text/javascript" src="{html.escape(src)}"></script>'
        parts.insert(0, f"<script>{PLOTLY_MISSING_SCRIPT % repr(src)}</script>")
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: DejaVu Sans, Arial, sans-serif; margin: 16px 24px; color: #222; max-width: 1400px; }}
h1 {{ font-size: 20px; }} table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; }} th {{ background: #f5f5f5; font-weight: normal; }}
.cols {{ display: flex; gap: 24px; flex-wrap: wrap; }} section.chart {{ margin: 6px 0 14px; }}
section.fills {{ max-height: 640px; overflow: auto; }} table.fills th {{ cursor: pointer; position: sticky; top: 0; }}
table.fills td {{ font-variant-numeric: tabular-nums; white-space: nowrap; }} td.buy {{ color: {BUY_COLOUR}; }} td.sell {{ color: {SELL_COLOUR}; }}
th[aria-sort=ascending]::after {{ content: " ▲"; }} th[aria-sort=descending]::after {{ content: " ▼"; }}
p.error {{ color: #b00; font-weight: bold; }} caption {{ text-align: left; font-weight: bold; padding: 4px 0; }}
</style>
{plotly_tag}
</head><body>
<h1>{html.escape(title)}</h1>
<div class="cols"><div>{_summary_table(rec)}</div><div>{_attribution_table(rec)}</div><div><table>{info_rows}</table>{f"<ul>{notes}</ul>" if notes else ""}</div></div>
{"".join(parts)}
{_fills_table(rec)}
<script>{SORT_SCRIPT}</script>
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


def write_report(rec: RunRecord, out_dir: str | Path | None = None, *, inline_plotly: bool = False) -> tuple[Path, Path]:
    """Write report.html and report.png (default: into the record's directory)."""
    require(RESEARCH, "the run report", *REPORT_MODULES)  # both checked before either file is written
    d = Path(out_dir) if out_dir is not None else rec.dir
    d.mkdir(parents=True, exist_ok=True)
    html_path = write_html(rec, d / "report.html", inline_plotly=inline_plotly)
    png_path = write_png(rec, d / "report.png")
    return html_path, png_path

