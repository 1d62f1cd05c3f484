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
(``POST /admin/fault``, loopback only); see docs/emulator.md. ``kind=none`` there (or
``DELETE /admin/fault``) clears every active fault.

Validated inputs. A non-finite or absurd number used to be accepted as is: ``nan``,
``inf`` or ``1e999`` as a duration left the emulator answering 503 for ever, and a
test (or an operator) had to restart it. Every number is therefore checked where a
:class:`FaultSpec` is built, so the admin endpoint, ``--faults`` and ``run_emulator``
share one rule; a bad value raises :class:`FaultInputError` (a ``ValueError`` naming
the parameter and the value) and nothing is activated:

* ``duration_s``: finite, ``0 < duration_s <= 3600`` for timed kinds (one hour is
  longer than any recovery a test measures; a longer outage is a stopped emulator);
  one-shot kinds take ``0 <= duration_s <= 3600`` and ignore it;
* ``at_s`` (scheduled faults): finite, ``0 <= at_s <= 604800`` (one week);
* ``delay_ms`` (slow): finite, ``0 <= delay_ms <= 60000``: any client has timed out
  long before a minute;
* ``skew_ms`` (skew): finite, ``-3600000 <= skew_ms <= 3600000`` (one hour either way).

A new activation of a timed kind replaces the running one: its end becomes
now + the new duration, shorter or longer, so a test can shorten a fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmbot.engine.session import split_fault_spec
from mmbot.errors import ConfigError

ONE_SHOT = frozenset({"drop", "gap", "garbage", "malformed"})
TIMED = frozenset({"freeze", "http429", "http418", "http5xx", "slow", "reject", "skew"})
KINDS = ONE_SHOT | TIMED
CLEAR = "none"  # admin only: clear every active fault

MAX_DURATION_S = 3600.0
MAX_AT_S = 7 * 86400.0
MAX_DELAY_MS = 60_000.0
MAX_SKEW_MS = 3_600_000.0


class FaultInputError(ConfigError, ValueError):
    """A fault parameter out of its range: says which one and what was given."""

    def __init__(self, param: str, value: Any, rule: str) -> None:
        shown = value if isinstance(value, str) else str(value)
        label = "fault kind" if param == "kind" else param
        super().__init__(f"{label} must be {rule}, was {shown!r}")
        self.param = param
        self.value = shown
        self.rule = rule


def _fmt(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)  # 3600000, not :g's 3.6e+06


def check_range(param: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    # NaN fails every comparison, so test for the good range rather than the bad one.
    above_low = value > low if low_open else value >= low
    if not (math.isfinite(value) and above_low and value <= high):
        op = "<" if low_open else "<="
        raise FaultInputError(param, value, f"a finite number with {_fmt(low)} {op} {param} <= {_fmt(high)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One fault: ``kind`` at ``at_s`` seconds after start, lasting ``duration_s``.

    Every number is checked here (see the module docstring), whoever builds it.
    """

    kind: str
    at_s: float = 0.0
    duration_s: float = 0.0
    value_ms: float | None = None  # slow: delay; skew: clock offset

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultInputError("kind", self.kind, f"one of {', '.join(sorted(KINDS))}")
        check_range("at_s", self.at_s, 0.0, MAX_AT_S)
        if self.kind in TIMED:
            if self.duration_s == 0:
                raise FaultInputError("duration_s", self.duration_s,
                                      f"given for {self.kind} (0 < duration_s <= {_fmt(MAX_DURATION_S)}), e.g. {self.kind}@10:5")
            check_range("duration_s", self.duration_s, 0.0, MAX_DURATION_S, low_open=True)
        else:
            check_range("duration_s", self.duration_s, 0.0, MAX_DURATION_S)
        if self.value_ms is not None:
            if self.kind == "skew":
                check_range("skew_ms", self.value_ms, -MAX_SKEW_MS, MAX_SKEW_MS)
            else:
                check_range("delay_ms", self.value_ms, 0.0, MAX_DELAY_MS)


def parse_fault_specs(spec: str | None) -> tuple[FaultSpec, ...]:
    """``gap@5,freeze@10:4,http429@20:3`` -> fault specs (seconds after start)."""
    return tuple(FaultSpec(kind=kind, at_s=at_s, duration_s=dur_s) for kind, at_s, dur_s in split_fault_spec(spec))


_RANGES = {
    "duration_s": f"0 < duration_s <= {_fmt(MAX_DURATION_S)} (seconds)",
    "delay_ms": f"0 <= delay_ms <= {_fmt(MAX_DELAY_MS)}",
    "skew_ms": f"{_fmt(-MAX_SKEW_MS)} <= skew_ms <= {_fmt(MAX_SKEW_MS)}",
}


def _number(param: str, raw: Any) -> float:
    """A number from a query string (text) or a JSON body (text or number); bools are not numbers."""
    rule = f"a finite number with {_RANGES[param]}"
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise FaultInputError(param, raw, rule)
    try:
        value = float(raw)
    except (ValueError, OverflowError) as exc:
        raise FaultInputError(param, raw, rule) from exc
    if not math.isfinite(value):
        raise FaultInputError(param, raw, rule)
    return value


def admin_fault_spec(fields: Mapping[str, Any]) -> FaultSpec | None:
    """``POST /admin/fault`` fields (query and JSON body merged) -> a spec, or None for ``kind=none``.

    Raises :class:`FaultInputError` naming the first bad parameter; the message keeps
    the value as the client sent it (``"nan"``, not ``nan`` reformatted).
    """
    kind = fields.get("kind")
    if not isinstance(kind, str) or kind not in KINDS | {CLEAR}:
        raise FaultInputError("kind", "" if kind is None else kind, f"one of {', '.join(allowed_admin_kinds())}")
    if kind == CLEAR:
        return None
    raw_duration = fields.get("duration_s")
    duration = 0.0 if raw_duration is None else _number("duration_s", raw_duration)
    # ``delay_ms`` first, as before; either name carries slow's delay or skew's offset.
    value_param = "delay_ms" if fields.get("delay_ms") is not None else "skew_ms"
    raw_value = fields.get(value_param)
    value = None if raw_value is None else _number(value_param, raw_value)
    try:
        return FaultSpec(kind=kind, duration_s=duration, value_ms=value)
    except FaultInputError as exc:
        # Name the parameter as the client spelled it and echo its value as sent
        # ("1e999", not the float it became).
        raw = raw_duration if exc.param == "duration_s" else raw_value
        if exc.param in ("delay_ms", "skew_ms", "duration_s") and raw is not None:
            param = exc.param if exc.param == "duration_s" else value_param
            raise FaultInputError(param, raw, exc.rule.replace(exc.param, param)) from exc
        raise


def allowed_admin_kinds() -> list[str]:
    return [CLEAR, *sorted(KINDS)]


class FaultState:
    """Active faults, read by the server on every request and frame.

    Timed faults hold an expiry on the server's monotonic clock (seconds); one-shot
    market-data faults are counters the replay consumes.
    """

    def __init__(self, *, slow_ms: float = 3000.0, skew_ms: float = 15000.0) -> None:
        self.until: dict[str, float] = {}
        self.pending_gaps = 0
        self.default_slow_ms = self.slow_ms = slow_ms
        self.default_skew_ms = self.skew_ms = skew_ms
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
            # Replace, never extend with max(): a test shortens a running fault this way.
            self.until[spec.kind] = now_s + spec.duration_s

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
        """End every fault now; back to the configured delay and offset."""
        self.until.clear()
        self.pending_gaps = 0
        # A later slow/skew without delay_ms/skew_ms uses the configured value again,
        # not the one the cleared fault set.
        self.slow_ms = self.default_slow_ms
        self.skew_ms = self.default_skew_ms
