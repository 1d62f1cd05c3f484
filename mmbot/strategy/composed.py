"""The composed quoting model: a base model plus independently switchable modifiers.

Each decision step (book mode) runs, in order::

    1. adverse-selection guard   cancel-all during a cooldown; afterwards a spread
                                 multiplier w (widen_multiplier, else 1)
    2. base model -> (c, h_bid, h_ask)   centre and the two half-spreads, in ticks
         simple:              c = s (1 - skew),   h = s * spread_bps / 20000
                              (with a ladder: h = s * offset_0 / 10000)
         avellaneda_stoikov:  c = r,  h = spread / 2   (rolling or infinite horizon)
         glft:                c = s - sigma c2 q,  h = c1 + Delta/2 sigma c2
       (AS and GLFT quote the simple model, reason "warmup", until calibrated)
    3. volatility:   h *= clip(sigma_now / sigma_avg, min, max)
    4. h *= w                                          (guard widening)
    5. imbalance:    h_bid, h_ask tightened/widened by the imbalance rule
    6. floor:        h_bid + h_ask >= s * min_spread_bps / 10000 (scaled up if not;
                     min_spread_bps = the break-even spread unless
                     allow_below_breakeven, and at least spread_bps for AS/GLFT)
    7. hedge:        |q| > H -> a taker order to the target; the side that would add
                     to the position is not quoted in that step
    8. ladder:       levels at h * o_i / o_0, rounded away from the touch, clamped
                     post-only safe, each side's cumulative size within max_inventory

The output is data (:class:`~mmbot.strategy.model.Decision`): the desired quotes
(side, price, qty, level, reason), an optional cancel-all and an optional hedge.
The engine's OrderManager diffs the quotes against live orders with its re-quote
tolerance. Units: prices in ticks inside the model, model parameters (sigma, k, A,
gamma) in the quote currency (converted with the tick size), sizes in lots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmbot.domain.events import Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Quote, Side
from mmbot.strategy.adverse import AdverseSelectionGuard, AdverseSelectionParams
from mmbot.strategy.avellaneda import IntensityEstimator, as_infinite_horizon_quotes, avellaneda_stoikov_quotes
from mmbot.strategy.glft import glft_quotes
from mmbot.strategy.hedge import HedgeParams, hedge_quote
from mmbot.strategy.imbalance import book_depths, book_imbalance, imbalance_adjust
from mmbot.strategy.ladder import LadderLevel, ladder_quotes, sorted_levels
from mmbot.strategy.model import Decision, MarketContext
from mmbot.strategy.simple import CrossPolicy, reservation_price
from mmbot.strategy.volatility import EwmaVolatility

ModelName = Literal["simple", "avellaneda_stoikov", "glft"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VolatilityParams:
    half_life_s: float = 30.0
    long_half_life_s: float = 600.0
    min_multiplier: float = 0.5
    max_multiplier: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.min_multiplier <= self.max_multiplier:
            raise ValueError(f"need 0 < min_multiplier <= max_multiplier, were {self.min_multiplier}, {self.max_multiplier}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImbalanceParams:
    levels: int = 5
    within_bps: float | None = None
    threshold: float = 0.2
    adjust_fraction: float = 0.25


@dataclass(frozen=True, slots=True, kw_only=True)
class AvellanedaParams:
    gamma: float = 0.1
    k: float | None = None  # per quote-currency unit; None = estimate online
    sigma: float | None = None  # quote currency per sqrt(second); None = estimate online
    horizon_s: float = 60.0
    variant: Literal["rolling", "infinite"] = "rolling"
    warmup_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GlftParams:
    gamma: float = 0.1
    xi: float | None = None  # None = gamma
    A: float | None = None  # fills per second; None = estimate online
    k: float | None = None
    sigma: float | None = None
    warmup_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ComposedParams:
    model: ModelName = "simple"
    spread_bps: float = 20.0
    order_size_lots: int = 1
    max_inventory_lots: int = 10
    skew_factor: float = 0.001
    min_spread_bps: float = 0.0
    cross_policy: CrossPolicy = "clamp"
    ladder: tuple[LadderLevel, ...] = ()  # sizes in lots
    volatility: VolatilityParams | None = None
    imbalance: ImbalanceParams | None = None
    adverse_selection: AdverseSelectionParams | None = None
    avellaneda: AvellanedaParams = field(default_factory=AvellanedaParams)
    glft: GlftParams = field(default_factory=GlftParams)
    hedge: HedgeParams | None = None
    estimation_window_s: float = 600.0
    min_trades: int = 50

    def __post_init__(self) -> None:
        if self.spread_bps <= 0:
            raise ValueError(f"spread_bps must be > 0, was {self.spread_bps}")
        if self.order_size_lots <= 0 or self.max_inventory_lots < self.order_size_lots:
            raise ValueError(
                f"need 0 < order_size_lots <= max_inventory_lots, were {self.order_size_lots}, {self.max_inventory_lots}"
            )


class ComposedModel:
    """A :class:`~mmbot.strategy.model.QuoteModel` built from :class:`ComposedParams`."""

    def __init__(self, params: ComposedParams, instrument: Instrument | None = None) -> None:
        self.params = params
        p = params
        self._levels: tuple[LadderLevel, ...] = (
            sorted_levels(p.ladder) if p.ladder else (LadderLevel(offset_bps=1.0, size=float(p.order_size_lots)),)
        )
        # The simple model's half-spread in bps: the first ladder level's offset, else spread/2.
        self._simple_half_bps = self._levels[0].offset_bps if p.ladder else p.spread_bps / 2.0
        v = p.volatility
        self._vol = EwmaVolatility(v.half_life_s, v.long_half_life_s, mode="log") if v else None
        needs_sigma = (p.model == "avellaneda_stoikov" and p.avellaneda.sigma is None) or (
            p.model == "glft" and p.glft.sigma is None
        )
        needs_intensity = (p.model == "avellaneda_stoikov" and p.avellaneda.k is None) or (
            p.model == "glft" and (p.glft.k is None or p.glft.A is None)
        )
        self._sigma = EwmaVolatility(30.0, p.estimation_window_s, mode="absolute") if needs_sigma else None
        self._intensity = IntensityEstimator(p.estimation_window_s, min_trades=p.min_trades) if needs_intensity else None
        a = p.adverse_selection
        self._guard = AdverseSelectionGuard(a) if a is not None else None
        self._tick = 0.0
        self._lot = 0.0
        self._min_notional = 0.0
        self._step_lots = 1
        self._mid_ticks: float | None = None
        self._first_ns: int | None = None
        self._last_hedge_ns = -(10**18)
        self._last_hedge_inventory: int | None = None
        self.warmup_decisions = 0
        if instrument is not None:
            self._set_instrument(instrument)

    # --- inputs ------------------------------------------------------------------------
    def on_trade(self, trade: Trade) -> None:
        guard = self._guard
        if guard is not None:
            guard.on_trade(trade.ts_local_ns, trade.price_ticks, trade.qty_lots)
        if self._intensity is not None and self._mid_ticks is not None and self._tick:
            # Distance from the mid just before the trade, in the quote currency.
            self._intensity.on_trade(trade.ts_local_ns, abs(trade.price_ticks - self._mid_ticks) * self._tick)

    def on_mid(self, now_ns: int, mid_ticks: float) -> None:
        if self._first_ns is None:
            self._first_ns = now_ns
        self._mid_ticks = mid_ticks
        if self._vol is not None:
            self._vol.on_mid(now_ns, mid_ticks)
        if self._sigma is not None:
            self._sigma.on_mid(now_ns, mid_ticks)  # ticks; converted to price units on use
        if self._guard is not None:
            self._guard.on_mid(now_ns, mid_ticks)

    def _set_instrument(self, inst: Instrument) -> None:
        self._tick = float(inst.tick_size)
        self._lot = float(inst.qty_unit)
        self._min_notional = float(inst.min_notional)
        self._step_lots = inst.step_lots
        if self._guard is not None:
            self._guard.set_scales(self._tick, self._lot)

    # --- the decision ------------------------------------------------------------------
    def decide(self, ctx: MarketContext) -> Decision:
        p = self.params
        now = ctx.now_ns
        if self._tick == 0.0:
            self._set_instrument(ctx.instrument)
        mid = ctx.mid_ticks
        inv = ctx.inventory_lots
        widen = 1.0
        reasons: list[str] = []
        guard = self._guard
        if guard is not None:
            status = guard.status(now)
            if status.cancel_all:
                return Decision(cancel_all=True, reasons=(f"adverse_selection:{status.reason}",))
            widen = status.spread_multiplier
            if widen != 1.0:
                reasons.append("widened")

        center, h_bid, h_ask, reason, bid_ok, ask_ok = self._base(ctx)
        if self._vol is not None and p.volatility is not None:
            m = self._vol.multiplier(now, p.volatility.min_multiplier, p.volatility.max_multiplier)
            h_bid *= m
            h_ask *= m
        h_bid *= widen
        h_ask *= widen
        if p.imbalance is not None and ctx.book is not None:
            im = p.imbalance
            imbalance = book_imbalance(*book_depths(ctx.book, mid, im.levels, im.within_bps))
            h_bid, h_ask = imbalance_adjust(h_bid, h_ask, imbalance, im.threshold, im.adjust_fraction)
        floor = mid * p.min_spread_bps / 10_000.0
        total = h_bid + h_ask
        if total < floor:
            if total > 0:
                h_bid, h_ask = h_bid * floor / total, h_ask * floor / total
            else:
                h_bid = h_ask = floor / 2.0
        if h_bid + h_ask <= 0:
            h_bid = h_ask = 0.5  # at least one tick between bid and ask

        hedge = self._hedge(ctx)
        if hedge is not None:
            # Do not add to the position the hedge is taking down.
            if hedge.side is Side.SELL:
                bid_ok = False
            else:
                ask_ok = False
            reasons.append("hedge")

        rungs = ladder_quotes(
            center,
            h_bid,
            h_ask,
            self._levels,
            best_bid=ctx.best_bid,
            best_ask=ctx.best_ask,
            inventory=float(inv),
            max_inventory=float(p.max_inventory_lots),
            cross_policy="clamp",  # book mode: always post-only safe
            bid_enabled=bid_ok,
            ask_enabled=ask_ok,
        )
        quotes: list[Quote] = []
        tick, lot, min_notional = self._tick, self._lot, self._min_notional
        for rung in rungs:
            size = int(rung.size)
            if size <= 0 or rung.price_ticks * tick * size * lot < min_notional:
                continue
            quotes.append(
                Quote(
                    side=Side.BUY if rung.is_bid else Side.SELL,
                    price_ticks=rung.price_ticks,
                    qty_lots=size,
                    level=rung.level,
                    reason=reason,
                )
            )
        reasons.insert(0, reason)
        return Decision(quotes=tuple(quotes), hedge=hedge, reasons=tuple(reasons))

    # --- base models -------------------------------------------------------------------
    def _simple(self, ctx: MarketContext) -> tuple[float, float, float]:
        p = self.params
        mid = ctx.mid_ticks
        center = reservation_price(mid, float(ctx.inventory_lots), float(p.max_inventory_lots), p.skew_factor)
        half = mid * self._simple_half_bps / 10_000.0
        return center, half, half

    def _calibration(self, now_ns: int, sigma_cfg: float | None, warmup_s: float) -> tuple[float, float | None, float | None] | None:
        """(sigma, A, k) in price units, or None while warming up."""
        if self._first_ns is None or (now_ns - self._first_ns) / 1e9 < warmup_s:
            return None
        if sigma_cfg is not None:
            sigma = sigma_cfg
        else:
            assert self._sigma is not None
            cur = self._sigma.current()
            if cur is None or cur <= 0 or self._sigma.samples < 10:
                return None
            sigma = cur * self._tick
        A: float | None = None
        k: float | None = None
        if self._intensity is not None:
            fit = self._intensity.estimate(now_ns)
            if fit is None:
                return None
            A, k = fit
        return sigma, A, k

    def _base(self, ctx: MarketContext) -> tuple[float, float, float, str, bool, bool]:
        p = self.params
        if p.model == "simple":
            c, hb, ha = self._simple(ctx)
            return c, hb, ha, "simple", True, True
        tick = self._tick
        mid_price = ctx.mid_ticks * tick
        q = ctx.inventory_lots / p.order_size_lots
        q_max = p.max_inventory_lots / p.order_size_lots
        bid: float | None
        ask: float | None
        if p.model == "avellaneda_stoikov":
            a = p.avellaneda
            cal = self._calibration(ctx.now_ns, a.sigma, a.warmup_s)
            if cal is None:
                self.warmup_decisions += 1
                c, hb, ha = self._simple(ctx)
                return c, hb, ha, "warmup", True, True
            sigma, _, k_est = cal
            k = a.k if a.k is not None else k_est
            assert k is not None
            if a.variant == "rolling":
                bid, ask = avellaneda_stoikov_quotes(mid_price, q, a.gamma, sigma, k, a.horizon_s)
            else:
                bid, ask = as_infinite_horizon_quotes(mid_price, q, a.gamma, sigma, k, q_max)
            reason = "avellaneda_stoikov"
        else:
            g = p.glft
            cal = self._calibration(ctx.now_ns, g.sigma, g.warmup_s)
            if cal is None:
                self.warmup_decisions += 1
                c, hb, ha = self._simple(ctx)
                return c, hb, ha, "warmup", True, True
            sigma, a_est, k_est = cal
            A = g.A if g.A is not None else a_est
            k = g.k if g.k is not None else k_est
            assert A is not None and k is not None
            bid, ask = glft_quotes(mid_price, q, sigma=sigma, gamma=g.gamma, A=A, k=k, xi=g.xi, delta=1.0, q_max=q_max)
            reason = "glft"
        return (*_center_halves(mid_price, bid, ask, tick), reason, bid is not None, ask is not None)

    def _hedge(self, ctx: MarketContext) -> Quote | None:
        h = self.params.hedge
        if h is None:
            return None
        inv = ctx.inventory_lots
        now = ctx.now_ns
        # One hedge at a time: wait for its fill (the inventory changes) or the cooldown.
        if inv == self._last_hedge_inventory and now - self._last_hedge_ns < h.cooldown_ms * 1_000_000:
            return None
        quote = hedge_quote(inv, h, best_bid=ctx.best_bid, best_ask=ctx.best_ask, step_lots=self._step_lots)
        if quote is not None:
            self._last_hedge_ns = now
            self._last_hedge_inventory = inv
        return quote


def _center_halves(mid_price: float, bid: float | None, ask: float | None, tick: float) -> tuple[float, float, float]:
    """Model prices (quote currency) -> centre and half-spreads in ticks.

    With one side missing (beyond an inventory bound) the centre is put one tick
    from the remaining quote, so that quote keeps its price; the other side is not
    quoted anyway.
    """
    if bid is not None and ask is not None:
        half = max((ask - bid) / 2.0, 0.0) / tick
        return (bid + ask) / 2.0 / tick, half, half
    if bid is not None:
        return bid / tick + 1.0, 1.0, 1.0
    if ask is not None:
        return ask / tick - 1.0, 1.0, 1.0
    return mid_price / tick, 0.5, 0.5


__all__ = [
    "AvellanedaParams",
    "ComposedModel",
    "ComposedParams",
    "GlftParams",
    "ImbalanceParams",
    "VolatilityParams",
]
