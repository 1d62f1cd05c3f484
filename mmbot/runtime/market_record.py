"""The market-data recording of a live-fed run (sandbox, live, paper on a live feed).

Every market event the node received is written, at the moment it reached the node,
in the capture format (:mod:`mmbot.marketdata.capture`: gzip, ``<receive ts ns>
<json>`` lines) with its metadata file next to it (``<capture>.meta.json``: exchange,
venue kind, symbols, each one's instrument rules). The file lives in the run record,
``<record dir>/market.gz``, and a replay of it (``mmbot run --data``, ``mmbot
rerun``) feeds the engine exactly the sequence of events the live engine saw, at the
times it saw them.

Why not the exchange's raw websocket frames: ccxt.pro hands the feed merged books,
not frames, so what the engine saw is a sequence of book states. The recording
writes them in mmbot's normalised form (the one ``mmbot record`` writes for
non-Binance exchanges): ``<symbol>@mmbotBook`` (a full book: the first after a
(re)subscription), ``<symbol>@mmbotBookDelta`` (the levels that changed, ``U`` and
``lastUpdateId``), ``<symbol>@mmbotTrade`` (Binance's trade fields ``t p q m T``) and
Binance's bookTicker body on ``<symbol>@bookTicker``. Prices and quantities are the
instrument's decimal strings, so the reader turns them back into the same ticks and
lots.

Integrity: the journal holds a ``market_recording`` record when the file is opened
and a ``market_recording_closed`` record with its SHA-256, line count and size when
it is closed; ``mmbot audit verify`` recomputes the hash (an edited, truncated or
missing recording is reported as tampered).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, MarketEvent, Trade
from mmbot.domain.instrument import Instrument
from mmbot.marketdata.capture import CaptureWriter, write_metadata

RECORDING_FILE = "market.gz"
HASH_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class MarketRecording:
    """Writes the node's market events; :meth:`close` returns what the journal seals."""

    def __init__(self, path: str | Path, instruments: dict[str, Instrument], *, exchange: str, mode: str, run_id: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.instruments = dict(instruments)
        self.meta_path = write_metadata(self.path, {
            "written_by": "mmbot run (market recording)", "version": 1, "exchange": exchange, "kind": "spot",
            "mode": mode, "run_id": run_id, "symbols": list(instruments), "format": "normalised",
            "instruments": {
                symbol: {"venue_symbol": inst.venue_symbol, "tick_size": str(inst.tick_size),
                         "step_size": str(inst.step_size), "min_notional": str(inst.min_notional)}
                for symbol, inst in instruments.items()
            },
        })  # fmt: skip
        self._writer: CaptureWriter | None = CaptureWriter(self.path)
        self.events = 0
        self.closed: dict[str, Any] | None = None

    def opened_record(self) -> dict[str, Any]:
        return {"path": str(self.path.resolve()), "meta_path": str(self.meta_path.resolve()), "format": "normalised"}

    def write(self, event: MarketEvent, now_ns: int) -> None:
        writer = self._writer
        if writer is None:
            return
        inst = self.instruments.get(event.symbol)
        if inst is None:
            return
        body = market_line(inst, event)
        if body is not None:
            writer.write(now_ns, body)
            self.events += 1

    def close(self) -> dict[str, Any]:
        """Close the file (a valid gzip) and hash it; idempotent."""
        if self.closed is not None:
            return self.closed
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self.closed = {
            "path": str(self.path.resolve()),
            "meta_path": str(self.meta_path.resolve()),
            "sha256": file_sha256(self.path),
            "meta_sha256": file_sha256(self.meta_path),
            "lines": writer.lines if writer is not None else 0,
            "bytes": self.path.stat().st_size,
        }
        return self.closed


def _levels(inst: Instrument, levels: tuple[tuple[int, int], ...]) -> list[list[str]]:
    # format(..., "f"): a removed level is "0.00000000", never Decimal's "0E-8".
    return [[format(inst.price(p), "f"), format(inst.qty(q), "f")] for p, q in levels]


def market_line(inst: Instrument, event: MarketEvent) -> dict[str, Any] | None:
    """One event as a capture line's JSON (module docstring), or None for what is not recorded."""
    venue = inst.venue_symbol
    kind = type(event)
    if kind is BookSnapshot or kind is BookDelta:
        data: dict[str, Any] = {"s": venue}
        if kind is BookDelta:
            data["U"] = event.first_update_id  # type: ignore[union-attr]
        data["lastUpdateId"] = event.last_update_id  # type: ignore[union-attr]
        data["bids"] = _levels(inst, event.bids)  # type: ignore[union-attr]
        data["asks"] = _levels(inst, event.asks)  # type: ignore[union-attr]
        suffix = "mmbotBook" if kind is BookSnapshot else "mmbotBookDelta"
        return {"stream": f"{event.symbol}@{suffix}", "data": data}
    if kind is Trade:
        t: Trade = event  # type: ignore[assignment]
        return {"stream": f"{event.symbol}@mmbotTrade", "data": {
            "s": venue, "t": t.trade_id, "p": format(inst.price(t.price_ticks), "f"), "q": format(inst.qty(t.qty_lots), "f"),
            "m": t.is_buyer_maker, "T": t.ts_event_ns // 1_000_000,
        }}  # fmt: skip
    if kind is BestBidAsk:
        b: BestBidAsk = event  # type: ignore[assignment]
        return {"stream": f"{venue.lower()}@bookTicker", "data": {
            "u": b.update_id, "s": venue, "b": format(inst.price(b.bid_ticks), "f"), "B": format(inst.qty(b.bid_lots), "f"),
            "a": format(inst.price(b.ask_ticks), "f"), "A": format(inst.qty(b.ask_lots), "f"),
        }}  # fmt: skip
    return None
