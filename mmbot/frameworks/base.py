"""Framework-neutral strategy configuration (the strategy description's example API).

    config = StrategyConfig(name="BTC_MarketMaker", parameters={...}, timeframe="1m",
                            symbols=["BTC/USD"], capital=10000, framework=StrategyFramework.BACKTRADER)

``parameters`` are the seed's five (spread_bps, max_inventory, order_size,
skew_factor, update_freq), validated through :class:`mmbot.strategy.simple.SimpleParams`;
``cross_policy`` (clamp | allow) and ``tick_size`` are optional extras.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmbot.strategy.simple import SimpleParams

SEED_KEYS = ("spread_bps", "max_inventory", "order_size", "skew_factor", "update_freq")
EXTRA_KEYS = ("cross_policy", "tick_size")


class StrategyFramework(enum.Enum):
    """Where a strategy runs: mmbot's own engine/backtests, or backtrader."""

    MMBOT = "mmbot"
    BACKTRADER = "backtrader"


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyConfig:
    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    timeframe: str = "1m"
    symbols: Sequence[str] = ("BTC/USDT",)
    capital: float = 10_000.0
    framework: StrategyFramework = StrategyFramework.MMBOT

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty, was ''")
        unknown = sorted(set(self.parameters) - set(SEED_KEYS) - set(EXTRA_KEYS))
        if unknown:
            raise ValueError(f"parameters has unknown keys {unknown}; known: {[*SEED_KEYS, *EXTRA_KEYS]}")
        if self.capital <= 0:
            raise ValueError(f"capital must be > 0, was {self.capital}")
        if not isinstance(self.framework, StrategyFramework):
            raise ValueError(f"framework must be a StrategyFramework, was {self.framework!r}")
        cross = self.parameters.get("cross_policy", "clamp")
        if cross not in ("clamp", "allow"):
            raise ValueError(f"cross_policy must be clamp or allow, was {cross!r}")
        object.__setattr__(self, "parameters", dict(self.parameters))
        object.__setattr__(self, "symbols", tuple(self.symbols))
        self.simple_params()  # validates the values

    def simple_params(self) -> SimpleParams:
        p = self.parameters
        return SimpleParams(
            spread_bps=float(p.get("spread_bps", 20.0)),
            max_inventory=float(p.get("max_inventory", 10.0)),
            order_size=float(p.get("order_size", 1.0)),
            skew_factor=float(p.get("skew_factor", 0.001)),
            update_freq=int(p.get("update_freq", 1)),
        )
