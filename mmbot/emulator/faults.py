"""Fault injection for the Binance-protocol emulator.

Vocabulary (the replay feed's ``KIND@SECONDS[:DURATION]``, extended with venue faults);
``T`` is seconds after the emulator started, ``DUR`` a duration in seconds:

==================  ==========================================================================
kind                effect
==================  ==========================================================================
``drop@T``          close every websocket (market data and ws-api) with close code 1001
``gap@T``           skip the next depth update of every symbol (a sequence gap)
``garbage@T``       send a non-JSON text frame (``this is not json``) on market-data sockets
``malformed@T``     send a malformed JSON frame starting with ``{`` (stops ccxt's receive loop)
``freeze@T:DUR``    send no market data for DUR s; sockets stay open and answer pings; the
                    market keeps moving, so the stream resumes with a sequence gap
``http429@T:DUR``   REST and ws-api answer HTTP 429, code -1003
``http418@T:DUR``   REST and ws-api answer HTTP 418 (IP ban), code -1003
``http5xx@T:DUR``   REST and ws-api answer HTTP 503, code -1001 (execution status unknown)
``slow@T:DUR``      REST requests are carried out, their answers delayed by ``slow_ms``
                    (default 3000 ms)
``reject@T:DUR``    every new order is rejected with -2010
``skew@T:DUR``      the server clock runs ``skew_ms`` (default 15000 ms) ahead: signed requests
                    fail with -1021 unless the client adjusts for the time difference
==================  ==========================================================================

The same kinds can be injected at run time through the admin endpoint
(``POST /admin/fault``, loopback only); see docs/emulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmbot.engine.session import split_fault_spec

ONE_SHOT = frozenset({"drop", "gap", "garbage", "malformed"})
TIMED = frozenset({"freeze", "http429", "http418", "http5xx", "slow", "reject", "skew"})
KINDS = ONE_SHOT | TIMED


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One fault: ``kind`` at ``at_s`` seconds after start, lasting ``duration_s``."""

    kind: str
    at_s: float = 0.0
    duration_s: float = 0.0
    value_ms: float | None = None  # slow: delay; skew: clock offset

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(sorted(KINDS))}, was {self.kind!r}")
        if self.at_s < 0:
            raise ValueError(f"fault time must be >= 0 s, was {self.at_s}")
        if self.kind in TIMED and self.duration_s <= 0:
            raise ValueError(f"fault {self.kind} needs a duration, e.g. {self.kind}@10:5")


def parse_fault_specs(spec: str | None) -> tuple[FaultSpec, ...]:
    """``gap@5,freeze@10:4,http429@20:3`` -> fault specs (seconds after start)."""
    return tuple(FaultSpec(kind=kind, at_s=at_s, duration_s=dur_s) for kind, at_s, dur_s in split_fault_spec(spec))


class FaultState:
    """Active faults, read by the server on every request and frame.

    Timed faults hold an expiry on the server's monotonic clock (seconds); one-shot
    market-data faults are counters the replay consumes.
    """

    def __init__(self, *, slow_ms: float = 3000.0, skew_ms: float = 15000.0) -> None:
        self.until: dict[str, float] = {}
        self.pending_gaps = 0
        self.slow_ms = slow_ms
        self.skew_ms = skew_ms
        self.injected: dict[str, int] = {}

    def activate(self, spec: FaultSpec, now_s: float) -> None:
        self.injected[spec.kind] = self.injected.get(spec.kind, 0) + 1
        if spec.kind == "slow" and spec.value_ms is not None:
            self.slow_ms = spec.value_ms
        if spec.kind == "skew" and spec.value_ms is not None:
            self.skew_ms = spec.value_ms
        if spec.kind == "gap":
            self.pending_gaps += 1
        elif spec.kind in TIMED:
            self.until[spec.kind] = max(self.until.get(spec.kind, 0.0), now_s + spec.duration_s)

    def is_active(self, kind: str, now_s: float) -> bool:
        end = self.until.get(kind)
        if end is None:
            return False
        if now_s >= end:
            del self.until[kind]
            return False
        return True

    def active(self, now_s: float) -> dict[str, float]:
        """Timed faults still running -> seconds left."""
        return {k: round(end - now_s, 3) for k, end in list(self.until.items()) if self.is_active(k, now_s)}

    def clear(self) -> None:
        self.until.clear()
        self.pending_gaps = 0
