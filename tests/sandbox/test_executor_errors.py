"""CcxtExecutor: every ccxt error class driven through each order call (real ccxt exceptions)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from mmbot.adapters.ccxt.errors import classify
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import CancelOrder, OrderAccepted, OrderCancelled, OrderFilled, OrderRejected, PlaceOrder, Side
from mmbot.domain.risk import RiskReason, VenueOutcome
from mmbot.execution.budget import OrderBudget
from mmbot.execution.ccxt_executor import LOCAL_BUDGET_CODE, MAX_CATCH_UPS, CcxtExecutor, account_prefix, run_order_prefix

SYMBOL = "BTC/USDT"


class FakeExchange:
    """Duck-typed stand-in for a ccxt exchange whose calls raise scripted ccxt errors."""

    def __init__(self) -> None:
        self.errors: dict[str, list[BaseException]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.options: dict[str, Any] = {}
        self.hang_create = False

    def _maybe_raise(self, name: str) -> None:
        self.calls.append(name)
        queue = self.errors.get(name)
        if queue:
            raise queue.pop(0)

    def amount_to_precision(self, symbol: str, amount: float) -> str:
        return f"{amount:.5f}"

    def price_to_precision(self, symbol: str, price: float) -> str:
        return f"{price:.2f}"

    async def create_order(self, symbol: str, type_: str, side: str, amount: float, price: float | None, params: dict[str, Any]) -> dict[str, Any]:
        self._maybe_raise("create_order")
        coid = params["clientOrderId"]
        order = {"id": str(len(self.orders) + 1), "clientOrderId": coid, "status": "open", "symbol": symbol, "side": side, "amount": amount, "price": price}
        self.orders[coid] = order
        if self.hang_create:
            await asyncio.sleep(10)
        return order

    async def cancel_order(self, order_id: str | None, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        self._maybe_raise("cancel_order")
        order = self.orders.get(params["clientOrderId"])
        if order is None or order["status"] != "open":
            raise ccxt.OrderNotFound('binance {"code":-2011,"msg":"Unknown order sent."}')
        order["status"] = "canceled"
        return dict(order)

    async def fetch_order(self, order_id: str | None, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        self._maybe_raise("fetch_order")
        order = self.orders.get(params["clientOrderId"])
        if order is None:
            raise ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}')
        return dict(order)

    async def fetch_open_orders(self, symbol: str) -> list[dict[str, Any]]:
        self._maybe_raise("fetch_open_orders")
        return [dict(o) for o in self.orders.values() if o["status"] == "open"]

    async def fetch_my_trades(self, symbol: str, since: int | None) -> list[dict[str, Any]]:
        self._maybe_raise("fetch_my_trades")
        return list(self.trades)

    async def fetch_order_trades(self, order_id: str, symbol: str) -> list[dict[str, Any]]:
        self._maybe_raise("fetch_order_trades")
        return [t for t in self.trades if t.get("order") == order_id]

    async def fetch_balance(self) -> dict[str, Any]:
        self._maybe_raise("fetch_balance")
        return {"total": {"BTC": 1.0, "USDT": 10000.0}}

    async def cancel_all_orders(self, symbol: str) -> list[dict[str, Any]]:
        self._maybe_raise("cancel_all_orders")
        out = []
        for order in self.orders.values():
            if order["status"] == "open":
                order["status"] = "canceled"
                out.append(dict(order))
        return out

    async def load_time_difference(self) -> int:
        self.calls.append("load_time_difference")
        return 0


@pytest.fixture
def setup(instrument: Instrument) -> tuple[CcxtExecutor, FakeExchange, list[tuple[RiskReason, bool, str]]]:
    fake = FakeExchange()
    risks: list[tuple[RiskReason, bool, str]] = []
    ex = CcxtExecutor(
        fake, {SYMBOL: instrument}, account_prefix=account_prefix("acct"), order_timeout_s=0.2,
        budget=OrderBudget(per_window=100), on_risk=lambda r, raised, cause: risks.append((r, raised, cause)), down_grace_s=0.0,
    )  # fmt: skip
    return ex, fake, risks


def place(coid: str = "mmabcd-000001-1") -> PlaceOrder:
    return PlaceOrder(client_order_id=coid, symbol=SYMBOL, side=Side.BUY, price_ticks=6_000_000, qty_lots=100_000)


def venue_trade(trade_id: str, coid: str, amount: float, ts_ms: int, order_id: str = "1") -> dict[str, Any]:
    """A ccxt-shaped trade of the fake exchange's order ``order_id``."""
    return {"id": trade_id, "order": order_id, "clientOrderId": coid, "price": 60000.0, "amount": amount, "timestamp": ts_ms, "fee": {"cost": 0, "currency": "USDT"}}


@pytest.mark.parametrize(
    ("error", "outcome", "reason"),
    [
        (ccxt.InsufficientFunds("Account has insufficient balance for requested action."), VenueOutcome.INSUFFICIENT_FUNDS, RiskReason.INSUFFICIENT_FUNDS),
        (ccxt.OrderImmediatelyFillable("Order would immediately match and take."), VenueOutcome.WOULD_TAKE, None),
        (ccxt.InvalidOrder('{"code":-2010,"msg":"something else"}'), VenueOutcome.REJECTED, None),
        (ccxt.DDoSProtection("binance POST http://127.0.0.1/api/v3/order 429 Too Many Requests"), VenueOutcome.RATE_LIMITED, RiskReason.ORDER_RATE),
        (ccxt.DDoSProtection("binance POST http://127.0.0.1/api/v3/order 418 I'm a teapot"), VenueOutcome.IP_BANNED, RiskReason.ORDER_RATE),
        (ccxt.OperationFailed('binance 503 {"code":-1001,"msg":"Internal error"}'), VenueOutcome.VENUE_DOWN, RiskReason.EXCHANGE_DOWN),
        (ccxt.ExchangeNotAvailable("binance 502 Bad Gateway"), VenueOutcome.VENUE_DOWN, RiskReason.EXCHANGE_DOWN),
        (ccxt.InvalidNonce('{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}'), VenueOutcome.CLOCK_SKEW, None),
    ],
)
async def test_place_when_venue_raises_then_rejected_with_mapped_outcome(
    setup: tuple[CcxtExecutor, FakeExchange, list[Any]], error: BaseException, outcome: VenueOutcome, reason: RiskReason | None
) -> None:
    ex, fake, risks = setup
    fake.errors["create_order"] = [error]
    await ex.submit([place()], 0)
    reports = ex.pending_reports()
    assert classify(error).kind is outcome
    assert len(reports) == 1 and isinstance(reports[0], OrderRejected)
    assert ex.outcomes.get(outcome.value) == 1
    assert fake.calls.count("create_order") == 1  # never retried blindly
    if reason is not None:
        assert (reason, True) in [(r, raised) for r, raised, _ in risks]
    if outcome is VenueOutcome.CLOCK_SKEW:
        assert "load_time_difference" in fake.calls


async def test_place_when_create_times_out_but_order_reached_venue_then_found_by_client_id(setup: tuple[CcxtExecutor, FakeExchange, list[Any]]) -> None:
    ex, fake, _ = setup
    fake.hang_create = True
    await ex.submit([place("mmabcd-000001-2")], 0)
    reports = ex.pending_reports()
    assert fake.calls.count("create_order") == 1
    assert "fetch_order" in fake.calls
    assert [type(r) for r in reports] == [OrderAccepted]


async def test_place_when_create_times_out_and_order_unknown_then_rejected_not_retried(setup: tuple[CcxtExecutor, FakeExchange, list[Any]]) -> None:
    ex, fake, _ = setup
    fake.errors["create_order"] = [ccxt.RequestTimeout("binance POST timed out")]
    await ex.submit([place("mmabcd-000001-3")], 0)
    reports = ex.pending_reports()
    assert fake.calls.count("create_order") == 1
    assert isinstance(reports[0], OrderRejected) and reports[0].code == -1007


async def test_cancel_when_order_not_found_then_reconciled_over_rest(setup: tuple[CcxtExecutor, FakeExchange, list[Any]]) -> None:
    ex, fake, _ = setup
    await ex.submit([place("mmabcd-000001-4")], 0)
    fake.orders["mmabcd-000001-4"]["status"] = "closed"  # filled while we were cancelling
    fake.trades.append(venue_trade("t1", "mmabcd-000001-4", 0.001, 1))
    await ex.submit([CancelOrder(client_order_id="mmabcd-000001-4", symbol=SYMBOL)], 0)
    reports = ex.pending_reports()
    assert any(isinstance(r, OrderFilled) and r.qty_lots == 100_000 for r in reports)
    assert "fetch_my_trades" in fake.calls


async def test_cancel_when_venue_says_filled_but_stream_missed_it_then_order_trades_fetched_by_id(
    setup: tuple[CcxtExecutor, FakeExchange, list[Any]],
) -> None:
    """The cumulative fill in the venue's payload, not a time window, decides what is missing."""
    ex, fake, _ = setup
    await ex.submit([place("mmabcd-000001-9")], 0)
    order = fake.orders["mmabcd-000001-9"]
    order.update(status="closed", filled=0.001)
    # Its trade carries a time far behind the last one seen (a server clock that jumped):
    # a "trades since" window would never return it.
    ex.last_trade_ms[SYMBOL] = 10**13
    fake.trades.append(venue_trade("t9", "mmabcd-000001-9", 0.001, 5))
    await ex.submit([CancelOrder(client_order_id="mmabcd-000001-9", symbol=SYMBOL)], 0)
    fills = [r for r in ex.pending_reports() if isinstance(r, OrderFilled)]
    assert [(f.trade_id, f.qty_lots, f.leaves_lots) for f in fills] == [("t9", 100_000, 0)]
    assert "fetch_order_trades" in fake.calls


async def test_reconcile_when_open_order_partly_filled_in_a_stream_gap_then_fill_booked_once(
    setup: tuple[CcxtExecutor, FakeExchange, list[Any]],
) -> None:
    ex, fake, _ = setup
    await ex.submit([place("mmabcd-000001-a")], 0)
    fake.orders["mmabcd-000001-a"]["filled"] = 0.0004
    trade = venue_trade("t10", "mmabcd-000001-a", 0.0004, 5)
    fake.trades.append(trade)
    ex.last_trade_ms[SYMBOL] = 10**13
    fake.errors["fetch_my_trades"] = [ccxt.RequestTimeout("slow")]  # the window sweep fails too
    first = await ex.reconcile()
    ex._on_trade(dict(trade))  # the stream delivers it late: not booked twice
    second = await ex.reconcile()
    fills = [r for r in ex.pending_reports() if isinstance(r, OrderFilled)]
    assert [(f.qty_lots, f.leaves_lots) for f in fills] == [(40_000, 60_000)]
    assert first.fills_recovered == 1 and second.fills_recovered == 0


async def test_cancel_when_transient_error_then_retried_and_cancelled(setup: tuple[CcxtExecutor, FakeExchange, list[Any]]) -> None:
    ex, fake, _ = setup
    await ex.submit([place("mmabcd-000001-5")], 0)
    fake.errors["cancel_order"] = [ccxt.ExchangeNotAvailable("binance 503")]
    await ex.submit([CancelOrder(client_order_id="mmabcd-000001-5", symbol=SYMBOL)], 0)
    reports = ex.pending_reports()
    assert fake.calls.count("cancel_order") == 2
    assert isinstance(reports[-1], OrderCancelled)


async def test_reconcile_when_orphan_with_our_prefix_then_cancelled(setup: tuple[CcxtExecutor, FakeExchange, list[Any]]) -> None:
    ex, fake, _ = setup
    prefix = account_prefix("acct")
    fake.orders[prefix + "old-1"] = {"id": "9", "clientOrderId": prefix + "old-1", "status": "open"}
    fake.orders["someone-else-1"] = {"id": "10", "clientOrderId": "someone-else-1", "status": "open"}
    result = await ex.reconcile()
    assert result.orphans_cancelled == [prefix + "old-1"]
    assert fake.orders["someone-else-1"]["status"] == "open"
    assert result.base_balance == Decimal("1.0")


async def test_budget_when_exhausted_then_local_reject_without_venue_call(setup: tuple[CcxtExecutor, FakeExchange, list[Any]]) -> None:
    ex, fake, risks = setup
    ex.budget = OrderBudget(per_window=1)
    await ex.submit([place("mmabcd-000001-6"), place("mmabcd-000001-7")], 0)
    reports = ex.pending_reports()
    assert fake.calls.count("create_order") == 1
    assert isinstance(reports[-1], OrderRejected) and reports[-1].code == LOCAL_BUDGET_CODE
    assert any(r is RiskReason.ORDER_RATE for r, _, _ in risks)


def test_client_order_ids_when_generated_then_binance_safe_and_account_stable() -> None:
    a = run_order_prefix("acct", "20261126T000000Z-abc", 1)
    b = run_order_prefix("acct", "20261126T000001Z-abc", 1)
    assert a != b and a.startswith(account_prefix("acct")) and b.startswith(account_prefix("acct"))
    coid = a + "ffffffff"
    assert len(coid) <= 36 and all(c.isalnum() or c in "-_" for c in coid)


async def test_reconcile_when_venue_trades_never_cover_its_fill_then_gives_up_after_three_fetches(
    setup: tuple[CcxtExecutor, FakeExchange, list[Any]],
) -> None:
    ex, fake, _ = setup
    await ex.submit([place("mmabcd-000001-b")], 0)
    fake.orders["mmabcd-000001-b"].update(status="closed", filled=0.001)  # and no trade for it, ever
    for _ in range(5):
        await ex.reconcile()
    assert fake.calls.count("fetch_order_trades") == MAX_CATCH_UPS
    assert not [r for r in ex.pending_reports() if isinstance(r, OrderFilled)]
