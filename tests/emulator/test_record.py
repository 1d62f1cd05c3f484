"""`mmbot record` against the emulator: the recorded session replays to the same book."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from mmbot.domain.events import BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.emulator.server import run_emulator
from mmbot.emulator.tape import load_tapes
from mmbot.marketdata.book import L2Book
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events, read_metadata
from mmbot.marketdata.feeds.record import record_capture
from tests.conftest import CAPTURE, MMBOT
from tests.emulator.conftest import admin, ccxt_params, inject, wait_until


def replay_books(path: Path, instruments: list[Instrument]) -> tuple[dict[str, L2Book], ReadStats]:
    books = {i.symbol: L2Book(i.symbol) for i in instruments}
    stats = ReadStats()
    for event in read_events([str(path)], CaptureParser(instruments), stats):
        if isinstance(event, BookSnapshot):
            books[event.symbol].apply_snapshot(event)
        elif isinstance(event, BookDelta):
            books[event.symbol].apply_delta(event)
    return books, stats


async def test_record_when_emulator_session_recorded_then_replay_gives_the_same_book(tmp_path: Path) -> None:
    symbols = ["BTC/USDT", "ETH/USDT"]
    out = tmp_path / "rec.gz"
    async with run_emulator(CAPTURE, port=0, speed=2.0, symbols=symbols) as emu:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(record_capture(ccxt_params(emu.base_url), symbols, str(out), watch_timeout_s=1.5))
            await asyncio.sleep(2.0)
            await inject(emu.base_url, "drop")  # a reconnect mid-recording: new snapshots follow
            await asyncio.sleep(2.5)
            await admin(emu.base_url, "pause")
            await asyncio.sleep(0.5)
            task.cancel()
        venue_books = {s: emu.emulator.markets[s.replace("/", "")].book for s in symbols}
    instruments = [Instrument.from_symbol(s, tick_size="0.01", step_size="0.00001", min_notional="5") for s in symbols]
    books, stats = replay_books(out, instruments)
    tapes = load_tapes([str(out)], instruments[0])
    for symbol in symbols:
        assert books[symbol].is_synced
        assert books[symbol].last_update_id == venue_books[symbol].last_update_id
        assert books[symbol].top_bids(100) == venue_books[symbol].top_bids(100)
        assert books[symbol].top_asks(100) == venue_books[symbol].top_asks(100)
    assert stats.garbage_lines == 0 and stats.lines > 50
    assert sorted(tapes) == ["BTCUSDT", "ETHUSDT"]  # the recording itself can be emulated
    meta = read_metadata(out)  # the instrument rules the capture was recorded under (issue 29)
    assert meta is not None and meta["kind"] == "spot" and meta["symbols"] == symbols
    assert meta["instruments"]["ETH/USDT"] == {"venue_symbol": "ETHUSDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}


async def test_record_when_emulator_unreachable_then_gives_up_with_venue_error(tmp_path: Path) -> None:
    from mmbot.errors import VenueError

    out = tmp_path / "none.gz"
    try:
        await record_capture(ccxt_params("http://127.0.0.1:9"), ["BTC/USDT"], str(out), watch_timeout_s=1.0,
                             reconnect_initial_s=0.01, reconnect_max_s=0.02)
    except VenueError as exc:
        message = str(exc)
    else:  # pragma: no cover - the call never returns normally
        message = ""
    assert "cannot record from ws://127.0.0.1:9/stream" in message
    await wait_until(lambda: out.exists(), 1, "file closed")


async def test_record_when_normalised_format_then_books_and_trades_as_mmbot_lines(tmp_path: Path) -> None:
    out = tmp_path / "norm.gz"
    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(record_capture(ccxt_params(emu.base_url), ["BTC/USDT"], str(out), watch_timeout_s=3.0, normalised=True))
            await wait_until(out.exists, 5, "file created")
            await asyncio.sleep(3.0)
            task.cancel()
    import gzip

    streams = [orjson.loads(line.split(b" ", 1)[1])["stream"] for line in gzip.open(out)]
    assert streams[0] == "BTC/USDT@mmbotBook"
    assert "BTC/USDT@mmbotBookDelta" in streams and "BTC/USDT@mmbotTrade" in streams
    # ... and it replays: the reader turns the lines into a synced book and trades.
    inst = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")
    books, stats = replay_books(out, [inst])
    events = list(read_events([str(out)], CaptureParser([inst]), ReadStats()))
    assert books["BTC/USDT"].is_synced and books["BTC/USDT"].gap_count == 0 and stats.garbage_lines == 0
    assert sum(isinstance(e, BookDelta) for e in events) >= 5 and any(isinstance(e, Trade) for e in events)


async def test_record_cli_when_pointed_at_emulator_then_writes_a_replayable_capture(tmp_path: Path, clean_env: dict[str, str]) -> None:
    out = tmp_path / "cli.gz"
    async with run_emulator(CAPTURE, port=0, speed=1.0) as emu:
        proc = await asyncio.create_subprocess_exec(
            *MMBOT, "record", "--base-url", emu.base_url, "--symbols", "BTC/USDT", "--duration", "3", "--out", str(out),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 90)
    books, stats = replay_books(out, [Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001")])
    assert proc.returncode == 0 and f"recorded to {out}" in stdout.decode()
    assert books["BTC/USDT"].is_synced and stats.garbage_lines == 0
