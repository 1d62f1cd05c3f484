"""The L2 grid (`mmbot optimize --data`): every combination is the backtest's own run.

One capture file (the first half of the bundled pair, about 140k events) keeps these
fast; the figures do not depend on the length.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mmbot.cli.backtest import run_l2_backtest
from mmbot.config.settings import load_settings
from mmbot.research.grid import COL, PARAM_NAMES
from mmbot.research.optimize import GridSpec, load_grid
from mmbot.studies import L2_DEFAULT_GRID, QUIET, L2Job, combo_settings, merged, run_combo, run_l2_grid
from tests.conftest import MMBOT

ROOT = Path(__file__).resolve().parents[2]
FIRST = str(ROOT / "mmbot" / "data" / "btcusdt_20240808.gz")
SMALL = GridSpec(
    param_space={"spread_bps": (2.0, 3.0), "max_inventory": (0.05,), "order_size": (0.01,), "skew_factor": (0.0005,), "update_freq": (1,)}
)


def _backtest(combo: dict[str, float], sim: dict[str, object]) -> dict[str, object]:
    strategy = {k: v for k, v in combo.items() if k != "update_freq"} | {"update_freq": int(combo["update_freq"])}
    settings = load_settings(None, environ={}, overrides=merged({"sim": sim}, QUIET, {"strategy": strategy}))
    summary, _ = run_l2_backtest(settings, [FIRST], record=True, record_out=None)
    return summary


@pytest.mark.parametrize("sim", [{}, {"fill_model": "probabilistic", "entry_latency_ms": 20.0, "md_latency_ms": 20.0}])
def test_combo_when_run_then_objectives_equal_the_backtest_with_the_same_settings(sim: dict[str, object], tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the backtest writes its run record under ./var
    combo = {"spread_bps": 3.0, "max_inventory": 0.1, "order_size": 0.02, "skew_factor": 0.0005, "update_freq": 2}
    job = L2Job(config=None, overrides={"sim": sim}, paths=(FIRST,), environ={})
    row, summary = run_combo(job, combo)
    expected = _backtest(combo, sim)

    assert summary["fills"] == expected["fills"] and int(summary["fills"]) > 0
    assert summary["net_pnl"] == expected["net_pnl"]
    assert row[COL["net_pnl"]] == float(str(expected["net_pnl"]))
    assert row[COL["max_drawdown"]] == float(str(expected["max_drawdown"]))
    assert row[COL["inventory_balance"]] == float(str(expected["inventory_balance"]))
    assert row[COL["fills"]] == expected["fills"]
    assert row[COL["orders"]] == expected["orders_placed"]
    assert summary["parameters"]["spread_bps"] == 3.0 and summary["parameters"]["order_size"] == 0.02


def test_grid_when_run_in_processes_then_each_row_equals_the_serial_run(tmp_path: Path) -> None:
    job = L2Job(config=None, overrides={}, paths=(FIRST,), environ={})
    serial = run_l2_grid(job, SMALL, workers=1)
    pooled = run_l2_grid(job, SMALL, workers=2)

    assert pooled.backend == "processes" and serial.backend == "serial"
    assert np.array_equal(serial.objectives, pooled.objectives, equal_nan=True)
    assert serial.objectives[0, COL["net_pnl"]] != serial.objectives[1, COL["net_pnl"]]  # the axis changes the result


def test_optimize_data_when_local_dask_then_same_objectives_as_processes(tmp_path: Path, clean_env: dict[str, str]) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text("param_space:\n  spread_bps: [2.0, 3.0]\n  max_inventory: [0.05]\n  order_size: [0.01]\n"
                    "  skew_factor: [0.0005]\n  update_freq: [1]\n")  # fmt: skip
    docs = []
    for extra in ([], ["--scheduler", "local"]):
        out = tmp_path / ("dask" if extra else "local")
        proc = subprocess.run([*MMBOT, "optimize", "--data", FIRST, "--grid", str(grid), "--workers", "2", "--no-report", "--out", str(out), *extra],
                              cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "full simulator" in proc.stdout and "No combination is profitable" in proc.stdout
        docs.append(json.loads((out / "results.json").read_text()))
    local, dask = docs
    assert local["info"]["kind"] == "l2" and dask["info"]["backend"] == "dask"
    assert [r["net_pnl"] for r in local["results"]] == [r["net_pnl"] for r in dask["results"]]
    assert local["ranking"] == dask["ranking"]
    assert not (tmp_path / "var").exists()  # no run records or journals from a search


@pytest.mark.parametrize("flag", [["--walk-forward", "1d:1d"], ["--fill-rule", "quote"], ["--bars", "bundled"]])
def test_optimize_data_when_bar_only_flag_then_exit_2_naming_it(flag: list[str], tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = subprocess.run([*MMBOT, "optimize", "--data", FIRST, *flag, "--no-report"], cwd=tmp_path, env=clean_env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert flag[0] in proc.stderr and "Traceback" not in proc.stderr


def test_l2_default_grid_file_when_loaded_then_equals_the_built_in_960_valid_combinations() -> None:
    spec = load_grid(ROOT / "config" / "grids" / "l2-default.yaml")
    assert spec.param_space == L2_DEFAULT_GRID.param_space
    assert spec.size == 960 and set(spec.param_space) == set(PARAM_NAMES)
    job = L2Job(config=None, overrides={}, paths=(FIRST,), environ={})
    for combo in spec.combinations():  # each one makes valid settings (the shipped grid runs)
        combo_settings(job, combo)


def test_optimize_data_when_a_combination_is_invalid_then_exit_2_naming_it(tmp_path: Path, clean_env: dict[str, str]) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text("param_space:\n  spread_bps: [2.0]\n  max_inventory: [0.05, 0.02]\n  order_size: [0.01, 0.04]\n"
                    "  skew_factor: [0.0002]\n  update_freq: [1]\n")  # fmt: skip
    proc = subprocess.run([*MMBOT, "optimize", "--data", FIRST, "--grid", str(grid), "--no-report", "--out", str(tmp_path / "o")],
                          cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "max_inventory=0.02" in proc.stderr and "order_size=0.04" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_optimize_data_when_plugin_profile_then_the_plugin_runs_every_combination(tmp_path: Path, clean_env: dict[str, str]) -> None:
    # The example plugin (examples/microprice, installed offline) runs unchanged in the L2
    # optimiser: every combination builds it through strategy.model, like mmbot backtest.
    from tests.strategy.example_plugin import PROFILE, install_example, plugin_env

    target = install_example(tmp_path)
    grid = tmp_path / "g.yaml"
    # The plugin sizes its own quotes (strategy.params); the grid's axes are strategy.*
    # fields, which reach the risk gate: an inventory limit of one order lets one of its
    # three levels per side through.
    grid.write_text("param_space:\n  spread_bps: [2.0]\n  max_inventory: [0.05, 0.01]\n  order_size: [0.01]\n"
                    "  skew_factor: [0.0002]\n  update_freq: [1]\n")  # fmt: skip
    out = tmp_path / "out"
    proc = subprocess.run([*MMBOT, "optimize", "--data", FIRST, "--config", str(PROFILE), "--grid", str(grid), "--workers", "2",
                           "--no-report", "--out", str(out)],
                          cwd=tmp_path, env=plugin_env(clean_env, str(target)), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((out / "results.json").read_text())["results"]
    by_limit = {r["max_inventory"]: r for r in rows}
    assert by_limit[0.05]["fills"] > 0 and by_limit[0.01]["fills"] > 0
    assert by_limit[0.01]["orders"] < by_limit[0.05]["orders"]
