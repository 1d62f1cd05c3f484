"""The futures account (issue 32 item 3): positions, entry, margin, liquidation estimate, funding.

Hand computations first (docs/futures.md has the inverse example), then the bundled COIN-M
pair, which crosses 00:00 UTC: funding is booked exactly once there.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbot.config.settings import load_settings
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Side
from mmbot.portfolio.funding import FUNDING_INTERVAL_NS, FundingSchedule, funding_payment, funding_times
from mmbot.portfolio.ledger import Ledger
from mmbot.portfolio.margin import BANKRUPT_RATIO, MarginParams, margin_state
from mmbot.sim.wallet import Wallet

ROOT = Path(__file__).resolve().parents[2]
LINEAR = Instrument.from_symbol("BTC/USDT:USDT", tick_size="0.1", step_size="0.001", min_notional="100")
INVERSE = Instrument.from_symbol("BTC/USD:BTC", tick_size="0.1", step_size="1")
MIDNIGHT_NS = 1_723_161_600_000_000_000  # 2024-08-09 00:00:00 UTC


def ticks(price: int) -> int:
    return price * 10  # tick 0.1


# --- the ledger ---------------------------------------------------------------------------------
def test_inverse_ledger_when_long_10_closed_1000_higher_then_1_over_3660_btc() -> None:
    ledger = Ledger(INVERSE)
    ledger.apply_fill(Side.BUY, ticks(60_000), 10, Decimal(0))
    ledger.apply_fill(Side.SELL, ticks(61_000), 10, Decimal(0))
    # 10 x 100 x (1/60000 - 1/61000) = 1/3660 BTC (docs/futures.md)
    assert ledger.realized_pnl() == Fraction(1, 3660) and ledger.position_lots == 0
    assert ledger.gross_pnl(ticks(70_000)) == Decimal(1) / Decimal(3660) and ledger.pnl_ccy == "BTC"


def test_inverse_ledger_when_two_entries_then_harmonic_entry_and_exact_unrealised() -> None:
    ledger = Ledger(INVERSE)
    ledger.apply_fill(Side.BUY, ticks(60_000), 10, Decimal("0.00000002"))
    ledger.apply_fill(Side.BUY, ticks(61_000), 10, Decimal("0.00000002"))
    # entry = 20 / (10/60000 + 10/61000) = 20 x 60000 x 61000 / 1,210,000 = 60,495.867...
    entry = ledger.avg_entry_ticks
    unrealised = ledger.unrealized_pnl(ticks(62_000))  # 2000 x (1/entry - 1/62000) = 2000 x 121000/(2 x 60000 x 61000) - 2000/62000
    hand = Fraction(1000, 60_000) + Fraction(1000, 61_000) - Fraction(2000, 62_000)
    assert entry is not None and entry / 10 == Fraction(20 * 60_000 * 61_000, 10 * 61_000 + 10 * 60_000)
    assert unrealised == hand and ledger.net_pnl(ticks(62_000)) == Decimal(hand.numerator) / Decimal(hand.denominator) - Decimal("0.00000004")


def test_inverse_ledger_when_short_crosses_to_long_then_rest_opens_at_fill() -> None:
    ledger = Ledger(INVERSE)
    ledger.apply_fill(Side.SELL, ticks(60_000), 10, Decimal(0))
    ledger.apply_fill(Side.BUY, ticks(59_000), 15, Decimal(0))
    # the short of 10 closes: 10 x 100 x (1/59000 - 1/60000) = -(-...) : a short gains when the price falls
    assert ledger.realized_pnl() == 1000 * (Fraction(1, 59_000) - Fraction(1, 60_000))
    assert ledger.position_lots == 5 and ledger.avg_entry_ticks == ticks(59_000)


@given(
    fills=st.lists(st.tuples(st.booleans(), st.integers(1, 50), st.integers(ticks(50_000), ticks(70_000))), min_size=1, max_size=30),
    mark=st.integers(ticks(50_000), ticks(70_000)),
)
def test_inverse_ledger_when_random_fills_then_realised_plus_unrealised_is_gross(fills: list[tuple[bool, int, int]], mark: int) -> None:
    ledger = Ledger(INVERSE)
    cash = Fraction(0)
    for is_buy, n, price in fills:
        ledger.apply_fill(Side.BUY if is_buy else Side.SELL, price, n, Decimal(0))
        cash += Fraction(n if is_buy else -n, price) * 1000  # 100 USD per contract, tick 0.1: x 100 / 0.1
    gross = cash - Fraction(ledger.position_lots * 1000, mark)  # closing everything at the mark, in BTC
    assert ledger.realized_pnl() + ledger.unrealized_pnl(mark) == gross


# --- margin ----------------------------------------------------------------------------------------
def test_margin_state_when_linear_long_then_hand_liquidation_price_and_ratio() -> None:
    params = MarginParams(leverage=10, margin_mode="cross", maintenance_margin_rate=Decimal("0.004"))
    s = margin_state(LINEAR, position_lots=100_000_000, entry_ticks=Fraction(ticks(60_000)), mark_ticks=ticks(59_000),
                     wallet_balance=Fraction(10_000), params=params)  # long 1 BTC
    # liquidation: 10000 + (P - 60000) = 0.004 P  =>  P = 50000 / 0.996
    assert s.liquidation_price == Fraction(50_000) / Fraction("0.996")
    assert s.margin_used == Fraction(5_900) and s.maintenance_margin == Fraction(236)
    assert s.margin_balance == Fraction(9_000) and s.margin_ratio == Fraction(236, 9_000)


def test_margin_state_when_inverse_short_fully_collateralised_then_no_liquidation() -> None:
    params = MarginParams(leverage=10, maintenance_margin_rate=Decimal("0.004"))
    s = margin_state(INVERSE, position_lots=-100, entry_ticks=Fraction(ticks(60_000)), mark_ticks=ticks(60_000),
                     wallet_balance=Fraction(1), params=params)  # short 10,000 USD with 1 BTC (~60,000 USD)
    long = margin_state(INVERSE, position_lots=100, entry_ticks=Fraction(ticks(60_000)), mark_ticks=ticks(60_000),
                        wallet_balance=Fraction(1, 10), params=params)
    # long: P = 10000 x 1.004 / (0.1 + 10000/60000)
    assert s.liquidation_price is None and s.margin_used == Fraction(10_000, 60_000) / 10
    assert long.liquidation_price == Fraction(10_040) / (Fraction(1, 10) + Fraction(10_000, 60_000))


def test_margin_state_when_balance_gone_then_bankrupt_ratio_and_isolated_collateral_is_initial_margin() -> None:
    params = MarginParams(leverage=10, margin_mode="isolated")
    s = margin_state(LINEAR, position_lots=100_000_000, entry_ticks=Fraction(ticks(60_000)), mark_ticks=ticks(50_000),
                     wallet_balance=Fraction(10**6), params=params)  # isolated: 6000 of collateral, 10000 lost
    assert s.margin_balance == Fraction(-4_000) and s.margin_ratio == BANKRUPT_RATIO


def test_margin_params_when_maintenance_above_initial_then_value_error() -> None:
    with pytest.raises(ValueError, match="maintenance_margin_rate"):
        MarginParams(leverage=100, maintenance_margin_rate=Decimal("0.01"))


# --- the wallet -------------------------------------------------------------------------------------
def test_wallet_perp_when_order_filled_and_closed_then_margin_released_fee_and_pnl_booked() -> None:
    wallet = Wallet({"USDT": Decimal(1_000)})
    wallet.open_perp(LINEAR, MarginParams(leverage=10))
    lock = wallet.order_margin(LINEAR.symbol, ticks(60_000), 100_000, Decimal("0.0002"))  # 0.001 BTC
    assert lock == Decimal("6.012")  # 60 / 10 + 60 x 0.0002
    assert wallet.perp_hold("a", LINEAR.symbol, lock)
    wallet.perp_fill("a", LINEAR.symbol, Side.BUY, ticks(60_000), 100_000, Decimal("0.012"), lock)
    wallet.release("a")
    used_open = wallet.available("USDT")
    lock2 = wallet.order_margin(LINEAR.symbol, ticks(61_000), 100_000, Decimal("0.0002"))
    assert wallet.perp_hold("b", LINEAR.symbol, lock2)
    wallet.perp_fill("b", LINEAR.symbol, Side.SELL, ticks(61_000), 100_000, Decimal("0.0122"), lock2)
    wallet.release("b")
    # +1 USDT on 0.001 BTC, fees 0.012 + 0.0122
    assert used_open == Decimal("999.988") - Decimal(6) and wallet.total("USDT") == Decimal("1000.9758")
    assert wallet.available("USDT") == wallet.total("USDT") and wallet.perps[LINEAR.symbol].ledger.position_lots == 0


def test_wallet_perp_when_margin_not_available_then_hold_refused_and_nothing_changes() -> None:
    wallet = Wallet({"BTC": Decimal("0.001")})
    wallet.open_perp(INVERSE, MarginParams(leverage=5))
    need = wallet.order_margin(INVERSE.symbol, ticks(60_000), 100, Decimal(0))  # 10,000 USD / 60000 / 5 = 0.0333 BTC
    assert not wallet.perp_hold("a", INVERSE.symbol, need) and wallet.free["BTC"] == Decimal("0.001") and need > Decimal("0.033")


def test_wallet_when_open_perp_on_spot_then_value_error() -> None:
    with pytest.raises(ValueError, match="needs a perpetual"):
        Wallet({}).open_perp(Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001"), MarginParams())


# --- funding -------------------------------------------------------------------------------------
def test_funding_times_when_a_day_then_00_08_16_utc() -> None:
    day = MIDNIGHT_NS
    times = funding_times(day - 1, day + 24 * 3600 * 10**9)
    assert [(t - day) // (3600 * 10**9) for t in times] == [0, 8, 16, 24]
    assert funding_times(day, day + FUNDING_INTERVAL_NS - 1) == [] and funding_times(day, day) == []


def test_funding_schedule_when_first_event_then_nothing_due_and_each_instant_once() -> None:
    sched = FundingSchedule(Decimal("0.0001"))
    out = [sched.due(MIDNIGHT_NS - 10), sched.due(MIDNIGHT_NS + 2), sched.due(MIDNIGHT_NS + 5), sched.due(MIDNIGHT_NS + 4)]
    assert out == [[], [MIDNIGHT_NS], [], []]


def test_funding_payment_when_linear_and_inverse_then_hand_values_long_pays() -> None:
    linear = funding_payment(LINEAR, 100_000_000, ticks(60_000), Decimal("0.0001"))  # 1 BTC x 60000 x 0.01 %
    inverse_short = funding_payment(INVERSE, -10, ticks(62_500), Decimal("0.0001"))  # 1000 USD / 62500 x 0.01 % received
    assert linear == Decimal("6") and inverse_short == Decimal("-0.0000016")
    assert funding_payment(INVERSE, 0, ticks(60_000), Decimal("0.01")) == 0


def test_coinm_backtest_when_crossing_midnight_then_funding_booked_once_from_the_configured_rate() -> None:
    from mmbot.cli.backtest import run_l2_backtest
    from mmbot.wiring import capture_paths

    settings = load_settings(str(ROOT / "config" / "profiles" / "perp-coinm.yaml"), environ={}, overrides={"audit": {"enabled": False}})
    paths = capture_paths(settings)  # the profile's default data: the bundled COIN-M pair
    summary, _ = run_l2_backtest(settings, paths)
    assert [Path(p).name for p in paths] == ["coinm_btcusd_perp_20240808.gz", "coinm_btcusd_perp_20240809_head.gz"]
    fut = summary["futures"]
    (booked,) = fut["funding"]
    hand = Fraction(booked["position_lots"] * 100) / (Fraction(booked["mark_ticks"]) / 10) * Fraction(1, 10_000)
    payment = Decimal(booked["payment"])
    assert summary["book_gaps"] == 0 and summary["data_sequence_gaps"] == 0 and summary["pnl_ccy"] == "BTC"
    assert booked["funding_ts_ns"] == MIDNIGHT_NS and MIDNIGHT_NS <= booked["booked_ts_ns"] < MIDNIGHT_NS + 10**9
    assert fut["funding_events"] == 1 and Decimal(fut["funding_paid"]) == payment and booked["position_lots"] != 0
    assert abs(Fraction(payment) - hand) < Fraction(1, 10**8)
    assert summary["bid_fills"] > 0 and summary["ask_fills"] > 0 and fut["settle"] == "BTC" and fut["leverage"] == 10
    net = Decimal(summary["gross_pnl"]) - Decimal(summary["fees_paid"]) - payment
    assert abs(Decimal(summary["net_pnl"]) - net) <= Decimal("0.00000001")
    # The wallet books what the ledger books, up to the 1e-8 rounding of each realised part.
    equity = Decimal(fut["wallet_balance"]) + Decimal(fut["unrealized_pnl"]) - 1
    assert abs(equity - Decimal(summary["net_pnl"])) <= Decimal("0.00000001") * summary["fills"]


def test_audit_summary_when_coinm_journal_then_reproduces_net_pnl_with_funding(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    env.update(PYTHONPATH=str(ROOT), MMBOT_AUDIT__DIR=str(tmp_path / "journal"), MMBOT_RECORD__ENABLED="false")
    run = [sys.executable, "-m", "mmbot"]
    summary_path = tmp_path / "summary.json"
    bt = subprocess.run([*run, "backtest", "--config", str(ROOT / "config" / "profiles" / "perp-coinm.yaml"),
                         "--summary-json", str(summary_path)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    journal = next((tmp_path / "journal").glob("*/*"))
    audit = subprocess.run([*run, "audit", "summary", str(journal), "--json"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    summary = json.loads(summary_path.read_text())
    recomputed = json.loads(audit.stdout)
    assert bt.returncode == 0 and audit.returncode == 0, (bt.stderr[-500:], audit.stderr[-500:])
    assert recomputed["net_pnl"] == summary["net_pnl"] and recomputed["matches_run_summary"] is True
    assert summary["futures"]["funding_events"] == 1 and recomputed["net_pnl"] != recomputed["gross_pnl"]
