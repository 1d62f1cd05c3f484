"""Bar loading, quality report and the reference bar backtest's rules, with hand numbers."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.domain.orders import Side
from mmbot.errors import DataError
from mmbot.research.bars import (
    BarFees,
    BarRules,
    Bars,
    bar_performance,
    bundled_bars_path,
    check_bars,
    load_bars,
    run_bar_backtest,
)
from mmbot.strategy.simple import SimpleParams

T0 = 1_680_680_220_000  # 2023-04-05T07:37:00Z in ms
ROWS = [
    [T0, 100.0, 101.0, 99.0, 100.5, 3.0],
    [T0 + 60_000, 100.5, 102.0, 100.0, 101.0, 0.0],
    [T0 + 180_000, 101.0, 101.5, 100.5, 101.2, 2.0],  # one bar missing before this one
    [T0 + 240_000, 101.2, 101.3, 100.9, 101.0, 1.5],
]


def bars_of(rows: list[list[float]]) -> Bars:
    a = np.array(rows, dtype=np.float64)
    return Bars(a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], "test")


def ohlc(*rows: tuple[float, float, float, float]) -> Bars:
    """Bars one minute apart from (open, high, low, close), volume 1."""
    return bars_of([[T0 + i * 60_000, o, h, lo, c, 1.0] for i, (o, h, lo, c) in enumerate(rows)])


# --------------------------------------------------------------------------- loading


def _check_rows(bars: Bars) -> None:
    assert len(bars) == 4
    assert bars.ts_ms.tolist() == [r[0] for r in ROWS]
    assert bars.close.tolist() == [r[4] for r in ROWS]
    assert bars.volume.tolist() == [r[5] for r in ROWS]


def test_load_bars_when_freqtrade_json_then_rows_read(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1m.json"
    path.write_text(json.dumps(ROWS))
    _check_rows(load_bars(path))


def test_load_bars_when_gzipped_json_then_rows_read(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1m.json.gz"
    path.write_bytes(gzip.compress(json.dumps(ROWS).encode()))
    _check_rows(load_bars(path))


def test_load_bars_when_csv_with_iso_dates_and_header_then_rows_read(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    lines = ["volume,date,open,high,low,close"]  # columns in any order, found by name
    for r in ROWS:
        iso = np.datetime64(int(r[0]), "ms").astype(str) + "Z"
        lines.append(f"{r[5]},{iso},{r[1]},{r[2]},{r[3]},{r[4]}")
    path.write_text("\n".join(lines) + "\n")
    _check_rows(load_bars(path))


def test_load_bars_when_csv_without_header_in_seconds_then_rows_read(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("".join(f"{r[0] // 1000},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n" for r in ROWS))
    _check_rows(load_bars(path))


@pytest.mark.parametrize("kind", ["feather", "parquet"])
def test_load_bars_when_arrow_file_with_timestamp_column_then_rows_read(tmp_path: Path, kind: str) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "date": pa.array([r[0] for r in ROWS], type=pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "open": [r[1] for r in ROWS],
            "high": [r[2] for r in ROWS],
            "low": [r[3] for r in ROWS],
            "close": [r[4] for r in ROWS],
            "volume": [r[5] for r in ROWS],
        }
    )
    path = tmp_path / f"BTC_USDT-1m.{kind}"
    (feather.write_feather if kind == "feather" else pq.write_table)(table, path)
    _check_rows(load_bars(path))


def test_check_bars_when_gap_and_zero_volume_then_reported_not_filled() -> None:
    bars = bars_of(ROWS)
    q = check_bars(bars)

    assert len(bars) == 4  # nothing filled in or dropped
    assert q.interval_ms == 60_000
    assert (q.gaps, q.missing_bars) == (1, 1)
    assert q.gap_examples == ((T0 + 60_000, 1),)
    assert q.zero_volume_bars == 1
    assert q.zero_volume_examples == (T0 + 60_000,)
    assert any("1 gaps, 1 bars missing" in line for line in q.lines())
    assert any("1 zero-volume bars" in line for line in q.lines())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bars.json", json.dumps([ROWS[1], ROWS[0]]), "timestamps must increase"),
        ("bars.json", "[[1, 2, 3]]", "bars must be rows"),
        ("bars.json", "{not json", "not valid JSON"),
        ("bars.csv", "date,open,high,low\n1,2,3,4\n", "missing column(s) close, volume"),
        ("bars.txt2", "x", "unknown format"),
        ("bars.json", json.dumps([[T0, 1, 2, -1, 1, 1]]), "price <= 0"),
    ],
)
def test_load_bars_when_bad_file_then_data_error_naming_problem(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_bars(path)


def test_load_bars_when_bundled_month_then_43199_contiguous_bars() -> None:
    bars = load_bars(bundled_bars_path())
    q = check_bars(bars)

    assert len(bars) == 43_199
    assert (q.gaps, q.zero_volume_bars, q.inconsistent_ohlc) == (0, 0, 0)
    assert q.first_ts_ms == T0


# --------------------------------------------------------------------------- rules

SEED = SimpleParams(spread_bps=20, order_size=1.0, max_inventory=10, skew_factor=0.001, update_freq=1)
# bar 0 quotes 99.90 / 100.10 around 100.00; bar 1 trades down to 99.85 (bid fills), closes 99.95,
# re-quote with q = 1: r = 99.95 * (1 - 0.1 * 0.001), half = 0.09995 -> bid 99.84, ask 100.04;
# bar 2 opens at 100.10, above the ask (gap through it)
THREE = ohlc((100.0, 100.0, 100.0, 100.0), (100.0, 100.05, 99.85, 99.95), (100.10, 100.20, 100.0, 100.10))


def test_run_bar_backtest_when_fill_rule_quote_then_fills_at_quotes_and_skewed_requote() -> None:
    r = run_bar_backtest(THREE, SEED)

    assert [(f.bar, f.side, f.price_ticks, f.mid_ref_ticks) for f in r.fills] == [
        (1, Side.BUY, 9990, 10000),
        (2, Side.SELL, 10004, 9995),
    ]
    assert (r.bid_ticks[0], r.ask_ticks[0]) == (9990, 10010)
    assert (r.bid_ticks[1], r.ask_ticks[1]) == (9984, 10004)  # skewed down while long 1
    assert r.inventory_lots == [0, 100_000_000, 0]
    assert r.gross_pnl == pytest.approx([0.0, 0.05, 0.14])  # -99.90 + 99.95; then -99.90 + 100.04
    assert r.orders_placed == 6


def test_run_bar_backtest_when_fill_rule_open_gap_then_ask_fills_at_the_open() -> None:
    r = run_bar_backtest(THREE, SEED, rules=BarRules(fill_rule="open_gap"))

    assert [f.price_ticks for f in r.fills] == [9990, 10010]  # bar 1 opened above the bid: at the bid
    assert r.net_pnl[-1] == pytest.approx(0.20)


def test_run_bar_backtest_when_low_equals_bid_then_strict_no_fill_backtrader_fills() -> None:
    bars = ohlc((100.0, 100.0, 100.0, 100.0), (100.0, 100.05, 99.90, 100.0))

    strict = run_bar_backtest(bars, SEED)
    bt = run_bar_backtest(bars, SEED, rules=BarRules(fill_semantics="backtrader"))

    assert strict.fills == []
    assert [(f.side, f.price_ticks) for f in bt.fills] == [(Side.BUY, 9990)]


def test_run_bar_backtest_when_backtrader_and_bar_opens_through_then_fill_at_open() -> None:
    r = run_bar_backtest(THREE, SEED, rules=BarRules(fill_semantics="backtrader"))

    assert [f.price_ticks for f in r.fills] == [9990, 10010]


def test_run_bar_backtest_when_bar_spans_both_quotes_then_both_fill_bid_first() -> None:
    bars = ohlc((100.0, 100.0, 100.0, 100.0), (100.0, 100.50, 99.50, 100.0))
    r = run_bar_backtest(bars, SEED)

    assert [(f.side, f.price_ticks) for f in r.fills] == [(Side.BUY, 9990), (Side.SELL, 10010)]
    assert r.inventory_lots[-1] == 0
    assert r.gross_pnl[-1] == pytest.approx(0.20)


def test_run_bar_backtest_when_fees_and_slippage_then_charged_on_notional() -> None:
    r = run_bar_backtest(THREE, SEED, fees=BarFees(maker_fee_bps=Decimal(10), slippage_bps=Decimal(5)))

    assert r.fills[0].fee == Decimal("0.099900")  # 99.90 x 10 bps
    assert r.fills[0].slippage == Decimal("0.049950")  # 99.90 x 5 bps
    costs = (99.90 + 100.04) * 15 / 10_000
    assert r.net_pnl[-1] == pytest.approx(0.14 - costs)
    assert r.ledger is not None and r.ledger.fees_paid == Decimal("0.199940")


def test_run_bar_backtest_when_update_freq_two_then_filled_side_not_requoted_until_update_bar() -> None:
    params = SimpleParams(spread_bps=20, order_size=1.0, max_inventory=10, skew_factor=0.0, update_freq=2)
    bars = ohlc(
        (100.0, 100.0, 100.0, 100.0),  # bar 0: quote 99.90 / 100.10
        (100.0, 100.0, 99.80, 99.90),  # bar 1: bid fills; no update (1 % 2)
        (99.90, 99.95, 99.50, 99.60),  # bar 2: no bid resting although the low is lower; update
        (99.60, 99.60, 99.40, 99.50),  # bar 3: the new bid 99.50 (from close 99.60) fills
    )
    r = run_bar_backtest(bars, params)

    assert [(f.bar, f.price_ticks) for f in r.fills] == [(1, 9990), (3, 9950)]
    assert r.bid_ticks[1] == 0 and r.ask_ticks[1] == 10010  # the ask from bar 0 persists
    assert r.orders_placed == 4


def test_run_bar_backtest_when_at_inventory_limit_then_no_bid_placed() -> None:
    params = SimpleParams(spread_bps=20, order_size=1.0, max_inventory=1.0, skew_factor=0.0, update_freq=1)
    bars = ohlc((100.0, 100.0, 100.0, 100.0), (100.0, 100.0, 99.0, 99.5), (99.5, 99.5, 90.0, 95.0))
    r = run_bar_backtest(bars, params)

    assert len(r.fills) == 1
    assert r.bid_ticks[1] == 0 and r.ask_ticks[1] > 0  # long 1 = the limit: only the ask
    assert r.inventory_lots[-1] == 100_000_000


def test_run_bar_backtest_when_skew_exceeds_half_spread_then_clamp_keeps_bid_below_close() -> None:
    # short 1 of 2 with skew_factor 2^-7 (exact in binary): r = c * (1 + 2^-8) = 100.390625, bid = r - 0.10 > c
    params = SimpleParams(spread_bps=20, order_size=1.0, max_inventory=2.0, skew_factor=0.0078125, update_freq=1)
    bars = ohlc((100.0, 100.0, 100.0, 100.0), (100.0, 100.20, 100.0, 100.0), (100.0, 100.0, 99.99, 100.0))

    clamp = run_bar_backtest(bars, params)
    allow = run_bar_backtest(bars, params, rules=BarRules(cross_policy="allow"))

    assert clamp.bid_ticks[1] == 9999  # clamped one tick below the close 100.00
    assert allow.bid_ticks[1] == 10029  # floor(10039.0625 - 10) ticks
    assert [f.price_ticks for f in clamp.fills] == [10010]  # bar 2's low 99.99 is not below 99.99
    assert [f.price_ticks for f in allow.fills] == [10010, 10029]  # the crossed bid fills at once


def test_bar_performance_when_three_bars_then_metrics_from_the_metrics_module() -> None:
    r = run_bar_backtest(THREE, SEED)
    perf = bar_performance(r, THREE, sharpe_interval_s=60)
    f = perf.fields()

    assert f["round_trips"] == 1 and f["win_rate"] == 1.0
    assert f["avg_spread_captured_bps"] == pytest.approx((100.04 - 99.90) / 99.90 * 10_000, abs=1e-4)  # rounded to 4 dp
    assert f["max_inventory"] == 1.0
    assert f["inventory_balance"] == 1.0  # neutral band 0.1 x 10 = 1: |q| <= 1 at every close
    assert f["return_interval_s"] == 60


@settings(max_examples=60, deadline=None)
@given(
    moves=st.lists(st.tuples(st.integers(-40, 40), st.integers(0, 30), st.integers(0, 30)), min_size=2, max_size=60),
    spread=st.sampled_from([10.0, 20.0, 30.0]),
    skew=st.sampled_from([0.0, 0.001, 0.002, 0.02]),
    q_max=st.sampled_from([1.0, 2.0, 5.0]),
    cross=st.sampled_from(["clamp", "allow"]),
    semantics=st.sampled_from(["strict", "backtrader"]),
)
def test_run_bar_backtest_when_any_bars_then_inventory_within_limit_and_pnl_identity(
    moves: list[tuple[int, int, int]], spread: float, skew: float, q_max: float, cross: str, semantics: str
) -> None:
    rows, c = [], 100.0
    for d, up, down in moves:
        o = c
        c = round(c + d * 0.01, 2)
        rows.append((o, round(max(o, c) + up * 0.01, 2), round(min(o, c) - down * 0.01, 2), c))
    bars = ohlc(*rows)
    params = SimpleParams(spread_bps=spread, order_size=1.0, max_inventory=q_max, skew_factor=skew, update_freq=1)
    r = run_bar_backtest(bars, params, rules=BarRules(cross_policy=cross, fill_semantics=semantics))

    assert all(abs(q) <= q_max * 100_000_000 for q in r.inventory_lots)
    if cross == "clamp":
        closes = [round(x[3] * 100) for x in rows]
        assert all(b == 0 or b < cl for b, cl in zip(r.bid_ticks, closes, strict=True))
        assert all(a == 0 or a > cl for a, cl in zip(r.ask_ticks, closes, strict=True))
    cash = -sum(int(f.side) * f.price_ticks for f in r.fills) * 0.01  # 1 BTC per fill
    assert r.gross_pnl[-1] == pytest.approx(cash + r.inventory_lots[-1] / 1e8 * r.close_ticks[-1] * 0.01)
    assert len(r.fills) <= r.orders_placed


def test_backtest_cli_when_bars_have_gap_and_zero_volume_then_warned_and_in_summary(tmp_path: Path, clean_env: dict[str, str]) -> None:
    import subprocess

    from tests.conftest import MMBOT

    path = tmp_path / "bars.json"
    path.write_text(json.dumps(ROWS))
    proc = subprocess.run(
        [*MMBOT, "backtest", "--bars", str(path), "--summary-json", str(tmp_path / "s.json"), "--out", str(tmp_path / "run")],
        cwd=tmp_path, env=clean_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    summary = json.loads((tmp_path / "s.json").read_text())

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "WARNING: 1 gaps, 1 bars missing (not filled)" in proc.stdout
    assert "WARNING: 1 zero-volume bars" in proc.stdout
    assert (summary["bars"], summary["bar_gaps"], summary["missing_bars"], summary["zero_volume_bars"]) == (4, 1, 1, 1)
    assert summary["bar_gap_examples"] == [["2023-04-05T07:38:00Z", 1]]
    assert (tmp_path / "run" / "series.csv").read_text().count("\n") == 5  # header + the 4 bars, none invented


def test_backtest_cli_when_bars_file_missing_then_exit_2_one_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    import subprocess

    from tests.conftest import MMBOT

    proc = subprocess.run([*MMBOT, "backtest", "--bars", str(tmp_path / "nope.csv")], env=clean_env, capture_output=True, text=True, timeout=120)

    assert proc.returncode == 2  # a missing input file: fix the input (mmbot/errors.py)
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
