"""The compiled per-event path (mmbot/marketdata/_speedups.pyx) gives what the Python path gives.

These tests need the extension: built by ``pip install -e .`` (or ``python setup.py
build_ext --inplace``) with Cython and gcc; they fail, naming that command, when it is
missing. The forced fallback (``MMBOT_PURE_PYTHON=1``) is checked in a child process.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.domain.instrument import Instrument
from mmbot.marketdata import capture
from mmbot.marketdata.fastpath import per_event_path
from tests.golden.golden import ROOT

BUILD = "pip install -e . (or: python setup.py build_ext --inplace) with Cython and a C compiler"
INST = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


def _speedups() -> Any:
    assert capture._speedups is not None, f"the compiled per-event path is not built: {BUILD}"
    assert per_event_path() == "compiled"
    return capture._speedups


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # the same exception type and rule on both paths
        return type(exc).__name__, getattr(exc, "rule", None)


@pytest.mark.parametrize("value, expect", [("1", "pure"), ("yes", "pure"), ("0", "compiled"), ("", "compiled")])
def test_fallback_when_mmbot_pure_python_set_then_pure_python_decoder_and_book(value: str, expect: str) -> None:
    _speedups()
    probe = (
        "from mmbot.marketdata import book, capture; from mmbot.marketdata.fastpath import per_event_path;"
        "from benchmarks.throughput import INSTRUMENT as I; p = capture.CaptureParser([I]);"
        "print(per_event_path(), p.parse == p.parse_python, book.COMPILED, book._Side.apply.__module__)"
    )
    env = {**os.environ, "MMBOT_PURE_PYTHON": value, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    pure = expect == "pure"
    assert out.stdout.split() == [expect, str(pure), str(not pure), "mmbot.marketdata.book"]


def test_compiled_decoder_when_bundled_capture_then_decides_every_diff_trade_and_ticker_itself() -> None:
    sp = _speedups()
    parser = capture.CaptureParser([INST])
    fast = parser.parse.args[0]  # type: ignore[attr-defined]
    kinds: dict[str, int] = {}
    with gzip.open(ROOT / "mmbot" / "data" / "btcusdt_20240808.gz", "rb") as fh:
        for n, line in enumerate(fh):
            if n >= 3000:
                break
            ts_text, _, body = line.partition(b" ")
            payload = orjson.loads(body)
            kind = payload.get("stream", "snapshot").split("@")[-1]
            if kind == "snapshot":
                assert not sp.decides(fast, int(ts_text), payload)  # snapshots: the Python parser
            else:
                assert sp.decides(fast, int(ts_text), payload), body[:200]
            assert parser.parse(int(ts_text), payload) == parser.parse_python(int(ts_text), payload)
            kinds[kind] = kinds.get(kind, 0) + 1
    assert {"bookTicker", "trade", "100ms"} <= set(kinds)


def _wire(units: int) -> str:
    return f"{units // 10**8}.{units % 10**8:08d}"


NUMBER = st.one_of(
    st.integers(min_value=0, max_value=10**17).map(_wire),  # the wire form, on or off the grid
    st.integers(min_value=0, max_value=10**11).map(lambda u: _wire(u * 10**6)),  # on the tick grid
    st.sampled_from(["61837.6", "1e3", "-1.00000000", "+1.00000000", " 1.00000000", "1_0.00000000", ".12345678",
                     "1.2.000000", "١.00000000", "99999999999999999999.00000000", "0.00000000", "", "NaN"]),
    st.integers(min_value=-5, max_value=10**6), st.none(), st.floats(allow_nan=True),
)
LEVEL = st.one_of(st.lists(NUMBER, min_size=2, max_size=2), st.lists(NUMBER, min_size=0, max_size=3))


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["depth", "trade", "ticker", "normalised", "snapshot"]))
    sym = draw(st.sampled_from(["BTCUSDT", "BTCUSDT", "ETHUSDT", 5]))
    if kind == "depth":
        data: dict[str, Any] = {"e": "depthUpdate", "E": draw(st.sampled_from([1723161255208, "17", 1.5, None])), "s": sym,
                                "U": 50093239189, "u": draw(st.sampled_from([50093239202, "x"])),
                                "b": draw(st.lists(LEVEL, max_size=4)), "a": draw(st.lists(LEVEL, max_size=4))}
        stream = "btcusdt@depth@100ms"
    elif kind == "trade":
        data = {"e": "trade", "E": 1, "s": sym, "t": 3735683259, "p": draw(NUMBER), "q": draw(NUMBER), "T": 1723161255342,
                "m": draw(st.sampled_from([True, False, 0, "x"]))}
        stream = "btcusdt@trade"
    elif kind == "ticker":
        data = {"u": 50093239212, "s": sym, "b": draw(NUMBER), "B": draw(NUMBER), "a": draw(NUMBER), "A": draw(NUMBER)}
        stream = "btcusdt@bookTicker"
    elif kind == "normalised":
        data = {"s": sym, "t": 1, "p": draw(NUMBER), "q": draw(NUMBER), "T": 1, "m": True}
        stream = "btcusdt@mmbotTrade"
    else:
        data = {"lastUpdateId": 5, "bids": draw(st.lists(LEVEL, max_size=3)), "asks": draw(st.lists(LEVEL, max_size=3))}
        stream = "btcusdt@depth"
    if draw(st.booleans()):
        return data  # bare, no combined-stream envelope
    return {"stream": stream, "data": data}


@settings(max_examples=400, deadline=None)
@given(payloads())
def test_compiled_decoder_when_any_payload_then_same_event_or_same_rule_as_python(payload: Any) -> None:
    _speedups()
    compiled = capture.CaptureParser([INST])
    python = capture.CaptureParser([INST])
    assert _outcome(compiled.parse, 7, payload) == _outcome(python.parse_python, 7, payload)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3)), max_size=6)), max_size=60))
def test_compiled_book_side_when_random_diffs_then_levels_and_best_match_a_plain_dict(diffs: list[tuple[bool, list[tuple[int, int]]]]) -> None:
    sp = _speedups()
    sides = {True: ({}, []), False: ({}, [])}  # is_bid -> (levels, heap)
    model: dict[bool, dict[int, int]] = {True: {}, False: {}}
    for is_bid, updates in diffs:
        levels, heap = sides[is_bid]
        sp.side_apply(levels, heap, tuple(updates), is_bid)
        for price, qty in updates:
            if qty:
                model[is_bid][price] = qty
            else:
                model[is_bid].pop(price, None)
        assert levels == model[is_bid]
        expect = (max if is_bid else min)(model[is_bid]) if model[is_bid] else None
        assert sp.side_best(levels, heap, is_bid) == expect
