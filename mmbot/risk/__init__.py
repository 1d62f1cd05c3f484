"""Risk gate: one place that decides whether an order action may go out."""

from mmbot.risk.gate import Allow, Deny, RiskConfig, RiskGate, RiskTransition

__all__ = ["Allow", "Deny", "RiskConfig", "RiskGate", "RiskTransition"]
