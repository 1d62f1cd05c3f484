"""The engine: strategy -> risk gate -> order manager -> portfolio (pure)."""

from mmbot.domain.engine_events import EngineEvent
from mmbot.engine.engine import Engine, EngineConfig
from mmbot.engine.order_manager import OrderManager

__all__ = ["Engine", "EngineConfig", "EngineEvent", "OrderManager"]
