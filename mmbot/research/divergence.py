"""Why the model's fills differ from the venue's: every order of a recorded run, classified.

The open-loop replay (:func:`mmbot.research.rerun.open_loop`) sends the run's own
orders at their recorded send times, so the two sides of each order can be compared
one to one (by client order id). Each order gets exactly one cause, the first that
applies in this order:

==================  ===========================================================================
cause               rule (V: the venue's side, M: the model's)
==================  ===========================================================================
rejected_venue      V refused the placement (or never answered it: an outage), M accepted it
rejected_model      M refused it (post-only would take, filters), V accepted it
cancel_lost_race    one side filled an order whose cancel the other side carried out
                    (V filled after the cancel was sent, "-2011 Unknown order", and M
                    cancelled it unfilled; or the reverse)
venue_only_late     V filled, M did not, and M's order reached its matching engine after V's
                    first fill (the model's entry latency is too long)
venue_only_queue    V filled, M did not, M's order was there in time: the model's queue
                    ahead was too long (or its fill rule too strict)
model_only          M filled, V did not (the model's queue too short, or its fill rule too
                    generous: a book cross the venue did not trade)
different_qty       both filled, different quantities
different_time      both filled the same quantity, first fills more than ``time_tolerance_ms``
                    apart
fee_difference      the same fills, different fees or rebates
matched             the same: filled the same quantity within the tolerance at the same fees,
                    or neither filled
==================  ===========================================================================

PnL impact of an order (quote currency): its fills' PnL on the venue minus in the
model, each fill marked at the run's last mid ``m``: ``side x qty x (m - price) -
fee`` (:func:`mmbot.research.rerun.fill_pnl`). Summed over all orders it is the
difference of the two runs' PnL at ``m``.

Divergence score (what ``mmbot calibrate`` minimises): the filled quantity that differs
plus the quantity filled at a different time, over the venue's filled quantity::

    score = sum_o ( |filled_V - filled_M| + min(filled_V, filled_M) x min(|t_V - t_M| / 1 s, 1) ) / sum_o filled_V

with ``t`` an order's first fill (0 = every order filled the same quantity at the same
time; a queue model that fills the right orders too early or too late still scores).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from mmbot.extras import RESEARCH, require
from mmbot.research.rerun import Fill, OpenLoopResult, OrderLife, RecordedRun, fill_pnl

CAUSES: dict[str, str] = {
    "rejected_venue": "refused by the venue (or unanswered in an outage), accepted by the model",
    "rejected_model": "refused by the model, accepted by the venue",
    "cancel_lost_race": "a cancel lost the race against a fill on one side only",
    "venue_only_late": "filled on the venue only: the model's order arrived after the venue's fill",
    "venue_only_queue": "filled on the venue only: the model's queue was too long",
    "model_only": "filled in the model only",
    "different_qty": "both filled, different quantity",
    "different_time": "both filled, at different times",
    "fee_difference": "same fills, different fee or rebate",
    "matched": "the same on both sides",
}
TIME_TOLERANCE_MS = 500.0


def _pnl(fills: list[Fill], mark: float | None, run: RecordedRun) -> Decimal:
    if mark is None:
        return Decimal(0)
    return sum((fill_pnl(f, mark, run.instrument) for f in fills), Decimal(0))


def classify(v: OrderLife, m: OrderLife | None, venue_accepted: bool, time_tolerance_ms: float = TIME_TOLERANCE_MS) -> str:
    """The cause of one order's difference (module docstring)."""
    mf, vf = (m.filled_lots if m is not None else 0), v.filled_lots
    model_accepted = m is not None and not m.reject
    if not venue_accepted and model_accepted:
        return "rejected_venue"
    if venue_accepted and not model_accepted:
        return "rejected_model"
    if not venue_accepted and not model_accepted:
        return "matched"
    assert m is not None
    if vf and not mf:
        if m.cancelled_ns is not None and v.cancel_lost:
            return "cancel_lost_race"
        first = min(f.ts_ns for f in v.fills)
        return "venue_only_late" if m.ack_ns is None or m.ack_ns > first else "venue_only_queue"
    if mf and not vf:
        if m.cancel_lost and v.cancelled_ns is not None:
            return "cancel_lost_race"
        return "model_only"
    if not vf and not mf:
        return "matched"
    if vf != mf:
        return "different_qty"
    dt_ms = abs(min(f.ts_ns for f in v.fills) - min(f.ts_ns for f in m.fills)) / 1e6
    if dt_ms > time_tolerance_ms:
        return "different_time"
    if sum((f.fee for f in v.fills), Decimal(0)) != sum((f.fee for f in m.fills), Decimal(0)):
        return "fee_difference"
    return "matched"


def divergence_report(run: RecordedRun, model: OpenLoopResult, time_tolerance_ms: float = TIME_TOLERANCE_MS) -> dict[str, Any]:
    """Per order: both sides and the cause; per cause: orders and PnL impact; the score."""
    mark = model.last_mid
    accepted = {a.command.client_order_id: a.outcome == "ok" for a in run.actions  # type: ignore[union-attr]
                if type(a.command).__name__ == "PlaceOrder"}
    orders: list[dict[str, Any]] = []
    per_cause: dict[str, dict[str, Any]] = {c: {"orders": 0, "pnl": Decimal(0)} for c in CAUSES}
    mismatch_lots = 0.0
    venue_lots = 0
    for coid, v in run.orders.items():
        if coid not in accepted:
            continue  # never sent (refused by the risk gate or the order budget before the venue)
        m = model.orders.get(coid)
        venue_ok = accepted[coid] and not v.reject
        cause = classify(v, m, venue_ok, time_tolerance_ms)
        m_fills = m.fills if m is not None else []
        impact = _pnl(v.fills, mark, run) - _pnl(m_fills, mark, run)
        per_cause[cause]["orders"] += 1
        per_cause[cause]["pnl"] += impact
        mf = m.filled_lots if m is not None else 0
        mismatch_lots += abs(v.filled_lots - mf)
        if v.fills and m is not None and m.fills:
            late_s = abs(min(f.ts_ns for f in v.fills) - min(f.ts_ns for f in m.fills)) / 1e9
            mismatch_lots += min(v.filled_lots, mf) * min(late_s, 1.0)
        venue_lots += v.filled_lots
        orders.append({
            "client_order_id": coid, "cause": cause, "side": "BUY" if v.side > 0 else "SELL", "price_ticks": v.price_ticks,
            "qty_lots": v.qty_lots, "sent_ns": v.sent_ns, "venue_ack_ns": v.ack_ns, "model_arrival_ns": m.ack_ns if m else None,
            "venue_filled_lots": v.filled_lots, "model_filled_lots": m.filled_lots if m else 0,
            "venue_fills": [[f.ts_ns, f.price_ticks, f.qty_lots, str(f.fee)] for f in v.fills],
            "model_fills": [[f.ts_ns, f.price_ticks, f.qty_lots, str(f.fee)] for f in m_fills],
            "cancel_sent_ns": v.cancel_sent_ns, "venue_cancelled_ns": v.cancelled_ns, "model_cancelled_ns": m.cancelled_ns if m else None,
            "venue_reject": v.reject, "model_reject": m.reject if m else "", "pnl_impact": f"{impact:.8f}",
        })  # fmt: skip
    venue_pnl = _pnl(run.fills, mark, run)
    model_pnl = _pnl(model.fills, mark, run)
    diverged = sum(1 for o in orders if o["cause"] != "matched")
    score = mismatch_lots / venue_lots if venue_lots else float(mismatch_lots > 0)
    return {
        "run_id": run.run_id,
        "time_tolerance_ms": time_tolerance_ms,
        "mark_ticks": mark,
        "causes": [{"cause": c, "orders": d["orders"], "pnl_impact": f"{d['pnl']:.8f}", "meaning": CAUSES[c]} for c, d in per_cause.items()],
        "totals": {
            "orders": len(orders), "matched": len(orders) - diverged, "diverged": diverged,
            "venue_fills": len(run.fills), "model_fills": len(model.fills),
            "venue_filled_lots": venue_lots, "model_filled_lots": sum(o["model_filled_lots"] for o in orders),
            "venue_pnl": f"{venue_pnl:.8f}", "model_pnl": f"{model_pnl:.8f}", "pnl_difference": f"{venue_pnl - model_pnl:.8f}",
            "score": round(score, 6),
        },
        "orders": orders,
    }


def summary_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures that go into the run's summary (``summary.json``'s ``divergence``) and the metrics file."""
    totals = report["totals"]
    return {
        "orders": totals["orders"], "diverged": totals["diverged"], "score": totals["score"],
        "venue_fills": totals["venue_fills"], "model_fills": totals["model_fills"], "pnl_difference": totals["pnl_difference"],
        "by_cause": {c["cause"]: {"orders": c["orders"], "pnl_impact": c["pnl_impact"]} for c in report["causes"]},
    }


def prometheus_text(report: dict[str, Any]) -> str:
    """The divergence in the Prometheus text format (a node-exporter textfile next to the report)."""
    run_id = report["run_id"]
    lines = [
        "# HELP mmbot_divergence_orders Orders of a recorded run by divergence cause (open-loop model vs venue).",
        "# TYPE mmbot_divergence_orders gauge",
    ]
    lines += [f'mmbot_divergence_orders{{run_id="{run_id}",cause="{c["cause"]}"}} {c["orders"]}' for c in report["causes"]]
    lines += ["# HELP mmbot_divergence_pnl_impact PnL of the venue's fills minus the model's by cause, quote currency.",
              "# TYPE mmbot_divergence_pnl_impact gauge"]
    lines += [f'mmbot_divergence_pnl_impact{{run_id="{run_id}",cause="{c["cause"]}"}} {c["pnl_impact"]}' for c in report["causes"]]
    lines += ["# HELP mmbot_divergence_score Filled quantity that differs per order over the venue's filled quantity.",
              "# TYPE mmbot_divergence_score gauge", f'mmbot_divergence_score{{run_id="{run_id}"}} {report["totals"]["score"]}']
    return "\n".join(lines) + "\n"


# --- the page ---------------------------------------------------------------------------------
CHART_IDS = ("chart-causes", "chart-cumulative-pnl", "chart-timeline")


def _cumulative(fills: list[Fill], model: OpenLoopResult, run: RecordedRun) -> tuple[list[float], list[float]]:
    """(times s from the start, PnL marked at the mid of each fill's time) after each fill."""
    unit = float(run.instrument.tick_size * run.instrument.qty_unit)
    t0 = model.mids[0][0] if model.mids else (fills[0].ts_ns if fills else 0)
    xs, ys = [], []
    cash = 0.0
    position = 0
    for f in sorted(fills, key=lambda f: f.ts_ns):
        cash -= f.side * f.qty_lots * f.price_ticks * unit + float(f.fee)
        position += f.side * f.qty_lots
        mid = model.mid_at(f.ts_ns) or f.price_ticks
        xs.append((f.ts_ns - t0) / 1e9)
        ys.append(cash + position * mid * unit)
    return xs, ys


def build_figures(report: dict[str, Any], run: RecordedRun, model: OpenLoopResult, worst: int = 8) -> dict[str, Any]:
    require(RESEARCH, "the divergence page's charts", "plotly")
    import plotly.graph_objects as go  # plotly is heavy and optional: only when a page is written

    layout = {"template": "plotly", "plot_bgcolor": "#e8edf5", "height": 420, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}
    causes = [c for c in report["causes"] if c["orders"]]
    fig_causes = go.Figure(go.Bar(x=[c["cause"] for c in causes], y=[c["orders"] for c in causes],
                                  text=[c["pnl_impact"] for c in causes], name="orders"))
    fig_causes.update_layout(title="orders by cause (bar label: PnL impact venue - model)", **layout)
    vx, vy = _cumulative(run.fills, model, run)
    mx, my = _cumulative(model.fills, model, run)
    fig_pnl = go.Figure()
    fig_pnl.add_trace(go.Scatter(x=vx, y=vy, mode="lines+markers", name="venue", line={"shape": "hv"}))
    fig_pnl.add_trace(go.Scatter(x=mx, y=my, mode="lines+markers", name="model (open loop)", line={"shape": "hv"}))
    fig_pnl.update_layout(title="cumulative PnL, venue vs model (marked at the mid)", xaxis_title="s from start",
                          yaxis_title=run.instrument.quote_ccy, **layout)
    t0 = model.mids[0][0] if model.mids else 0
    ranked = sorted((o for o in report["orders"] if o["cause"] != "matched"), key=lambda o: -abs(float(o["pnl_impact"])))[:worst]
    fig_tl = go.Figure()
    labels = []
    for row, o in enumerate(ranked):
        label = f"{o['client_order_id'][-8:]} {o['cause']}"
        labels.append(label)
        ends = [x for x in (o["venue_cancelled_ns"], o["model_cancelled_ns"], *(f[0] for f in o["venue_fills"] + o["model_fills"])) if x]
        start = o["sent_ns"] or t0
        end = max(ends) if ends else start
        fig_tl.add_trace(go.Scatter(x=[(start - t0) / 1e9, (end - t0) / 1e9], y=[label, label], mode="lines",
                                    line={"color": "#9aa5b8", "width": 6}, showlegend=row == 0, name="order life"))
        for key, name, symbol, color in (("venue_fills", "venue fill", "circle", "#1f77b4"), ("model_fills", "model fill", "x", "#d62728")):
            xs = [(f[0] - t0) / 1e9 for f in o[key]]
            if xs:
                fig_tl.add_trace(go.Scatter(x=xs, y=[label] * len(xs), mode="markers", marker={"symbol": symbol, "size": 11, "color": color},
                                            name=name, showlegend=False))
        for key, name, color in (("venue_ack_ns", "venue ack", "#2ca02c"), ("model_arrival_ns", "model arrival", "#ff7f0e"),
                                 ("cancel_sent_ns", "cancel sent", "#7f7f7f")):
            if o.get(key):
                fig_tl.add_trace(go.Scatter(x=[(o[key] - t0) / 1e9], y=[label], mode="markers",
                                            marker={"symbol": "line-ns-open", "size": 16, "color": color, "line": {"width": 2}},
                                            name=name, showlegend=False))
    if not ranked:
        fig_tl.add_trace(go.Scatter(x=[0], y=["no diverged order"], mode="markers", name="none"))
    fig_tl.update_layout(title=f"per-order timeline, the {len(ranked)} worst orders by |PnL impact| "
                               "(line: sent to last event; o venue fill, x model fill; ticks: ack, model arrival, cancel)",
                         xaxis_title="s from start", **{**layout, "height": max(320, 60 + 40 * len(ranked))})
    return {"chart-causes": fig_causes, "chart-cumulative-pnl": fig_pnl, "chart-timeline": fig_tl}


def write_html(report: dict[str, Any], figs: dict[str, Any], path: Path) -> Path:
    require(RESEARCH, "the divergence page", "plotly")
    import html

    import plotly.io as pio  # plotly is heavy and optional: only when a page is written
    from plotly.offline import get_plotlyjs  # plotly is heavy and optional: only when a page is written

    rows = "".join(
        f"<tr><td>{html.escape(c['cause'])}</td><td>{c['orders']}</td><td>{c['pnl_impact']}</td><td>{html.escape(c['meaning'])}</td></tr>"
        for c in report["causes"]
    )
    t = report["totals"]
    charts = "".join(
        pio.to_html(figs[cid], full_html=False, include_plotlyjs=False, div_id=cid, config={"displaylogo": False, "responsive": True})
        for cid in CHART_IDS
    )
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>divergence {html.escape(report['run_id'])}</title>
<style>body{{font-family:sans-serif;margin:20px}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head><body>
<h1>Divergence of run {html.escape(report['run_id'])}: open-loop model vs venue</h1>
<p>orders {t['orders']}, matched {t['matched']}, diverged {t['diverged']}; fills venue {t['venue_fills']} model {t['model_fills']};
PnL at the last mid: venue {t['venue_pnl']}, model {t['model_pnl']}; divergence score {t['score']}</p>
<table><tr><th>cause</th><th>orders</th><th>PnL impact (venue - model)</th><th>meaning</th></tr>{rows}</table>
{charts}
</body></html>
"""
    path.write_text(page)
    return path


def write_divergence(report: dict[str, Any], run: RecordedRun, model: OpenLoopResult, directory: Path, worst: int = 8) -> dict[str, Path]:
    """divergence.json, divergence.html and divergence.prom in ``directory``; the run record's
    summary.json (when there) gains the figures under ``divergence``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "divergence.json"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    html_path = write_html(report, build_figures(report, run, model, worst), directory / "divergence.html")
    prom_path = directory / "divergence.prom"
    prom_path.write_text(prometheus_text(report))
    summary_path = run.recording.parent / "summary.json"
    if summary_path.is_file():
        summary = orjson.loads(summary_path.read_bytes())
        summary["divergence"] = summary_figures(report)
        tmp = summary_path.with_name(summary_path.name + ".tmp")
        tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        tmp.replace(summary_path)
    return {"json": json_path, "html": html_path, "prom": prom_path}
