"""Metrics derived from a real engine on the bundled capture, read back from the exposition text."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mmbot.config.settings import load_settings
from mmbot.domain.engine_events import FillBooked, OrderPlaced
from mmbot.domain.orders import Side
from mmbot.domain.risk import RiskReason, VenueOutcome
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
from mmbot.observability import counters
from mmbot.observability.metrics import DENY_REASONS, ORDER_SERIES, Metrics, SymbolMetrics
from mmbot.portfolio.attribution import ATTRIBUTION_PARTS
from mmbot.runtime.simulated import Kernel as Built
from mmbot.wiring import build_replay
from tests.conftest import CAPTURE

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(metrics: Metrics) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(all_samples: Samples, name: str, **labels: str) -> float:
    return all_samples[(name, frozenset(labels.items()))]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def build(events: int = 0, **env: str) -> tuple[Built, Metrics, SymbolMetrics, Clock]:
    built = build_replay(load_settings(environ=env), "20260101T000000Z-test0000")
    clock = Clock()
    metrics = Metrics(version="9.9.9", config_hash="cafe", mode="paper", clock=clock, process_metrics=False)
    view = metrics.add_engine(built.engine, last_event_wall=clock)
    engine = built.engine
    parser = CaptureParser([built.instrument])
    for event in itertools.islice(read_events(CAPTURE, parser, ReadStats(), lambda *_: None), events):
        built.session.step(event)
        events = engine.drain_events()
        if events:
            view.on_events(events)
    return built, metrics, view, clock


def fill_event(side: str, price: int, qty: int) -> FillBooked:
    return FillBooked(ts_ns=0, fill_index=0, client_order_id="c1", side=side, price=price, qty=qty, leaves=0, fee="0",
                      liquidity="maker", reason="trade_through", queue_ahead=0, position=0)


def test_metrics_when_started_every_known_label_value_exists_at_zero() -> None:
    _, metrics, _, _ = build()
    s = samples(metrics)
    sym = "BTC/USDT"

    for reason in RiskReason:
        assert value(s, "mmbot_risk_reason_active", symbol=sym, reason=reason.value) == 0
        assert value(s, "mmbot_risk_denials_total", symbol=sym, reason=reason.value) == 0
    for reason in DENY_REASONS:
        assert value(s, "mmbot_risk_denials_total", symbol=sym, reason=reason) == 0
    for action, result in ORDER_SERIES:
        assert value(s, "mmbot_orders_total", symbol=sym, action=action, result=result) == 0
    for side in ("buy", "sell"):
        assert value(s, "mmbot_fills_total", symbol=sym, side=side) == 0
    for kind in VenueOutcome:
        for symbol in (sym, "account"):
            assert value(s, "mmbot_exchange_errors_total", symbol=symbol, kind=kind.value) >= 0
    for side in ("bid", "ask"):
        assert math.isnan(value(s, "mmbot_quote_price_quote", symbol=sym, side=side))
        assert math.isnan(value(s, "mmbot_market_best_price_quote", symbol=sym, side=side))
    assert value(s, "mmbot_quoting", symbol=sym) == 0
    assert value(s, "mmbot_traded_volume_base_total", symbol=sym) == 0
    assert value(s, "mmbot_pnl_realized_quote", symbol=sym) == 0
    for horizon in ("1s", "5s", "30s"):
        assert value(s, "mmbot_markout_bps_count", symbol=sym, horizon=horizon) == 0
    assert value(s, "mmbot_tick_to_quote_seconds_count", symbol=sym) == 0
    assert value(s, "mmbot_websocket_reconnects_total", symbol=sym) >= 0
    assert value(s, "mmbot_kill_switch_engaged", symbol=sym) == 0
    assert value(s, "mmbot_risk_state", symbol=sym) == 0
    assert value(s, "mmbot_build_info", version="9.9.9", config_hash="cafe", mode="paper") == 1
    assert math.isnan(value(s, "mmbot_quoted_spread_bps", symbol=sym))
    assert ("mmbot_journal_records_total", frozenset()) in s
    assert ("mmbot_event_loop_lag_seconds", frozenset()) in s


def test_metrics_when_replay_runs_counters_match_the_engine_and_ledger() -> None:
    built, metrics, _, _ = build(events=40_000)
    engine = built.engine
    s = samples(metrics)
    sym = {"symbol": "BTC/USDT"}
    mid = engine.mid_ticks * 0.01
    pos = engine.ledger.position_lots * 1e-8

    assert engine.ledger.fills > 0
    assert value(s, "mmbot_book_updates_total", **sym) == engine.book_updates
    assert value(s, "mmbot_trades_seen_total", **sym) == engine.trades_seen
    assert value(s, "mmbot_quotes_total", **sym) == engine.quotes
    assert value(s, "mmbot_events_total", **sym) == engine.events_count
    assert value(s, "mmbot_fills_total", side="buy", **sym) == engine.ledger.bid_fills
    assert value(s, "mmbot_fills_total", side="sell", **sym) == engine.ledger.ask_fills
    assert value(s, "mmbot_orders_total", action="place", result="sent", **sym) == engine.om.placed
    assert value(s, "mmbot_orders_total", action="cancel", result="confirmed", **sym) == engine.om.cancelled
    assert value(s, "mmbot_position_base", **sym) == pytest.approx(pos)
    assert value(s, "mmbot_mid_price_quote", **sym) == pytest.approx(mid)
    assert value(s, "mmbot_notional_quote", **sym) == pytest.approx(pos * mid)
    assert value(s, "mmbot_pnl_net_quote", **sym) == pytest.approx(float(engine.net_pnl()), abs=0.01)
    assert value(s, "mmbot_fees_paid_quote", **sym) == pytest.approx(float(engine.ledger.fees_paid))
    assert value(s, "mmbot_open_orders", **sym) == engine.om.open_count()
    assert value(s, "mmbot_book_synced", **sym) == 1
    assert value(s, "mmbot_markout_bps_count", horizon="1s", **sym) == engine.markouts.count(1_000_000_000)
    assert value(s, "mmbot_markout_mean_bps", horizon="1s", **sym) == pytest.approx(engine.markouts.mean_bps(1_000_000_000))
    assert value(s, "mmbot_risk_max_inventory_base", **sym) == pytest.approx(0.05)
    # Our quotes, the market's BBO, volume, realised PnL, quoting.
    ours = {o.side.name: o for o in engine.om.orders.values()}
    bid, ask = engine.quoted_bid, engine.quoted_ask
    if bid is not None:
        assert value(s, "mmbot_quote_price_quote", side="bid", **sym) == pytest.approx(bid * 0.01)
    assert value(s, "mmbot_market_best_price_quote", side="bid", **sym) == pytest.approx(engine.book.best_bid() * 0.01)
    assert value(s, "mmbot_market_best_price_quote", side="ask", **sym) == pytest.approx(engine.book.best_ask() * 0.01)
    assert value(s, "mmbot_market_best_price_quote", side="bid", **sym) < value(s, "mmbot_market_best_price_quote", side="ask", **sym)
    if ask is not None:
        assert value(s, "mmbot_quote_price_quote", side="ask", **sym) == pytest.approx(ask * 0.01)
    assert value(s, "mmbot_traded_volume_base_total", **sym) == pytest.approx(engine.ledger.volume_lots * 1e-8)
    assert value(s, "mmbot_traded_volume_quote_total", **sym) == pytest.approx(float(engine.ledger.volume_notional))
    realized = value(s, "mmbot_pnl_realized_quote", **sym)
    assert realized == pytest.approx(float(engine.ledger.realized_pnl()))
    assert realized + value(s, "mmbot_pnl_unrealized_quote", **sym) == pytest.approx(value(s, "mmbot_pnl_net_quote", **sym), abs=1e-6)
    live = any(o.status.name == "OPEN" for o in ours.values())
    assert value(s, "mmbot_quoting", **sym) == (1 if live else 0)


def test_unrealized_pnl_when_position_built_and_partly_closed_uses_average_cost() -> None:
    built, _, view, _ = build()
    engine = built.engine
    ledger = engine.ledger
    fills = [("BUY", 100_00, 2000), ("BUY", 102_00, 2000), ("SELL", 110_00, 1000)]
    events = []
    for side, price, qty in fills:
        ledger.apply_fill(Side[side], price, qty, Decimal(0))
        events.append(fill_event(side, price, qty))

    view.on_events(events)
    unrealized = view.unrealized_pnl(105_00.0)

    # average entry 101.00 for 3000 lots left; mark 105.00: 3000 lots x 4.00 x 1e-8 BTC
    assert unrealized == pytest.approx(3000 * 1e-8 * 4.00)
    # gross = realised (1000 lots x 9.00) + unrealised
    assert float(ledger.gross_pnl(105_00)) == pytest.approx(1000 * 1e-8 * 9.00 + unrealized)


def test_tick_to_quote_when_batch_has_order_action_observes_latency_else_not() -> None:
    _, metrics, view, _ = build()
    place = OrderPlaced(ts_ns=0, client_order_id="c1", side="BUY", price=100, qty=1000, level=0, taker=False, reason="quote")
    fill = fill_event("BUY", 100, 1000)

    view.on_events([fill], md_receipt_ns=1_000, step_done_ns=51_000)
    view.on_events([place], md_receipt_ns=0, step_done_ns=51_000)  # not a market-data step (operator action)
    view.on_events([place, fill], md_receipt_ns=1_000, step_done_ns=41_000)
    s = samples(metrics)

    assert value(s, "mmbot_tick_to_quote_seconds_count", symbol="BTC/USDT") == 1
    assert value(s, "mmbot_tick_to_quote_seconds_sum", symbol="BTC/USDT") == pytest.approx(40e-6)
    assert value(s, "mmbot_tick_to_quote_seconds_bucket", symbol="BTC/USDT", le="5e-05") == 1
    assert value(s, "mmbot_tick_to_quote_seconds_bucket", symbol="BTC/USDT", le="2.5e-05") == 0
    assert value(s, "mmbot_orders_total", symbol="BTC/USDT", action="place", result="sent") == 2


def test_kill_switch_when_engaged_gauges_show_halted_and_reason() -> None:
    built, metrics, _, _ = build(events=5_000)
    engine = built.engine

    built.session.operator(engine.set_kill_switch(True, built.session.now_ns))
    s = samples(metrics)

    assert value(s, "mmbot_kill_switch_engaged", symbol="BTC/USDT") == 1
    assert value(s, "mmbot_risk_state", symbol="BTC/USDT") == 2
    assert value(s, "mmbot_risk_reason_active", symbol="BTC/USDT", reason="KILL_SWITCH") == 1
    assert value(s, "mmbot_risk_reason_active", symbol="BTC/USDT", reason="MAX_DRAWDOWN") == 0


def test_book_staleness_when_no_depth_update_grows_with_wall_time() -> None:
    _, metrics, _, clock = build(events=100)
    fresh = value(samples(metrics), "mmbot_book_staleness_seconds", symbol="BTC/USDT")

    clock.now += 12.5
    stale = value(samples(metrics), "mmbot_book_staleness_seconds", symbol="BTC/USDT")

    assert fresh == 0
    assert stale == pytest.approx(12.5)


def test_process_counters_when_bumped_appear_and_unknown_kinds_stay_bounded() -> None:
    _, metrics, _, _ = build()
    before = samples(metrics)

    counters.journal_records_written(3)
    counters.websocket_reconnected("BTC/USDT")
    counters.exchange_error(VenueOutcome.RATE_LIMITED, "BTC/USDT")
    counters.exchange_error("something new", "BTC/USDT")
    counters.exchange_error(VenueOutcome.VENUE_DOWN)  # an account-wide call (user stream, balances)
    after = samples(metrics)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mmbot_journal_records_total") == 3
    assert delta("mmbot_websocket_reconnects_total", symbol="BTC/USDT") == 1
    assert delta("mmbot_exchange_errors_total", symbol="BTC/USDT", kind="rate_limited") == 1
    assert delta("mmbot_exchange_errors_total", symbol="BTC/USDT", kind="unknown") == 1
    assert delta("mmbot_exchange_errors_total", symbol="account", kind="venue_down") == 1
    assert delta("mmbot_exchange_errors_total", symbol="account", kind="rate_limited") == 0
    assert not any(("kind", "something new") in labels for _, labels in after)


def test_unrealized_pnl_when_position_restored_before_start_measures_from_its_cost() -> None:
    built = build_replay(load_settings(environ={}), "20260101T000000Z-test0000")
    built.engine.ledger.restore(5000, Decimal("-3.05"), Decimal(0))  # as journal recovery does, before metrics start
    metrics = Metrics(version="x", config_hash="y", mode="paper", process_metrics=False)
    view = metrics.add_engine(built.engine)

    at_cost = view.unrealized_pnl(61_000_00.0)  # 3.05 USDT for 0.00005 BTC: entry 61,000.00
    later = view.unrealized_pnl(61_010_00.0)

    assert at_cost == 0.0
    assert later == pytest.approx(5000 * 1e-8 * 10.00)


def test_avg_entry_and_pnl_gauges_when_replayed_then_equal_the_ledgers_at_the_mark() -> None:
    built, metrics, view, _ = build(events=40_000)
    engine = built.engine
    ledger = engine.ledger
    if ledger.position_lots == 0:  # leave a position open so the entry is defined
        ledger.apply_fill(Side.BUY, engine.mark_ticks(), 1000, Decimal(0))
    s = samples(metrics)
    sym = {"symbol": "BTC/USDT"}
    mark = engine.mark_ticks()
    assert ledger.avg_entry_ticks is not None

    assert value(s, "mmbot_avg_entry_price_quote", **sym) == float(ledger.avg_entry_ticks) * 0.01
    assert value(s, "mmbot_pnl_unrealized_quote", **sym) == float(ledger.unrealized_pnl(mark))
    assert value(s, "mmbot_pnl_net_quote", **sym) == pytest.approx(float(engine.net_pnl()), abs=1e-9)
    assert view.avg_entry_price() == float(ledger.avg_entry_ticks) * 0.01


def test_pnl_attribution_gauges_when_replayed_then_parts_sum_to_net_pnl_gauge() -> None:
    built, metrics, _view, _ = build(events=40_000)
    engine = built.engine
    assert engine.ledger.fills > 0
    s = samples(metrics)
    sym = {"symbol": "BTC/USDT"}

    parts = {p: value(s, "mmbot_pnl_attribution_quote", part=p, **sym) for p in ATTRIBUTION_PARTS}

    assert sum(parts.values()) == pytest.approx(value(s, "mmbot_pnl_net_quote", **sym), abs=1e-9)
    assert parts["spread_capture"] == float(engine.attribution.result(engine.mark_ticks()).spread_capture)


def test_quoting_when_kill_switch_engaged_then_0_while_process_metrics_stay() -> None:
    built, metrics, _, _ = build(events=40_000)
    engine = built.engine
    sym = {"symbol": "BTC/USDT"}
    before = samples(metrics)
    assert any(o.status.name == "OPEN" for o in engine.om.orders.values())
    assert value(before, "mmbot_quoting", **sym) == 1

    built.session.operator(engine.raise_reason(RiskReason.KILL_SWITCH, built.session.now_ns, "test"))
    after = samples(metrics)

    assert value(after, "mmbot_kill_switch_engaged", **sym) == 1
    assert value(after, "mmbot_quoting", **sym) == 0
    assert math.isnan(value(after, "mmbot_quote_price_quote", side="bid", **sym))
    assert value(after, "mmbot_market_best_price_quote", side="bid", **sym) > 0  # the market is still there


def test_metrics_when_inverse_perpetual_crosses_funding_then_margin_and_funding_series_match_the_engine() -> None:
    from pathlib import Path

    from mmbot.wiring import capture_paths

    root = Path(__file__).resolve().parents[2]
    settings = load_settings(str(root / "config" / "profiles" / "perp-coinm.yaml"), environ={},
                             overrides={"audit": {"enabled": False}, "risk": {"max_net_delta": "0.5"}})
    built = build_replay(settings, "20260101T000000Z-test0032")
    metrics = Metrics(version="9.9.9", config_hash="cafe", mode="paper", clock=Clock(), process_metrics=False)
    view = metrics.add_engine(built.engine, last_event_wall=Clock())
    engine = built.engine
    for event in read_events(capture_paths(settings), CaptureParser([built.instrument]), ReadStats(), lambda *_: None):
        built.session.step(event)
        batch = engine.drain_events()
        if batch:
            view.on_events(batch)
        if engine.ledger.funding_events and engine.ledger.position_lots:
            break
    s = samples(metrics)
    sym = {"symbol": "BTC/USD:BTC"}
    state = engine.margin()
    assert state is not None and state.margin_ratio is not None and engine.ledger.funding_events == 1
    assert value(s, "mmbot_margin_ratio", **sym) == pytest.approx(float(state.margin_ratio))
    assert value(s, "mmbot_margin_used_settle", **sym) == pytest.approx(float(state.margin_used))
    assert value(s, "mmbot_funding_paid_settle", **sym) == float(engine.ledger.funding_paid) != 0
    assert value(s, "mmbot_net_delta_base", **sym) == pytest.approx(
        float(engine.ledger.position_lots * 100 / (engine.mid_ticks * 0.1)), rel=1e-3)
