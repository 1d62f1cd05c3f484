"""Volatility multiplier, order-book imbalance, ladders, adverse-selection guard, hedging."""

from __future__ import annotations

import math

import pytest

from mmbot.domain.orders import Side
from mmbot.strategy import (
    SEED_LADDER,
    AdverseSelectionGuard,
    AdverseSelectionParams,
    EwmaVolatility,
    HedgeParams,
    LadderLevel,
    SimpleParams,
    bar_ladder_quotes,
    book_depths,
    book_imbalance,
    ewma_update,
    hedge_quantity,
    hedge_quote,
    imbalance_adjust,
    ladder_quotes,
    volatility_multiplier,
)
from tests.strategy.helpers import SEC, book_from

MS = 1_000_000


# --- volatility -----------------------------------------------------------------------
def test_ewma_update_when_one_half_life_elapsed_then_halfway() -> None:
    assert ewma_update(None, 4.0, 1.0, 10.0) == 4.0
    assert ewma_update(0.0, 4.0, 10.0, 10.0) == pytest.approx(2.0)


def test_volatility_multiplier_when_ratio_outside_bounds_then_clipped() -> None:
    assert volatility_multiplier(3e-5, 2e-5, 0.5, 3.0) == pytest.approx(1.5)
    assert volatility_multiplier(1e-3, 1e-5, 0.5, 3.0) == 3.0
    assert volatility_multiplier(1e-7, 1e-5, 0.5, 3.0) == 0.5
    assert volatility_multiplier(0.0, 1e-5, 0.5, 3.0) == 1.0


def test_ewma_volatility_when_moves_grow_then_multiplier_above_one() -> None:
    vol = EwmaVolatility(half_life_s=5.0, long_half_life_s=600.0, mode="log")
    mid = 100_000.0
    for i in range(120):  # 2 minutes of 1 bp moves, then 20 s of 10 bp moves
        mid *= 1.0001 if i % 2 else 0.9999
        vol.on_mid(i * SEC, mid)
    calm = vol.multiplier(119 * SEC, 0.5, 3.0)
    for i in range(120, 140):
        mid *= 1.001 if i % 2 else 0.999
        vol.on_mid(i * SEC, mid)

    assert calm == pytest.approx(1.0, abs=0.05)
    assert vol.multiplier(139 * SEC, 0.5, 3.0) > 2.0
    assert vol.current() is not None and vol.current() == pytest.approx(1e-3, rel=0.1)


def test_ewma_volatility_when_absolute_mode_then_sigma_in_price_units_per_sqrt_second() -> None:
    vol = EwmaVolatility(30.0, 600.0, mode="absolute", sample_ms=1000)
    for i in range(200):
        vol.on_mid(i * SEC // 2, 100.0 + (2.0 if (i // 2) % 2 else 0.0))  # +-2 every second

    assert vol.current() == pytest.approx(2.0, rel=0.05)


# --- imbalance ------------------------------------------------------------------------
def test_book_imbalance_when_worked_example_then_half_and_adjusted() -> None:
    imb = book_imbalance(30, 10)

    assert imb == 0.5
    assert imbalance_adjust(6.0, 6.0, imb, 0.2, 0.25) == (4.5, 7.5)
    assert imbalance_adjust(6.0, 6.0, -imb, 0.2, 0.25) == (7.5, 4.5)
    assert imbalance_adjust(6.0, 6.0, 0.1, 0.2, 0.25) == (6.0, 6.0)
    assert book_imbalance(0, 0) == 0.0


def test_book_depths_when_top_n_or_within_bps_then_sums_those_levels() -> None:
    book = book_from(bids=[(10_000, 5), (9_999, 7), (9_990, 100)], asks=[(10_001, 3), (10_002, 4), (10_050, 50)])

    assert book_depths(book, 10_000.5, levels=2) == (12, 7)
    assert book_depths(book, 10_000.5, within_bps=2.0) == (12, 7)  # 2 bps of 10,000.5 = 2 ticks
    assert book_depths(book, 10_000.5, within_bps=100.0) == (112, 57)


# --- ladders --------------------------------------------------------------------------
def test_bar_ladder_quotes_when_seed_ladder_then_10_20_30_bps_levels() -> None:
    p = SimpleParams(spread_bps=20, max_inventory=10, order_size=1.0, skew_factor=0.001)

    rungs = bar_ladder_quotes(5_000_000, 0.0, p, SEED_LADDER)

    assert [(r.is_bid, r.price_ticks, r.size, r.level) for r in rungs] == [
        (True, 4_995_000, 2.0, 0),
        (True, 4_990_000, 1.5, 1),
        (True, 4_985_000, 1.0, 2),
        (False, 5_005_000, 2.0, 0),
        (False, 5_010_000, 1.5, 1),
        (False, 5_015_000, 1.0, 2),
    ]


def test_ladder_quotes_when_near_inventory_limit_then_only_levels_that_fit() -> None:
    rungs = ladder_quotes(5_000_000, 5_000, 5_000, SEED_LADDER, best_bid=4_999_999, best_ask=5_000_001, inventory=8.0, max_inventory=10.0)

    bids = [r for r in rungs if r.is_bid]
    asks = [r for r in rungs if not r.is_bid]
    assert [r.size for r in bids] == [2.0]
    assert [r.size for r in asks] == [2.0, 1.5, 1.0]


def test_ladder_quotes_when_centre_through_touch_then_clamped_post_only_and_distinct() -> None:
    levels = (LadderLevel(offset_bps=1, size=1), LadderLevel(offset_bps=2, size=1))

    rungs = ladder_quotes(1_000_100.0, 1.0, 1.0, levels, best_bid=1_000_000, best_ask=1_000_001, inventory=0, max_inventory=10)

    bids = [r.price_ticks for r in rungs if r.is_bid]
    asks = [r.price_ticks for r in rungs if not r.is_bid]
    assert bids == [1_000_000, 999_999]  # at most best_ask - 1, each level one tick deeper
    assert min(asks) > 1_000_000 and max(bids) < min(asks)


# --- adverse selection ----------------------------------------------------------------
def test_adverse_guard_when_large_trade_then_cancel_all_then_widened_then_normal() -> None:
    guard = AdverseSelectionGuard(AdverseSelectionParams(size_multiple=10, min_trades=5, cooldown_ms=2000, widen_multiplier=2, widen_for_ms=5000))
    for i in range(10):
        guard.on_trade(i * MS, 100, 70)
    quiet = guard.status(20 * MS)
    guard.on_trade(100 * MS, 100, 700)  # 10 x the median

    assert quiet.cancel_all is False and quiet.spread_multiplier == 1.0
    during = guard.status(100 * MS + 1_999 * MS)
    assert during.cancel_all is True and during.reason == "large_trade"
    after = guard.status(100 * MS + 2_000 * MS)
    assert after.cancel_all is False and after.spread_multiplier == 2.0
    assert guard.status(100 * MS + 7_000 * MS).spread_multiplier == 1.0


def test_adverse_guard_when_notional_above_threshold_then_triggers_without_history() -> None:
    guard = AdverseSelectionGuard(AdverseSelectionParams(notional_threshold=50_000.0), ticks_to_quote=0.01, lots_to_base=1e-8)

    guard.on_trade(0, 6_000_000, 100_000_000)  # 1 BTC at 60,000 = 60,000 USDT

    assert guard.status(1).cancel_all is True


def test_adverse_guard_when_fast_mid_move_within_window_then_triggers() -> None:
    guard = AdverseSelectionGuard(AdverseSelectionParams(move_bps=5, move_window_ms=500))
    guard.on_mid(0, 1_000_000.0)
    guard.on_mid(100 * MS, 1_000_300.0)  # 3 bps: no trigger
    slow = guard.status(100 * MS)
    guard.on_mid(400 * MS, 1_000_600.0)  # 6 bps within 400 ms

    assert slow.cancel_all is False
    status = guard.status(400 * MS)
    assert status.cancel_all is True and status.reason == "fast_move"


def test_adverse_guard_when_move_spread_over_longer_than_window_then_no_trigger() -> None:
    guard = AdverseSelectionGuard(AdverseSelectionParams(move_bps=5, move_window_ms=500))
    for i in range(10):
        guard.on_mid(i * 400 * MS, 1_000_000.0 + i * 200.0)  # 2 bps per 400 ms

    assert guard.triggers == 0


# --- hedging --------------------------------------------------------------------------
def test_hedge_quantity_when_above_threshold_then_back_to_target() -> None:
    assert hedge_quantity(0.04, 0.03, 0.0) == pytest.approx(-0.04)
    assert hedge_quantity(-0.05, 0.03, 0.01) == pytest.approx(0.06)
    assert hedge_quantity(0.03, 0.03) == 0.0


def test_hedge_quote_when_long_then_taker_sell_at_best_bid() -> None:
    q = hedge_quote(4_000_000, HedgeParams(threshold_lots=3_000_000), best_bid=6_100_000, best_ask=6_100_001, step_lots=1000)

    assert q is not None
    assert (q.side, q.price_ticks, q.qty_lots, q.is_taker, q.reason) == (Side.SELL, 6_100_000, 4_000_000, True, "hedge")
    assert hedge_quote(2_000_000, HedgeParams(threshold_lots=3_000_000), best_bid=1, best_ask=2) is None
    assert math.isclose(hedge_quantity(-2.0, 1.0), 2.0)
