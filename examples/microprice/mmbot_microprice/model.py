"""A micro-price quoter: fair value from the order-book imbalance, after Stoikov (2018).

Stoikov, "The micro-price: a high-frequency estimator of future prices", Quantitative
Finance 18(12), 2018. The micro-price is the limit of expected future mids given the
imbalance I and the spread S; its first-order approximation is the imbalance-weighted
mid, which is what this example uses (the paper's Markov-chain correction needs a
calibration step that a small example leaves out)::

    I    = V_bid / (V_bid + V_ask)        depth on the best ``levels`` levels, lots
    P    = mid + alpha * (I - 1/2) * S    alpha = 1: the weighted mid ask*I + bid*(1-I)
    r    = P - skew * (q / Q) * P         inventory skew (fraction of price at |q| = Q)
    h    = max(min_half_spread_ticks, P * half_spread_bps / 10_000)
    bid  = floor(r - h),  ask = ceil(r + h)   then kept passive: bid < best ask, ask > best bid

Units: prices in ticks (mid, S, P, r, h, bid, ask), sizes in lots (q, Q, order size),
``half_spread_bps`` in basis points of the fair value. A side is not quoted when its
fill would take |q| above ``max_inventory``. Pure and deterministic: the engine calls
:meth:`decide` at each decision step with the book view, the position and the clock.
"""

from __future__ import annotations

import math
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from mmbot.domain.events import Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Quote, Side
from mmbot.strategy.model import Decision, MarketContext


class MicroPriceParams(BaseModel):
    """``strategy.params`` of the micro-price quoter (validated by mmbot when it loads it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    levels: int = Field(1, ge=1, le=50, description="book levels per side in the imbalance")
    alpha: float = Field(1.0, ge=0, le=2, description="weight of the imbalance term (1 = weighted mid)")
    half_spread_bps: float = Field(1.0, gt=0, le=1000, description="half-spread around the fair value, bps")
    min_half_spread_ticks: float = Field(0.5, ge=0, le=10_000, description="half-spread floor, ticks")
    order_size: float = Field(0.01, gt=0, description="base units per quote")
    max_inventory: float = Field(0.05, gt=0, description="base units; no quote that would exceed it")
    skew: float = Field(0.0, ge=0, le=0.01, description="fraction of price the fair value moves at full inventory")


def weighted_fair_ticks(best_bid: int, best_ask: int, bid_depth: int, ask_depth: int, alpha: float) -> float:
    """P = mid + alpha (I - 1/2) S, ticks; the mid when the book has no depth."""
    mid = (best_bid + best_ask) / 2.0
    total = bid_depth + ask_depth
    if total <= 0:
        return mid
    imbalance = bid_depth / total
    return mid + alpha * (imbalance - 0.5) * (best_ask - best_bid)


class MicroPriceQuoter:
    """The plugin class: ``strategy.model: microprice`` (entry point) or
    ``"mmbot_microprice.model:MicroPriceQuoter"``."""

    Params = MicroPriceParams

    def __init__(self, params: MicroPriceParams, instrument: Instrument) -> None:
        self.params = params
        self.instrument = instrument
        step = instrument.step_lots
        lots = instrument.to_lots(Decimal(str(params.order_size)))
        self.size_lots = max(step, lots - lots % step)  # on the step grid
        self.max_lots = instrument.to_lots(Decimal(str(params.max_inventory)))
        if self.size_lots > self.max_lots:
            raise ValueError(f"order_size {params.order_size} exceeds max_inventory {params.max_inventory}")

    def on_trade(self, trade: Trade) -> None:
        return None  # the micro-price reads the book only

    def on_mid(self, now_ns: int, mid_ticks: float) -> None:
        return None

    def decide(self, ctx: MarketContext) -> Decision:
        p = self.params
        bid_depth = ask_depth = 0
        if ctx.book is not None:
            bid_depth = sum(q for _, q in ctx.book.top_bids(p.levels))
            ask_depth = sum(q for _, q in ctx.book.top_asks(p.levels))
        fair = weighted_fair_ticks(ctx.best_bid, ctx.best_ask, bid_depth, ask_depth, p.alpha)
        q = ctx.inventory_lots
        reservation = fair - p.skew * (q / self.max_lots) * fair
        half = max(p.min_half_spread_ticks, fair * p.half_spread_bps / 10_000.0)
        bid = min(math.floor(reservation - half), ctx.best_ask - 1)
        ask = max(math.ceil(reservation + half), ctx.best_bid + 1)
        if bid >= ask:  # a wide skew at a one-tick spread: keep one tick between them
            bid = ask - 1
        quotes = []
        if q + self.size_lots <= self.max_lots and bid > 0:
            quotes.append(Quote(side=Side.BUY, price_ticks=bid, qty_lots=self.size_lots, reason="microprice"))
        if -q + self.size_lots <= self.max_lots:
            quotes.append(Quote(side=Side.SELL, price_ticks=ask, qty_lots=self.size_lots, reason="microprice"))
        return Decision(quotes=tuple(quotes))
