"""OrderManager: diffs desired quotes against live orders.

Each live order is keyed by (side, level). A desired quote whose price is within
``requote_tolerance_ticks`` of the live order's price and whose quantity matches is
left alone, so small moves do not churn orders; otherwise the old order is
cancelled and a new one placed. Quotes missing from the desired set are cancelled.
The executor only executes: all decisions are here.
"""

from __future__ import annotations

from collections.abc import Iterable

from mmbot.domain.orders import (
    CancelAll,
    CancelOrder,
    Command,
    ExecReport,
    Order,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    PlaceOrder,
    Quote,
    Side,
)


class OrderManager:
    def __init__(self, symbol: str, coid_prefix: str, requote_tolerance_ticks: int = 0) -> None:
        self.symbol = symbol
        self.coid_prefix = coid_prefix
        self.requote_tolerance_ticks = requote_tolerance_ticks
        self.orders: dict[str, Order] = {}
        self._seq = 0
        self.placed = 0
        self.cancelled = 0
        self.rejected = 0
        self.cancel_requests = 0

    def next_coid(self) -> str:
        self._seq += 1
        return f"{self.coid_prefix}{self._seq:x}"

    # --- views ---------------------------------------------------------------------
    def live(self) -> Iterable[Order]:
        return (o for o in self.orders.values() if o.is_live)

    def resting_lots(self, side: Side) -> int:
        return sum(o.leaves_lots for o in self.orders.values() if o.side is side and not o.is_taker)

    def open_count(self) -> int:
        return len(self.orders)

    def own_best(self, side: Side) -> int | None:
        prices = [o.price_ticks for o in self.orders.values() if o.side is side and not o.is_taker]
        if not prices:
            return None
        return max(prices) if side is Side.BUY else min(prices)

    # --- decisions -------------------------------------------------------------------
    def diff(self, desired: Iterable[Quote]) -> tuple[list[CancelOrder], list[Quote]]:
        """Cancels for stale orders and the quotes that need new orders."""
        want: dict[tuple[Side, int], Quote] = {(q.side, q.level): q for q in desired if not q.is_taker}
        cancels: list[CancelOrder] = []
        keep: set[tuple[Side, int]] = set()
        tol = self.requote_tolerance_ticks
        for order in self.orders.values():
            if order.is_taker or order.status is OrderStatus.PENDING_CANCEL:
                continue
            key = (order.side, order.level)
            q = want.get(key)
            if (
                q is not None
                and key not in keep
                and abs(q.price_ticks - order.price_ticks) <= tol
                and q.qty_lots == order.leaves_lots
            ):
                keep.add(key)
                continue
            if q is not None and key not in keep and abs(q.price_ticks - order.price_ticks) <= tol and order.filled_lots:
                # Partially filled at a still-good price: keep it rather than lose queue.
                keep.add(key)
                continue
            cancels.append(CancelOrder(client_order_id=order.client_order_id, symbol=self.symbol))
        new = [q for k, q in want.items() if k not in keep]
        # Do not stack a new order on a level whose old order is still being cancelled.
        pending_levels = {(o.side, o.level) for o in self.orders.values() if o.status is OrderStatus.PENDING_CANCEL}
        new = [q for q in new if (q.side, q.level) not in pending_levels]
        new_after_cancel = {(o.side, o.level) for o in self.orders.values() if o.client_order_id in {c.client_order_id for c in cancels}}
        new = [q for q in new if (q.side, q.level) not in new_after_cancel]
        return cancels, new

    def mark_cancel_sent(self, coid: str) -> None:
        order = self.orders.get(coid)
        if order is not None and order.status is not OrderStatus.PENDING_CANCEL:
            order.status = OrderStatus.PENDING_CANCEL
            self.cancel_requests += 1

    def cancel_all_commands(self) -> list[Command]:
        if not self.orders:
            return []
        for order in self.orders.values():
            order.status = OrderStatus.PENDING_CANCEL
        return [CancelAll(symbol=self.symbol)]

    def register_place(self, cmd: PlaceOrder, now_ns: int) -> None:
        self.orders[cmd.client_order_id] = Order(
            client_order_id=cmd.client_order_id,
            symbol=cmd.symbol,
            side=cmd.side,
            price_ticks=cmd.price_ticks,
            qty_lots=cmd.qty_lots,
            level=cmd.level,
            post_only=cmd.post_only,
            is_taker=cmd.is_taker,
            ts_created_ns=now_ns,
        )
        self.placed += 1

    # --- reports ---------------------------------------------------------------------
    def on_report(self, report: ExecReport) -> Order | None:
        order = self.orders.get(report.client_order_id)
        if order is None:
            return None
        if isinstance(report, OrderAccepted):
            if order.status is OrderStatus.PENDING_NEW:
                order.status = OrderStatus.OPEN
            order.venue_order_id = report.venue_order_id
        elif isinstance(report, OrderFilled):
            order.filled_lots += report.qty_lots
            if report.leaves_lots == 0 or order.filled_lots >= order.qty_lots:
                order.status = OrderStatus.FILLED
                del self.orders[order.client_order_id]
        elif isinstance(report, OrderCancelled):
            order.status = OrderStatus.CANCELLED
            del self.orders[order.client_order_id]
            self.cancelled += 1
        elif isinstance(report, OrderRejected):
            if report.for_cancel:
                # The cancel lost the race (already filled) or the order is unknown;
                # a fill report, if any, has arrived or will arrive.
                if order.status is OrderStatus.PENDING_CANCEL and order.leaves_lots == 0:
                    del self.orders[order.client_order_id]
                return order
            order.status = OrderStatus.REJECTED
            del self.orders[order.client_order_id]
            self.rejected += 1
        return order

    def forget_all(self) -> None:
        """After a venue confirmed zero open orders (cancel-all / reconciliation)."""
        self.orders.clear()
