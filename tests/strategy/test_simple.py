"""The seed's simple market maker: numbers from the strategy description, the corrected skew."""

from __future__ import annotations

import pytest

from mmbot.strategy import SimpleMarketMaker, SimpleParams, bar_quotes, simple_quote_prices, simple_quotes
from mmbot.strategy.simple import apply_cross_policy, seed_quote_prices


def test_simple_quotes_when_seed_numbers_flat_then_49950_50050() -> None:
    bid, ask = simple_quotes(50_000.0, 0.0, SimpleParams(spread_bps=20, max_inventory=10, order_size=1.0, skew_factor=0.001))

    assert bid == pytest.approx(49_950.0)
    assert ask == pytest.approx(50_050.0)
    assert ask - bid == pytest.approx(100.0)  # a 100-dollar, 20 bps spread


def test_simple_market_maker_when_seed_example_then_quotes_seed_numbers() -> None:
    mm = SimpleMarketMaker(spread_bps=20, max_inventory=10, order_size=1.0, skew_factor=0.001, update_freq=1)

    quotes = mm.on_bar(50_000.0)

    assert quotes == {"bid": (pytest.approx(49_950.0), 1.0), "ask": (pytest.approx(50_050.0), 1.0)}


def test_simple_quote_prices_when_long_then_both_quotes_move_down_spread_unchanged() -> None:
    flat = simple_quote_prices(50_000.0, 0.0, 20, 10, 0.001)
    long = simple_quote_prices(50_000.0, 5.0, 20, 10, 0.001)

    assert long[0] < flat[0] and long[1] < flat[1]
    assert long == (pytest.approx(49_925.0), pytest.approx(50_025.0))
    assert long[1] - long[0] == pytest.approx(flat[1] - flat[0])


def test_simple_quote_prices_when_short_then_both_quotes_move_up() -> None:
    flat = simple_quote_prices(50_000.0, 0.0, 20, 10, 0.001)
    short = simple_quote_prices(50_000.0, -5.0, 20, 10, 0.001)

    assert short[0] > flat[0] and short[1] > flat[1]


def test_seed_formula_when_long_then_quotes_move_apart() -> None:
    flat_bid, flat_ask = seed_quote_prices(50_000.0, 0.0, 20, 10, 0.001)
    bid, ask = seed_quote_prices(50_000.0, 10.0, 20, 10, 0.001)

    assert bid < flat_bid and ask > flat_ask  # the ask moves away: the opposite of the intent


def test_seed_formula_when_short_then_quotes_cross() -> None:
    bid, ask = seed_quote_prices(50_000.0, -20.0, 20, 10, 0.001)  # skew -0.002 (the seed never clips)

    assert bid > ask


def test_simple_quotes_when_at_inventory_limit_then_side_dropped() -> None:
    p = SimpleParams(spread_bps=20, max_inventory=10, order_size=1.0, skew_factor=0.001)

    assert simple_quotes(50_000.0, 10.0, p)[0] is None
    assert simple_quotes(50_000.0, 10.0, p)[1] is not None
    assert simple_quotes(50_000.0, -9.5, p)[1] is None


def test_simple_market_maker_when_update_freq_2_then_requotes_every_second_bar() -> None:
    mm = SimpleMarketMaker(SimpleParams(spread_bps=20, update_freq=2))

    first = mm.on_bar(50_000.0)
    second = mm.on_bar(60_000.0)
    third = mm.on_bar(60_000.0)

    assert second == first
    assert third["bid"] is not None and third["bid"][0] == pytest.approx(59_940.0)


def test_simple_market_maker_when_fill_then_inventory_and_skew_follow() -> None:
    mm = SimpleMarketMaker(spread_bps=20, max_inventory=10, order_size=1.0, skew_factor=0.001)

    mm.on_fill("buy", 5.0)
    bid, ask = mm.quote(50_000.0)

    assert mm.inventory == 5.0
    assert (bid, ask) == (pytest.approx(49_925.0), pytest.approx(50_025.0))
    with pytest.raises(ValueError, match="side must be"):
        mm.on_fill("hold", 1.0)


def test_bar_quotes_when_seed_close_then_ticks_rounded_away() -> None:
    p = SimpleParams(spread_bps=20, max_inventory=10, order_size=1.0, skew_factor=0.001)

    assert bar_quotes(5_000_000, 0.0, p) == (4_995_000, 5_005_000)
    # 3 bps on 1,000,001 ticks: 150.00015 ticks each side -> bid down, ask up
    assert bar_quotes(1_000_001, 0.0, SimpleParams(spread_bps=3, skew_factor=0.0)) == (999_850, 1_000_152)


def test_bar_quotes_when_skew_pushes_bid_through_close_then_clamp_or_allow() -> None:
    p = SimpleParams(spread_bps=2, max_inventory=10, order_size=1.0, skew_factor=0.01)  # skew 100 bps >> half-spread

    clamped = bar_quotes(1_000_000, -9.0, p, "clamp")
    allowed = bar_quotes(1_000_000, -9.0, p, "allow")

    assert clamped[0] == 999_999 and clamped[1] is not None and clamped[1] > 1_000_000
    assert allowed[0] is not None and allowed[0] > 1_000_000  # through the close, as the seed computes it


def test_apply_cross_policy_when_clamp_then_one_tick_inside_touches() -> None:
    assert apply_cross_policy(105, 95, 100, 101, "clamp") == (100, 101)
    assert apply_cross_policy(105, 95, 100, 101, "allow") == (105, 95)


def test_simple_params_when_bad_values_then_value_error_names_field() -> None:
    with pytest.raises(ValueError, match="spread_bps must be > 0, was -3"):
        SimpleParams(spread_bps=-3)
