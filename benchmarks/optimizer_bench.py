"""Benchmark of the compiled grid: the seed's 960 combinations on the bundled month of 1-minute bars.

    .venv/bin/python benchmarks/optimizer_bench.py [--repeats 5] [--json out.json]

Measures, separately:
- compile: numba compiling both kernels from scratch (fresh NUMBA_CACHE_DIR, in a subprocess),
- cache load: the same in a second subprocess with that cache filled (what every later run pays),
- grid: wall time of the whole 960-combination grid with every objective computed, on 1 thread and
  on all cores (min and median of --repeats runs), and combinations/s,
- how many combinations change net PnL between fill rules (quote vs open_gap) per cross policy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

PROBE = "import time; t=time.perf_counter(); from mmbot.research.grid import warm_up; w=warm_up(); print(w, time.perf_counter()-t)"


def _kernel_ready_seconds(cache_dir: str) -> tuple[float, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[0]), float(out[1])


def measure(repeats: int = 5) -> dict[str, Any]:
    """Every figure of this benchmark as one JSON-able dict (for benchmarks/run.py)."""
    with tempfile.TemporaryDirectory() as cache:
        compile_s, compile_total_s = _kernel_ready_seconds(cache)
        cached_s, _ = _kernel_ready_seconds(cache)

    from mmbot.research.bars import bundled_bars_path, load_bars
    from mmbot.research.grid import COL, GridRules, param_matrix, run_chunk, tick_bars_from_bars, warm_up
    from mmbot.research.optimize import SEED_GRID, default_workers, run_grid_local

    warm_up()
    t0 = time.perf_counter()
    bars = tick_bars_from_bars(load_bars(bundled_bars_path()))
    load_s = time.perf_counter() - t0
    params = param_matrix(SEED_GRID.combinations())
    rules = GridRules()
    cores = default_workers()
    timings: dict[str, dict[str, float]] = {}
    for workers in sorted({1, cores}):
        walls = [run_grid_local(bars, params, rules, workers=workers).wall_seconds for _ in range(repeats)]
        timings[f"{workers}_threads"] = {
            "wall_min_s": round(min(walls), 4),
            "wall_median_s": round(statistics.median(walls), 4),
            "combos_per_s_best": round(len(params) / min(walls), 1),
            "combos_per_s_median": round(len(params) / statistics.median(walls), 1),
        }
    differ = {}
    for cross in ("clamp", "allow"):
        a = run_chunk(bars, params, GridRules(fill_rule="quote", cross_policy=cross))[:, COL["net_pnl"]]
        b = run_chunk(bars, params, GridRules(fill_rule="open_gap", cross_policy=cross))[:, COL["net_pnl"]]
        differ[cross] = int((a != b).sum())
    figures = {
        "benchmark": "optimizer_grid",
        "combinations": len(params),
        "bars": len(bars),
        "bar_steps": len(params) * len(bars),
        "cores": cores,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "numba_compile_s": round(compile_s, 3),
        "numba_compile_process_s": round(compile_total_s, 3),
        "numba_cache_load_s": round(cached_s, 3),
        "bars_load_s": round(load_s, 3),
        "grid": timings,
        "fill_rule_pnl_differs": differ,
    }
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args()
    text = json.dumps(measure(args.repeats), indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
