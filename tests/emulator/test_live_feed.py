"""Live feed (real ccxt.pro) against the emulator: sync, every market-data fault, 3 symbols."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from mmbot.domain.events import BookDelta, BookSnapshot, MarketEvent, Trade
from mmbot.emulator.server import RunningEmulator, run_emulator
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.feeds.live import FeedConfig, FeedSignal, LiveFeed
from tests.conftest import CAPTURE
from tests.emulator.conftest import admin, ccxt_params, inject, wait_until

WATCH_TIMEOUT_S = 1.5


@dataclass
class Recorder:
    """Applies the feed's events to local books, as the live runner does."""

    books: dict[str, L2Book] = field(default_factory=dict)
    signals: list[tuple[float, str, str]] = field(default_factory=list)
    trades: int = 0
    bad_applies: int = 0

    def __call__(self, item: MarketEvent | FeedSignal) -> None:
        if isinstance(item, FeedSignal):
            self.signals.append((time.monotonic(), item.kind, item.symbol))
            if item.kind != "resynced":
                self.books[item.symbol].invalidate()
            return
        book = self.books[item.symbol]
        if isinstance(item, BookSnapshot):
            book.apply_snapshot(item)
        elif isinstance(item, BookDelta) and book.apply_delta(item) is not ApplyResult.APPLIED:
            self.bad_applies += 1
        elif isinstance(item, Trade):
            self.trades += 1

    def kinds(self, symbol: str, since: float = 0.0) -> list[str]:
        return [k for t, k, s in self.signals if s == symbol and t >= since]


@dataclass
class Session:
    emu: RunningEmulator
    feed: LiveFeed
    rec: Recorder


async def start_session(emu: RunningEmulator, symbols: list[str], watch_timeout_s: float = WATCH_TIMEOUT_S) -> AsyncIterator[Session]:
    rec = Recorder()
    config = FeedConfig(watch_timeout_s=watch_timeout_s)
    feed = LiveFeed(ccxt_params(emu.base_url, enable_rate_limit=True), symbols, config, rec, seed=1)
    for symbol in await feed.start():
        rec.books[symbol] = L2Book(symbol)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(feed.run())
        try:
            await wait_until(lambda: all(b.is_synced for b in rec.books.values()), 20, "first sync")
            yield Session(emu, feed, rec)
        finally:
            task.cancel()
            await feed.close()


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        async for s in start_session(emu, ["BTC/USDT"]):
            yield s


@pytest.fixture
async def calm_session() -> AsyncIterator[Session]:
    """A longer silence timeout: tests that expect no signal at all must not see a
    spurious one when a loaded machine stalls the event loop for a second."""
    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        async for s in start_session(emu, ["BTC/USDT"], watch_timeout_s=5.0):
            yield s


async def assert_books_equal(s: Session) -> None:
    """Pause the emulator, let the last frames arrive, compare every symbol's top 100 levels."""
    await admin(s.emu.base_url, "pause")
    markets = s.emu.emulator.markets
    for symbol, book in s.rec.books.items():
        venue_book = markets[symbol.replace("/", "")].book
        await wait_until(lambda b=book, v=venue_book: b.is_synced and b.last_update_id == v.last_update_id, 10, f"{symbol} caught up")
        assert book.top_bids(100) == venue_book.top_bids(100)
        assert book.top_asks(100) == venue_book.top_asks(100)
    await admin(s.emu.base_url, "resume")


async def test_feed_when_synced_then_local_book_equals_emulator_book(calm_session: Session) -> None:
    session = calm_session
    await wait_until(lambda: session.feed.stats["BTC/USDT"].deltas >= 10, 10, "ten deltas")
    await assert_books_equal(session)
    assert session.rec.bad_applies == 0
    assert session.rec.kinds("BTC/USDT") == []
    assert session.feed.stats["BTC/USDT"].trades > 0 and session.feed.stats["BTC/USDT"].bbo > 0


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        ("gap", {}, "gap"),  # ChecksumError -> ccxt resubscribes and re-snapshots
        ("drop", {}, "down"),  # close 1001 -> NetworkError -> reconnect
        ("malformed", {}, "silent"),  # ccxt's receive loop stops -> timeout -> rebuild
        ("freeze", {"duration_s": 3}, "silent"),  # no frames, pings answered -> timeout -> rebuild
    ],
)
async def test_feed_when_fault_injected_then_signalled_and_resynced_to_equal_book(
    session: Session, kind: str, fields: dict[str, float], expected: str
) -> None:
    t0 = time.monotonic()
    await inject(session.emu.base_url, kind, **fields)
    await wait_until(lambda: expected in session.rec.kinds("BTC/USDT", t0), 10, f"{expected} signal")
    kinds = session.rec.kinds("BTC/USDT", t0)
    first_bad = next(t for t, k, s in session.rec.signals if t >= t0 and k == expected)
    await wait_until(lambda: "resynced" in session.rec.kinds("BTC/USDT", first_bad), 15, "resync")
    if kind == "freeze":
        # The market moved on during the freeze: whatever the client saw, it ends synced.
        await asyncio.sleep(fields["duration_s"])
    await wait_until(lambda: session.rec.books["BTC/USDT"].is_synced, 10, "synced book")
    await assert_books_equal(session)
    kinds = session.rec.kinds("BTC/USDT", t0)
    assert kinds[0] == expected
    assert "resynced" in kinds
    assert session.feed.stats["BTC/USDT"].resyncs >= 1


async def test_feed_when_non_json_frame_then_ignored_and_stream_continues(calm_session: Session) -> None:
    session = calm_session
    t0 = time.monotonic()
    before = session.feed.stats["BTC/USDT"].deltas
    await inject(session.emu.base_url, "garbage")
    await wait_until(lambda: session.feed.stats["BTC/USDT"].deltas >= before + 20, 10, "20 more deltas")
    await assert_books_equal(session)
    assert session.rec.kinds("BTC/USDT", t0) == []


async def test_feed_when_three_symbols_then_each_book_equals_emulator_book() -> None:
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    async with run_emulator(CAPTURE, port=0, speed=1.0, symbols=symbols) as emu:
        async for s in start_session(emu, symbols):
            await wait_until(lambda s=s: all(st.deltas >= 5 for st in s.feed.stats.values()), 15, "deltas on every symbol")
            t0 = time.monotonic()
            await inject(emu.base_url, "gap")
            await wait_until(lambda s=s, t0=t0: all("resynced" in s.rec.kinds(x, t0) for x in symbols), 15, "every symbol resynced")
            await assert_books_equal(s)
            assert all(st.trades > 0 for st in s.feed.stats.values())
            assert sorted(s.feed.instruments) == symbols


async def test_feed_start_when_symbol_not_listed_then_config_error(emulator: RunningEmulator) -> None:
    from mmbot.errors import ConfigError

    feed = LiveFeed(ccxt_params(emulator.base_url), ["NOPE/USDT"], FeedConfig(), lambda item: None)
    try:
        with pytest.raises(ConfigError, match="NOPE/USDT is not listed by binance"):
            await feed.start()
    finally:
        await feed.close()
