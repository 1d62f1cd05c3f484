"""``mmbot backtest``: the synchronous replay driver (L2) or the bar backtest."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mmbot.app.runner import write_json_atomic
from mmbot.app.settings import Settings, make_run_id
from mmbot.app.wiring import build_replay, capture_paths
from mmbot.engine.session import Fault
from mmbot.engine.summary import build_summary
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events


def run_l2_backtest(
    settings: Settings,
    paths: list[str],
    *,
    run_id: str | None = None,
    faults: tuple[Fault, ...] = (),
    observers: list[Callable[[list[Any]], None]] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Replay the capture through the engine and the simulated venue; return (summary, built)."""
    run_id = run_id or make_run_id(settings)
    built = build_replay(settings, run_id, faults)
    engine = built.engine
    session = built.session
    stats = ReadStats()
    started = time.perf_counter()
    step = session.step
    observers = observers or []
    for event in read_events(paths, CaptureParser([built.instrument]), stats):
        step(event)
        if engine.events:
            for observer in observers:
                observer(engine.events)
            engine.events.clear()
    session.flush()
    session.operator(engine.cancel_everything(session.now_ns, "end_of_data"))
    for _ in range(100):
        due = built.venue.next_due_ns
        if due is None:
            break
        session.drain_until(due)
    if engine.events:
        for observer in observers:
            observer(engine.events)
        engine.events.clear()
    wall = time.perf_counter() - started
    summary = build_summary(
        engine,
        run_id=run_id,
        wall_seconds=wall,
        open_orders=len(built.venue.open_order_ids()),
        extra={
            "mode": "backtest",
            "fill_model": settings.sim.fill_model,
            "stop_reason": "end_of_data",
            "garbage_lines": stats.garbage_lines + session.garbage_injected,
            "backwards_timestamps": stats.backwards_ts,
            "truncated_files": stats.truncated_files,
            "book_gaps": engine.book.gap_count,
            "snapshot_requests": session.snapshot_requests,
        },
    )
    return summary, built


def run_backtest_command(
    settings: Settings,
    *,
    data: list[str] | None,
    bars: str | None,
    summary_json: str | None,
    out: str | None,
    report: bool,
    faults: tuple[Fault, ...],
    print_summary: Callable[[dict[str, Any], str], None],
) -> None:
    from mmbot.observability.logging import configure_logging

    configure_logging(settings.log.level, settings.log.format)
    if bars is not None:
        from mmbot.app import cmd_research

        cmd_research.run_bar_backtest_command(settings, bars=bars, summary_json=summary_json, out=out, report=report, print_summary=print_summary)
        return
    paths = capture_paths(settings, data)
    summary, _ = run_l2_backtest(settings, paths, faults=faults)
    if summary_json:
        write_json_atomic(summary_json, summary)
    print_summary(summary, "backtest summary")
