"""The run record: L2 sampling, bounded memory, round trip through the files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbot.config.settings import load_settings
from mmbot.domain.engine_events import EngineEvent, FillBooked, OrderAcked, OrderCancelConfirmed, OrderPlaced, RiskChanged
from mmbot.errors import DataError
from mmbot.research.record import SeriesRecorder, iso_ns, load_record, parse_iso_ns
from mmbot.wiring import build_replay

S = 1_000_000_000


def _recorder(max_samples: int = 200_000) -> SeriesRecorder:
    built = build_replay(load_settings(None, environ={}), "20260101T000000Z-test0000")
    return SeriesRecorder(built.engine, 1000.0, 0.05, max_samples=max_samples)


def test_series_recorder_when_events_cross_boundaries_then_one_sample_per_interval_at_its_end() -> None:
    rec = _recorder()
    for t in (100 * S, 100 * S + S // 2, 101 * S, 103 * S + 1):  # origin, inside, boundary, skip one
        rec.advance(t)

    assert rec.cols["ts_ns"] == [101 * S, 102 * S, 103 * S]
    assert rec.cols["inventory"] == [0.0, 0.0, 0.0]
    assert rec.next_ns == 104 * S


def test_series_recorder_when_max_samples_reached_then_halves_resolution_keeping_aligned_samples() -> None:
    rec = _recorder(max_samples=4)
    rec.advance(0)
    rec.advance(9 * S + 1)  # boundaries 1..9 s

    ts = rec.cols["ts_ns"]
    assert rec.interval_ns == 4 * S  # halved twice
    assert all(t % (4 * S) == 0 for t in ts)  # still the end of whole intervals
    assert len(ts) < 4
    assert rec.next_ns == 12 * S


def test_series_recorder_when_written_then_load_record_reads_same_values(tmp_path: Path) -> None:
    rec = _recorder()
    for t in range(0, 5 * S + 1, S // 2):
        rec.advance(t)
    summary = {"run_id": "x", "net_pnl": "0"}
    d = rec.write(tmp_path / "run", summary)

    loaded = load_record(d)

    assert loaded.kind == "l2" and loaded.interval_s == 1.0
    assert loaded.series["ts_ns"].tolist() == [float(t * S) for t in range(1, 6)]
    assert loaded.fills["ts_ns"].shape[0] == 0
    assert loaded.summary["record_dir"] == str(d.resolve())


def test_load_record_when_directory_has_no_summary_then_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"holds no summary\.json"):
        load_record(tmp_path)


@given(st.integers(min_value=0, max_value=4_102_444_800 * S - 1))
def test_iso_ns_when_any_time_then_parses_back_to_the_same_nanosecond(ts_ns: int) -> None:
    text = iso_ns(ts_ns)

    assert text.endswith("Z") and len(text) == len("2024-08-08T23:54:14.371832667Z")
    assert parse_iso_ns(text) == ts_ns


def test_parse_iso_ns_when_not_iso_then_data_error_naming_the_value() -> None:
    with pytest.raises(DataError, match="'1723161254371832667' is not ISO 8601"):
        parse_iso_ns("1723161254371832667")


T0 = 1_723_161_254_371_832_667  # 2024-08-08T23:54:14.371832667Z


def test_series_recorder_when_orders_fill_and_cancel_then_fills_orders_and_risk_files_hold_them(tmp_path: Path) -> None:
    rec = _recorder()  # BTC/USDT: tick 0.01, lot 1e-8 BTC
    rec.advance(T0 - S)
    rec.on_events([
        OrderPlaced(ts_ns=T0, client_order_id="b-1", side="BUY", price=6_183_145, qty=1_000_000, level=0, taker=False, reason="simple"),
        OrderPlaced(ts_ns=T0, client_order_id="s-1", side="SELL", price=6_184_382, qty=1_000_000, level=0, taker=False, reason="simple"),
        OrderAcked(ts_ns=T0 + 7, client_order_id="b-1", venue_order_id="1", queue_ahead=250_000),
        FillBooked(ts_ns=T0 + 11, fill_index=0, client_order_id="b-1", side="BUY", price=6_183_145, qty=164_000, leaves=836_000,
                   fee="-0.001", liquidity="maker", reason="trade_through", queue_ahead=250_000, position=164_000),
        FillBooked(ts_ns=T0 + 13, fill_index=1, client_order_id="b-1", side="BUY", price=6_183_145, qty=836_000, leaves=0,
                   fee="0", liquidity="maker", reason="book_crossed", queue_ahead=250_000, position=1_000_000),
        OrderCancelConfirmed(ts_ns=T0 + 20, client_order_id="s-1", reason="requote"),
        RiskChanged(ts_ns=T0 + 30, old="ACTIVE", new="REDUCING", reasons=("MAX_POSITION",), cause="position"),
    ])  # fmt: skip
    rec.advance(T0 + 2 * S)
    d = rec.write(tmp_path / "run", {"run_id": "x"})

    loaded = load_record(d)
    fills_csv = (d / "fills.csv").read_text().splitlines()
    orders = loaded.orders
    assert fills_csv[0].startswith("time,order_id,side,price,qty,fee,liquidity,reason,queue_ahead,position,mid_ref,markout_")
    assert fills_csv[1].startswith("2024-08-08T23:54:14.371832678Z,b-1,buy,61831.45,0.00164,-0.001,maker,trade_through,0.0025,0.00164,")
    assert loaded.fill_text["time"][1] == "2024-08-08T23:54:14.371832680Z"  # exact, not the float
    assert loaded.fill_text["reason"] == ("trade_through", "book_crossed") and loaded.fills["side"].tolist() == [1.0, 1.0]
    assert loaded.fills["queue_ahead"].tolist() == [0.0025, 0.0025]
    assert orders.text["order_id"] == ("b-1", "s-1") and orders.text["end"] == ("filled", "cancelled")
    assert orders.text["acked"][0] == "2024-08-08T23:54:14.371832674Z" and orders.text["acked"][1] == ""  # never acked
    assert orders.num["filled_qty"].tolist() == [0.01, 0.0] and orders.num["queue_ahead"][0] == 0.0025
    assert orders.text["ended"] == ("2024-08-08T23:54:14.371832680Z", "2024-08-08T23:54:14.371832687Z")
    assert loaded.risk.rows == 1 and loaded.risk.text["new"] == ("REDUCING",) and loaded.risk.text["reasons"] == ("MAX_POSITION",)
    assert loaded.summary["record"]["risk_state_start"] == "ACTIVE" and loaded.summary["record"]["version"] == 2


def test_series_recorder_when_max_orders_reached_then_thins_unfilled_finished_orders_only() -> None:
    rec = _recorder()
    rec.max_orders = 4
    events: list[EngineEvent] = []
    for i in range(8):
        coid = f"o-{i}"
        events.append(OrderPlaced(ts_ns=T0 + i, client_order_id=coid, side="BUY", price=100, qty=10, level=0, taker=False, reason="q"))
        if i == 1:
            events.append(FillBooked(ts_ns=T0 + i, fill_index=0, client_order_id=coid, side="BUY", price=100, qty=10, leaves=0,
                                     fee="0", liquidity="maker", reason="trade_through", queue_ahead=0, position=10))  # fmt: skip
        elif i != 2:  # o-2 stays open
            events.append(OrderCancelConfirmed(ts_ns=T0 + i, client_order_id=coid, reason="requote"))
    rec.on_events(events)

    kept = set(rec.orders)
    assert {"o-1", "o-2"} <= kept  # the filled and the open order survive every thinning
    assert rec.orders_thinned > 0 and len(kept) + rec.orders_thinned == 8
