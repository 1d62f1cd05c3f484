"""verify: an intact sealed journal passes; each kind of tampering is named; a crash is told apart."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from mmbot.audit.state import fold
from mmbot.audit.verify import EXIT_OK, EXIT_TAMPERED, EXIT_UNSEALED, verify_journal
from mmbot.audit.writer import MANIFEST, list_segments
from tests.audit.helpers import lines_of, make_journal
from tests.conftest import MMBOT


def test_verify_when_journal_intact_and_sealed_then_ok(tmp_path: Path) -> None:
    d = make_journal(tmp_path)
    result = verify_journal(d)
    assert result.status == "ok", result.describe()
    assert result.exit_code == EXIT_OK
    assert result.sealed and len(result.records) == 1 + 3 * 20 + 1


def test_verify_when_byte_flipped_then_names_first_bad_record(tmp_path: Path) -> None:
    d = make_journal(tmp_path)
    seg, lines = lines_of(d)
    line = bytearray(lines[10])
    i = line.index(b'"price":') + 9
    line[i] = ord("7") if line[i] != ord("7") else ord("8")
    lines[10] = bytes(line)
    seg.write_bytes(b"".join(lines))
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED
    assert "line 11" in result.problem and "modified" in result.problem


def test_verify_when_line_deleted_then_reports_missing_seq(tmp_path: Path) -> None:
    d = make_journal(tmp_path)
    seg, lines = lines_of(d)
    del lines[20]
    seg.write_bytes(b"".join(lines))
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED
    assert "line 21" in result.problem and "expected seq 21, found seq 22" in result.problem


def test_verify_when_lines_reordered_then_tampered(tmp_path: Path) -> None:
    d = make_journal(tmp_path)
    seg, lines = lines_of(d)
    lines[30], lines[31] = lines[31], lines[30]
    seg.write_bytes(b"".join(lines))
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED
    assert "line 31" in result.problem


def test_verify_when_line_inserted_then_tampered(tmp_path: Path) -> None:
    d = make_journal(tmp_path)
    seg, lines = lines_of(d)
    lines.insert(15, lines[14])  # a duplicated (replayed) record
    seg.write_bytes(b"".join(lines))
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED
    assert "line 16" in result.problem and "reordered or inserted" in result.problem


def test_verify_when_forged_line_with_recomputed_hash_inserted_then_chain_broken(tmp_path: Path) -> None:
    from mmbot.audit.codec import encode_record

    d = make_journal(tmp_path)
    seg, lines = lines_of(d)
    prev = orjson.loads(lines[4])
    forged, _ = encode_record(prev["seq"] + 1, 0, 0, None, "fill", {"forged": True}, "f" * 64)
    lines.insert(5, forged)
    seg.write_bytes(b"".join(lines))
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED
    assert "line 6" in result.problem and "prev_hash" in result.problem


def test_verify_when_tail_deleted_then_missing_against_seal(tmp_path: Path) -> None:
    d = make_journal(tmp_path)
    seg, lines = lines_of(d)
    seg.write_bytes(b"".join(lines[:-5]))
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED
    assert "records missing against the" in result.problem


def test_verify_when_unsealed_tail_deleted_below_checkpoint_then_missing_against_manifest(tmp_path: Path) -> None:
    d = make_journal(tmp_path, seal=False)
    seg, lines = lines_of(d)
    seg.write_bytes(b"".join(lines[:-10]))
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED
    assert "records missing against the manifest" in result.problem


def test_verify_when_unsealed_with_torn_last_line_then_crash_status(tmp_path: Path) -> None:
    d = make_journal(tmp_path, seal=False)
    seg, lines = lines_of(d)
    seg.write_bytes(b"".join(lines) + lines[-1][:37])  # a partial write cut by a crash
    result = verify_journal(d)
    assert result.status == "unsealed" and result.exit_code == EXIT_UNSEALED
    assert result.torn is not None and result.torn.length == 37
    assert "torn last line" in result.describe()


def test_verify_when_manifest_deleted_then_tampered(tmp_path: Path) -> None:
    d = make_journal(tmp_path)
    (d / MANIFEST).unlink()
    assert verify_journal(d).exit_code == EXIT_TAMPERED


def test_verify_when_rotated_then_chain_continues_across_segments(tmp_path: Path) -> None:
    d = make_journal(tmp_path, fills=30, rotate_bytes=2048)
    segments = list_segments(d)
    assert len(segments) > 3
    first_of_second = orjson.loads(segments[1].read_bytes().splitlines()[0])
    last_of_first = orjson.loads(segments[0].read_bytes().splitlines()[-1])
    assert first_of_second["prev_hash"] == last_of_first["hash"]
    assert verify_journal(d).status == "ok"
    segments[1].unlink()  # a whole middle segment deleted
    result = verify_journal(d)
    assert result.exit_code == EXIT_TAMPERED and "found seq" in result.problem


def test_summary_when_journal_folded_then_fills_and_position_recomputed(tmp_path: Path) -> None:
    d = make_journal(tmp_path, fills=20)
    state = fold(verify_journal(d).records)
    summary = state.summary()
    assert summary["fills"] == 20 and summary["bid_fills"] == 10
    assert Decimal(summary["final_inventory"]) == 0
    assert Decimal(summary["volume_base"]) == Decimal("0.0002")
    # cash: 10 buys at 60000.00 and 10 sells at 60000.01, 0.00001 BTC each -> +0.000001
    assert summary["cash"] == "0.00000100"


@pytest.mark.parametrize("damage", ["none", "flip", "torn"])
def test_audit_verify_cli_when_journal_given_then_documented_exit_status(tmp_path: Path, damage: str, clean_env: dict[str, str]) -> None:
    d = make_journal(tmp_path, seal=damage != "torn")
    seg, lines = lines_of(d)
    if damage == "flip":
        lines[3] = lines[3].replace(b'"qty":1000', b'"qty":1001')
        seg.write_bytes(b"".join(lines))
    elif damage == "torn":
        seg.write_bytes(b"".join(lines) + b'{"payload":{"cli')
    proc = subprocess.run([*MMBOT, "audit", "verify", str(tmp_path)], capture_output=True, text=True, env=clean_env, timeout=60)
    expected = {"none": 0, "flip": 1, "torn": 4}[damage]
    assert proc.returncode == expected, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert {"none": "OK", "flip": "TAMPERED", "torn": "torn last line"}[damage] in out
    if damage == "flip":
        assert "line 4" in out
