"""L2 order book with Binance spot and futures synchronisation rules (pure: no I/O, no clock).

Prices are integer ticks, quantities integer lots. The book is built from depth
diffs and REST snapshots only; best bid/ask messages are kept apart by the caller
(see docs/architecture.md, "mid").

Binance spot sync procedure, as implemented by :meth:`L2Book.apply_delta` and
:meth:`L2Book.apply_snapshot`:

1. Buffer diffs from the start of the stream (the diff that straddles the
   snapshot may arrive *before* the snapshot).
2. On a snapshot with ``lastUpdateId = L``: drop buffered diffs with ``u <= L``;
   the first applied diff must have ``U <= L + 1 <= u``.
3. Afterwards each diff must have ``U == previous u + 1``; otherwise it is a *gap*:
   the book is invalid until the next snapshot (and the gap is counted).
4. A book whose best bid >= best ask after a diff is *crossed* (``crossed_count``).
   What happens next is the book's ``on_crossed`` policy:

   * ``"resync"`` (the engine's book, and the live feed's): a crossed book is not
     believed. It is invalidated (AWAITING_SNAPSHOT, like a gap) and the diff returns
     ``ApplyResult.CROSSED``; the driver asks for a snapshot, the risk gate holds
     CROSSED_BOOK until the resynced book is valid and the calm period has passed.
   * ``"heal"`` (the simulated venue's true book on a replay, which has no snapshot to
     ask for): newest information wins. The opposite-side levels that this diff's new
     levels cross are stale (a diff that deleted them was lost) and are removed
     (``healed_levels``), so the book is never crossed for longer than one diff.
   * ``"count"``: counted and kept as it is (unit tests and tools that inspect raw data).

Diffs whose last id is not newer than the book's are *stale*: dropped and counted
(``stale_count``) while synced.

Binance futures (USD-M and COIN-M; the book's ``sync="futures"``, chosen from the
instrument kind by :func:`sync_rule_for`): each diff carries ``pu``, the previous diff's
``u`` (``BookDelta.prev_update_id``), and ids within a diff are not contiguous, so the
spot rule 3 would report false gaps. Instead:

2'. On a snapshot with ``lastUpdateId = L``: drop buffered diffs with ``u < L``; the first
    applied diff must have ``U <= L <= u``, or chain from the snapshot itself
    (``pu == L``: a snapshot the simulated venue builds from its own book at a diff
    boundary, or the gap re-base of the venue's true book).
3'. Afterwards each diff must have ``pu == previous u``; otherwise it is a gap.
"""

from __future__ import annotations

import heapq
from collections import deque
from enum import Enum

from mmbot.domain.events import BookDelta, BookSnapshot, Level

try:  # the compiled per-event path (mmbot/marketdata/_speedups.pyx); absent or refused: pure Python
    from mmbot.marketdata._speedups import side_apply as _c_apply
    from mmbot.marketdata._speedups import side_best as _c_best
except ImportError:
    _c_apply = _c_best = None  # type: ignore[assignment]

COMPILED = _c_apply is not None
MAX_BUFFERED_DELTAS = 4096
SYNC_RULES = ("spot", "futures")


def sync_rule_for(kind: str) -> str:
    """The book sync rule of an instrument kind (mmbot.domain.instrument.KINDS)."""
    return "spot" if kind == "spot" else "futures"


class BookState(Enum):
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    SYNCED = "synced"


class ApplyResult(Enum):
    APPLIED = "applied"
    BUFFERED = "buffered"  # waiting for a snapshot
    STALE = "stale"  # u <= last applied id: dropped
    GAP = "gap"  # sequence broken: book invalid until the next snapshot
    CROSSED = "crossed"  # applied, came out crossed, not believed: invalid until the next snapshot
    SNAPSHOT = "snapshot"


class _Side:
    """One side of the book: level map plus a lazy heap for the best price."""

    __slots__ = ("heap", "is_bid", "levels")

    def __init__(self, is_bid: bool) -> None:
        self.levels: dict[int, int] = {}
        self.heap: list[int] = []
        self.is_bid = is_bid

    def clear(self) -> None:
        self.levels.clear()
        self.heap.clear()

    def set(self, price: int, qty: int) -> None:
        levels = self.levels
        if qty:
            if price not in levels:
                heapq.heappush(self.heap, -price if self.is_bid else price)
            levels[price] = qty
        elif price in levels:
            del levels[price]

    def apply(self, updates: tuple[tuple[int, int], ...]) -> None:
        """``set`` for every (price, qty) of a diff: one call per side, not per level (hot path)."""
        levels = self.levels
        heap = self.heap
        push = heapq.heappush
        sign = -1 if self.is_bid else 1
        for price, qty in updates:
            if qty:
                if price not in levels:
                    push(heap, sign * price)
                levels[price] = qty
            elif price in levels:
                del levels[price]

    def best(self) -> int | None:
        heap = self.heap
        levels = self.levels
        if self.is_bid:
            while heap and -heap[0] not in levels:
                heapq.heappop(heap)
            if not heap:
                return None
            if len(heap) > 4 * len(levels) + 256:
                self._rebuild()
                heap = self.heap
            return -heap[0]
        while heap and heap[0] not in levels:
            heapq.heappop(heap)
        if not heap:
            return None
        if len(heap) > 4 * len(levels) + 256:
            self._rebuild()
            heap = self.heap
        return heap[0]

    def _rebuild(self) -> None:
        # Deep levels deleted far from the touch never reach the heap top; rebuild
        # now and then so memory stays flat over long runs.
        self.heap = [-p for p in self.levels] if self.is_bid else list(self.levels)
        heapq.heapify(self.heap)

    def top(self, n: int) -> list[tuple[int, int]]:
        prices = heapq.nlargest(n, self.levels) if self.is_bid else heapq.nsmallest(n, self.levels)
        return [(p, self.levels[p]) for p in prices]

    if _c_apply is not None:
        # The same two methods compiled (the heap is rebuilt in place there: same contents).
        def apply(self, updates: tuple[tuple[int, int], ...]) -> None:
            _c_apply(self.levels, self.heap, updates, self.is_bid)

        def best(self) -> int | None:
            return _c_best(self.levels, self.heap, self.is_bid)


class L2Book:
    """A Binance-style L2 book for one symbol."""

    __slots__ = (
        "_asks",
        "_bids",
        "_buffer",
        "_expect_first",
        "crossed_count",
        "gap_count",
        "healed_levels",
        "last_update_id",
        "on_crossed",
        "stale_count",
        "state",
        "symbol",
        "sync",
        "ts_local_ns",
        "update_count",
    )

    def __init__(self, symbol: str, on_crossed: str = "count", sync: str = "spot") -> None:
        if on_crossed not in ("count", "resync", "heal"):
            raise ValueError(f"on_crossed must be count, resync or heal, was {on_crossed!r}")
        if sync not in SYNC_RULES:
            raise ValueError(f"sync must be one of {SYNC_RULES}, was {sync!r}")
        self.symbol = symbol
        self.sync = sync
        self.on_crossed = on_crossed
        self.stale_count = 0
        self.healed_levels = 0
        self._bids = _Side(True)
        self._asks = _Side(False)
        self._buffer: deque[BookDelta] = deque(maxlen=MAX_BUFFERED_DELTAS)
        self._expect_first = False
        self.state = BookState.AWAITING_SNAPSHOT
        self.last_update_id = 0
        self.gap_count = 0
        self.crossed_count = 0
        self.update_count = 0
        self.ts_local_ns = 0

    # --- queries ------------------------------------------------------------------
    @property
    def is_synced(self) -> bool:
        return self.state is BookState.SYNCED

    def best_bid(self) -> int | None:
        return self._bids.best()

    def best_ask(self) -> int | None:
        return self._asks.best()

    def is_crossed(self) -> bool:
        bid = self._bids.best()
        ask = self._asks.best()
        return bid is not None and ask is not None and bid >= ask

    def bid_qty(self, price: int) -> int:
        return self._bids.levels.get(price, 0)

    def ask_qty(self, price: int) -> int:
        return self._asks.levels.get(price, 0)

    def qty_at(self, is_bid: bool, price: int) -> int:
        return (self._bids if is_bid else self._asks).levels.get(price, 0)

    def top_bids(self, n: int) -> list[tuple[int, int]]:
        return self._bids.top(n)

    def top_asks(self, n: int) -> list[tuple[int, int]]:
        return self._asks.top(n)

    def depth_within(self, is_bid: bool, limit_price: int) -> int:
        """Total quantity on one side at prices no worse than ``limit_price``."""
        levels = (self._bids if is_bid else self._asks).levels
        if is_bid:
            return sum(q for p, q in levels.items() if p >= limit_price)
        return sum(q for p, q in levels.items() if p <= limit_price)

    def levels(self, is_bid: bool) -> dict[int, int]:
        """The level map itself (read only, please)."""
        return (self._bids if is_bid else self._asks).levels

    def snapshot_levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        bids = tuple(sorted(self._bids.levels.items(), reverse=True))
        asks = tuple(sorted(self._asks.levels.items()))
        return bids, asks

    # --- updates ------------------------------------------------------------------
    def invalidate(self) -> None:
        """Mark the book unusable until the next snapshot (after a gap or reconnect)."""
        self.state = BookState.AWAITING_SNAPSHOT
        self._buffer.clear()

    def apply_snapshot(self, snap: BookSnapshot) -> ApplyResult:
        bids = self._bids
        asks = self._asks
        bids.clear()
        asks.clear()
        for price, qty in snap.bids:
            bids.set(price, qty)
        for price, qty in snap.asks:
            asks.set(price, qty)
        self.last_update_id = snap.last_update_id
        self.state = BookState.SYNCED
        self._expect_first = True
        self.ts_local_ns = snap.ts_local_ns
        buffered = list(self._buffer)
        self._buffer.clear()
        for delta in buffered:
            if self.apply_delta(delta) is ApplyResult.GAP:
                break
        return ApplyResult.SNAPSHOT

    def apply_delta(self, delta: BookDelta) -> ApplyResult:
        if self.state is not BookState.SYNCED:
            self._buffer.append(delta)
            return ApplyResult.BUFFERED
        last = self.last_update_id
        if self.sync == "futures":
            if self._expect_first:
                if delta.last_update_id < last:
                    self.stale_count += 1
                    return ApplyResult.STALE
                if not (delta.first_update_id <= last <= delta.last_update_id or delta.prev_update_id == last):
                    return self._gap(delta)
                self._expect_first = False
            elif delta.last_update_id <= last:
                self.stale_count += 1
                return ApplyResult.STALE
            elif delta.prev_update_id != last:
                return self._gap(delta)
        else:
            if delta.last_update_id <= last:
                self.stale_count += 1
                return ApplyResult.STALE
            if self._expect_first:
                if not (delta.first_update_id <= last + 1 <= delta.last_update_id):
                    return self._gap(delta)
                self._expect_first = False
            elif delta.first_update_id != last + 1:
                return self._gap(delta)
        self._bids.apply(delta.bids)
        self._asks.apply(delta.asks)
        self.last_update_id = delta.last_update_id
        self.ts_local_ns = delta.ts_local_ns
        self.update_count += 1
        if self.is_crossed():
            self.crossed_count += 1
            policy = self.on_crossed
            if policy == "resync":
                self.state = BookState.AWAITING_SNAPSHOT
                self._buffer.clear()
                return ApplyResult.CROSSED
            if policy == "heal":
                self._heal(delta)
        return ApplyResult.APPLIED

    def _heal(self, delta: BookDelta) -> None:
        """Remove the opposite levels this diff's new levels cross (they are older)."""
        new_bids = [p for p, q in delta.bids if q]
        new_asks = [p for p, q in delta.asks if q]
        asks = self._asks.levels
        bids = self._bids.levels
        if new_bids:
            top = max(new_bids)
            stale = [p for p in asks if p <= top]
            for p in stale:
                del asks[p]
            self.healed_levels += len(stale)
        if new_asks:
            low = min(new_asks)
            stale = [p for p in bids if p >= low]
            for p in stale:
                del bids[p]
            self.healed_levels += len(stale)
        while self.is_crossed():
            # The diff crosses itself or the crossing came from deletions only: drop the bid side's top.
            best = self._bids.best()
            assert best is not None
            del bids[best]
            self.healed_levels += 1

    def _gap(self, delta: BookDelta) -> ApplyResult:
        self.gap_count += 1
        self.state = BookState.AWAITING_SNAPSHOT
        self._buffer.clear()
        self._buffer.append(delta)
        return ApplyResult.GAP
