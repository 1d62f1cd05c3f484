"""Risk gate: one place that decides whether an order action may go out."""

from mmbot.risk.gate import Allow, Deny, GlobalLimit, RiskConfig, RiskGate, RiskTransition
from mmbot.risk.watchdog import SilenceWatchdog, ThresholdWatchdog

__all__ = ["Allow", "Deny", "GlobalLimit", "RiskConfig", "RiskGate", "RiskTransition", "SilenceWatchdog", "ThresholdWatchdog"]
