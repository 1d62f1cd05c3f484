"""The run record: L2 sampling, bounded memory, round trip through the files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbot.config.settings import load_settings
from mmbot.errors import DataError
from mmbot.research.record import SeriesRecorder, load_record
from mmbot.wiring import build_replay

S = 1_000_000_000


def _recorder(max_samples: int = 200_000) -> SeriesRecorder:
    built = build_replay(load_settings(None, environ={}), "20260101T000000Z-test0000")
    return SeriesRecorder(built.engine, 1000.0, 0.05, max_samples=max_samples)


def test_series_recorder_when_events_cross_boundaries_then_one_sample_per_interval_at_its_end() -> None:
    rec = _recorder()
    for t in (100 * S, 100 * S + S // 2, 101 * S, 103 * S + 1):  # origin, inside, boundary, skip one
        rec.advance(t)

    assert rec.cols["ts_ns"] == [101 * S, 102 * S, 103 * S]
    assert rec.cols["inventory"] == [0.0, 0.0, 0.0]
    assert rec.next_ns == 104 * S


def test_series_recorder_when_max_samples_reached_then_halves_resolution_keeping_aligned_samples() -> None:
    rec = _recorder(max_samples=4)
    rec.advance(0)
    rec.advance(9 * S + 1)  # boundaries 1..9 s

    ts = rec.cols["ts_ns"]
    assert rec.interval_ns == 4 * S  # halved twice
    assert all(t % (4 * S) == 0 for t in ts)  # still the end of whole intervals
    assert len(ts) < 4
    assert rec.next_ns == 12 * S


def test_series_recorder_when_written_then_load_record_reads_same_values(tmp_path: Path) -> None:
    rec = _recorder()
    for t in range(0, 5 * S + 1, S // 2):
        rec.advance(t)
    summary = {"run_id": "x", "net_pnl": "0"}
    d = rec.write(tmp_path / "run", summary)

    loaded = load_record(d)

    assert loaded.kind == "l2" and loaded.interval_s == 1.0
    assert loaded.series["ts_ns"].tolist() == [float(t * S) for t in range(1, 6)]
    assert loaded.fills["ts_ns"].shape[0] == 0
    assert loaded.summary["record_dir"] == str(d.resolve())


def test_load_record_when_directory_has_no_summary_then_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"holds no summary\.json"):
        load_record(tmp_path)
