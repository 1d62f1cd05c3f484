"""Fit the simulated venue to recorded runs: latency from send/ack times, the queue model by divergence.

Latency (ms), from the journal and the recording of each run:

* entry, one sample per accepted placement: ``a - w`` with ``a`` the venue's
  ``transactTime`` (its time at the matching engine, ms) and ``w`` the client's note of
  the request leaving (ccxt's ``lastRestRequestTimestamp``, ms; both floored, so the
  difference is unbiased). Time in the client's own rate limiter before the request
  left is not the venue's latency (the open loop sends at ``w`` too). Without ``w``:
  ``(a - s) - (r - a) + 1`` with ``s`` the local send call and ``r`` the reply's
  arrival (an NTP-style estimate: the way back ``r - a`` removes the transport as far
  as it is symmetric; ``+ 1`` undoes ``a``'s flooring in both terms);
* cancel: a cancel's answer carries the order's times, not the cancel's (Binance's
  ``workingTime``, which ccxt reads first), so ``(r - w) - b`` with ``b`` the median
  way back of the placements (``r - a``);
* market data, one sample per recorded trade: ``t_recv - T + 0.5`` (``T`` the trade's
  venue time in ms, floored).

The simulator draws every stream as ``base + X`` with one shared ``latency_model``
and ``latency_jitter_ms`` (:mod:`mmbot.sim.latency`), so the shape is fitted on the
entry samples and each stream gets its own ``base``:

=============  =====================================================================
model          fit on the samples ``x``
=============  =====================================================================
constant       ``base = median(x)``, jitter 0
uniform        ``base = q01``, ``jitter = q99 - q01`` (1st and 99th percentiles)
lognormal      ``base`` on a grid in ``[0, min x)`` such that ``std(ln(x - base))`` is
               closest to the sampler's sigma 0.5; ``jitter = median(x - base)``
=============  =====================================================================

and the model whose fitted CDF is closest to the samples (Kolmogorov-Smirnov
distance) wins, a more complex one only when it is closer by ``KS_MARGIN``. The other
streams' bases: ``median(x) - median(X)``.

Queue model: with the fitted latency as constants (their medians: the search is then
deterministic), every fill model (``touch``, ``risk_averse``, ``probabilistic`` with
``prob_power`` on :data:`POWERS`) is replayed open loop over every run and the one with
the smallest divergence score wins (:mod:`mmbot.research.divergence`; ties: the
runs' own setting, then risk_averse, probabilistic, touch, then the lower power).

Reliability: for every order placed, the queue ahead at its arrival (base units: the
displayed quantity at its price, from a risk_averse replay) is bucketed; per bucket the model's fill rate (predicted, averaged over
``seeds`` latency draws of the fitted distribution) against the venue's (observed).
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from mmbot.domain.events import Trade
from mmbot.domain.orders import CancelOrder, PlaceOrder
from mmbot.research.divergence import divergence_report
from mmbot.research.rerun import OpenLoopResult, RecordedRun, market_events, open_loop
from mmbot.sim.latency import LatencyModel
from mmbot.sim.venue import FillModel, VenueConfig

POWERS = (1.0, 2.0, 3.0, 4.0, 6.0)
KS_MARGIN = 0.02
LOGNORMAL_SIGMA = 0.5
QUEUE_BUCKETS = (0.0, 0.01, 0.1, 0.5, 2.0, math.inf)  # base units ahead at arrival: [lo, hi)


@dataclass(frozen=True, slots=True)
class LatencyFit:
    model: str
    jitter_ms: float
    entry_ms: float  # base
    cancel_ms: float
    md_ms: float
    entry_median_ms: float
    samples: dict[str, int]
    ks: dict[str, float]


def latency_samples(run: RecordedRun) -> dict[str, list[float]]:
    """Entry, cancel and market-data latency samples in ms (module docstring)."""
    entry: list[float] = []
    back: list[float] = []
    for a in run.actions:
        if a.outcome != "ok" or not a.venue_ts_ns or not isinstance(a.command, PlaceOrder):
            continue
        if a.wire_sent_ms:
            entry.append(a.venue_ts_ns / 1e6 - a.wire_sent_ms)
        else:
            entry.append(((a.venue_ts_ns - a.local_sent_ns) - (a.reply_ns - a.venue_ts_ns)) / 1e6 + 1.0)
        back.append((a.reply_ns - a.venue_ts_ns) / 1e6 - 0.5)
    way_back = statistics.median(back) if back else 0.0
    cancel = [(a.reply_ns - a.sent_ns) / 1e6 - way_back for a in run.actions if a.outcome == "ok" and isinstance(a.command, CancelOrder)]
    md = [(e.ts_local_ns - e.ts_event_ns) / 1e6 + 0.5 for e in market_events(run.recording, run.instrument) if type(e) is Trade]
    return {"entry": entry, "cancel": cancel, "md": md}


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return 0.0
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _cdf(model: str, base: float, jitter: float, x: float) -> float:
    if model == "constant" or jitter <= 0:
        return 1.0 if x >= base else 0.0
    if model == "uniform":
        return min(max((x - base) / jitter, 0.0), 1.0)
    if x <= base:
        return 0.0
    z = (math.log(x - base) - math.log(jitter)) / LOGNORMAL_SIGMA
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _ks(xs: list[float], model: str, base: float, jitter: float) -> float:
    s = sorted(xs)
    n = len(s)
    return max(max(abs((i + 1) / n - _cdf(model, base, jitter, x)), abs(i / n - _cdf(model, base, jitter, x))) for i, x in enumerate(s))


def _fit_shape(xs: list[float]) -> dict[str, tuple[float, float]]:
    """model -> (base, jitter) fitted on ``xs``."""
    fits: dict[str, tuple[float, float]] = {"constant": (statistics.median(xs), 0.0)}
    q01, q99 = _quantile(xs, 0.01), _quantile(xs, 0.99)
    if q99 > q01:
        fits["uniform"] = (q01, q99 - q01)
    low = min(xs)
    if low > 0:
        best: tuple[float, float, float] | None = None
        for k in range(200):
            base = low * k / 200.0
            logs = [math.log(x - base) for x in xs if x > base]
            if len(logs) < 3:
                continue
            spread = abs(statistics.pstdev(logs) - LOGNORMAL_SIGMA)
            if best is None or spread < best[0]:
                best = (spread, base, statistics.median(x - base for x in xs))
        if best is not None:
            fits["lognormal"] = (best[1], best[2])
    return fits


def _median_extra(model: str, jitter: float) -> float:
    """median(X) of the sampler's extra term."""
    if model == "uniform":
        return jitter / 2.0
    if model == "lognormal":
        return jitter
    return 0.0


def fit_latency(runs: list[RecordedRun]) -> LatencyFit:
    samples: dict[str, list[float]] = {"entry": [], "cancel": [], "md": []}
    for run in runs:
        for key, xs in latency_samples(run).items():
            samples[key].extend(xs)
    return fit_streams(samples)


def fit_streams(samples: dict[str, list[float]]) -> LatencyFit:
    """The shared shape from the entry samples, a base per stream (module docstring)."""
    entry = samples["entry"]
    if len(entry) < 5:
        raise ValueError(f"at least 5 accepted placements with the venue's time are needed to fit latency, the runs have {len(entry)}")
    fits = _fit_shape(entry)
    ks = {m: _ks(entry, m, b, j) for m, (b, j) in fits.items()}
    model = "constant"
    for candidate in ("uniform", "lognormal"):
        if candidate in ks and ks[candidate] < ks[model] - KS_MARGIN:
            model = candidate
    if model != "constant" and "uniform" in ks and "lognormal" in ks:
        model = min(("uniform", "lognormal"), key=lambda m: ks[m])
    base, jitter = fits[model]
    extra = _median_extra(model, jitter)

    def stream_base(xs: list[float]) -> float:
        return max(statistics.median(xs) - extra, 0.0) if xs else 0.0

    return LatencyFit(model=model, jitter_ms=round(jitter, 3), entry_ms=round(max(base, 0.0), 3),
                      cancel_ms=round(stream_base(samples["cancel"]), 3), md_ms=round(stream_base(samples["md"]), 3),
                      entry_median_ms=round(statistics.median(entry), 3), samples={k: len(v) for k, v in samples.items()},
                      ks={m: round(v, 4) for m, v in ks.items()})


def fitted_config(base: VenueConfig, fit: LatencyFit | None, fill_model: str, power: float, *, constant: bool, seed: int) -> tuple[VenueConfig, float]:
    """``base`` with the fill model and the fitted latency (``constant``: each stream at its median); and md latency (ms)."""
    if fit is None:
        return replace(base, fill_model=FillModel(fill_model), prob_power=power, seed=seed), 0.0
    extra = _median_extra(fit.model, fit.jitter_ms)
    if constant:
        cfg = replace(base, fill_model=FillModel(fill_model), prob_power=power, entry_latency_ms=fit.entry_ms + extra,
                      cancel_latency_ms=fit.cancel_ms + extra, latency_model=LatencyModel.CONSTANT, latency_jitter_ms=0.0, seed=seed)
        return cfg, fit.md_ms + extra
    cfg = replace(base, fill_model=FillModel(fill_model), prob_power=power, entry_latency_ms=fit.entry_ms, cancel_latency_ms=fit.cancel_ms,
                  latency_model=LatencyModel(fit.model), latency_jitter_ms=fit.jitter_ms, seed=seed)
    return cfg, fit.md_ms + extra  # the open loop applies market-data latency as one constant


def score(runs: list[RecordedRun], config: VenueConfig, md_ms: float) -> tuple[float, list[dict[str, Any]], list[OpenLoopResult]]:
    """Pooled divergence score over the runs (mismatched lots / the venue's lots), the reports, the replays."""
    mismatch = 0.0
    lots = 0
    reports = []
    models = []
    for run in runs:
        model = open_loop(run, config, md_ms)
        report = divergence_report(run, model)
        venue_lots = report["totals"]["venue_filled_lots"]
        mismatch += report["totals"]["score"] * max(venue_lots, 1)
        lots += max(venue_lots, 1)
        reports.append(report)
        models.append(model)
    return mismatch / lots if lots else 0.0, reports, models


def causes_table(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for report in reports:
        for c in report["causes"]:
            row = table.setdefault(c["cause"], {"orders": 0, "pnl_impact": Decimal(0)})
            row["orders"] += c["orders"]
            row["pnl_impact"] += Decimal(c["pnl_impact"])
    return {k: {"orders": v["orders"], "pnl_impact": f"{v['pnl_impact']:.8f}"} for k, v in table.items()}


def fill_figures(runs: list[RecordedRun], models: list[OpenLoopResult]) -> dict[str, Any]:
    venue_fills = sum(len(r.fills) for r in runs)
    venue_lots = sum(f.qty_lots for r in runs for f in r.fills)
    model_fills = sum(len(m.fills) for m in models)
    model_lots = sum(f.qty_lots for m in models for f in m.fills)
    venue_orders = sum(len({f.client_order_id for f in r.fills}) for r in runs)
    model_orders = sum(len({f.client_order_id for f in m.fills}) for m in models)
    return {"venue_fills": venue_fills, "model_fills": model_fills, "venue_orders_filled": venue_orders, "model_orders_filled": model_orders,
            "venue_filled_lots": venue_lots, "model_filled_lots": model_lots}


def binomial_interval(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a rate k / n."""
    if n == 0:
        return 0.0, 1.0
    z = 1.959964
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def reliability(runs: list[RecordedRun], models_by_seed: list[list[OpenLoopResult]],
                queues: list[OpenLoopResult] | None = None) -> list[dict[str, Any]]:
    """Per queue-ahead bucket (base units): orders, predicted (model) and observed (venue) fill rates.

    The queue position of an order is the displayed quantity at its price when it arrived
    (``queues``: a risk_averse replay, so that a touch fit still has positions), else the
    fitted model's own."""
    rows = []
    for lo, hi in itertools.pairwise(QUEUE_BUCKETS):
        n = 0
        observed = 0
        predicted = 0.0
        for i, run in enumerate(runs):
            unit = float(run.instrument.qty(1))
            base_models = (queues[i] if queues is not None else models_by_seed[0][i]).orders
            for coid, v in run.orders.items():
                m0 = base_models.get(coid)
                if m0 is None or m0.queue_ahead_lots is None or m0.reject:
                    continue
                q = m0.queue_ahead_lots * unit
                if not lo <= q < hi:
                    continue
                n += 1
                observed += 1 if v.fills else 0
                predicted += sum(1 for seed in models_by_seed if (o := seed[i].orders.get(coid)) is not None and o.fills) / len(models_by_seed)
        if n:
            low, high = binomial_interval(observed, n)
            rows.append({"queue_ahead": f"[{lo:g}, {hi:g})", "orders": n, "predicted": round(predicted / n, 3),
                         "observed": round(observed / n, 3), "observed_95": [round(low, 3), round(high, 3)]})
    return rows


def calibrate(runs: list[RecordedRun], base: VenueConfig, base_md_ms: float, seeds: int = 5) -> dict[str, Any]:
    """The fitted ``sim`` settings, the divergence before and after, the fill figures and the reliability table."""
    started = time.monotonic()
    fit = fit_latency(runs)
    before_score, before_reports, before_models = score(runs, base, base_md_ms)
    grid: list[dict[str, Any]] = []
    best: tuple[float, int, int, float, str] | None = None
    simplicity = {"risk_averse": 0, "probabilistic": 1, "touch": 2}
    for fill_model in ("touch", "risk_averse", "probabilistic"):
        for power in (POWERS if fill_model == "probabilistic" else (base.prob_power,)):
            cfg, md_ms = fitted_config(base, fit, fill_model, power, constant=True, seed=base.seed)
            value, _, _ = score(runs, cfg, md_ms)
            grid.append({"fill_model": fill_model, "prob_power": power, "score": round(value, 6)})
            # Ties (the runs cannot tell them apart): the runs' own setting, then the simpler model.
            own = 0 if (fill_model == base.fill_model.value and (fill_model != "probabilistic" or power == base.prob_power)) else 1
            key = (round(value, 9), own, simplicity[fill_model], power, fill_model)
            if best is None or key < best:
                best = key
    assert best is not None
    fill_model, power = best[4], best[3]
    after_cfg, after_md = fitted_config(base, fit, fill_model, power, constant=True, seed=base.seed)
    after_score, after_reports, _ = score(runs, after_cfg, after_md)
    per_seed_after = []
    per_seed_before = []
    for seed in range(seeds):
        cfg, md_ms = fitted_config(base, fit, fill_model, power, constant=False, seed=base.seed + seed)
        per_seed_after.append(score(runs, cfg, md_ms)[2])
        per_seed_before.append(score(runs, replace(base, seed=base.seed + seed), base_md_ms)[2])

    def mean_figures(per_seed: list[list[OpenLoopResult]]) -> dict[str, float]:
        figs = [fill_figures(runs, models) for models in per_seed]
        return {k: round(statistics.mean(f[k] for f in figs), 2) for k in figs[0]}

    sim_block = {
        "fill_model": fill_model, "prob_power": power, "entry_latency_ms": fit.entry_ms, "cancel_latency_ms": fit.cancel_ms,
        "md_latency_ms": fit.md_ms, "latency_model": fit.model, "latency_jitter_ms": fit.jitter_ms,
    }  # fmt: skip
    return {
        "runs": [r.run_id for r in runs],
        "sim": sim_block,
        "latency": {"entry_median_ms": fit.entry_median_ms, "samples": fit.samples, "ks": fit.ks},
        "grid": grid,
        "before": {"score": round(before_score, 6), "causes": causes_table(before_reports), "fills": fill_figures(runs, before_models),
                   "fills_mean_over_seeds": mean_figures(per_seed_before)},
        "after": {"score": round(after_score, 6), "causes": causes_table(after_reports), "fills_mean_over_seeds": mean_figures(per_seed_after)},
        "reliability": reliability(runs, per_seed_after, score(runs, fitted_config(base, fit, "risk_averse", power, constant=True,
                                                                                   seed=base.seed)[0], after_md)[2]),
        "seeds": seeds,
        "elapsed_s": round(time.monotonic() - started, 2),
    }
