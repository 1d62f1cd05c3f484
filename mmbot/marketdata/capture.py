"""Reader and writer of the capture format (edge: file I/O).

Format: gzip text, one record per line, ``<local_receive_ts_ns> <raw JSON>``, where
the JSON is a Binance websocket payload (combined-stream envelope
``{"stream": ..., "data": ...}`` or bare) or a bare REST depth snapshot
``{"lastUpdateId", "bids", "asks"}``. Several files are read in order as one stream.

Bad input: a missing, unreadable, empty or non-gzip file, or one cut off before its
first complete line, raises :class:`DataError` naming the file (checked up front by
:func:`check_capture_files`, before anything runs); a truncated gzip tail ends that
file with a warning (the complete lines before it are kept, a cut-off fragment is
dropped); a garbage line is counted, logged and skipped; a timestamp going backwards
is counted, logged and clamped so the replay clock never goes back.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Level, MarketEvent, Trade
from mmbot.domain.instrument import Instrument
from mmbot.errors import DataError

Warn = Callable[[str, dict[str, Any]], None]


def _noop_warn(event: str, fields: dict[str, Any]) -> None:
    return None


WIRE_DECIMALS = 8  # Binance sends every price and quantity as a string with 8 decimals


def _scaled_parser(decimals: int, unit: int) -> Callable[[str], int]:
    """Exact decimal-string -> int converter for a power-of-ten grid.

    Result = value * 10**decimals / unit, exactly; a string with non-zero digits
    beyond ``decimals`` or off the ``unit`` grid raises ValueError (garbage input).
    Fast path for Binance's fixed 8-decimal strings ("61837.63000000"): dropping the
    dot gives the value in units of 1e-8, and one divmod by 10**(8 - decimals) * unit
    converts it to the grid with the same exactness check. Anything else (other
    decimal counts, no dot) takes the general partition path.
    """

    zeros = "0" * decimals
    fast_div = _wire_divisor(decimals, unit)
    dot_at = -WIRE_DECIMALS - 1

    def parse_general(text: str) -> int:
        whole, _, frac = text.partition(".")
        head = frac[:decimals]
        if len(frac) > decimals and frac[decimals:].strip("0"):
            raise ValueError(f"{text!r} is finer than the grid")
        if len(head) < decimals:
            head = (head + zeros)[:decimals]
        value = int(whole + head)
        if unit != 1:
            if value % unit:
                raise ValueError(f"{text!r} is not on the grid")
            return value // unit
        return value

    if not fast_div:
        return parse_general

    def parse(text: str) -> int:
        if len(text) > WIRE_DECIMALS and text[dot_at] == ".":
            # replace(".", "", 1): a second dot stays in and makes int() fail.
            value, rest = divmod(int(text.replace(".", "", 1)), fast_div)
            if rest:
                raise ValueError(f"{text!r} is finer than the grid")
            return value
        return parse_general(text)

    return parse


def _wire_divisor(decimals: int, unit: int) -> int:
    """Divisor from 8-decimal wire units to grid units (0: no fast path for this grid)."""
    return 10 ** (WIRE_DECIMALS - decimals) * unit if decimals <= WIRE_DECIMALS else 0


def _levels_parser(price: Callable[[str], int], price_div: int, qty: Callable[[str], int], qty_div: int) -> Callable[[list[Any]], tuple[Level, ...]]:
    """``[[price, qty], ...]`` strings -> ``((ticks, lots), ...)``: the inner loop of every depth message.

    Same exact conversion as :func:`_scaled_parser`, inlined for 8-decimal levels
    (a depth message carries tens of levels: one Python call per field doubles the cost).
    """
    dot_at = -WIRE_DECIMALS - 1

    def parse_levels(rows: list[Any]) -> tuple[Level, ...]:
        out: list[Level] = []
        append = out.append
        for p, q in rows:
            if len(p) > WIRE_DECIMALS and len(q) > WIRE_DECIMALS and p[dot_at] == "." and q[dot_at] == ".":
                pv, pr = divmod(int(p.replace(".", "", 1)), price_div)
                qv, qr = divmod(int(q.replace(".", "", 1)), qty_div)
                if pr or qr:
                    raise ValueError(f"level {p!r} {q!r} is finer than the grid")
                append((pv, qv))
            else:
                append((price(p), qty(q)))
        return tuple(out)

    def parse_levels_general(rows: list[Any]) -> tuple[Level, ...]:
        return tuple([(price(p), qty(q)) for p, q in rows])

    return parse_levels if price_div and qty_div else parse_levels_general


@dataclass
class ReadStats:
    lines: int = 0
    garbage_lines: int = 0
    backwards_ts: int = 0
    truncated_files: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class CaptureParser:
    """Turns one raw JSON payload into normalised events for known instruments."""

    def __init__(self, instruments: Sequence[Instrument], default_symbol: str | None = None) -> None:
        if not instruments:
            raise ValueError("at least one instrument is needed")
        self._by_venue: dict[str, tuple[Instrument, Callable[[str], int], Callable[[str], int]]] = {}
        self._levels: dict[str, Callable[[list[Any]], tuple[Level, ...]]] = {}
        for inst in instruments:
            price_unit = 10**inst.price_scale // inst.ticks_per_unit
            qty_unit = 10**inst.qty_scale // inst.lots_per_unit
            price_parse = _scaled_parser(inst.price_scale, price_unit)
            qty_parse = _scaled_parser(inst.qty_scale, qty_unit)
            self._by_venue[inst.venue_symbol] = (inst, price_parse, qty_parse)
            self._levels[inst.venue_symbol] = _levels_parser(
                price_parse, _wire_divisor(inst.price_scale, price_unit), qty_parse, _wire_divisor(inst.qty_scale, qty_unit)
            )
        first = instruments[0].venue_symbol
        self._default = default_symbol.replace("/", "").upper() if default_symbol else first
        self._norm_last_id: dict[str, int] = {}  # normalised recordings: the last book id per symbol

    def _inst(self, venue_symbol: str) -> tuple[Instrument, Callable[[str], int], Callable[[str], int]]:
        return self._by_venue[venue_symbol]

    def parse(self, ts_local_ns: int, payload: Any) -> MarketEvent | None:
        """Raw decoded JSON -> event, or None for payloads we do not use."""
        if not isinstance(payload, dict):
            raise ValueError("payload is not a JSON object")
        stream = payload.get("stream")
        data = payload.get("data") if stream is not None else payload
        if not isinstance(data, dict):
            raise ValueError("data is not a JSON object")
        kind = data.get("e")
        if kind is None and stream is not None and "@mmbot" in stream:
            return self._parse_normalised(ts_local_ns, stream, data)
        if kind == "depthUpdate":
            venue = data["s"]
            inst = self._by_venue[venue][0]
            levels = self._levels[venue]
            return BookDelta(
                inst.symbol,
                ts_local_ns,
                int(data["E"]) * 1_000_000,
                int(data["U"]),
                int(data["u"]),
                levels(data["b"]),
                levels(data["a"]),
            )
        if kind == "trade":
            inst, pp, qp = self._inst(data["s"])
            return Trade(
                inst.symbol,
                ts_local_ns,
                int(data["T"]) * 1_000_000,
                int(data["t"]),
                pp(data["p"]),
                qp(data["q"]),
                bool(data["m"]),
            )
        if kind is None and "lastUpdateId" in data:
            venue = data.get("s") or (stream.split("@", 1)[0].upper() if stream else self._default)
            inst = self._by_venue[venue][0]
            levels = self._levels[venue]
            return BookSnapshot(
                inst.symbol,
                ts_local_ns,
                int(data["lastUpdateId"]),
                levels(data["bids"]),
                levels(data["asks"]),
            )
        if kind is None and "b" in data and "a" in data and "u" in data:
            inst, pp, qp = self._inst(data["s"])
            return BestBidAsk(
                inst.symbol,
                ts_local_ns,
                int(data["u"]),
                pp(data["b"]),
                qp(data["B"]),
                pp(data["a"]),
                qp(data["A"]),
            )
        return None


    def _parse_normalised(self, ts_local_ns: int, stream: str, data: dict[str, Any]) -> MarketEvent | None:
        """mmbot's normalised recording of any ccxt exchange (``mmbot record``, non-Binance ids).

        ``<symbol>@mmbotBook``: a full book (``lastUpdateId``, ``bids``, ``asks``) ->
        BookSnapshot; ``<symbol>@mmbotBookDelta``: the levels that changed (quantity 0 =
        level gone) up to ``lastUpdateId``, chained from the previous book line's id
        (``U`` when the recorder wrote it) -> BookDelta; ``<symbol>@mmbotTrade``: the
        Binance trade fields ``t p q m T`` -> Trade. Prices and quantities are decimal
        strings, converted exactly as the Binance lines are.
        """
        venue = data["s"]
        inst, pp, qp = self._inst(venue)
        suffix = stream.rsplit("@", 1)[1]
        if suffix == "mmbotTrade":
            return Trade(inst.symbol, ts_local_ns, int(data["T"]) * 1_000_000, int(data["t"]), pp(data["p"]), qp(data["q"]), bool(data["m"]))
        if suffix not in ("mmbotBook", "mmbotBookDelta"):
            return None
        last = int(data["lastUpdateId"])
        bids = tuple((pp(_plain(p)), qp(_plain(q))) for p, q in data["bids"])
        asks = tuple((pp(_plain(p)), qp(_plain(q))) for p, q in data["asks"])
        previous = self._norm_last_id.get(venue)
        self._norm_last_id[venue] = last
        if suffix == "mmbotBook":
            return BookSnapshot(inst.symbol, ts_local_ns, last, bids, asks)
        first = int(data["U"]) if "U" in data else (previous + 1 if previous is not None else last)
        return BookDelta(inst.symbol, ts_local_ns, ts_local_ns, first, last, bids, asks)


def _plain(value: Any) -> str:
    """A decimal string without exponent ("0E-8", written by early normalised recordings -> "0.00000000")."""
    text = str(value)
    return format(Decimal(text), "f") if "E" in text or "e" in text else text


_TRUNCATED = (EOFError, zlib.error, gzip.BadGzipFile)


def _open_checked(path: Path) -> gzip.GzipFile:
    if not path.exists():
        raise DataError(f"capture file {path} does not exist")
    if not path.is_file():
        raise DataError(f"capture file {path} is not a regular file")
    try:
        if path.stat().st_size == 0:
            raise DataError(f"capture file {path} is empty")
        with open(path, "rb") as head:
            magic = head.read(2)
    except OSError as exc:
        raise DataError(f"capture file {path} cannot be read: {exc.strerror or exc}") from exc
    if magic != b"\x1f\x8b":
        raise DataError(f"capture file {path} is not gzip-compressed (expected the capture format)")
    return gzip.GzipFile(path, "rb")


def _check_readable(path: Path) -> None:
    """The file must hold at least one complete line (a truncated tail is only a warning)."""
    fh = _open_checked(path)
    try:
        first = fh.readline()
    except _TRUNCATED as exc:
        raise DataError(f"capture file {path} is truncated or corrupt before its first complete line: {exc}") from exc
    except OSError as exc:
        raise DataError(f"capture file {path} cannot be read: {exc}") from exc
    finally:
        fh.close()
    if not first:
        raise DataError(f"capture file {path} is empty (a gzip stream with no lines)")
    if not first.endswith(b"\n"):
        # One line and no newline: fine if the gzip stream itself is complete.
        fh = _open_checked(path)
        try:
            fh.read()
        except _TRUNCATED as exc:
            raise DataError(f"capture file {path} is truncated before its first complete line: {exc}") from exc
        finally:
            fh.close()


def check_capture_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Every file exists, is non-empty gzip and has a readable first line; else DataError."""
    if not paths:
        raise DataError("no capture file given")
    checked = []
    for p in paths:
        path = Path(p)
        _check_readable(path)
        checked.append(path)
    return checked


def iter_lines(
    paths: Sequence[str | os.PathLike[str]], stats: ReadStats, warn: Warn = _noop_warn
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(ts_local_ns, json_bytes)`` for every line with a timestamp, in file order.

    Timestamps are not checked for order here: :func:`read_events` does it on lines
    that parse, so one garbage line cannot drag the replay clock.
    """
    for path in check_capture_files(paths):
        stats.files.append(str(path))
        fh = _open_checked(path)
        try:
            line = b""
            while True:
                try:
                    line = fh.readline()
                    if line and not line.endswith(b"\n"):
                        # The last line of a file, or the cut-off end of a truncated one:
                        # read on to find out, and drop the fragment if the stream is cut.
                        fh.read()
                except (*_TRUNCATED, OSError) as exc:
                    stats.truncated_files.append(str(path))
                    warn("capture_truncated", {"file": str(path), "error": str(exc), "lines_read": stats.lines})
                    break
                if not line:
                    break
                stats.lines += 1
                ts_text, sep, body = line.partition(b" ")
                try:
                    if not sep:
                        raise ValueError("no space separator")
                    ts = int(ts_text)
                except ValueError:
                    stats.garbage_lines += 1
                    warn("capture_garbage_line", {"file": str(path), "line": stats.lines})
                    continue
                yield ts, body
        finally:
            fh.close()


def read_events(
    paths: Sequence[str | os.PathLike[str]],
    parser: CaptureParser,
    stats: ReadStats | None = None,
    warn: Warn = _noop_warn,
) -> Iterator[MarketEvent]:
    """All events of the capture files, in order, as one stream."""
    stats = stats if stats is not None else ReadStats()
    loads = orjson.loads
    parse = parser.parse
    last_ts = 0
    for ts, body in iter_lines(paths, stats, warn):
        try:
            event = parse(ts, loads(body))
        except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError) as exc:
            stats.garbage_lines += 1
            warn("capture_garbage_line", {"line": stats.lines, "error": str(exc)[:200]})
            continue
        if ts < last_ts:
            # Clamped so the replay clock never goes back (the event keeps its place).
            stats.backwards_ts += 1
            warn("capture_timestamp_backwards", {"line": stats.lines, "behind_ms": (last_ts - ts) / 1e6})
            if event is not None:
                event = event._replace(ts_local_ns=last_ts)
        else:
            last_ts = ts
        if event is not None:
            yield event


class CaptureWriter:
    """Writes the capture format (``mmbot record``): gzip, ``<ts_ns> <json>`` lines."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh = gzip.open(self.path, "wb")
        self.lines = 0

    def write(self, ts_local_ns: int, payload: bytes | dict[str, Any]) -> None:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        self._fh.write(b"%d " % ts_local_ns + body + b"\n")
        self.lines += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
