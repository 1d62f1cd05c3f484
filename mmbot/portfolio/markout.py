"""Fill markouts: adverse selection made visible.

For a fill of side d (+1 buy, -1 sell) at price p, the markout at horizon h is

    markout_bps(h) = d * (mid(t_fill + h) - p) / p * 10_000

where mid(t) is the first mid observed at or after t. Positive means the fill was
good for us (the price moved our way); a market maker picked off by informed flow
shows negative markouts. Horizons default to +1 s, +5 s and +30 s.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DEFAULT_HORIZONS_NS = (1_000_000_000, 5_000_000_000, 30_000_000_000)


@dataclass
class MarkoutTracker:
    horizons_ns: tuple[int, ...] = DEFAULT_HORIZONS_NS
    _pending: list[deque[tuple[int, int, float, int]]] = field(default_factory=list)
    results: list[list[float]] = field(default_factory=list)  # per horizon, in fill order
    per_fill: dict[int, dict[int, float]] = field(default_factory=dict)  # fill index -> horizon -> bps
    _count: int = 0

    def __post_init__(self) -> None:
        self._pending = [deque() for _ in self.horizons_ns]
        self.results = [[] for _ in self.horizons_ns]

    def on_fill(self, ts_ns: int, side: int, price_ticks: float) -> int:
        index = self._count
        self._count += 1
        for h, queue in zip(self.horizons_ns, self._pending, strict=True):
            queue.append((ts_ns + h, side, price_ticks, index))
        return index

    def on_mid(self, ts_ns: int, mid_ticks: float) -> None:
        for i, queue in enumerate(self._pending):
            while queue and queue[0][0] <= ts_ns:
                _, side, price, index = queue.popleft()
                value = side * (mid_ticks - price) / price * 10_000.0
                self.results[i].append(value)
                self.per_fill.setdefault(index, {})[self.horizons_ns[i]] = value

    def mean_bps(self, horizon_ns: int) -> float | None:
        values = self.results[self.horizons_ns.index(horizon_ns)]
        return sum(values) / len(values) if values else None
