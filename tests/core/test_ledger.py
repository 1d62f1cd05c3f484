"""The ledger's average entry and realised PnL (average-cost method, exact) and the mark rule."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Side
from mmbot.portfolio.ledger import Ledger, mark_ticks_from_mid

INST = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")
UNIT = Fraction(INST.tick_size * INST.qty_unit)  # quote per tick x lot


def test_ledger_when_two_buys_then_a_partial_sell_then_weighted_entry_and_realised_on_the_sold_part() -> None:
    ledger = Ledger(INST)
    ledger.apply_fill(Side.BUY, 100, 2, Decimal(0))
    ledger.apply_fill(Side.BUY, 103, 1, Decimal(0))
    entry_after_buys = ledger.avg_entry_ticks
    ledger.apply_fill(Side.SELL, 105, 2, Decimal(0))

    # (2 x 100 + 1 x 103) / 3 = 101; selling 2 at 105 books 2 x (105 - 101) = 8 tick-lots
    assert entry_after_buys == Fraction(101)
    assert ledger.avg_entry_ticks == Fraction(101)  # what is left keeps its entry
    assert ledger.realized_units == 8
    assert ledger.realized_pnl() == 8 * UNIT
    assert ledger.unrealized_pnl(110) == 1 * (110 - 101) * UNIT
    assert ledger.position_lots == 1


def test_ledger_when_entry_is_not_a_whole_tick_then_exact_fraction_without_drift() -> None:
    ledger = Ledger(INST)
    ledger.apply_fill(Side.BUY, 100, 1, Decimal(0))
    ledger.apply_fill(Side.BUY, 101, 2, Decimal(0))
    ledger.apply_fill(Side.SELL, 102, 1, Decimal(0))

    # entry (100 + 202) / 3 = 100 2/3; realised 102 - 100 2/3 = 1 1/3
    assert ledger.avg_entry_ticks == Fraction(302, 3)
    assert ledger.realized_units == Fraction(4, 3)
    assert ledger.unrealized_pnl(102) == 2 * (102 - Fraction(302, 3)) * UNIT


def test_ledger_when_position_crosses_zero_then_realised_on_the_closed_part_and_entry_reset_to_the_fill() -> None:
    ledger = Ledger(INST)
    ledger.apply_fill(Side.BUY, 100, 2, Decimal("0.5"))
    ledger.apply_fill(Side.SELL, 104, 5, Decimal("0.25"))  # closes 2 at +4 each, opens 3 short at 104
    short_entry, short_realized = ledger.avg_entry_ticks, ledger.realized_units
    ledger.apply_fill(Side.BUY, 101, 3, Decimal(0))  # covers the short at +3 each: flat

    assert short_entry == Fraction(104) and short_realized == 8
    assert ledger.position_lots == 0 and ledger.avg_entry_ticks is None
    assert ledger.realized_units == 8 + 9
    assert ledger.realized_pnl() == 17 * UNIT - Fraction("0.75")  # fees are realised when paid
    assert ledger.unrealized_pnl(999) == 0


def test_ledger_when_short_built_and_partly_covered_then_short_entry_and_realised() -> None:
    ledger = Ledger(INST)
    ledger.apply_fill(Side.SELL, 200, 1, Decimal(0))
    ledger.apply_fill(Side.SELL, 206, 1, Decimal(0))
    ledger.apply_fill(Side.BUY, 201, 1, Decimal(0))

    assert ledger.avg_entry_ticks == Fraction(203)
    assert ledger.realized_units == 2  # short at 203, covered at 201
    assert ledger.unrealized_pnl(205) == -1 * (205 - 203) * UNIT


def test_ledger_when_restored_from_balances_then_entry_is_the_cost_and_nothing_realised() -> None:
    ledger = Ledger(INST)
    ledger.restore(5000, Decimal("-3.05"), Decimal(0))  # 0.00005 BTC that cost 3.05 USDT

    assert ledger.avg_entry_ticks == Fraction(6_100_000)  # 61,000.00
    assert ledger.realized_pnl() == 0
    assert ledger.unrealized_pnl(6_100_000) == 0


fills = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 10_000), st.integers(1, 500),
              st.decimals(min_value=-1, max_value=1, places=8, allow_nan=False, allow_infinity=False)),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(fills=fills, mark=st.integers(1, 10_000))
def test_ledger_when_any_fills_then_realised_plus_unrealised_equals_cash_plus_position_at_mark_minus_fees(
    fills: list[tuple[Side, int, int, Decimal]], mark: int
) -> None:
    ledger = Ledger(INST)
    for side, price, qty, fee in fills:
        ledger.apply_fill(side, price, qty, fee)

    total = ledger.realized_pnl() + ledger.unrealized_pnl(mark)
    expected = (ledger.cash_units + ledger.position_lots * mark) * UNIT - Fraction(ledger.fees_paid)
    assert total == expected
    assert Fraction(ledger.net_pnl(mark)) == expected
    if ledger.position_lots:
        assert ledger.unrealized_pnl(mark) == ledger.position_lots * (mark - ledger.avg_entry_ticks) * UNIT  # type: ignore[operator]


@pytest.mark.parametrize(("mid", "mark"), [(100.0, 100), (100.5, 100), (101.5, 102), (6_100_000.5, 6_100_000), (99.75, 100)])
def test_mark_ticks_from_mid_when_half_a_tick_then_the_even_tick(mid: float, mark: int) -> None:
    assert mark_ticks_from_mid(mid) == mark
