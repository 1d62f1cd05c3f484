"""Simulated venue: queue position, latency, partial fills, fees, venue rules.

Pure core: time comes from event timestamps (``now_ns``), never from a clock.

Matching rules (one definition of "what a trade can fill", for every model):

* A trade of quantity ``Q`` at price ``p`` whose aggressor sold (``is_buyer_maker``)
  can fill our bids priced ``>= p``; one whose aggressor bought can fill our asks
  priced ``<= p``. Our orders are visited best price first and share ``Q``.
* Trade-through (our price strictly better than ``p``): the whole level was taken,
  so the order fills ``min(leaves, Q_left)`` at *its own* price.
* Trade at our price: the trade first consumes ``queue_ahead`` (the displayed
  quantity ahead of us), then fills ``min(leaves, Q_left)``.
* Book crossed through our price (best opposite strictly better than our price, or
  equal with no queue ahead): the order fills completely at its price.

Queue models (``fill_model``), after hftbacktest's documentation:

* ``touch``: no queue at all (queue_ahead = 0): fills when a trade prints at or
  through the price. Optimistic, kept for comparison.
* ``risk_averse``: queue_ahead = displayed quantity at arrival; it advances only with
  trades at our price, and is capped at the level's displayed quantity.
* ``probabilistic``: as risk_averse, plus a level decrease not explained by trades
  (a cancellation) is split between ahead of and behind us with
  ``P(ahead) = f(front) / (f(front) + f(back))``, ``f(x) = x ** n`` (power model).

Latency (capture time): an order reaches the matching engine ``entry_latency``
after it is sent, a cancel ``cancel_latency`` after; both constant or sampled from
a seeded distribution. A cancel can therefore lose the race against a fill.

Venue rules: tick size, step size, min notional, post-only (LIMIT_MAKER) rejected
if it would cross on arrival, self-trade prevention for taker orders, fees with
rebates (negative maker fee). Rejections carry Binance's codes and messages.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from mmbot.domain.events import BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import (
    CancelOrder,
    Command,
    ExecReport,
    FillReason,
    Liquidity,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    Side,
)
from mmbot.marketdata.book import L2Book

BPS = Decimal(10_000)

# Binance's own wording; ccxt matches on these strings.
MSG_WOULD_TAKE = "Order would immediately match and take."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_LOT_SIZE = "Filter failure: LOT_SIZE"
MSG_PRICE_FILTER = "Filter failure: PRICE_FILTER"
MSG_NOTIONAL = "Filter failure: NOTIONAL"
MSG_DUPLICATE = "Duplicate order sent."
MSG_STP = "Order was canceled by self-trade prevention."


class FillModel(Enum):
    TOUCH = "touch"
    RISK_AVERSE = "risk_averse"
    PROBABILISTIC = "probabilistic"


class LatencyModel(Enum):
    CONSTANT = "constant"
    UNIFORM = "uniform"  # uniform in [latency, latency + jitter]
    LOGNORMAL = "lognormal"  # latency + lognormal(mu=ln(jitter), sigma=0.5)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    fill_model: FillModel = FillModel.RISK_AVERSE
    prob_power: float = 2.0
    entry_latency_ms: float = 0.0
    cancel_latency_ms: float = 0.0
    latency_model: LatencyModel = LatencyModel.CONSTANT
    latency_jitter_ms: float = 0.0
    maker_fee_bps: Decimal = Decimal(0)
    taker_fee_bps: Decimal = Decimal(0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.entry_latency_ms < 0:
            raise ValueError(f"entry_latency_ms must be >= 0, was {self.entry_latency_ms}")
        if self.cancel_latency_ms < 0:
            raise ValueError(f"cancel_latency_ms must be >= 0, was {self.cancel_latency_ms}")
        if self.prob_power <= 0:
            raise ValueError(f"prob_power must be > 0, was {self.prob_power}")


class _Resting:
    __slots__ = (
        "coid",
        "cum_trade",
        "filled",
        "level_seen",
        "price",
        "qty",
        "queue_ahead",
        "queue_at_placement",
        "seq",
        "side",
        "venue_id",
    )

    def __init__(self, coid: str, side: Side, price: int, qty: int, queue: int, seq: int) -> None:
        self.coid = coid
        self.side = side
        self.price = price
        self.qty = qty
        self.filled = 0
        self.queue_ahead = queue
        self.queue_at_placement = queue
        self.level_seen = queue
        self.cum_trade = 0
        self.seq = seq
        self.venue_id = str(seq)


class SimVenue:
    """A single-symbol matching simulator over a replayed or live L2 stream."""

    def __init__(self, instrument: Instrument, book: L2Book, config: VenueConfig | None = None) -> None:
        self.instrument = instrument
        self.book = book
        self.config = config or VenueConfig()
        self._rng = random.Random(self.config.seed)
        self._pending: list[tuple[int, int, Command]] = []
        self._seq = 0
        self._bids: list[_Resting] = []  # sorted best first (highest price)
        self._asks: list[_Resting] = []  # sorted best first (lowest price)
        self._by_coid: dict[str, _Resting] = {}
        self._seen_coids: set[str] = set()
        self._unit = instrument.tick_size * instrument.qty_unit
        self._maker_rate = self.config.maker_fee_bps / BPS
        self._taker_rate = self.config.taker_fee_bps / BPS
        self._touch = self.config.fill_model is FillModel.TOUCH
        self._prob = self.config.fill_model is FillModel.PROBABILISTIC
        self.last_ts_ns = 0

    # --- latency -----------------------------------------------------------------
    def _latency_ns(self, base_ms: float) -> int:
        cfg = self.config
        if cfg.latency_model is LatencyModel.CONSTANT or cfg.latency_jitter_ms <= 0:
            return int(base_ms * 1_000_000)
        if cfg.latency_model is LatencyModel.UNIFORM:
            return int((base_ms + self._rng.uniform(0.0, cfg.latency_jitter_ms)) * 1_000_000)
        import math

        extra = self._rng.lognormvariate(math.log(cfg.latency_jitter_ms), 0.5)
        return int((base_ms + extra) * 1_000_000)

    # --- order entry ---------------------------------------------------------------
    def submit(self, command: Command, now_ns: int) -> None:
        """Send a command; it reaches the matching engine after the configured latency."""
        if isinstance(command, PlaceOrder):
            due = now_ns + self._latency_ns(self.config.entry_latency_ms)
        else:
            due = now_ns + self._latency_ns(self.config.cancel_latency_ms)
        self._seq += 1
        heapq.heappush(self._pending, (due, self._seq, command))

    @property
    def next_due_ns(self) -> int | None:
        return self._pending[0][0] if self._pending else None

    def advance(self, now_ns: int) -> list[ExecReport]:
        """Process every command due at or before ``now_ns`` (in arrival order)."""
        reports: list[ExecReport] = []
        pending = self._pending
        while pending and pending[0][0] <= now_ns:
            due, _, command = heapq.heappop(pending)
            self.last_ts_ns = due
            if isinstance(command, PlaceOrder):
                self._arrive(command, due, reports)
            elif isinstance(command, CancelOrder):
                self._cancel(command.client_order_id, due, reports, command.reason)
            else:
                for order in list(self._bids) + list(self._asks):
                    self._cancel(order.coid, due, reports, command.reason)
        return reports

    def _reject(self, cmd: PlaceOrder, ts: int, code: int, msg: str, reports: list[ExecReport]) -> None:
        reports.append(OrderRejected(client_order_id=cmd.client_order_id, symbol=cmd.symbol, ts_ns=ts, code=code, message=msg))

    def _arrive(self, cmd: PlaceOrder, ts: int, reports: list[ExecReport]) -> None:
        inst = self.instrument
        if cmd.client_order_id in self._seen_coids:
            self._reject(cmd, ts, -2010, MSG_DUPLICATE, reports)
            return
        self._seen_coids.add(cmd.client_order_id)
        if cmd.qty_lots <= 0 or cmd.qty_lots % inst.step_lots:
            self._reject(cmd, ts, -1013, MSG_LOT_SIZE, reports)
            return
        if cmd.price_ticks <= 0:
            self._reject(cmd, ts, -1013, MSG_PRICE_FILTER, reports)
            return
        if inst.notional(cmd.price_ticks, cmd.qty_lots) < inst.min_notional:
            self._reject(cmd, ts, -1013, MSG_NOTIONAL, reports)
            return
        book = self.book
        is_buy = cmd.side is Side.BUY
        if cmd.is_taker:
            self._take(cmd, ts, reports)
            return
        opposite = book.best_ask() if is_buy else book.best_bid()
        if cmd.post_only and opposite is not None and (cmd.price_ticks >= opposite if is_buy else cmd.price_ticks <= opposite):
            self._reject(cmd, ts, -2010, MSG_WOULD_TAKE, reports)
            return
        queue = 0 if self._touch else book.qty_at(is_buy, cmd.price_ticks)
        self._seq += 1
        order = _Resting(cmd.client_order_id, cmd.side, cmd.price_ticks, cmd.qty_lots, queue, self._seq)
        self._by_coid[order.coid] = order
        if is_buy:
            self._insert(self._bids, order, lambda o: -o.price)
        else:
            self._insert(self._asks, order, lambda o: o.price)
        reports.append(
            OrderAccepted(
                client_order_id=order.coid,
                symbol=cmd.symbol,
                ts_ns=ts,
                queue_ahead_lots=queue,
                venue_order_id=order.venue_id,
            )
        )

    @staticmethod
    def _insert(side: list[_Resting], order: _Resting, key: object) -> None:
        keyf = key  # price-time priority: after orders at the same price
        i = 0
        k = keyf(order)  # type: ignore[operator]
        while i < len(side) and keyf(side[i]) <= k:  # type: ignore[operator]
            i += 1
        side.insert(i, order)

    def _take(self, cmd: PlaceOrder, ts: int, reports: list[ExecReport]) -> None:
        """A taker (hedge) order walks the book up to its limit price."""
        is_buy = cmd.side is Side.BUY
        own = self._asks if is_buy else self._bids
        if own and (cmd.price_ticks >= own[0].price if is_buy else cmd.price_ticks <= own[0].price):
            self._reject(cmd, ts, -2010, MSG_STP, reports)
            return
        levels = self.book.top_asks(50) if is_buy else self.book.top_bids(50)
        left = cmd.qty_lots
        for price, qty in levels:
            if left <= 0 or (price > cmd.price_ticks if is_buy else price < cmd.price_ticks):
                break
            take = min(left, qty)
            left -= take
            reports.append(self._fill_report(cmd.client_order_id, cmd.symbol, cmd.side, price, take, cmd.qty_lots - (cmd.qty_lots - left), ts, Liquidity.TAKER, FillReason.HEDGE_TAKER, 0))
        if left > 0:
            # IOC: the rest expires, as a Binance MARKET/IOC order would.
            reports.append(OrderCancelled(client_order_id=cmd.client_order_id, symbol=cmd.symbol, ts_ns=ts, reason="expired"))

    def _cancel(self, coid: str, ts: int, reports: list[ExecReport], reason: str) -> None:
        order = self._by_coid.pop(coid, None)
        if order is None:
            reports.append(
                OrderRejected(
                    client_order_id=coid,
                    symbol=self.instrument.symbol,
                    ts_ns=ts,
                    code=-2011,
                    message=MSG_UNKNOWN_ORDER,
                    for_cancel=True,
                )
            )
            return
        (self._bids if order.side is Side.BUY else self._asks).remove(order)
        reports.append(OrderCancelled(client_order_id=coid, symbol=self.instrument.symbol, ts_ns=ts, reason=reason))

    # --- market data -----------------------------------------------------------------
    def _fill_report(
        self,
        coid: str,
        symbol: str,
        side: Side,
        price: int,
        qty: int,
        leaves: int,
        ts: int,
        liquidity: Liquidity,
        reason: FillReason,
        queue_at_placement: int,
    ) -> OrderFilled:
        rate = self._maker_rate if liquidity is Liquidity.MAKER else self._taker_rate
        fee = Decimal(price * qty) * self._unit * rate
        return OrderFilled(
            client_order_id=coid,
            symbol=symbol,
            ts_ns=ts,
            side=side,
            price_ticks=price,
            qty_lots=qty,
            leaves_lots=leaves,
            fee=fee,
            liquidity=liquidity,
            reason=reason,
            queue_ahead_at_placement_lots=queue_at_placement,
        )

    def _fill(self, order: _Resting, qty: int, ts: int, reason: FillReason, reports: list[ExecReport]) -> None:
        order.filled += qty
        leaves = order.qty - order.filled
        reports.append(
            self._fill_report(
                order.coid,
                self.instrument.symbol,
                order.side,
                order.price,
                qty,
                leaves,
                ts,
                Liquidity.MAKER,
                reason,
                order.queue_at_placement,
            )
        )
        if leaves == 0:
            del self._by_coid[order.coid]
            (self._bids if order.side is Side.BUY else self._asks).remove(order)

    def on_trade(self, trade: Trade) -> list[ExecReport]:
        reports: list[ExecReport] = []
        self.last_ts_ns = trade.ts_local_ns
        hits_bids = trade.is_buyer_maker
        orders = self._bids if hits_bids else self._asks
        if not orders:
            return reports
        price = trade.price_ticks
        available = trade.qty_lots
        touch = self._touch
        for order in list(orders):
            if available <= 0:
                break
            through = order.price > price if hits_bids else order.price < price
            if through:
                take = min(order.qty - order.filled, available)
                available -= take
                self._fill(order, take, trade.ts_local_ns, FillReason.TRADE_THROUGH, reports)
                continue
            if order.price != price:
                break
            order.cum_trade += available
            if not touch and order.queue_ahead > 0:
                used = min(order.queue_ahead, available)
                order.queue_ahead -= used
                available -= used
                if available <= 0:
                    break
            take = min(order.qty - order.filled, available)
            available -= take
            self._fill(order, take, trade.ts_local_ns, FillReason.QUEUE_CONSUMED, reports)
        return reports

    def on_depth(self, delta: BookDelta | BookSnapshot) -> list[ExecReport]:
        """Call after the venue book has applied ``delta``."""
        reports: list[ExecReport] = []
        self.last_ts_ns = delta.ts_local_ns
        if not self._bids and not self._asks:
            return reports
        if not self._touch:
            if self._bids:
                self._update_queues(self._bids, delta.bids, True, isinstance(delta, BookSnapshot))
            if self._asks:
                self._update_queues(self._asks, delta.asks, False, isinstance(delta, BookSnapshot))
        self._check_crossed(delta.ts_local_ns, reports)
        return reports

    def _update_queues(self, orders: list[_Resting], levels: tuple[tuple[int, int], ...], is_bid: bool, full: bool) -> None:
        if full:
            for order in orders:
                new_qty = self.book.qty_at(is_bid, order.price)
                order.queue_ahead = min(order.queue_ahead, new_qty)
                order.level_seen = new_qty
                order.cum_trade = 0
            return
        prices = {o.price for o in orders}
        for price, new_qty in levels:
            if price not in prices:
                continue
            for order in orders:
                if order.price == price:
                    self._level_changed(order, new_qty)

    def _level_changed(self, order: _Resting, new_qty: int) -> None:
        prev = order.level_seen
        order.level_seen = new_qty
        if not self._prob:
            order.queue_ahead = min(order.queue_ahead, new_qty)
            order.cum_trade = 0
            return
        change = prev - new_qty - order.cum_trade
        order.cum_trade = 0
        if change <= 0:
            order.queue_ahead = min(order.queue_ahead, new_qty)
            return
        front = order.queue_ahead
        back = max(prev - front, 0)
        n = self.config.prob_power
        f_front = float(front) ** n
        f_back = float(back) ** n
        share_front = f_front / (f_front + f_back) if (f_front + f_back) > 0 else 1.0
        est = front - share_front * change
        est = max(est, 0.0)
        order.queue_ahead = min(int(est), new_qty)

    def _check_crossed(self, ts: int, reports: list[ExecReport]) -> None:
        book = self.book
        if self._bids:
            ask = book.best_ask()
            if ask is not None:
                for order in list(self._bids):
                    if ask < order.price or (ask == order.price and (self._touch or order.queue_ahead == 0)):
                        self._fill(order, order.qty - order.filled, ts, FillReason.BOOK_CROSSED, reports)
                    else:
                        break
        if self._asks:
            bid = book.best_bid()
            if bid is not None:
                for order in list(self._asks):
                    if bid > order.price or (bid == order.price and (self._touch or order.queue_ahead == 0)):
                        self._fill(order, order.qty - order.filled, ts, FillReason.BOOK_CROSSED, reports)
                    else:
                        break

    # --- queries ---------------------------------------------------------------------
    @property
    def has_orders(self) -> bool:
        return bool(self._bids) or bool(self._asks)

    def open_order_ids(self) -> list[str]:
        return [o.coid for o in self._bids] + [o.coid for o in self._asks]

    def open_orders(self) -> list[tuple[str, Side, int, int, int]]:
        """(client_order_id, side, price_ticks, qty_lots, filled_lots) of resting orders."""
        return [(o.coid, o.side, o.price, o.qty, o.filled) for o in self._bids + self._asks]

    def queue_ahead(self, coid: str) -> int | None:
        order = self._by_coid.get(coid)
        return None if order is None else order.queue_ahead

    def restore_order(self, coid: str, side: Side, price: int, qty: int, filled: int, queue_ahead: int) -> None:
        """Re-create a resting order (crash recovery of a paper run)."""
        self._seq += 1
        order = _Resting(coid, side, price, qty, queue_ahead, self._seq)
        order.filled = filled
        self._by_coid[coid] = order
        self._seen_coids.add(coid)
        if side is Side.BUY:
            self._insert(self._bids, order, lambda o: -o.price)
        else:
            self._insert(self._asks, order, lambda o: o.price)
