"""Broken captures, each built from the bundled ``btcusdt_20240808.gz`` by changing one thing.

Every case of issue 29's "seen on main" list that is about market data is one entry of
:data:`CASES`: a name, a function from the file's lines to the broken file's lines, and
the config overrides or CLI flags the case needs. The regression tests
(tests/integrity/test_regressions.py) and the note's before/after table
(``python -m tests.integrity.table``) both use this list.

Lines are ``bytes`` of the capture format (``<ts_ns> <json>\\n``). The middle of the
file (:data:`MIDDLE`) is where single-line damage goes: far from the start (the REST
snapshot is line 8) and from the end.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import orjson

from tests.conftest import DATA, ROOT

SOURCE = DATA / "btcusdt_20240808.gz"
USDM_HEAD = ROOT / "tests" / "data" / "usdm_btcusdt_20240808_head.gz"  # tests/data/README.md
MIDDLE = 20_000
CLEAN_FILLS = 126  # `mmbot backtest --data btcusdt_20240808.gz`, default config
CLEAN_NET = "-5.26268620"

Lines = list[bytes]


@cache
def source_lines(path: Path = SOURCE) -> tuple[bytes, ...]:
    with gzip.open(path, "rb") as fh:
        return tuple(fh.readlines())


def write(path: Path, lines: Lines) -> Path:
    with gzip.open(path, "wb") as fh:
        fh.writelines(lines)
    return path


def split(line: bytes) -> tuple[int, dict]:
    ts, _, body = line.partition(b" ")
    return int(ts), orjson.loads(body)


def join(ts: int | str, doc: dict) -> bytes:
    # json, not orjson: a case may hold integers beyond 64 bits (u = 10**30).
    return str(ts).encode() + b" " + json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _index_of(lines: Lines, kind: str, start: int = MIDDLE) -> int:
    """The first line at or after ``start`` holding a message of ``kind``."""
    needle = {"depth": b'"depthUpdate"', "trade": b'"e":"trade"', "ticker": b"@bookTicker"}[kind]
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i
    raise AssertionError(f"no {kind} line after {start}")


def _with_ts(lines: Lines, index: int, ts_text: str) -> Lines:
    out = list(lines)
    _, _, body = out[index].partition(b" ")
    out[index] = ts_text.encode() + b" " + body
    return out


def _shift_ts(lines: Lines, index: int, by_ns: int) -> Lines:
    ts = lines[index].partition(b" ")[0]
    return _with_ts(lines, index, str(int(ts) + by_ns))


def _edit_depth(lines: Lines, edit: Callable[[dict], None], kind: str = "depth") -> Lines:
    out = list(lines)
    i = _index_of(out, kind)
    ts, doc = split(out[i])
    edit(doc["data"])
    out[i] = join(ts, doc)
    return out


def _first_bid(value: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        rows = data["b"] or data["a"]
        rows[0][0] = value

    return edit


def _first_bid_qty(value: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        rows = data["b"] or data["a"]
        rows[0][1] = value

    return edit


def _raw_level(lines: Lines, old: bytes, new: bytes) -> Lines:
    """Replace the first price string of the middle diff with raw JSON text (NaN, 1e400...)."""
    out = list(lines)
    i = _index_of(out, "depth")
    ts, _, body = out[i].partition(b" ")
    doc = orjson.loads(body)
    rows = doc["data"]["b"] or doc["data"]["a"]
    price = rows[0][0].encode()
    text = body.replace(b'"' + price + b'"', new, 1)
    assert text != body
    out[i] = ts + b" " + text
    return out


def _cross(lines: Lines, keep_asks: bool = False) -> Lines:
    """The middle diff gains a bid 100 USDT above the last book ticker's ask (and, unless
    ``keep_asks``, loses its ask levels: it then crosses the book, not itself)."""
    out = list(lines)
    i = _index_of(out, "depth")
    ask = None
    for j in range(i, 0, -1):
        if b"@bookTicker" in out[j]:
            ask = float(split(out[j])[1]["data"]["a"])
            break
    assert ask is not None
    ts, doc = split(out[i])
    doc["data"]["b"].append([f"{ask + 100:.8f}", "0.50000000"])
    if not keep_asks:
        doc["data"]["a"] = []
    out[i] = join(ts, doc)
    return out


def _tickers_crossed(lines: Lines, n: int = 200) -> Lines:
    """``n`` book tickers spread over the file get bid = ask + 100 USDT."""
    out = list(lines)
    tickers = [i for i, line in enumerate(out) if b"@bookTicker" in line]
    for i in tickers[:: max(1, len(tickers) // n)][:n]:
        ts, doc = split(out[i])
        d = doc["data"]
        d["b"] = f"{float(d['a']) + 100:.8f}"
        out[i] = join(ts, doc)
    return out


def rename(lines: Lines, venue: bytes = b"ETHUSDT", id_shift: int = 0) -> Lines:
    """The capture as another symbol (the REST snapshot carries none), ids optionally shifted."""
    out = []
    lower = venue.lower()
    for line in lines:
        line = line.replace(b"BTCUSDT", venue).replace(b"btcusdt", lower)
        if id_shift:
            ts, doc = split(line)
            d = doc.get("data", doc)
            for key in ("U", "u", "lastUpdateId"):
                if key in d:
                    d[key] -= id_shift
            line = join(ts, doc)
        out.append(line)
    return out


def interleave(a: Lines, b: Lines) -> Lines:
    def ts(line: bytes) -> int:
        return int(line.split(b" ", 1)[0])

    shifted = [str(ts(x) + 500).encode() + b" " + x.split(b" ", 1)[1] for x in b]
    return sorted([*a, *shifted], key=ts)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Lines], Lines]
    env: dict[str, str] = field(default_factory=dict)  # MMBOT_* overrides
    args: tuple[str, ...] = ()  # extra CLI flags
    expect_exit: int = 0  # after the fix
    seen: str = ""  # what main did, as the issue reports it
    command: str = "backtest"  # or "run" (mmbot run --speed 0)
    config: str | None = None  # YAML text of a config file, instead of the bundled default
    source: Path | None = None  # another capture to start from
    counter: str = ""  # the summary's market_data_rejections rule that must see it (exit-0 cases)
    names: tuple[str, ...] = ()  # what the exit-2 message must name


def _drop_u(data: dict) -> None:
    del data["U"]


def _huge_u(data: dict) -> None:
    data["u"] = 10**30


DAY = 86_400 * 10**9
CASES: tuple[Case, ...] = (
    Case("ts_60_digits", lambda ls: _with_ts(ls, MIDDLE, "9" * 60), counter="timestamp_invalid", seen="hang"),
    Case("ts_zero_first_line", lambda ls: _with_ts(ls, 0, "0"), counter="timestamp_invalid", seen="hang"),
    Case("ts_30_days_ahead", lambda ls: _shift_ts(ls, MIDDLE, 30 * DAY), counter="clock_outlier", seen="hang"),
    Case("ts_1_hour_ahead", lambda ls: _shift_ts(ls, MIDDLE, 3600 * 10**9), counter="clock_outlier", seen="20,624 lines dropped as backwards, fills 126 -> 32"),
    Case("ts_1_day_ahead", lambda ls: _shift_ts(ls, MIDDLE, DAY), counter="clock_outlier", seen="lines dropped as backwards"),
    Case("u_10e30", lambda ls: _edit_depth(ls, _huge_u), counter="update_id_jump", seen="frozen book, STALE_BOOK never fires"),
    Case("price_nan", lambda ls: _raw_level(ls, b"", b"NaN"), counter="malformed", seen="halted for good on CROSSED_BOOK"),
    Case("price_infinity", lambda ls: _edit_depth(ls, _first_bid("Infinity")), counter="malformed", seen="halted for good"),
    Case("price_1e400", lambda ls: _edit_depth(ls, _first_bid("1e400")), counter="malformed", seen="halted for good"),
    Case("price_json_number", lambda ls: _raw_level(ls, b"", b"61000.5"), counter="malformed", seen="halted for good"),
    Case("level_one_element", lambda ls: _edit_depth(ls, lambda d: (d["b"] or d["a"])[0].pop()), counter="malformed", seen="halted for good"),
    Case("diff_without_U", lambda ls: _edit_depth(ls, _drop_u), counter="malformed", seen="halted for good"),
    Case("diff_crosses_book", _cross, counter="crossed_book", seen="halted for good on CROSSED_BOOK"),
    Case("diff_crosses_itself", lambda ls: _cross(ls, keep_asks=True), counter="diff_self_crossed", seen="halted for good on CROSSED_BOOK"),
    Case("price_negative", lambda ls: _edit_depth(ls, _first_bid("-61000.00000000")), counter="price_not_positive", seen="applied silently"),
    Case("price_zero", lambda ls: _edit_depth(ls, _first_bid("0.00000000")), counter="price_not_positive", seen="applied silently"),
    Case("qty_negative", lambda ls: _edit_depth(ls, _first_bid_qty("-1.00000000")), counter="qty_negative", seen="applied silently"),
    Case("tickers_bid_above_ask", _tickers_crossed, counter="ticker_crossed", seen="135 fake fills instead of 126"),
    Case("eth_capture", lambda ls: rename(ls), names=("ETHUSDT", "BTC/USDT"), expect_exit=2, seen="ETH snapshot loaded as the BTC book, exit 0"),
    Case("btc_eth_interleaved", lambda ls: interleave(ls, rename(ls, id_shift=10**10)), names=("ETHUSDT", "BTC/USDT"), expect_exit=2,
         seen="the ETH snapshot corrupts the BTC book, exit 0"),
    Case("symbols_vs_instrument", lambda ls: ls, names=("ETH/USDT", "BTC/USDT"), config="symbols: [ETH/USDT]\ninstrument:\n  symbol: BTC/USDT\n",
         expect_exit=2, seen="accepted, trades BTC"),
    Case("tick_too_coarse", lambda ls: ls, names=("tick_size", "61737.63"), env={"MMBOT_INSTRUMENT__TICK_SIZE": "1"}, expect_exit=2,
         seen="95 % of lines garbage, 0 fills, exit 0"),
    Case("symbols_flag_foo", lambda ls: ls, names=("FOO/BAR", "BTCUSDT"), args=("--symbols", "FOO/BAR"), expect_exit=2, command="run",
         seen="exit 0, the summary says BTC/USDT"),
    Case("usdm_futures_capture", lambda ls: ls, names=("USD-M", "spot sync rule", "usdm_futures_capture.gz"), source=USDM_HEAD, expect_exit=2,
         seen="spot sync rule: 1 false gap, HALTED for the whole run, mark 0, exit 0"),
)

BY_NAME = {c.name: c for c in CASES}
