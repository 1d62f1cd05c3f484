"""Self-contained HTML report of a grid run: ranking, Pareto front, heatmaps, walk-forward.

plotly with its JavaScript inlined once (the file opens without a network), SVG
traces only (``Scatter``/``Heatmap``, never WebGL), so a headless browser renders it.

Heatmaps show, for each (row parameter, column parameter) cell, the *best* value of
the ranking objective over the other three parameters: the question a user asks is
"what is the most I can get with this spread and this skew". Signed objectives (net PnL,
Sharpe) use a diverging scale centred on zero (red loses, green makes money, white is
break-even), so the smallest loss is never drawn as a green "winner".

The report says what the numbers cannot: a banner when no combination is profitable and
warnings when the best combination is on the grid's edge, when a dimension is redundant
and when top ranks are identical (:mod:`mmbot.research.grid_checks`). The Pareto chart
draws the front computed on the two objectives it plots (net PnL up, max drawdown
down); the table below the ranking lists the front over all five objectives. Times are
ISO 8601 UTC; the page is laid out for a 1280-pixel-wide screen (charts 1200 px wide at
most, wide tables scroll inside their box).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from mmbot.extras import RESEARCH, require
from mmbot.portfolio.metrics import iso_utc
from mmbot.research.grid import COL, PARAM_NAMES
from mmbot.research.grid_checks import grid_warnings, no_profitable_banner
from mmbot.research.optimize import OBJECTIVES, GridResult, pareto_front
from mmbot.research.walkforward import WalkForwardResult

HEATMAPS: tuple[tuple[str, str], ...] = (
    ("spread_bps", "skew_factor"),
    ("spread_bps", "max_inventory"),
    ("order_size", "update_freq"),
)


def heatmap_matrix(result: GridResult, row: str, col: str, objective: str) -> tuple[list[float], list[float], list[list[float]]]:
    """(row values, column values, best objective per cell)."""
    ri = PARAM_NAMES.index(row)
    ci = PARAM_NAMES.index(col)
    rows = sorted(set(result.params[:, ri].tolist()))
    cols = sorted(set(result.params[:, ci].tolist()))
    values = result.objectives[:, COL[objective]]
    best = max if OBJECTIVES[objective] == "max" else min
    z: list[list[float]] = []
    for rv in rows:
        line = []
        for cv in cols:
            mask = (result.params[:, ri] == rv) & (result.params[:, ci] == cv)
            cell = [v for v in values[mask].tolist() if v == v]  # drop NaN
            line.append(best(cell) if cell else float("nan"))
        z.append(line)
    return rows, cols, z


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(records: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in records)
    return f"<div class='tbl'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


SIGNED_OBJECTIVES = frozenset({"net_pnl", "sharpe"})  # zero means break-even: the heatmap centres there

TABLE_COLUMNS = ["rank", *PARAM_NAMES, "net_pnl", "sharpe", "max_drawdown", "inventory_balance", "fill_rate", "fills"]


def write_report(
    path: str | Path,
    result: GridResult,
    *,
    objective: str,
    title: str,
    info: dict[str, Any],
    walk: WalkForwardResult | None = None,
    top: int = 20,
) -> Path:
    require(RESEARCH, "the optimizer report", "plotly")
    import plotly.graph_objects as go  # plotly is heavy and optional: only when a report is written
    import plotly.io as pio  # plotly is heavy and optional: only when a report is written

    order = result.ranking(objective)
    front = pareto_front(result.objectives)
    ccy = str(info.get("quote_ccy") or "quote ccy")
    records = result.records(order[:top])
    for k, r in enumerate(records, start=1):
        r["rank"] = k
    rank_of = {k: r for r, k in enumerate(order, start=1)}
    front_records = result.records(sorted(front, key=rank_of.__getitem__)[:top])
    for r in front_records:
        r["rank"] = rank_of[int(r["index"])]
    figs: list[tuple[str, Any]] = []

    pnl = result.objectives[:, COL["net_pnl"]]
    dd = result.objectives[:, COL["max_drawdown"]]
    labels = [", ".join(f"{n}={v:g}" for n, v in result.combo(k).items()) for k in range(result.size)]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=dd, y=pnl, mode="markers", name="all combinations", text=labels,
                             marker={"color": "#b0b0b0", "size": 5}))  # fmt: skip
    # The front drawn is computed on the two objectives drawn, so no "front" point sits inside the cloud.
    front2 = sorted(pareto_front(result.objectives, ("net_pnl", "max_drawdown")), key=lambda k: dd[k])
    fig.add_trace(go.Scatter(x=dd[front2], y=pnl[front2], mode="lines+markers", name=f"Pareto front ({len(front2)})",
                             text=[labels[k] for k in front2], marker={"color": "#d62728", "size": 8}))  # fmt: skip
    fig.update_layout(title="Pareto front over net PnL (higher) and max drawdown (lower): the two axes drawn",
                      xaxis_title=f"max drawdown ({ccy})", yaxis_title=f"net PnL ({ccy})", height=460)  # fmt: skip
    figs.append(("pareto", fig))

    for row, col in HEATMAPS:
        rows, cols, z = heatmap_matrix(result, row, col, objective)
        scale = "RdYlGn" if OBJECTIVES[objective] == "max" else "RdYlGn_r"
        centre = {"zmid": 0.0} if objective in SIGNED_OBJECTIVES else {}  # zero is break-even: white
        hm = go.Figure(go.Heatmap(z=z, x=[f"{c:g}" for c in cols], y=[f"{r:g}" for r in rows], colorscale=scale,
                                  colorbar={"title": objective}, text=np.round(np.array(z), 1).tolist(),
                                  texttemplate="%{text}", **centre))  # fmt: skip
        hm.update_layout(title=f"best {objective} by {row} x {col}" + (" (scale centred on 0)" if centre else ""),
                         xaxis_title=col, yaxis_title=row, height=400)  # fmt: skip
        hm.update_xaxes(type="category")
        hm.update_yaxes(type="category")
        figs.append((f"heatmap_{row}_{col}", hm))

    wf_html = ""
    if walk is not None:
        s = walk.summary()
        wrec = [
            {"window": w.index, "train_start": iso_utc(w.train_start_ms * 1_000_000),
             "test_start": iso_utc(w.test_start_ms * 1_000_000), **w.params,
             "is_net_pnl": w.in_sample["net_pnl"], "oos_net_pnl": w.out_of_sample["net_pnl"],
             "is_sharpe": w.in_sample["sharpe"], "oos_fill_rate": w.out_of_sample["fill_rate"]}
            for w in walk.windows
        ]  # fmt: skip
        wf = go.Figure()
        x = [w.index for w in walk.windows]
        wf.add_trace(go.Bar(x=x, y=[w.out_of_sample["net_pnl"] for w in walk.windows], name="out-of-sample net PnL"))
        wf.add_trace(go.Scatter(x=x, y=np.cumsum([w.out_of_sample["net_pnl"] for w in walk.windows]).tolist(),
                                mode="lines+markers", name="cumulative out-of-sample"))  # fmt: skip
        wf.update_layout(title="walk-forward: out-of-sample net PnL per test window", xaxis_title="window",
                         yaxis_title=f"net PnL ({ccy})", height=400)  # fmt: skip
        figs.append(("walkforward", wf))
        wf_html = (
            "<h2>Walk-forward</h2>"
            + _table([s], list(s))
            + _table(wrec, list(wrec[0]) if wrec else [])
        )

    parts = []
    for k, (name, f) in enumerate(figs):
        parts.append(f'<div class="chart" id="{name}">' + pio.to_html(f, full_html=False, include_plotlyjs=(k == 0)) + "</div>")
    info_rows = [{"field": k, "value": v} for k, v in info.items()]
    banner = no_profitable_banner(result, "" if ccy == "quote ccy" else ccy)
    warnings = grid_warnings(result, order, top)
    notes = (f"<div class='banner'>{html.escape(banner)}</div>" if banner else "") + (
        "<ul class='warnings'>" + "".join(f"<li>warning: {html.escape(w)}</li>" for w in warnings) + "</ul>" if warnings else ""
    )
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1em auto;max-width:1240px;padding:0 12px}}
table{{border-collapse:collapse;margin:0.5em 0;font-size:12px}} .tbl{{max-width:100%;overflow-x:auto}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}} th{{background:#eee}}
.chart{{max-width:1200px}} .banner{{background:#fde2e1;border:2px solid #c0392b;color:#7b1d13;padding:10px 14px;
font-weight:bold;margin:0.5em 0}} .warnings li{{color:#8a5a00}}</style></head><body>
<h1>{html.escape(title)}</h1>
{notes}
{_table(info_rows, ["field", "value"])}
<h2>Top {len(records)} by {html.escape(objective)}</h2>
{_table(records, TABLE_COLUMNS)}
<h2>Pareto front over all five objectives: {len(front)} of {result.size} combinations (first {len(front_records)} by rank)</h2>
{_table(front_records, TABLE_COLUMNS)}
{parts[0]}
<h2>Heatmaps</h2>
{"".join(parts[1 : 1 + len(HEATMAPS)])}
{wf_html}
{"".join(parts[1 + len(HEATMAPS) :])}
</body></html>"""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
