"""The micro-price quoter: hand numbers for the fair value and the quotes."""

from __future__ import annotations

import pytest
from mmbot_microprice.model import MicroPriceParams, MicroPriceQuoter, weighted_fair_ticks
from pydantic import ValidationError

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Side
from mmbot.strategy.model import MarketContext
from mmbot.strategy.plugin import check_decision

INST = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


def ctx(inventory_lots: int = 0, bid: int = 6_000_000, ask: int = 6_000_001) -> MarketContext:
    return MarketContext(
        now_ns=0, instrument=INST, mid_ticks=(bid + ask) / 2, best_bid=bid, best_ask=ask,
        inventory_lots=inventory_lots, resting_bid_lots=0, resting_ask_lots=0, book=None,
    )  # fmt: skip


def test_weighted_fair_when_bid_heavy_then_towards_the_ask() -> None:
    # I = 3 / (3 + 1) = 0.75: P = 100.5 + (0.75 - 0.5) x 1 = 100.75 (= ask x I + bid x (1 - I))
    assert weighted_fair_ticks(100, 101, 3, 1, 1.0) == 100.75
    assert weighted_fair_ticks(100, 101, 3, 1, 0.0) == 100.5  # alpha 0: the mid
    assert weighted_fair_ticks(100, 102, 0, 0, 1.0) == 101.0  # no depth: the mid


def test_decide_when_flat_then_two_passive_quotes_on_the_lot_grid() -> None:
    model = MicroPriceQuoter(MicroPriceParams(half_spread_bps=1.0, order_size=0.01), INST)

    decision = model.decide(ctx())

    # fair 6,000,000.5 ticks, h = 6,000,000.5 x 1e-4 = 600.00005 ticks
    bid, ask = decision.quotes
    assert (bid.side, bid.price_ticks) == (Side.BUY, 5_999_400)
    assert (ask.side, ask.price_ticks) == (Side.SELL, 6_000_601)
    assert bid.qty_lots == 1_000_000 and bid.qty_lots % INST.step_lots == 0
    assert check_decision(decision, INST) is None


def test_decide_when_at_max_long_then_only_the_ask() -> None:
    model = MicroPriceQuoter(MicroPriceParams(order_size=0.01, max_inventory=0.05), INST)

    decision = model.decide(ctx(inventory_lots=5_000_000))

    assert [q.side for q in decision.quotes] == [Side.SELL]


def test_params_when_unknown_or_out_of_range_then_validation_error() -> None:
    with pytest.raises(ValidationError):
        MicroPriceParams.model_validate({"levels": 0})
    with pytest.raises(ValidationError):
        MicroPriceParams.model_validate({"sprad": 1})
