"""Small units: fault vocabulary, url override, backoff, level diffs, tape ids across the seam."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbot.adapters.ccxt.exchange import ExchangeParams, build_exchange, rehost_urls
from mmbot.domain.events import BookDelta, BookSnapshot
from mmbot.domain.instrument import Instrument
from mmbot.emulator.faults import FaultSpec, FaultState, parse_fault_specs
from mmbot.emulator.market import SymbolMarket
from mmbot.emulator.server import stream_key
from mmbot.emulator.tape import RESET, load_tapes
from mmbot.errors import ConfigError
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.capture import CaptureParser, CaptureWriter
from mmbot.marketdata.feeds.live import backoff_s, diff_levels
from mmbot.sim.venue import VenueConfig

INST = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


def test_parse_fault_specs_when_valid_then_kinds_times_and_durations() -> None:
    specs = parse_fault_specs("gap@5, freeze@10:4,http429@20:3,malformed@1")
    assert [(s.kind, s.at_s, s.duration_s) for s in specs] == [
        ("gap", 5.0, 0.0), ("freeze", 10.0, 4.0), ("http429", 20.0, 3.0), ("malformed", 1.0, 0.0),
    ]


@pytest.mark.parametrize("spec", ["meltdown@1", "gap", "freeze@3", "gap@x", "slow@-1:2"])
def test_parse_fault_specs_when_invalid_then_value_error(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault_specs(spec)


def test_fault_state_when_timed_fault_expires_then_inactive() -> None:
    state = FaultState()
    state.activate(FaultSpec(kind="http429", duration_s=2.0), now_s=100.0)
    assert state.is_active("http429", 101.0) and not state.is_active("http429", 102.5)


def test_rehost_urls_when_base_url_given_then_every_api_url_moves_and_keeps_its_path() -> None:
    api = {"public": "https://testnet.binance.vision/api/v3", "sapi": "https://api.binance.com/sapi/v1",
           "ws": {"spot": "wss://stream.testnet.binance.vision/ws", "ws-api": {"spot": "wss://ws-api.testnet.binance.vision/ws-api/v3"}}}
    out = rehost_urls(api, "http://127.0.0.1:8765")
    assert out == {"public": "http://127.0.0.1:8765/api/v3", "sapi": "http://127.0.0.1:8765/sapi/v1",
                   "ws": {"spot": "ws://127.0.0.1:8765/ws", "ws-api": {"spot": "ws://127.0.0.1:8765/ws-api/v3"}}}


def test_build_exchange_when_sandbox_and_base_url_then_override_survives_and_options_are_spot_only() -> None:
    ex = build_exchange(ExchangeParams(sandbox=True, base_url="http://127.0.0.1:8765",
                                       urls={"api": {"ws": {"spot": "ws://127.0.0.1:9999/ws"}}}))
    api = ex.urls["api"]
    strings = [v for v in api.values() if isinstance(v, str)]
    assert api["public"] == api["private"] == "http://127.0.0.1:8765/api/v3"
    assert api["ws"]["spot"] == "ws://127.0.0.1:9999/ws"  # exchange.urls wins over base_url
    assert api["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:8765/ws-api/v3"
    assert strings and all(v.startswith("http://127.0.0.1:8765/") for v in strings)
    assert ex.options["fetchMarkets"]["types"] == ["spot"] and ex.options["fetchCurrencies"] is False
    assert ex.options["fetchMargins"] is False and ex.streaming["keepAlive"] == 20000


def test_build_exchange_when_id_unknown_or_base_url_bad_then_config_error() -> None:
    with pytest.raises(ConfigError, match=r"not a ccxt\.pro exchange id"):
        build_exchange(ExchangeParams(id="nosuchexchange"))
    with pytest.raises(ConfigError, match="base_url"):
        build_exchange(ExchangeParams(base_url="127.0.0.1:8765"))


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0.01, max_value=5), st.floats(min_value=0.1, max_value=60))
def test_backoff_when_failures_grow_then_delay_is_jittered_and_capped(failures: int, initial: float, cap: float) -> None:
    delay = backoff_s(failures, initial, cap, random.Random(failures))
    nominal = min(cap, initial * 2 ** (failures - 1))
    assert nominal / 2 <= delay <= nominal


levels = st.dictionaries(st.integers(1, 50), st.integers(1, 9), max_size=20)


@given(levels, levels)
def test_diff_levels_when_applied_then_old_becomes_new(old: dict[int, int], new: dict[int, int]) -> None:
    book = dict(old)
    for price, qty in diff_levels(old, tuple(sorted(new.items()))):
        if qty:
            book[price] = qty
        else:
            book.pop(price, None)
    assert book == new


def test_stream_key_when_rate_suffix_or_case_differs_then_same_feed() -> None:
    assert stream_key("btcusdt@depth@100ms") == stream_key("BTCUSDT@depth") == "btcusdt@depth"
    assert stream_key("btcusdt@bookTicker") == "btcusdt@bookTicker"


def write_capture(path: Path, gap: bool) -> None:
    def depth(first: int, last: int, bid: str, qty: str) -> dict[str, object]:
        return {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last,
                                                        "b": [[bid, qty]], "a": []}}

    lines: list[object] = [
        depth(9, 11, "99.00", "1"),
        {"lastUpdateId": 10, "bids": [["100.00", "1.0"]], "asks": [["101.00", "2.0"]]},
        depth(12, 13, "100.00", "0.5"),
        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 2, "s": "BTCUSDT", "t": 7, "p": "100.00", "q": "0.1", "T": 2, "m": True}},
        depth(20 if gap else 14, 21 if gap else 15, "98.00", "3"),
        {"lastUpdateId": 30, "bids": [["97.00", "1.0"]], "asks": [["102.00", "1.0"]]},
        depth(31, 32, "97.50", "1"),
        {"stream": "btcusdt@bookTicker", "data": {"u": 32, "s": "BTCUSDT", "b": "97.50", "B": "1", "a": "102.00", "A": "1"}},
    ]
    with CaptureWriter(path) as w:
        for i, payload in enumerate(lines):
            w.write(1_000_000_000 + i * 1_000_000, orjson.dumps(payload))


@pytest.mark.parametrize("gap", [False, True])
def test_symbol_market_when_tape_loops_then_update_ids_stay_continuous_and_book_resets(tmp_path: Path, gap: bool) -> None:
    path = tmp_path / "tiny.gz"
    write_capture(path, gap)
    tape = load_tapes([str(path)], INST)["BTCUSDT"]
    market = SymbolMarket(INST, tape, VenueConfig())
    client = L2Book("BTC/USDT")
    parser = CaptureParser([INST])
    client.apply_snapshot(BookSnapshot("BTC/USDT", 0, tape.initial_id, tape.initial_bids, tape.initial_asks))
    results = []
    for _ in range(3):  # three passes over the tape
        for entry in tape.entries:
            frames, _ = market.step(entry, 5_000_000_000, skip_depth=False)
            for _key, payload in frames:
                event = parser.parse(0, payload)
                if isinstance(event, BookDelta):
                    results.append(client.apply_delta(event))
        frames, _ = market.seam(6_000_000_000)
        for _, payload in frames:
            event = parser.parse(0, payload)
            assert isinstance(event, BookDelta)
            results.append(client.apply_delta(event))
        assert client.snapshot_levels() == (tape.initial_bids, tape.initial_asks)
    assert set(results) == {ApplyResult.APPLIED}
    assert client.last_update_id == market.last_update_id
    assert any(e.kind == RESET for e in tape.entries) is gap
    assert market.trade_offset == 3  # one trade id per pass


def test_admin_loopback_check_when_remote_is_not_loopback_then_refused() -> None:
    from mmbot.emulator.server import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1")
    assert not _is_loopback("192.168.1.5") and not _is_loopback(None) and not _is_loopback("garbage")
