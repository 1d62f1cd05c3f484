"""Hypothesis invariants of every quoting model.

For any mid, touch, inventory and resting quantity: bid < ask; no quote at or
through the opposite touch; quotes move down as inventory grows (never up); and
the desired quotes never let the position pass max_inventory.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.domain.orders import Side
from mmbot.strategy import (
    AvellanedaParams,
    ComposedModel,
    ComposedParams,
    GlftParams,
    LadderLevel,
    SimpleParams,
    bar_ladder_quotes,
    bar_quotes,
)
from mmbot.strategy.model import Decision
from tests.strategy.helpers import ctx

ORDER = 1_000_000  # 0.01 BTC in lots
MAX_INV = 5 * ORDER
LADDER = (LadderLevel(offset_bps=1, size=ORDER), LadderLevel(offset_bps=2, size=ORDER), LadderLevel(offset_bps=3, size=2 * ORDER))


def _params(kind: str, spread_bps: float, skew: float) -> ComposedParams:
    common = {"spread_bps": spread_bps, "order_size_lots": ORDER, "max_inventory_lots": MAX_INV, "skew_factor": skew}
    if kind == "ladder":
        return ComposedParams(ladder=LADDER, **common)  # type: ignore[arg-type]
    if kind == "avellaneda_stoikov":
        return ComposedParams(model="avellaneda_stoikov", avellaneda=AvellanedaParams(gamma=0.01, sigma=7.0, k=0.5, horizon_s=10, warmup_s=0), **common)  # type: ignore[arg-type]
    if kind == "avellaneda_infinite":
        a = AvellanedaParams(gamma=0.01, sigma=7.0, k=0.5, variant="infinite", warmup_s=0)
        return ComposedParams(model="avellaneda_stoikov", avellaneda=a, **common)  # type: ignore[arg-type]
    if kind == "glft":
        return ComposedParams(model="glft", glft=GlftParams(gamma=0.05, A=15, k=0.33, sigma=7.0, warmup_s=0), **common)  # type: ignore[arg-type]
    return ComposedParams(**common)  # type: ignore[arg-type]


KINDS = st.sampled_from(["simple", "ladder", "avellaneda_stoikov", "avellaneda_infinite", "glft"])
MIDS = st.integers(min_value=100_000, max_value=20_000_000)
SPREADS = st.floats(min_value=0.1, max_value=50.0)
SKEWS = st.floats(min_value=0.0, max_value=0.01)
INVENTORY = st.integers(min_value=-2 * MAX_INV, max_value=2 * MAX_INV)
RESTING = st.integers(min_value=0, max_value=3 * MAX_INV)


def _decide(kind: str, spread: float, skew: float, bid: int, touch_ticks: int, inventory: int, rb: int = 0, ra: int = 0) -> Decision:
    model = ComposedModel(_params(kind, spread, skew))
    ask = bid + touch_ticks
    return model.decide(
        ctx(now_ns=1, mid_ticks=(bid + ask) / 2.0, best_bid=bid, best_ask=ask, inventory_lots=inventory, resting_bid_lots=rb, resting_ask_lots=ra)
    )


def _sides(d: Decision) -> tuple[list[int], list[int]]:
    return [q.price_ticks for q in d.quotes if q.side is Side.BUY], [q.price_ticks for q in d.quotes if q.side is Side.SELL]


@settings(max_examples=300, deadline=None)
@given(KINDS, MIDS, st.integers(min_value=1, max_value=500), SPREADS, SKEWS, INVENTORY, RESTING, RESTING)
def test_models_when_any_market_then_bid_below_ask_and_post_only_safe(
    kind: str, bid: int, touch: int, spread: float, skew: float, inventory: int, rb: int, ra: int
) -> None:
    d = _decide(kind, spread, skew, bid, touch, inventory, rb, ra)
    bids, asks = _sides(d)

    if bids and asks:
        assert max(bids) < min(asks)
    assert all(b < bid + touch for b in bids)  # never at or through the best ask
    assert all(a > bid for a in asks)  # never at or through the best bid
    assert all(p > 0 for p in bids + asks)


@settings(max_examples=300, deadline=None)
@given(KINDS, MIDS, st.integers(min_value=1, max_value=500), SPREADS, SKEWS, INVENTORY, RESTING, RESTING)
def test_models_when_any_inventory_and_resting_then_position_cannot_pass_limit(
    kind: str, bid: int, touch: int, spread: float, skew: float, inventory: int, rb: int, ra: int
) -> None:
    d = _decide(kind, spread, skew, bid, touch, inventory, rb, ra)
    bid_qty = sum(q.qty_lots for q in d.quotes if q.side is Side.BUY)
    ask_qty = sum(q.qty_lots for q in d.quotes if q.side is Side.SELL)

    # The desired quotes replace the resting ones level by level: all of them filling
    # must keep the position within the limit (or only reduce it when already beyond).
    assert bid_qty == 0 or inventory + bid_qty <= MAX_INV
    assert ask_qty == 0 or -inventory + ask_qty <= MAX_INV


@settings(max_examples=300, deadline=None)
@given(KINDS, MIDS, st.integers(min_value=1, max_value=500), SPREADS, SKEWS, INVENTORY, st.integers(min_value=1, max_value=MAX_INV))
def test_models_when_more_long_then_bid_and_ask_not_higher(
    kind: str, bid: int, touch: int, spread: float, skew: float, inventory: int, more: int
) -> None:
    lo = _sides(_decide(kind, spread, skew, bid, touch, inventory))
    hi = _sides(_decide(kind, spread, skew, bid, touch, inventory + more))

    if lo[0] and hi[0]:
        assert hi[0][0] <= lo[0][0]  # level-0 bid
    if lo[1] and hi[1]:
        assert hi[1][0] <= lo[1][0]  # level-0 ask


@settings(max_examples=300, deadline=None)
@given(MIDS, SPREADS, SKEWS, st.floats(min_value=-20, max_value=20), st.floats(min_value=0, max_value=10))
def test_bar_quotes_when_clamp_then_inside_close_and_monotone(close: int, spread: float, skew: float, inventory: float, more: float) -> None:
    p = SimpleParams(spread_bps=spread, skew_factor=skew, max_inventory=10, order_size=1)

    b0, a0 = bar_quotes(close, inventory, p, "clamp")
    b1, a1 = bar_quotes(close, inventory + more, p, "clamp")
    rungs = bar_ladder_quotes(close, inventory, p, (LadderLevel(offset_bps=spread, size=1), LadderLevel(offset_bps=2 * spread, size=1)))

    assert b0 is None or b0 < close
    assert a0 is None or a0 > close
    if b0 is not None and a0 is not None:
        assert b0 < a0
    if b0 is not None and b1 is not None:
        assert b1 <= b0
    if a0 is not None and a1 is not None:
        assert a1 <= a0
    assert all((r.price_ticks < close) if r.is_bid else (r.price_ticks > close) for r in rungs)
    assert inventory + sum(r.size for r in rungs if r.is_bid) <= 10 or not any(r.is_bid for r in rungs)
