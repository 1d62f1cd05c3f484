"""Instruments and exact price/quantity conversion.

Prices are integer *ticks* (price = ticks x tick_size) and quantities integer *lots*
(qty = lots x qty_unit). ``qty_unit`` is the venue's wire precision (1e-8 on Binance:
aggregated book levels carry more decimals than the order step), and ``step_size``
is the order-size filter: order quantities are multiples of ``step_lots``. Decimal strings from the venue are converted exactly; a
string with significant digits finer than the grid is rejected (bids and asks we
compute ourselves are rounded by the strategy: bids down, asks up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


def parse_scaled(text: str, scale: int) -> int:
    """Exact decimal string -> integer in units of 10**-scale.

    ``parse_scaled("61837.63000000", 2) == 6183763``. Raises ValueError if the string
    has non-zero digits beyond ``scale`` decimals or is not a plain decimal.
    """
    whole, dot, frac = text.partition(".")
    if not dot:
        return int(whole) * int(10**scale)
    head = frac[:scale]
    tail = frac[scale:]
    if tail and tail.strip("0"):
        raise ValueError(f"{text!r} has more than {scale} significant decimals")
    if len(head) < scale:
        head = head + "0" * (scale - len(head))
    return int((whole or "0") + head)


def _scale_of(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """A tradable pair with its venue filters."""

    symbol: str  # unified, e.g. "BTC/USDT"
    venue_symbol: str  # e.g. "BTCUSDT"
    base: str
    quote_ccy: str
    tick_size: Decimal
    step_size: Decimal
    min_notional: Decimal = Decimal("0")
    qty_unit: Decimal = Decimal("0.00000001")
    price_scale: int = field(init=False)
    qty_scale: int = field(init=False)
    ticks_per_unit: int = field(init=False)  # 10**price_scale / tick_size as int
    lots_per_unit: int = field(init=False)
    step_lots: int = field(init=False)

    def __post_init__(self) -> None:
        if self.tick_size <= 0:
            raise ValueError(f"tick_size must be > 0, was {self.tick_size}")
        if self.step_size <= 0:
            raise ValueError(f"step_size must be > 0, was {self.step_size}")
        ps = _scale_of(self.tick_size)
        qs = _scale_of(self.qty_unit)
        object.__setattr__(self, "price_scale", ps)
        object.__setattr__(self, "qty_scale", qs)
        tpu = Decimal(1) / self.tick_size
        lpu = Decimal(1) / self.qty_unit
        if tpu != tpu.to_integral_value() or lpu != lpu.to_integral_value():
            raise ValueError("tick_size and qty_unit must divide 1 exactly")
        step_lots = self.step_size / self.qty_unit
        if step_lots != step_lots.to_integral_value():
            raise ValueError(f"step_size {self.step_size} must be a multiple of qty_unit {self.qty_unit}")
        object.__setattr__(self, "step_lots", int(step_lots))
        object.__setattr__(self, "ticks_per_unit", int(tpu))
        object.__setattr__(self, "lots_per_unit", int(lpu))

    @classmethod
    def from_symbol(
        cls,
        symbol: str,
        *,
        tick_size: str | Decimal,
        step_size: str | Decimal,
        min_notional: str | Decimal = "0",
    ) -> Instrument:
        base, _, quote_ccy = symbol.partition("/")
        if not base or not quote_ccy:
            raise ValueError(f"symbol must look like BASE/QUOTE, was {symbol!r}")
        return cls(
            symbol=symbol,
            venue_symbol=(base + quote_ccy).upper(),
            base=base,
            quote_ccy=quote_ccy,
            tick_size=Decimal(str(tick_size)),
            step_size=Decimal(str(step_size)),
            min_notional=Decimal(str(min_notional)),
        )

    # --- conversions -------------------------------------------------------------
    def price_ticks(self, text: str) -> int:
        """Exact venue price string -> ticks (the tick is a power of ten here)."""
        value = parse_scaled(text, self.price_scale)
        unit = int(10**self.price_scale) // self.ticks_per_unit
        if value % unit:
            raise ValueError(f"price {text} is not on the tick grid {self.tick_size}")
        return value // unit

    def qty_lots(self, text: str) -> int:
        value = parse_scaled(text, self.qty_scale)
        unit = int(10**self.qty_scale) // self.lots_per_unit
        if value % unit:
            raise ValueError(f"quantity {text} is finer than {self.qty_unit}")
        return value // unit

    def price(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self.tick_size

    def qty(self, lots: int) -> Decimal:
        return Decimal(lots) * self.qty_unit

    def to_ticks_down(self, price: Decimal | float) -> int:
        """Round a computed price down to the tick grid (for bids)."""
        return int((Decimal(str(price)) / self.tick_size).to_integral_value(rounding="ROUND_FLOOR"))

    def to_ticks_up(self, price: Decimal | float) -> int:
        """Round a computed price up to the tick grid (for asks)."""
        return int((Decimal(str(price)) / self.tick_size).to_integral_value(rounding="ROUND_CEILING"))

    def to_lots(self, qty: Decimal | float) -> int:
        """Round a size down to the order step grid; the result is in lots."""
        steps = (Decimal(str(qty)) / self.step_size).to_integral_value(rounding="ROUND_FLOOR")
        return int(steps) * self.step_lots

    def notional(self, ticks: int, lots: int) -> Decimal:
        """Price x quantity in the quote currency, exact."""
        return Decimal(ticks * lots) * self.tick_size * self.qty_unit


def plain(value: Decimal | int | str) -> str:
    """A quantity as a plain decimal string: no exponent, no trailing zeros.

    ``plain(Decimal("0E-8")) == "0"``, ``plain(Decimal("0.03000000")) == "0.03"``,
    ``plain(Decimal("1E+2")) == "100"``. The one rendering of quantities for people:
    the status line, the summary's quantity fields, the logs.
    """
    number = value if isinstance(value, Decimal) else Decimal(value)
    if number.is_zero():
        return "0"  # also "-0" and "0E-8"
    text = format(number.normalize(), "f")
    return text


def price_text(instrument: Instrument, ticks: float) -> str:
    """A price at the instrument's tick precision (``61780.00``); a mid half-way between two
    ticks keeps its half (``61780.005``). Floats of whole or half ticks are exact in Decimal."""
    return format(Decimal(ticks) * instrument.tick_size, "f")
