"""The run record of an L2 run (paper or backtest) and its report: shared by every driver.

The record (:mod:`mmbot.research.record`) is sampled by ``recorder_factory``'s recorder
and written by ``write_l2_record``; ``mmbot report`` and ``--report`` build the report
from it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from mmbot.app.console import console
from mmbot.app.settings import Settings
from mmbot.errors import DataError
from mmbot.research.record import SeriesRecorder, load_record
from mmbot.research.report import write_report


def make_report(run: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    return write_report(load_record(run), out)


def recorder_factory(settings: Settings, sink: list[Any], *, force: bool = False) -> Callable[[Any], Any] | None:
    """``recorder_for`` of :func:`mmbot.app.backtest_cmd.run_l2_backtest` (None when recording is off)."""
    if not (settings.record.enabled or force):
        return None

    def make(engine: Any) -> Any:
        recorder = SeriesRecorder(
            engine, settings.record.interval_ms, settings.strategy.max_inventory, settings.record.neutral_band
        )
        sink.append(recorder)
        return recorder

    return make


def write_l2_record(
    settings: Settings, summary: dict[str, Any], recorders: list[Any], out: str | None, paths: list[str]
) -> Path | None:
    """Write the run record of an L2 run (backtest or paper) into ``out`` or record.dir/<run_id>."""
    if not recorders:
        return None
    s = settings.strategy
    summary.setdefault("data_source", [str(p) for p in paths])
    summary["max_inventory_limit"] = s.max_inventory
    summary["parameters"] = {
        "model": s.model, "spread_bps": s.spread_bps, "order_size": s.order_size, "max_inventory": s.max_inventory,
        "skew_factor": s.skew_factor, "min_requote_interval_ms": s.min_requote_interval_ms,
        "fill_model": settings.sim.fill_model, "maker_fee_bps": str(settings.fees.maker_fee_bps),
    }  # fmt: skip
    directory = Path(out) if out else Path(settings.record.dir) / str(summary["run_id"])
    try:
        return recorders[0].write(directory, summary)  # type: ignore[no-any-return]
    except OSError as exc:
        if out:
            raise DataError(f"cannot write the run record to {directory}: {exc}") from exc
        # A paper run must still stop cleanly and write its summary.
        structlog.get_logger("mmbot.record").warning("run_record_not_written", dir=str(directory), error=str(exc))
        return None


def print_report(record_dir: str | Path) -> tuple[Path, Path]:
    html_path, png_path = make_report(record_dir)
    console.print(f"report: {html_path}", highlight=False, soft_wrap=True)
    console.print(f"chart:  {png_path}", highlight=False, soft_wrap=True)
    return html_path, png_path
