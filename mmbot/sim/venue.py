"""Simulated venue: queue position, latency, partial fills, fees, venue rules.

One matching simulator behind backtests, paper trading and the exchange emulator.
Pure core: time comes from event timestamps (``now_ns``, capture time), never from
a clock, so every code path that feeds it the same events and commands gets the
same fills.

Symbols
-------
=========  ==========================================================  ======
symbol     meaning                                                     unit
=========  ==========================================================  ======
``x``      our order's limit price                                     ticks
``L``      our order's leaves (unfilled quantity)                      lots
``p, Q``   a market print's price and quantity                         ticks, lots
``A``      market quantity ahead of our order at ``x`` (queue ahead)   lots
``M``      market queue volume one print already took at ``p``         lots
``q_l``    displayed quantity of an opposite level ``l``               lots
``n``      power of the probabilistic queue model (``prob_power``)     --
=========  ==========================================================  ======

What can fill our resting order (one definition for every fill model)
----------------------------------------------------------------------
Our orders are virtual: the replayed market never saw them. A resting bid B (price
``x``, leaves ``L``) can only fill against market liquidity that really arrived:

1. **A trade.** A print of quantity ``Q`` at price ``p`` whose aggressor sold
   (``is_buyer_maker``) may fill our bids with ``x >= p`` (asks symmetrically with
   ``x <= p``). Our orders on that side are visited best price first, then by arrival
   time, and share ``Q``:

   * trade-through (``x > p``): the whole level ``x`` was taken on the way down, so
     ``fill = min(L, Q_left)`` at ``x`` (reason ``trade_through``);
   * trade at our price (``x == p``): the market queue ahead is taken first. With
     ``M`` the market volume this print already took at ``p`` (for orders ahead of us)
     and ``A`` our queue ahead: ``use = min(max(A - M, 0), Q_left)``; ``M += use``;
     then ``fill = min(L, Q_left)`` (reason ``queue_consumed``). Afterwards every
     order at ``p`` has ``A := max(A - M, 0)``.

2. **A crossed book.** If the true best ask falls through our bid (``ask < x``, or
   ``ask == x`` with nothing ahead of us), the sellers there would have hit us. Each
   time the venue looks (every depth or bookTicker update), a crossing level ``l``
   offers the order its *new* quantity ``max(q_l - seen_l, 0)``, then
   ``seen_l := q_l`` (``seen`` starts at 0 and is kept per order), and
   ``fill = min(L, sum of offers)`` at ``x`` (reason ``book_crossed``). So one
   resting seller fills us once, not on every update, and sellers who join later
   fill us again. The true top of book is the bookTicker when it is newer than the
   depth book (``u`` greater than the book's last update id), else the depth book.
   Offers are per order, not shared between our orders: two of our own bids crossing
   the same seller may both fill from it (a small optimism for ladders, kept so the
   models stay ordered, see below).

The models differ only in ``A`` (queue ahead):

=================  =============================================================
``touch``          ``A = 0`` always (fills as soon as a trade prints at or through
                   the price, or the book touches it): optimistic, for comparison.
``risk_averse``    ``A`` = displayed quantity at our price on arrival; decreases only
                   with trades at ``p`` (rule 1) and is capped by the displayed
                   level: ``A := min(A, level)``.
``probabilistic``  as ``risk_averse``, plus a level decrease not explained by trades
                   (a cancellation, ``c = prev - new - traded``) is split between
                   the queue in front ``F = A`` and behind ``K = prev - A`` with
                   ``P_back = f(K) / (f(K) + f(F))``, ``f(z) = z ** n``:
                   ``A := min(F - (1 - P_back) c + min(K - P_back c, 0), new)``
                   (hftbacktest's ``ProbQueueModel`` with ``PowerProbQueueFunc``).
=================  =============================================================

Because ``A >= 0`` under every model and ``A = 0`` under touch, for the same
commands an order never fills more under risk_averse or probabilistic than under
touch: a print leaves at least as much for each order under touch (orders ahead of
it have no market queue and fewer leaves), and touch looks at a crossing level at
least whenever the others do, so its summed offers (a positive variation over a
finer set of times) are at least theirs. Known optimism kept from hftbacktest: a depth update that already reflects a
print arriving before the print caps ``A`` once and the print lowers it again.

Latency (capture time)
----------------------
A command reaches the matching engine ``entry`` (place) or ``cancel`` latency after
it was sent, each constant or drawn from a seeded distribution (see
:mod:`mmbot.sim.latency`). Commands travel one connection: they arrive in the order
sent (``due = max(sent + latency, previous due)``), so a cancel never overtakes the
order it cancels. A cancel can lose the race against a fill (``-2011 Unknown order
sent.`` after the fill), and a quote can arrive after the price moved (post-only
reject). Market-data latency is applied by the driver
(:class:`~mmbot.engine.session.ReplaySession`).

Venue rules (Binance spot, codes and messages as Binance sends them)
-------------------------------------------------------------------
* quantity: ``> 0`` else ``-1013 Invalid quantity.``; multiple of the step size else
  ``-1013 Filter failure: LOT_SIZE``; price ``> 0`` (prices are whole ticks by type)
  else ``-1013 Filter failure: PRICE_FILTER``; ``price x qty >= min_notional`` else
  ``-1013 Filter failure: NOTIONAL``; a reused client id ``-2010 Duplicate order sent.``
* post-only (LIMIT_MAKER) that would cross on arrival (market or our own opposite
  order): ``-2010 Order would immediately match and take.``
* a limit order without post-only that crosses on arrival takes liquidity at the
  book's prices up to its limit (taker fee, reason ``crossed_on_arrival``); the rest
  rests. A taker (hedge) order is IOC: it walks the book up to its limit (reason
  ``hedge_taker``) and the rest expires.
* self-trade prevention, Binance's ``EXPIRE_TAKER`` mode: a taking order that would
  reach one of our own resting orders stops there and its remainder expires
  (status ``EXPIRED_IN_MATCH``, reported as cancelled with reason
  ``expired_in_match``).
* fees: ``fee = price x qty x rate`` in the quote currency, exact Decimal (perpetuals: in
  the settlement asset, ``Instrument.fee``; an inverse fee rounded up to 1e-8 BTC), with
  ``rate = maker_fee_bps / 10_000`` for resting fills and ``taker_fee_bps / 10_000``
  for taking ones; a negative maker fee is a rebate (negative fee).
* balances (with a :class:`~mmbot.sim.wallet.Wallet`, as in every paper mode): an
  order is covered before it is accepted (a buy locks ``price x qty`` quote plus its
  worst-case fee, a sell ``qty`` base) else ``-2010 Account has insufficient balance
  for requested action.``; fills move the funds, cancels and expiries unlock them (the
  rules table in :mod:`mmbot.sim.wallet`). Checked after the filters and before
  post-only, as Binance does. Without a wallet (the emulator, which keeps its own
  account) credit is unlimited.

Every fill records its reason and the queue ahead at placement (lots).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import Enum

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import (
    CancelAll,
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
from mmbot.sim.latency import LatencyModel, LatencySampler
from mmbot.sim.wallet import EXACT, MSG_INSUFFICIENT, Wallet

BPS = Decimal(10_000)

# Binance's own codes and wording; ccxt maps errors on these strings.
CODE_FILTER = -1013
CODE_REJECTED = -2010
CODE_CANCEL_REJECTED = -2011
MSG_WOULD_TAKE = "Order would immediately match and take."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_INVALID_QTY = "Invalid quantity."
MSG_LOT_SIZE = "Filter failure: LOT_SIZE"
MSG_PRICE_FILTER = "Filter failure: PRICE_FILTER"
MSG_NOTIONAL = "Filter failure: NOTIONAL"
MSG_DUPLICATE = "Duplicate order sent."
REASON_EXPIRED = "expired"  # IOC remainder (Binance status EXPIRED)
REASON_STP = "expired_in_match"  # self-trade prevention (Binance status EXPIRED_IN_MATCH)


class FillModel(Enum):
    TOUCH = "touch"
    RISK_AVERSE = "risk_averse"
    PROBABILISTIC = "probabilistic"


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    """Simulated venue parameters (latencies in ms of capture time, fees in bps)."""

    fill_model: FillModel = FillModel.RISK_AVERSE
    prob_power: float = 2.0  # n in f(z) = z ** n (probabilistic model)
    entry_latency_ms: float = 0.0
    cancel_latency_ms: float = 0.0
    latency_model: LatencyModel = LatencyModel.CONSTANT
    latency_jitter_ms: float = 0.0
    maker_fee_bps: Decimal = Decimal(0)  # negative = rebate
    taker_fee_bps: Decimal = Decimal(0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.entry_latency_ms < 0:
            raise ValueError(f"entry_latency_ms must be >= 0, was {self.entry_latency_ms}")
        if self.cancel_latency_ms < 0:
            raise ValueError(f"cancel_latency_ms must be >= 0, was {self.cancel_latency_ms}")
        if self.latency_jitter_ms < 0:
            raise ValueError(f"latency_jitter_ms must be >= 0, was {self.latency_jitter_ms}")
        if self.prob_power <= 0:
            raise ValueError(f"prob_power must be > 0, was {self.prob_power}")


class _Resting:
    """One of our resting orders at the simulated venue."""

    __slots__ = (
        "coid",
        "cross_seen",
        "filled",
        "is_buy",
        "level_seen",
        "price",
        "qty",
        "queue_ahead",
        "queue_at_placement",
        "seq",
        "side",
        "symbol",
        "traded_at_level",
        "venue_id",
    )

    def __init__(self, coid: str, symbol: str, side: Side, price: int, qty: int, queue: int, seq: int) -> None:
        self.coid = coid
        self.symbol = symbol
        self.side = side
        self.is_buy = side is Side.BUY
        self.price = price
        self.qty = qty
        self.filled = 0
        self.queue_ahead = queue  # market quantity ahead of us (lots)
        self.queue_at_placement = queue
        self.level_seen = queue  # displayed level at our price at the last depth update
        self.traded_at_level = 0  # market volume printed at our price since then
        self.cross_seen: dict[int, int] = {}  # opposite level -> quantity when last seen crossing us
        self.seq = seq
        self.venue_id = str(seq)

    @property
    def leaves(self) -> int:
        return self.qty - self.filled


class SimVenue:
    """A single-symbol matching simulator over a replayed or live L2 stream.

    Drive it with :meth:`submit` / :meth:`advance` (commands, latency) and, after the
    venue's book has applied each market event, :meth:`on_trade`, :meth:`on_depth`
    and :meth:`on_bbo`. Each returns the execution reports it produced.
    """

    def __init__(self, instrument: Instrument, book: L2Book, config: VenueConfig | None = None, wallet: Wallet | None = None) -> None:
        self.instrument = instrument
        self.book = book
        self.config = cfg = config or VenueConfig()
        self._entry_latency = LatencySampler(cfg.entry_latency_ms, cfg.latency_model, cfg.latency_jitter_ms, seed=cfg.seed, stream="entry")
        self._cancel_latency = LatencySampler(cfg.cancel_latency_ms, cfg.latency_model, cfg.latency_jitter_ms, seed=cfg.seed, stream="cancel")
        self._pending: list[tuple[int, int, Command]] = []
        self._last_due = 0
        self._seq = 0
        self._bids: list[_Resting] = []  # best first: highest price, then arrival
        self._asks: list[_Resting] = []  # best first: lowest price, then arrival
        self._by_coid: dict[str, _Resting] = {}
        self._seen_coids: set[str] = set()
        self._bbo: BestBidAsk | None = None
        self._unit = instrument.tick_size * instrument.qty_unit
        self._maker_rate = cfg.maker_fee_bps / BPS
        self._taker_rate = cfg.taker_fee_bps / BPS
        self._touch = cfg.fill_model is FillModel.TOUCH
        self._prob = cfg.fill_model is FillModel.PROBABILISTIC
        self.last_ts_ns = 0
        self.rejections: dict[str, int] = {}  # Binance message -> count
        self.wallet = wallet
        # Buy orders holding quote funds: coid -> (limit price ticks, fee rate reserved).
        self._buy_holds: dict[str, tuple[int, Decimal]] = {}
        if wallet is not None:
            if not (-1 < self._maker_rate < 1 and -1 < self._taker_rate < 1):
                raise ValueError(
                    f"fee rates must lie within (-10000, 10000) bps with a wallet, were maker {cfg.maker_fee_bps} taker {cfg.taker_fee_bps}"
                )
            if instrument.is_perp and instrument.symbol not in wallet.perps:
                raise ValueError(f"{instrument.symbol} is a perpetual: open it in the wallet first (Wallet.open_perp)")
            wallet.add_assets(*((instrument.settle,) if instrument.is_perp else (instrument.base, instrument.quote_ccy)))
        self._perp = wallet is not None and instrument.is_perp

    # --- order entry ---------------------------------------------------------------
    def submit(self, command: Command, now_ns: int) -> None:
        """Send a command; it reaches the matching engine after the configured latency."""
        sampler = self._entry_latency if isinstance(command, PlaceOrder) else self._cancel_latency
        due = max(now_ns + sampler.sample_ns(), self._last_due)  # one connection: FIFO
        self._last_due = due
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
            elif isinstance(command, CancelAll):
                for order in self._bids + self._asks:
                    self._cancel(order.coid, due, reports, command.reason)
        return reports

    def _reject(self, cmd: PlaceOrder, ts: int, code: int, msg: str, reports: list[ExecReport]) -> None:
        self.rejections[msg] = self.rejections.get(msg, 0) + 1
        reports.append(OrderRejected(client_order_id=cmd.client_order_id, symbol=cmd.symbol, ts_ns=ts, code=code, message=msg))

    def _check_rules(self, cmd: PlaceOrder) -> tuple[int, str] | None:
        inst = self.instrument
        if cmd.client_order_id in self._seen_coids:
            return CODE_REJECTED, MSG_DUPLICATE
        if cmd.qty_lots <= 0:
            return CODE_FILTER, MSG_INVALID_QTY
        if cmd.qty_lots % inst.step_lots:
            return CODE_FILTER, MSG_LOT_SIZE
        if cmd.price_ticks <= 0:
            return CODE_FILTER, MSG_PRICE_FILTER
        if inst.notional(cmd.price_ticks, cmd.qty_lots) < inst.min_notional:
            return CODE_FILTER, MSG_NOTIONAL
        return None

    def _arrive(self, cmd: PlaceOrder, ts: int, reports: list[ExecReport]) -> None:
        problem = self._check_rules(cmd)
        if problem is not None:
            if problem[1] != MSG_DUPLICATE:
                self._seen_coids.add(cmd.client_order_id)
            self._reject(cmd, ts, problem[0], problem[1], reports)
            return
        self._seen_coids.add(cmd.client_order_id)
        is_buy = cmd.side is Side.BUY
        price = cmd.price_ticks
        hold = self._hold_for(cmd.side, price, cmd.qty_lots, maker_only=cmd.post_only and not cmd.is_taker)
        if hold is not None and not hold[0]:
            self._reject(cmd, ts, CODE_REJECTED, MSG_INSUFFICIENT, reports)
            return
        market_best = self._true_best(not is_buy)
        own = self._asks if is_buy else self._bids
        own_best = own[0].price if own else None
        crosses_market = market_best is not None and (price >= market_best if is_buy else price <= market_best)
        crosses_own = own_best is not None and (price >= own_best if is_buy else price <= own_best)
        if cmd.post_only and not cmd.is_taker and (crosses_market or crosses_own):
            self._reject(cmd, ts, CODE_REJECTED, MSG_WOULD_TAKE, reports)
            return
        if hold is not None:
            self._take_hold(cmd.client_order_id, cmd.side, price, cmd.qty_lots, hold[1])
        # Queue ahead = displayed quantity at our price on arrival (0 under touch).
        queue = 0 if self._touch else self._displayed(is_buy, price)
        self._seq += 1
        venue_id = str(self._seq)
        reports.append(OrderAccepted(client_order_id=cmd.client_order_id, symbol=cmd.symbol, ts_ns=ts, queue_ahead_lots=queue, venue_order_id=venue_id))
        left = cmd.qty_lots
        if cmd.is_taker or crosses_market or crosses_own:
            reason = FillReason.HEDGE_TAKER if cmd.is_taker else FillReason.CROSSED_ON_ARRIVAL
            left, stopped = self._take(cmd, ts, reason, reports)
            if left and (cmd.is_taker or stopped):
                # IOC remainder, or self-trade prevention (EXPIRE_TAKER): the rest expires.
                reason_text = REASON_STP if stopped else REASON_EXPIRED
                reports.append(OrderCancelled(client_order_id=cmd.client_order_id, symbol=cmd.symbol, ts_ns=ts, reason=reason_text))
                self._release(cmd.client_order_id)
                return
            if not left:
                return
        order = _Resting(cmd.client_order_id, cmd.symbol, cmd.side, price, cmd.qty_lots, queue, self._seq)
        order.venue_id = venue_id
        order.filled = cmd.qty_lots - left
        self._by_coid[order.coid] = order
        self._insert(order)

    # --- balances (mmbot.sim.wallet) ----------------------------------------------------
    def _hold_for(self, side: Side, price: int, qty: int, *, maker_only: bool) -> tuple[bool, Decimal] | None:
        """(covered, fee rate reserved) of a new order, or None without a wallet."""
        wallet = self.wallet
        if wallet is None:
            return None
        inst = self.instrument
        # Worst case: a post-only order only ever pays the maker fee; any other order
        # may take (crossing on arrival, IOC) and pay the taker fee. Rebates reserve 0.
        rate = max(self._maker_rate, Decimal(0)) if maker_only else max(self._maker_rate, self._taker_rate, Decimal(0))
        if self._perp:  # either side locks margin of the settlement asset
            return wallet.perp_covers(inst.symbol, wallet.order_margin(inst.symbol, price, qty, rate)), rate
        if side is Side.SELL:
            return wallet.covers(inst.base, inst.qty(qty)), Decimal(0)
        return wallet.covers(inst.quote_ccy, self._buy_lock(price, qty, rate)), rate

    def _buy_lock(self, price: int, qty: int, rate: Decimal) -> Decimal:
        with localcontext(EXACT):
            return Decimal(price * qty) * self._unit * (1 + rate)

    def _take_hold(self, coid: str, side: Side, price: int, qty: int, rate: Decimal) -> bool:
        wallet = self.wallet
        assert wallet is not None
        inst = self.instrument
        if self._perp:
            if not wallet.perp_hold(coid, inst.symbol, wallet.order_margin(inst.symbol, price, qty, rate)):
                return False
            self._buy_holds[coid] = (price, rate)  # the limit and rate the margin was locked at (either side)
            return True
        if side is Side.SELL:
            return wallet.hold(coid, inst.base, inst.qty(qty))
        if not wallet.hold(coid, inst.quote_ccy, self._buy_lock(price, qty, rate)):
            return False
        self._buy_holds[coid] = (price, rate)
        return True

    def _release(self, coid: str) -> None:
        if self.wallet is not None:
            self.wallet.release(coid)
            self._buy_holds.pop(coid, None)

    def _settle(self, coid: str, side: Side, price: int, qty: int, leaves: int, fee: Decimal) -> None:
        """Move the funds of one fill (the rules table of mmbot.sim.wallet)."""
        wallet = self.wallet
        assert wallet is not None
        inst = self.instrument
        if self._perp:
            limit, rate = self._buy_holds[coid]
            wallet.perp_fill(coid, inst.symbol, side, price, qty, fee, wallet.order_margin(inst.symbol, limit, qty, rate))
            if leaves == 0:
                self._release(coid)
            return
        with localcontext(EXACT):
            notional = Decimal(price * qty) * self._unit
            spend_or_receive = notional + fee if side is Side.BUY else notional - fee
        if side is Side.BUY:
            limit, rate = self._buy_holds[coid]
            wallet.settle(coid, unlock=self._buy_lock(limit, qty, rate), spend=spend_or_receive, receive_asset=inst.base, receive=inst.qty(qty))
        else:
            wallet.settle(coid, unlock=inst.qty(qty), spend=inst.qty(qty), receive_asset=inst.quote_ccy, receive=spend_or_receive)
        if leaves == 0:
            self._release(coid)  # price improvement and an unused fee reserve go back to free

    def _insert(self, order: _Resting) -> None:
        # Price-time priority: after every order at the same or a better price.
        side = self._bids if order.is_buy else self._asks
        i = 0
        if order.is_buy:
            while i < len(side) and side[i].price >= order.price:
                i += 1
        else:
            while i < len(side) and side[i].price <= order.price:
                i += 1
        side.insert(i, order)

    def _take(self, cmd: PlaceOrder, ts: int, reason: FillReason, reports: list[ExecReport]) -> tuple[int, bool]:
        """Take market liquidity up to the limit price; returns (leaves, stopped_by_stp)."""
        is_buy = cmd.side is Side.BUY
        own = self._asks if is_buy else self._bids
        own_best = own[0].price if own else None
        left = cmd.qty_lots
        for price, qty in self._true_levels(not is_buy, cmd.price_ticks):
            if left <= 0:
                break
            if own_best is not None and (price >= own_best if is_buy else price <= own_best):
                return left, True  # would trade with ourselves: EXPIRE_TAKER
            fill = min(left, qty)
            if fill <= 0:
                continue
            left -= fill
            reports.append(self._fill_report(cmd.client_order_id, cmd.symbol, cmd.side, price, fill, left, ts, Liquidity.TAKER, reason, 0))
        if left and own_best is not None and (cmd.price_ticks >= own_best if is_buy else cmd.price_ticks <= own_best):
            return left, True
        return left, False

    def _cancel(self, coid: str, ts: int, reports: list[ExecReport], reason: str) -> None:
        order = self._by_coid.pop(coid, None)
        if order is None:
            # Already filled (the cancel lost the race) or never existed.
            reports.append(
                OrderRejected(
                    client_order_id=coid,
                    symbol=self.instrument.symbol,
                    ts_ns=ts,
                    code=CODE_CANCEL_REJECTED,
                    message=MSG_UNKNOWN_ORDER,
                    for_cancel=True,
                )
            )
            return
        (self._bids if order.is_buy else self._asks).remove(order)
        self._release(coid)
        reports.append(OrderCancelled(client_order_id=coid, symbol=order.symbol, ts_ns=ts, reason=reason))

    # --- the true book -------------------------------------------------------------
    def _bbo_fresh(self) -> BestBidAsk | None:
        bbo = self._bbo
        if bbo is not None and bbo.update_id > self.book.last_update_id and bbo.bid_ticks < bbo.ask_ticks:
            return bbo
        return None

    def _true_best(self, is_bid: bool) -> int | None:
        bbo = self._bbo_fresh()
        if bbo is not None:
            return bbo.bid_ticks if is_bid else bbo.ask_ticks
        return self.book.best_bid() if is_bid else self.book.best_ask()

    def _displayed(self, is_bid: bool, price: int) -> int:
        """Displayed market quantity at ``price`` on one side of the true book."""
        bbo = self._bbo_fresh()
        if bbo is not None:
            top = bbo.bid_ticks if is_bid else bbo.ask_ticks
            if price == top:
                return bbo.bid_lots if is_bid else bbo.ask_lots
            if (price > top) if is_bid else (price < top):
                return 0  # better than the true best: an empty level
        return self.book.qty_at(is_bid, price)

    def _true_levels(self, is_bid: bool, limit: int) -> list[tuple[int, int]]:
        """Displayed levels of one side at prices up to ``limit``, best first."""
        bbo = self._bbo_fresh()
        levels = self.book.levels(is_bid)
        if is_bid:
            found = [(p, q) for p, q in levels.items() if p >= limit]
            found.sort(reverse=True)
        else:
            found = [(p, q) for p, q in levels.items() if p <= limit]
            found.sort()
        if bbo is not None:
            top = bbo.bid_ticks if is_bid else bbo.ask_ticks
            top_qty = bbo.bid_lots if is_bid else bbo.ask_lots
            deeper = [(p, q) for p, q in found if (p < top if is_bid else p > top)]
            within = top >= limit if is_bid else top <= limit
            found = ([(top, top_qty)] if within else []) + deeper
        return found

    # --- fills ---------------------------------------------------------------------
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
        fee = self.instrument.fee(price, qty, rate)  # settlement asset (quote; inverse: base)
        if self.wallet is not None:
            self._settle(coid, side, price, qty, leaves, fee)
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
            self._fill_report(order.coid, order.symbol, order.side, order.price, qty, leaves, ts, Liquidity.MAKER, reason, order.queue_at_placement)
        )
        if leaves == 0:
            del self._by_coid[order.coid]
            (self._bids if order.is_buy else self._asks).remove(order)

    # --- market data -----------------------------------------------------------------
    def on_trade(self, trade: Trade) -> list[ExecReport]:
        """Match a market trade against our resting orders (rule 1 of the module doc)."""
        reports: list[ExecReport] = []
        self.last_ts_ns = ts = trade.ts_local_ns
        hits_bids = trade.is_buyer_maker
        orders = self._bids if hits_bids else self._asks
        if not orders:
            return reports
        price = trade.price_ticks
        left = trade.qty_lots
        market_taken = 0  # M: market queue volume this print took at our price
        for order in list(orders):
            if left <= 0:
                break
            through = order.price > price if hits_bids else order.price < price
            if through:
                qty = min(order.leaves, left)
                left -= qty
                self._fill(order, qty, ts, FillReason.TRADE_THROUGH, reports)
                continue
            if order.price != price:
                break
            use = min(max(order.queue_ahead - market_taken, 0), left)
            market_taken += use
            left -= use
            if left > 0:
                qty = min(order.leaves, left)
                left -= qty
                self._fill(order, qty, ts, FillReason.QUEUE_CONSUMED, reports)
        if not self._touch:
            for order in orders:
                if order.price == price:
                    order.queue_ahead = max(order.queue_ahead - market_taken, 0)
                    order.traded_at_level += trade.qty_lots  # the market level shrank by the print
        return reports

    def on_depth(self, delta: BookDelta | BookSnapshot) -> list[ExecReport]:
        """Call after the venue book has applied ``delta``."""
        reports: list[ExecReport] = []
        self.last_ts_ns = delta.ts_local_ns
        is_snapshot = isinstance(delta, BookSnapshot)
        if not self._bids and not self._asks:
            return reports
        if not self._touch:
            if self._bids:
                self._update_queues(self._bids, delta.bids, True, is_snapshot)
            if self._asks:
                self._update_queues(self._asks, delta.asks, False, is_snapshot)
        self._check_crossed(delta.ts_local_ns, reports)
        return reports

    def on_bbo(self, bbo: BestBidAsk) -> list[ExecReport]:
        """A best bid/ask update (real time, fresher than the 100 ms depth stream)."""
        self._bbo = bbo
        self.last_ts_ns = bbo.ts_local_ns
        if not self._bids and not self._asks:
            return []
        if bbo.update_id <= self.book.last_update_id:
            return []
        if not self._touch:
            # The displayed quantity caps the queue ahead (both models).
            for order in self._bids:
                if order.price == bbo.bid_ticks and order.queue_ahead > bbo.bid_lots:
                    order.queue_ahead = bbo.bid_lots
            for order in self._asks:
                if order.price == bbo.ask_ticks and order.queue_ahead > bbo.ask_lots:
                    order.queue_ahead = bbo.ask_lots
        reports: list[ExecReport] = []
        self._check_crossed(bbo.ts_local_ns, reports)
        return reports

    def _update_queues(self, orders: list[_Resting], levels: tuple[tuple[int, int], ...], is_bid: bool, full: bool) -> None:
        if full:
            for order in orders:
                new_qty = self.book.qty_at(is_bid, order.price)
                order.queue_ahead = min(order.queue_ahead, new_qty)
                order.level_seen = new_qty
                order.traded_at_level = 0
            return
        if len(orders) == 1:
            only = orders[0]
            for price, new_qty in levels:
                if price == only.price:
                    self._level_changed(only, new_qty)
            return
        prices = {o.price for o in orders}
        for price, new_qty in levels:
            if price in prices:
                for order in orders:
                    if order.price == price:
                        self._level_changed(order, new_qty)

    def _level_changed(self, order: _Resting, new_qty: int) -> None:
        prev = order.level_seen
        traded = order.traded_at_level
        order.level_seen = new_qty
        order.traded_at_level = 0
        if not self._prob:
            order.queue_ahead = min(order.queue_ahead, new_qty)
            return
        cancelled = prev - new_qty - traded
        if cancelled <= 0:
            # Growth joins behind us; a decrease explained by prints was already counted.
            order.queue_ahead = min(order.queue_ahead, new_qty)
            return
        front = float(order.queue_ahead)
        back = float(max(prev - order.queue_ahead, 0))
        n = self.config.prob_power
        f_front = front**n
        f_back = back**n
        p_back = f_back / (f_back + f_front) if (f_back + f_front) > 0 else 0.0
        est = front - (1.0 - p_back) * cancelled + min(back - p_back * cancelled, 0.0)
        # Round up: never credit ourselves with a fraction of a lot we cannot prove.
        order.queue_ahead = min(max(math.ceil(est - 1e-9), 0), new_qty)

    def _check_crossed(self, ts: int, reports: list[ExecReport]) -> None:
        """Rule 2 of the module doc: the true book went through our resting orders."""
        if self._bids:
            best_ask = self._true_best(False)
            if best_ask is not None and best_ask <= self._bids[0].price:
                self._fill_crossed(self._bids, True, ts, reports)
        if self._asks:
            best_bid = self._true_best(True)
            if best_bid is not None and best_bid >= self._asks[0].price:
                self._fill_crossed(self._asks, False, ts, reports)

    def _fill_crossed(self, orders: list[_Resting], is_buy: bool, ts: int, reports: list[ExecReport]) -> None:
        touch = self._touch
        levels = self._true_levels(not is_buy, orders[0].price)
        for order in list(orders):
            open_equal = touch or order.queue_ahead == 0
            seen = order.cross_seen
            offered = 0
            for price, qty in levels:
                crosses = (price < order.price if is_buy else price > order.price) or (price == order.price and open_equal)
                if not crosses:
                    break  # levels are best first: the rest do not reach this order
                # New liquidity since this order last looked at the level (positive
                # variation): one resting seller fills us once, not on every update.
                before = seen.get(price, 0)
                if qty > before:
                    offered += qty - before
                seen[price] = qty
            if offered:
                self._fill(order, min(order.leaves, offered), ts, FillReason.BOOK_CROSSED, reports)

    # --- queries ---------------------------------------------------------------------
    def true_touch(self) -> tuple[int | None, int | None]:
        """(best bid, best ask) of the true book: the bookTicker if fresher, else depth."""
        return self._true_best(True), self._true_best(False)

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

    def restore_order(self, coid: str, side: Side, price: int, qty: int, filled: int, queue_ahead: int) -> bool:
        """Re-create a resting order (crash recovery of a paper run); False if the
        wallet cannot cover its leaves (then nothing is restored)."""
        if self.wallet is not None and not self._take_hold(coid, side, price, qty - filled, max(self._maker_rate, Decimal(0))):
            return False
        self._seq += 1
        order = _Resting(coid, self.instrument.symbol, side, price, qty, queue_ahead, self._seq)
        order.filled = filled
        self._by_coid[coid] = order
        self._seen_coids.add(coid)
        self._insert(order)
        return True


__all__ = [
    "BPS",
    "FillModel",
    "LatencyModel",
    "SimVenue",
    "VenueConfig",
]
