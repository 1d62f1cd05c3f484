"""Binance futures market data (issue 32 item 2): the futures sync rule, ``T`` times, trades with ``X``.

Real data: the bundled cut copies of the USD-M and COIN-M captures (mmbot/data/PROVENANCE.md
section 3). Hand-built diffs check each branch of the rule.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmbot.config.settings import load_settings
from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.errors import DataMismatch
from mmbot.marketdata.book import ApplyResult, L2Book, sync_rule_for
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
from mmbot.marketdata.validate import Rule

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "mmbot" / "data"
USDM = DATA / "usdm_btcusdt_20240808_head.gz"
COINM = [DATA / "coinm_btcusd_perp_20240808.gz", DATA / "coinm_btcusd_perp_20240809_head.gz"]
LINEAR = Instrument.from_symbol("BTC/USDT:USDT", tick_size="0.1", step_size="0.001", min_notional="100")
INVERSE = Instrument.from_symbol("BTC/USD:BTC", tick_size="0.1", step_size="1")
MIDNIGHT_NS = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC: the COIN-M files' split
PROFILE = ROOT / "config" / "profiles" / "perp-usdm.yaml"


def delta(first: int, last: int, prev: int, bids: tuple[tuple[int, int], ...] = ((100, 1),)) -> BookDelta:
    return BookDelta("X", 0, 0, first, last, bids, ((200, 1),), prev)


def snapshot(last_id: int) -> BookSnapshot:
    return BookSnapshot("X", 0, last_id, ((100, 5),), ((200, 5),))


# --- the rule ---------------------------------------------------------------------------------
def test_sync_rule_for_when_kinds_then_spot_only_for_spot() -> None:
    assert [sync_rule_for(k) for k in ("spot", "linear_perp", "inverse_perp")] == ["spot", "futures", "futures"]


def test_futures_book_when_first_diff_straddles_snapshot_then_applied_and_older_dropped() -> None:
    book = L2Book("X", sync="futures")
    # Buffered before the snapshot (the straddling diff comes first, as in the USD-M file).
    assert book.apply_delta(delta(90, 99, 89)) is ApplyResult.BUFFERED  # u < L: dropped at the snapshot
    assert book.apply_delta(delta(100, 120, 99)) is ApplyResult.BUFFERED  # U <= L=110 <= u: the first applied
    book.apply_snapshot(snapshot(110))
    result = book.apply_delta(delta(125, 130, 120))  # pu == previous u (ids inside a diff are not contiguous)
    assert book.stale_count == 1 and book.gap_count == 0 and book.last_update_id == 130 and result is ApplyResult.APPLIED


def test_futures_book_when_pu_breaks_chain_then_gap_and_invalid() -> None:
    book = L2Book("X", sync="futures")
    book.apply_snapshot(snapshot(110))
    book.apply_delta(delta(105, 115, 104))
    result = book.apply_delta(delta(116, 118, 114))  # U == u + 1 would please the spot rule; pu says a diff is missing
    assert result is ApplyResult.GAP and book.gap_count == 1 and not book.is_synced


def test_futures_book_when_first_diff_after_snapshot_misses_it_then_gap() -> None:
    book = L2Book("X", sync="futures")
    book.apply_snapshot(snapshot(110))
    assert book.apply_delta(delta(112, 115, 111)) is ApplyResult.GAP  # U > L and pu != L


def test_futures_book_when_diff_chains_from_snapshot_id_then_applied() -> None:
    # The simulated venue's snapshots end exactly at a diff's u: the next diff has pu == L.
    book = L2Book("X", sync="futures")
    book.apply_snapshot(snapshot(110))
    assert book.apply_delta(delta(115, 117, 110)) is ApplyResult.APPLIED and book.is_synced


def test_spot_book_when_futures_diffs_then_false_gaps() -> None:
    diffs = [delta(100, 120, 99), delta(125, 130, 120), delta(131, 140, 130)]
    spot, futures = L2Book("X"), L2Book("X", sync="futures")
    for book in (spot, futures):
        book.apply_snapshot(snapshot(110))
        for d in diffs:
            book.apply_delta(d)
    assert spot.gap_count >= 1 and futures.gap_count == 0


def test_l2book_when_unknown_sync_then_value_error() -> None:
    with pytest.raises(ValueError, match="sync must be one of"):
        L2Book("X", sync="coinm")


# --- the parser ---------------------------------------------------------------------------------
def _first(path: Path, needle: bytes) -> tuple[int, dict[str, Any]]:
    with gzip.open(path, "rb") as fh:
        for line in fh:
            if needle in line:
                ts, _, body = line.partition(b" ")
                return int(ts), orjson.loads(body)
    raise AssertionError(f"no {needle!r} in {path}")


def test_parser_when_usdm_lines_then_pu_t_times_tickers_and_trades() -> None:
    parser = CaptureParser([LINEAR])
    ts, diff = _first(USDM, b"depthUpdate")
    ev = parser.parse(ts, diff)
    _, ticker = _first(USDM, b"bookTicker")
    bbo = parser.parse(0, ticker)
    _, trade = _first(USDM, b'"e":"trade"')
    tr = parser.parse(0, trade)
    data = diff["data"]
    assert isinstance(ev, BookDelta) and ev.prev_update_id == data["pu"] and ev.ts_event_ns == data["T"] * 1_000_000
    assert ev.symbol == "BTC/USDT:USDT" and ev.first_update_id == data["U"] and ev.last_update_id == data["u"]
    assert isinstance(bbo, BestBidAsk) and bbo.bid_ticks == LINEAR.price_ticks(ticker["data"]["b"])
    assert isinstance(tr, Trade) and tr.qty_lots == LINEAR.qty_lots(trade["data"]["q"])


def test_parser_when_coinm_snapshot_names_symbol_then_read_for_that_symbol() -> None:
    ts, snap = _first(COINM[0], b"lastUpdateId")
    ev = CaptureParser([INVERSE]).parse(ts, snap)
    assert isinstance(ev, BookSnapshot) and ev.symbol == "BTC/USD:BTC" and ev.last_update_id == snap["lastUpdateId"]
    assert ev.bids[0][1] == int(snap["bids"][0][1])  # whole contracts: the quantity unit is 1


@pytest.mark.parametrize("execution", ["INSURANCE_FUND", "ADL", "NA"])
def test_parser_when_trade_not_market_then_ignored_and_counted(execution: str) -> None:
    parser = CaptureParser([LINEAR])
    _, trade = _first(USDM, b'"e":"trade"')
    trade["data"]["X"] = execution
    out = [parser.parse(0, trade), parser.parse(0, trade)]
    assert out == [None, None] and parser.ignored_trades == {execution: 2}


def test_parser_when_futures_diff_without_pu_then_malformed() -> None:
    parser = CaptureParser([LINEAR])
    _, diff = _first(USDM, b"depthUpdate")
    del diff["data"]["pu"]
    with pytest.raises(ValueError) as err:
        parser.parse(0, diff)
    assert getattr(err.value, "rule", None) is Rule.MALFORMED


def test_parser_when_compiled_or_python_then_same_events_on_futures_lines() -> None:
    parser = CaptureParser([LINEAR])
    n = 0
    with gzip.open(USDM, "rb") as fh:
        for line in fh:
            ts, _, body = line.partition(b" ")
            payload = orjson.loads(body)
            assert parser.parse(int(ts), payload) == parser.parse_python(int(ts), payload)
            n += 1
            if n >= 4000:
                break
    assert n == 4000


# --- whole captures ------------------------------------------------------------------------------
def _replay_books(paths: list[Path], inst: Instrument) -> tuple[L2Book, ReadStats, dict[str, int], list[BookDelta]]:
    book = L2Book(inst.symbol, on_crossed="heal", sync=sync_rule_for(inst.kind))
    stats = ReadStats()
    counts = {"diffs": 0, "trades": 0, "tickers": 0, "snapshots": 0}
    boundary: list[BookDelta] = []
    last: BookDelta | None = None
    for ev in read_events([str(p) for p in paths], CaptureParser([inst]), stats):
        if isinstance(ev, BookDelta):
            counts["diffs"] += 1
            book.apply_delta(ev)
            if last is not None and last.ts_local_ns < MIDNIGHT_NS <= ev.ts_local_ns:
                boundary = [last, ev]  # the files split at local midnight: the last diff of one, the first of the next
            last = ev
        elif isinstance(ev, BookSnapshot):
            counts["snapshots"] += 1
            book.apply_snapshot(ev)
        elif isinstance(ev, Trade):
            counts["trades"] += 1
        else:
            counts["tickers"] += 1
    return book, stats, counts, boundary


def test_coinm_pair_when_read_as_one_stream_then_no_gap_across_the_file_boundary() -> None:
    book, stats, counts, boundary = _replay_books(COINM, INVERSE)
    before, after = boundary
    assert book.gap_count == 0 and book.is_synced and stats.garbage_lines == 0 and len(stats.files) == 2
    assert counts["diffs"] == 26_847 + sum(1 for _ in _lines(COINM[1], b"depthUpdate")) and counts["snapshots"] == 1
    assert after.prev_update_id == before.last_update_id  # the chain runs over the boundary
    assert before.ts_local_ns < MIDNIGHT_NS <= after.ts_local_ns  # 00:00 UTC, a funding time


def test_coinm_capture_when_spot_rule_then_false_gap_and_book_never_recovers() -> None:
    spot_inst = Instrument.from_symbol("BTC/USD", tick_size="0.1", step_size="1", qty_unit="1")
    book = L2Book("X")
    parser = CaptureParser([Instrument(**{**_fields(spot_inst), "venue_symbol": "BTCUSD_PERP"})])
    for ev in read_events([str(COINM[0])], parser):
        if isinstance(ev, BookSnapshot):
            book.apply_snapshot(ev)
        elif isinstance(ev, BookDelta):
            book.apply_delta(ev)
    # The first false gap leaves the book invalid for the rest of the file: why the futures rule exists.
    assert book.gap_count == 1 and not book.is_synced


def test_usdm_capture_when_read_then_no_gap_and_every_trade_market() -> None:
    book, stats, counts, _ = _replay_books([USDM], LINEAR)
    assert book.gap_count == 0 and book.is_synced and stats.garbage_lines == 0
    assert counts["trades"] == sum(1 for _ in _lines(USDM, b'"X":"MARKET"')) and counts["tickers"] > 0


def _lines(path: Path, needle: bytes) -> list[bytes]:
    with gzip.open(path, "rb") as fh:
        return [line for line in fh if needle in line]


def _fields(inst: Instrument) -> dict[str, Any]:
    return {k: getattr(inst, k) for k in ("symbol", "venue_symbol", "base", "quote_ccy", "tick_size", "step_size",
                                          "min_notional", "qty_unit", "kind", "contract_size", "settle")}


# --- wiring and the backtest ---------------------------------------------------------------------------
def test_replay_instrument_when_perp_symbol_and_usdm_capture_then_linear_perp_instrument() -> None:
    from mmbot.wiring import replay_instrument

    settings = load_settings(str(PROFILE), environ={})
    inst = replay_instrument(settings, [str(USDM)])
    assert inst.kind == "linear_perp" and inst.venue_symbol == "BTCUSDT" and inst.settle == "USDT"


def test_replay_instrument_when_perp_symbol_and_spot_capture_then_refused() -> None:
    from mmbot.wiring import replay_instrument

    settings = load_settings(str(PROFILE), environ={})
    with pytest.raises(DataMismatch, match="spot capture, but BTC/USDT:USDT is a linear_perp"):
        replay_instrument(settings, [str(DATA / "btcusdt_20240808.gz")])


def test_replay_instrument_when_linear_symbol_and_coinm_capture_then_refused() -> None:
    from mmbot.wiring import replay_instrument

    settings = load_settings(str(PROFILE), environ={})
    with pytest.raises(DataMismatch, match="COIN-M futures capture"):
        replay_instrument(settings, [str(p) for p in COINM])


def test_backtest_when_perp_usdm_profile_on_usdm_capture_then_no_gaps_and_fills_on_both_sides() -> None:
    from mmbot.cli.backtest import run_l2_backtest

    settings = load_settings(str(PROFILE), environ={}, overrides={"audit": {"enabled": False}})
    summary, _ = run_l2_backtest(settings, [str(USDM)])
    assert summary["book_gaps"] == 0 and summary["data_sequence_gaps"] == 0 and summary["snapshot_requests"] == 0
    assert summary["bid_fills"] > 0 and summary["ask_fills"] > 0 and summary["market_data_rejections"] == {}
    assert summary["symbol"] == "BTC/USDT:USDT" and summary["engine_book_synced"] is True and summary["ignored_trades"] == {}
    assert summary["futures"]["kind"] == "linear_perp" and summary["futures"]["settle"] == "USDT" and summary["pnl_ccy"] == "USDT"


def test_emulate_and_live_when_perpetual_symbol_then_exit_2_naming_what_is_not_built(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    out = []
    for args in (["emulate", "--config", str(PROFILE), "--duration", "1"],
                 ["run", "--config", str(PROFILE), "--duration", "1"]):
        proc = subprocess.run([sys.executable, "-m", "mmbot", *args], env={**env, "MMBOT_DATA__SOURCE": "live"},
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        out.append(proc)
    emulate, live = out
    assert emulate.returncode == 2 and "the emulator" in emulate.stderr and "BTC/USDT:USDT" in emulate.stderr
    assert live.returncode == 2 and "live market data" in live.stderr and "Traceback" not in live.stderr
