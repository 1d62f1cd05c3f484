"""Instruments and exact price/quantity conversion.

Prices are integer *ticks* (price = ticks x tick_size) and quantities integer *lots*
(qty = lots x qty_unit). ``qty_unit`` is the venue's wire precision (1e-8 on Binance:
aggregated book levels carry more decimals than the order step), and ``step_size``
is the order-size filter: order quantities are multiples of ``step_lots``. Decimal strings from the venue are converted exactly; a
string with significant digits finer than the grid is rejected (bids and asks we
compute ourselves are rounded by the strategy: bids down, asks up).

Kinds (ccxt unified symbols): ``spot`` ``BTC/USDT``; ``linear_perp`` ``BTC/USDT:USDT``
(quantity in base units, PnL and margin in the quote = settlement asset);
``inverse_perp`` ``BTC/USD:BTC`` (quantity in integer contracts of ``contract_size``
quote units each, e.g. 100 USD; PnL and margin in the base = settlement asset).

Inverse PnL, in the settlement (base) asset, for a signed position of ``n`` contracts
(long > 0) opened at ``entry`` and closed at ``exit``::

    pnl_base = n * contract_size * (1/entry - 1/exit)

With prices as ticks ``e``, ``x`` of size ``tick``: ``n * contract_size * (x - e) /
(tick * e * x)``, computed exactly as a Fraction (see docs/futures.md for a worked
example).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

InstrumentKind = Literal["spot", "linear_perp", "inverse_perp"]
KINDS: tuple[str, ...] = ("spot", "linear_perp", "inverse_perp")


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


SETTLE_QUANTUM = Fraction(1, 10**8)  # 1e-8: the settlement asset's booking unit (Binance's 8 decimals)


def round_up_8(value: Fraction) -> Decimal:
    """Round up (toward +inf) to 1e-8: charges never fall short, credits never exceed."""
    units = -((-value) // SETTLE_QUANTUM)
    return Decimal(int(units)) / Decimal(10**8)


def symbol_kind(symbol: str) -> InstrumentKind:
    """The kind a ccxt unified symbol names: ``BASE/QUOTE`` spot, ``BASE/QUOTE:QUOTE``
    linear perpetual, ``BASE/QUOTE:BASE`` inverse perpetual; ValueError otherwise."""
    pair, colon, settle = symbol.partition(":")
    base, _, quote_ccy = pair.partition("/")
    if not base or not quote_ccy or (colon and not settle):
        raise ValueError(f"symbol must look like BASE/QUOTE[:SETTLE], was {symbol!r}")
    if not colon:
        return "spot"
    if settle == quote_ccy:
        return "linear_perp"
    if settle == base:
        return "inverse_perp"
    raise ValueError(f"settlement asset {settle!r} of {symbol!r} is neither base nor quote")


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
    kind: InstrumentKind = "spot"
    # linear: base units per 1 of quantity (1); inverse: quote units per contract (100 USD)
    contract_size: Decimal = Decimal("1")
    settle: str = ""  # settlement asset; "" = quote for spot/linear (filled in below)
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
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, was {self.kind!r}")
        if self.contract_size <= 0:
            raise ValueError(f"contract_size must be > 0, was {self.contract_size}")
        if not self.settle:
            object.__setattr__(self, "settle", self.base if self.kind == "inverse_perp" else self.quote_ccy)
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
        contract_size: str | Decimal | None = None,
        qty_unit: str | Decimal | None = None,
    ) -> Instrument:
        """Build from a ccxt unified symbol; the kind follows from it.

        ``BASE/QUOTE`` is spot, ``BASE/QUOTE:QUOTE`` a linear perpetual and
        ``BASE/QUOTE:BASE`` an inverse perpetual (Binance venue symbol
        ``BASEQUOTE_PERP``; default contract size 100 quote units, quantity unit 1).
        """
        kind = symbol_kind(symbol)
        pair, _, settle = symbol.partition(":")
        base, _, quote_ccy = pair.partition("/")
        venue = (base + quote_ccy).upper() + ("_PERP" if kind == "inverse_perp" else "")
        default_size = "100" if kind == "inverse_perp" else "1"
        default_unit = "1" if kind == "inverse_perp" else "0.00000001"
        return cls(
            symbol=symbol,
            venue_symbol=venue,
            base=base,
            quote_ccy=quote_ccy,
            tick_size=Decimal(str(tick_size)),
            step_size=Decimal(str(step_size)),
            min_notional=Decimal(str(min_notional)),
            qty_unit=Decimal(str(qty_unit if qty_unit is not None else default_unit)),
            kind=kind,
            contract_size=Decimal(str(contract_size if contract_size is not None else default_size)),
            settle=settle or quote_ccy,
        )

    @property
    def is_perp(self) -> bool:
        return self.kind != "spot"

    def inverse_pnl(self, position_lots: int, entry_ticks: int, exit_ticks: int) -> Fraction:
        """Exact inverse-perp PnL in the base asset: n * cs * (1/entry - 1/exit).

        ``position_lots`` is signed (long > 0) in quantity units (contracts when
        ``qty_unit`` is 1). Raises ValueError for a non-inverse instrument or a
        non-positive price.
        """
        if self.kind != "inverse_perp":
            raise ValueError(f"inverse_pnl needs an inverse_perp, {self.symbol} is {self.kind}")
        if entry_ticks <= 0 or exit_ticks <= 0:
            raise ValueError("entry and exit prices must be > 0")
        contracts = Fraction(self.qty(position_lots))
        per_tick = Fraction(self.contract_size) / Fraction(self.tick_size)
        return contracts * per_tick * Fraction(exit_ticks - entry_ticks, entry_ticks * exit_ticks)

    def linear_pnl(self, position_lots: int, entry_ticks: int, exit_ticks: int) -> Fraction:
        """Exact spot / linear-perp PnL in the quote asset: qty * cs * (exit - entry)."""
        if self.kind == "inverse_perp":
            raise ValueError(f"linear_pnl needs a spot or linear instrument, {self.symbol} is inverse")
        return (
            Fraction(self.qty(position_lots))
            * Fraction(self.contract_size)
            * Fraction(self.tick_size)
            * (exit_ticks - entry_ticks)
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
        """The order's or position's size in the quote currency, exact: price x quantity x
        contract size (spot, linear); quantity x contract size for an inverse perpetual,
        whose contracts are worth a fixed amount of the quote currency (100 USD)."""
        if self.kind == "inverse_perp":
            return Decimal(lots) * self.qty_unit * self.contract_size
        value = Decimal(ticks * lots) * self.tick_size * self.qty_unit
        return value if self.contract_size == 1 else value * self.contract_size

    def delta_base(self, lots: int, price_ticks: float) -> Fraction:
        """Signed exposure in base units: ``qty x contract_size`` (spot, linear); an
        inverse position of ``n`` contracts is ``n x contract_size / price`` of the base."""
        qty = Fraction(lots) * Fraction(self.qty_unit) * Fraction(self.contract_size)
        if self.kind != "inverse_perp":
            return qty
        if price_ticks <= 0:
            raise ValueError(f"price must be > 0 for an inverse delta, was {price_ticks} ticks")
        return qty / (Fraction(price_ticks) * Fraction(self.tick_size))

    def settle_value(self, ticks: int, lots: int) -> Fraction:
        """The size in the settlement asset, exact: the notional (quote) for spot and linear;
        ``contracts x contract_size / price`` (base) for an inverse perpetual."""
        if self.kind == "inverse_perp":
            if ticks <= 0:
                raise ValueError(f"price must be > 0 for an inverse value, was {ticks} ticks")
            return Fraction(self.notional(ticks, lots)) / (ticks * Fraction(self.tick_size))
        return Fraction(self.notional(ticks, lots))

    def fee(self, ticks: int, lots: int, rate: Decimal) -> Decimal:
        """Fee of a fill in the settlement asset: value x rate. Exact for spot and linear;
        an inverse fee (a ratio) is rounded up to 1e-8 of the base asset, as the venue
        books commissions (a rebate, rate < 0, rounds toward zero)."""
        if self.kind != "inverse_perp":
            # The venue's long-standing expression (same Decimal exponent in journals and goldens).
            return Decimal(ticks * lots) * (self.tick_size * self.qty_unit) * self.contract_size * rate if self.contract_size != 1 \
                else Decimal(ticks * lots) * (self.tick_size * self.qty_unit) * rate
        exact = self.settle_value(ticks, lots) * Fraction(rate)
        return round_up_8(exact)


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
