"""Watchdog rules, the engine's market-data watchdogs, and feed faults on the bundled capture."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mmbot.cli.backtest import run_l2_backtest
from mmbot.config.settings import load_settings
from mmbot.domain.events import BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import CancelAll, OrderAccepted, PlaceOrder, Quote, Side
from mmbot.domain.risk import RiskReason, TradingState
from mmbot.engine.engine import Engine, EngineConfig
from mmbot.engine.session import parse_faults
from mmbot.marketdata.book import L2Book
from mmbot.risk.gate import RiskConfig, RiskGate
from mmbot.risk.watchdog import SilenceWatchdog, ThresholdWatchdog, check_threshold
from mmbot.strategy.model import Decision, MarketContext

MS = 1_000_000
MID = 6_100_000
SIZE = 1_000_000


class TwoSided:
    def on_trade(self, trade: Trade) -> None:
        return None

    def on_mid(self, now_ns: int, mid_ticks: float) -> None:
        return None

    def decide(self, ctx: MarketContext) -> Decision:
        return Decision(quotes=(
            Quote(side=Side.BUY, price_ticks=ctx.best_bid - 5, qty_lots=SIZE),
            Quote(side=Side.SELL, price_ticks=ctx.best_ask + 5, qty_lots=SIZE),
        ))


def quoting_engine(instrument: Instrument, **config: Any) -> tuple[Engine, L2Book]:
    book = L2Book("BTC/USDT")
    book.apply_snapshot(BookSnapshot("BTC/USDT", 0, 100, ((MID - 1, 10**9),), ((MID + 1, 10**9),)))
    gate = RiskGate(RiskConfig(max_inventory_lots=5 * SIZE, calm_period_ms=1000), instrument)
    engine = Engine(instrument, book, TwoSided(), gate, EngineConfig(min_requote_interval_ms=0, **config))
    return engine, book


def delta(book: L2Book, now: int) -> BookDelta:
    uid = book.last_update_id + 1
    d = BookDelta("BTC/USDT", now, now, uid, uid, ((MID - 1, 10**9),), ())
    book.apply_delta(d)
    return d


def test_silence_watchdog_when_never_beaten_then_not_tripped_and_trips_after_limit() -> None:
    rule = SilenceWatchdog(RiskReason.STALE_BOOK, limit_ms=100)

    before = rule.is_tripped(10**12)
    rule.beat(0)
    at_limit = rule.is_tripped(100 * MS)
    past = rule.is_tripped(100 * MS + 1)

    assert (before, at_limit, past) == (False, False, True)


def test_check_threshold_when_lag_high_then_raises_and_clears_after_calm(instrument: Instrument) -> None:
    gate = RiskGate(RiskConfig(max_inventory_lots=SIZE, calm_period_ms=200), instrument)
    rule = ThresholdWatchdog(RiskReason.LOOP_LAG, limit=500)

    rule.observe(800)
    raised = check_threshold(gate, rule, 0)
    rule.observe(10)
    check_threshold(gate, rule, 100 * MS)
    during_calm = gate.state
    cleared = check_threshold(gate, rule, 300 * MS)

    assert raised is not None and raised.new_state is TradingState.HALTED and "800 ms > 500 ms" in raised.cause
    assert during_calm is TradingState.HALTED
    assert cleared is not None and cleared.new_state is TradingState.ACTIVE
    assert rule.trips == 1 and rule.worst_value == 800


def test_engine_on_timer_when_book_stale_then_halts_cancels_and_resumes_after_update_and_calm(instrument: Instrument) -> None:
    engine, book = quoting_engine(instrument, stale_book_ms=1000)
    placed = engine.on_market(delta(book, 1 * MS), 1 * MS)

    stale_cmds = engine.on_timer(1500 * MS)
    halted = engine.gate.state
    reasons = engine.gate.reasons
    engine.on_timer(1600 * MS)
    engine.om.forget_all()  # the venue confirmed the cancel-all
    during_calm = engine.on_market(delta(book, 1700 * MS), 1700 * MS)
    resumed = engine.on_market(delta(book, 2800 * MS), 2800 * MS)

    assert len([c for c in placed if isinstance(c, PlaceOrder)]) == 2
    assert halted is TradingState.HALTED and reasons == ("STALE_BOOK",)
    assert [type(c) for c in stale_cmds] == [CancelAll]
    assert during_calm == []
    assert engine.gate.state is TradingState.ACTIVE
    assert len([c for c in resumed if isinstance(c, PlaceOrder)]) == 2
    risk_events = [e.payload for e in engine.drain_events() if e.kind == "risk"]
    assert [(e["old"], e["new"]) for e in risk_events] == [("ACTIVE", "HALTED"), ("HALTED", "ACTIVE")]
    assert engine.gate.denials == {}


def test_engine_on_timer_when_no_message_at_all_then_feed_silent(instrument: Instrument) -> None:
    engine, book = quoting_engine(instrument, stale_book_ms=10**9, feed_silent_ms=2000)
    engine.on_market(delta(book, 1 * MS), 1 * MS)
    engine.on_market(Trade("BTC/USDT", 1500 * MS, 1500 * MS, 1, MID, 1000, False), 1500 * MS)

    quiet = engine.on_timer(3000 * MS)
    silent = engine.on_timer(3600 * MS)

    assert quiet == []
    assert engine.gate.reasons == ("FEED_SILENT",)
    assert [type(c) for c in silent] == [CancelAll]


def test_engine_place_when_halted_then_denial_events_name_the_reason(instrument: Instrument) -> None:
    engine, book = quoting_engine(instrument)
    engine.on_market(delta(book, 1 * MS), 1 * MS)
    for o in list(engine.om.orders.values()):
        engine.on_exec(OrderAccepted(client_order_id=o.client_order_id, symbol="BTC/USDT", ts_ns=2 * MS), 2 * MS)

    engine.gate.raise_reason(RiskReason.MANUAL, 3 * MS, "test")
    # A decision path that bypasses the engine's own HALTED shortcut: the gate still says no.
    denied = engine._place([Quote(side=Side.BUY, price_ticks=MID - 50, qty_lots=SIZE)], 4 * MS, (MID - 1, MID + 1))

    assert denied == []
    deny = [e.payload for e in engine.drain_events() if e.kind == "deny"]
    assert deny and deny[-1]["reason"] == "HALTED" and deny[-1]["detail"] == "MANUAL"
    assert engine.gate.denials == {"HALTED": 1}


def first_capture_ts() -> int:
    from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
    from tests.conftest import CAPTURE

    parser = CaptureParser([Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")])
    return next(iter(read_events(CAPTURE, parser, ReadStats()))).ts_local_ns


def _transitions(summary: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(t["old"], t["new"], tuple(t["reasons"])) for t in summary["risk_transitions"]]


@pytest.fixture(scope="module")
def faulted_run() -> tuple[dict[str, Any], list[Any]]:
    from tests.conftest import CAPTURE

    settings = load_settings(None, environ={})
    events: list[Any] = []
    summary, _ = run_l2_backtest(settings, CAPTURE, faults=parse_faults("freeze@20:8,gap@60,garbage@90"),
                                 observers=[events.extend])
    return summary, events


def test_replay_when_feed_frozen_then_stale_book_halts_and_activity_resumes_after_data_returns(
    faulted_run: tuple[dict[str, Any], list[Any]],
) -> None:
    summary, events = faulted_run
    transitions = summary["risk_transitions"]
    halt = transitions[0]
    back = transitions[1]
    places_while_halted = [e for e in events if e.kind == "place" and halt["ts_ns"] <= e.ts_ns < back["ts_ns"]]
    places_after = [e for e in events if e.kind == "place" and e.ts_ns >= back["ts_ns"]]

    assert _transitions(summary)[:2] == [("ACTIVE", "HALTED", ("STALE_BOOK",)), ("HALTED", "ACTIVE", ())]
    # The freeze starts 20 s in; STALE_BOOK after 5 s without depth; data returns at 28 s + 1 s calm.
    first_ts = first_capture_ts()
    assert 24.9 < (halt["ts_ns"] - first_ts) / 1e9 < 25.6
    assert 28.9 < (back["ts_ns"] - first_ts) / 1e9 < 29.6
    assert places_while_halted == []
    assert places_after
    assert summary["risk_state"] == "ACTIVE" and summary["open_orders"] == 0


def test_replay_when_diff_dropped_then_book_gap_halts_until_resync(faulted_run: tuple[dict[str, Any], list[Any]]) -> None:
    summary, _ = faulted_run

    assert ("ACTIVE", "HALTED", ("BOOK_GAP",)) in _transitions(summary)
    assert summary["book_gaps"] == 1 and summary["snapshot_requests"] == 1
    assert summary["garbage_lines"] == 1
    assert summary["risk_transitions_total"] == 4


@pytest.mark.parametrize("spec", ["freeze@10", "melt@3", "gap@x", "freeze@1:0"])
def test_parse_faults_when_malformed_then_value_error(spec: str) -> None:
    with pytest.raises(ValueError, match="fault"):
        parse_faults(spec)


def test_engine_on_timer_when_limit_lowered_below_position_then_reducing_and_only_sells_go_out(instrument: Instrument) -> None:
    from dataclasses import replace

    from mmbot.domain.orders import FillReason, Liquidity, OrderFilled

    engine, book = quoting_engine(instrument)
    engine.on_market(delta(book, 1 * MS), 1 * MS)
    bid = next(o for o in engine.om.orders.values() if o.side is Side.BUY)
    engine.on_exec(OrderFilled(client_order_id=bid.client_order_id, symbol="BTC/USDT", ts_ns=2 * MS, side=Side.BUY,
                               price_ticks=bid.price_ticks, qty_lots=SIZE, leaves_lots=0, fee=Decimal(0),
                               liquidity=Liquidity.MAKER, reason=FillReason.TRADE_THROUGH), 2 * MS)

    engine.gate.config = replace(engine.gate.config, max_inventory_lots=SIZE // 2)  # what a reload does
    engine.on_timer(3 * MS)
    engine.om.forget_all()
    commands = engine.on_market(delta(book, 4 * MS), 4 * MS)

    assert engine.gate.state is TradingState.REDUCING and engine.gate.reasons == ("MAX_POSITION",)
    assert [c.side for c in commands if isinstance(c, PlaceOrder)] == [Side.SELL]
    assert engine.gate.denials == {"REDUCING": 1}
