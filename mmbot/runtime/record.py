"""The run record of an L2 run (every mode) for ``mmbot report``.

The record (:mod:`mmbot.research.record`) is sampled by a
:class:`~mmbot.research.record.SeriesRecorder` per lane (built by the composition root,
:func:`mmbot.wiring.open_observers`) and written by :func:`write_l2_record` from the
node's summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from mmbot.config.settings import Settings
from mmbot.errors import DataError
from mmbot.research.record import SeriesRecorder


def make_recorder(settings: Settings, engine: Any, *, queue_known: bool = True) -> SeriesRecorder:
    """``queue_known``: the venue is simulated (it knows the queue ahead of each order)."""
    return SeriesRecorder(
        engine, settings.record.interval_ms, settings.strategy.max_inventory, settings.record.neutral_band, queue_known=queue_known
    )


def run_fields(settings: Settings, data_source: str | list[str]) -> dict[str, Any]:
    """What the run was: its data and the parameters a report shows (every summary)."""
    s = settings.strategy
    return {
        "data_source": data_source,
        "max_inventory_limit": s.max_inventory,
        "parameters": {
            "model": s.model, "spread_bps": s.spread_bps, "order_size": s.order_size, "max_inventory": s.max_inventory,
            "skew_factor": s.skew_factor, "min_requote_interval_ms": s.min_requote_interval_ms,
            "fill_model": settings.sim.fill_model, "maker_fee_bps": str(settings.fees.maker_fee_bps),
        },
    }  # fmt: skip


def write_l2_record(settings: Settings, summary: dict[str, Any], recorders: list[Any], out: str | None) -> Path | None:
    """Write the run record into ``out`` or record.dir/<run_id>."""
    if not recorders:
        return None
    directory = Path(out) if out else Path(settings.record.dir) / str(summary["run_id"])
    try:
        return recorders[0].write(directory, summary)  # type: ignore[no-any-return]
    except OSError as exc:
        if out:
            raise DataError(f"cannot write the run record to {directory}: {exc}") from exc
        # A paper run must still stop cleanly and write its summary.
        structlog.get_logger("mmbot.record").warning("run_record_not_written", dir=str(directory), error=str(exc))
        return None
