"""``mmbot backtest``: the node on a capture without an event loop (L2), or the bar backtest."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from mmbot.cli.common import (
    ConfigOpt,
    FillModelChoice,
    config_default,
    fault_tuple,
    guarded,
    print_report,
    print_summary,
    settings_for,
    sim_overrides,
    write_json_atomic,
)
from mmbot.config.settings import Settings, make_run_id
from mmbot.extras import REPORT_MODULES, RESEARCH, require
from mmbot.marketdata.capture import check_capture_files
from mmbot.observability.logging import configure_logging


def run_l2_backtest(
    settings: Settings,
    paths: list[str],
    *,
    run_id: str | None = None,
    faults: tuple[Any, ...] = (),
    observers: list[Callable[[list[Any]], None]] | None = None,
    on_built: Callable[[Any], None] | None = None,
    record: bool = False,
    record_out: str | None = None,
    fills: bool = False,
    journal: bool = False,
) -> tuple[dict[str, Any], Any]:
    """Replay the capture through the node (simulated venue, no event loop); return (summary, node).

    ``observers`` receive every batch of the engine's events (tests and benchmarks);
    ``on_built`` sees the symbol's kernel (engine, venue, session) before the first event.
    """
    from mmbot import wiring  # the engine stack: only once the command runs

    run_id = run_id or make_run_id(settings)
    started = time.perf_counter()
    request = wiring.RunRequest(paths=paths, mode_label="backtest", faults=faults)
    watch = wiring.ObserverRequest(record=record, record_out=record_out, fills=fills, journal=journal, metrics=False, admin=False)
    node = wiring.build_node(settings, run_id, request, watch)
    bus = next(iter(node.buses.values()))
    for observer in observers or []:
        bus.subscribe_batch(observer)
    if on_built is not None:
        on_built(next(iter(node.lanes.values())).kernel)  # type: ignore[attr-defined]  # a replay's lane is a SimLane
    node.started = time.monotonic() - (time.perf_counter() - started)
    summary = node.run_sync()
    return summary, node


def run_backtest_command(
    settings: Settings,
    *,
    data: list[str] | None,
    bars: str | None,
    summary_json: str | None,
    out: str | None,
    report: bool,
    faults: tuple[Any, ...],
    fills_json: str | None = None,
) -> None:
    from mmbot import wiring  # the engine stack: only once the command runs

    configure_logging(settings.log.level, settings.log.format)
    if bars is not None:
        from mmbot.cli.bars import run_bar_backtest_command  # the bar stack (numba): only for --bars

        run_bar_backtest_command(settings, bars=bars, summary_json=summary_json, out=out, report=report, print_summary=print_summary)
        return
    paths = wiring.capture_paths(settings, data)
    check_capture_files(paths)  # a missing or unreadable file fails before a journal is created
    record = settings.record.enabled or bool(out or report)
    summary, node = run_l2_backtest(settings, paths, faults=faults, record=record, record_out=out, fills=bool(fills_json),
                                    journal=settings.audit.enabled)
    journal_error = node.seal(summary)
    if summary_json:
        write_json_atomic(summary_json, summary)
    if node.fill_log is not None and fills_json:
        write_json_atomic(fills_json, node.fill_log.document(summary["run_id"], "backtest"))
    print_summary(summary, "backtest summary")
    if report and node.record_dir is not None:
        print_report(node.record_dir)
    if journal_error is not None:
        raise journal_error  # exit 3: the journal could not be written (trading was halted)


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def backtest(
        config: ConfigOpt = None,
        data: Annotated[list[str] | None, typer.Option("--data", help="capture file(s) for an L2 backtest")] = None,
        bars: Annotated[str | None, typer.Option("--bars", help="OHLCV bars file (csv/json/feather/parquet); 'bundled' = the bundled month")] = None,
        fill_model: Annotated[FillModelChoice | None, typer.Option("--fill-model", help="how the simulated venue fills resting orders",
                                                                   show_default=config_default("sim.fill_model"))] = None,
        latency_ms: Annotated[float | None, typer.Option("--latency-ms", help="entry, cancel and market-data latency (ms, >= 0)",
                                                         show_default="config sim.*_latency_ms: 0")] = None,
        summary_json: Annotated[str | None, typer.Option("--summary-json", help="write the summary JSON here")] = None,
        out: Annotated[str | None, typer.Option("--out", help="directory for the run record")] = None,
        report: Annotated[bool, typer.Option("--report", help="also write the HTML report and print its path")] = False,
        faults: Annotated[str | None, typer.Option("--faults", help="freeze@T:DUR,gap@T,garbage@T (seconds)")] = None,
        fills_json: Annotated[str | None, typer.Option("--fills-json", help="write every fill (with markouts) here")] = None,
    ) -> None:
        """Backtest on an L2 capture (default: bundled) or on OHLCV bars (--bars)."""
        if report:
            require(RESEARCH, "mmbot backtest --report", *REPORT_MODULES)  # before the run, not after it
        settings = settings_for(config, sim_overrides(fill_model, latency_ms))
        run_backtest_command(settings, data=data, bars=bars, summary_json=summary_json, out=out, report=report,
                             faults=fault_tuple(faults), fills_json=fills_json)
