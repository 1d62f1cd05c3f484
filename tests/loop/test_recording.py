"""Priority 1 of issue 33: a live-fed run records what it saw, and the journal vouches for it.

* the market recording (capture format + metadata) reads back as the same events at
  the times the node received them;
* a sandbox run journals every order action with its local send and reply times and
  the venue's answer, each ack with the venue's time, each fill with the venue's
  trade id; the recording's hash is in the journal and ``mmbot audit verify`` checks it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_metadata, read_stream
from mmbot.runtime.market_record import MarketRecording
from tests.conftest import MMBOT
from tests.loop.conftest import RecordedRun, journal_records


def test_market_recording_when_read_back_then_same_events_at_receive_times(tmp_path: Path, instrument: Instrument) -> None:
    sym = instrument.symbol
    events = [
        BookSnapshot(sym, 1, 100, ((6_000_000, 5), (5_999_999, 7)), ((6_000_001, 3),)),
        BookDelta(sym, 2, 2, 101, 103, ((6_000_000, 0), (5_999_998, 100_000)), ((6_000_002, 12_345),)),
        Trade(sym, 3, 7_000_000, 42, 6_000_001, 3, False),
        BestBidAsk(sym, 4, 104, 5_999_999, 7, 6_000_001, 2),
    ]
    receive = [1_700_000_000_000_000_000 + i * 1_000_000 for i in range(len(events))]
    path = tmp_path / "market.gz"
    rec = MarketRecording(path, {sym: instrument}, exchange="binance", mode="sandbox", run_id="r1")
    for event, now in zip(events, receive, strict=True):
        rec.write(event, now)
    closed = rec.close()

    back = list(read_stream([str(path)], CaptureParser([instrument]), ReadStats(), lambda *a: None, max_clock_jump_ns=10**12))
    meta = read_metadata(path)
    assert [e.ts_local_ns for e in back] == receive
    assert back[0] == events[0]._replace(ts_local_ns=receive[0])
    assert back[1] == events[1]._replace(ts_local_ns=receive[1], ts_event_ns=receive[1])
    assert back[2] == events[2]._replace(ts_local_ns=receive[2])
    assert back[3] == events[3]._replace(ts_local_ns=receive[3])
    assert closed["lines"] == 4 and len(closed["sha256"]) == 64
    assert meta is not None and meta["instruments"][sym]["tick_size"] == "0.01" and meta["mode"] == "sandbox"


def test_sandbox_run_when_recorded_then_journal_has_send_ack_and_trade_times(faulted_run: RecordedRun) -> None:
    records = journal_records(faulted_run.journal_dir)
    by_type: dict[str, list[dict]] = {}
    for r in records:
        by_type.setdefault(r["type"], []).append(r["payload"])
    places = {p["client_order_id"] for p in by_type["place"]}
    sent = [p for p in by_type["order_sent"] if p["action"] == "place"]
    sent_ok = [p for p in sent if p["outcome"] == "ok"]
    fills = by_type.get("fill", [])
    acks = by_type["ack"]
    closed = by_type["market_recording_closed"][0]
    recording = faulted_run.record_dir / "market.gz"

    assert places and {p["client_order_id"] for p in sent} == places  # every placement went out, once recorded
    assert all(p["sent_ns"] <= p["reply_ns"] for p in by_type["order_sent"])
    assert sent_ok and all(p.get("venue_ts_ms") and p.get("venue_order_id") for p in sent_ok)
    assert any(p["action"] == "cancel" for p in by_type["order_sent"])
    assert acks and all(a.get("venue_ts_ns", 0) > 0 for a in acks)
    assert fills and all(f.get("trade_id") and f.get("received_ns", 0) > 0 for f in fills)
    assert any(p["kind"] == "silent" for p in by_type["feed_signal"])  # the freeze, as the feed reported it
    assert any(p["reason"] == "EXCHANGE_DOWN" and p["raised"] for p in by_type["venue_risk"])  # the 5xx outage
    assert Path(closed["path"]) == recording.resolve() and closed["lines"] > 100
    assert faulted_run.summary["market_recording"]["sha256"] == closed["sha256"]
    assert read_metadata(recording) is not None


def test_audit_verify_when_recording_edited_or_missing_then_tampered(faulted_run: RecordedRun, tmp_path: Path) -> None:
    recording = faulted_run.record_dir / "market.gz"
    backup = tmp_path / "market.gz"
    shutil.copy2(recording, backup)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MMBOT, "audit", "verify", str(faulted_run.journal_dir)], capture_output=True, text=True, timeout=60)

    intact = verify()
    try:
        with recording.open("r+b") as fh:  # one byte changed in the middle of the file
            fh.seek(recording.stat().st_size // 2)
            byte = fh.read(1)
            fh.seek(-1, 1)
            fh.write(bytes([byte[0] ^ 0xFF]))
        edited = verify()
        recording.unlink()
        missing = verify()
    finally:
        shutil.copy2(backup, recording)
    restored = verify()

    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert edited.returncode == 1 and "does not match its SHA-256" in edited.stdout + edited.stderr
    assert missing.returncode == 1 and "is missing" in missing.stdout + missing.stderr
    assert restored.returncode == 0
