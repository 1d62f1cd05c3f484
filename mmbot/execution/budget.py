"""Order-rate budget: order actions per sliding window kept under a weight budget.

ccxt's own limiter is client-side only and ignores Binance's used-weight headers,
so the executor keeps its own budget (Binance spot: ORDERS limits per 10 s and per
day; each place or cancel costs one unit here). A rate-limit reply from the venue
cuts the budget in half for a cool-down period and pauses order traffic until the
venue's retry-after (a 418 ban stops all order traffic until it expires).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class OrderBudget:
    per_window: int
    window_s: float = 10.0
    _times: deque[float] = field(default_factory=deque)
    paused_until: float = 0.0
    cut_until: float = 0.0
    cut_factor: float = 1.0

    def limit(self, now: float) -> int:
        factor = self.cut_factor if now < self.cut_until else 1.0
        return max(1, int(self.per_window * factor))

    def try_spend(self, now: float, cost: int = 1) -> bool:
        if now < self.paused_until:
            return False
        times = self._times
        while times and now - times[0] > self.window_s:
            times.popleft()
        if len(times) + cost > self.limit(now):
            return False
        for _ in range(cost):
            times.append(now)
        return True

    def on_rate_limited(self, now: float, retry_after_s: float, banned: bool) -> None:
        self.paused_until = max(self.paused_until, now + retry_after_s)
        self.cut_factor = 0.5
        self.cut_until = now + max(60.0, retry_after_s * 2) if not banned else now + retry_after_s + 300.0

    def used(self, now: float) -> int:
        times = self._times
        while times and now - times[0] > self.window_s:
            times.popleft()
        return len(times)
