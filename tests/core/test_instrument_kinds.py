"""Instrument kinds, ccxt unified symbols and exact inverse / linear PnL (issue 32 item 1)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbot.domain.instrument import Instrument


def test_spot_symbol_unchanged() -> None:
    inst = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")
    assert (inst.kind, inst.venue_symbol, inst.settle, inst.contract_size) == ("spot", "BTCUSDT", "USDT", 1)
    assert inst.qty_unit == Decimal("0.00000001")
    assert not inst.is_perp


def test_linear_perp_symbol() -> None:
    inst = Instrument.from_symbol("BTC/USDT:USDT", tick_size="0.10", step_size="0.001", min_notional="100")
    assert (inst.kind, inst.venue_symbol, inst.settle, inst.quote_ccy) == ("linear_perp", "BTCUSDT", "USDT", "USDT")
    assert inst.is_perp
    assert inst.price_ticks("61837.60") == 618376


def test_inverse_perp_symbol() -> None:
    inst = Instrument.from_symbol("BTC/USD:BTC", tick_size="0.1", step_size="1")
    assert (inst.kind, inst.venue_symbol, inst.settle) == ("inverse_perp", "BTCUSD_PERP", "BTC")
    assert inst.contract_size == 100 and inst.qty_unit == 1 and inst.step_lots == 1
    assert inst.qty_lots("7") == 7
    with pytest.raises(ValueError):
        inst.qty_lots("0.5")  # contracts are whole


@pytest.mark.parametrize("bad", ["BTC/USDT:ETH", "BTC/USDT:", "BTCUSDT"])
def test_bad_symbols_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        Instrument.from_symbol(bad, tick_size="0.1", step_size="1")


def test_bad_kind_and_contract_size_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Instrument(symbol="X/Y", venue_symbol="XY", base="X", quote_ccy="Y", tick_size=Decimal("0.1"),
                   step_size=Decimal("1"), kind="option")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contract_size"):
        Instrument.from_symbol("BTC/USD:BTC", tick_size="0.1", step_size="1", contract_size="0")


def test_inverse_pnl_hand_computation() -> None:
    """docs/futures.md: long 10 contracts of 100 USD, 60000.0 -> 61000.0.

    10 * 100 * (1/60000 - 1/61000) = 1000 * 1000 / (60000 * 61000) = 1/3660 BTC
    = 0.000273224... BTC; the short side is the negative.
    """
    inst = Instrument.from_symbol("BTC/USD:BTC", tick_size="0.1", step_size="1")
    pnl = inst.inverse_pnl(10, 600000, 610000)
    assert pnl == Fraction(1, 3660)
    assert inst.inverse_pnl(-10, 600000, 610000) == -Fraction(1, 3660)
    assert round(float(pnl), 12) == 0.000273224044
    with pytest.raises(ValueError):
        inst.linear_pnl(10, 600000, 610000)


def test_linear_pnl_exact() -> None:
    inst = Instrument.from_symbol("BTC/USDT:USDT", tick_size="0.10", step_size="0.001")
    lots = inst.qty_lots("0.005")
    assert inst.linear_pnl(lots, 600000, 600015) == Fraction(3, 400)  # 0.005 BTC * 1.5 USDT = 0.0075 USDT
    with pytest.raises(ValueError):
        inst.inverse_pnl(lots, 600000, 600015)


@given(
    n=st.integers(-10_000, 10_000),
    e=st.integers(1, 10**7),
    x=st.integers(1, 10**7),
)
def test_inverse_pnl_matches_formula_and_round_trip(n: int, e: int, x: int) -> None:
    inst = Instrument.from_symbol("BTC/USD:BTC", tick_size="0.1", step_size="1")
    tick = Fraction(1, 10)
    expected = n * 100 * (1 / (e * tick) - 1 / (x * tick))
    assert inst.inverse_pnl(n, e, x) == expected
    assert inst.inverse_pnl(n, e, x) + inst.inverse_pnl(n, x, e) == 0
