"""The composed model: base models, modifiers switched on one at a time, config wiring."""

from __future__ import annotations

import math

import pytest

from mmbot.config.settings import load_settings
from mmbot.domain.orders import Side
from mmbot.errors import ConfigError
from mmbot.strategy import (
    AdverseSelectionParams,
    AvellanedaParams,
    ComposedModel,
    ComposedParams,
    GlftParams,
    HedgeParams,
    ImbalanceParams,
    LadderLevel,
    VolatilityParams,
    avellaneda_stoikov_quotes,
    glft_quotes,
)
from mmbot.strategy.seed_model import SeedModel
from mmbot.wiring import build_instrument, build_model
from tests.strategy.helpers import INSTRUMENT, LOTS_PER_BTC, SEC, book_from, ctx, trade

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
ONE_BTC = LOTS_PER_BTC


def _prices(decision: object) -> tuple[list[int], list[int]]:
    quotes = decision.quotes  # type: ignore[attr-defined]
    return [q.price_ticks for q in quotes if q.side is Side.BUY], [q.price_ticks for q in quotes if q.side is Side.SELL]


def test_composed_simple_when_seed_numbers_then_49950_50050() -> None:
    model = ComposedModel(ComposedParams(spread_bps=20, order_size_lots=ONE_BTC, max_inventory_lots=10 * ONE_BTC, skew_factor=0.001))

    decision = model.decide(ctx(mid_ticks=5_000_000.0))

    assert _prices(decision) == ([4_995_000], [5_005_000])
    assert all(q.qty_lots == ONE_BTC and q.reason == "simple" for q in decision.quotes)


@pytest.mark.parametrize("inventory", [-10 * ONE_BTC, -3 * ONE_BTC, 0, 4 * ONE_BTC, 9 * ONE_BTC + 1, 10 * ONE_BTC])
def test_composed_simple_when_no_modifiers_then_same_quotes_as_seed_model(inventory: int) -> None:
    params = ComposedParams(spread_bps=2, order_size_lots=ONE_BTC, max_inventory_lots=10 * ONE_BTC, skew_factor=0.0002)
    seed = SeedModel(spread_bps=2, order_size_lots=ONE_BTC, max_inventory_lots=10 * ONE_BTC, skew_factor=0.0002)
    c = ctx(mid_ticks=6_100_000.5, best_bid=6_100_000, best_ask=6_100_001, inventory_lots=inventory)

    def key(decision: object) -> list[tuple[Side, int, int, int]]:
        return [(q.side, q.price_ticks, q.qty_lots, q.level) for q in decision.quotes]  # type: ignore[attr-defined]

    assert key(ComposedModel(params).decide(c)) == key(seed.decide(c))


def test_composed_avellaneda_when_warming_up_then_simple_then_paper_quotes() -> None:
    a = AvellanedaParams(gamma=0.01, sigma=7.3, k=0.33, horizon_s=10.0, warmup_s=30.0)
    model = ComposedModel(ComposedParams(model="avellaneda_stoikov", spread_bps=1, order_size_lots=1_000_000, max_inventory_lots=5_000_000, avellaneda=a))
    model.on_mid(0, 6_100_000.0)
    early = model.decide(ctx(now_ns=SEC, mid_ticks=6_100_000.0, inventory_lots=2_000_000))
    model.on_mid(31 * SEC, 6_100_000.0)
    late = model.decide(ctx(now_ns=31 * SEC, mid_ticks=6_100_000.0, best_bid=6_090_000, best_ask=6_110_000, inventory_lots=2_000_000))
    bid, ask = avellaneda_stoikov_quotes(61_000.0, 2.0, 0.01, 7.3, 0.33, 10.0)

    assert early.reasons[0] == "warmup"
    assert late.reasons[0] == "avellaneda_stoikov"
    assert _prices(late) == ([math.floor(bid * 100)], [math.ceil(ask * 100)])


def test_composed_avellaneda_when_estimating_online_then_calibrates_from_mids_and_trades() -> None:
    a = AvellanedaParams(gamma=0.01, horizon_s=10.0, warmup_s=30.0)
    model = ComposedModel(ComposedParams(model="avellaneda_stoikov", spread_bps=1, order_size_lots=1_000_000, max_inventory_lots=5_000_000, avellaneda=a, min_trades=20), INSTRUMENT)
    mid = 6_100_000.0
    for i in range(600):  # 60 s: the mid moves +-300 ticks per second, trades at 0..2000 ticks away
        t = i * SEC // 10
        mid += (300 if (i // 10) % 2 else -300) if i % 10 == 0 else 0
        model.on_mid(t, mid)
        model.on_trade(trade(t, int(mid) + (i * 37) % 2000, 1000))

    decision = model.decide(ctx(now_ns=60 * SEC, mid_ticks=mid))

    assert decision.reasons[0] == "avellaneda_stoikov"
    bids, asks = _prices(decision)
    assert bids and asks and bids[0] < mid < asks[0]


def test_composed_glft_when_parameters_given_then_glft_quotes() -> None:
    g = GlftParams(gamma=0.05, A=15.0, k=0.33, sigma=7.3, warmup_s=0)
    model = ComposedModel(ComposedParams(model="glft", spread_bps=0.1, order_size_lots=1_000_000, max_inventory_lots=5_000_000, glft=g))
    model.on_mid(0, 6_100_000.0)

    decision = model.decide(ctx(now_ns=SEC, mid_ticks=6_100_000.0, inventory_lots=2_000_000))
    bid, ask = glft_quotes(61_000.0, 2.0, sigma=7.3, gamma=0.05, A=15.0, k=0.33, q_max=5.0)

    assert decision.reasons[0] == "glft"
    assert bid is not None and ask is not None
    assert _prices(decision) == ([math.floor(bid * 100)], [math.ceil(ask * 100)])


def test_composed_floor_when_model_spread_below_min_spread_then_widened_to_floor() -> None:
    g = GlftParams(gamma=0.05, A=15.0, k=0.33, sigma=7.3, warmup_s=0)  # ~1 bps wide
    model = ComposedModel(ComposedParams(model="glft", spread_bps=4, min_spread_bps=4, order_size_lots=1_000_000, max_inventory_lots=5_000_000, glft=g))
    model.on_mid(0, 6_100_000.0)

    bids, asks = _prices(model.decide(ctx(now_ns=SEC, mid_ticks=6_100_000.0)))

    assert asks[0] - bids[0] >= 6_100_000 * 4 / 10_000


def test_composed_volatility_when_volatile_then_spread_widened() -> None:
    base = ComposedParams(spread_bps=2, order_size_lots=1_000_000, max_inventory_lots=5_000_000, skew_factor=0)
    model = ComposedModel(ComposedParams(**{**_fields(base), "volatility": VolatilityParams(half_life_s=5, long_half_life_s=600)}))
    plain = ComposedModel(base)
    mid = 6_100_000.0
    for i in range(120):
        mid *= 1.0001 if i % 2 else 0.9999
        model.on_mid(i * SEC, mid)
    for i in range(120, 140):
        mid *= 1.001 if i % 2 else 0.999
        model.on_mid(i * SEC, mid)
    c = ctx(now_ns=140 * SEC, mid_ticks=mid)

    wide, narrow = _prices(model.decide(c)), _prices(plain.decide(c))

    assert wide[1][0] - wide[0][0] > 2 * (narrow[1][0] - narrow[0][0])


def test_composed_imbalance_when_more_bids_then_bid_tightened_ask_widened() -> None:
    book = book_from(bids=[(6_100_000, 30 * ONE_BTC)], asks=[(6_100_001, 10 * ONE_BTC)])
    params = ComposedParams(spread_bps=2, order_size_lots=1_000_000, max_inventory_lots=5_000_000, skew_factor=0, imbalance=ImbalanceParams(levels=5, threshold=0.2, adjust_fraction=0.25))

    bids, asks = _prices(ComposedModel(params).decide(ctx(mid_ticks=6_100_000.5, best_bid=6_100_000, best_ask=6_100_001, book=book)))

    half = 6_100_000.5 * 2 / 20_000  # 610 ticks
    assert bids == [math.floor(6_100_000.5 - half * 0.75)]
    assert asks == [math.ceil(6_100_000.5 + half * 1.25)]


def test_composed_ladder_when_three_levels_then_levels_keyed_with_sizes() -> None:
    ladder = (LadderLevel(offset_bps=10, size=2 * ONE_BTC), LadderLevel(offset_bps=20, size=1.5 * ONE_BTC), LadderLevel(offset_bps=30, size=ONE_BTC))
    params = ComposedParams(spread_bps=20, order_size_lots=ONE_BTC, max_inventory_lots=10 * ONE_BTC, skew_factor=0.001, ladder=ladder)

    decision = ComposedModel(params).decide(ctx(mid_ticks=5_000_000.0))

    assert [(q.side, q.price_ticks, q.qty_lots, q.level) for q in decision.quotes] == [
        (Side.BUY, 4_995_000, 200_000_000, 0),
        (Side.BUY, 4_990_000, 150_000_000, 1),
        (Side.BUY, 4_985_000, 100_000_000, 2),
        (Side.SELL, 5_005_000, 200_000_000, 0),
        (Side.SELL, 5_010_000, 150_000_000, 1),
        (Side.SELL, 5_015_000, 100_000_000, 2),
    ]


def test_composed_adverse_guard_when_large_trade_then_cancel_all_then_wider_quotes() -> None:
    params = ComposedParams(
        spread_bps=2, order_size_lots=1_000_000, max_inventory_lots=5_000_000, skew_factor=0,
        adverse_selection=AdverseSelectionParams(size_multiple=10, min_trades=5, cooldown_ms=1000, widen_multiplier=2, widen_for_ms=5000),
    )
    model = ComposedModel(params)
    for i in range(10):
        model.on_trade(trade(i, 6_100_000, 1000))
    model.on_trade(trade(SEC, 6_100_000, 50_000))
    paused = model.decide(ctx(now_ns=SEC + 500_000_000, mid_ticks=6_100_000.5, best_bid=6_100_000, best_ask=6_100_001))
    widened = model.decide(ctx(now_ns=2 * SEC + 1, mid_ticks=6_100_000.5, best_bid=6_100_000, best_ask=6_100_001))
    normal = model.decide(ctx(now_ns=8 * SEC, mid_ticks=6_100_000.5, best_bid=6_100_000, best_ask=6_100_001))

    assert paused.cancel_all is True and paused.quotes == () and paused.reasons == ("adverse_selection:large_trade",)
    wb, wa = _prices(widened)
    nb, na = _prices(normal)
    assert "widened" in widened.reasons
    assert wa[0] - wb[0] == pytest.approx(2 * (na[0] - nb[0]), abs=2)


def test_composed_hedge_when_inventory_above_threshold_then_taker_hedge_and_no_bids() -> None:
    params = ComposedParams(spread_bps=2, order_size_lots=1_000_000, max_inventory_lots=5_000_000, hedge=HedgeParams(threshold_lots=3_000_000, cooldown_ms=1000))
    model = ComposedModel(params)
    c = ctx(now_ns=SEC, mid_ticks=6_100_000.5, best_bid=6_100_000, best_ask=6_100_001, inventory_lots=4_000_000)

    first = model.decide(c)
    again = model.decide(ctx(now_ns=SEC + 1, mid_ticks=6_100_000.5, best_bid=6_100_000, best_ask=6_100_001, inventory_lots=4_000_000))

    assert first.hedge is not None and first.hedge.is_taker and first.hedge.side is Side.SELL
    assert (first.hedge.price_ticks, first.hedge.qty_lots) == (6_100_000, 4_000_000)
    assert _prices(first)[0] == [] and _prices(first)[1]
    assert again.hedge is None  # waits for the first hedge's fill or the cooldown


def _fields(p: ComposedParams) -> dict[str, object]:
    return {name: getattr(p, name) for name in p.__dataclass_fields__}


# --- wiring from config -----------------------------------------------------------------
@pytest.mark.parametrize("profile", ["avellaneda.yaml", "glft.yaml", "ladder.yaml", "all-modifiers.yaml"])
def test_build_model_when_profile_then_composed_model_of_that_kind(profile: str) -> None:
    settings = load_settings(ROOT / "config" / "profiles" / profile, environ={})

    model = build_model(settings, build_instrument(settings))

    assert isinstance(model, ComposedModel)
    assert model.params.model == settings.strategy.model
    assert len(model.params.ladder) == len(settings.strategy.ladder)


def test_build_model_when_hedge_on_other_instrument_then_config_error() -> None:
    settings = load_settings(None, environ={}, overrides={"strategy": {"hedge": {"enabled": True, "threshold": 0.03, "instrument": "BTC/USDC"}}})

    with pytest.raises(ConfigError, match=r"hedge\.instrument"):
        build_model(settings, build_instrument(settings))
