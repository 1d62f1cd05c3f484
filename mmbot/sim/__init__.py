"""The simulated venue shared by backtests, paper trading and the emulator."""

from mmbot.sim.latency import LatencyModel, LatencySampler
from mmbot.sim.venue import FillModel, SimVenue, VenueConfig
from mmbot.sim.wallet import Wallet

__all__ = ["FillModel", "LatencyModel", "LatencySampler", "SimVenue", "VenueConfig", "Wallet"]
