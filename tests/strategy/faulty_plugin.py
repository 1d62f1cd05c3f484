"""A plugin that misbehaves on purpose, in turn: raises, NaN price, crossed quotes, an
off-lot size, a non-Decision; every fifth step it quotes sanely (so it also trades)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mmbot.domain.events import Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Quote, Side
from mmbot.strategy.model import Decision, MarketContext


class FaultyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    size_lots: int = 1_000_000  # 0.01 BTC
    raise_on_mid: bool = False


class FaultyModel:
    Params = FaultyParams

    def __init__(self, params: FaultyParams, instrument: Instrument) -> None:
        self.params = params
        self.step = instrument.step_lots
        self.calls = 0

    def on_trade(self, trade: Trade) -> None:
        return None

    def on_mid(self, now_ns: int, mid_ticks: float) -> None:
        if self.params.raise_on_mid:
            raise RuntimeError("on_mid bug")

    def decide(self, ctx: MarketContext) -> Decision:
        self.calls += 1
        n = self.params.size_lots
        kind = self.calls % 6
        if kind == 0:
            raise ZeroDivisionError("plugin bug")
        if kind == 1:
            return Decision(quotes=(Quote(side=Side.BUY, price_ticks=float("nan"), qty_lots=n),))  # type: ignore[arg-type]
        if kind == 2:  # our bid above our ask
            return Decision(quotes=(Quote(side=Side.BUY, price_ticks=ctx.best_ask + 5, qty_lots=n),
                                    Quote(side=Side.SELL, price_ticks=ctx.best_bid - 5, qty_lots=n)))  # fmt: skip
        if kind == 3:
            return Decision(quotes=(Quote(side=Side.SELL, price_ticks=ctx.best_ask, qty_lots=n + self.step // 2),))
        if kind == 4:
            return "buy everything"  # type: ignore[return-value]
        return Decision(quotes=(Quote(side=Side.BUY, price_ticks=ctx.best_bid, qty_lots=n),
                                Quote(side=Side.SELL, price_ticks=ctx.best_ask, qty_lots=n)))  # fmt: skip
