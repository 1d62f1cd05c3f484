"""mmbot.portfolio.metrics with hand-computed values (docs/metrics.md has the same examples)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbot.portfolio.metrics import (
    FillRecord,
    avg_fill_edge_bps,
    avg_spread_captured_bps,
    compute_performance,
    fifo_round_trips,
    fill_rate,
    inventory_balance,
    max_abs_inventory,
    max_drawdown,
    period_returns,
    sharpe_ratio,
    sortino_ratio,
    time_at_max_inventory,
    trades_per_day,
    win_rate,
)

S = 1_000_000_000

# buy 1 @100, buy 1 @102, sell 1.5 @104, sell 0.5 @101; fee 0.1 per unit
FILLS = [
    FillRecord(ts_ns=0 * S, side=1, price=100.0, qty=1.0, fee=0.1),
    FillRecord(ts_ns=1 * S, side=1, price=102.0, qty=1.0, fee=0.1),
    FillRecord(ts_ns=2 * S, side=-1, price=104.0, qty=1.5, fee=0.15),
    FillRecord(ts_ns=3 * S, side=-1, price=101.0, qty=0.5, fee=0.05),
]


def test_fifo_round_trips_when_partial_closes_then_oldest_lot_matched_first() -> None:
    trips = fifo_round_trips(FILLS)

    assert [(t.direction, t.qty, t.entry_price, t.exit_price) for t in trips] == [
        (1, 1.0, 100.0, 104.0),  # the sell of 1.5 closes the whole first buy ...
        (1, 0.5, 102.0, 104.0),  # ... and half of the second
        (1, 0.5, 102.0, 101.0),  # the last sell closes the rest of the second buy at a loss
    ]
    # net = gross - entry fee share - exit fee share (0.1 per unit each side)
    assert [t.gross_pnl for t in trips] == pytest.approx([4.0, 1.0, -0.5])
    assert [t.net_pnl for t in trips] == pytest.approx([3.8, 0.9, -0.6])


def test_win_rate_when_two_of_three_trips_profitable_then_two_thirds() -> None:
    assert win_rate(fifo_round_trips(FILLS)) == pytest.approx(2 / 3)


def test_win_rate_when_no_round_trip_then_none() -> None:
    assert win_rate(fifo_round_trips(FILLS[:2])) is None


def test_fifo_round_trips_when_short_first_then_direction_minus_one_and_profit_on_lower_buy() -> None:
    trips = fifo_round_trips([FillRecord(ts_ns=0, side=-1, price=100.0, qty=1.0), FillRecord(ts_ns=1, side=1, price=99.0, qty=1.0)])

    assert len(trips) == 1
    assert trips[0].direction == -1
    assert trips[0].gross_pnl == pytest.approx(1.0)
    assert trips[0].spread_bps == pytest.approx(100.0)
    assert win_rate(trips) == 1.0


def test_fifo_round_trips_when_break_even_after_fees_then_not_a_win() -> None:
    # gross 0.2, fees 0.1 + 0.1: net 0 is not a win
    trips = fifo_round_trips([FillRecord(ts_ns=0, side=1, price=100.0, qty=1.0, fee=0.1), FillRecord(ts_ns=1, side=-1, price=100.2, qty=1.0, fee=0.1)])

    assert trips[0].net_pnl == pytest.approx(0.0, abs=1e-12)
    assert win_rate(trips) == 0.0


def test_avg_spread_captured_bps_when_three_trips_then_quantity_weighted_mean() -> None:
    # (400 bps x 1 + 196.078 bps x 0.5 - 98.039 bps x 0.5) / 2
    assert avg_spread_captured_bps(fifo_round_trips(FILLS)) == pytest.approx(224.50980392156862)


def test_avg_fill_edge_bps_when_buys_and_sells_around_mid_then_signed_mean() -> None:
    fills = [
        FillRecord(ts_ns=0, side=1, price=99.0, qty=1, mid_ref=100.0),  # bought 1 below: +100 bps
        FillRecord(ts_ns=1, side=-1, price=101.0, qty=1, mid_ref=100.0),  # sold 1 above: +100 bps
        FillRecord(ts_ns=2, side=1, price=101.0, qty=1, mid_ref=100.0),  # bought 1 above: -100 bps
        FillRecord(ts_ns=3, side=1, price=50.0, qty=1),  # no mid_ref: not counted
    ]
    assert avg_fill_edge_bps(fills) == pytest.approx(100 / 3)


def test_fill_rate_when_three_of_twelve_orders_filled_then_quarter() -> None:
    assert fill_rate(3, 12) == 0.25
    assert fill_rate(0, 0) == 0.0


def test_sharpe_ratio_when_daily_returns_then_mean_over_sample_std_times_sqrt_365() -> None:
    # mean 0.5, sample variance 5/3 -> 0.5 / 1.2910 * sqrt(365) = 7.3993
    assert sharpe_ratio([1.0, -1.0, 2.0, 0.0], 86_400) == pytest.approx(7.399324293474371)


def test_sharpe_ratio_when_minute_returns_then_annualised_with_525600_periods() -> None:
    assert sharpe_ratio([1.0, -1.0, 2.0, 0.0], 60) == pytest.approx(0.5 / math.sqrt(5 / 3) * math.sqrt(525_600))


def test_sharpe_ratio_when_constant_or_single_return_then_none() -> None:
    assert sharpe_ratio([1.0, 1.0, 1.0], 86_400) is None
    assert sharpe_ratio([1.0], 86_400) is None


def test_sortino_ratio_when_one_loss_then_downside_deviation_over_all_periods() -> None:
    # downside deviation sqrt((0 + 1 + 0 + 0) / 4) = 0.5; 0.5 / 0.5 * sqrt(365)
    assert sortino_ratio([1.0, -1.0, 2.0, 0.0], 86_400) == pytest.approx(19.1049731745428)
    assert sortino_ratio([1.0, 2.0], 86_400) is None  # no downside


def test_period_returns_when_period_two_then_whole_periods_from_zero() -> None:
    # equity at samples 1 and 3 (0 and 2); the trailing sample 4 is a partial period
    assert period_returns([1.0, 0.0, 2.0, 2.0, 3.0], 2) == [0.0, 2.0]
    assert period_returns([1.0, 3.0], 1) == [1.0, 2.0]


def test_max_drawdown_when_peak_then_fall_then_peak_minus_trough() -> None:
    assert max_drawdown([1.0, 3.0, 2.0, 5.0, 1.0, 4.0]) == 4.0
    assert max_drawdown([-2.0, 1.0]) == 2.0  # measured from the starting equity 0
    assert max_drawdown([1.0, 2.0, 3.0]) == 0.0


def test_time_at_max_inventory_when_three_of_five_samples_at_limit_then_180_s() -> None:
    seconds, share = time_at_max_inventory([0.0, 10.0, -10.0, 9.99, 10.0], 10.0, 60.0)

    assert seconds == 180.0
    assert share == pytest.approx(0.6)


def test_inventory_balance_when_three_of_five_within_band_then_sixty_percent() -> None:
    assert inventory_balance([0.0, 1.0, 1.5, -0.5, 10.0], 10.0, 0.1) == pytest.approx(0.6)


def test_trades_per_day_when_ten_fills_in_half_a_day_then_twenty() -> None:
    assert trades_per_day(10, 43_200.0) == 20.0
    assert trades_per_day(10, 0.0) is None


def test_max_abs_inventory_when_short_peak_larger_then_absolute_value() -> None:
    assert max_abs_inventory([1.0, -3.0, 2.0]) == 3.0


def test_compute_performance_when_small_run_then_every_field_matches_hand_values() -> None:
    perf = compute_performance(
        fills=FILLS,
        inventory=[1.0, 2.0, 0.5, 0.0],  # after each fill, sampled once per second
        net_pnl=[-0.1, 1.7, 4.35, 3.8],
        sample_interval_s=1.0,
        max_inventory_limit=2.0,
        return_period=1,
        neutral_band=0.25,
    )

    f = perf.fields()
    assert f["round_trips"] == 3
    assert f["win_rate"] == pytest.approx(0.666667)
    assert f["max_inventory"] == 2.0
    assert f["time_at_max_inventory_s"] == 1.0
    assert f["time_at_max_inventory_share"] == 0.25
    assert f["inventory_balance"] == 0.5  # |q| <= 0.5: the last two samples
    assert f["max_drawdown"] == pytest.approx(0.55)  # 4.35 -> 3.8
    assert perf.trades_per_day == pytest.approx(4 * 86_400 / 4)
    assert f["return_interval_s"] == 1.0
    assert f["sharpe_periods_per_year"] == 31_536_000
    returns = [-0.1, 1.8, 2.65, -0.55]
    mean = sum(returns) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    assert perf.sharpe == pytest.approx(mean / std * math.sqrt(31_536_000), rel=1e-6)
    # A 4-second run: the summary shows no annualised ratio and no per-day rate, and says why.
    assert f["sharpe"] is None and f["sortino"] is None and f["trades_per_day"] is None
    assert isinstance(f["sharpe_note"], str) and f["sharpe_note"].startswith("n/a (run too short): 4 s of data")


@given(st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(1, 5), st.integers(90, 110)), min_size=1, max_size=40))
def test_fifo_round_trips_when_any_fills_then_closed_qty_and_pnl_match_cash_flows(rows: list[tuple[int, int, int]]) -> None:
    fills = [FillRecord(ts_ns=i, side=s, price=float(p), qty=float(q)) for i, (s, q, p) in enumerate(rows)]
    # close the position at the end so every unit belongs to a round trip
    position = sum(f.side * f.qty for f in fills)
    if position:
        fills.append(FillRecord(ts_ns=len(fills), side=-1 if position > 0 else 1, price=100.0, qty=abs(position)))
    trips = fifo_round_trips(fills)
    total_qty = sum(f.qty for f in fills)
    cash = -sum(f.side * f.price * f.qty for f in fills)

    assert sum(t.qty for t in trips) == pytest.approx(total_qty / 2)
    assert sum(t.gross_pnl for t in trips) == pytest.approx(cash)
    assert all(t.qty > 0 for t in trips)


def test_performance_fields_when_run_spans_enough_days_then_sharpe_shown_with_span_and_no_note() -> None:
    days = 30
    equity = [float(i % 3) + 0.1 * i for i in range(days)]  # daily samples, varying
    t0 = 1_722_470_400_000_000_000  # 2024-08-01T00:00:00Z
    perf = compute_performance(
        fills=[], inventory=[0.0] * days, net_pnl=equity, sample_interval_s=86_400.0, max_inventory_limit=1.0,
        data_start_ns=t0, data_end_ns=t0 + days * 86_400 * 1_000_000_000,
    )  # fmt: skip

    f = perf.fields()

    assert f["sharpe_note"] is None
    assert f["sharpe"] == pytest.approx(perf.sharpe, abs=1e-4) and f["sharpe"] is not None
    assert f["trades_per_day"] == 0.0
    assert (f["data_start"], f["data_end"]) == ("2024-08-01T00:00:00.000Z", "2024-08-31T00:00:00.000Z")


def test_performance_fields_when_week_long_but_too_few_intervals_then_sharpe_null_rates_shown() -> None:
    perf = compute_performance(
        fills=[], inventory=[0.0] * 10, net_pnl=[float(i % 2) for i in range(10)], sample_interval_s=86_400.0,
        max_inventory_limit=1.0,
    )  # fmt: skip

    f = perf.fields()

    assert f["sharpe"] is None and perf.sharpe is not None
    assert "10 return intervals" in str(f["sharpe_note"]) and "per-day" not in str(f["sharpe_note"])
    assert f["trades_per_day"] == 0.0


def test_summary_cell_when_money_or_short_run_then_unit_or_na() -> None:
    from mmbot.portfolio.metrics import summary_cell

    summary = {"quote_ccy": "USDT", "sharpe_note": "n/a (run too short): ..."}

    assert summary_cell(summary, "net_pnl", "-11.04151660") == "-11.04151660 USDT"
    assert summary_cell(summary, "max_drawdown", 12.5) == "12.5 USDT"
    assert summary_cell(summary, "sharpe", None) == "n/a (run too short)"
    assert summary_cell({"quote_ccy": "USDT"}, "sharpe", None) == "None"
    assert summary_cell(summary, "fills", 229) == "229"
