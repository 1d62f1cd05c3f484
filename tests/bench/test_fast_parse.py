"""The hot-path decimal parsers (mmbot.marketdata.capture) stay exact: fast path == general path."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbot.marketdata.capture import _levels_parser, _scaled_parser, _wire_divisor

PRICE = _scaled_parser(2, 1)  # BTCUSDT: tick 0.01, in ticks
QTY = _scaled_parser(8, 1)  # qty unit 1e-8, in lots
LEVELS = _levels_parser(PRICE, _wire_divisor(2, 1), QTY, _wire_divisor(8, 1))


def _wire(units: int, decimals: int = 8) -> str:
    """A Binance-style decimal string with exactly ``decimals`` decimals."""
    return f"{Decimal(units).scaleb(-decimals):.{decimals}f}"


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10**12))
def test_fast_parsers_when_8_decimal_strings_on_grid_then_exact_ticks_and_lots(ticks: int, lots: int) -> None:
    p, q = _wire(ticks, 2), _wire(lots)
    p8 = _wire(ticks * 10**6)  # the same price with Binance's 8 decimals
    assert PRICE(p8) == PRICE(p) == ticks
    assert QTY(q) == lots
    assert LEVELS([[p8, q], [p, q]]) == ((ticks, lots), (ticks, lots))


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=999_999))
def test_fast_parsers_when_price_finer_than_tick_then_value_error(ticks: int, sub: int) -> None:
    text = _wire(ticks * 10**6 + sub)  # non-zero digits beyond 2 decimals
    with pytest.raises(ValueError, match="finer than the grid"):
        PRICE(text)
    with pytest.raises(ValueError, match="finer than the grid"):
        LEVELS([[text, "1.00000000"]])


@pytest.mark.parametrize("text", ["1.2.000000", "abc.00000000", "1.0000000x", "1.2.00000000"])
def test_fast_parsers_when_malformed_then_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        PRICE(text)


def test_fast_parsers_when_other_decimal_counts_then_general_path_agrees() -> None:
    assert PRICE("61837.63") == PRICE("61837.630") == PRICE("61837.63000000") == 6183763
    assert PRICE("61837") == 6183700
    assert QTY("0.5") == 50_000_000
    assert LEVELS([["61837.6", "0.5"]]) == ((6183760, 50_000_000),)
