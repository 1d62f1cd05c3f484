"""Hedging decision: bring a large inventory back to a target with a taker order.

::

    if |q| > H:   hedge quantity = target - q      (> 0 buy, < 0 sell)
    else:         no hedge

The hedge is a taker order (it crosses the spread on purpose and pays the taker
fee), priced at the opposite touch of the hedge instrument's book: a sell at the
best bid, a buy at the best ask (an IOC limit: what the touch cannot fill
expires). The quantity is rounded toward zero to the order step.

=========  =========  ======================================================
symbol     parameter  unit
=========  =========  ======================================================
q          inventory  base units (lots inside the engine)
H          threshold  base units; hedge when |q| is strictly above it
target     target     base units (0 = flat)
=========  =========  ======================================================

Single capture: the hedge instrument would normally be a second, more liquid book
(a perpetual future, another venue). With only one capture at hand the hedge
instrument is the same book: the hedge is a taker fill at our own book's touch.
That is what ``hedge.instrument: null`` means, and what the paper executor does.

Worked example: q = 0.04 BTC, H = 0.03, target 0 -> sell 0.04 BTC at the best bid;
at q = 0.03 nothing happens (not strictly above the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmbot.domain.events import Trade
from mmbot.domain.orders import Quote, Side
from mmbot.strategy.model import Decision, MarketContext


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgeParams:
    threshold_lots: int
    target_lots: int = 0
    cooldown_ms: float = 1000.0

    def __post_init__(self) -> None:
        if self.threshold_lots < 0:
            raise ValueError(f"threshold_lots must be >= 0, was {self.threshold_lots}")
        if abs(self.target_lots) > self.threshold_lots:
            raise ValueError(f"|target_lots| {abs(self.target_lots)} must be <= threshold_lots {self.threshold_lots}")


def hedge_quantity(inventory: float, threshold: float, target: float = 0.0) -> float:
    """Signed quantity to trade (> 0 buy, < 0 sell), 0 when |inventory| <= threshold."""
    if abs(inventory) > threshold:
        return target - inventory
    return 0.0


def hedge_quote(
    inventory_lots: int, params: HedgeParams, *, best_bid: int, best_ask: int, step_lots: int = 1
) -> Quote | None:
    """The taker order that brings ``inventory_lots`` to the target, or None."""
    qty = int(hedge_quantity(inventory_lots, params.threshold_lots, params.target_lots))
    size = abs(qty) // step_lots * step_lots
    if size <= 0:
        return None
    if qty > 0:
        return Quote(side=Side.BUY, price_ticks=best_ask, qty_lots=size, reason="hedge", is_taker=True)
    return Quote(side=Side.SELL, price_ticks=best_bid, qty_lots=size, reason="hedge", is_taker=True)


class HedgeOnlyModel:
    """The model of a hedge instrument (``strategy.hedge.instrument`` naming another symbol):
    it quotes nothing; its engine only carries the hedges the quoted instrument sends
    (mmbot.engine.hedging)."""

    def on_trade(self, trade: Trade) -> None:
        return None

    def on_mid(self, now_ns: int, mid_ticks: float) -> None:
        return None

    def decide(self, ctx: MarketContext) -> Decision:
        return Decision(reasons=("hedge_only",))

