"""Break-even spread (the seed's formula).

    breakeven_spread_bps = 2 * fee_bps_per_side + slippage_bps + profit_bps

Example from the seed: fee 5 bps per side, slippage 2, desired profit 10 ->
22 bps. A market maker pays the maker fee on both legs of a round trip; a maker
rebate (negative fee) lowers the break-even.
"""

from __future__ import annotations

from typing import Any


def breakeven_spread_bps(fee_bps_per_side: float, slippage_bps: float, profit_bps: float) -> float:
    return 2.0 * fee_bps_per_side + slippage_bps + profit_bps


def check_breakeven_settings(settings: Any) -> str | None:
    """A message when the configured spread is below break-even, else None."""
    fees = settings.fees
    be = breakeven_spread_bps(float(fees.maker_fee_bps), float(fees.slippage_bps), float(fees.profit_bps))
    spread = float(settings.strategy.spread_bps)
    if spread < be:
        return (
            f"strategy.spread_bps {spread:g} is below the break-even spread {be:g} bps "
            f"(2 x maker_fee_bps {fees.maker_fee_bps} + slippage_bps {fees.slippage_bps} + profit_bps {fees.profit_bps})"
        )
    return None
