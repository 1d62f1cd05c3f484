"""The status line (mmbot/runtime/status_line.py) and plain quantities, through the real CLI piped."""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from mmbot.domain.instrument import plain
from mmbot.runtime.sources import ReplaySource
from mmbot.runtime.status_line import ReplayProgress, duration_text, progress_text
from tests.conftest import CAPTURE, MMBOT

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ BTC/USDT mid [\d.]+ quotes ([\d.]+|-) / ([\d.]+|-) pos -?[\d.]+ BTC "
    r"pnl -?\d+\.\d\d USDT fills \d+b/\d+a state (ACTIVE|REDUCING|HALTED)[A-Z_, ]* open \d+"
    r"( inventory left at stop -?[\d.]+ BTC)? \| replay \d+% at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (eta (\d+[hms]\S*|-))"
    r"( \| stopped \w+)?$"
)
EXPONENT = re.compile(r"(?<![\w.])-?\d+(\.\d+)?E[-+]?\d+\b")  # 0E-8, 1E+2 (not inside hashes or ids)
NUMBER_WITH_EXPONENT = re.compile(r"-?\d+(\.\d+)?[eE][-+]?\d+")


def _log_values(stderr: str) -> list[str]:
    values: list[str] = []
    for line in stderr.splitlines():
        values += [str(v) for v in json.loads(line).values()]
    return values


@pytest.mark.parametrize(
    ("value", "text"),
    [("0E-8", "0"), ("-0", "0"), ("0.03000000", "0.03"), ("-0.00070000", "-0.0007"), ("1E+2", "100"), ("15", "15")],
)
def test_plain_when_decimal_has_exponent_or_trailing_zeros_then_plain_digits(value: str, text: str) -> None:
    assert plain(Decimal(value)) == text


def test_duration_text_when_seconds_minutes_hours_then_compact() -> None:
    assert [duration_text(s) for s in (0.4, 45, 192, 3720)] == ["0s", "45s", "3m12s", "1h02m"]


def test_progress_text_when_looping_then_pass_instead_of_eta() -> None:
    once = ReplayProgress(fraction=0.371, data_ts_ns=1_723_161_600_000_000_000, eta_s=192.0, passes=0, looping=False)
    looping = ReplayProgress(fraction=0.5, data_ts_ns=0, eta_s=None, passes=2, looping=True)
    assert progress_text(once) == "replay 37% at 2024-08-09T00:00:00Z eta 3m12s"
    assert progress_text(looping) == "replay 50% pass 3"


def test_replay_progress_when_read_through_then_one_and_when_stopped_early_then_part(instrument: object) -> None:
    whole = ReplaySource(CAPTURE, instrument, max_clock_jump_ns=10**10)  # type: ignore[arg-type]
    for _ in whole.events():
        pass
    assert whole.progress(0).fraction == 1.0
    part = ReplaySource(CAPTURE, instrument, max_clock_jump_ns=10**10)  # type: ignore[arg-type]
    stream = part.events()
    for _, _event in zip(range(20_000), stream, strict=False):
        pass
    during = part.progress(0).fraction
    stream.close()  # a stop mid-file must not count the rest of the file as read
    after = part.progress(0).fraction
    assert 0.0 < during <= after < 0.42  # the first file is 42 % of the bytes
    assert after - during < 0.05


def test_run_when_stdout_piped_then_whole_status_lines_with_progress_and_plain_quantities(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_RUN__STATUS_INTERVAL_S="1")
    summary_path = tmp_path / "s.json"
    proc = subprocess.run(
        [*MMBOT, "run", "--speed", "20", "--duration", "4", "--summary-json", str(summary_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    status = [line for line in proc.stdout.splitlines() if " BTC/USDT mid " in line]
    assert len(status) >= 3, proc.stdout[:2000]
    for line in status:
        assert LINE.match(line), line  # every field on one line: nothing cut at 80 columns
        assert len(line) > 80
    assert " eta " in status[0]
    summary = json.loads(summary_path.read_text())
    final = status[-1]
    assert final.endswith("| stopped duration")
    assert ("inventory left at stop" in final) == (not summary["flat_at_stop"])
    assert summary["flat_at_stop"] == (Decimal(summary["final_inventory"]) == 0)
    # The piped summary: one whole line per field, quantities with their unit, plain.
    assert re.search(r"^  final_inventory +-?[\d.]+ BTC", proc.stdout, re.M), proc.stdout[-3000:]
    venue_line = next(line for line in proc.stdout.splitlines() if line.startswith("  venue "))
    assert venue_line.rstrip().endswith("}")  # the whole JSON on one line
    assert not EXPONENT.search(proc.stdout), EXPONENT.search(proc.stdout)
    assert not [v for v in _log_values(proc.stderr) if NUMBER_WITH_EXPONENT.fullmatch(v)]
    for key in ("volume_base", "final_inventory", "max_abs_inventory"):
        assert summary[key] == plain(Decimal(summary[key]))


def test_logs_when_decimal_field_then_plain_string() -> None:
    import io

    import structlog

    from mmbot.observability.logging import configure_logging

    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        structlog.get_logger("t").info("flat", position=Decimal("0E-8"), held=Decimal("0.03000000"))
    finally:
        structlog.reset_defaults()
    record = json.loads(stream.getvalue())
    assert (record["position"], record["held"]) == ("0", "0.03")
