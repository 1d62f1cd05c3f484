"""Adverse-selection guard: pull quotes after a large trade or a fast mid move.

Triggers (either one)::

    large trade:  v >= m * median(v_1 .. v_N)          (N = median_window trades, after
                                                        min_trades of them)
              or  p * v >= notional_threshold           (quote currency)
    fast move:    |s_now - s_then| / s_then * 1e4 >= move_bps
                  for some mid s_then seen within the last move_window_ms

On a trigger at time t the guard outputs *cancel-all* while ``now < t + cooldown``
and then, while ``now < t + cooldown + widen_for``, a spread multiplier
``widen_multiplier`` (the re-quote after the pause is wider). A new trigger
restarts both windows.

=====================  ======================  ==================================
symbol                 parameter               unit
=====================  ======================  ==================================
v                      trade size              lots
m                      size_multiple           1
notional_threshold     notional_threshold      quote currency
move_bps               move_bps                basis points of the mid
move_window_ms         move_window_ms          milliseconds
cooldown, widen_for    cooldown_ms, ...        milliseconds
=====================  ======================  ==================================

Worked example: the median of the last trades is 0.0007 BTC and m = 50: a 0.05
BTC trade (>= 0.035) triggers; with cooldown 2,000 ms and widen_for 5,000 ms the
model cancels everything for 2 s, then quotes at twice the spread for 5 s.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class AdverseSelectionParams:
    size_multiple: float = 10.0
    notional_threshold: float | None = None
    move_bps: float = 5.0
    move_window_ms: float = 500.0
    cooldown_ms: float = 2000.0
    widen_multiplier: float = 2.0
    widen_for_ms: float = 5000.0
    median_window: int = 500
    min_trades: int = 50

    def __post_init__(self) -> None:
        if self.size_multiple <= 0:
            raise ValueError(f"size_multiple must be > 0, was {self.size_multiple}")
        if self.move_bps <= 0:
            raise ValueError(f"move_bps must be > 0, was {self.move_bps}")
        if self.widen_multiplier < 1:
            raise ValueError(f"widen_multiplier must be >= 1, was {self.widen_multiplier}")
        if self.median_window < 1 or self.min_trades < 1:
            raise ValueError("median_window and min_trades must be >= 1")


@dataclass(frozen=True, slots=True)
class GuardStatus:
    cancel_all: bool
    spread_multiplier: float
    reason: str = ""


def is_large_trade(
    size: float, median_size: float | None, size_multiple: float, notional: float | None = None, notional_threshold: float | None = None
) -> bool:
    if notional_threshold is not None and notional is not None and notional >= notional_threshold:
        return True
    return median_size is not None and median_size > 0 and size >= size_multiple * median_size


def move_bps(mid_then: float, mid_now: float) -> float:
    return abs(mid_now - mid_then) / mid_then * 10_000.0 if mid_then > 0 else 0.0


class AdverseSelectionGuard:
    """State of the guard: rolling trade sizes, a mid window, the trigger times."""

    def __init__(self, params: AdverseSelectionParams, *, ticks_to_quote: float = 1.0, lots_to_base: float = 1.0) -> None:
        self.params = params
        self._ticks_to_quote = ticks_to_quote  # notional = price_ticks * tick * lots * qty_unit
        self._lots_to_base = lots_to_base
        self._sizes: deque[int] = deque()
        self._sorted: list[int] = []
        self._mins: deque[tuple[int, float]] = deque()  # monotone deques over the mid window
        self._maxs: deque[tuple[int, float]] = deque()
        self.triggered_ns: int | None = None
        self.reason = ""
        self.triggers = 0

    def set_scales(self, ticks_to_quote: float, lots_to_base: float) -> None:
        """Tick size and lot size, so trade notionals are in the quote currency."""
        self._ticks_to_quote = ticks_to_quote
        self._lots_to_base = lots_to_base

    def median_size(self) -> float | None:
        s = self._sorted
        if len(s) < self.params.min_trades:
            return None
        n = len(s)
        return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0

    def _trigger(self, now_ns: int, reason: str) -> None:
        self.triggered_ns = now_ns
        self.reason = reason
        self.triggers += 1

    def on_trade(self, ts_ns: int, price_ticks: int, size_lots: int) -> None:
        p = self.params
        notional = price_ticks * self._ticks_to_quote * size_lots * self._lots_to_base
        if is_large_trade(size_lots, self.median_size(), p.size_multiple, notional, p.notional_threshold):
            self._trigger(ts_ns, "large_trade")
        self._sizes.append(size_lots)
        bisect.insort(self._sorted, size_lots)
        if len(self._sizes) > p.median_window:
            old = self._sizes.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def on_mid(self, now_ns: int, mid: float) -> None:
        window = int(self.params.move_window_ms * 1_000_000)
        mins, maxs = self._mins, self._maxs
        while mins and now_ns - mins[0][0] > window:
            mins.popleft()
        while maxs and now_ns - maxs[0][0] > window:
            maxs.popleft()
        if (mins and move_bps(mins[0][1], mid) >= self.params.move_bps) or (maxs and move_bps(maxs[0][1], mid) >= self.params.move_bps):
            self._trigger(now_ns, "fast_move")
        while mins and mins[-1][1] >= mid:
            mins.pop()
        mins.append((now_ns, mid))
        while maxs and maxs[-1][1] <= mid:
            maxs.pop()
        maxs.append((now_ns, mid))

    def status(self, now_ns: int) -> GuardStatus:
        t = self.triggered_ns
        if t is None:
            return GuardStatus(False, 1.0)
        p = self.params
        cooldown_end = t + int(p.cooldown_ms * 1_000_000)
        if now_ns < cooldown_end:
            return GuardStatus(True, 1.0, self.reason)
        if now_ns < cooldown_end + int(p.widen_for_ms * 1_000_000):
            return GuardStatus(False, p.widen_multiplier, self.reason)
        return GuardStatus(False, 1.0)
