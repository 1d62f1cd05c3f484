"""Adapters to other frameworks: ``MarketMakerAdapter(config).to_backtrader()``.

backtrader is an optional extra (``pip install 'mmbot[backtrader]'``); it is
imported only when ``to_backtrader()`` is called.
"""

from mmbot.frameworks.base import StrategyConfig, StrategyFramework
from mmbot.frameworks.mm_adapter import MarketMakerAdapter

__all__ = ["MarketMakerAdapter", "StrategyConfig", "StrategyFramework"]
