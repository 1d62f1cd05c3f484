"""Pure quoting functions and their composition (no I/O, no clock, no asyncio).

See docs/strategy.md for every formula with its symbols, units and a worked example.
"""

from mmbot.strategy.adverse import AdverseSelectionGuard, AdverseSelectionParams, is_large_trade
from mmbot.strategy.avellaneda import (
    IntensityEstimator,
    as_infinite_horizon_quotes,
    as_optimal_spread,
    as_reservation_price,
    avellaneda_stoikov_quotes,
    fit_intensity,
)
from mmbot.strategy.breakeven import (
    breakeven_flags,
    breakeven_flags_for,
    breakeven_spread_bps,
    check_breakeven_settings,
    quoted_spread_bps,
)
from mmbot.strategy.composed import (
    AvellanedaParams,
    ComposedModel,
    ComposedParams,
    GlftParams,
    ImbalanceParams,
    VolatilityParams,
)
from mmbot.strategy.glft import glft_coefficients, glft_quotes
from mmbot.strategy.hedge import HedgeParams, hedge_quantity, hedge_quote
from mmbot.strategy.imbalance import book_depths, book_imbalance, imbalance_adjust
from mmbot.strategy.ladder import SEED_LADDER, LadderLevel, LevelQuote, bar_ladder_quotes, ladder_quotes
from mmbot.strategy.model import Decision, MarketContext, QuoteModel
from mmbot.strategy.simple import (
    SimpleMarketMaker,
    SimpleParams,
    apply_cross_policy,
    bar_quotes,
    inventory_skew,
    may_place,
    reservation_price,
    simple_quote_prices,
    simple_quotes,
)
from mmbot.strategy.volatility import EwmaVolatility, ewma_update, volatility_multiplier

__all__ = [
    "SEED_LADDER",
    "AdverseSelectionGuard",
    "AdverseSelectionParams",
    "AvellanedaParams",
    "ComposedModel",
    "ComposedParams",
    "Decision",
    "EwmaVolatility",
    "GlftParams",
    "HedgeParams",
    "ImbalanceParams",
    "IntensityEstimator",
    "LadderLevel",
    "LevelQuote",
    "MarketContext",
    "QuoteModel",
    "SimpleMarketMaker",
    "SimpleParams",
    "VolatilityParams",
    "apply_cross_policy",
    "as_infinite_horizon_quotes",
    "as_optimal_spread",
    "as_reservation_price",
    "avellaneda_stoikov_quotes",
    "bar_ladder_quotes",
    "bar_quotes",
    "book_depths",
    "book_imbalance",
    "breakeven_flags",
    "breakeven_flags_for",
    "breakeven_spread_bps",
    "check_breakeven_settings",
    "ewma_update",
    "fit_intensity",
    "glft_coefficients",
    "glft_quotes",
    "hedge_quantity",
    "hedge_quote",
    "imbalance_adjust",
    "inventory_skew",
    "is_large_trade",
    "ladder_quotes",
    "may_place",
    "quoted_spread_bps",
    "reservation_price",
    "simple_quote_prices",
    "simple_quotes",
    "volatility_multiplier",
]
