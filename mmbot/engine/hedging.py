"""Cross-instrument hedging (issue 32): quote one instrument, hedge on another of the account (pure).

``strategy.hedge.instrument`` names another configured symbol, e.g. quote ``BTC/USDT``
(spot) and hedge on ``BTC/USDT:USDT`` (the USD-M perpetual). A :class:`HedgeLink` joins
the two engines of one process:

* net delta, in the quoted instrument's lots: ``q_net = q_quoted + h(q_hedge)`` with
  ``h`` the hedge position's base delta (``Instrument.delta_base``) in quoted lots;
  the quoted engine's model sees ``q_net`` as its inventory, so the skew and the hedge
  decision (``|q_net| > H -> target - q_net``, mmbot.strategy.hedge) use net delta;
* the model's hedge decision is not sent to the quoted book: it becomes a taker order
  (IOC at the hedge book's opposite touch) on the hedge instrument, its size converted
  to base units and rounded toward zero to the hedge instrument's step;
* while a hedge is in flight (a taker order of the hedge engine is still open), the
  quoted side that would increase ``|q_net|`` is withdrawn (bids when net long, asks
  when net short), and no second hedge is sent.

Bound (taker hedges, fills at most one order size ``s`` at a time): a hedge starts as soon
as ``|q_net| > H`` and nothing can add to ``|q_net|`` while it is in flight, so
``|q_net| <= H + s`` (tests/strategy/test_cross_hedge.py checks it by property test over
random fill sequences, and the spot-perp-hedge run). Maker hedges are not built: their
bound would be ``max_inventory`` (the quoted engine's own limit), since a resting hedge
may never fill.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from mmbot.domain.orders import Command, Quote, Side
from mmbot.engine.engine import Engine


class HedgeLink:
    """The quoted engine's view of its hedge instrument (module docstring)."""

    def __init__(self, quoted: Engine, hedge: Engine, submit: Callable[[list[Command], int], None]) -> None:
        self.quoted = quoted
        self.hedge = hedge
        self.submit = submit  # the hedge lane's session: act(commands, t)
        q = quoted.instrument
        self._quoted_base_per_lot = Fraction(q.qty_unit) * Fraction(q.contract_size)
        self.hedges_sent = 0
        self.hedges_skipped: dict[str, int] = {}
        self.max_abs_net_lots = 0  # the peak of |net delta| after any fill of either instrument
        quoted.fill_observers.append(self.observe)
        hedge.fill_observers.append(self.observe)

    def observe(self) -> None:
        self.max_abs_net_lots = max(self.max_abs_net_lots, abs(self.net_lots()))

    def _skip(self, why: str) -> None:
        self.hedges_skipped[why] = self.hedges_skipped.get(why, 0) + 1

    def offset_lots(self) -> int:
        """The hedge position's delta in quoted lots (toward zero)."""
        h = self.hedge
        pos = h.ledger.position_lots
        if pos == 0:
            return 0
        price = h.mid_ticks if h.mid_ticks is not None else 0.0
        if h.instrument.kind == "inverse_perp" and price <= 0:
            return 0
        lots = h.instrument.delta_base(pos, price if price > 0 else 1.0) / self._quoted_base_per_lot
        return int(lots)  # int() of a Fraction truncates toward zero

    def net_lots(self) -> int:
        return self.quoted.ledger.position_lots + self.offset_lots()

    def in_flight(self) -> bool:
        return any(o.is_taker for o in self.hedge.om.orders.values())

    def withdraw_side(self) -> Side | None:
        """The quoted side to withdraw now: the one that would add to |net delta| while a hedge is in flight."""
        if not self.in_flight():
            return None
        net = self.net_lots()
        if net > 0:
            return Side.BUY
        if net < 0:
            return Side.SELL
        return None

    def send(self, quote: Quote, now_ns: int) -> None:
        """The model's hedge (in quoted lots) as a taker order on the hedge instrument."""
        if self.in_flight():
            self._skip("in_flight")
            return
        h = self.hedge
        touch = h.touch()
        if touch is None or h.mid_ticks is None:
            self._skip("no_hedge_book")
            return
        base = Fraction(quote.qty_lots) * self._quoted_base_per_lot
        hi = h.instrument
        per_lot = hi.delta_base(1, h.mid_ticks)  # base units of one hedge lot
        lots = int(base / per_lot) // hi.step_lots * hi.step_lots
        if lots <= 0:
            self._skip("below_step")
            return
        price = touch[1] if quote.side is Side.BUY else touch[0]
        commands = h.place_external([Quote(side=quote.side, price_ticks=price, qty_lots=lots, reason="hedge", is_taker=True)], now_ns)
        if not commands:
            self._skip("denied")
            return
        self.hedges_sent += 1
        self.submit(commands, now_ns)

    def fields(self) -> dict[str, object]:
        """The summary's ``hedge`` block."""
        return {
            "quoted": self.quoted.symbol,
            "hedge_instrument": self.hedge.symbol,
            "hedges_sent": self.hedges_sent,
            "hedges_skipped": dict(sorted(self.hedges_skipped.items())),
            "hedge_fills": self.hedge.ledger.fills,
            "net_delta_lots": self.net_lots(),
            "net_delta_base": format(self.net_lots() * self.quoted.instrument.qty_unit * self.quoted.instrument.contract_size, "f"),
        }
