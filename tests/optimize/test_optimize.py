"""Grid files, ranking, the Pareto front, the parallel local runner, and `mmbot optimize`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pytest

from mmbot.errors import ConfigError
from mmbot.research.bars import Bars
from mmbot.research.grid import COL, OBJECTIVE_NAMES, GridRules, TickBars, param_matrix, run_chunk
from mmbot.research.optimize import SEED_GRID, GridSpec, load_grid, pareto_front, rank, run_grid_local
from tests.conftest import MMBOT, ROOT
from tests.optimize.conftest import SEED_SPACE

SEED_YAML = ROOT / "config" / "grids" / "seed.yaml"


def test_load_grid_when_seed_file_then_exactly_the_seed_param_space() -> None:
    spec = load_grid(SEED_YAML)
    assert spec.param_space == SEED_SPACE
    assert spec.size == len(spec.combinations()) == 960
    assert spec == SEED_GRID


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("param_space: [1, 2]", "param_space"),
        ("param_space: {spread_bps: [10]}", "missing"),
        ("param_space: {spread_bps: [-1], max_inventory: [5], order_size: [1], skew_factor: [0], update_freq: [1]}", "spread_bps"),
        ("param_space: {spread_bps: [10], max_inventory: [5], order_size: [1], skew_factor: [0], update_freq: [1.5]}", "update_freq"),
        ("param_space: {spread_bps: [10], max_inventory: [5], order_size: [1], skew_factor: [0], update_freq: [1]}\nobjective: pnl", "objective"),
        ("param_space: {spread_bps: [10], max_inventory: [5], order_size: [1], skew_factor: [0], update_freq: [1]}\nextra: 1", "unknown"),
    ],
)
def test_load_grid_when_invalid_then_config_error_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_grid(path)


def _objectives(rows: list[dict[str, float]]) -> np.ndarray:
    out = np.zeros((len(rows), len(OBJECTIVE_NAMES)))
    for k, row in enumerate(rows):
        for name, value in row.items():
            out[k, COL[name]] = value
    return out


def test_pareto_front_when_hand_made_rows_then_only_non_dominated_kept() -> None:
    base = {"sharpe": 1.0, "inventory_balance": 0.5, "fill_rate": 0.1}
    objs = _objectives(
        [
            {"net_pnl": 100, "max_drawdown": 50, **base},  # 0: front
            {"net_pnl": 90, "max_drawdown": 60, **base},  # 1: dominated by 0
            {"net_pnl": 80, "max_drawdown": 10, **base},  # 2: front (lower drawdown)
            {"net_pnl": 100, "max_drawdown": 50, **base},  # 3: equal to 0, not dominated
            {"net_pnl": 10, "max_drawdown": 90, **{**base, "fill_rate": 0.9}},  # 4: front (fill rate)
        ]
    )
    assert pareto_front(objs) == [0, 2, 3, 4]


def test_rank_when_min_objective_and_ties_then_ascending_and_stable() -> None:
    objs = _objectives([{"max_drawdown": 5}, {"max_drawdown": 1}, {"max_drawdown": 5}, {"max_drawdown": 3}])
    assert rank(objs, "max_drawdown") == [1, 3, 0, 2]
    objs[:, COL["sharpe"]] = [np.nan, 2.0, 1.0, np.nan]
    assert rank(objs, "sharpe") == [1, 2, 0, 3]  # a missing Sharpe ranks last


def test_run_grid_local_when_seed_grid_on_month_then_all_960_with_progress_and_equal_to_serial(month_ticks: TickBars) -> None:
    params = param_matrix(SEED_GRID.combinations())
    seen: list[tuple[int, int]] = []
    result = run_grid_local(month_ticks, params, GridRules(), workers=2, progress=lambda d, n: seen.append((d, n)))
    serial = run_chunk(month_ticks, params[::97], GridRules())
    assert result.size == 960
    assert seen[0] == (0, 960)
    assert seen[-1] == (960, 960)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert np.array_equal(result.objectives[::97], serial, equal_nan=True)
    assert result.wall_seconds > 0
    assert (result.objectives[:, COL["orders"]] > 0).all()


def test_run_chunk_when_fill_rules_differ_then_pnl_differs_in_many_combos_and_rule_is_documented(month_ticks: TickBars) -> None:
    params = param_matrix(SEED_GRID.combinations())
    quote = run_chunk(month_ticks, params, GridRules(fill_rule="quote", cross_policy="allow"))
    gap = run_chunk(month_ticks, params, GridRules(fill_rule="open_gap", cross_policy="allow"))
    differ = int((quote[:, COL["net_pnl"]] != gap[:, COL["net_pnl"]]).sum())
    doc = (ROOT / "docs" / "optimization.md").read_text()
    assert 0.2 * 960 < differ < 0.8 * 960
    assert "open_gap" in doc


def test_grid_spec_when_unknown_objective_then_config_error() -> None:
    with pytest.raises(ConfigError, match="objective"):
        GridSpec(param_space=dict(SEED_SPACE), objective="profit")


def test_optimize_cli_when_seed_grid_then_table_pareto_report_and_timing(tmp_path: Path, clean_env: dict[str, str]) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [*MMBOT, "optimize", "--grid", str(SEED_YAML), "--out", str(out), "--top", "5"],
        capture_output=True, text=True, env=clean_env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    html = (out / "report.html").read_text()
    assert "top 5 of 960 by net_pnl" in proc.stdout
    assert "Pareto front" in proc.stdout
    assert "combinations/s" in proc.stdout
    assert "960/960" in proc.stderr  # the progress bar's final state
    assert doc["info"]["combinations"] == 960
    assert doc["info"]["bars"] == 43199
    assert len(doc["results"]) == 960
    assert doc["info"]["pareto_front_size"] == len(doc["pareto_front"]) > 0
    assert 'id="heatmap_spread_bps_skew_factor"' in html
    assert '"type":"heatmap"' in html
    assert "<script" in html and "<script src=" not in html  # plotly inlined, no network needed


def test_optimize_cli_when_walk_forward_then_in_and_out_of_sample_reported(
    month_bars: Bars, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    days = month_bars.slice(0, 5 * 1440)
    rows = [list(r) for r in zip(days.ts_ms.tolist(), days.open.tolist(), days.high.tolist(), days.low.tolist(),
                                 days.close.tolist(), days.volume.tolist(), strict=True)]  # fmt: skip
    bars_file = tmp_path / "five_days.json"
    bars_file.write_bytes(orjson.dumps(rows))
    out = tmp_path / "wf"
    proc = subprocess.run(
        [*MMBOT, "optimize", "--grid", str(SEED_YAML), "--bars", str(bars_file), "--walk-forward", "2d:1d",
         "--out", str(out), "--no-report"],
        capture_output=True, text=True, env=clean_env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    wf = json.loads((out / "results.json").read_text())["walk_forward"]
    assert "out-of-sample net PnL/day" in proc.stdout
    assert wf["summary"]["windows"] == len(wf["windows"]) == 3
    assert all(w["test"][0] == w["train"][1] for w in wf["windows"])
    assert {"is_net_pnl_per_day", "oos_net_pnl_per_day", "oos_sharpe"} <= set(wf["summary"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "no/such/grid.yaml"], "does not exist"),
        (["--walk-forward", "7d"], "TRAIN:TEST"),
        (["--scheduler", "localhost:8786"], "tcp://"),
        (["--fill-rule", "touch"], "fill_rule"),
        (["--bars", "no/such/bars.csv"], "does not exist"),
    ],
)
def test_optimize_cli_when_bad_arguments_then_exit_2_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmbot.cli.main import app

    result = CliRunner().invoke(app, ["optimize", *args, "--no-report", "--out", str(tmp_path / "never")])
    assert result.exit_code == 2  # usage, config or a missing input file: fix the input (errors.py)
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "never").exists()


def test_seed_grid_when_inventory_at_limit_then_skew_pushes_the_ask_through_the_close_in_528_combos() -> None:
    from mmbot.strategy.simple import SimpleParams, bar_quotes

    close = 2_850_000  # 28,500.00 in ticks
    crossed = 0
    for combo in SEED_GRID.combinations():
        q_max = combo["max_inventory"]
        size = combo["order_size"]
        params = SimpleParams(spread_bps=combo["spread_bps"], max_inventory=q_max, order_size=size,
                              skew_factor=combo["skew_factor"], update_freq=int(combo["update_freq"]))  # fmt: skip
        _, ask = bar_quotes(close, q_max, params, "allow")  # long at the limit: only the ask is placed
        _, clamped = bar_quotes(close, q_max, params, "clamp")
        assert clamped is not None and clamped >= close + 1
        crossed += ask is not None and ask < close
    assert crossed == 528
