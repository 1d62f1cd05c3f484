"""L2 book: Binance spot sync rules, gap detection, chunking invariance, never crossed."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.domain.events import BookDelta, BookSnapshot
from mmbot.marketdata.book import ApplyResult, BookState, L2Book

SYM = "BTC/USDT"


def snapshot(last_id: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]], ts: int = 0) -> BookSnapshot:
    return BookSnapshot(SYM, ts, last_id, tuple(bids), tuple(asks))


def delta(first: int, last: int, bids: list[tuple[int, int]] = (), asks: list[tuple[int, int]] = (), ts: int = 0) -> BookDelta:  # type: ignore[assignment]
    return BookDelta(SYM, ts, 0, first, last, tuple(bids), tuple(asks))


def test_book_when_straddling_diff_precedes_snapshot_then_it_is_applied() -> None:
    book = L2Book(SYM)
    assert book.apply_delta(delta(95, 99, bids=[(100, 1)])) is ApplyResult.BUFFERED
    assert book.apply_delta(delta(100, 105, bids=[(101, 2)])) is ApplyResult.BUFFERED
    book.apply_snapshot(snapshot(102, [(99, 5)], [(103, 4)]))
    assert book.is_synced
    assert book.best_bid() == 101
    assert book.bid_qty(100) == 0  # the diff with u <= lastUpdateId was dropped
    assert book.last_update_id == 105


def test_book_when_first_diff_skips_past_snapshot_then_gap() -> None:
    book = L2Book(SYM)
    book.apply_snapshot(snapshot(100, [(99, 5)], [(103, 4)]))
    result = book.apply_delta(delta(102, 110, bids=[(100, 1)]))
    assert result is ApplyResult.GAP
    assert book.gap_count == 1
    assert book.state is BookState.AWAITING_SNAPSHOT


def test_book_when_sequence_breaks_then_invalid_until_next_snapshot() -> None:
    book = L2Book(SYM)
    book.apply_snapshot(snapshot(100, [(99, 5)], [(103, 4)]))
    assert book.apply_delta(delta(101, 101, bids=[(100, 1)])) is ApplyResult.APPLIED
    assert book.apply_delta(delta(103, 104, bids=[(100, 2)])) is ApplyResult.GAP
    assert book.apply_delta(delta(105, 106, bids=[(98, 2)])) is ApplyResult.BUFFERED
    book.apply_snapshot(snapshot(104, [(99, 5)], [(103, 4)]))
    assert book.is_synced
    assert book.bid_qty(98) == 2
    assert book.gap_count == 1


def test_book_when_quantity_zero_then_level_deleted_and_best_moves() -> None:
    book = L2Book(SYM)
    book.apply_snapshot(snapshot(10, [(99, 5), (98, 1)], [(101, 4), (102, 1)]))
    book.apply_delta(delta(11, 11, bids=[(99, 0)], asks=[(101, 0)]))
    assert book.best_bid() == 98
    assert book.best_ask() == 102


def test_book_when_diff_crosses_then_crossed_is_counted() -> None:
    book = L2Book(SYM)
    book.apply_snapshot(snapshot(10, [(99, 5)], [(101, 4)]))
    book.apply_delta(delta(11, 11, bids=[(102, 1)]))
    assert book.is_crossed()
    assert book.crossed_count == 1


# --- properties --------------------------------------------------------------------
levels = st.lists(st.tuples(st.integers(1, 40), st.integers(0, 5)), max_size=6)


@st.composite
def valid_stream(draw: st.DrawFn) -> tuple[BookSnapshot, list[BookDelta]]:
    """A snapshot and a gap-free diff stream that never crosses (bids < 50 <= asks)."""
    snap_bids = [(p, q) for p, q in draw(levels) if q]
    snap_asks = [(50 + p, q) for p, q in draw(levels) if q]
    last = draw(st.integers(1000, 2000))
    snap = snapshot(last, snap_bids, snap_asks)
    deltas = []
    nxt = last + 1
    for _ in range(draw(st.integers(0, 30))):
        width = draw(st.integers(1, 4))
        bids = draw(levels)
        asks = [(50 + p, q) for p, q in draw(levels)]
        deltas.append(delta(nxt, nxt + width - 1, bids=bids, asks=asks))
        nxt += width
    return snap, deltas


def replay(snap: BookSnapshot, deltas: list[BookDelta], before: int) -> L2Book:
    """Deliver the first `before` diffs before the snapshot (buffered), the rest after."""
    book = L2Book(SYM)
    for d in deltas[:before]:
        book.apply_delta(d)
    book.apply_snapshot(snap)
    for d in deltas[before:]:
        book.apply_delta(d)
    return book


def merge(deltas: list[BookDelta]) -> BookDelta:
    """Several consecutive diffs as one (later levels win), as a slower stream would send them."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for d in deltas:
        bids.update(dict(d.bids))
        asks.update(dict(d.asks))
    return delta(deltas[0].first_update_id, deltas[-1].last_update_id, bids=list(bids.items()), asks=list(asks.items()))


def rechunk(deltas: list[BookDelta], cuts: list[int]) -> list[BookDelta]:
    bounds = sorted({c % (len(deltas) + 1) for c in cuts} | {0, len(deltas)})
    return [merge(deltas[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=200, deadline=None)
@given(valid_stream(), st.lists(st.integers(0, 40), max_size=8), st.integers(0, 40))
def test_book_property_valid_stream_gives_same_book_however_chunked(
    stream: tuple[BookSnapshot, list[BookDelta]], cuts: list[int], buffered: int
) -> None:
    snap, deltas = stream
    reference = replay(snap, deltas, 0)
    chunks = rechunk(deltas, cuts) if deltas else []
    # A stale diff (u <= lastUpdateId) and some chunks arrive before the snapshot.
    stale = [delta(snap.last_update_id - 5, snap.last_update_id, bids=[(1, 99)])]
    other = replay(snap, stale + chunks, 1 + buffered % (len(chunks) + 1))
    assert reference.snapshot_levels() == other.snapshot_levels()
    assert reference.gap_count == 0 and other.gap_count == 0
    assert not other.is_crossed()


@settings(max_examples=200, deadline=None)
@given(valid_stream(), st.integers(0, 29))
def test_book_property_any_dropped_diff_is_detected_as_gap(stream: tuple[BookSnapshot, list[BookDelta]], drop: int) -> None:
    snap, deltas = stream
    if len(deltas) < 2:
        return
    drop = drop % (len(deltas) - 1)  # never the last one: a lost tail is not observable
    book = L2Book(SYM)
    book.apply_snapshot(snap)
    results = [book.apply_delta(d) for i, d in enumerate(deltas) if i != drop]
    assert ApplyResult.GAP in results
    assert book.gap_count >= 1


@settings(max_examples=100, deadline=None)
@given(valid_stream())
def test_book_property_never_crossed_and_no_zero_levels_after_valid_updates(stream: tuple[BookSnapshot, list[BookDelta]]) -> None:
    snap, deltas = stream
    book = L2Book(SYM)
    book.apply_snapshot(snap)
    for d in deltas:
        assert book.apply_delta(d) is ApplyResult.APPLIED
        assert not book.is_crossed()
    bids, asks = book.snapshot_levels()
    assert all(q > 0 for _, q in bids + asks)
    assert book.crossed_count == 0
