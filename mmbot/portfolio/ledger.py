"""Position, cash, fees and PnL in exact arithmetic (quote currency).

gross_pnl = cash_before_fees + position * mark        (realised + unrealised)
net_pnl   = gross_pnl - fees_paid                      (fees < 0 are rebates)

Prices are integer ticks and quantities integer lots; cash is a Decimal in the
quote currency: notional = ticks * lots * tick_size * qty_unit, exactly.
"""

from __future__ import annotations

from decimal import Decimal

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Side


class Ledger:
    __slots__ = (
        "_cash_units",
        "_unit",
        "ask_fills",
        "avg_entry_ticks",
        "bid_fills",
        "fees_paid",
        "fills",
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
        self.realized_units = 0
        self.avg_entry_ticks = 0.0  # for display only
        self.fees_paid = Decimal(0)
        self.fills = 0
        self.bid_fills = 0
        self.ask_fills = 0
        self.volume_lots = 0
        self.volume_notional = Decimal(0)
        self.max_abs_position_lots = 0

    def apply_fill(self, side: Side, price_ticks: int, qty_lots: int, fee: Decimal) -> None:
        notional_units = price_ticks * qty_lots
        if side is Side.BUY:
            self._cash_units -= notional_units
            self.position_lots += qty_lots
            self.bid_fills += 1
        else:
            self._cash_units += notional_units
            self.position_lots -= qty_lots
            self.ask_fills += 1
        self.fees_paid += fee
        self.fills += 1
        self.volume_lots += qty_lots
        self.volume_notional += Decimal(notional_units) * self._unit
        ap = abs(self.position_lots)
        if ap > self.max_abs_position_lots:
            self.max_abs_position_lots = ap

    def restore(self, position_lots: int, cash: Decimal, fees_paid: Decimal) -> None:
        """Set the state rebuilt from a journal (crash recovery)."""
        self.position_lots = position_lots
        self._cash_units = int(cash / self._unit)
        self.fees_paid = fees_paid
        self.max_abs_position_lots = max(self.max_abs_position_lots, abs(position_lots))

    @property
    def cash(self) -> Decimal:
        """Cash from trading before fees, quote currency."""
        return Decimal(self._cash_units) * self._unit

    @property
    def position(self) -> Decimal:
        return self.instrument.qty(self.position_lots)

    def gross_pnl(self, mark_ticks: int) -> Decimal:
        return Decimal(self._cash_units + self.position_lots * mark_ticks) * self._unit

    def net_pnl(self, mark_ticks: int) -> Decimal:
        return self.gross_pnl(mark_ticks) - self.fees_paid

    def gross_pnl_float(self, mark_ticks: float) -> float:
        """Fast float view for per-event metrics (never stored in the ledger)."""
        return float(self._cash_units + self.position_lots * mark_ticks) * float(self._unit)
