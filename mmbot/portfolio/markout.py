"""Fill markouts: adverse selection made visible.

For a fill of side d (+1 buy, -1 sell) at price p (ticks), the markout at horizon h is

    markout_bps(h) = d * (mid(t_fill + h) - p) / p * 10_000

where mid(t) is the first mid the engine observes at or after t (capture time).
Positive means the fill was good for us (the price moved our way); a market maker
picked off by informed flow shows negative markouts. Horizons default to +1 s,
+5 s and +30 s. A fill whose horizon lies beyond the end of the data has no
markout at that horizon (it is not counted in the mean).

Memory is bounded for a daemon that runs for days: the tracker keeps running sums
per horizon and the fills still waiting for their horizon, never the full history.
Each completed markout is returned by :meth:`on_mid` so the engine can publish it
as an event (``markout``: fill index, horizon, bps) for metrics and fill dumps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DEFAULT_HORIZONS_NS = (1_000_000_000, 5_000_000_000, 30_000_000_000)

# (fill index, horizon ns, markout bps)
Markout = tuple[int, int, float]
_NONE: tuple[Markout, ...] = ()


@dataclass
class MarkoutTracker:
    horizons_ns: tuple[int, ...] = DEFAULT_HORIZONS_NS
    _pending: list[deque[tuple[int, int, float, int]]] = field(default_factory=list)
    _sums: list[float] = field(default_factory=list)
    _counts: list[int] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self._pending = [deque() for _ in self.horizons_ns]
        self._sums = [0.0 for _ in self.horizons_ns]
        self._counts = [0 for _ in self.horizons_ns]

    @property
    def fills(self) -> int:
        """Fills registered so far (the next fill gets this index)."""
        return self._count

    def on_fill(self, ts_ns: int, side: int, price_ticks: float) -> int:
        """Register a fill; returns its index (0, 1, ...) used in the markout results."""
        index = self._count
        self._count += 1
        for h, queue in zip(self.horizons_ns, self._pending, strict=True):
            queue.append((ts_ns + h, side, price_ticks, index))
        return index

    def on_mid(self, ts_ns: int, mid_ticks: float) -> tuple[Markout, ...] | list[Markout]:
        """Resolve every markout due at or before ``ts_ns`` with this mid; return them."""
        done: list[Markout] | None = None
        for i, queue in enumerate(self._pending):
            if not queue or queue[0][0] > ts_ns:
                continue
            horizon = self.horizons_ns[i]
            while queue and queue[0][0] <= ts_ns:
                _, side, price, index = queue.popleft()
                value = side * (mid_ticks - price) / price * 10_000.0
                self._sums[i] += value
                self._counts[i] += 1
                if done is None:
                    done = []
                done.append((index, horizon, value))
        return _NONE if done is None else done

    def count(self, horizon_ns: int) -> int:
        return self._counts[self.horizons_ns.index(horizon_ns)]

    def mean_bps(self, horizon_ns: int) -> float | None:
        i = self.horizons_ns.index(horizon_ns)
        return self._sums[i] / self._counts[i] if self._counts[i] else None
