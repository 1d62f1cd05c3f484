"""Ledger and performance metrics shared by the daemon, backtests and reports."""

from mmbot.portfolio.ledger import Ledger

__all__ = ["Ledger"]
