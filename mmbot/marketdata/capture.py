"""Reader and writer of the capture format (edge: file I/O).

Format: gzip text, one record per line, ``<local_receive_ts_ns> <raw JSON>``, where
the JSON is a Binance websocket payload (combined-stream envelope
``{"stream": ..., "data": ...}`` or bare) or a bare REST depth snapshot
``{"lastUpdateId", "bids", "asks"}``. Several files are read in order as one stream.

Bad input: a missing, unreadable, empty or non-gzip file, or one cut off before its
first complete line, raises :class:`DataError` naming the file (checked up front by
:func:`check_capture_files`, before anything runs); a truncated gzip tail ends that
file with a warning (the complete lines before it are kept, a cut-off fragment is
dropped); a line that breaks a decoding rule (mmbot.marketdata.validate: malformed,
unknown symbol, off the tick or lot grid, bad timestamp) is counted under its rule, logged
(rate limited) and skipped.

Time (:class:`TimeFilter`): a line's receive time is checked against its neighbours, so
no single line can become a new clock. A step of at most ``max_clock_jump_ns`` from the
last accepted line is normal (a small step back is clamped and counted as
``backwards_timestamps``, so the replay clock never goes back). A larger step, either
way, is checked against the next ``CLOCK_WINDOW`` lines: if at least half of them lie
within ``max_clock_jump_ns`` of it, the capture really jumps there (a recorder outage,
two files with a pause between them): the line is kept, the jump is counted in
``clock_discontinuities`` and a :class:`ClockJump` marker goes before it (the replay
invalidates the engine's book and resyncs; a jump back is re-based so the clock keeps
moving forward). Otherwise the line alone is wrong: it is dropped and counted as
``clock_outlier``. A receive time that is not a positive 64-bit integer is
``timestamp_invalid``.

What a capture holds (:func:`scan_capture`): the symbols and the venue kind (spot,
USD-M or COIN-M futures, from the futures diffs' ``pu`` field and the symbol form), read
from the head of each file, and a sample of its prices and trade sizes that the
configured tick and step must fit. ``mmbot record`` writes a metadata file next to its
capture (:func:`metadata_path`) with the instrument rules it recorded under.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, ClockJump, Level, MarketEvent, Trade
from mmbot.domain.instrument import Instrument
from mmbot.errors import DataError, DataMismatch
from mmbot.marketdata.validate import BadMessage, Rule

try:  # the compiled per-event path (mmbot/marketdata/_speedups.pyx); absent or refused: pure Python
    from mmbot.marketdata import _speedups
except ImportError:
    _speedups = None  # type: ignore[assignment]

COMPILED = _speedups is not None

Warn = Callable[[str, dict[str, Any]], None]


def _noop_warn(event: str, fields: dict[str, Any]) -> None:
    return None


WIRE_DECIMALS = 8  # Binance sends every price and quantity as a string with 8 decimals


def _scaled_parser(decimals: int, unit: int, rule: Rule = Rule.PRICE_OFF_GRID) -> Callable[[str], int]:
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
            raise BadMessage(rule, f"{text!r} is finer than the grid")
        if len(head) < decimals:
            head = (head + zeros)[:decimals]
        value = int(whole + head)
        if unit != 1:
            if value % unit:
                raise BadMessage(rule, f"{text!r} is not on the grid")
            return value // unit
        return value

    if not fast_div:
        return parse_general

    def parse(text: str) -> int:
        if len(text) > WIRE_DECIMALS and text[dot_at] == ".":
            # replace(".", "", 1): a second dot stays in and makes int() fail.
            value, rest = divmod(int(text.replace(".", "", 1)), fast_div)
            if rest:
                raise BadMessage(rule, f"{text!r} is finer than the grid")
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
                if pr:
                    raise BadMessage(Rule.PRICE_OFF_GRID, f"price {p!r} is finer than the grid (the tick)")
                if qr:
                    raise BadMessage(Rule.QTY_OFF_GRID, f"quantity {q!r} is finer than the grid (the quantity unit)")
                append((pv, qv))
            else:
                append((price(p), qty(q)))
        return tuple(out)

    def parse_levels_general(rows: list[Any]) -> tuple[Level, ...]:
        return tuple([(price(p), qty(q)) for p, q in rows])

    return parse_levels if price_div and qty_div else parse_levels_general


MAX_TS_NS = 2**63 - 1
DEFAULT_MAX_CLOCK_JUMP_NS = 10_000_000_000  # data.max_clock_jump_s default: 10 s
CLOCK_WINDOW = 8  # lines looked ahead to tell a clock outlier from a real jump


@dataclass
class ReadStats:
    lines: int = 0
    garbage_lines: int = 0  # lines that could not be decoded (any decoding rule)
    backwards_ts: int = 0
    clock_discontinuities: int = 0
    truncated_files: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rejections: dict[str, int] = field(default_factory=dict)  # decoding rule -> lines
    # Progress (the status line): compressed bytes of the files finished, and the
    # compressed file being read (its position moves in the gzip reader's 128 KiB reads).
    bytes_done: int = 0
    reading: Any = field(default=None, repr=False, compare=False)
    # Futures trades that are not market trades (``X`` other than MARKET) -> count: the parser's own counter.
    ignored_trades: dict[str, int] = field(default_factory=dict)

    def reject(self, rule: Rule) -> None:
        self.rejections[rule.value] = self.rejections.get(rule.value, 0) + 1

    def bytes_read(self) -> int:
        """Compressed bytes read so far over every file (and every pass of a looped replay)."""
        raw = self.reading
        if raw is None:
            return self.bytes_done
        try:
            return self.bytes_done + int(raw.tell())
        except (OSError, ValueError):  # closed between the check and the call
            return self.bytes_done


class RateLimitedWarn:
    """A warn callback that logs the 1st, 2nd, 3rd, 10th, 100th, ... occurrence of each event.

    Deterministic (counts, no clock): a file with 80,000 bad lines logs about a dozen
    lines per rule instead of 80,000; each line carries the running ``count``.
    """

    def __init__(self, warn: Warn) -> None:
        self._warn = warn
        self.counts: dict[str, int] = {}

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        key = event + ":" + str(fields.get("rule", ""))
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        if n <= 3 or _is_power_of_ten(n):
            self._warn(event, {**fields, "count": n})


def _is_power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


class CaptureParser:
    """Turns one raw JSON payload into normalised events for known instruments.

    ``parse(ts_local_ns, payload)``: the compiled decoder when it is built (it decodes the
    common Binance messages itself and hands every other one, and every one it cannot
    decide, to :meth:`parse_python`), else :meth:`parse_python`: the same events either way.
    """

    def __init__(self, instruments: Sequence[Instrument], default_symbol: str | None = None) -> None:
        if not instruments:
            raise ValueError("at least one instrument is needed")
        self._by_venue: dict[str, tuple[Instrument, Callable[[str], int], Callable[[str], int]]] = {}
        self._levels: dict[str, Callable[[list[Any]], tuple[Level, ...]]] = {}
        fast: dict[str, tuple[str, int, int]] = {}  # venue symbol -> (symbol, price divisor, qty divisor)
        for inst in instruments:
            price_unit = 10**inst.price_scale // inst.ticks_per_unit
            qty_unit = 10**inst.qty_scale // inst.lots_per_unit
            price_parse = _scaled_parser(inst.price_scale, price_unit)
            qty_parse = _scaled_parser(inst.qty_scale, qty_unit, Rule.QTY_OFF_GRID)
            self._by_venue[inst.venue_symbol] = (inst, price_parse, qty_parse)
            price_div = _wire_divisor(inst.price_scale, price_unit)
            qty_div = _wire_divisor(inst.qty_scale, qty_unit)
            self._levels[inst.venue_symbol] = _levels_parser(price_parse, price_div, qty_parse, qty_div)
            fast[inst.venue_symbol] = (inst.symbol, price_div, qty_div)
        first = instruments[0].venue_symbol
        self._default = default_symbol.replace("/", "").upper() if default_symbol else first
        self._norm_last_id: dict[str, int] = {}  # normalised recordings: the last book id per symbol
        # Binance futures venue symbols (USD-M, COIN-M): their diffs must carry ``pu``.
        self._futures = {inst.venue_symbol for inst in instruments if inst.kind != "spot"}
        # Futures trades whose ``X`` is not MARKET (insurance fund, ADL, ...): not market
        # trades, so no fill evidence; ignored and counted here (X value -> trades).
        self.ignored_trades: dict[str, int] = {}
        self.parse: Callable[[int, Any], MarketEvent | None] = (
            partial(_speedups.parse, fast, self.parse_python) if _speedups is not None else self.parse_python
        )

    def _inst(self, venue_symbol: str) -> tuple[Instrument, Callable[[str], int], Callable[[str], int]]:
        try:
            return self._by_venue[venue_symbol]
        except (KeyError, TypeError):
            raise BadMessage(Rule.UNKNOWN_SYMBOL, f"symbol {venue_symbol!r} is not configured") from None

    def parse_python(self, ts_local_ns: int, payload: Any) -> MarketEvent | None:
        """Raw decoded JSON -> event, or None for payloads we do not use (the reference decoder)."""
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
            inst = self._inst(venue)[0]
            levels = self._levels[venue]
            if venue in self._futures:
                # Futures: the chain field pu is required, and the event time is T (the
                # matching engine's transaction time; E is when the stream sent it).
                if "pu" not in data:
                    raise BadMessage(Rule.MALFORMED, f"a futures diff of {venue} without pu")
                return BookDelta(
                    inst.symbol, ts_local_ns, int(data["T"]) * 1_000_000, int(data["U"]), int(data["u"]),
                    levels(data["b"]), levels(data["a"]), int(data["pu"]),
                )
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
            execution = data.get("X")
            if execution is not None and execution != "MARKET":
                name = str(execution)[:32]
                self.ignored_trades[name] = self.ignored_trades.get(name, 0) + 1
                return None
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
            # COIN-M snapshots name their symbol in "symbol"; spot and USD-M ones in none.
            venue = data.get("s") or data.get("symbol") or (stream.split("@", 1)[0].upper() if stream else self._default)
            inst = self._inst(venue)[0]
            levels = self._levels[venue]
            return BookSnapshot(
                inst.symbol,
                ts_local_ns,
                int(data["lastUpdateId"]),
                levels(data["bids"]),
                levels(data["asks"]),
            )
        if (kind is None or kind == "bookTicker") and "b" in data and "a" in data and "u" in data:
            # Spot book tickers carry no "e"; futures ones say "bookTicker" (and T, E).
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
        # A futures book chains by pu (the previous book line's id); a spot one by U alone,
        # so its delta carries no pu, as the live feed's deltas do (a replay equals the run).
        if inst.kind == "spot":
            return BookDelta(inst.symbol, ts_local_ns, ts_local_ns, first, last, bids, asks)
        chained = previous if previous is not None else first - 1
        return BookDelta(inst.symbol, ts_local_ns, ts_local_ns, first, last, bids, asks, chained)


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
    """Yield ``(ts_local_ns, json_bytes)`` for every line with a valid timestamp, in file order.

    Timestamps are not checked for order here: :class:`TimeFilter` does it.
    """
    for path in check_capture_files(paths):
        stats.files.append(str(path))
        fh = _open_checked(path)
        stats.reading = fh.fileobj  # the compressed file: its position is the replay's progress
        size = path.stat().st_size
        finished = False
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
                    # Digits only: int() would also take "+5", " 5", "5_000" and 60-digit numbers.
                    if not ts_text.isdigit() or len(ts_text) > 19:
                        raise BadMessage(Rule.TIMESTAMP_INVALID, f"receive time {ts_text[:40]!r}")
                    ts = int(ts_text)
                    if not 0 < ts <= MAX_TS_NS:
                        raise BadMessage(Rule.TIMESTAMP_INVALID, f"receive time {ts}")
                except BadMessage as exc:
                    stats.garbage_lines += 1
                    stats.reject(exc.rule)
                    warn("capture_bad_line", {"file": str(path), "line": stats.lines, "rule": exc.rule.value, "error": str(exc)[:200]})
                    continue
                except ValueError:
                    stats.garbage_lines += 1
                    stats.reject(Rule.MALFORMED)
                    warn("capture_bad_line", {"file": str(path), "line": stats.lines, "rule": Rule.MALFORMED.value, "error": "no timestamp"})
                    continue
                yield ts, body
            finished = True
        finally:
            # Stopped part-way (the generator closed at a yield) counts what was read, not the whole file.
            stats.bytes_done = stats.bytes_done + size if finished else stats.bytes_read()
            stats.reading = None
            fh.close()


class TimeFilter:
    """The receive-time rule (module docstring): outliers dropped, real jumps marked.

    Feed it ``(ts, body)`` pairs in file order; it yields ``(ts, body, jump_ns)`` with
    ``ts`` the replay time (monotonic, re-based after a jump back) and ``jump_ns`` the
    raw size of a real discontinuity before this line (0 for an ordinary line). It
    holds ``CLOCK_WINDOW`` lines: O(1) work per line, the look-ahead only for lines
    that jump.
    """

    def __init__(self, stats: ReadStats, warn: Warn, max_jump_ns: int = DEFAULT_MAX_CLOCK_JUMP_NS, window: int = CLOCK_WINDOW) -> None:
        if max_jump_ns <= 0:
            raise ValueError(f"max_jump_ns must be > 0, was {max_jump_ns}")
        self.stats = stats
        self.warn = warn
        self.max_jump_ns = max_jump_ns
        self.window = window
        self._prev_raw: int | None = None
        self._offset = 0
        self._last_out = 0

    def __call__(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes, int]]:
        buf: deque[tuple[int, bytes]] = deque()
        window = self.window
        decide = self._decide
        for item in lines:
            buf.append(item)
            if len(buf) > window:
                ts, body = buf.popleft()
                out = decide(ts, buf)
                if out is not None:
                    yield out[0], body, out[1]
        while buf:
            ts, body = buf.popleft()
            out = decide(ts, buf)
            if out is not None:
                yield out[0], body, out[1]

    def _decide(self, ts: int, ahead: deque[tuple[int, bytes]]) -> tuple[int, int] | None:
        prev = self._prev_raw
        limit = self.max_jump_ns
        if prev is not None and -limit <= ts - prev <= limit:
            self._prev_raw = ts
            out = ts + self._offset
            if out < self._last_out:
                # Clamped so the replay clock never goes back (the event keeps its place).
                self.stats.backwards_ts += 1
                self.warn("capture_timestamp_backwards", {"line": self.stats.lines, "behind_ms": (self._last_out - out) / 1e6})
                return self._last_out, 0
            self._last_out = out
            return out, 0
        if ahead:
            agree = sum(1 for a, _ in ahead if -limit <= a - ts <= limit)
            outlier = agree * 2 < len(ahead)  # the lines after it do not follow it
        else:
            outlier = prev is not None  # the last line jumps; a one-line capture has nothing to compare with
        if outlier:
            self.stats.reject(Rule.CLOCK_OUTLIER)
            self.stats.garbage_lines += 1
            self.warn("capture_bad_line", {"line": self.stats.lines, "rule": Rule.CLOCK_OUTLIER.value,
                                           "ts_ns": ts, "last_ts_ns": prev})
            return None
        self._prev_raw = ts
        if prev is None:
            self._last_out = ts + self._offset
            return self._last_out, 0
        jump = ts - prev
        self.stats.clock_discontinuities += 1
        self.warn("capture_clock_discontinuity", {"line": self.stats.lines, "jump_s": jump / 1e9})
        if ts + self._offset <= self._last_out:
            # A real jump back: re-base so the replay clock keeps moving forward (1 ms on).
            self._offset = self._last_out + 1_000_000 - ts
        self._last_out = ts + self._offset
        return self._last_out, jump


_DECODE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError, orjson.JSONDecodeError)


def read_stream(
    paths: Sequence[str | os.PathLike[str]],
    parser: CaptureParser,
    stats: ReadStats | None = None,
    warn: Warn = _noop_warn,
    *,
    max_clock_jump_ns: int = DEFAULT_MAX_CLOCK_JUMP_NS,
) -> Iterator[MarketEvent | ClockJump]:
    """All events of the capture files, in order, as one stream, with :class:`ClockJump`
    markers before real discontinuities (the replay session acts on them)."""
    stats = stats if stats is not None else ReadStats()
    warn = warn if isinstance(warn, RateLimitedWarn) else RateLimitedWarn(warn)
    loads = orjson.loads
    parse = parser.parse
    stats.ignored_trades = parser.ignored_trades  # the same counter: the summary reads it from the stats
    time_filter = TimeFilter(stats, warn, max_clock_jump_ns)
    for ts, body, jump in time_filter(iter_lines(paths, stats, warn)):
        try:
            event = parse(ts, loads(body))
        except BadMessage as exc:
            stats.garbage_lines += 1
            stats.reject(exc.rule)
            warn("capture_bad_line", {"line": stats.lines, "rule": exc.rule.value, "error": str(exc)[:200]})
            continue
        except _DECODE_ERRORS as exc:
            stats.garbage_lines += 1
            stats.reject(Rule.MALFORMED)
            warn("capture_bad_line", {"line": stats.lines, "rule": Rule.MALFORMED.value, "error": str(exc)[:200]})
            continue
        if jump:
            yield ClockJump(ts, jump)
        if event is not None:
            yield event


def read_events(
    paths: Sequence[str | os.PathLike[str]],
    parser: CaptureParser,
    stats: ReadStats | None = None,
    warn: Warn = _noop_warn,
    *,
    max_clock_jump_ns: int = DEFAULT_MAX_CLOCK_JUMP_NS,
) -> Iterator[MarketEvent]:
    """All events of the capture files, in order, as one stream (no markers)."""
    for event in read_stream(paths, parser, stats, warn, max_clock_jump_ns=max_clock_jump_ns):
        if type(event) is not ClockJump:
            yield event  # type: ignore[misc]


# --------------------------------------------------------------------------- what a capture holds

SCAN_LINES = 5000  # lines read from the head of each file by scan_capture
METADATA_SUFFIX = ".meta.json"


@dataclass
class CaptureInfo:
    """What the head of a capture says about itself (:func:`scan_capture`)."""

    symbols: dict[str, int] = field(default_factory=dict)  # venue symbol -> market lines seen
    kinds: dict[str, int] = field(default_factory=dict)  # spot | usdm | coinm -> depth diffs seen
    lines: int = 0
    market_lines: int = 0
    prices: list[tuple[str, str, int]] = field(default_factory=list)  # (price text, file, line)
    trade_sizes: list[tuple[str, str, int]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def held_symbols(self) -> list[str]:
        """Symbols on at least 1 % of the market lines (and 3): one stray line is not a symbol."""
        floor = max(3, self.market_lines // 100)
        return sorted(s for s, n in self.symbols.items() if n >= floor)

    @property
    def kind(self) -> str:
        """The venue kind most depth diffs follow (spot when the head holds none)."""
        if not self.kinds:
            return "spot"
        return max(self.kinds.items(), key=lambda kv: kv[1])[0]


def metadata_path(capture: str | os.PathLike[str]) -> Path:
    """``<capture>.meta.json``: written by ``mmbot record`` next to its capture."""
    p = Path(capture)
    return p.with_name(p.name + METADATA_SUFFIX)


def read_metadata(capture: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = metadata_path(capture)
    if not path.is_file():
        return None
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DataMismatch(f"capture metadata {path} is not readable JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DataMismatch(f"capture metadata {path} must hold an object")
    return doc


def write_metadata(capture: str | os.PathLike[str], doc: dict[str, Any]) -> Path:
    path = metadata_path(capture)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    tmp.replace(path)
    return path


def _venue_kind(data: dict[str, Any]) -> str | None:
    if data.get("e") != "depthUpdate":
        return None
    if "pu" not in data:
        return "spot"
    symbol = str(data.get("s", ""))
    return "coinm" if "_" in symbol or "ps" in data else "usdm"


def scan_capture(paths: Sequence[str | os.PathLike[str]], max_lines: int = SCAN_LINES) -> CaptureInfo:
    """Symbols, venue kind and a sample of prices and trade sizes from each file's head."""
    info = CaptureInfo()
    for p in check_capture_files(paths):
        meta = read_metadata(p)
        if meta is not None and info.metadata is None:
            info.metadata = meta
        fh = _open_checked(p)
        try:
            for n in range(1, max_lines + 1):
                try:
                    line = fh.readline()
                except (*_TRUNCATED, OSError):
                    break
                if not line:
                    break
                info.lines += 1
                _, _, body = line.partition(b" ")
                try:
                    payload = orjson.loads(body)
                except orjson.JSONDecodeError:
                    continue
                _scan_payload(info, payload, str(p), n)
        finally:
            fh.close()
    return info


def _scan_payload(info: CaptureInfo, payload: Any, file: str, line: int) -> None:
    if not isinstance(payload, dict):
        return
    stream = payload.get("stream")
    data = payload.get("data") if stream is not None else payload
    if not isinstance(data, dict):
        return
    symbol = data.get("s")
    if not isinstance(symbol, str) and isinstance(stream, str):
        symbol = stream.split("@", 1)[0].upper()
    if isinstance(symbol, str) and symbol:
        info.market_lines += 1
        info.symbols[symbol] = info.symbols.get(symbol, 0) + 1
    kind = _venue_kind(data)
    if kind is not None:
        info.kinds[kind] = info.kinds.get(kind, 0) + 1
    if len(info.prices) < 4000:
        for key in ("b", "a", "bids", "asks"):
            rows = data.get(key)
            if isinstance(rows, list):
                for row in rows[:20]:
                    if isinstance(row, list) and row and isinstance(row[0], str):
                        info.prices.append((row[0], file, line))
    if data.get("e") == "trade" and isinstance(data.get("q"), str) and len(info.trade_sizes) < 2000:
        info.trade_sizes.append((data["q"], file, line))
        if isinstance(data.get("p"), str):
            info.prices.append((data["p"], file, line))


def check_instrument_grid(info: CaptureInfo, instrument: Instrument) -> None:
    """The configured tick and step must fit the data: DataMismatch naming the first offender.

    More than 1 % of the sampled prices off the tick grid (and at least 3), or of the
    sampled trade sizes off the step grid, means the instrument rules are wrong for
    this data; a stray bad line is left to the reader's ``price_off_grid`` count.
    """
    for label, samples, convert, rule_name, value in (
        ("price", info.prices, instrument.price_ticks, "tick_size", instrument.tick_size),
        ("trade size", info.trade_sizes, _step_check(instrument), "step_size", instrument.step_size),
    ):
        bad = []
        for text, file, line in samples:
            try:
                convert(text)
            except (ValueError, ArithmeticError):
                bad.append((text, file, line))
        if bad and len(bad) >= 3 and len(bad) * 100 > len(samples):
            text, file, line = bad[0]
            raise DataMismatch(
                f"{rule_name} {value} of {instrument.symbol} contradicts the data: {label} {text} at line {line} of {file} "
                f"is not on its grid ({len(bad)} of {len(samples)} sampled {label}s are off it); "
                f"set instrument.{rule_name} to the venue's value"
            )


def _step_check(instrument: Instrument) -> Callable[[str], int]:
    def check(text: str) -> int:
        lots = instrument.qty_lots(text)
        if lots % instrument.step_lots:
            raise ValueError(f"{text} is not a multiple of {instrument.step_size}")
        return lots

    return check


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
