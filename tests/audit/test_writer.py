"""Writer failure, torn-tail repair on reopen, wash-trade findings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmbot.audit.recovery import journal_root, open_journal
from mmbot.audit.state import fold, instrument_json
from mmbot.audit.verify import verify_journal
from mmbot.audit.writer import JournalWriter, list_segments
from mmbot.errors import JournalError
from tests.audit.helpers import INSTRUMENT, lines_of, make_journal


def test_writer_when_disk_full_then_journal_error_and_records_counted_unwritten(tmp_path: Path) -> None:
    writer = JournalWriter.create(tmp_path, "run", rotate_bytes=1 << 20, info={})
    writer.append("run_start", {"x": 1})
    writer.flush()
    seg = list_segments(writer.directory)[0]
    writer.close()
    seg.unlink()
    os.symlink("/dev/full", seg)  # every write now fails with ENOSPC, even as root
    writer = JournalWriter.reopen(writer.directory, rotate_bytes=1 << 20, seq=1, last_hash=writer.last_hash)
    writer.append("fill", {"qty": 1})
    with pytest.raises(JournalError, match="No space left on device"):
        writer.flush()
    writer.append("fill", {"qty": 2})
    writer.flush()  # after a failure nothing more is written, and nothing is silently lost
    assert writer.failed is not None
    assert writer.unwritten == 2 and writer.first_unwritten_seq == 2


def test_open_journal_when_unsealed_with_torn_tail_then_repaired_and_chain_continues(tmp_path: Path) -> None:
    root = journal_root(tmp_path, "paper", ["BTC/USDT"])
    d = make_journal(root, seal=False)
    seg, lines = lines_of(d)
    seg.write_bytes(b"".join(lines) + b'{"payload":{"client_order_id":"mmb')
    opened = open_journal(root, run_id="r2", rotate_bytes=1 << 20, info={}, data=["x"], fresh=False, resume=True)
    assert opened.state is not None and opened.repair is not None
    assert opened.repair["dropped_bytes"] == len(b'{"payload":{"client_order_id":"mmb')
    assert opened.writer.directory == d
    assert opened.state.ledger is not None and opened.state.ledger.fills == 20
    w = opened.writer
    w.append("run_start", {"resumed": True, "instrument": instrument_json(INSTRUMENT)})
    w.append("repair", opened.repair)
    w.append("run_stop", {"summary": {}, "mark_ticks": 6_000_000})
    w.seal()
    w.close()
    result = verify_journal(d)
    assert result.status == "ok", result.describe()
    assert [r["type"] for r in result.records[-3:]] == ["run_start", "repair", "run_stop"]


def test_open_journal_when_latest_sealed_then_new_journal(tmp_path: Path) -> None:
    root = journal_root(tmp_path, "paper", ["BTC/USDT"])
    d = make_journal(root, seal=True)
    opened = open_journal(root, run_id="r2", rotate_bytes=1 << 20, info={}, data=["x"], fresh=False, resume=True)
    assert opened.state is None and opened.writer.directory != d
    assert opened.writer.directory.name.startswith("000002-")


def test_open_journal_when_unsealed_journal_tampered_then_refuses_to_start(tmp_path: Path) -> None:
    root = journal_root(tmp_path, "paper", ["BTC/USDT"])
    d = make_journal(root, seal=False)
    seg, lines = lines_of(d)
    del lines[5]
    seg.write_bytes(b"".join(lines))
    with pytest.raises(JournalError, match="fails verification"):
        open_journal(root, run_id="r2", rotate_bytes=1 << 20, info={}, data=["x"], fresh=False, resume=True)
    opened = open_journal(root, run_id="r2", rotate_bytes=1 << 20, info={}, data=["x"], fresh=True, resume=True)
    assert opened.state is None and opened.note.startswith("--fresh")


def test_wash_check_when_order_crosses_own_resting_order_then_reported(tmp_path: Path) -> None:
    writer = JournalWriter.create(tmp_path, "run", rotate_bytes=1 << 20, info={})
    writer.append("run_start", {"instrument": instrument_json(INSTRUMENT), "data": []})
    writer.append("place", {"client_order_id": "a-1", "side": "SELL", "price": 100, "qty": 1000, "taker": False}, 1)
    writer.append("ack", {"client_order_id": "a-1", "queue_ahead": 0}, 1)
    writer.append("place", {"client_order_id": "a-2", "side": "BUY", "price": 101, "qty": 1000, "taker": True}, 2)
    fill = {"side": "BUY", "price": 100, "qty": 1000, "leaves": 0, "fee": "0", "liquidity": "taker", "reason": "hedge_taker"}
    writer.append("fill", {"client_order_id": "a-2", **fill}, 3)
    writer.flush()
    state = fold(verify_journal(writer.directory).records)
    assert len(state.crossing_orders) == 1 and "would cross our own ask at 100" in state.crossing_orders[0]
    assert len(state.self_trades) == 1 and "against our own resting a-1" in state.self_trades[0]


def test_wash_check_when_normal_journal_then_nothing_reported(tmp_path: Path) -> None:
    state = fold(verify_journal(make_journal(tmp_path)).records)
    assert state.self_trades == [] and state.crossing_orders == []


def test_writer_when_utc_day_changes_then_new_segment_and_chain_continues(tmp_path: Path) -> None:
    writer = JournalWriter.create(tmp_path, "run", rotate_bytes=1 << 20, info={})
    writer.append("run_start", {"instrument": instrument_json(INSTRUMENT)})
    writer.flush()
    writer._seg_day -= 1  # as if the segment had been opened yesterday
    writer.append("place", {"client_order_id": "x-1", "side": "BUY", "price": 1, "qty": 1000})
    writer.append("run_stop", {"summary": {}})
    writer.seal()
    writer.close()
    assert len(list_segments(writer.directory)) == 2
    assert verify_journal(writer.directory).status == "ok"
