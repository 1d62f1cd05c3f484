"""The optimisation report renders in headless Chromium: Pareto scatter and heatmaps really drawn."""

from __future__ import annotations

from pathlib import Path

from mmbot.research.grid import GridRules, TickBars, param_matrix
from mmbot.research.grid_report import HEATMAPS, write_report
from mmbot.research.optimize import SEED_GRID, run_grid_local
from tests.research.chromium import _Tree, chart_problems, render, screenshot_problem


def _heatmap_drawn(dom: str, chart_id: str) -> bool:
    tree = _Tree()
    tree.feed(dom)
    div = tree.by_id.get(chart_id)
    nodes = div.walk() if div is not None else []
    layers = [n for n in nodes if n.tag == "g" and "hm" in n.classes()]
    return any(i.tag == "image" and i.attrs.get("href", i.attrs.get("xlink:href", "")).startswith("data:image/") for g in layers for i in g.walk())


def test_grid_report_when_rendered_in_chromium_then_pareto_and_heatmaps_drawn(month_ticks: TickBars, tmp_path: Path) -> None:
    result = run_grid_local(month_ticks.slice(0, 2880), param_matrix(SEED_GRID.combinations()), GridRules(), workers=2)
    html = write_report(tmp_path / "report.html", result, objective="net_pnl", title="grid", info={"bars": result.bars})
    page = render(html, tmp_path / "shot.png", height=2600)
    heatmap_ids = [f"heatmap_{r}_{c}" for r, c in HEATMAPS]
    assert chart_problems(page.dom, ["pareto"]) == {}
    assert {cid: _heatmap_drawn(page.dom, cid) for cid in heatmap_ids} == dict.fromkeys(heatmap_ids, True)
    assert not _heatmap_drawn(page.dom, "pareto")  # the check tells a scatter from a heatmap
    assert screenshot_problem(page.png) is None
