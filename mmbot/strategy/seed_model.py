"""The seed strategy as a book-mode quoting model (one bid, one ask).

Prices come from :func:`mmbot.strategy.simple.simple_quote_prices` in tick units,
rounded away from the touch (bids down, asks up) and kept post-only safe (a bid at
most one tick below the best ask, an ask at least one tick above the best bid).
Sizes respect the inventory limit counting resting orders.
"""

from __future__ import annotations

import math

from mmbot.domain.events import Trade
from mmbot.domain.orders import Quote, Side
from mmbot.strategy.model import Decision, MarketContext
from mmbot.strategy.simple import simple_quote_prices


class SeedModel:
    def __init__(self, *, spread_bps: float, order_size_lots: int, max_inventory_lots: int, skew_factor: float) -> None:
        self.spread_bps = spread_bps
        self.order_size_lots = order_size_lots
        self.max_inventory_lots = max_inventory_lots
        self.skew_factor = skew_factor

    def on_trade(self, trade: Trade) -> None:
        return None

    def on_mid(self, now_ns: int, mid_ticks: float) -> None:
        return None

    def decide(self, ctx: MarketContext) -> Decision:
        bid_f, ask_f = simple_quote_prices(
            ctx.mid_ticks, float(ctx.inventory_lots), self.spread_bps, float(self.max_inventory_lots), self.skew_factor
        )
        bid = min(math.floor(bid_f), ctx.best_ask - 1)
        ask = max(math.ceil(ask_f), ctx.best_bid + 1)
        size = self.order_size_lots
        quotes = []
        if bid > 0 and ctx.inventory_lots + size <= self.max_inventory_lots:
            quotes.append(Quote(side=Side.BUY, price_ticks=bid, qty_lots=size, reason="seed"))
        if ask > 0 and -ctx.inventory_lots + size <= self.max_inventory_lots:
            quotes.append(Quote(side=Side.SELL, price_ticks=ask, qty_lots=size, reason="seed"))
        return Decision(quotes=tuple(quotes))
