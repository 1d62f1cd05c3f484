"""What the run drivers share (replay, live feed, sandbox, backtests): the summaries and atomic JSON files.

A module of its own so that mmbot.app.live, mmbot.app.sandbox and the backtests use
them without importing the replay runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import structlog

from mmbot.app.settings import Settings
from mmbot.app.wiring import Built, wallet_fields
from mmbot.engine.session import ReplaySession
from mmbot.engine.summary import build_summary
from mmbot.marketdata.capture import ReadStats
from mmbot.marketdata.validate import merge_counts

log = structlog.get_logger("mmbot.runner")  # the replay runner's logger, as before the split


FEED_FIELDS = ("feed_snapshots", "feed_deltas", "feed_gaps", "feed_disconnects", "feed_silences", "feed_resyncs", "feed_last_outage_s")


def paper_summary(
    settings: Settings,
    built: Built,
    *,
    run_id: str,
    wall_seconds: float,
    stop_reason: str,
    stats: ReadStats,
    recorders: list[Any],
    loops: int = 0,
    feed: dict[str, Any] | None = None,
    data_source: str | list[str] | None = None,
) -> dict[str, Any]:
    """The summary of every paper run, replayed (``mmbot run`` on a capture) or on a live
    feed: one builder, so both modes carry exactly the same keys (``feed_*`` are 0 on a
    replay; ``loops`` and the capture counters are 0 live)."""
    session = built.session
    engine = built.engine
    feed = feed or {}
    summary = build_summary(
        engine,
        run_id=run_id,
        wall_seconds=wall_seconds,
        open_orders=len(built.venue.open_order_ids()),
        metrics=recorders[0].performance().fields() if recorders else None,
        extra={
            "mode": settings.mode,
            "fill_model": settings.sim.fill_model,
            "exchange": settings.exchange.id,
            "stop_reason": stop_reason,
            "loops": loops,
            **replay_data_fields(stats, session),
            "venue_rejections": dict(sorted(built.venue.rejections.items())),
            **wallet_fields(built.venue.wallet),
            **{name: feed.get(name, 0) for name in FEED_FIELDS},
        },
    )
    if data_source is not None:
        summary["data_source"] = data_source
    return summary


def replay_data_fields(stats: ReadStats, session: ReplaySession) -> dict[str, Any]:
    """The market-data figures of a replay for its summary: one definition for every replay driver."""
    quality = session.data_quality()
    rejections = quality.pop("market_data_rejections")
    assert isinstance(rejections, dict)
    if not quality["engine_book_synced"] and session.engine.book.update_count == 0:
        log.error("no_valid_book", note="the engine never had a valid order book in this run: nothing was quoted")
    return {
        "garbage_lines": stats.garbage_lines + session.garbage_injected,
        "backwards_timestamps": stats.backwards_ts,
        "clock_discontinuities": stats.clock_discontinuities,
        "truncated_files": stats.truncated_files,
        "market_data_rejections": merge_counts(stats.rejections, rejections),
        "book_gaps": session.engine.book.gap_count,
        "snapshot_requests": session.snapshot_requests,
        "data_sequence_gaps": session.venue_gaps,
        "book_ever_valid": session.engine.book.update_count > 0 or quality["engine_book_synced"],
        **quality,
    }


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(target)
