"""The grid on Dask (a LocalCluster, and a `dask scheduler` + `dask worker` pair) ranks like the local run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from mmbot.research.bars import Bars
from mmbot.research.distributed import DaskGridSession, run_grid_dask
from mmbot.research.grid import COL, GridRules, TickBars, param_matrix, tick_bars_from_bars
from mmbot.research.optimize import SEED_GRID, rank, run_grid_local
from mmbot.research.walkforward import walk_forward
from tests.conftest import MMBOT

TWO_DAYS = 2880


def _dask_bin() -> str:
    exe = Path(sys.executable).with_name("dask")
    if not exe.exists():
        found = shutil.which("dask")
        if found is None:
            pytest.fail("the `dask` command is missing: pip install 'dask[distributed]'")
        return found
    return str(exe)


def test_dask_session_when_local_cluster_then_same_ranking_and_walk_forward_as_local_threads(month_ticks: TickBars) -> None:
    from dask.distributed import LocalCluster

    bars = month_ticks.slice(0, TWO_DAYS)
    params = param_matrix(SEED_GRID.combinations())
    rules = GridRules()
    local = run_grid_local(bars, params, rules, workers=2)
    local_wf = walk_forward(month_ticks.slice(0, 3 * 1440), SEED_GRID, rules, 1440, 1440)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        remote = run_grid_dask(bars, params, rules, scheduler=cluster.scheduler_address)
        with DaskGridSession(cluster.scheduler_address, workers=2) as session:
            remote_wf = walk_forward(month_ticks.slice(0, 3 * 1440), SEED_GRID, rules, 1440, 1440,
                                     run=lambda b, p: session.run(b, p, rules).objectives)  # fmt: skip
    assert remote.backend == "dask"
    assert remote.meta["tasks"] == 4
    assert np.array_equal(remote.objectives, local.objectives, equal_nan=True)
    for objective in ("net_pnl", "sharpe", "max_drawdown", "inventory_balance", "fill_rate"):
        assert rank(remote.objectives, objective) == rank(local.objectives, objective)
    assert repr(remote_wf.windows) == repr(local_wf.windows)  # repr: NaN Sharpe compares equal
    assert len(remote_wf.windows) == 2


def _wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def test_optimize_cli_when_scheduler_address_then_same_ranking_as_local_run(
    month_bars: Bars, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    day_rows = [list(r) for r in zip(month_bars.ts_ms.tolist()[:TWO_DAYS], month_bars.open.tolist()[:TWO_DAYS],
                                     month_bars.high.tolist()[:TWO_DAYS], month_bars.low.tolist()[:TWO_DAYS],
                                     month_bars.close.tolist()[:TWO_DAYS], month_bars.volume.tolist()[:TWO_DAYS], strict=True)]  # fmt: skip
    bars_file = tmp_path / "two_days.json"
    bars_file.write_bytes(orjson.dumps(day_rows))
    dask = _dask_bin()
    sched_file = tmp_path / "sched.json"
    sched = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
         "--scheduler-file", str(sched_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env,
    )  # fmt: skip
    worker = None
    try:
        _wait_for(lambda: sched_file.exists() and sched_file.stat().st_size > 0, 30, "the scheduler file")
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = subprocess.Popen(
            [dask, "worker", "--scheduler-file", str(sched_file), "--host", "127.0.0.1", "--nworkers", "2",
             "--nthreads", "1", "--dashboard-address", "127.0.0.1:0", "--local-directory", str(tmp_path / "w")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env,
        )  # fmt: skip
        common = [*MMBOT, "optimize", "--grid", "config/grids/seed.yaml", "--bars", str(bars_file), "--no-report"]
        remote = subprocess.run([*common, "--scheduler", address, "--workers", "2", "--out", str(tmp_path / "remote")],
                                capture_output=True, text=True, env=clean_env, timeout=300)  # fmt: skip
    finally:
        for proc in (worker, sched):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert remote.returncode == 0, remote.stderr[-2000:]
    r = json.loads((tmp_path / "remote" / "results.json").read_text())
    ticks = tick_bars_from_bars(month_bars.slice(0, TWO_DAYS))
    local = run_grid_local(ticks, param_matrix(SEED_GRID.combinations()), GridRules(), workers=2)
    assert r["info"]["backend"] == "dask"
    assert r["info"]["dask_scheduler"] == address
    assert r["info"]["workers"] == 2
    assert len(r["ranking"]) == 960
    assert r["ranking"] == rank(local.objectives, "net_pnl")
    assert [row["net_pnl"] for row in r["results"]] == local.objectives[:, COL["net_pnl"]].tolist()
    assert [row["fill_rate"] for row in r["results"]] == local.objectives[:, COL["fill_rate"]].tolist()
