"""Futures margin: initial and maintenance margin, margin ratio, estimated liquidation price (pure).

One-way positions, one position per contract, Binance's simplified model (a single
maintenance-margin rate, no tiers, no maintenance amount). All values are in the
instrument's settlement asset (USDT for a linear ``BTC/USDT:USDT``, BTC for an inverse
``BTC/USD:BTC``) and exact (Fractions) until shown.

=====================  ===================================================================  ==========
symbol                 meaning                                                              unit
=====================  ===================================================================  ==========
q                      position in base units (linear: lots x qty_unit x contract size)     base
n                      position in quote units (inverse: contracts x contract size, USD)    quote
E, M, P                entry (average; inverse: harmonic mean), mark, liquidation price      quote/base
L                      leverage (``futures.leverage``)                                      1
m                      maintenance margin rate (``futures.maintenance_margin_rate``)         1
W                      collateral: cross = the wallet balance of the settlement asset        settle
                       (fees, realised PnL and funding booked); isolated = E-value / L
=====================  ===================================================================  ==========

Linear (settle = quote)::

    value      = |q| x M                   initial margin (margin_used) = value / L
    maintenance = value x m                margin_balance = W + q x (M - E)
    margin_ratio = maintenance / margin_balance
    liquidation: W + q (P - E) = |q| P m   =>  P = (q E - W) / (q - |q| m)

Inverse (settle = base)::

    value      = |n| / M                   initial margin = value / L, maintenance = value x m
    margin_balance = W + n (1/E - 1/M)
    liquidation: W + n (1/E - 1/P) = |n| m / P  =>  P = (n + |n| m) / (W + n / E)

A liquidation price that is not positive (a position the collateral covers at any price,
e.g. a fully collateralised inverse short) is reported as None. Binance's own figure also
counts tiered maintenance amounts and other positions; this one is an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from mmbot.domain.instrument import Instrument

MarginMode = Literal["cross", "isolated"]
# The margin ratio of a position whose margin balance is <= 0: above every watchdog level.
BANKRUPT_RATIO = Fraction(10**9)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginParams:
    leverage: int = 10
    margin_mode: MarginMode = "cross"
    maintenance_margin_rate: Decimal = Decimal("0.004")

    def __post_init__(self) -> None:
        if not 1 <= self.leverage <= 125:
            raise ValueError(f"leverage must be within 1..125, was {self.leverage}")
        if self.margin_mode not in ("cross", "isolated"):
            raise ValueError(f"margin_mode must be cross or isolated, was {self.margin_mode!r}")
        if not Decimal(0) <= self.maintenance_margin_rate < Decimal(1) / self.leverage:
            raise ValueError(
                f"maintenance_margin_rate must be >= 0 and below 1 / leverage ({1 / self.leverage}), was {self.maintenance_margin_rate}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginState:
    """The figures of one perpetual position at a mark (settlement asset unless noted)."""

    value: Fraction  # |position| at the mark
    margin_used: Fraction  # initial margin: value / leverage
    maintenance_margin: Fraction
    margin_balance: Fraction  # collateral + unrealised PnL
    margin_ratio: Fraction | None  # maintenance / margin balance; None when flat; BANKRUPT_RATIO at balance <= 0
    liquidation_price: Fraction | None  # quote per base; None when flat or never


def margin_state(
    inst: Instrument,
    *,
    position_lots: int,
    entry_ticks: Fraction | None,
    mark_ticks: int,
    wallet_balance: Fraction,
    params: MarginParams,
) -> MarginState:
    """Margin figures of a perpetual position (module docstring); flat: zeros and None."""
    if inst.kind == "spot":
        raise ValueError(f"margin_state needs a perpetual, {inst.symbol} is spot")
    zero = Fraction(0)
    if position_lots == 0 or entry_ticks is None or mark_ticks <= 0:
        return MarginState(value=zero, margin_used=zero, maintenance_margin=zero, margin_balance=wallet_balance,
                           margin_ratio=None, liquidation_price=None)
    tick = Fraction(inst.tick_size)
    size = Fraction(position_lots) * Fraction(inst.qty_unit) * Fraction(inst.contract_size)  # q (linear) or n (inverse)
    entry = entry_ticks * tick
    mark = mark_ticks * tick
    m = Fraction(params.maintenance_margin_rate)
    lev = params.leverage
    if inst.kind == "inverse_perp":
        value = abs(size) / mark
        unrealised = size * (1 / entry - 1 / mark)
        collateral = wallet_balance if params.margin_mode == "cross" else abs(size) / entry / lev
        denominator = collateral + size / entry
        liq = (size + abs(size) * m) / denominator if denominator else None
    else:
        value = abs(size) * mark
        unrealised = size * (mark - entry)
        collateral = wallet_balance if params.margin_mode == "cross" else abs(size) * entry / lev
        liq = (size * entry - collateral) / (size - abs(size) * m)
    maintenance = value * m
    balance = collateral + unrealised
    return MarginState(
        value=value,
        margin_used=value / lev,
        maintenance_margin=maintenance,
        margin_balance=balance,
        margin_ratio=maintenance / balance if balance > 0 else BANKRUPT_RATIO,
        liquidation_price=liq if liq is not None and liq > 0 else None,
    )
