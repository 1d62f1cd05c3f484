"""The seed market maker as a backtrader Strategy.

``MarketMakerAdapter(config).to_backtrader()`` returns a ``bt.Strategy`` subclass
implementing the same quoting rules as mmbot's bar backtest
(:mod:`mmbot.research.bars`, :func:`mmbot.strategy.simple.bar_quotes`):

- at bar ``i`` with ``i % update_freq == 0``: cancel both resting orders; compute the
  corrected-skew quotes from the close and the position, in ticks (bids rounded
  down, asks up), clamp them one tick inside the close (``cross_policy`` clamp);
  place a Limit buy if ``q + order_size <= max_inventory``, a Limit sell if
  ``-q + order_size <= max_inventory``;
- a filled side is not re-quoted until the next update bar.

backtrader executes a Limit buy in the next bar when ``low <= limit``, at the open
if ``open <= limit`` (mirror for sells): that is ``fill_semantics: backtrader`` in
mmbot's bar backtest, which reproduces backtrader's fills one for one
(``tests/optimize/test_backtrader_adapter.py``). Our default (``strict``) needs the
price to trade *through* the quote (``low < bid``), which is more conservative.

Broker setup for a faithful run (:func:`run_cerebro` does it): no commission or a
maker fee as ``commission``, ``checksubmit=False`` or enough cash (the seed sizes
1 BTC orders against 10,000 of capital, which backtrader's cash check rejects), and
no slippage. Positions may go short (the strategy quotes both sides from flat).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mmbot.extras import BACKTRADER, require
from mmbot.frameworks.base import StrategyConfig, StrategyFramework
from mmbot.strategy.simple import SimpleMarketMaker, SimpleParams, bar_quotes

LOTS_PER_UNIT = 100_000_000  # 1e-8 base units per lot, as mmbot.domain.instrument


@dataclass(frozen=True, slots=True)
class BacktraderFill:
    bar: int  # index of the bar the fill happened in
    side: int  # +1 buy, -1 sell
    price: float
    size: float


def _require_backtrader() -> Any:
    require(BACKTRADER, "MarketMakerAdapter.to_backtrader()", "backtrader")
    import backtrader as bt  # backtrader is optional: only for the backtrader framework

    return bt


class MarketMakerAdapter:
    """Turns a :class:`StrategyConfig` into a strategy for another framework."""

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config
        self.params: SimpleParams = config.simple_params()
        self.cross_policy: str = str(config.parameters.get("cross_policy", "clamp"))
        self.tick_size: float = float(config.parameters.get("tick_size", 0.01))

    def to_backtrader(self) -> type:
        """A ``backtrader.Strategy`` subclass quoting like mmbot; its ``fills`` list records executions."""
        bt = _require_backtrader()
        p = self.params
        cross_policy = self.cross_policy
        tick = self.tick_size
        name = self.config.name

        class MmbotMarketMaker(bt.Strategy):  # type: ignore[misc, name-defined]
            params = (
                ("spread_bps", p.spread_bps),
                ("max_inventory", p.max_inventory),
                ("order_size", p.order_size),
                ("skew_factor", p.skew_factor),
                ("update_freq", p.update_freq),
                ("cross_policy", cross_policy),
                ("tick_size", tick),
            )

            def __init__(self) -> None:
                self.fills: list[BacktraderFill] = []
                self.orders_placed = 0
                self._bid: Any = None
                self._ask: Any = None

            def notify_order(self, order: Any) -> None:
                if order.status == order.Completed:
                    side = 1 if order.isbuy() else -1
                    self.fills.append(BacktraderFill(len(self.data) - 1, side, float(order.executed.price), abs(float(order.executed.size))))
                if not order.alive():
                    if order is self._bid:
                        self._bid = None
                    elif order is self._ask:
                        self._ask = None

            def next(self) -> None:
                i = len(self.data) - 1
                if i % int(self.p.update_freq) != 0:
                    return
                for o in (self._bid, self._ask):
                    if o is not None and o.alive():
                        self.cancel(o)
                self._bid = self._ask = None
                lots = SimpleParams(
                    spread_bps=self.p.spread_bps,
                    max_inventory=round(self.p.max_inventory * LOTS_PER_UNIT),
                    order_size=round(self.p.order_size * LOTS_PER_UNIT),
                    skew_factor=self.p.skew_factor,
                    update_freq=int(self.p.update_freq),
                )
                close_ticks = round(self.data.close[0] / self.p.tick_size)
                q_lots = round(self.position.size * LOTS_PER_UNIT)
                bid, ask = bar_quotes(close_ticks, float(q_lots), lots, self.p.cross_policy)
                # ticks / ticks_per_unit is the double nearest the decimal price (as the feed parsed
                # it); ticks * 0.01 is not (2791142 * 0.01 = 27911.420000000002 > 27911.42), and
                # backtrader would miss a fill when the bar opens exactly at the quote.
                per_unit = round(1.0 / self.p.tick_size)
                if bid is not None:
                    self._bid = self.buy(exectype=bt.Order.Limit, price=bid / per_unit, size=self.p.order_size)
                    self.orders_placed += 1
                if ask is not None:
                    self._ask = self.sell(exectype=bt.Order.Limit, price=ask / per_unit, size=self.p.order_size)
                    self.orders_placed += 1

        MmbotMarketMaker.__name__ = MmbotMarketMaker.__qualname__ = f"MmbotMarketMaker_{''.join(ch for ch in name if ch.isalnum())}"
        return MmbotMarketMaker

    def to_framework(self) -> Any:
        if self.config.framework is StrategyFramework.BACKTRADER:
            return self.to_backtrader()
        return SimpleMarketMaker(self.params)


def bars_feed(rows: Sequence[Sequence[float]]) -> Any:
    """A backtrader data feed over ``[[ts_ms, open, high, low, close, volume], ...]`` (no pandas)."""
    bt = _require_backtrader()

    class RowsFeed(bt.feed.DataBase):  # type: ignore[misc, name-defined]
        def start(self) -> None:
            super().start()
            self._rows = iter(rows)

        def _load(self) -> bool:
            try:
                ts, o, h, lo, c, v = next(self._rows)[:6]
            except StopIteration:
                return False
            self.lines.datetime[0] = bt.date2num(datetime.fromtimestamp(ts / 1000, UTC).replace(tzinfo=None))
            self.lines.open[0] = o
            self.lines.high[0] = h
            self.lines.low[0] = lo
            self.lines.close[0] = c
            self.lines.volume[0] = v
            self.lines.openinterest[0] = 0.0
            return True

    return RowsFeed(timeframe=bt.TimeFrame.Minutes, compression=1)


def run_cerebro(adapter: MarketMakerAdapter, rows: Sequence[Sequence[float]], *, cash: float = 1e12) -> Any:
    """Run the adapter's strategy in Cerebro over ``rows``; returns the strategy instance (``.fills``)."""
    bt = _require_backtrader()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bars_feed(rows))
    cerebro.addstrategy(adapter.to_backtrader())
    cerebro.broker.setcash(cash)
    cerebro.broker.set_checksubmit(False)
    [strategy] = cerebro.run()
    return strategy
