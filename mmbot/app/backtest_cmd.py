"""``mmbot backtest``: the synchronous replay driver (L2) or the bar backtest."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from mmbot.app import hooks_audit
from mmbot.app.bar_backtest import run_bar_backtest_command
from mmbot.app.fills_json import FillLog
from mmbot.app.run_record import print_report, recorder_factory, write_l2_record
from mmbot.app.run_support import replay_data_fields, write_json_atomic
from mmbot.app.settings import Settings, make_run_id
from mmbot.app.wiring import build_instrument, build_replay, capture_paths, replay_instrument, wallet_fields
from mmbot.engine.session import Fault
from mmbot.engine.summary import build_summary
from mmbot.marketdata.capture import CaptureParser, RateLimitedWarn, ReadStats, check_capture_files, read_stream
from mmbot.observability.logging import configure_logging
from mmbot.strategy.breakeven import breakeven_flags


def _log_warn(event: str, fields: dict[str, Any]) -> None:
    # Damaged capture input (truncated tail, garbage line, time going back): logged, survived.
    structlog.get_logger("mmbot.backtest").warning(event, **fields)


_warn = RateLimitedWarn(_log_warn)


def run_l2_backtest(
    settings: Settings,
    paths: list[str],
    *,
    run_id: str | None = None,
    faults: tuple[Fault, ...] = (),
    observers: list[Callable[[list[Any]], None]] | None = None,
    on_built: Callable[[Any], None] | None = None,
    recorder_for: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Replay the capture through the engine and the simulated venue; return (summary, built).

    ``recorder_for(engine)`` may return a :class:`mmbot.research.record.SeriesRecorder`:
    it samples the run for the run record and the summary's metrics.
    """
    run_id = run_id or make_run_id(settings)
    built = build_replay(settings, run_id, faults, instrument=replay_instrument(settings, paths))
    if on_built is not None:
        on_built(built)  # e.g. the audit journal hooks the session's execution reports
    engine = built.engine
    session = built.session
    stats = ReadStats()
    started = time.perf_counter()
    step = session.step
    observers = list(observers or [])
    recorder = recorder_for(engine) if recorder_for is not None else None
    if recorder is not None:
        observers.append(recorder.on_events)
    for event in read_stream(paths, CaptureParser([built.instrument]), stats, _warn, max_clock_jump_ns=built.max_clock_jump_ns):
        if recorder is not None and event.ts_local_ns >= recorder.next_ns:
            recorder.advance(event.ts_local_ns)
        step(event)
        if engine.has_events:
            events = engine.drain_events()
            for observer in observers:
                observer(events)
    session.flush()
    session.operator(engine.cancel_everything(session.now_ns, "end_of_data"))
    for _ in range(100):
        due = built.venue.next_due_ns
        if due is None:
            break
        session.drain_until(due)
    events = engine.drain_events()
    if events:
        for observer in observers:
            observer(events)
    wall = time.perf_counter() - started
    summary = build_summary(
        engine,
        run_id=run_id,
        wall_seconds=wall,
        open_orders=len(built.venue.open_order_ids()),
        metrics=recorder.performance().fields() if recorder is not None else None,
        extra={
            "mode": "backtest",
            "fill_model": settings.sim.fill_model,
            "stop_reason": "end_of_data",
            **replay_data_fields(stats, session),
            "venue_rejections": dict(sorted(built.venue.rejections.items())),
            **wallet_fields(built.venue.wallet),
            # Backtests warn and flag a spread below break-even instead of refusing it.
            **breakeven_flags(settings),
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
    fills_json: str | None = None,
) -> None:
    configure_logging(settings.log.level, settings.log.format)
    if bars is not None:
        run_bar_backtest_command(settings, bars=bars, summary_json=summary_json, out=out, report=report, print_summary=print_summary)
        return
    paths = capture_paths(settings, data)
    check_capture_files(paths)  # a missing or unreadable file fails before a journal is created
    fill_log: FillLog | None = None
    observers: list[Callable[[list[Any]], None]] = []
    if fills_json:
        fill_log = FillLog(build_instrument(settings))  # the replay's symbol: replay_instrument checks it is symbols[0]
        observers.append(fill_log.observe)
    run_id = make_run_id(settings)
    journal = hooks_audit.backtest_journal(settings, run_id, paths)  # None when audit.enabled is false
    if journal is not None:
        observers.insert(0, journal.observe)
    recorders: list[Any] = []  # the run record (mmbot report), unless record.enabled is false
    summary, _ = run_l2_backtest(
        settings, paths, run_id=run_id, faults=faults, observers=observers, on_built=journal.attach if journal is not None else None,
        recorder_for=recorder_factory(settings, recorders, force=bool(out or report)),
    )
    journal_error = journal.seal(summary) if journal is not None else None
    record_dir = write_l2_record(settings, summary, recorders, out, paths)
    if summary_json:
        write_json_atomic(summary_json, summary)
    if summary.get("data_sequence_gaps") or summary.get("book_gaps"):
        structlog.get_logger("mmbot.backtest").warning(
            "capture_sequence_gaps", data_gaps=summary.get("data_sequence_gaps"), book_gaps=summary.get("book_gaps"), snapshot_requests=summary.get("snapshot_requests")
        )
    if fill_log is not None and fills_json:
        write_json_atomic(fills_json, fill_log.document(summary["run_id"], "backtest"))
    print_summary(summary, "backtest summary")
    if report and record_dir is not None:
        print_report(record_dir)
    if journal_error is not None:
        raise journal_error  # exit 3: the journal could not be written (trading was halted)
