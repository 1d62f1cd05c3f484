"""Builders for small synthetic journals (no engine needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbot.audit.state import instrument_json
from mmbot.audit.writer import JournalWriter
from mmbot.domain.instrument import Instrument

INSTRUMENT = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


def make_journal(root: Path, *, fills: int = 20, seal: bool = True, rotate_bytes: int = 1 << 20) -> Path:
    """A journal: run_start, then place/ack/fill triples, then (optionally) run_stop + seal."""
    writer = JournalWriter.create(root, "20260101T000000Z-test0001", rotate_bytes=rotate_bytes, info={"account": "t", "symbols": ["BTC/USDT"]})
    writer.append("run_start", {"run_id": "r", "data": ["x"], "instrument": instrument_json(INSTRUMENT), "config": {}})
    ts = 1_700_000_000_000_000_000
    for i in range(fills):
        side = "BUY" if i % 2 == 0 else "SELL"
        coid = f"mmb-test0001-{i + 1:x}"
        price = 6_000_000 + (i % 2)
        writer.append("place", {"client_order_id": coid, "side": side, "price": price, "qty": 1000, "level": 0, "taker": False, "reason": "t"}, ts)
        writer.append("ack", {"client_order_id": coid, "venue_order_id": str(i), "queue_ahead": 0}, ts)
        writer.append(
            "fill",
            {"client_order_id": coid, "side": side, "price": price, "qty": 1000, "leaves": 0, "fee": "0", "liquidity": "maker", "reason": "trade_through", "mid_ticks": 6_000_000.5},
            ts + 1,
        )
        ts += 1_000_000
        if i % 7 == 0:
            writer.flush(fsync=True, checkpoint=True)
    if seal:
        summary: dict[str, Any] = {"fills": fills}
        writer.append("run_stop", {"summary": summary, "mark_ticks": 6_000_000, "stop_reason": "end_of_data"}, ts)
        writer.seal()
    else:
        writer.flush(fsync=True, checkpoint=True)
    writer.close()
    return writer.directory


def lines_of(directory: Path) -> tuple[Path, list[bytes]]:
    seg = sorted(directory.glob("seg-*.jsonl"))[-1]
    return seg, seg.read_bytes().splitlines(keepends=True)
