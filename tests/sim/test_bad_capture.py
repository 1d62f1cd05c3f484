"""`--data` on bad captures: one-line errors for unreadable files; counted and survived otherwise."""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
from pathlib import Path

import pytest

from mmbot.cli.backtest import run_l2_backtest
from mmbot.config.settings import load_settings
from mmbot.errors import DataError
from mmbot.marketdata.capture import CaptureParser, ReadStats, check_capture_files, read_events
from tests.conftest import CAPTURE, MMBOT
from tests.sim.helpers import instrument

SLICE_SECONDS = 40


def _lines(seconds: float = SLICE_SECONDS) -> list[bytes]:
    out = []
    with gzip.open(CAPTURE[0], "rb") as src:
        first = None
        for line in src:
            ts = int(line.split(b" ", 1)[0])
            first = first or ts
            if ts - first > seconds * 1_000_000_000:
                break
            out.append(line)
    return out


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return _lines()


def _write(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as fh:
        fh.writelines(lines)
    return path


def _backtest(data: list[Path], env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    summary = tmp_path / "summary.json"
    args = [*MMBOT, "backtest", "--summary-json", str(summary)]
    for path in data:
        args += ["--data", str(path)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    return proc, (json.loads(summary.read_text()) if summary.exists() else {})


def _inprocess(data: list[Path]) -> dict:
    settings = load_settings(None, environ={})  # the default config, no overrides
    summary, _ = run_l2_backtest(settings, [str(p) for p in data])
    return summary


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], name: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0], proc.stderr


# --- unreadable files: one line naming the file, non-zero exit -----------------------------------------
@pytest.mark.parametrize("command", ["backtest", "run"])
def test_data_when_file_missing_then_one_line_error_naming_it(command: str, clean_env: dict[str, str], tmp_path: Path):
    missing = tmp_path / "nope.gz"
    proc = subprocess.run([*MMBOT, command, "--data", str(missing), "--speed", "0", "--no-status"] if command == "run" else [*MMBOT, command, "--data", str(missing)], env=clean_env, capture_output=True, text=True, timeout=60)

    _assert_one_line_error(proc, "nope.gz")
    assert "does not exist" in proc.stderr
    assert proc.returncode == 2  # the same status as a missing config file (mmbot/errors.py)


def test_data_when_file_empty_then_one_line_error(clean_env: dict[str, str], tmp_path: Path):
    empty = tmp_path / "empty.gz"
    empty.write_bytes(b"")
    proc, _ = _backtest([empty], clean_env, tmp_path)

    _assert_one_line_error(proc, "empty.gz")
    assert "is empty" in proc.stderr


def test_data_when_file_not_gzip_then_one_line_error(clean_env: dict[str, str], tmp_path: Path, lines: list[bytes]):
    plain = tmp_path / "plain.gz"
    plain.write_bytes(b"".join(lines[:50]))  # the capture format, but not compressed
    proc, _ = _backtest([plain], clean_env, tmp_path)

    _assert_one_line_error(proc, "plain.gz")
    assert "not gzip" in proc.stderr


def test_data_when_file_truncated_before_first_line_then_one_line_error(clean_env: dict[str, str], tmp_path: Path, lines: list[bytes]):
    whole = _write(tmp_path / "whole.gz", lines[:200])
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole.read_bytes()[:30])  # the gzip header and a few bytes of the stream
    proc, _ = _backtest([cut], clean_env, tmp_path)

    _assert_one_line_error(proc, "cut.gz")
    assert "truncated" in proc.stderr


# --- damaged but usable: warning / counted, and the run survives -----------------------------------------
def test_data_when_gzip_tail_truncated_then_warning_and_readable_part_used(clean_env: dict[str, str], tmp_path: Path, lines: list[bytes]):
    whole = _write(tmp_path / "whole.gz", lines)
    cut = tmp_path / "tail_cut.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    stats = ReadStats()
    events = list(read_events([cut], CaptureParser([instrument()]), stats))
    full = list(read_events([whole], CaptureParser([instrument()])))

    proc, summary = _backtest([cut], clean_env, tmp_path)

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert summary["truncated_files"] == [str(cut)]
    assert stats.truncated_files == [str(cut)] and stats.garbage_lines == 0  # the cut-off fragment is dropped
    assert 0 < len(events) < len(full)
    assert events == full[: len(events)]  # the readable part, unchanged


def test_data_when_garbage_lines_then_counted_and_skipped(tmp_path: Path, lines: list[bytes]):
    bad = list(lines)
    bad.insert(500, b"this is not a capture line\n")
    bad.insert(900, b"1723161300000000000 {not json at all\n")
    bad.insert(1300, b'1723161300000000000 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT"}}\n')
    path = _write(tmp_path / "garbage.gz", bad)
    stats = ReadStats()
    events = list(read_events([path], CaptureParser([instrument()]), stats))
    clean = list(read_events([_write(tmp_path / "clean.gz", lines)], CaptureParser([instrument()])))
    summary = _inprocess([path])

    assert summary["garbage_lines"] == 3 and stats.garbage_lines == 3
    assert events == clean  # every good line still read


def test_data_when_timestamp_goes_backwards_then_counted_and_clamped(tmp_path: Path, lines: list[bytes]):
    bad = list(lines)
    ts, body = bad[700].split(b" ", 1)
    bad[700] = b"%d %s" % (int(ts) - 5_000_000_000, body)  # 5 s in the past
    path = _write(tmp_path / "backwards.gz", bad)
    stats = ReadStats()
    events = list(read_events([path], CaptureParser([instrument()]), stats))
    summary = _inprocess([path])

    assert summary["backwards_timestamps"] == 1 and stats.backwards_ts == 1
    assert all(a.ts_local_ns <= b.ts_local_ns for a, b in itertools.pairwise(events))


def test_data_when_sequence_gap_then_counted_and_recovered_through_snapshot_request(tmp_path: Path, lines: list[bytes]):
    diffs = [i for i, line in enumerate(lines) if b'"depthUpdate"' in line]
    drop = diffs[len(diffs) // 2]  # a diff in the middle of the slice is lost
    path = _write(tmp_path / "gap.gz", lines[:drop] + lines[drop + 1 :])
    summary = _inprocess([path])

    assert summary["data_sequence_gaps"] == 1  # the venue (exchange) book kept going
    assert summary["book_gaps"] == 1  # the engine's book saw the gap ...
    # ... and asked for a snapshot, as live; the lost diff's stale levels may later cross
    # the book, which is not believed either and resyncs the same way (issue 29).
    crossed = summary["market_data_rejections"].get("crossed_book", 0)
    assert summary["snapshot_requests"] == 1 + crossed
    assert summary["risk_state"] == "ACTIVE"  # resynced: quoting resumed
    assert summary["fills"] > 0


def test_data_when_several_files_then_read_in_order_as_one_stream(tmp_path: Path, lines: list[bytes]):
    half = len(lines) // 2
    one = _write(tmp_path / "one.gz", lines)
    first = _write(tmp_path / "part1.gz", lines[:half])
    second = _write(tmp_path / "part2.gz", lines[half:])
    whole = _inprocess([one])
    split = _inprocess([first, second])

    for key in ("events", "fills", "net_pnl", "orders_placed", "final_inventory"):
        assert split[key] == whole[key], key


def test_check_capture_files_when_directory_or_no_files_then_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="not a regular file"):
        check_capture_files([tmp_path])
    with pytest.raises(DataError, match="no capture file"):
        check_capture_files([])
