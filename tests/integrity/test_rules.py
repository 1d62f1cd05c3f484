"""The market-data rules one by one (issue 29): hand-built messages, books and engines.

mmbot.marketdata.validate (value rules), mmbot.marketdata.capture (decoding and the
receive-time rule, what a capture holds), mmbot.marketdata.book (crossed books), the
engine's book watchdog, and the bounded time walks (session timers, the run record's
sampler). The whole-file cases are in test_regressions.py.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.config.settings import load_settings
from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, ClockJump, Trade
from mmbot.domain.risk import RiskReason, TradingState
from mmbot.errors import DataMismatch
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.capture import RateLimitedWarn, ReadStats, TimeFilter, write_metadata
from mmbot.marketdata.validate import MarketDataValidator, Rule, ValidationRules
from mmbot.research.record import SeriesRecorder
from mmbot.wiring import build_replay, replay_instrument
from tests.integrity.cases import SOURCE, source_lines, write

SYM = "BTC/USDT"
MS = 1_000_000
S = 1_000 * MS


def synced_book(policy: str = "count") -> L2Book:
    book = L2Book(SYM, on_crossed=policy)
    book.apply_snapshot(BookSnapshot(SYM, 0, 100, ((6_000_000, 10), (5_999_999, 10)), ((6_000_001, 10), (6_000_002, 10))))
    return book


def delta(first: int, last: int, bids: tuple = (), asks: tuple = ()) -> BookDelta:
    return BookDelta(SYM, 0, 0, first, last, bids, asks)


# --- value rules ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "rule"),
    [
        (delta(101, 101, bids=((-5, 10),)), Rule.PRICE_NOT_POSITIVE),
        (delta(101, 101, bids=((0, 10),)), Rule.PRICE_NOT_POSITIVE),
        (delta(101, 101, asks=((6_000_005, -1),)), Rule.QTY_NEGATIVE),
        (delta(105, 101), Rule.UPDATE_IDS_REVERSED),
        (delta(101, 101, bids=((6_000_003, 1),), asks=((6_000_003, 1),)), Rule.DIFF_SELF_CROSSED),
        (BookSnapshot(SYM, 0, 100, ((6_000_005, 1),), ((6_000_001, 1),)), Rule.SNAPSHOT_CROSSED),
        (BestBidAsk(SYM, 0, 101, 6_000_002, 1, 6_000_001, 1), Rule.TICKER_CROSSED),
        (BestBidAsk(SYM, 0, 101, 6_100_000, 1, 6_100_001, 1), Rule.TICKER_DEVIATION),  # 1.7 % away
        (Trade(SYM, 0, 0, 1, 0, 10, True), Rule.PRICE_NOT_POSITIVE),
        (Trade(SYM, 0, 0, 1, 6_000_000, 0, True), Rule.QTY_NEGATIVE),
        (Trade(SYM, 0, 0, 1, 5_000_000, 10, True), Rule.TRADE_DEVIATION),
    ],
    ids=lambda v: v.value if isinstance(v, Rule) else type(v).__name__,
)
def test_validator_when_message_breaks_a_rule_then_rejected_under_its_name(event: object, rule: Rule) -> None:
    validator = MarketDataValidator()
    assert validator.check(event, synced_book()) is False  # type: ignore[arg-type]
    assert validator.counts == {rule.value: 1}


def test_validator_when_ticker_crosses_the_stale_depth_opposite_side_then_accepted() -> None:
    """Depth arrives every 100 ms, the ticker in real time: crossing the stale depth is normal."""
    validator = MarketDataValidator()
    assert validator.check(BestBidAsk(SYM, 0, 101, 6_000_003, 1, 6_000_004, 1), synced_book())
    assert validator.counts == {}


def test_validator_when_u_jumps_far_then_gap_not_baseline_and_a_chained_jump_is_a_new_baseline() -> None:
    v = MarketDataValidator(ValidationRules(max_update_id_jump=1000))
    assert v.check(delta(1, 10))
    assert not v.check(delta(11, 10**30))  # one absurd u: rejected, the baseline stays
    assert v.check(delta(11, 20))  # the stream goes on from the old baseline
    assert not v.check(delta(5_000, 5_010))  # a real jump is rejected once ...
    assert v.check(delta(5_011, 5_020))  # ... and accepted when the next diff chains from it
    assert v.counts == {"update_id_jump": 2} and v.update_id_discontinuities == 1


# --- decoding and time ---------------------------------------------------------------
def _times(ts: list[int], jump_ns: int = 10 * S) -> tuple[list[tuple[int, int]], ReadStats]:
    stats = ReadStats()
    out = TimeFilter(stats, lambda e, f: None, jump_ns)(iter((t, b"") for t in ts))
    return [(t, j) for t, _, j in out], stats


def test_time_filter_when_one_line_jumps_far_then_dropped_and_no_line_becomes_backwards() -> None:
    base = [1_000 * S + i * MS for i in range(40)]
    for bad in (base[0] + 3600 * S, base[0] + 30 * 86_400 * S, 1):
        ts = [*base[:20], bad, *base[20:]]
        out, stats = _times(ts)
        assert [t for t, _ in out] == base  # nothing clamped, nothing shifted
        assert stats.rejections == {"clock_outlier": 1} and stats.backwards_ts == 0


def test_time_filter_when_the_first_or_last_line_is_an_outlier_then_dropped() -> None:
    base = [1_000 * S + i * MS for i in range(30)]
    out, stats = _times([5, *base])
    assert [t for t, _ in out] == base and stats.rejections == {"clock_outlier": 1}
    out, stats = _times([*base, base[-1] + 86_400 * S])
    assert [t for t, _ in out] == base and stats.rejections == {"clock_outlier": 1}


def test_time_filter_when_the_file_really_jumps_then_kept_marked_and_rebased_going_back() -> None:
    a = [1_000 * S + i * MS for i in range(20)]
    later = [a[-1] + 3600 * S + i * MS for i in range(20)]
    out, stats = _times([*a, *later])
    assert [t for t, _ in out] == [*a, *later] and stats.clock_discontinuities == 1
    assert [j for _, j in out].count(3600 * S) == 1  # the marker sits on the first line after the jump
    earlier = [a[0] - 3600 * S + i * MS for i in range(20)]
    out, stats = _times([*a, *earlier])
    times = [t for t, _ in out]
    assert times == sorted(times) and len(times) == 40  # re-based: the replay clock never goes back
    assert times[20] == a[-1] + MS and stats.clock_discontinuities == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 2**63 - 1), min_size=1, max_size=60))
def test_time_filter_property_output_is_monotonic_and_never_longer(ts: list[int]) -> None:
    out, _ = _times(ts)
    times = [t for t, _ in out]
    assert times == sorted(times) and len(times) <= len(ts)


def test_rate_limited_warn_when_80000_bad_lines_then_a_dozen_log_lines() -> None:
    seen: list[int] = []
    warn = RateLimitedWarn(lambda event, fields: seen.append(fields["count"]))
    for _ in range(80_000):
        warn("capture_bad_line", {"rule": "malformed"})
    assert seen == [1, 2, 3, 10, 100, 1_000, 10_000]


# --- books ---------------------------------------------------------------------------
def test_book_resync_when_a_diff_crosses_then_not_believed_until_a_snapshot() -> None:
    book = synced_book("resync")
    assert book.apply_delta(delta(101, 101, bids=((6_000_001, 5),))) is ApplyResult.CROSSED
    assert not book.is_synced and book.crossed_count == 1
    book.apply_snapshot(BookSnapshot(SYM, 0, 105, ((6_000_000, 1),), ((6_000_001, 1),)))
    assert book.is_synced and not book.is_crossed()


def test_book_heal_when_new_levels_cross_older_ones_then_the_older_are_removed() -> None:
    book = synced_book("heal")
    assert book.apply_delta(delta(101, 101, bids=((6_000_001, 5),))) is ApplyResult.APPLIED
    assert book.best_bid() == 6_000_001 and book.best_ask() == 6_000_002 and book.healed_levels == 1
    book.apply_delta(delta(102, 102, asks=((5_999_000, 5),)))  # newest wins: both bids go
    assert not book.is_crossed() and book.best_ask() == 5_999_000 and book.best_bid() is None


# --- engine and session ----------------------------------------------------------------
def _replay_built():
    settings_ = load_settings(None, environ={"MMBOT_AUDIT__ENABLED": "false"})
    return build_replay(settings_, "20260101T000000Z-rules000")


def test_engine_when_only_stale_diffs_arrive_then_stale_book_fires() -> None:
    """Main: every received diff counted as a sign of life, so a frozen book never tripped."""
    built = _replay_built()
    session, engine = built.session, built.engine
    t0 = 1_000 * S
    session.step(BookSnapshot(SYM, t0, 100, ((6_000_000, 10),), ((6_000_002, 10),)))
    for i in range(1, 80):  # 8 s of diffs that never move the book (u <= lastUpdateId)
        session.step(BookDelta(SYM, t0 + i * 100 * MS, 0, 50, 60, ((6_000_000, 11),), ()))
    assert engine.gate.has(RiskReason.STALE_BOOK)


def test_session_when_time_jumps_a_month_then_timers_do_not_walk_it_and_the_book_resyncs() -> None:
    built = _replay_built()
    session, engine = built.session, built.engine
    t0 = 1_000 * S
    session.step(BookSnapshot(SYM, t0, 100, ((6_000_000, 10),), ((6_000_002, 10),)))
    session.step(delta(101, 101, bids=((6_000_000, 12),))._replace(ts_local_ns=t0 + MS))
    calls = 0
    original = engine.on_timer

    def counting(now_ns: int) -> list:
        nonlocal calls
        calls += 1
        return original(now_ns)

    engine.on_timer = counting  # type: ignore[method-assign]
    later = t0 + 30 * 86_400 * S
    session.step(ClockJump(later, later - t0))
    session.step(delta(102, 102, bids=((6_000_000, 13),))._replace(ts_local_ns=later))
    assert calls <= 20  # not 26 million (one per 100 ms)
    assert engine.gate.has(RiskReason.BOOK_GAP) and engine.gate.state is TradingState.HALTED
    session.drain_until(later + 2 * S)  # the snapshot answer comes, the calm period passes
    session.step(delta(103, 103, bids=((6_000_000, 14),))._replace(ts_local_ns=later + 2 * S))
    assert engine.book.is_synced and not engine.gate.has(RiskReason.BOOK_GAP)


def test_series_recorder_when_time_jumps_a_month_then_a_bounded_number_of_samples() -> None:
    built = _replay_built()
    rec = SeriesRecorder(built.engine, interval_ms=1000, max_inventory=1.0)
    rec.advance(1_000 * S)
    rec.advance(1_000 * S + 30 * 86_400 * S)
    assert len(rec.cols["ts_ns"]) <= 100


# --- what a capture holds --------------------------------------------------------------
def _capture(tmp_path: Path, n: int = 3000) -> Path:
    return write(tmp_path / "head.gz", list(source_lines()[:n]))


def test_replay_instrument_when_metadata_names_the_rules_then_they_win_over_the_config(tmp_path: Path) -> None:
    capture = _capture(tmp_path)
    write_metadata(capture, {"instruments": {SYM: {"tick_size": "0.01", "step_size": "0.00001", "min_notional": "7"}}})
    coarse = load_settings(None, environ={"MMBOT_INSTRUMENT__TICK_SIZE": "1"})
    inst = replay_instrument(coarse, [str(capture)])
    assert str(inst.tick_size) == "0.01" and str(inst.min_notional) == "7"


def test_replay_instrument_when_metadata_tick_contradicts_the_data_then_exit_2_naming_the_price(tmp_path: Path) -> None:
    capture = _capture(tmp_path)
    write_metadata(capture, {"instruments": {SYM: {"tick_size": "1"}}})
    with pytest.raises(DataMismatch, match=r"tick_size 1 .* price 6\d+\.\d+ at line \d+") as err:
        replay_instrument(load_settings(None, environ={}), [str(capture)])
    assert err.value.exit_code == 2


def test_replay_instrument_when_step_contradicts_the_trades_then_exit_2(tmp_path: Path) -> None:
    capture = _capture(tmp_path)
    with pytest.raises(DataMismatch, match=r"step_size 0\.01 .* trade size"):
        replay_instrument(load_settings(None, environ={"MMBOT_INSTRUMENT__STEP_SIZE": "0.01"}), [str(capture)])


def test_replay_instrument_when_one_stray_line_names_another_symbol_then_still_accepted(tmp_path: Path) -> None:
    lines = list(source_lines()[:3000])
    lines[1500] = lines[1500].replace(b"BTCUSDT", b"ETHUSDT")
    capture = write(tmp_path / "stray.gz", lines)
    assert replay_instrument(load_settings(None, environ={}), [str(capture)]).symbol == SYM


def test_usdm_capture_when_replayed_then_never_with_the_spot_sync_rule(tmp_path: Path) -> None:
    """Until futures are supported (the perps issue) a futures capture is refused; when
    they are, this must still hold: the spot rule (U == previous u + 1) is never applied."""
    from tests.integrity.cases import USDM_HEAD

    with pytest.raises(DataMismatch, match="USD-M futures") as err:
        replay_instrument(load_settings(None, environ={}), [str(USDM_HEAD)])
    assert "spot sync rule" in str(err.value)
    with gzip.open(USDM_HEAD, "rb") as fh:
        first = orjson.loads(fh.readline().split(b" ", 1)[1])
    assert "pu" in first["data"]  # the chain field the spot rule would ignore


def test_source_file_is_the_bundled_capture() -> None:
    assert SOURCE.name == "btcusdt_20240808.gz" and len(source_lines()) == 41_249


# --- the live path: the same rules ------------------------------------------------------
async def test_live_feed_when_messages_break_rules_then_the_same_validator_drops_and_counts_them() -> None:
    from mmbot.domain.instrument import Instrument
    from mmbot.observability import counters
    from tests.conftest import live_node

    settings_ = load_settings(None, environ={}, overrides={"data": {"source": "live"}, "audit": {"enabled": False},
                                                             "metrics": {"enabled": False}})
    runner: Any = live_node(settings_, "20260101T000000Z-live0029", observers=False)
    inst = Instrument.from_symbol(SYM, tick_size="0.01", step_size="0.00001", min_notional="5")
    runner.open_lanes({SYM: inst})
    slot = runner.lanes[SYM]
    resyncs: list[str] = []
    runner.source.feed.request_resync = resyncs.append

    await runner.on_item(BookSnapshot(SYM, 1, 100, ((6_000_000, 10),), ((6_000_002, 10),)))
    await runner.on_item(delta(101, 101, bids=((-1, 5),)))  # negative price: dropped
    await runner.on_item(BestBidAsk(SYM, 2, 102, 6_000_003, 1, 6_000_001, 1))  # crossed ticker: dropped
    await runner.on_item(delta(101, 101, bids=((6_000_002, 5),)))  # crosses the book: not believed

    assert slot.market_data_rejections() == {"crossed_book": 1, "price_not_positive": 1, "ticker_crossed": 1}
    # Paper: the engine's book is not believed and resyncs from the venue's (which healed),
    # as on a replay; the feed itself is fine, so it is not asked to re-snapshot.
    assert resyncs == [] and not slot.book.is_synced
    assert counters.market_data_rejections()[(SYM, "ticker_crossed")] == 1  # what /metrics exports
    assert slot.kernel is not None
    slot.kernel.session.drain_until(slot.kernel.session.now_ns + 10**9)  # the snapshot answer arrives
    assert slot.book.is_synced and not slot.book.is_crossed()
