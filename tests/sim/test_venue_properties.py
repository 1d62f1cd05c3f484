"""Property tests of SimVenue on random markets with a fixed list of orders (no feedback)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.domain.events import BestBidAsk, BookDelta, Trade
from mmbot.domain.orders import Liquidity, OrderFilled, Side
from mmbot.portfolio.ledger import Ledger
from mmbot.sim.venue import FillModel, SimVenue, VenueConfig
from tests.sim.helpers import LOT, MS, PX, SYM, book_from, cancel, instrument, place

C = PX  # the market lives within a few ticks of 60,000.00


@dataclass(frozen=True)
class OrderPlan:
    ts: int
    side: Side
    price: int
    qty: int
    post_only: bool
    cancel_after: int | None


trade_event = st.tuples(st.just("trade"), st.integers(C - 4, C + 5), st.integers(1, 40), st.booleans())
market_event = st.one_of(
    # Prints are the common case (weighted x3); book moves that cross resting orders are rarer,
    # so the queue models really differ from touch in many examples.
    trade_event,
    trade_event,
    trade_event,
    st.tuples(st.just("bid"), st.integers(C - 4, C + 1), st.integers(0, 120), st.booleans()),
    st.tuples(st.just("ask"), st.integers(C - 1, C + 5), st.integers(0, 120), st.booleans()),
    st.tuples(st.just("bbo"), st.integers(C - 2, C + 1), st.integers(1, 120), st.integers(1, 120)),
)
order_plan = st.builds(
    OrderPlan,
    ts=st.integers(0, 12).map(lambda i: i * MS),  # while the market events still come
    side=st.sampled_from([Side.BUY, Side.SELL]),
    price=st.integers(C - 5, C + 6),
    qty=st.integers(10, 100).map(lambda n: n * LOT),
    post_only=st.sampled_from([True, True, True, False]),
    cancel_after=st.one_of(st.none(), st.integers(1, 20).map(lambda i: i * MS)),
)
scenario = st.tuples(
    st.lists(market_event, min_size=15, max_size=80),
    st.lists(order_plan, min_size=1, max_size=6),
    st.sampled_from([0, 2, 5]),  # entry/cancel latency ms
)


@dataclass
class Run:
    fills: list[OrderFilled]
    sells_printed: list[tuple[int, int]]  # (ts, price) of seller-aggressor prints
    buys_printed: list[tuple[int, int]]
    # per fill: the true (bid, ask) just before and just after the call that produced it
    touch_around: list[tuple[tuple[int | None, int | None], tuple[int | None, int | None]]]


def _run(events: list[tuple], orders: list[OrderPlan], latency_ms: int, model: FillModel) -> Run:
    # A queue at every price our orders use, so the models have something to disagree on.
    book = book_from(bids=[(C - k, (20 + 7 * k) * LOT) for k in range(8)], asks=[(C + 1 + k, (20 + 7 * k) * LOT) for k in range(8)])
    venue = SimVenue(
        instrument(),
        book,
        VenueConfig(fill_model=model, entry_latency_ms=latency_ms, cancel_latency_ms=latency_ms, maker_fee_bps=Decimal("-0.5"), taker_fee_bps=Decimal("2")),
    )
    commands: list[tuple[int, int, object]] = []
    for i, plan in enumerate(orders):
        coid = f"o{i}"
        commands.append((plan.ts, i, place(coid, plan.side, plan.price, plan.qty, post_only=plan.post_only)))
        if plan.cancel_after is not None:
            commands.append((plan.ts + plan.cancel_after, 100 + i, cancel(coid)))
    commands.sort(key=lambda c: (c[0], c[1]))
    reports: list = []
    around: list = []

    def collect(call, *args):  # type: ignore[no-untyped-def]
        before = venue.true_touch()
        out = call(*args)
        after = venue.true_touch()
        for r in out:
            if isinstance(r, OrderFilled):
                reports.append(r)
                around.append((before, after))

    sells: list[tuple[int, int]] = []
    buys: list[tuple[int, int]] = []
    uid = book.last_update_id
    bbo_id = 10**9
    k = 0
    for n, (kind, price, a, b) in enumerate(events):
        ts = (n + 1) * MS
        while k < len(commands) and commands[k][0] <= ts:
            venue.submit(commands[k][2], commands[k][0])  # type: ignore[arg-type]
            collect(venue.advance, commands[k][0])
            k += 1
        collect(venue.advance, ts)
        if kind == "trade":
            seller = b
            (sells if seller else buys).append((ts, price))
            collect(venue.on_trade, Trade(SYM, ts, ts, n, price, a * LOT, seller))
        elif kind in ("bid", "ask"):
            uid += 1
            level = ((price, a * LOT),)
            delta = BookDelta(SYM, ts, ts, uid, uid, level if kind == "bid" else (), level if kind == "ask" else ())
            book.apply_delta(delta)
            collect(venue.on_depth, delta)
        else:
            bbo_id += 1
            collect(venue.on_bbo, BestBidAsk(SYM, ts, bbo_id, price, a * LOT, price + 1, b * LOT))
    for t, _, command in commands[k:]:
        venue.submit(command, t)  # type: ignore[arg-type]
    collect(venue.advance, 10**15)
    return Run(reports, sells, buys, around)


def _filled_by_order(run: Run) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in run.fills:
        out[f.client_order_id] = out.get(f.client_order_id, 0) + f.qty_lots
    return out


@settings(max_examples=100, deadline=None)
@given(scenario, st.sampled_from(list(FillModel)))
def test_venue_property_when_any_market_then_no_fill_at_a_price_never_traded_or_crossed(case, model):
    events, orders, latency = case
    run = _run(events, orders, latency, model)

    for f, ((bid0, ask0), (bid, ask)) in zip(run.fills, run.touch_around, strict=True):
        if f.liquidity is Liquidity.TAKER:
            # Took displayed liquidity on arrival: the market offered (bid) there or better.
            assert f.side is Side.SELL or (ask0 is not None and f.price_ticks >= ask0), f
            assert f.side is Side.BUY or (bid0 is not None and f.price_ticks <= bid0), f
        elif f.side is Side.BUY:
            printed = any(t <= f.ts_ns and p <= f.price_ticks for t, p in run.sells_printed)
            assert printed or (ask is not None and ask <= f.price_ticks), f
        else:
            printed = any(t <= f.ts_ns and p >= f.price_ticks for t, p in run.buys_printed)
            assert printed or (bid is not None and bid >= f.price_ticks), f


@settings(max_examples=100, deadline=None)
@given(scenario)
def test_venue_property_when_same_orders_then_queue_models_never_fill_more_than_touch(case):
    events, orders, latency = case
    touch = _filled_by_order(_run(events, orders, latency, FillModel.TOUCH))
    risk_averse = _filled_by_order(_run(events, orders, latency, FillModel.RISK_AVERSE))
    probabilistic = _filled_by_order(_run(events, orders, latency, FillModel.PROBABILISTIC))

    for coid in set(risk_averse) | set(probabilistic):
        assert risk_averse.get(coid, 0) <= touch.get(coid, 0), coid
        assert probabilistic.get(coid, 0) <= touch.get(coid, 0), coid


@settings(max_examples=100, deadline=None)
@given(scenario, st.sampled_from(list(FillModel)))
def test_venue_property_when_fills_booked_then_position_cash_and_fees_reconcile(case, model):
    events, orders, latency = case
    run = _run(events, orders, latency, model)
    inst = instrument()
    ledger = Ledger(inst)
    for f in run.fills:
        ledger.apply_fill(f.side, f.price_ticks, f.qty_lots, f.fee)

    position = sum(int(f.side) * f.qty_lots for f in run.fills)
    cash = sum((-int(f.side) * inst.notional(f.price_ticks, f.qty_lots) for f in run.fills), Decimal(0))
    fees = sum((f.fee for f in run.fills), Decimal(0))
    rate = {Liquidity.MAKER: Decimal("-0.5"), Liquidity.TAKER: Decimal("2")}
    assert ledger.position_lots == position
    assert ledger.cash == cash
    assert ledger.fees_paid == fees
    assert all(f.fee == inst.notional(f.price_ticks, f.qty_lots) * rate[f.liquidity] / 10_000 for f in run.fills)
    # Per order: fills never exceed its size and leaves count down exactly.
    sizes = {f"o{i}": plan.qty for i, plan in enumerate(orders)}
    done: dict[str, int] = {}
    for f in run.fills:
        done[f.client_order_id] = done.get(f.client_order_id, 0) + f.qty_lots
        assert f.qty_lots > 0
        assert f.leaves_lots == sizes[f.client_order_id] - done[f.client_order_id] >= 0
