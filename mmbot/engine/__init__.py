"""The engine: strategy -> risk gate -> order manager -> portfolio (pure)."""

from mmbot.engine.engine import Engine, EngineConfig, EngineEvent
from mmbot.engine.order_manager import OrderManager

__all__ = ["Engine", "EngineConfig", "EngineEvent", "OrderManager"]
