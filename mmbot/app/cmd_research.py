"""``mmbot report RUN_OR_SUMMARY`` and the bar backtest behind ``mmbot backtest --bars``.

    mmbot backtest --bars bundled --config config/profiles/seed-bars.yaml --out reports/seed-bars --report
    mmbot report reports/seed-bars            # or .../summary.json, or a --summary-json file

Every run (paper, L2 backtest, bar backtest) leaves a run record
(:mod:`mmbot.research.record`); the report is built from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from mmbot.app.settings import Settings, make_run_id
from mmbot.errors import DataError


def register(app: typer.Typer) -> None:
    from mmbot.app.cli import console, guarded

    @app.command("report")
    @guarded
    def report(
        run: Annotated[str, typer.Argument(help="run directory, its summary.json, or a --summary-json file of a run")],
        out: Annotated[str | None, typer.Option("--out", help="directory for report.html/report.png (default: the run directory)")] = None,
        config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (logging settings)")] = None,
    ) -> None:
        """Write the HTML report (charts, self-contained) and a PNG of the main chart; print their paths."""
        from mmbot.app.settings import load_settings
        from mmbot.observability.logging import configure_logging

        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        html_path, png_path = make_report(run, out)
        console.print(str(html_path), highlight=False, soft_wrap=True)
        console.print(str(png_path), highlight=False, soft_wrap=True)


def make_report(run: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    from mmbot.research.record import load_record
    from mmbot.research.report import write_report

    return write_report(load_record(run), out)


def recorder_factory(settings: Settings, sink: list[Any], *, force: bool = False) -> Callable[[Any], Any] | None:
    """``recorder_for`` of :func:`mmbot.app.backtest_cmd.run_l2_backtest` (None when recording is off)."""
    if not (settings.record.enabled or force):
        return None

    def make(engine: Any) -> Any:
        from mmbot.research.record import SeriesRecorder

        recorder = SeriesRecorder(
            engine, settings.record.interval_ms, settings.strategy.max_inventory, settings.record.neutral_band
        )
        sink.append(recorder)
        return recorder

    return make


def write_l2_record(
    settings: Settings, summary: dict[str, Any], recorders: list[Any], out: str | None, paths: list[str]
) -> Path | None:
    """Write the run record of an L2 run (backtest or paper) into ``out`` or record.dir/<run_id>."""
    if not recorders:
        return None
    s = settings.strategy
    summary.setdefault("data_source", [str(p) for p in paths])
    summary["max_inventory_limit"] = s.max_inventory
    summary["parameters"] = {
        "model": s.model, "spread_bps": s.spread_bps, "order_size": s.order_size, "max_inventory": s.max_inventory,
        "skew_factor": s.skew_factor, "min_requote_interval_ms": s.min_requote_interval_ms,
        "fill_model": settings.sim.fill_model, "maker_fee_bps": str(settings.fees.maker_fee_bps),
    }  # fmt: skip
    directory = Path(out) if out else Path(settings.record.dir) / str(summary["run_id"])
    try:
        return recorders[0].write(directory, summary)  # type: ignore[no-any-return]
    except OSError as exc:
        if out:
            raise DataError(f"cannot write the run record to {directory}: {exc}") from exc
        # A paper run must still stop cleanly and write its summary.
        structlog.get_logger("mmbot.record").warning("run_record_not_written", dir=str(directory), error=str(exc))
        return None


def print_report(record_dir: str | Path) -> tuple[Path, Path]:
    from mmbot.app.cli import console

    html_path, png_path = make_report(record_dir)
    console.print(f"report: {html_path}", highlight=False, soft_wrap=True)
    console.print(f"chart:  {png_path}", highlight=False, soft_wrap=True)
    return html_path, png_path


def resolve_bars_path(settings: Settings, bars: str | None) -> Path:
    from mmbot.research.bars import bundled_bars_path

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
    from mmbot.app.wiring import build_instrument
    from mmbot.portfolio.metrics import fill_rate
    from mmbot.research.bars import BarFees, BarRules, bar_performance, check_bars, load_bars, run_bar_backtest
    from mmbot.strategy.simple import SimpleParams

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
    from mmbot.app.cli import console
    from mmbot.app.runner import write_json_atomic
    from mmbot.research.record import bar_tables, write_record

    started = time.perf_counter()
    run_id = make_run_id(settings)
    bars_path = resolve_bars_path(settings, bars)
    summary, result, bar_data = bar_summary(settings, run_id=run_id, bars_path=bars_path, wall_seconds=0.0)
    summary["wall_seconds"] = round(time.perf_counter() - started, 3)
    from mmbot.strategy.breakeven import breakeven_flags

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
