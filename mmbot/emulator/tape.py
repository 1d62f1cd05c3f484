"""The emulator's market: a capture loaded as a replayable tape, one per symbol.

Loading (per venue symbol in the capture): depth diffs are fed through an
:class:`~mmbot.marketdata.book.L2Book` with Binance's sync rules; the first REST
snapshot (plus the buffered diffs that straddle it) gives the *initial book*; the
tape holds every later diff, trade and bookTicker in capture order. A sequence gap
inside the capture becomes a ``reset`` entry (the levels of the next snapshot),
which the replay turns into one synthetic diff, so clients never see the gap.

Replaying (:class:`SymbolMarket`): update ids are shifted by a per-pass offset so
that ``U == previous u + 1`` holds for ever, also across the loop seam, where one
synthetic diff turns the end-of-capture book back into the initial book. Event
times ``E``/``T`` are the emulator's wall clock in ms. Extra symbols are renamed
copies of the capture's first symbol (same prices, separate books and orders).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Level, Trade
from mmbot.domain.instrument import Instrument
from mmbot.errors import DataError
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.capture import CaptureParser, ReadStats, TimeFilter, iter_lines

DEPTH = 0
TRADE = 1
BBO = 2
RESET = 3


_SYMBOL = re.compile(rb'"s":"([A-Za-z0-9]+)"')


@dataclass(slots=True)
class TapeEntry:
    """One tape line; payloads are parsed lazily (at replay) so loading stays fast."""

    ts_ns: int  # capture local timestamp
    kind: int  # DEPTH | TRADE | BBO | RESET
    raw: bytes = b""  # the capture line's JSON (envelope or bare)
    data_cache: dict[str, Any] | None = None
    delta: BookDelta | None = None
    trade: Trade | None = None
    reset_levels: tuple[tuple[Level, ...], tuple[Level, ...]] | None = None
    reset_id: int = 0

    def data(self) -> dict[str, Any]:
        """The bare Binance payload (a fresh copy the caller may change)."""
        if self.data_cache is None:
            payload = orjson.loads(self.raw)
            self.data_cache = payload["data"] if "stream" in payload else payload
        return dict(self.data_cache)


@dataclass(slots=True)
class Tape:
    venue_symbol: str
    parser: CaptureParser
    initial_bids: tuple[Level, ...]
    initial_asks: tuple[Level, ...]
    initial_id: int
    entries: list[TapeEntry] = field(default_factory=list)
    first_trade_id: int = 0
    last_trade_id: int = 0

    def delta(self, entry: TapeEntry) -> BookDelta:
        if entry.delta is None:
            event = self.parser.parse(entry.ts_ns, orjson.loads(entry.raw))
            assert isinstance(event, BookDelta)
            entry.delta = event
        return entry.delta

    def bbo(self, entry: TapeEntry) -> BestBidAsk:
        event = self.parser.parse(entry.ts_ns, orjson.loads(entry.raw))
        assert isinstance(event, BestBidAsk)
        return event

    def trade(self, entry: TapeEntry) -> Trade:
        if entry.trade is None:
            event = self.parser.parse(entry.ts_ns, orjson.loads(entry.raw))
            assert isinstance(event, Trade)
            entry.trade = event
        return entry.trade


class _Loader:
    """Follows the diff id chain of one symbol; levels are parsed only around snapshots."""

    def __init__(self, venue_symbol: str, parser: CaptureParser) -> None:
        self.venue_symbol = venue_symbol
        self.parser = parser
        self.tape: Tape | None = None
        self.buffer: list[TapeEntry] = []  # diffs waiting for a snapshot
        self.last_u = 0
        self.expect_first = False
        self.waiting = True  # no snapshot yet, or a gap: waiting for the next one

    def depth(self, entry: TapeEntry, first_id: int, last_id: int) -> None:
        if self.waiting:
            self.buffer.append(entry)
            return
        if last_id <= self.last_u:
            return
        if self.expect_first:
            ok = first_id <= self.last_u + 1 <= last_id
        else:
            ok = first_id == self.last_u + 1
        if not ok:
            self.waiting = True  # a gap inside the capture: reset at the next snapshot
            self.buffer = [entry]
            return
        self.expect_first = False
        self.last_u = last_id
        assert self.tape is not None
        self.tape.entries.append(entry)

    def snapshot(self, ts: int, snap: BookSnapshot) -> None:
        if not self.waiting:
            return  # the stream is continuous: a later snapshot adds nothing
        book = L2Book(self.venue_symbol)
        book.apply_snapshot(snap)
        for entry in self.buffer:
            delta = self.parser.parse(entry.ts_ns, orjson.loads(entry.raw))
            assert isinstance(delta, BookDelta)
            if book.apply_delta(delta) is ApplyResult.GAP:
                return  # the snapshot is older than the buffered diffs: wait for another
        self.buffer = []
        bids, asks = book.snapshot_levels()
        self.last_u = book.last_update_id
        self.expect_first = book.last_update_id == snap.last_update_id
        self.waiting = False
        if self.tape is None:
            self.tape = Tape(self.venue_symbol, self.parser, bids, asks, book.last_update_id)
        else:
            self.tape.entries.append(TapeEntry(ts, RESET, reset_levels=(bids, asks), reset_id=book.last_update_id))

    def other(self, entry: TapeEntry) -> None:
        if self.tape is not None and not self.waiting:
            self.tape.entries.append(entry)


_CACHE: dict[tuple[Any, ...], dict[str, Tape]] = {}
_CACHE_MAX = 4


def load_tapes_cached(paths: Sequence[str | os.PathLike[str]], instrument: Instrument) -> dict[str, Tape]:
    """:func:`load_tapes`, remembered per process (files unchanged): tapes are read-only
    once loaded (the lazily parsed payloads are the same for every reader)."""
    key: tuple[Any, ...] = (
        tuple((str(p), os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths),
        instrument.tick_size, instrument.step_size, instrument.min_notional, instrument.quote_ccy,
    )
    tapes = _CACHE.get(key)
    if tapes is None:
        tapes = load_tapes(paths, instrument)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = tapes
    return tapes


def load_tapes(paths: Sequence[str | os.PathLike[str]], instrument: Instrument) -> dict[str, Tape]:
    """Read capture files into one tape per venue symbol (prices on ``instrument``'s grid)."""
    loaders: dict[str, _Loader] = {}
    default_symbol: str | None = None
    stats = ReadStats()

    def loader_for(venue: str) -> _Loader:
        ld = loaders.get(venue)
        if ld is None:
            base = venue[: -len(instrument.quote_ccy)] if venue.endswith(instrument.quote_ccy) else venue
            inst = Instrument.from_symbol(
                f"{base}/{instrument.quote_ccy}",
                tick_size=instrument.tick_size,
                step_size=instrument.step_size,
                min_notional=instrument.min_notional,
            )
            ld = loaders[venue] = _Loader(venue, CaptureParser([inst]))
        return ld

    # The same receive-time rule as every capture reader: one bad timestamp is dropped, so
    # the tape's pacing never waits for (or spins through) a clock that isn't there.
    for ts, body, _jump in TimeFilter(stats, lambda event, fields: None)(iter_lines(paths, stats)):
        try:
            if b'"depthUpdate"' in body or b'"lastUpdateId"' in body:
                payload = orjson.loads(body)
                stream = payload.get("stream")
                data = payload["data"] if stream is not None else payload
                if data.get("e") == "depthUpdate":
                    venue = str(data["s"])
                    default_symbol = default_symbol or venue
                    loader_for(venue).depth(TapeEntry(ts, DEPTH, body), int(data["U"]), int(data["u"]))
                    continue
                venue = str(data.get("s") or (stream.split("@", 1)[0].upper() if stream else default_symbol or ""))
                if not venue:
                    continue  # a snapshot before any stream message names no symbol
                loader = loader_for(venue)
                snap = loader.parser.parse(ts, payload)
                if isinstance(snap, BookSnapshot):
                    loader.snapshot(ts, snap)
                continue
            match = _SYMBOL.search(body)
            if match is None:
                continue
            venue = match.group(1).decode()
            if b'"e":"trade"' in body:
                loader_for(venue).other(TapeEntry(ts, TRADE, body))
            elif b'"b":' in body and b'"a":' in body and b'"u":' in body:
                loader_for(venue).other(TapeEntry(ts, BBO, body))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, orjson.JSONDecodeError):
            continue  # garbage lines are skipped, as by every capture reader
    tapes: dict[str, Tape] = {}
    for venue, ld in loaders.items():
        tape = ld.tape
        if tape is None or not tape.entries:
            continue
        trades = [e for e in tape.entries if e.kind == TRADE]
        if trades:
            tape.first_trade_id = tape.trade(trades[0]).trade_id
            tape.last_trade_id = tape.trade(trades[-1]).trade_id
        tapes[venue] = tape
    if not tapes:
        names = ", ".join(str(p) for p in paths)
        raise DataError(f"capture {names} holds no REST depth snapshot followed by market data; the emulator needs one")
    return tapes


def fmt_price(instrument: Instrument, ticks: int) -> str:
    return f"{instrument.price(ticks):.8f}"


def fmt_qty(instrument: Instrument, lots: int) -> str:
    return f"{instrument.qty(lots):.8f}"


def level_diff(
    book: L2Book, bids: tuple[Level, ...], asks: tuple[Level, ...]
) -> tuple[list[Level], list[Level]]:
    """Levels that turn ``book`` into the target levels (qty 0 deletes)."""
    out: list[list[Level]] = []
    for is_bid, target in ((True, bids), (False, asks)):
        current = book.levels(is_bid)
        wanted = dict(target)
        changes = [(p, 0) for p in current if p not in wanted]
        changes.extend((p, q) for p, q in wanted.items() if current.get(p) != q)
        out.append(changes)
    return out[0], out[1]
