"""A parameter study on bars: the seed's grid run end to end, as a result the CLI only shows.

(:class:`GridStudy` is also the result of the L2 grid, mmbot/studies.py.)

``run_bar_study(settings, request)`` loads and checks the bars, builds the grid rules
from the settings (fees, fill rule and semantics, cross policy, Sharpe interval),
runs the grid locally or on Dask, optionally a walk-forward, ranks the combinations,
computes the Pareto front and flags every row below the break-even spread
(``2 x maker_fee_bps + slippage_bps + profit_bps``, mmbot/strategy/breakeven.py).
``write_study`` writes ``results.json`` (and the HTML report). Nothing here prints:
progress and notes go to the callbacks the caller passes, so ``mmbot optimize``
and a notebook get the same figures.

Units: money in the quote currency (``info["quote_ccy"]``), times in seconds,
``combos_per_second`` combinations per wall-clock second.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mmbot.config.settings import Settings
from mmbot.errors import ConfigError
from mmbot.research.bars import BarQuality, bundled_bars_path, check_bars, load_bars
from mmbot.research.distributed import DaskGridSession, run_grid, validate_scheduler
from mmbot.research.grid import GridRules, tick_bars_from_bars, warm_up
from mmbot.research.optimize import SEED_GRID, GridResult, GridSpec, load_grid, pareto_front
from mmbot.research.walkforward import WalkForwardResult, parse_walk_forward, walk_forward
from mmbot.strategy.breakeven import breakeven_flags_for

# progress(stage, done, total): stage is "grid" or "walk-forward"; total None while unknown.
Progress = Callable[[str, int, int | None], None]


def _no_progress(stage: str, done: int, total: int | None) -> None:
    del stage, done, total


def _no_note(line: str) -> None:
    del line


@dataclass(frozen=True)
class BarStudyRequest:
    """What a study runs; None means "from the settings" (or the seed grid, the bundled bars)."""

    grid: str | None = None
    bars_path: str | None = None
    walk_forward: str | None = None
    scheduler: str | None = None
    workers: int | None = None
    objective: str | None = None
    fill_rule: str | None = None
    fill_semantics: str | None = None
    cross_policy: str | None = None


@dataclass
class GridStudy:
    """A ranked grid (bars or L2): what ``mmbot optimize`` prints and writes."""

    spec: GridSpec
    rules: GridRules | None  # the bar kernel's rules; None for the L2 grid (the settings are the rules)
    quality: BarQuality | None  # the bars' checks; None for the L2 grid
    result: GridResult
    order: list[int]
    front: list[int]
    walk: WalkForwardResult | None
    walk_forward_text: str | None
    compile_seconds: float
    total_seconds: float
    quote_ccy: str
    records: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def below_breakeven(self) -> int:
        return int(self.info.get("below_breakeven_combinations", 0))

    def document(self) -> dict[str, Any]:
        walk = self.walk
        return {
            "info": self.info,
            "grid": {k: list(v) for k, v in self.spec.param_space.items()},
            "ranking": self.order,
            "pareto_front": self.front,
            "results": self.records,
            "walk_forward": None
            if walk is None
            else {
                "summary": walk.summary(),
                "windows": [
                    {"index": w.index, "train": w.train, "test": w.test, "params": w.params,
                     "in_sample": w.in_sample, "out_of_sample": w.out_of_sample}
                    for w in walk.windows
                ],
            },
        }  # fmt: skip


def grid_rules(settings: Settings, request: BarStudyRequest, interval_s: float) -> GridRules:
    period_bars = max(1, round(settings.backtest.sharpe_interval_s / interval_s))
    try:
        return GridRules(
            cross_policy=request.cross_policy or settings.strategy.cross_policy,
            fill_rule=request.fill_rule or settings.backtest.fill_rule,
            fill_semantics=request.fill_semantics or settings.backtest.fill_semantics,
            maker_fee_bps=float(settings.fees.maker_fee_bps),
            slippage_bps=float(settings.fees.slippage_bps),
            tick_size=float(settings.instrument.tick_size),
            neutral_band=settings.record.neutral_band,
            period_bars=period_bars,
            periods_per_year=365 * 86_400 / (period_bars * interval_s),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def run_bar_study(
    settings: Settings,
    request: BarStudyRequest,
    *,
    progress: Progress = _no_progress,
    note: Callable[[str], None] = _no_note,
) -> GridStudy:
    """Run the grid (and the walk-forward, when asked) and return every figure the command shows."""
    t0 = time.perf_counter()
    if request.scheduler:
        validate_scheduler(request.scheduler)
    spec = load_grid(request.grid) if request.grid else SEED_GRID
    if request.objective:
        spec = GridSpec(param_space=spec.param_space, objective=request.objective)
    path = request.bars_path or settings.data.bars_path or str(bundled_bars_path())
    raw = load_bars(bundled_bars_path() if path == "bundled" else path)
    quality = check_bars(raw)
    for line in quality.lines():
        note(line)
    ticks = tick_bars_from_bars(raw, float(settings.instrument.tick_size))
    rules = grid_rules(settings, request, raw.interval_ms / 1000)

    compile_s = warm_up()
    note(f"numba kernels ready in {compile_s:.2f} s (compile, or load from numba's cache)")
    with contextlib.ExitStack() as stack:
        session = None
        if request.scheduler:
            note(f"connecting to Dask ({request.scheduler})")
            session = stack.enter_context(DaskGridSession(request.scheduler, workers=request.workers))
        walk = None
        if request.walk_forward:
            train_bars, test_bars = parse_walk_forward(request.walk_forward, raw.interval_ms)
            runner = None
            if session is not None:
                dask_session = session

                def runner(b: Any, p: Any) -> Any:
                    return dask_session.run(b, p, rules).objectives

            walk = walk_forward(ticks, spec, rules, train_bars, test_bars, run=runner,
                                progress=lambda d, n: progress("walk-forward", d, n))  # fmt: skip
        result = run_grid(ticks, spec, rules, workers=request.workers, session=session,
                          progress=lambda d, n: progress("grid", d, n))  # fmt: skip

    quote_ccy = settings.symbols[0].partition("/")[2]
    study = GridStudy(
        spec=spec, rules=rules, quality=quality, result=result, order=result.ranking(spec.objective),
        front=pareto_front(result.objectives), walk=walk, walk_forward_text=request.walk_forward,
        compile_seconds=compile_s, total_seconds=0.0, quote_ccy=quote_ccy,
    )  # fmt: skip
    study.records = flagged_records(settings, result)
    study.info = _info(study, rules, quality)
    study.total_seconds = time.perf_counter() - t0
    return study


def flagged_records(settings: Settings, result: GridResult) -> list[dict[str, Any]]:
    # Flagged, not refused: the seed's own grid has rows below break-even once fees count.
    fees = settings.fees
    records = result.records()
    for rec in records:
        flags = breakeven_flags_for(float(rec["spread_bps"]), float(fees.maker_fee_bps), float(fees.slippage_bps), float(fees.profit_bps))
        rec["breakeven_bps"] = flags["breakeven_bps"]
        rec["below_breakeven"] = flags["below_breakeven"]
    return records


def _info(study: GridStudy, rules: GridRules, bar_quality: BarQuality) -> dict[str, Any]:
    result, quality = study.result, bar_quality.fields()
    return {
        "combinations": result.size,
        "bars": result.bars,
        "first_bar": quality["first_bar"],
        "last_bar": quality["last_bar"],
        "backend": result.backend,
        "workers": result.workers,
        "wall_seconds": round(result.wall_seconds, 4),
        "combos_per_second": round(result.combos_per_second, 1),
        "compile_seconds": round(study.compile_seconds, 3),
        "objective": study.spec.objective,
        "quote_ccy": study.quote_ccy,
        "fill_rule": rules.fill_rule,
        "fill_semantics": rules.fill_semantics,
        "cross_policy": rules.cross_policy,
        "maker_fee_bps": rules.maker_fee_bps,
        "slippage_bps": rules.slippage_bps,
        "sharpe_interval_bars": rules.period_bars,
        "pareto_front_size": len(study.front),
        "below_breakeven_combinations": sum(1 for rec in study.records if rec["below_breakeven"]),
        **{f"dask_{k}": v for k, v in result.meta.items()},
    }


def write_study(study: GridStudy, out_dir: Path, *, report: bool, top: int) -> tuple[Path, Path | None]:
    """``results.json`` and, with ``report``, ``report.html`` in ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / "results.json"
    results.write_bytes(orjson.dumps(study.document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    if not report:
        return results, None
    from mmbot.research.grid_report import write_report  # plotly: only when a report is asked for

    title = "mmbot optimize --data (L2)" if study.info.get("kind") == "l2" else "mmbot optimize"
    html = write_report(out_dir / "report.html", study.result, objective=study.spec.objective, title=title,
                        info=study.info, walk=study.walk, top=top)  # fmt: skip
    return results, Path(html)
