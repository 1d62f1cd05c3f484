"""Position, cash, fees, average entry and PnL in exact arithmetic (quote currency).

The ledger is the one owner of these figures: the summary, the risk gate, the metrics,
the run record and the audit recompute all read them here.

Units: prices are integer ticks, quantities integer lots (signed position: + long,
- short); ``unit = tick_size x qty_unit`` is the quote currency of one tick x lot, so
cash is ``cash_units x unit`` exactly. Fees are Decimals in the quote currency (< 0:
rebates).

=================  ==========================================================  ==============
symbol             meaning                                                      unit
=================  ==========================================================  ==============
q                  position (``position_lots``)                                 lots
p_i, n_i           price and size of fill i                                     ticks, lots
cash               - sum of p_i x n_i over buys + over sells (``cash_units``)    tick x lot
C                  cost basis of the open position (signed like q)              tick x lot
A = C / q          average entry price (``avg_entry_ticks``, a Fraction)        ticks
R                  realised PnL before fees (``realized_units``, a Fraction)    tick x lot
M                  the mark (:func:`mark_ticks_from_mid`)                       ticks
=================  ==========================================================  ==============

Average-cost method, exact (Fractions: no float drift):

* a fill that opens or adds to the position (same side as q, or q = 0) adds
  ``p x n`` to C (signed): A is the size-weighted average of the open position's
  entries;
* a fill that reduces the position by ``c = min(n, |q|)`` lots books
  ``R += sign(q) x c x (p - A)`` on the reducing part and leaves A unchanged for what
  is left (``C = A x (q after)``);
* a fill that crosses zero closes ``|q|`` lots as above and opens the remainder
  ``n - |q|`` at ``p``: A is reset to the fill price; a flat position has no A (None).

Then, for any mark M::

    unrealised = q x M - C                         (= q x (M - A))
    gross_pnl  = cash + q x M = R + unrealised     (realised + unrealised, exact)
    net_pnl    = gross_pnl - fees_paid
    realized_pnl() = R - fees_paid                 (fees are realised when paid)

so ``realized_pnl() + unrealized_pnl(M) == net_pnl(M)`` exactly, because
``cash + C == R`` after every fill.

Perpetual futures. A linear perpetual (``BTC/USDT:USDT``) books exactly as above: its
PnL is in the quote currency, which settles it. An inverse perpetual (``BTC/USD:BTC``,
quantity in contracts of ``cs`` USD) books in the base asset, its settlement asset, with
values ``v = n / p`` in place of notionals ``p x n`` (``f = cs x qty_unit / tick_size``
turns ``lots / ticks`` into base units)::

    cash_b     = sum of +v_i over buys - v_i over sells        (lots / ticks)
    V          = entry value of the open position, signed like q; A = q / V (harmonic mean)
    reducing c lots at p:  R += V x c / |q| - sign(q) x c / p;  V -= V x c / |q|
    unrealised = V - q / M;   gross_pnl = (cash_b - q / M) x f = (R + unrealised) x f

which is ``n x cs x (1/entry - 1/exit)`` per closed contract (docs/futures.md has a worked
example). Funding (``book_funding``, settlement asset, > 0 paid) is subtracted like fees:
``net_pnl = gross_pnl - fees_paid - funding_paid``.

Mark rule (:func:`mark_ticks_from_mid`, the one place it is written): an L2 run marks at
the mid rounded to the nearest tick, half a tick to the even tick; a bar backtest marks
at the bar's close (already on the tick grid).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Side


def mark_ticks_from_mid(mid_ticks: float) -> int:
    """The mark of every PnL figure of an L2 run, in ticks: the mid rounded to the nearest
    tick, a mid exactly half-way (a one-tick spread, bid + ask odd) to the even tick
    (Python's ``round``).

    Used by the summary, the risk gate's drawdown and daily loss, the metrics, the run
    record's PnL series, the status line and the audit recompute, so they all agree. The
    mid ``(bid + ask) / 2`` of integer ticks is a half-integer float, exact, so the
    rounding is exact too.
    """
    return round(mid_ticks)


class Ledger:
    __slots__ = (
        "_cash_units",
        "_cash_value",
        "_inverse",
        "_open_cost",
        "_unit",
        "_value_unit",
        "ask_fills",
        "bid_fills",
        "fees_paid",
        "fills",
        "funding_events",
        "funding_paid",
        "instrument",
        "max_abs_position_lots",
        "position_lots",
        "realized_units",
        "volume_lots",
        "volume_notional",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self._unit = instrument.tick_size * instrument.qty_unit
        self.position_lots = 0
        self._cash_units = 0  # integer, in tick*lot units: exact and fast
        self._open_cost: Fraction = Fraction(0)  # C: cost basis of the open position, signed like it
        self.realized_units: Fraction = Fraction(0)  # R: realised PnL before fees, tick*lot units
        self.fees_paid = Decimal(0)
        self.fills = 0
        self.bid_fills = 0
        self.ask_fills = 0
        self.volume_lots = 0
        self.volume_notional = Decimal(0)
        self.max_abs_position_lots = 0
        self._inverse = instrument.kind == "inverse_perp"
        # Inverse: cash_b in lots/ticks, and the base units of one lot/tick (cs x qty_unit / tick).
        self._cash_value: Fraction = Fraction(0)
        self._value_unit = Fraction(instrument.contract_size) * Fraction(instrument.qty_unit) / Fraction(instrument.tick_size)
        self.funding_paid = Decimal(0)  # settlement asset; > 0 paid, < 0 received
        self.funding_events = 0

    def book_funding(self, amount: Decimal) -> None:
        """One funding payment of the open position (settlement asset, > 0 paid)."""
        self.funding_paid += amount
        self.funding_events += 1

    def _apply_inverse(self, signed: int, price_ticks: int) -> None:
        value = Fraction(signed, price_ticks)  # signed n / p
        pos = self.position_lots
        new = pos + signed
        self._cash_value += value
        if pos == 0 or (pos > 0) == (signed > 0):
            self._open_cost += value
        else:
            closed = min(abs(signed), abs(pos))
            part = self._open_cost * closed / abs(pos)  # entry value of the closed contracts, signed like pos
            self.realized_units += part - Fraction(closed if pos > 0 else -closed, price_ticks)
            self._open_cost -= part
            if new != 0 and (new > 0) != (pos > 0):
                self._open_cost = Fraction(new, price_ticks)  # crossed zero: the rest opened here

    def apply_fill(self, side: Side, price_ticks: int, qty_lots: int, fee: Decimal) -> None:
        notional_units = price_ticks * qty_lots
        pos = self.position_lots
        signed = qty_lots if side is Side.BUY else -qty_lots
        new = pos + signed
        if self._inverse:
            self._apply_inverse(signed, price_ticks)
        elif pos == 0 or (pos > 0) == (signed > 0):
            self._open_cost += notional_units if signed > 0 else -notional_units
        else:
            avg = self._open_cost / pos
            closed = min(qty_lots, abs(pos))
            self.realized_units += (closed if pos > 0 else -closed) * (price_ticks - avg)
            if new == 0 or (new > 0) == (pos > 0):
                self._open_cost = avg * new  # what is left keeps its average entry
            else:
                self._open_cost = Fraction(price_ticks * new)  # crossed zero: the rest opened here
        if side is Side.BUY:
            self._cash_units -= notional_units
            self.bid_fills += 1
        else:
            self._cash_units += notional_units
            self.ask_fills += 1
        self.position_lots = new
        self.fees_paid += fee
        self.fills += 1
        self.volume_lots += qty_lots
        self.volume_notional += self.instrument.notional(price_ticks, qty_lots) if self._inverse else Decimal(notional_units) * self._unit
        ap = abs(new)
        if ap > self.max_abs_position_lots:
            self.max_abs_position_lots = ap

    def restore(self, position_lots: int, cash: Decimal, fees_paid: Decimal) -> None:
        """Set a position whose fills are not known (venue balances since a baseline).

        Its entry is not known either, so its cost basis is the cash it took: ``C =
        -cash`` (A = -cash / q), realised 0 until the next fill. Journal recovery does not
        use this: it replays the journal's fills through :meth:`apply_fill`.
        """
        self.position_lots = position_lots
        self._cash_units = int(cash / self._unit)
        self._open_cost = Fraction(-self._cash_units) if position_lots else Fraction(0)
        self.realized_units = self._cash_units + self._open_cost  # cash + C == R, as after every fill
        self.fees_paid = fees_paid
        self.max_abs_position_lots = max(self.max_abs_position_lots, abs(position_lots))

    @property
    def cash(self) -> Decimal:
        """Cash from trading before fees, quote currency."""
        return Decimal(self._cash_units) * self._unit

    @property
    def cash_units(self) -> int:
        """Cash from trading before fees, tick x lot units (exact)."""
        return self._cash_units

    @property
    def position(self) -> Decimal:
        return self.instrument.qty(self.position_lots)

    @property
    def avg_entry_ticks(self) -> Fraction | None:
        """A: the average entry of the open position, ticks (size-weighted; inverse: the
        harmonic mean q / V); None when flat."""
        if self.position_lots == 0:
            return None
        if self._inverse:
            return self.position_lots / self._open_cost
        return self._open_cost / self.position_lots

    def entry_value(self) -> Fraction:
        """|C| (inverse: |V|) in the settlement asset: the open position's value at its entry
        prices, the base of its initial margin (mmbot.portfolio.margin)."""
        return abs(self._open_cost) * self._pnl_unit()

    def realized_settle(self) -> Fraction:
        """R in the settlement asset, before fees and funding (exact)."""
        return self.realized_units * self._pnl_unit()

    @property
    def pnl_ccy(self) -> str:
        """The asset every PnL figure of this ledger is in: the settlement asset."""
        return self.instrument.settle

    def _pnl_unit(self) -> Fraction:
        return self._value_unit if self._inverse else Fraction(self._unit)

    def realized_pnl(self) -> Fraction:
        """R - fees - funding: realised PnL net of fees and funding, settlement asset (exact)."""
        return self.realized_units * self._pnl_unit() - Fraction(self.fees_paid) - Fraction(self.funding_paid)

    def unrealized_pnl(self, mark_ticks: int) -> Fraction:
        """q x M - C = q x (M - A) (inverse: V - q / M): the open position at the mark,
        settlement asset (exact)."""
        if self._inverse:
            if not self.position_lots:
                return Fraction(0)
            return (self._open_cost - Fraction(self.position_lots, mark_ticks)) * self._value_unit
        return (self.position_lots * mark_ticks - self._open_cost) * Fraction(self._unit)

    def gross_pnl(self, mark_ticks: int) -> Decimal:
        if self._inverse:
            value = self._cash_value - (Fraction(self.position_lots, mark_ticks) if self.position_lots else 0)
            return _decimal(value * self._value_unit)
        return Decimal(self._cash_units + self.position_lots * mark_ticks) * self._unit

    def net_pnl(self, mark_ticks: int) -> Decimal:
        return self.gross_pnl(mark_ticks) - self.fees_paid - self.funding_paid

    def net_pnl_quote(self, mark_ticks: int) -> Decimal:
        """Net PnL in the quote currency (the risk limits' unit): an inverse ledger's base
        PnL times the mark; the others are in the quote currency already."""
        net = self.net_pnl(mark_ticks)
        return net * self.instrument.price(mark_ticks) if self._inverse else net

    def gross_pnl_float(self, mark_ticks: float) -> float:
        """Fast float view for per-event metrics (never stored in the ledger)."""
        if self._inverse:
            held = self.position_lots / mark_ticks if self.position_lots and mark_ticks else 0.0
            return (float(self._cash_value) - held) * float(self._value_unit)
        return float(self._cash_units + self.position_lots * mark_ticks) * float(self._unit)


def _decimal(value: Fraction) -> Decimal:
    """An exact Fraction as a Decimal of 28 significant digits (display and comparisons; the ledger keeps the Fraction)."""
    return Decimal(value.numerator) / Decimal(value.denominator)
