"""The simulated wallet of paper trading (mmbot.sim.wallet) and SimVenue with it.

Numbers: PX = 60,000.00 USDT, LOT = 0.00001 BTC, so 100 lots at PX = 0.001 BTC = 60 USDT.
"""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mmbot.domain.events import BookDelta, Trade
from mmbot.domain.orders import CancelAll, OrderCancelled, OrderFilled, OrderRejected, Side
from mmbot.marketdata.book import L2Book
from mmbot.portfolio.ledger import Ledger
from mmbot.sim.venue import CODE_REJECTED, FillModel, SimVenue, VenueConfig
from mmbot.sim.wallet import MSG_INSUFFICIENT, Wallet
from tests.conftest import MMBOT
from tests.sim.helpers import LOT, MS, PX, SYM, Market, book_from, cancel, instrument, place

D = Decimal


def _book() -> L2Book:
    # Nothing displayed at PX or PX + 1: orders there have no queue ahead.
    return book_from(bids=[(PX - 1, 50 * LOT)], asks=[(PX + 2, 50 * LOT), (PX + 3, 50 * LOT)])


def _market(usdt: str = "1000", btc: str = "0.01", *, maker_bps: str = "0", taker_bps: str = "0") -> tuple[Market, Wallet]:
    wallet = Wallet({"USDT": D(usdt), "BTC": D(btc)})
    venue = SimVenue(instrument(), _book(), VenueConfig(maker_fee_bps=D(maker_bps), taker_fee_bps=D(taker_bps)), wallet)
    return Market(venue), wallet


def _rejections(market: Market) -> list[OrderRejected]:
    return [r for r in market.reports if isinstance(r, OrderRejected)]


# --- hand-built scenarios ------------------------------------------------------------------
def test_wallet_when_buy_placed_then_quote_locked_with_its_maker_fee():
    market, wallet = _market(maker_bps="1")

    market.send(place("b1", Side.BUY, PX, 100 * LOT), 0)

    assert wallet.locked["USDT"] == D("60.006")  # 60 + 1 bps worst-case maker fee
    assert wallet.free["USDT"] == D("939.994")
    assert wallet.locked["BTC"] == 0 and wallet.free["BTC"] == D("0.01")


def test_wallet_when_sell_placed_then_base_locked():
    market, wallet = _market()

    market.send(place("s1", Side.SELL, PX + 1, 100 * LOT), 0)

    assert wallet.locked["BTC"] == D("0.001") and wallet.free["BTC"] == D("0.009")
    assert wallet.locked["USDT"] == 0 and wallet.free["USDT"] == D("1000")


def test_wallet_when_orders_cancelled_then_everything_released():
    market, wallet = _market(maker_bps="1")
    market.send(place("b1", Side.BUY, PX, 100 * LOT), 0)
    market.send(place("s1", Side.SELL, PX + 1, 100 * LOT), MS)

    market.send(cancel("b1"), 2 * MS)
    market.send(cancel("s1"), 3 * MS)

    assert wallet.free == {"USDT": D("1000"), "BTC": D("0.01")}
    assert wallet.locked == {"USDT": 0, "BTC": 0}
    assert sum(isinstance(r, OrderCancelled) for r in market.reports) == 2


def test_wallet_when_buy_fills_with_a_rebate_then_quote_spent_base_received_rebate_credited():
    market, wallet = _market(maker_bps="-0.5")
    market.send(place("b1", Side.BUY, PX, 100 * LOT), 0)

    market.trade(MS, PX, 100 * LOT, seller_aggressor=True)

    assert market.filled_lots("b1") == 100 * LOT
    assert wallet.free["USDT"] == D("1000") - D("60") + D("0.003")  # rebate 0.5 bps of 60
    assert wallet.free["BTC"] == D("0.011")
    assert wallet.locked == {"USDT": 0, "BTC": 0}


def test_wallet_when_sell_fills_with_a_maker_fee_then_fee_charged_in_quote():
    market, wallet = _market(maker_bps="1")
    market.send(place("s1", Side.SELL, PX, 100 * LOT), 0)

    market.trade(MS, PX, 100 * LOT, seller_aggressor=False)

    assert market.filled_lots("s1") == 100 * LOT
    assert wallet.free["USDT"] == D("1000") + D("60") - D("0.006")
    assert wallet.free["BTC"] == D("0.009")
    assert wallet.locked == {"USDT": 0, "BTC": 0}


def test_wallet_when_partly_filled_then_cancelled_then_only_the_leaves_are_released():
    market, wallet = _market()
    market.send(place("b1", Side.BUY, PX, 100 * LOT), 0)
    market.trade(MS, PX, 40 * LOT, seller_aggressor=True)
    locked_after_fill = wallet.locked["USDT"]

    market.send(cancel("b1"), 2 * MS)

    assert locked_after_fill == D("36")  # 60 lots of 100 still resting
    assert wallet.free["USDT"] == D("1000") - D("24")
    assert wallet.free["BTC"] == D("0.0104")
    assert wallet.locked == {"USDT": 0, "BTC": 0}


def test_wallet_when_limit_buy_takes_at_a_better_price_then_improvement_and_fee_reserve_return():
    market, wallet = _market(taker_bps="2")

    # Limit PX + 3 crosses the ask PX + 2 (50 lots) and PX + 3 (50 lots): the taker fee is paid.
    market.send(place("b1", Side.BUY, PX + 3, 100 * LOT, post_only=False), 0)

    fills = market.fills("b1")
    spent = sum(D(f.price_ticks * f.qty_lots) * D("1e-10") + f.fee for f in fills)
    assert [f.price_ticks for f in fills] == [PX + 2, PX + 3]
    assert wallet.free["USDT"] == D("1000") - spent
    assert spent == D("60.000025") * D("1.0002")  # 0.0005 BTC at 60,000.02 and at 60,000.03, 2 bps taker
    assert wallet.free["BTC"] == D("0.011")
    assert wallet.locked == {"USDT": 0, "BTC": 0}


def test_wallet_when_ioc_remainder_expires_then_its_funds_are_released():
    market, wallet = _market(taker_bps="2")

    market.send(place("h1", Side.BUY, PX + 2, 100 * LOT, post_only=False, taker=True), 0)

    assert market.filled_lots("h1") == 50 * LOT
    assert any(isinstance(r, OrderCancelled) and r.client_order_id == "h1" for r in market.reports)
    assert wallet.locked == {"USDT": 0, "BTC": 0}
    assert wallet.free["USDT"] == D("1000") - D("30.00001") * D("1.0002")


def test_venue_when_buy_not_covered_then_rejected_2010_and_nothing_moves():
    market, wallet = _market(usdt="59.99")

    market.send(place("b1", Side.BUY, PX, 100 * LOT), 0)

    (rejected,) = _rejections(market)
    assert rejected.code == CODE_REJECTED == -2010
    assert rejected.message == MSG_INSUFFICIENT == "Account has insufficient balance for requested action."
    assert market.venue.rejections == {MSG_INSUFFICIENT: 1}
    assert not market.venue.has_orders
    assert wallet.free == {"USDT": D("59.99"), "BTC": D("0.01")} and wallet.locked == {"USDT": 0, "BTC": 0}


def test_venue_when_sell_of_base_never_held_then_rejected_2010():
    market, wallet = _market(btc="0")

    market.send(place("s1", Side.SELL, PX + 1, 100 * LOT), 0)

    (rejected,) = _rejections(market)
    assert (rejected.code, rejected.message) == (-2010, MSG_INSUFFICIENT)
    assert wallet.free["BTC"] == 0 and wallet.locked["BTC"] == 0


def test_venue_when_balance_covers_exactly_then_accepted():
    market, wallet = _market(usdt="60", btc="0.001")

    market.send(place("b1", Side.BUY, PX, 100 * LOT), 0)
    market.send(place("s1", Side.SELL, PX + 1, 100 * LOT), MS)

    assert _rejections(market) == []
    assert wallet.free == {"USDT": 0, "BTC": 0}


def test_venue_when_order_may_take_then_the_taker_fee_is_reserved():
    # 60 USDT covers a post-only buy (maker 0) but not one that may pay 2 bps taker.
    market, _ = _market(usdt="60", taker_bps="2")

    market.send(place("b1", Side.BUY, PX, 100 * LOT, post_only=False), 0)
    market.send(place("b2", Side.BUY, PX, 100 * LOT, post_only=True), MS)

    assert [r.client_order_id for r in _rejections(market)] == ["b1"]
    assert market.venue.open_order_ids() == ["b2"]


def test_venue_when_post_only_would_take_and_is_not_covered_then_balance_is_checked_first():
    market, _ = _market(usdt="1")

    market.send(place("b1", Side.BUY, PX + 2, 100 * LOT), 0)

    assert [r.message for r in _rejections(market)] == [MSG_INSUFFICIENT]


def test_venue_when_post_only_rejected_after_balance_check_then_nothing_stays_locked():
    market, wallet = _market()

    market.send(place("b1", Side.BUY, PX + 2, 100 * LOT), 0)

    assert [r.message for r in _rejections(market)] == ["Order would immediately match and take."]
    assert wallet.locked == {"USDT": 0, "BTC": 0} and wallet.free["USDT"] == D("1000")


def test_venue_when_restored_order_not_covered_then_not_restored():
    market, wallet = _market(btc="0.0005")

    ok = market.venue.restore_order("s1", Side.SELL, PX + 1, 100 * LOT, 0, 0)
    ok_part = market.venue.restore_order("s2", Side.SELL, PX + 1, 100 * LOT, 60 * LOT, 0)

    assert (ok, ok_part) == (False, True)
    assert market.venue.open_order_ids() == ["s2"]
    assert wallet.locked["BTC"] == D("0.0004")


def test_venue_when_wallet_and_fee_of_100_percent_then_value_error():
    with pytest.raises(ValueError, match="fee rates"):
        SimVenue(instrument(), _book(), VenueConfig(taker_fee_bps=D("10000")), Wallet({}))


@pytest.mark.parametrize("amount", [D("-1"), D("NaN"), D("Infinity")])
def test_wallet_when_start_balance_negative_or_not_finite_then_value_error(amount):
    with pytest.raises(ValueError, match="balance of USDT"):
        Wallet({"USDT": amount})


def test_wallet_when_fill_spends_more_than_it_unlocks_then_value_error():
    wallet = Wallet({"USDT": D("100")})
    wallet.hold("o1", "USDT", D("60"))

    with pytest.raises(ValueError, match="spends"):
        wallet.settle("o1", unlock=D("30"), spend=D("31"), receive_asset="BTC", receive=D("0.0005"))


def test_wallet_when_summarised_then_exact_strings_without_trailing_zeros():
    wallet = Wallet({"USDT": D("1000.50"), "ETH": D("0")})
    wallet.add_assets("BTC")

    assert wallet.balances_start() == {"BTC": "0", "ETH": "0", "USDT": "1000.5"}
    assert wallet.balances_end() == {"BTC": "0", "ETH": "0", "USDT": "1000.5"}


# --- property: random places, cancels and market events ----------------------------------
C = PX
place_action = st.tuples(
    st.just("place"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(C - 3, C + 4), st.integers(10, 300), st.sampled_from(["post", "post", "limit", "ioc"])
)
trade_action = st.tuples(st.just("trade"), st.integers(C - 3, C + 4), st.integers(1, 300), st.booleans())
action = st.one_of(  # places and prints weighted x2: most examples fill something
    place_action,
    place_action,
    trade_action,
    trade_action,
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("bid"), st.integers(C - 3, C + 1), st.integers(0, 200)),
    st.tuples(st.just("ask"), st.integers(C, C + 4), st.integers(0, 200)),
)


def _check(wallet: Wallet, venue: SimVenue, ledger: Ledger, start: dict[str, Decimal], rates: dict[str, Decimal]) -> None:
    for book in (wallet.free, wallet.locked):
        assert all(v >= 0 for v in book.values()), (wallet.free, wallet.locked)
    inst = venue.instrument
    # free + locked reconcile with the fills: base = start + position, quote = start + cash - fees.
    assert wallet.total("BTC") == start["BTC"] + inst.qty(ledger.position_lots)
    assert wallet.total("USDT") == start["USDT"] + ledger.cash - ledger.fees_paid
    # What is locked is exactly what the open orders' leaves need.
    locked_base = sum((inst.qty(q - f) for _, s, _, q, f in venue.open_orders() if s is Side.SELL), D(0))
    locked_quote = sum(
        (D(p * (q - f)) * D("1e-10") * (1 + rates[c]) for c, s, p, q, f in venue.open_orders() if s is Side.BUY), D(0)
    )
    assert wallet.locked["BTC"] == locked_base
    assert wallet.locked["USDT"] == locked_quote


@settings(max_examples=200, deadline=None)
@given(
    st.lists(action, min_size=8, max_size=60),
    st.sampled_from(["0", "25", "200", "100000"]),
    st.sampled_from(["0", "0.0005", "0.003", "1"]),
    st.sampled_from([("0", "0"), ("-0.5", "2"), ("1", "3")]),
    st.sampled_from([0, 2]),
    st.sampled_from(list(FillModel)),
)
def test_wallet_property_when_random_orders_and_market_then_never_negative_and_reconciled(actions, usdt, btc, fees, latency_ms, model):
    start = {"USDT": D(usdt), "BTC": D(btc)}
    wallet = Wallet(dict(start))
    book = book_from(bids=[(C - k, (20 + 7 * k) * LOT) for k in range(4)], asks=[(C + 1 + k, (20 + 7 * k) * LOT) for k in range(4)])
    maker, taker = D(fees[0]) / 10_000, D(fees[1]) / 10_000
    cfg = VenueConfig(fill_model=model, entry_latency_ms=latency_ms, cancel_latency_ms=latency_ms, maker_fee_bps=D(fees[0]), taker_fee_bps=D(fees[1]))
    venue = SimVenue(instrument(), book, cfg, wallet)
    ledger = Ledger(venue.instrument)
    rates: dict[str, Decimal] = {}
    rejected = 0

    def apply(reports: list) -> None:  # type: ignore[type-arg]
        nonlocal rejected
        for r in reports:
            if isinstance(r, OrderFilled):
                ledger.apply_fill(r.side, r.price_ticks, r.qty_lots, r.fee)
            elif isinstance(r, OrderRejected) and r.message == MSG_INSUFFICIENT:
                rejected += 1

    uid = book.last_update_id
    for n, act in enumerate(actions):
        ts = (n + 1) * MS
        apply(venue.advance(ts))
        if act[0] == "place":
            _, side, price, lots, kind = act
            coid = f"o{n}"
            post_only, taker_flag = kind == "post", kind == "ioc"
            rates[coid] = max(maker, D(0)) if post_only else max(maker, taker, D(0))
            venue.submit(place(coid, side, price, lots * LOT, post_only=post_only, taker=taker_flag), ts)
            apply(venue.advance(ts))
        elif act[0] == "cancel":
            venue.submit(cancel(f"o{act[1]}"), ts)
            apply(venue.advance(ts))
        elif act[0] == "trade":
            apply(venue.on_trade(Trade(SYM, ts, ts, n, act[1], act[2] * LOT, act[3])))
        else:
            uid += 1
            level = ((act[1], act[2] * LOT),)
            delta = BookDelta(SYM, ts, ts, uid, uid, level if act[0] == "bid" else (), level if act[0] == "ask" else ())
            book.apply_delta(delta)
            apply(venue.on_depth(delta))
        _check(wallet, venue, ledger, start, rates)
    venue.submit(CancelAll(symbol=SYM), 10**12)
    apply(venue.advance(10**15))
    _check(wallet, venue, ledger, start, rates)

    assert wallet.locked == {"USDT": 0, "BTC": 0}
    assert venue.rejections.get(MSG_INSUFFICIENT, 0) == rejected
    event(f"fills: {ledger.fills > 0}, -2010: {rejected > 0}")


# --- end to end: the real CLI on the bundled capture ---------------------------------------
def _backtest(tmp_path: Path, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "s.json"
    proc = subprocess.run(
        [*MMBOT, "backtest", "--summary-json", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def test_backtest_when_paper_balances_small_then_rejections_counted_and_balances_never_negative(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = {**clean_env, "MMBOT_PAPER__BALANCES": '{"USDT": 100, "BTC": 0.001}', "MMBOT_RECORD__ENABLED": "false"}

    s = _backtest(tmp_path, env)

    assert s["venue_rejections"].get(MSG_INSUFFICIENT, 0) > 0
    assert s["balances_start"] == {"BTC": "0.001", "USDT": "100"}
    assert all(D(v) >= 0 for v in s["balances_end"].values()), s["balances_end"]
    assert D(s["balances_end"]["BTC"]) == D("0.001") + D(s["final_inventory"])


def test_backtest_when_default_balances_then_results_unchanged_and_balances_reconcile(tmp_path: Path, clean_env: dict[str, str]) -> None:
    s = _backtest(tmp_path, {**clean_env, "MMBOT_RECORD__ENABLED": "false"})

    assert (s["fills"], s["net_pnl"]) == (229, "-11.04151660")
    assert s["venue_rejections"] == {}
    assert s["balances_start"] == {"BTC": "15", "USDT": "1000000"}
    assert D(s["balances_end"]["BTC"]) == D("15") + D(s["final_inventory"])
    assert D(s["balances_end"]["USDT"]) == D("1000000") + D(s["cash"]) - D(s["fees_paid"])
