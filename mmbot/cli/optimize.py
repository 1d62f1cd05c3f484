"""``mmbot optimize``: the seed's parameter grid on bars, locally or on a Dask cluster.

    mmbot optimize --grid config/grids/seed.yaml [--walk-forward 7d:1d]
                   [--scheduler tcp://HOST:PORT | local] [--workers N]

Prints a ranked table and the Pareto front, writes ``results.json`` and an HTML
report (Pareto scatter, heatmaps) to ``--out`` (default ``var/optimize/<run_id>``).
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from mmbot.cli.common import console as stdout_console
from mmbot.cli.common import err_console, guarded, settings_for
from mmbot.config.settings import make_run_id
from mmbot.errors import ConfigError
from mmbot.extras import OPTIMIZE_MODULES, RESEARCH, require

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (default: the bundled config/default.yaml)")
]


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
    ) -> None:
        """Run a parameter grid of the seed strategy on bars; rank, Pareto front, heatmaps."""
        run_optimize(
            grid=grid, config=config, bars_path=bars, walk_forward=walk_forward, scheduler=scheduler, workers=workers,
            objective=objective, fill_rule=fill_rule, fill_semantics=fill_semantics, cross_policy=cross_policy,
            top=top, out=out, report=not no_report,
        )  # fmt: skip


def _progress(console: Any, label: str) -> Any:
    from rich.progress import (  # rich.progress only with a progress bar on a terminal
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def run_optimize(
    *,
    grid: str | None,
    config: str | None,
    bars_path: str | None,
    walk_forward: str | None,
    scheduler: str | None,
    workers: int | None,
    objective: str | None,
    fill_rule: str | None,
    fill_semantics: str | None,
    cross_policy: str | None,
    top: int,
    out: str | None,
    report: bool,
) -> None:
    require(RESEARCH, "mmbot optimize" + ("" if report else " --no-report"), *OPTIMIZE_MODULES, *(("plotly",) if report else ()))
    from mmbot.research.bars import (  # only for mmbot optimize; keeps the CLI start-up light
        bundled_bars_path,
        check_bars,
        load_bars,
    )
    from mmbot.research.distributed import run_grid  # dask (lazily) and the numba kernels: only for mmbot optimize
    from mmbot.research.grid import GridRules, tick_bars_from_bars, warm_up  # numba-compiled kernels: only for mmbot optimize
    from mmbot.research.grid_checks import grid_notes  # with the numba kernels: only for mmbot optimize
    from mmbot.research.optimize import (  # imports the numba kernels: only for mmbot optimize
        SEED_GRID,
        GridSpec,
        load_grid,
        pareto_front,
    )
    from mmbot.research.walkforward import parse_walk_forward  # imports the numba kernels: only for mmbot optimize
    from mmbot.research.walkforward import walk_forward as run_walk_forward  # imports the numba kernels: only for mmbot optimize

    console = stdout_console  # rebound to a wide console below when stdout is not a terminal
    settings = settings_for(config)
    if scheduler:
        from mmbot.research.distributed import validate_scheduler  # dask (lazily) and the numba kernels: only for mmbot optimize

        validate_scheduler(scheduler)
    spec = load_grid(grid) if grid else SEED_GRID
    if objective:
        spec = GridSpec(param_space=spec.param_space, objective=objective)
    path = bars_path or settings.data.bars_path or str(bundled_bars_path())
    raw = load_bars(bundled_bars_path() if path == "bundled" else path)
    quality = check_bars(raw)
    for line in quality.lines():
        err_console.print(line, highlight=False)
    ticks = tick_bars_from_bars(raw, float(settings.instrument.tick_size))
    interval_s = raw.interval_ms / 1000
    try:
        rules = GridRules(
            cross_policy=cross_policy or settings.strategy.cross_policy,
            fill_rule=fill_rule or settings.backtest.fill_rule,
            fill_semantics=fill_semantics or settings.backtest.fill_semantics,
            maker_fee_bps=float(settings.fees.maker_fee_bps),
            slippage_bps=float(settings.fees.slippage_bps),
            tick_size=float(settings.instrument.tick_size),
            neutral_band=settings.record.neutral_band,
            period_bars=max(1, round(settings.backtest.sharpe_interval_s / interval_s)),
            periods_per_year=365 * 86_400 / (max(1, round(settings.backtest.sharpe_interval_s / interval_s)) * interval_s),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    t0 = time.perf_counter()
    compile_s = warm_up()
    err_console.print(f"numba kernels ready in {compile_s:.2f} s (compile, or load from numba's cache)", highlight=False)

    with contextlib.ExitStack() as stack:
        session = None
        if scheduler:
            from mmbot.research.distributed import DaskGridSession  # dask (lazily) and the numba kernels: only for mmbot optimize

            err_console.print(f"connecting to Dask ({scheduler})", highlight=False)
            session = stack.enter_context(DaskGridSession(scheduler, workers=workers))
        walk = None
        if walk_forward:
            train_bars, test_bars = parse_walk_forward(walk_forward, raw.interval_ms)
            runner = None
            if session is not None:
                dask_session = session

                def runner(b: Any, p: Any) -> Any:
                    return dask_session.run(b, p, rules).objectives

            with _progress(err_console, "walk-forward windows") as prog:
                task = prog.add_task("wf", total=None)
                walk = run_walk_forward(
                    ticks, spec, rules, train_bars, test_bars, run=runner,
                    progress=lambda d, n: prog.update(task, completed=d, total=n),
                )  # fmt: skip

        with _progress(err_console, f"grid {spec.size} combinations") as prog:
            task = prog.add_task("grid", total=spec.size)
            result = run_grid(
                ticks, spec, rules, workers=workers, session=session,
                progress=lambda d, n: prog.update(task, completed=d, total=n),
            )  # fmt: skip

    order = result.ranking(spec.objective)
    front = pareto_front(result.objectives)
    cols = ["spread_bps", "max_inventory", "order_size", "skew_factor", "update_freq"]
    headers = ["#", "spread_bps", "max_inv", "size", "skew", "upd", "net PnL", "Sharpe", "max DD", "inv bal", "fill rate", "fills"]
    if not console.is_terminal:  # files and pipes: wide enough for every column
        console = Console(width=150)

    def table(title: str, idx: list[int]) -> Table:
        t = Table(title=title, header_style="bold")
        for c in headers:
            t.add_column(c, justify="right", no_wrap=True)
        rank_of = {k: r for r, k in enumerate(order, start=1)}
        for k in idx:
            combo, row = result.combo(k), result.row(k)
            t.add_row(
                str(rank_of[k]),
                *(f"{combo[c]:g}" for c in cols),
                f"{row['net_pnl']:,.2f}",
                "n/a" if row["sharpe"] != row["sharpe"] else f"{row['sharpe']:.2f}",
                f"{row['max_drawdown']:,.2f}",
                f"{row['inventory_balance']:.3f}",
                f"{row['fill_rate']:.4f}",
                f"{int(row['fills'])}",
            )
        return t

    console.print(table(f"top {min(top, result.size)} of {result.size} by {spec.objective}", order[:top]))
    front_sorted = sorted(front, key=order.index)
    console.print(table(f"Pareto front: {len(front)} combinations (first {min(top, len(front))} by rank)", front_sorted[:top]))
    for line in grid_notes(result, order, top, settings.symbols[0].partition('/')[2]):  # mmbot/research/grid_checks.py
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    if walk is not None:
        wt = Table(title=f"walk-forward {walk_forward} ({walk.train_bars}:{walk.test_bars} bars), chosen by {spec.objective}", header_style="bold")
        for c in ["window", "test start", "spread_bps", "max_inv", "size", "skew", "upd", "IS net PnL", "OOS net PnL", "IS Sharpe", "OOS fill rate"]:
            wt.add_column(c, justify="right", no_wrap=True)
        for w in walk.windows:
            wt.add_row(
                str(w.index),
                datetime.fromtimestamp(w.test_start_ms / 1000, UTC).strftime("%m-%d %H:%M"),
                *(f"{w.params[c]:g}" for c in cols),
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

    info: dict[str, Any] = {
        "combinations": result.size,
        "bars": result.bars,
        "first_bar": quality.fields()["first_bar"],
        "last_bar": quality.fields()["last_bar"],
        "backend": result.backend,
        "workers": result.workers,
        "wall_seconds": round(result.wall_seconds, 4),
        "combos_per_second": round(result.combos_per_second, 1),
        "compile_seconds": round(compile_s, 3),
        "objective": spec.objective,
        "quote_ccy": settings.symbols[0].partition('/')[2],
        "fill_rule": rules.fill_rule,
        "fill_semantics": rules.fill_semantics,
        "cross_policy": rules.cross_policy,
        "maker_fee_bps": rules.maker_fee_bps,
        "slippage_bps": rules.slippage_bps,
        "sharpe_interval_bars": rules.period_bars,
        "pareto_front_size": len(front),
        **{f"dask_{k}": v for k, v in result.meta.items()},
    }
    console.print(
        f"{result.size} combinations x {result.bars} bars in {result.wall_seconds:.3f} s = "
        f"{result.combos_per_second:,.0f} combinations/s ({result.backend}, {result.workers} workers); "
        f"numba ready in {compile_s:.2f} s; total {time.perf_counter() - t0:.2f} s",
        highlight=False,
    )
    # Optimisation flags (does not refuse) settings below the break-even spread: the
    # seed's own grid has rows below it once fees are counted.
    from mmbot.strategy.breakeven import (
        breakeven_flags_for,  # engine stack (numpy): not for every mmbot call
    )
    records = result.records()
    fees = settings.fees
    for rec in records:
        flags = breakeven_flags_for(float(rec["spread_bps"]), float(fees.maker_fee_bps), float(fees.slippage_bps), float(fees.profit_bps))
        rec["breakeven_bps"] = flags["breakeven_bps"]
        rec["below_breakeven"] = flags["below_breakeven"]
    below = sum(1 for rec in records if rec["below_breakeven"])
    info["below_breakeven_combinations"] = below
    if below:
        console.print(
            f"warning: {below} of {len(records)} combinations quote below the break-even spread "
            f"{records[0]['breakeven_bps']:g} bps (fees.* in the config); flagged in results.json",
            highlight=False,
        )
    out_dir = Path(out) if out else Path("var") / "optimize" / make_run_id(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "info": info,
        "grid": {k: list(v) for k, v in spec.param_space.items()},
        "ranking": order,
        "pareto_front": front,
        "results": records,
        "walk_forward": None
        if walk is None
        else {
            "summary": walk.summary(),
            "windows": [
                {"index": w.index, "train": w.train, "test": w.test, "params": w.params, "in_sample": w.in_sample, "out_of_sample": w.out_of_sample}
                for w in walk.windows
            ],
        },
    }
    (out_dir / "results.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    console.print(f"results: {out_dir / 'results.json'}", highlight=False)
    if report:
        from mmbot.research.grid_report import write_report  # plotly: only when --report is given

        html_path = write_report(out_dir / "report.html", result, objective=spec.objective, title="mmbot optimize", info=info, walk=walk, top=top)
        console.print(f"report: {html_path}", highlight=False)
