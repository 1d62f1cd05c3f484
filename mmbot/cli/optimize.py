"""``mmbot optimize``: the seed's parameter grid on bars, locally or on a Dask cluster.

    mmbot optimize --grid config/grids/seed.yaml [--walk-forward 7d:1d]
                   [--scheduler tcp://HOST:PORT | local] [--workers N]

Prints a ranked table and the Pareto front, writes ``results.json`` and an HTML
report (Pareto scatter, heatmaps) to ``--out`` (default ``var/optimize/<run_id>``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mmbot.cli.common import ConfigOpt, err_console, guarded, settings_for, sim_overrides
from mmbot.cli.common import console as stdout_console
from mmbot.config.settings import Settings, make_run_id
from mmbot.errors import ConfigError
from mmbot.extras import OPTIMIZE_MODULES, RESEARCH, require
from mmbot.marketdata.capture import check_capture_files


def register(app: typer.Typer) -> None:
    @app.command("optimize")
    @guarded
    def optimize(
        grid: Annotated[str | None, typer.Option("--grid", help="grid YAML (param_space); default: the seed's 960-combination grid")] = None,
        config: ConfigOpt = None,
        bars: Annotated[str | None, typer.Option("--bars", help="OHLCV bars file; default: data.bars_path or the bundled month")] = None,
        walk_forward: Annotated[str | None, typer.Option("--walk-forward", help="TRAIN:TEST window lengths, e.g. 7d:1d or 10080:1440 (bars)")] = None,
        scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address tcp://HOST:PORT, or 'local' for a LocalCluster")] = None,
        workers: Annotated[int | None, typer.Option("--workers", min=1, help="threads (local) or LocalCluster workers; default: all cores")] = None,
        objective: Annotated[str | None, typer.Option("--objective", help="net_pnl | sharpe | max_drawdown | inventory_balance | fill_rate")] = None,
        fill_rule: Annotated[str | None, typer.Option("--fill-rule", help="quote | open_gap (default: backtest.fill_rule)")] = None,
        fill_semantics: Annotated[str | None, typer.Option("--fill-semantics", help="strict | backtrader (default: backtest.fill_semantics)")] = None,
        cross_policy: Annotated[str | None, typer.Option("--cross-policy", help="clamp | allow (default: strategy.cross_policy)")] = None,
        top: Annotated[int, typer.Option("--top", min=1, help="rows of the ranked table")] = 15,
        out: Annotated[str | None, typer.Option("--out", help="output directory (default var/optimize/<run_id>)")] = None,
        no_report: Annotated[bool, typer.Option("--no-report", help="skip the HTML report")] = False,
        data: Annotated[list[str] | None, typer.Option("--data", help="L2 capture file(s) ('bundled' = the bundled one): run the grid on the L2 simulator")] = None,
        fill_model: Annotated[str | None, typer.Option("--fill-model", help="L2 grid: touch | risk_averse | probabilistic (default: sim.fill_model)")] = None,
        latency_ms: Annotated[float | None, typer.Option("--latency-ms", help="L2 grid: entry, cancel and market-data latency (default: sim.*)")] = None,
    ) -> None:
        """Run a parameter grid of the strategy on bars (default) or on L2 captures (--data); rank, Pareto front, heatmaps."""
        require(RESEARCH, "mmbot optimize" + ("" if not no_report else " --no-report"), *OPTIMIZE_MODULES, *(() if no_report else ("plotly",)))
        if data:
            bar_only = {"--bars": bars, "--walk-forward": walk_forward, "--fill-rule": fill_rule,
                        "--fill-semantics": fill_semantics, "--cross-policy": cross_policy}  # fmt: skip
            given = [flag for flag, value in bar_only.items() if value is not None]
            if given:
                raise ConfigError(f"{', '.join(given)}: bar-grid options, not for the L2 grid (--data); the L2 simulator "
                                  "takes its rules from the config (sim.*, strategy.cross_policy) and --fill-model/--latency-ms")
            from mmbot.studies import L2Job, l2_grid, run_l2_study  # the L2 simulator stack: only for --data

            def l2_study(settings: Settings, progress: Any, note: Any) -> Any:
                from mmbot.wiring import capture_paths

                paths = capture_paths(settings, [str(bundled) for bundled in data if bundled != "bundled"] or None)
                check_capture_files(paths)
                job = L2Job(config=config, overrides=sim_overrides(fill_model, latency_ms), paths=tuple(paths))
                spec = l2_grid(grid, objective)
                return run_l2_study(job, spec, workers=workers, scheduler=scheduler, progress=progress, note=note)

            run_optimize(config=config, make_study=l2_study, top=top, out=out, report=not no_report)
            return
        if fill_model is not None or latency_ms is not None:
            raise ConfigError("--fill-model/--latency-ms apply to the L2 grid (--data); the bar grid uses --fill-rule/--fill-semantics")
        from mmbot.research.study import BarStudyRequest, run_bar_study  # numba kernels: only for mmbot optimize

        request = BarStudyRequest(
            grid=grid, bars_path=bars, walk_forward=walk_forward, scheduler=scheduler, workers=workers,
            objective=objective, fill_rule=fill_rule, fill_semantics=fill_semantics, cross_policy=cross_policy,
        )  # fmt: skip
        run_optimize(config=config, make_study=lambda settings, progress, note: run_bar_study(settings, request, progress=progress, note=note),
                     top=top, out=out, report=not no_report)  # fmt: skip


def _progress(console: Any) -> Any:
    from rich.progress import (  # rich.progress only with a progress bar on a terminal
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def run_optimize(*, config: str | None, make_study: Callable[[Settings, Any, Any], Any], top: int, out: str | None, report: bool) -> None:
    """Run the study (bars: mmbot/research/study.py; L2: mmbot/studies.py) and show it: tables, notes, paths."""
    from mmbot.research.grid_checks import grid_notes  # with the numba kernels: only for mmbot optimize
    from mmbot.research.study import write_study  # numba kernels: only for mmbot optimize

    settings = settings_for(config)
    with _progress(err_console) as prog:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total)
            prog.update(tasks[stage], completed=done, total=total)

        study = make_study(settings, progress, lambda line: err_console.print(line, highlight=False))
    result, order, front, spec = study.result, study.order, study.front, study.spec
    console = stdout_console if stdout_console.is_terminal else Console(width=150)  # files and pipes: every column

    console.print(_grid_table(study, f"top {min(top, result.size)} of {result.size} by {spec.objective}", order[:top]))
    front_sorted = sorted(front, key=order.index)
    console.print(_grid_table(study, f"Pareto front: {len(front)} combinations (first {min(top, len(front))} by rank)", front_sorted[:top]))
    for line in grid_notes(result, order, top, study.quote_ccy):  # mmbot/research/grid_checks.py
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if study.walk is not None:
        _print_walk(console, study)
    if study.info.get("kind") == "l2":
        console.print(
            f"{result.size} combinations x {result.bars:,} events (full simulator) in {result.wall_seconds:.1f} s = "
            f"{result.combos_per_second:,.2f} combinations/s ({result.backend}, {result.workers} workers; "
            f"{study.info['seconds_per_combination']:.2f} s per combination per worker); total {study.total_seconds:.1f} s",
            highlight=False,
        )
    else:
        console.print(
            f"{result.size} combinations x {result.bars} bars in {result.wall_seconds:.3f} s = "
            f"{result.combos_per_second:,.0f} combinations/s ({result.backend}, {result.workers} workers); "
            f"numba ready in {study.compile_seconds:.2f} s; total {study.total_seconds:.2f} s",
            highlight=False,
        )
    if study.below_breakeven:
        console.print(
            f"warning: {study.below_breakeven} of {len(study.records)} combinations quote below the break-even spread "
            f"{study.records[0]['breakeven_bps']:g} bps (fees.* in the config); flagged in results.json",
            highlight=False,
        )
    out_dir = Path(out) if out else Path("var") / "optimize" / make_run_id(settings)
    results, html = write_study(study, out_dir, report=report, top=top)
    console.print(f"results: {results}", highlight=False)
    if html is not None:
        console.print(f"report: {html}", highlight=False)


_COLS = ["spread_bps", "max_inventory", "order_size", "skew_factor", "update_freq"]


def _grid_table(study: Any, title: str, idx: list[int]) -> Table:
    headers = ["#", "spread_bps", "max_inv", "size", "skew", "upd", "net PnL", "Sharpe", "max DD", "inv bal", "fill rate", "fills"]
    t = Table(title=title, header_style="bold")
    for c in headers:
        t.add_column(c, justify="right", no_wrap=True)
    rank_of = {k: r for r, k in enumerate(study.order, start=1)}
    for k in idx:
        combo, row = study.result.combo(k), study.result.row(k)
        t.add_row(
            str(rank_of[k]),
            *(f"{combo[c]:g}" for c in _COLS),
            f"{row['net_pnl']:,.2f}",
            "n/a" if row["sharpe"] != row["sharpe"] else f"{row['sharpe']:.2f}",
            f"{row['max_drawdown']:,.2f}",
            f"{row['inventory_balance']:.3f}",
            f"{row['fill_rate']:.4f}",
            f"{int(row['fills'])}",
        )
    return t


def _print_walk(console: Console, study: Any) -> None:
    walk = study.walk
    wt = Table(title=f"walk-forward {study.walk_forward_text} ({walk.train_bars}:{walk.test_bars} bars), chosen by {study.spec.objective}",
               header_style="bold")  # fmt: skip
    for c in ["window", "test start", "spread_bps", "max_inv", "size", "skew", "upd", "IS net PnL", "OOS net PnL", "IS Sharpe", "OOS fill rate"]:
        wt.add_column(c, justify="right", no_wrap=True)
    for w in walk.windows:
        wt.add_row(
            str(w.index),
            datetime.fromtimestamp(w.test_start_ms / 1000, UTC).strftime("%m-%d %H:%M"),
            *(f"{w.params[c]:g}" for c in _COLS),
            f"{w.in_sample['net_pnl']:,.2f}",
            f"{w.out_of_sample['net_pnl']:,.2f}",
            f"{w.in_sample['sharpe']:.2f}",
            f"{w.out_of_sample['fill_rate']:.4f}",
        )
    console.print(wt)
    s = walk.summary()
    console.print(
        f"walk-forward: {s['windows']} windows; in-sample net PnL/day {s['is_net_pnl_per_day']:,.2f}, "
        f"out-of-sample net PnL/day {s['oos_net_pnl_per_day']:,.2f} (total {s['oos_net_pnl']:,.2f}, "
        f"{s['oos_windows_profitable']}/{s['windows']} windows profitable, OOS Sharpe {s['oos_sharpe']:.2f})",
        highlight=False,
    )
