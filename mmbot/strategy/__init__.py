"""Pure quoting functions and their composition (no I/O, no clock, no asyncio)."""

from mmbot.strategy.simple import SimpleMarketMaker, SimpleParams, simple_quote_prices

__all__ = ["SimpleMarketMaker", "SimpleParams", "simple_quote_prices"]
