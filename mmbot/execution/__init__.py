"""Executors: the paper executor over the simulated venue, and the ccxt executor."""

from mmbot.execution.paper import PaperExecutor
from mmbot.execution.protocol import Executor

__all__ = ["Executor", "PaperExecutor"]
