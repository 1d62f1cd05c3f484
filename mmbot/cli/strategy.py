"""Strategy commands: ``mmbot breakeven``.

``mmbot breakeven [--config PATH] [--fee-bps F --slippage-bps S --profit-bps P]``
prints ``2 x fee + slippage + profit`` from the config's ``fees`` section (or the
given figures), the spread the config quotes, and whether the daemon would start.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mmbot.cli.common import ConfigOpt, console, guarded, settings_for


def register(app: typer.Typer) -> None:
    @app.command("breakeven")
    @guarded
    def breakeven(
        config: ConfigOpt = None,
        fee_bps: Annotated[float | None, typer.Option("--fee-bps", help="maker fee per side, bps (default: fees.maker_fee_bps)")] = None,
        slippage_bps: Annotated[float | None, typer.Option("--slippage-bps", help="bps (default: fees.slippage_bps)")] = None,
        profit_bps: Annotated[float | None, typer.Option("--profit-bps", help="desired profit, bps (default: fees.profit_bps)")] = None,
    ) -> None:
        """Print the break-even spread (2 x fee + slippage + profit) and compare the configured spread."""
        settings = settings_for(config)
        fees = settings.fees
        fee = float(fees.maker_fee_bps) if fee_bps is None else fee_bps
        slip = float(fees.slippage_bps) if slippage_bps is None else slippage_bps
        profit = float(fees.profit_bps) if profit_bps is None else profit_bps
        from mmbot.strategy.breakeven import (  # engine stack (numpy): not for every mmbot call
            breakeven_spread_bps,
            quoted_spread_bps,
        )
        be = breakeven_spread_bps(fee, slip, profit)
        spread = quoted_spread_bps(settings.strategy)
        out = [
            f"break-even spread: {be:g} bps = 2 x fee {fee:g} + slippage {slip:g} + profit {profit:g}",
            f"configured spread: {spread:g} bps (strategy.model {settings.strategy.model})",
        ]
        if spread < be:
            verdict = "BELOW break-even: mmbot run refuses to start"
            if settings.strategy.allow_below_breakeven:
                verdict = "BELOW break-even: allowed by strategy.allow_below_breakeven"
        else:
            verdict = f"ok: {spread - be:g} bps above break-even"
        out.append(verdict)
        console.print("\n".join(out), highlight=False, markup=False)
