"""Break-even spread (the seed's formula) and the checks built on it.

::

    breakeven_spread_bps = 2 * fee_bps_per_side + slippage_bps + profit_bps

=================  ==================  ===================================
symbol             parameter           unit
=================  ==================  ===================================
fee_bps_per_side   fees.maker_fee_bps  bps of notional, paid on each leg
slippage_bps       fees.slippage_bps   bps per round trip
profit_bps         fees.profit_bps     bps per round trip (desired margin)
=================  ==================  ===================================

Example from the seed: fee 5 bps per side, slippage 2, desired profit 10 ->
22 bps. A market maker pays the maker fee on both legs of a round trip; a maker
rebate (negative fee) lowers the break-even.

The configured spread compared with it is the narrowest spread the config asks
for (:func:`quoted_spread_bps`): ``spread_bps``, or twice the first ladder
level's ``offset_bps`` for the simple model with a ladder.

Where it is enforced:

* ``mmbot run`` (daemon start): a spread below break-even is refused, exit 2, with
  a message naming both figures, unless ``strategy.allow_below_breakeven: true``
  (``mmbot.cli.run.startup_checks`` calls :func:`check_breakeven_settings`).
* ``backtest`` and ``optimize`` study such settings (the seed's own grid has rows
  below break-even): they call :func:`breakeven_flags` (or
  :func:`breakeven_flags_for` per grid row) and put the flags in their results,
  with a warning, instead of refusing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

# What these checks read from the settings, typed structurally: the strategy layer sits below
# mmbot.config and must not import it (import-linter layers), and a test can pass a plain object.


class FeeTerms(Protocol):
    @property
    def maker_fee_bps(self) -> Decimal | float: ...
    @property
    def slippage_bps(self) -> Decimal | float: ...
    @property
    def profit_bps(self) -> Decimal | float: ...


class LadderOffset(Protocol):
    @property
    def offset_bps(self) -> float: ...


class SpreadTerms(Protocol):
    @property
    def model(self) -> str: ...
    @property
    def spread_bps(self) -> float: ...
    @property
    def ladder(self) -> Sequence[LadderOffset]: ...


class BreakevenTerms(Protocol):
    @property
    def fees(self) -> FeeTerms: ...
    @property
    def strategy(self) -> SpreadTerms: ...


def breakeven_spread_bps(fee_bps_per_side: float, slippage_bps: float, profit_bps: float) -> float:
    return 2.0 * fee_bps_per_side + slippage_bps + profit_bps


def quoted_spread_bps(strategy: SpreadTerms) -> float:
    """The narrowest full spread a strategy config asks for (bps of the mid)."""
    ladder = strategy.ladder
    if ladder and strategy.model == "simple":
        return 2.0 * min(float(level.offset_bps) for level in ladder)
    return float(strategy.spread_bps)


def settings_breakeven_bps(settings: BreakevenTerms) -> float:
    fees = settings.fees
    return breakeven_spread_bps(float(fees.maker_fee_bps), float(fees.slippage_bps), float(fees.profit_bps))


def breakeven_message(spread_bps: float, breakeven_bps: float, fees: FeeTerms | None = None) -> str:
    detail = ""
    if fees is not None:
        detail = (
            f" (2 x maker_fee_bps {fees.maker_fee_bps} + slippage_bps {fees.slippage_bps}"
            f" + profit_bps {fees.profit_bps})"
        )
    return f"strategy spread {spread_bps:g} bps is below the break-even spread {breakeven_bps:g} bps{detail}"


def check_breakeven_settings(settings: BreakevenTerms) -> str | None:
    """A message naming both figures when the configured spread is below break-even, else None."""
    spread = quoted_spread_bps(settings.strategy)
    be = settings_breakeven_bps(settings)
    if spread < be:
        return breakeven_message(spread, be, settings.fees)
    return None


def breakeven_flags_for(spread_bps: float, fee_bps_per_side: float, slippage_bps: float, profit_bps: float) -> dict[str, Any]:
    """Result fields for one parameter set (e.g. an optimize grid row)."""
    be = breakeven_spread_bps(fee_bps_per_side, slippage_bps, profit_bps)
    below = spread_bps < be
    return {
        "spread_bps": spread_bps,
        "breakeven_bps": be,
        "below_breakeven": below,
        "breakeven_warning": breakeven_message(spread_bps, be) if below else None,
    }


def breakeven_flags(settings: BreakevenTerms) -> dict[str, Any]:
    """Result fields for a backtest's summary: spread, break-even, flag and warning (or None)."""
    flags = breakeven_flags_for(
        quoted_spread_bps(settings.strategy),
        float(settings.fees.maker_fee_bps),
        float(settings.fees.slippage_bps),
        float(settings.fees.profit_bps),
    )
    if flags["below_breakeven"]:
        flags["breakeven_warning"] = breakeven_message(flags["spread_bps"], flags["breakeven_bps"], settings.fees)
    return flags
