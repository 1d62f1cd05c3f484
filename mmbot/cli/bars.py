"""The bar backtest behind ``mmbot backtest --bars`` (OHLCV bars, mmbot.research.bars)."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from mmbot.cli.common import console, print_report, write_json_atomic
from mmbot.config.settings import Settings, make_run_id
from mmbot.portfolio.metrics import fill_rate
from mmbot.research.bars import (
    BarFees,
    BarRules,
    bar_attribution,
    bar_performance,
    bundled_bars_path,
    check_bars,
    load_bars,
    run_bar_backtest,
)
from mmbot.research.record import bar_tables, write_record
from mmbot.strategy.breakeven import breakeven_flags
from mmbot.strategy.simple import SimpleParams
from mmbot.wiring import build_instrument


def resolve_bars_path(settings: Settings, bars: str | None) -> Path:
    if bars in (None, "", "bundled"):
        return Path(settings.data.bars_path) if (bars is None and settings.data.bars_path) else bundled_bars_path()
    return Path(bars)


def bar_summary(
    settings: Settings,
    *,
    run_id: str,
    bars_path: Path,
    wall_seconds: float,
) -> tuple[dict[str, Any], Any, Any]:
    """Run the reference bar backtest from settings; return (summary, result, bars)."""
    bars = load_bars(bars_path)
    quality = check_bars(bars)
    s = settings.strategy
    params = SimpleParams(
        spread_bps=s.spread_bps, order_size=s.order_size, max_inventory=s.max_inventory,
        skew_factor=s.skew_factor, update_freq=s.update_freq,
    )  # fmt: skip
    rules = BarRules(
        fill_rule=settings.backtest.fill_rule, fill_semantics=settings.backtest.fill_semantics, cross_policy=s.cross_policy
    )
    fees = BarFees(maker_fee_bps=settings.fees.maker_fee_bps, slippage_bps=settings.fees.slippage_bps)
    inst = build_instrument(settings)
    started = time.perf_counter()
    result = run_bar_backtest(bars, params, fees, rules, inst)
    perf = bar_performance(
        result, bars, sharpe_interval_s=settings.backtest.sharpe_interval_s, neutral_band=settings.record.neutral_band
    )
    wall = wall_seconds + time.perf_counter() - started
    ledger = result.ledger
    assert ledger is not None
    last_close = result.close_ticks[-1]
    gross = ledger.gross_pnl(last_close)
    net = gross - ledger.fees_paid - result.slippage_paid
    fills = len(result.fills)

    def q(v: Decimal) -> str:
        return f"{v:.8f}"

    markouts = {
        f"markout_{h // 1_000_000_000}s_bps": (None if (m := result.markout_mean_bps(h)) is None else round(m, 4))
        for h in result.markout_horizons_ns
    }
    summary: dict[str, Any] = {
        "run_id": run_id,
        "mode": "bar_backtest",
        "symbol": inst.symbol,
        "quote_ccy": inst.quote_ccy,
        "bars_source": str(bars_path),
        **quality.fields(),
        "data_notes": quality.lines(),
        "parameters": {
            "spread_bps": s.spread_bps, "max_inventory": s.max_inventory, "order_size": s.order_size,
            "skew_factor": s.skew_factor, "update_freq": s.update_freq, "cross_policy": s.cross_policy,
            "fill_rule": rules.fill_rule, "fill_semantics": rules.fill_semantics,
            "maker_fee_bps": str(fees.maker_fee_bps), "slippage_bps": str(fees.slippage_bps),
        },
        "events": len(bars),
        "quotes": result.orders_placed,
        "orders_placed": result.orders_placed,
        "fills": fills,
        "bid_fills": result.bid_fills,
        "ask_fills": result.ask_fills,
        "filled_orders": fills,  # a bar fill is always the whole order
        "fill_rate": round(fill_rate(fills, result.orders_placed), 6),
        "volume_base": str(inst.qty(ledger.volume_lots)),
        "volume_quote": q(ledger.volume_notional),
        "gross_pnl": q(gross),
        "fees_paid": q(ledger.fees_paid),
        "slippage_paid": q(result.slippage_paid),
        "net_pnl": q(net),
        "max_abs_inventory": str(inst.qty(ledger.max_abs_position_lots)),
        "final_inventory": str(inst.qty(ledger.position_lots)),
        "max_inventory_limit": s.max_inventory,
        "cash": q(ledger.cash),
        "mark_price": str(inst.price(last_close)),
        "open_orders": int(result.bid_ticks[-1] > 0) + int(result.ask_ticks[-1] > 0),
        "wall_seconds": round(wall, 3),
        "bars_per_second": round(len(bars) / wall, 1) if wall > 0 else 0.0,
        **markouts,
        **perf.fields(),
        "pnl_attribution": bar_attribution(result, bars).fields(),
    }
    return summary, result, bars


def run_bar_backtest_command(
    settings: Settings,
    *,
    bars: str | None,
    summary_json: str | None,
    out: str | None,
    report: bool,
    print_summary: Callable[[dict[str, Any], str], None],
) -> None:
    """``mmbot backtest --bars PATH|bundled``: summary, run record, optional report."""
    started = time.perf_counter()
    run_id = make_run_id(settings)
    bars_path = resolve_bars_path(settings, bars)
    summary, result, bar_data = bar_summary(settings, run_id=run_id, bars_path=bars_path, wall_seconds=0.0)
    summary["wall_seconds"] = round(time.perf_counter() - started, 3)
    summary.update(breakeven_flags(settings))  # flagged, not refused, in backtests
    if summary["below_breakeven"]:
        console.print(f"warning: {summary['breakeven_warning']}", highlight=False, markup=False, soft_wrap=True)
    for line in summary["data_notes"]:
        console.print(line, highlight=False, soft_wrap=True)
    record_dir = Path(out) if out else Path(settings.record.dir) / run_id
    if settings.record.enabled or out or report:
        series, fills = bar_tables(result, bar_data)
        write_record(
            record_dir, summary, series, fills, kind="bars", interval_s=bar_data.interval_ms / 1000,
            markout_horizons_s=[h / 1e9 for h in result.markout_horizons_ns],
        )  # fmt: skip
    if summary_json:
        write_json_atomic(summary_json, summary)
    print_summary(summary, "bar backtest summary")
    if report:
        print_report(record_dir)
