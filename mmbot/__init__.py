"""mmbot: a market-making daemon for crypto exchanges."""

__version__ = "0.1.0"
