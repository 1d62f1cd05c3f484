"""The optimiser tells the truth: banner, edge and redundancy warnings, readable report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mmbot.research.grid import COL, OBJECTIVE_NAMES, PARAM_NAMES, GridRules, TickBars, param_matrix
from mmbot.research.grid_checks import (
    edge_warnings,
    grid_notes,
    grid_warnings,
    identical_ranks,
    no_profitable_banner,
    redundant_dimensions,
)
from mmbot.research.grid_report import write_report
from mmbot.research.optimize import SEED_GRID, GridResult, GridSpec, run_grid_local
from mmbot.research.walkforward import walk_forward
from tests.optimize.conftest import SEED_SPACE
from tests.research.chromium import chart_problems, render, screenshot_problem

SMALL_SPACE = {"spread_bps": (10, 30), "max_inventory": (5, 10), "order_size": (1.0,), "skew_factor": (0.0005, 0.001), "update_freq": (1,)}


def _result(params: list[list[float]], pnl: list[float]) -> GridResult:
    objectives = np.zeros((len(params), len(OBJECTIVE_NAMES)))
    objectives[:, COL["net_pnl"]] = pnl
    return GridResult(params=np.array(params, dtype=np.float64), objectives=objectives, wall_seconds=0.0, backend="t", workers=1, bars=1)


def test_checks_when_hand_made_grid_then_banner_edge_and_redundant_dimension() -> None:
    # update_freq (last column) takes two values and changes nothing; spread is best at 30 (the edge).
    params = [[s, 5, 1, 0.001, u] for s in (10, 20, 30) for u in (1, 2)]
    pnl = [-5.0, -5.0, -3.0, -3.0, -1.0, -1.0]
    result = _result(params, pnl)
    order = result.ranking("net_pnl")

    banner = no_profitable_banner(result, "USDT")

    assert banner is not None and "all 6 combinations lose money" in banner and "-1.00 USDT" in banner
    assert no_profitable_banner(_result(params, [*pnl[:-1], 0.5])) is None
    assert edge_warnings(result, order[0])[0].startswith("best spread_bps=30 is the highest value tried")
    assert [w.split(":")[0] for w in redundant_dimensions(result)] == ["update_freq"]
    assert identical_ranks(result, order, 6)[0].startswith("ranks 1, 2 have identical results")
    assert PARAM_NAMES[-1] == "update_freq"


def test_checks_when_seed_grid_on_bundled_month_then_banner_edge_and_redundancy(month_ticks: TickBars) -> None:
    result = run_grid_local(month_ticks, param_matrix(SEED_GRID.combinations()), GridRules(), workers=2)
    order = result.ranking("net_pnl")

    notes = grid_notes(result, order, 20, "USDT")

    assert notes[0].startswith("WARNING: No combination is profitable: all 960 combinations")
    assert any("best spread_bps=30 is the highest value tried" in n for n in notes)
    assert any("max_inventory and skew_factor are partly redundant" in n and "skew_factor / max_inventory" in n for n in notes)
    assert any(n.startswith("warning: ranks 3, 4, 5 have identical results") for n in notes)
    assert grid_warnings(result, order, 20) == [n.removeprefix("warning: ") for n in notes[1:]]


def test_grid_report_when_bundled_month_rendered_in_chromium_then_banner_warnings_iso_times_and_charts(
    month_ticks: TickBars, tmp_path: Path
) -> None:
    spec = GridSpec(param_space=dict(SMALL_SPACE))
    result = run_grid_local(month_ticks, param_matrix(spec.combinations()), GridRules(), workers=2)
    walk = walk_forward(month_ticks, spec, GridRules(), train_bars=7 * 1440, test_bars=7 * 1440)
    html_path = write_report(tmp_path / "report.html", result, objective="net_pnl", title="grid",
                             info={"bars": result.bars, "quote_ccy": "USDT"}, walk=walk)  # fmt: skip
    text = html_path.read_text()

    page = render(html_path, tmp_path / "shot.png", width=1280, height=3000)

    assert "No combination is profitable: all 8 combinations lose money" in page.dom
    assert "class=\"banner\"" in page.dom or "class='banner'" in page.dom
    assert "is the highest value tried" in page.dom or "is the lowest value tried" in page.dom
    assert re.search(r"<td>20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</td>", text)  # walk-forward times in ISO 8601
    assert "test_start_ms" not in text
    assert '"zmid":0.0' in text  # net PnL heatmaps centred on zero
    assert "the two axes drawn" in text
    assert chart_problems(page.dom, ["pareto", "walkforward"]) == {}
    assert screenshot_problem(page.png) is None
    assert SEED_SPACE["spread_bps"][-1] == 30
