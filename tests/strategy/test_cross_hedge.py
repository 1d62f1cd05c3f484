"""Cross-instrument hedging (issue 32): quote spot BTC/USDT, hedge on the perpetual BTC/USDT:USDT.

The real engines, sessions, simulated venues and wallet of a hedged run (built by the
composition root from config/profiles/spot-perp-hedge.yaml), fed hand-made books and
random trades that fill our spot quotes: with taker hedges and the side that would add
to |net delta| withdrawn while a hedge is in flight, |net delta| never exceeds the hedge
threshold plus one order size (mmbot/engine/hedging.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.config.settings import load_settings
from mmbot.domain.events import BookSnapshot, Trade
from mmbot.engine.hedging import HedgeLink
from mmbot.wiring import build_instrument, build_replay, build_wallet

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "config" / "profiles" / "spot-perp-hedge.yaml"
BTC = 100_000_000  # lots per BTC on both instruments (qty unit 1e-8)
MS = 1_000_000


def hedged_pair(entry_latency_ms: float) -> tuple[Any, Any, HedgeLink, Any]:
    cfg = load_settings(str(PROFILE), environ={}, overrides={
        "sim": {"fill_model": "touch", "entry_latency_ms": entry_latency_ms},
        "strategy": {"min_requote_interval_ms": 0, "requote_tolerance_ticks": 0},
        "risk": {"max_orders_per_second": 1000, "max_orders_per_minute": 100_000},
    })
    wallet = build_wallet(cfg)
    spot = build_replay(cfg, "20260101T000000Z-hedge032", instrument=build_instrument(cfg, "BTC/USDT"), wallet=wallet)
    perp = build_replay(cfg, "20260101T000000Z-hedge032", instrument=build_instrument(cfg, "BTC/USDT:USDT"), wallet=wallet)
    link = HedgeLink(spot.engine, perp.engine, perp.session.act)
    spot.engine.hedge_link = link
    return spot, perp, link, cfg


def books(spot: Any, perp: Any, t: int, n: int) -> None:
    # Wide books (60,000 +- 0.15 %): our 2 bps quotes rest alone at their prices, no queue ahead.
    spot.session.step(BookSnapshot("BTC/USDT", t, n, ((5_991_000, 50 * BTC),), ((6_009_000, 50 * BTC),)))
    perp.session.step(BookSnapshot("BTC/USDT:USDT", t, n, ((599_900, 50 * BTC),), ((600_100, 50 * BTC),)))


@given(
    # Trades mostly on one side (a trend: the inventory must pass the threshold), sometimes the other.
    trend=st.booleans(),
    trades=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 10), st.integers(1, 400)), min_size=1, max_size=60),
    latency_ms=st.sampled_from([0.0, 20.0, 150.0]),
)
@settings(max_examples=40, deadline=None)
def test_cross_hedge_when_random_fills_with_taker_hedges_then_net_delta_within_threshold_plus_one_order(
    trend: bool, trades: list[tuple[int, int, int]], latency_ms: float,
) -> None:
    spot, perp, link, cfg = hedged_pair(latency_ms)
    threshold = round(cfg.strategy.hedge.threshold * BTC)
    order = round(cfg.strategy.order_size * BTC)
    t, n = 1_723_161_300_000_000_000, 1
    books(spot, perp, t, n)
    worst = 0
    for against, tenths, gap_ms in trades:
        hit_bid = trend if against else not trend
        t += gap_ms * MS
        n += 1
        books(spot, perp, t, n)  # time passes on both books: decisions, hedge arrivals
        engine = spot.engine
        price = engine.quoted_bid if hit_bid else engine.quoted_ask
        if price is not None:
            # A trade at our quote: a seller hitting our bid (buyer is maker) or a buyer lifting our ask.
            spot.session.step(Trade("BTC/USDT", t + MS, t + MS, n, price, tenths * order // 10, hit_bid))
        worst = max(worst, abs(link.net_lots()))
    assert worst <= threshold + order, (worst, link.fields())


def test_cross_hedge_when_inventory_passes_threshold_then_taker_hedge_on_perp_and_side_withdrawn() -> None:
    spot, perp, link, _ = hedged_pair(150.0)  # the hedge arrives 150 ms later: in flight meanwhile
    t = 1_723_161_300_000_000_000
    books(spot, perp, t, 1)
    n = 1
    while spot.engine.ledger.position_lots < 4 * BTC // 100 and n < 40:  # 0.01 BTC bid fills to 0.04 > threshold 0.03
        t += 300 * MS  # the re-quoted bid has arrived (150 ms)
        n += 1
        books(spot, perp, t, n)
        bid = spot.engine.quoted_bid
        if bid is not None and link.hedges_sent == 0:
            spot.session.step(Trade("BTC/USDT", t + MS, t + MS, n, bid, BTC // 100, True))
    t += 10 * MS
    books(spot, perp, t, n + 1)
    in_flight = link.in_flight()
    bid_quoted = spot.engine.quoted_bid
    withdrawn = link.withdraw_side()
    t += 200 * MS
    books(spot, perp, t, n + 2)  # the hedge arrives and fills (the perp book's event)
    books(spot, perp, t + 10 * MS, n + 3)  # the spot book's next event: both sides quoted again
    assert link.hedges_sent == 1 and in_flight and bid_quoted is None and withdrawn is not None and withdrawn.name == "BUY"
    assert perp.engine.ledger.position_lots == -4 * BTC // 100 and spot.engine.ledger.position_lots == 4 * BTC // 100
    assert link.net_lots() == 0 and not link.in_flight() and spot.engine.quoted_bid is not None
    assert perp.engine.ledger.fills == 1 and perp.engine.om.placed == 1  # a taker order: the perp quotes nothing


def test_spot_perp_hedge_backtest_when_bundled_captures_then_taker_hedges_on_perp_and_bound_holds() -> None:
    from decimal import Decimal

    from mmbot.cli.backtest import run_l2_backtest
    from mmbot.wiring import capture_paths

    cfg = load_settings(str(PROFILE), environ={})
    paths = capture_paths(cfg)  # the spot file and the USD-M head of the same minutes
    summary, _ = run_l2_backtest(cfg, paths)
    hedge = summary["hedge"]
    spot, perp = summary["symbols"]["BTC/USDT"], summary["symbols"]["BTC/USDT:USDT"]
    bound = Decimal(str(cfg.strategy.hedge.threshold)) + Decimal(str(cfg.strategy.order_size))
    assert [Path(p).name for p in paths] == ["btcusdt_20240808.gz", "usdm_btcusdt_20240808_head.gz"]
    assert hedge["hedges_sent"] >= 1 and hedge["hedge_fills"] >= 1 and Decimal(hedge["max_abs_net_delta_base"]) <= bound
    assert spot["book_gaps"] == 0 and perp["book_gaps"] == 0 and spot["bid_fills"] > 0 and spot["ask_fills"] > 0
    assert perp["orders_placed"] == hedge["hedges_sent"] and perp["fees_paid"] != "0.00000000"  # taker hedges only
    assert Decimal(hedge["net_pnl_total"]) == Decimal(spot["net_pnl"]) + Decimal(perp["net_pnl"])


def test_hedge_instrument_when_not_a_configured_symbol_then_config_error() -> None:
    import pytest

    from mmbot.errors import ConfigError
    from mmbot.wiring import build_model

    cfg = load_settings(str(PROFILE), environ={}, overrides={"strategy": {"hedge": {"instrument": "ETH/USDT:USDT"}}})
    with pytest.raises(ConfigError, match="must be one of symbols"):
        build_model(cfg, build_instrument(cfg, "BTC/USDT"))


def test_hedged_replay_when_maker_hedges_or_a_journal_then_refused_naming_what_is_built() -> None:
    import pytest

    from mmbot.errors import ConfigError
    from mmbot.wiring import RunRequest, build_node, capture_paths

    cfg = load_settings(str(PROFILE), environ={}, overrides={"strategy": {"hedge": {"execution": "maker"}}})
    journal = load_settings(str(PROFILE), environ={}, overrides={"audit": {"enabled": True}})
    with pytest.raises(ConfigError, match="only taker hedges"):
        build_node(cfg, "20260101T000000Z-hedge032", RunRequest(paths=capture_paths(cfg)))
    with pytest.raises(ConfigError, match="keeps no journal"):
        build_node(journal, "20260101T000000Z-hedge032", RunRequest(paths=capture_paths(journal)))
