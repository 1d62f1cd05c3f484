"""Grid optimisation of the seed strategy: grid files, parallel runs, ranking, Pareto front.

A grid file (``config/grids/seed.yaml``) holds a ``param_space``: every list is one
axis, the grid is their cartesian product (the seed's 5 x 4 x 4 x 4 x 3 = 960).
Combinations are cut into chunks; each chunk runs in the compiled kernel of
:mod:`mmbot.research.grid` on a thread (the kernel releases the GIL), so all cores
work, and a callback reports progress after each chunk.

Objectives and their direction (the strategy description's four aims):

=====================  ============  ========================================
objective              direction     aim
=====================  ============  ========================================
net_pnl                maximise      "Maximize PnL"
sharpe                 maximise      "Minimize risk" (return per volatility)
max_drawdown           minimise      "Minimize risk" (worst peak-to-trough)
inventory_balance      maximise      "Balance inventory" (time near flat)
fill_rate              maximise      "Fill rate"
=====================  ============  ========================================

The Pareto front is the set of combinations no other combination beats or equals
on all five while beating on at least one.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mmbot import strict_yaml
from mmbot.errors import ConfigError
from mmbot.research.grid import (
    COL,
    F64,
    OBJECTIVE_NAMES,
    PARAM_NAMES,
    GridRules,
    TickBars,
    run_chunk,
)

OBJECTIVES: dict[str, str] = {
    "net_pnl": "max",
    "sharpe": "max",
    "max_drawdown": "min",
    "inventory_balance": "max",
    "fill_rate": "max",
}

ProgressFn = Callable[[int, int], None]  # (combinations done, total)


@dataclass(frozen=True, slots=True, kw_only=True)
class GridSpec:
    """A parameter grid: axis name -> values, and the ranking objective."""

    param_space: dict[str, tuple[float, ...]]
    objective: str = "net_pnl"

    def __post_init__(self) -> None:
        missing = [p for p in PARAM_NAMES if p not in self.param_space]
        unknown = [p for p in self.param_space if p not in PARAM_NAMES]
        if missing or unknown:
            raise ConfigError(f"param_space must have exactly {list(PARAM_NAMES)}, missing {missing}, unknown {unknown}")
        for name, values in self.param_space.items():
            if not values:
                raise ConfigError(f"param_space.{name} must list at least one value, was empty")
            for v in values:
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                    raise ConfigError(f"param_space.{name} values must be numbers, was {v!r}")
        checks: dict[str, Callable[[float], bool]] = {
            "spread_bps": lambda v: v > 0,
            "max_inventory": lambda v: v > 0,
            "order_size": lambda v: v > 0,
            "skew_factor": lambda v: v >= 0,
            "update_freq": lambda v: v >= 1 and float(v).is_integer(),
        }
        for name, ok in checks.items():
            bad = [v for v in self.param_space[name] if not ok(v)]
            if bad:
                raise ConfigError(f"param_space.{name} has invalid values {bad}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {list(OBJECTIVES)}, was {self.objective!r}")

    def combinations(self) -> list[dict[str, float]]:
        axes = [self.param_space[p] for p in PARAM_NAMES]
        return [dict(zip(PARAM_NAMES, values, strict=True)) for values in itertools.product(*axes)]

    @property
    def size(self) -> int:
        return math.prod(len(self.param_space[p]) for p in PARAM_NAMES)


SEED_GRID = GridSpec(
    param_space={
        "spread_bps": (10, 15, 20, 25, 30),
        "max_inventory": (5, 10, 15, 20),
        "order_size": (0.5, 1.0, 1.5, 2.0),
        "skew_factor": (0.0005, 0.001, 0.0015, 0.002),
        "update_freq": (1, 2, 5),
    }
)  # the strategy description's param_space (config/grids/seed.yaml holds the same)


def load_grid(path: str | Path) -> GridSpec:
    """Read a grid YAML file; bad files raise ConfigError naming the problem."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"grid file {str(p)!r} does not exist")
    try:
        # Strict like the config files: duplicate keys and 0x10/017/1:30 are errors.
        doc = strict_yaml.load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"grid file {str(p)!r} is not valid YAML: {strict_yaml.describe_yaml_error(exc)}") from exc
    for where, marker in strict_yaml.iter_non_decimal(doc):
        raise ConfigError(f"grid file {str(p)!r}: {'.'.join(map(str, where))} {marker.problem()}")
    if not isinstance(doc, dict) or not isinstance(doc.get("param_space"), dict):
        raise ConfigError(f"grid file {str(p)!r} must have a 'param_space' mapping")
    extra = set(doc) - {"param_space", "objective"}
    if extra:
        raise ConfigError(f"grid file {str(p)!r} has unknown keys {sorted(extra)}")
    space: dict[str, tuple[float, ...]] = {}
    for name, values in doc["param_space"].items():
        if not isinstance(values, list):
            raise ConfigError(f"param_space.{name} must be a list, was {values!r}")
        space[str(name)] = tuple(values)
    return GridSpec(param_space=space, objective=str(doc.get("objective", "net_pnl")))


@dataclass(frozen=True, slots=True, kw_only=True)
class GridResult:
    """Parameters (n, 5) and objectives (n, len(OBJECTIVE_NAMES)) of a grid run."""

    params: F64
    objectives: F64
    wall_seconds: float
    backend: str
    workers: int
    bars: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.params.shape[0])

    @property
    def combos_per_second(self) -> float:
        return self.size / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    def combo(self, k: int) -> dict[str, float]:
        values = self.params[k].tolist()
        d = dict(zip(PARAM_NAMES, values, strict=True))
        d["update_freq"] = int(d["update_freq"])
        return d

    def row(self, k: int) -> dict[str, float]:
        return dict(zip(OBJECTIVE_NAMES, self.objectives[k].tolist(), strict=True))

    def ranking(self, objective: str = "net_pnl") -> list[int]:
        return rank(self.objectives, objective)

    def records(self, order: Sequence[int] | None = None) -> list[dict[str, Any]]:
        idx = list(order) if order is not None else list(range(self.size))
        return [{"index": k, **self.combo(k), **self.row(k)} for k in idx]


def rank(objectives: F64, objective: str = "net_pnl") -> list[int]:
    """Row indices best first; ties keep grid order (stable), so rankings are reproducible."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {list(OBJECTIVES)}, was {objective!r}")
    col = objectives[:, COL[objective]]
    key = col if OBJECTIVES[objective] == "min" else -col
    return [int(k) for k in np.argsort(key, kind="stable")]


def pareto_front(objectives: F64, names: Sequence[str] = tuple(OBJECTIVES)) -> list[int]:
    """Indices of non-dominated rows over ``names`` (each in its OBJECTIVES direction)."""
    m = np.column_stack([objectives[:, COL[n]] * (1.0 if OBJECTIVES[n] == "max" else -1.0) for n in names])
    m = np.nan_to_num(m, nan=-np.inf)  # a missing Sharpe is the worst Sharpe
    n = m.shape[0]
    keep = np.ones(n, dtype=bool)
    for k in range(n):
        if not keep[k]:
            continue
        dominated_by = np.all(m >= m[k], axis=1) & np.any(m > m[k], axis=1)
        if dominated_by.any():
            keep[k] = False
            continue
        # k dominates these; drop them early
        worse = np.all(m[k] >= m, axis=1) & np.any(m[k] > m, axis=1)
        keep[worse] = False
    return [int(k) for k in np.flatnonzero(keep)]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def chunk_bounds(n: int, chunks: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into ``chunks`` contiguous near-equal slices (no empty ones)."""
    chunks = max(1, min(chunks, n))
    edges = np.linspace(0, n, chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def run_grid_local(
    bars: TickBars,
    params: F64,
    rules: GridRules,
    *,
    workers: int | None = None,
    chunks_per_worker: int = 8,
    progress: ProgressFn | None = None,
) -> GridResult:
    """Run every row of ``params`` on threads (the kernel releases the GIL)."""
    nworkers = workers or default_workers()
    n = params.shape[0]
    out = np.zeros((n, len(OBJECTIVE_NAMES)), dtype=np.float64)
    bounds = chunk_bounds(n, nworkers * chunks_per_worker)
    done = 0
    t0 = time.perf_counter()
    if progress:
        progress(0, n)
    if nworkers == 1:
        for a, b in bounds:
            out[a:b] = run_chunk(bars, params[a:b], rules)
            done += b - a
            if progress:
                progress(done, n)
    else:
        with ThreadPoolExecutor(max_workers=nworkers, thread_name_prefix="grid") as pool:
            futures = {pool.submit(run_chunk, bars, params[a:b], rules): (a, b) for a, b in bounds}
            for fut in as_completed(futures):
                a, b = futures[fut]
                out[a:b] = fut.result()
                done += b - a
                if progress:
                    progress(done, n)
    wall = time.perf_counter() - t0
    return GridResult(params=params, objectives=out, wall_seconds=wall, backend="threads", workers=nworkers, bars=len(bars))


