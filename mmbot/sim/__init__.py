"""The simulated venue shared by backtests, paper trading and the emulator."""

from mmbot.sim.venue import FillModel, LatencyModel, SimVenue, VenueConfig

__all__ = ["FillModel", "LatencyModel", "SimVenue", "VenueConfig"]
