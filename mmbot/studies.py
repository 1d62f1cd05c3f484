"""Parameter search on L2 data: every combination through the full simulator.

``mmbot optimize --data CAPTURE --grid GRID.yaml`` runs each combination of the grid
(the same five axes as the bar grid: ``spread_bps``, ``max_inventory``,
``order_size``, ``skew_factor``, ``update_freq``, written into ``strategy.*``) as
the node that ``mmbot backtest`` runs (mmbot/wiring.py ``build_node``): the
strategy, the risk gate, the simulated venue with the configured queue model and
latency, the portfolio and the summary. Nothing is re-implemented for the search, so
a combination's objectives equal those of ``mmbot backtest`` with the same settings
(a test holds it). Only the observers a search has no use for are off: journal, run
record, metrics, admin endpoint.

The capture is decoded once per worker process (:class:`DecodedCapture`); every
combination replays the decoded events. Workers are processes (the simulator is
Python and holds the GIL): a local pool of ``--workers`` processes, or the workers
of a Dask cluster (``--scheduler``). Either way each combination runs once, on one
worker, with the same inputs, so the objectives are identical.

Objectives (:data:`mmbot.research.grid.OBJECTIVE_NAMES`, money in the quote
currency) from the run's summary: ``net_pnl``, ``gross_pnl``, ``fees`` (fees paid,
rebates negative), ``sharpe`` (NaN when the run is too short for one, see
docs/metrics.md), ``max_drawdown``, ``inventory_balance`` and
``time_at_max_inventory`` (shares of time), ``fill_rate``, ``fills``, ``orders``
(orders placed), ``bid_fills``, ``ask_fills``, ``max_abs_inventory`` and
``final_inventory`` (base units). Ranking, Pareto front, warnings and the report are
the bar grid's (mmbot/research).
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmbot import wiring
from mmbot.config.settings import Settings, load_settings, merge_overrides
from mmbot.errors import ConfigError
from mmbot.research.grid import F64, OBJECTIVE_NAMES, PARAM_NAMES, param_matrix
from mmbot.research.optimize import GridResult, GridSpec, default_workers, pareto_front
from mmbot.research.study import GridStudy, flagged_records
from mmbot.runtime.sources import DecodedCapture

# What a search switches off: observers that write files or listen on ports.
QUIET: dict[str, Any] = {
    "audit": {"enabled": False},
    "record": {"enabled": False},
    "metrics": {"enabled": False},
    "log": {"level": "error"},
}
SUMMARY_FIELD = {  # objective -> summary field, where the names differ
    "fees": "fees_paid",
    "orders": "orders_placed",
    "time_at_max_inventory": "time_at_max_inventory_share",
}


def merged(*docs: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of override documents, later ones winning (the config loader's own rule)."""
    return functools.reduce(merge_overrides, docs, {})


@dataclass(frozen=True)
class L2Job:
    """Everything a worker needs to run a combination; picklable (sent to processes)."""

    config: str | None
    overrides: dict[str, Any]
    paths: tuple[str, ...]
    environ: dict[str, str] | None = None  # None: the worker's environment (the same as the command's)


def combo_overrides(combo: Mapping[str, float]) -> dict[str, Any]:
    strategy: dict[str, Any] = {name: float(combo[name]) for name in PARAM_NAMES if name != "update_freq"}
    strategy["update_freq"] = int(combo["update_freq"])
    return {"strategy": strategy}


def combo_settings(job: L2Job, combo: Mapping[str, float]) -> Settings:
    return load_settings(job.config, environ=job.environ, overrides=merged(job.overrides, QUIET, combo_overrides(combo)))


# One decoded capture per worker process and job: decoding is the part every combination shares.
_DECODED: dict[tuple[str | None, str, tuple[str, ...]], DecodedCapture] = {}


def decoded_for(job: L2Job, settings: Settings) -> DecodedCapture:
    key = (job.config, repr(sorted(job.overrides.items())), job.paths)
    hit = _DECODED.get(key)
    if hit is None:
        paths = list(job.paths)
        instrument = wiring.replay_instrument(settings, paths)
        hit = DecodedCapture.read(paths, instrument, max_clock_jump_ns=wiring.max_clock_jump_ns(settings))
        _DECODED.clear()  # one job at a time per worker: keep memory flat
        _DECODED[key] = hit
    return hit


def objectives_of(summary: Mapping[str, Any]) -> F64:
    row = np.empty(len(OBJECTIVE_NAMES), dtype=np.float64)
    for k, name in enumerate(OBJECTIVE_NAMES):
        value = summary.get(SUMMARY_FIELD.get(name, name))
        row[k] = math.nan if value is None else float(value)
    return row


def run_combo(job: L2Job, combo: Mapping[str, float]) -> tuple[F64, dict[str, Any]]:
    """One combination through the backtest's node; (objectives, summary)."""
    settings = combo_settings(job, combo)
    request = wiring.RunRequest(paths=list(job.paths), mode_label="backtest", decoded=decoded_for(job, settings))
    # The run record's sampler on (max drawdown, inventory balance and Sharpe come from its
    # series), its files off: the figures equal mmbot backtest's, nothing is written.
    quiet = wiring.ObserverRequest(record=True, write_record=False, fills=False, journal=False, metrics=False, admin=False)
    node = wiring.build_node(settings, "optimize", request, quiet)
    summary = node.run_sync()
    return objectives_of(summary), summary


def combo_task(job: L2Job, index: int, combo: dict[str, float]) -> tuple[int, F64, int]:
    # Module level: pickled by reference into pool and Dask workers.
    row, summary = run_combo(job, combo)
    return index, row, int(summary.get("events", 0))


Progress = Callable[[int, int], None]


@dataclass
class L2Run:
    result: GridResult
    events: int
    decode_seconds: float
    meta: dict[str, Any] = field(default_factory=dict)


def _collect(results: Iterator[tuple[int, F64, int]], n: int, progress: Progress | None) -> tuple[F64, int]:
    out = np.zeros((n, len(OBJECTIVE_NAMES)), dtype=np.float64)
    events = 0
    for done, (index, row, ev) in enumerate(results, start=1):
        out[index] = row
        events = ev
        if progress:
            progress(done, n)
    return out, events


def run_l2_grid(job: L2Job, spec: GridSpec, *, workers: int | None = None, scheduler: str | None = None,
                progress: Progress | None = None) -> GridResult:
    """Every combination of ``spec`` on the L2 simulator, in worker processes or on Dask."""
    combos = spec.combinations()
    n = len(combos)
    if progress:
        progress(0, n)
    t0 = time.perf_counter()
    meta: dict[str, Any] = {}
    if scheduler:
        from mmbot.research.distributed import DaskGridSession  # dask is heavy and optional: only with --scheduler

        with DaskGridSession(scheduler, workers=workers, warm=False) as session:
            tasks = [(job, k, combo) for k, combo in enumerate(combos)]
            out, events = _collect(session.map_tasks(combo_task, tasks), n, progress)
            backend, nworkers = "dask", session.nthreads
            meta = {"scheduler": session.address, "tasks": n}
    else:
        nworkers = min(workers or default_workers(), n)
        if nworkers == 1:
            out, events = _collect((combo_task(job, k, c) for k, c in enumerate(combos)), n, progress)
        else:
            # spawn: the command may run a progress thread; a forked child would inherit its locks.
            with ProcessPoolExecutor(max_workers=nworkers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures: list[Future[tuple[int, F64, int]]] = [pool.submit(combo_task, job, k, c) for k, c in enumerate(combos)]
                out, events = _collect((f.result() for f in as_completed(futures)), n, progress)
        backend = "processes" if nworkers > 1 else "serial"
    wall = time.perf_counter() - t0
    return GridResult(params=param_matrix(combos), objectives=out, wall_seconds=wall, backend=backend, workers=nworkers,
                      bars=events, meta={**meta, "kind": "l2"})  # fmt: skip


def run_l2_study(job: L2Job, spec: GridSpec, *, workers: int | None = None, scheduler: str | None = None,
                 progress: Callable[[str, int, int | None], None] | None = None,
                 note: Callable[[str], None] | None = None) -> GridStudy:
    """The L2 grid as a study: ranked, Pareto front, rows below break-even flagged."""
    t0 = time.perf_counter()
    base = load_settings(job.config, environ=job.environ, overrides=merged(job.overrides, QUIET))
    # Every combination must make valid settings (e.g. order_size <= max_inventory): checked
    # up front, about 8 ms each, so a bad grid fails at once instead of inside a worker.
    for combo in spec.combinations():
        try:
            combo_settings(job, combo)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v:g}" for k, v in combo.items())
            raise ConfigError(f"grid combination {shown}: {exc}") from exc
    if note:
        note(f"L2 grid: {spec.size} combinations on {', '.join(job.paths)}; each runs the full simulator "
             f"(fill model {base.sim.fill_model}, entry latency {base.sim.entry_latency_ms:g} ms)")
    result = run_l2_grid(job, spec, workers=workers, scheduler=scheduler,
                         progress=(lambda d, n: progress("grid", d, n)) if progress else None)  # fmt: skip
    quote_ccy = base.symbols[0].partition("/")[2]
    study = GridStudy(
        spec=spec, rules=None, quality=None, result=result, order=result.ranking(spec.objective),
        front=pareto_front(result.objectives), walk=None, walk_forward_text=None, compile_seconds=0.0,
        total_seconds=0.0, quote_ccy=quote_ccy,
    )  # fmt: skip
    study.records = flagged_records(base, result)
    study.info = {
        "kind": "l2",
        "combinations": result.size,
        "events": result.bars,
        "data": list(job.paths),
        "backend": result.backend,
        "workers": result.workers,
        "wall_seconds": round(result.wall_seconds, 4),
        "combos_per_second": round(result.combos_per_second, 3),
        "seconds_per_combination": round(result.wall_seconds / max(1, result.size) * max(1, result.workers), 3),
        "objective": spec.objective,
        "quote_ccy": quote_ccy,
        "fill_model": base.sim.fill_model,
        "entry_latency_ms": base.sim.entry_latency_ms,
        "maker_fee_bps": float(base.fees.maker_fee_bps),
        "pareto_front_size": len(study.front),
        "below_breakeven_combinations": sum(1 for rec in study.records if rec["below_breakeven"]),
        **{f"dask_{k}": v for k, v in result.meta.items() if k != "kind"},
    }
    study.total_seconds = time.perf_counter() - t0
    return study


# The default L2 grid around the default profile (config/default.yaml: spread 2 bps,
# size 0.01 BTC, inventory limit 0.05 BTC, skew 0.0002; every inventory limit at least
# the largest order size, so every combination is valid); config/grids/l2-default.yaml
# holds the same (a test keeps them equal). 5 x 4 x 4 x 4 x 3 = 960 combinations.
L2_DEFAULT_GRID = GridSpec(
    param_space={
        "spread_bps": (1.0, 1.5, 2.0, 3.0, 4.0),
        "max_inventory": (0.05, 0.1, 0.2, 0.4),
        "order_size": (0.005, 0.01, 0.02, 0.04),
        "skew_factor": (0.0, 0.0001, 0.0002, 0.0005),
        "update_freq": (1, 2, 5),
    }
)


def l2_grid(path: str | None, objective: str | None) -> GridSpec:
    from mmbot.research.optimize import load_grid

    spec = load_grid(path) if path else L2_DEFAULT_GRID
    return GridSpec(param_space=spec.param_space, objective=objective) if objective else spec
