"""Capture reader on the bundled data; exact price/qty conversion; the ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Trade, count_events
from mmbot.domain.instrument import Instrument, parse_scaled
from mmbot.domain.orders import Side
from mmbot.marketdata.book import L2Book
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
from mmbot.portfolio.ledger import Ledger


def test_parse_scaled_when_trailing_zeros_then_exact() -> None:
    assert parse_scaled("61837.63000000", 2) == 6183763
    assert parse_scaled("0.00000001", 8) == 1
    assert parse_scaled("12", 2) == 1200


def test_parse_scaled_when_finer_than_grid_then_value_error() -> None:
    with pytest.raises(ValueError):
        parse_scaled("1.001", 2)


def test_instrument_when_rounding_quotes_then_bids_down_asks_up(instrument: Instrument) -> None:
    assert instrument.to_ticks_down(Decimal("100.019")) == 10001
    assert instrument.to_ticks_up(Decimal("100.011")) == 10002
    assert instrument.to_lots(Decimal("0.012345")) == 1_234_000  # step 0.00001 -> 1000 lots
    assert instrument.notional(6_000_000, 100_000) == Decimal("60")  # 60,000.00 x 0.001 BTC


def test_read_events_when_bundled_capture_then_320015_events_no_gaps(instrument: Instrument, capture_paths: list[str]) -> None:
    stats = ReadStats()
    book = L2Book(instrument.symbol)
    kinds: dict[type, int] = {}
    total = 0
    for event in read_events(capture_paths, CaptureParser([instrument]), stats):
        kinds[type(event)] = kinds.get(type(event), 0) + 1
        total += count_events(event)
        if isinstance(event, BookDelta):
            book.apply_delta(event)
        elif isinstance(event, BookSnapshot):
            book.apply_snapshot(event)
    assert total == 320_015
    assert kinds[BookDelta] == 6_495
    assert kinds[Trade] == 19_904
    assert kinds[BookSnapshot] == 1
    assert kinds[BestBidAsk] == 73_174
    assert stats.lines == 99_574 and stats.garbage_lines == 0
    assert book.gap_count == 0 and book.crossed_count == 0 and book.is_synced


def test_ledger_when_round_trip_then_exact_pnl_and_fees(instrument: Instrument) -> None:
    ledger = Ledger(instrument)
    ledger.apply_fill(Side.BUY, 5_000_000, 100_000_000, Decimal("0.5"))  # buy 1 BTC at 50,000.00
    ledger.apply_fill(Side.SELL, 5_001_000, 100_000_000, Decimal("-0.1"))  # sell at 50,010.00, rebate
    assert ledger.position_lots == 0
    assert ledger.cash == Decimal("10.00000000")
    assert ledger.gross_pnl(5_000_000) == Decimal("10.00000000")
    assert ledger.net_pnl(5_000_000) == Decimal("9.60000000")
    assert ledger.bid_fills == 1 and ledger.ask_fills == 1
    assert ledger.max_abs_position_lots == 100_000_000


def test_ledger_when_position_open_then_unrealised_marks_to_mid(instrument: Instrument) -> None:
    ledger = Ledger(instrument)
    ledger.apply_fill(Side.SELL, 5_000_000, 1_000_000, Decimal(0))  # short 0.01 BTC at 50,000
    assert ledger.gross_pnl(4_990_000) == Decimal("1.00000000")  # price fell 100: +1 USDT
