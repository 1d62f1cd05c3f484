"""The exchange executor (ccxt) for sandbox and live. Simulated runs execute on
:class:`~mmbot.sim.venue.SimVenue` through :class:`~mmbot.runtime.simulated.SimExecution`."""

from mmbot.execution.protocol import Executor

__all__ = ["Executor"]
