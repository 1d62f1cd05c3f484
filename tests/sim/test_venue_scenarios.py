"""Hand-built SimVenue scenarios: queue, cancels ahead, latency races, fees, venue rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmbot.domain.orders import FillReason, Liquidity, OrderAccepted, OrderCancelled, OrderFilled, OrderRejected, Side
from mmbot.portfolio.ledger import Ledger
from mmbot.sim.venue import FillModel
from tests.sim.helpers import LOT, MS, PX, Market, book_from, cancel, instrument, place, venue

BID, ASK = PX, PX + 1  # 60,000.00 / 60,000.01


def _market(model: FillModel = FillModel.RISK_AVERSE, **kwargs: object) -> Market:
    book = book_from(bids=[(BID, 300 * LOT), (BID - 1, 50 * LOT)], asks=[(ASK, 200 * LOT), (ASK + 1, 50 * LOT)])
    return Market(venue(book, model, **kwargs))  # type: ignore[arg-type]


# --- queue position ------------------------------------------------------------------------
def test_venue_when_trades_consume_queue_then_fills_only_after_queue_ahead():
    m = _market(FillModel.RISK_AVERSE)
    acks = m.send(place("b1", Side.BUY, BID, 100 * LOT), 0)
    first = m.trade(1 * MS, BID, 200 * LOT, seller_aggressor=True)  # 200 of the 300 ahead
    second = m.trade(2 * MS, BID, 150 * LOT, seller_aggressor=True)  # 100 ahead left, 50 for us

    assert isinstance(acks[0], OrderAccepted) and acks[0].queue_ahead_lots == 300 * LOT
    assert first == []
    assert [(f.qty_lots, f.leaves_lots, f.reason, f.queue_ahead_at_placement_lots) for f in second] == [
        (50 * LOT, 50 * LOT, FillReason.QUEUE_CONSUMED, 300 * LOT)
    ]
    assert m.venue.queue_ahead("b1") == 0


def test_venue_when_buyer_aggressor_trades_at_bid_price_then_bids_do_not_fill():
    m = _market(FillModel.TOUCH)
    m.send(place("b1", Side.BUY, BID, 100 * LOT), 0)
    out = m.trade(1 * MS, BID, 500 * LOT, seller_aggressor=False)  # a buy print cannot fill a bid

    assert out == []


def test_venue_when_trade_prints_through_order_then_fills_at_order_price_regardless_of_queue():
    m = _market(FillModel.RISK_AVERSE)
    m.send(place("b1", Side.BUY, BID, 100 * LOT), 0)
    out = m.trade(1 * MS, BID - 1, 30 * LOT, seller_aggressor=True)  # the level BID was wiped out

    assert [(f.price_ticks, f.qty_lots, f.reason) for f in out] == [(BID, 30 * LOT, FillReason.TRADE_THROUGH)]


def test_venue_when_two_own_orders_share_one_print_then_time_priority_and_no_double_fill():
    m = _market(FillModel.TOUCH)
    m.send(place("b1", Side.BUY, BID, 40 * LOT), 0)
    m.send(place("b2", Side.BUY, BID, 40 * LOT), 0)
    m.trade(1 * MS, BID, 60 * LOT, seller_aggressor=True)

    assert (m.filled_lots("b1"), m.filled_lots("b2")) == (40 * LOT, 20 * LOT)


# --- cancellations ahead of us, one scenario under each model -------------------------------------
@pytest.mark.parametrize(
    ("model", "expected_fill"),
    [
        # touch: no queue at all, the 200-lot print fills the whole 100-lot order
        (FillModel.TOUCH, 100 * LOT),
        # risk_averse: cancels are assumed behind us: 300 ahead, the print leaves 100 ahead
        (FillModel.RISK_AVERSE, 0),
        # probabilistic (n=2): of 200 cancelled with F=300 ahead, K=200 behind,
        # P_back = 200^2/(200^2+300^2) = 4/13, ahead = 300 - (9/13)*200 = 161.538..., ceil
        (FillModel.PROBABILISTIC, 200 * LOT - 161_539 * LOT // 1000),
    ],
)
def test_venue_when_level_cancels_ahead_then_queue_follows_model(model: FillModel, expected_fill: int):
    m = _market(model)
    m.send(place("b1", Side.BUY, BID, 100 * LOT), 0)
    m.depth(1 * MS, bids=[(BID, 500 * LOT)])  # 200 join behind us
    m.depth(2 * MS, bids=[(BID, 300 * LOT)])  # 200 cancel, no prints
    m.trade(3 * MS, BID, 200 * LOT, seller_aggressor=True)

    assert m.filled_lots("b1") == expected_fill


def test_venue_when_probabilistic_and_cancels_then_split_by_power_of_queue_position():
    # F=100 ahead, K=50 behind, 120 cancelled: P_back = 50^2/(50^2+100^2) = 0.2,
    # ahead = 100 - 0.8*120 + min(50 - 0.2*120, 0) = 4 (hftbacktest's overflow term is 0 here).
    book = book_from(bids=[(BID, 100 * LOT)], asks=[(ASK, 100 * LOT)])
    m = Market(venue(book, FillModel.PROBABILISTIC))
    m.send(place("b1", Side.BUY, BID, 10 * LOT), 0)
    m.depth(1 * MS, bids=[(BID, 150 * LOT)])
    m.depth(2 * MS, bids=[(BID, 30 * LOT)])

    assert m.venue.queue_ahead("b1") == 4 * LOT


def test_venue_when_level_drops_by_printed_volume_then_probabilistic_does_not_count_it_twice():
    m = _market(FillModel.PROBABILISTIC)
    m.send(place("b1", Side.BUY, BID, 100 * LOT), 0)
    m.trade(1 * MS, BID, 100 * LOT, seller_aggressor=True)  # 300 -> 200 ahead
    m.depth(2 * MS, bids=[(BID, 200 * LOT)])  # the same 100, seen in the depth stream

    assert m.venue.queue_ahead("b1") == 200 * LOT


# --- latency races ------------------------------------------------------------------------------
def test_venue_when_cancel_arrives_before_the_print_then_race_won_and_no_fill():
    m = _market(FillModel.TOUCH, cancel_ms=10)
    m.send(place("b1", Side.BUY, BID, 100 * LOT), 0)
    m.send(cancel("b1"), 1 * MS)  # reaches the venue at 11 ms
    m.trade(12 * MS, BID, 500 * LOT, seller_aggressor=True)

    assert m.fills() == []
    assert [type(r).__name__ for r in m.reports] == ["OrderAccepted", "OrderCancelled"]
    assert m.reports[1].ts_ns == 11 * MS


def test_venue_when_print_comes_before_cancel_arrives_then_race_lost_and_cancel_rejected():
    m = _market(FillModel.TOUCH, cancel_ms=10)
    m.send(place("b1", Side.BUY, BID, 100 * LOT), 0)
    m.send(cancel("b1"), 1 * MS)
    m.trade(5 * MS, BID, 500 * LOT, seller_aggressor=True)  # before the cancel lands at 11 ms
    m.at(11 * MS)

    reject = m.reports[-1]
    assert m.filled_lots("b1") == 100 * LOT
    assert isinstance(reject, OrderRejected) and reject.for_cancel
    assert (reject.code, reject.message) == (-2011, "Unknown order sent.")


def test_venue_when_price_moves_during_entry_latency_then_post_only_quote_rejected_on_arrival():
    m = _market(FillModel.RISK_AVERSE, entry_ms=20)
    m.venue.submit(place("a1", Side.SELL, ASK + 5, 100 * LOT), 0)  # fine when sent
    m.depth(10 * MS, bids=[(BID, 0), (ASK + 5, 80 * LOT)], asks=[(ASK, 0), (ASK + 1, 0), (ASK + 6, 90 * LOT)])
    out = m.at(20 * MS)

    assert len(out) == 1 and isinstance(out[0], OrderRejected)
    assert (out[0].code, out[0].message, out[0].ts_ns) == (-2010, "Order would immediately match and take.", 20 * MS)


def test_venue_when_quote_arrives_before_the_move_then_it_rests_and_fills():
    m = _market(FillModel.RISK_AVERSE, entry_ms=5)
    m.venue.submit(place("a1", Side.SELL, ASK + 5, 100 * LOT), 0)
    m.at(5 * MS)  # arrives at an empty level: nothing ahead
    m.trade(8 * MS, ASK + 5, 30 * LOT, seller_aggressor=False)

    assert m.filled_lots("a1") == 30 * LOT


def test_venue_when_cancel_sent_right_after_place_then_it_never_overtakes_the_place():
    # Entry 20 ms, cancel 1 ms: one connection keeps the order of commands.
    m = _market(FillModel.RISK_AVERSE, entry_ms=20, cancel_ms=1)
    m.venue.submit(place("b1", Side.BUY, BID, 100 * LOT), 0)
    m.venue.submit(cancel("b1"), 1 * MS)
    m.at(30 * MS)

    assert [type(r).__name__ for r in m.reports] == ["OrderAccepted", "OrderCancelled"]
    assert m.venue.open_order_ids() == []


# --- partial fills ---------------------------------------------------------------------------------
def test_venue_when_prints_smaller_than_order_then_partial_fills_until_done():
    m = _market(FillModel.TOUCH)
    m.send(place("a1", Side.SELL, ASK + 3, 100 * LOT), 0)
    m.trade(1 * MS, ASK + 3, 30 * LOT, seller_aggressor=False)
    m.trade(2 * MS, ASK + 3, 50 * LOT, seller_aggressor=False)
    m.trade(3 * MS, ASK + 4, 70 * LOT, seller_aggressor=False)  # through: the last 20

    fills = m.fills("a1")
    assert [(f.qty_lots, f.leaves_lots) for f in fills] == [(30 * LOT, 70 * LOT), (50 * LOT, 20 * LOT), (20 * LOT, 0)]
    assert [f.reason for f in fills] == [FillReason.QUEUE_CONSUMED, FillReason.QUEUE_CONSUMED, FillReason.TRADE_THROUGH]
    assert m.venue.open_order_ids() == []


def test_venue_when_book_crosses_order_then_fill_limited_to_crossing_liquidity_once():
    m = _market(FillModel.RISK_AVERSE)
    m.send(place("b1", Side.BUY, BID - 3, 100 * LOT), 0)  # below the touch
    m.bbo(1 * MS, bid=(BID - 5, 10 * LOT), ask=(BID - 4, 30 * LOT))  # ask falls through our bid
    m.bbo(2 * MS, bid=(BID - 5, 10 * LOT), ask=(BID - 4, 30 * LOT))  # the same sellers again
    m.bbo(3 * MS, bid=(BID - 5, 10 * LOT), ask=(BID - 4, 45 * LOT))  # 15 more join

    fills = m.fills("b1")
    assert [(f.price_ticks, f.qty_lots, f.reason) for f in fills] == [
        (BID - 3, 30 * LOT, FillReason.BOOK_CROSSED),
        (BID - 3, 15 * LOT, FillReason.BOOK_CROSSED),
    ]


# --- post-only and venue rules -------------------------------------------------------------------------
def test_venue_when_post_only_would_cross_then_rejected_binance_style():
    m = _market(FillModel.RISK_AVERSE)
    out = m.send(place("b1", Side.BUY, ASK, 100 * LOT), 0)

    assert len(out) == 1 and isinstance(out[0], OrderRejected)
    assert (out[0].code, out[0].message) == (-2010, "Order would immediately match and take.")
    assert m.venue.open_order_ids() == []


def test_venue_when_post_only_would_cross_own_order_then_rejected():
    m = _market(FillModel.RISK_AVERSE)
    m.send(place("a1", Side.SELL, ASK + 10, 100 * LOT), 0)
    out = m.send(place("b1", Side.BUY, ASK + 10, 100 * LOT), 1)  # crosses our own ask only

    assert isinstance(out[0], OrderRejected) and out[0].message == "Order would immediately match and take."


@pytest.mark.parametrize(
    ("qty", "price", "message"),
    [
        (0, BID, "Invalid quantity."),
        (100 * LOT + 1, BID, "Filter failure: LOT_SIZE"),
        (LOT, BID, "Filter failure: NOTIONAL"),  # 0.00001 BTC x 60,000 = 0.6 USDT < 5
        (100 * LOT, 0, "Filter failure: PRICE_FILTER"),
    ],
)
def test_venue_when_order_breaks_a_filter_then_rejected_with_binance_message(qty: int, price: int, message: str):
    m = _market()
    out = m.send(place("x", Side.BUY, price, qty), 0)

    assert isinstance(out[0], OrderRejected) and (out[0].code, out[0].message) == (-1013, message)


def test_venue_when_client_order_id_reused_then_duplicate_rejected():
    m = _market()
    m.send(place("b1", Side.BUY, BID - 10, 100 * LOT), 0)
    out = m.send(place("b1", Side.BUY, BID - 11, 100 * LOT), 1)

    assert isinstance(out[0], OrderRejected) and (out[0].code, out[0].message) == (-2010, "Duplicate order sent.")


def test_venue_when_limit_without_post_only_crosses_then_takes_liquidity_and_rests_remainder():
    m = _market(FillModel.RISK_AVERSE, taker_bps="1")
    out = m.send(place("b1", Side.BUY, ASK + 1, 300 * LOT, post_only=False), 0)

    fills = [r for r in out if isinstance(r, OrderFilled)]
    assert [(f.price_ticks, f.qty_lots, f.liquidity, f.reason) for f in fills] == [
        (ASK, 200 * LOT, Liquidity.TAKER, FillReason.CROSSED_ON_ARRIVAL),
        (ASK + 1, 50 * LOT, Liquidity.TAKER, FillReason.CROSSED_ON_ARRIVAL),
    ]
    assert m.venue.open_orders() == [("b1", Side.BUY, ASK + 1, 300 * LOT, 250 * LOT)]


def test_venue_when_taker_would_reach_own_resting_order_then_self_trade_prevention_expires_it():
    m = _market(FillModel.RISK_AVERSE)
    m.send(place("a1", Side.SELL, ASK + 1, 100 * LOT), 0)  # our ask behind the market's best ask
    out = m.send(place("h1", Side.BUY, ASK + 2, 500 * LOT, post_only=False, taker=True), 1)

    fills = [r for r in out if isinstance(r, OrderFilled)]
    assert [(f.price_ticks, f.qty_lots, f.reason) for f in fills] == [(ASK, 200 * LOT, FillReason.HEDGE_TAKER)]
    assert isinstance(out[-1], OrderCancelled) and out[-1].reason == "expired_in_match"
    assert m.venue.open_order_ids() == ["a1"]


def test_venue_when_taker_outsizes_book_within_limit_then_rest_expires_ioc():
    m = _market(FillModel.RISK_AVERSE)
    out = m.send(place("h1", Side.SELL, BID - 1, 400 * LOT, post_only=False, taker=True), 0)

    assert [r.qty_lots for r in out if isinstance(r, OrderFilled)] == [300 * LOT, 50 * LOT]
    assert isinstance(out[-1], OrderCancelled) and out[-1].reason == "expired"


# --- fees and rebates ----------------------------------------------------------------------------------
def test_venue_fees_when_maker_rebate_and_taker_fee_then_exact_decimal_arithmetic():
    m = _market(FillModel.TOUCH, maker_bps="-1", taker_bps="4")
    m.send(place("a1", Side.SELL, PX + 100, 1000 * LOT), 0)  # 0.01 BTC at 60,001.00
    m.trade(1 * MS, PX + 100, 1000 * LOT, seller_aggressor=False)
    m.send(place("h1", Side.BUY, ASK + 1, 200 * LOT, post_only=False, taker=True), 2 * MS)  # 0.002 at 60,000.01

    maker, taker = m.fills("a1")[0], m.fills("h1")[0]
    ledger = Ledger(instrument())
    for f in (maker, taker):
        ledger.apply_fill(f.side, f.price_ticks, f.qty_lots, f.fee)
    # maker: 0.01 x 60,001.00 = 600.01 USDT, rebate 1 bps = -0.060001
    # taker: 0.002 x 60,000.01 = 120.00002 USDT, fee 4 bps = 0.048000008
    assert maker.fee == Decimal("-0.060001")
    assert taker.fee == Decimal("0.048000008")
    assert ledger.fees_paid == Decimal("-0.012000992")
    assert ledger.cash == Decimal("600.01") - Decimal("120.00002")
    assert ledger.net_pnl(PX) == Decimal("480.00998") + Decimal("-0.008") * Decimal("60000") + Decimal("0.012000992")
