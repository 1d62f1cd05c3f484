"""Watchdog rules: pure checks, fed with timestamps, that say when a risk reason holds.

They read no clock: the engine feeds them capture/exchange time (book staleness,
feed silence), the asyncio runner feeds them wall-clock monotonic time (event-loop
lag, dead-man). All times are integer nanoseconds, limits milliseconds.

* :class:`SilenceWatchdog` (STALE_BOOK, FEED_SILENT, DEAD_MAN, executor heartbeat):
  ``tripped(now) = armed and now - last_beat > limit_ms * 10^6``. It is armed by the
  first beat: before any data has arrived nothing is stale (the book is not synced
  and the engine does not quote anyway).
* :class:`ThresholdWatchdog` (LOOP_LAG): ``tripped = last observed value > limit``.
* :func:`apply_rule` turns a verdict into gate calls: raise the reason while the
  condition holds; once it no longer holds, report the condition gone and the gate
  clears the reason after its calm period (``RiskGate.condition_cleared``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmbot.domain.risk import RiskReason
from mmbot.risk.gate import RiskGate, RiskTransition

NS_PER_MS = 1_000_000


@dataclass(slots=True)
class SilenceWatchdog:
    """No sign of life for more than ``limit_ms``."""

    reason: RiskReason
    limit_ms: float
    enabled: bool = True
    last_ns: int | None = None
    trips: int = 0

    def beat(self, now_ns: int) -> None:
        if self.last_ns is None or now_ns > self.last_ns:
            self.last_ns = now_ns

    def age_ms(self, now_ns: int) -> float | None:
        return None if self.last_ns is None else (now_ns - self.last_ns) / NS_PER_MS

    def is_tripped(self, now_ns: int) -> bool:
        return self.enabled and self.last_ns is not None and now_ns - self.last_ns > self.limit_ms * NS_PER_MS

    def describe(self, now_ns: int) -> str:
        age = self.age_ms(now_ns)
        return f"no sign of life for {age:.0f} ms (limit {self.limit_ms:.0f} ms)" if age is not None else "never seen"


@dataclass(slots=True)
class ThresholdWatchdog:
    """A measured value above ``limit`` (e.g. event-loop lag in ms)."""

    reason: RiskReason
    limit: float
    enabled: bool = True
    last_value: float = 0.0
    worst_value: float = 0.0
    trips: int = 0

    def observe(self, value: float) -> None:
        self.last_value = value
        self.worst_value = max(self.worst_value, value)

    def is_tripped(self) -> bool:
        return self.enabled and self.last_value > self.limit


def apply_rule(gate: RiskGate, reason: RiskReason, tripped: bool, now_ns: int, cause: str) -> RiskTransition | None:
    """Raise ``reason`` while ``tripped``; afterwards let it clear through the calm period."""
    if tripped:
        return gate.raise_reason(reason, now_ns, cause)
    if gate.has(reason):
        return gate.condition_cleared(reason, now_ns)
    return None


def check_silence(gate: RiskGate, rule: SilenceWatchdog, now_ns: int) -> RiskTransition | None:
    tripped = rule.is_tripped(now_ns)
    if tripped and not gate.has(rule.reason):
        rule.trips += 1
    return apply_rule(gate, rule.reason, tripped, now_ns, rule.describe(now_ns) if tripped else "")


def check_threshold(gate: RiskGate, rule: ThresholdWatchdog, now_ns: int, unit: str = "ms") -> RiskTransition | None:
    tripped = rule.is_tripped()
    if tripped and not gate.has(rule.reason):
        rule.trips += 1
    cause = f"{rule.last_value:.0f} {unit} > {rule.limit:.0f} {unit}" if tripped else ""
    return apply_rule(gate, rule.reason, tripped, now_ns, cause)
