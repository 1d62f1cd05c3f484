"""An example mmbot strategy plugin: the micro-price quoter (see :mod:`mmbot_microprice.model`)."""

from mmbot_microprice.model import MicroPriceParams, MicroPriceQuoter

__all__ = ["MicroPriceParams", "MicroPriceQuoter"]
