"""The run summary: the project's public result record (JSON and a table).

All money fields are in the quote currency (USDT for BTC/USDT), as exact decimal
strings with 8 decimals; quantities (``volume_base``, ``final_inventory``,
``max_abs_inventory``) in the base currency as plain decimals (``0``, ``0.03``; never
``0E-8``). ``flat_at_stop`` is False when the run ended holding inventory.
``events`` follows the project definition (levels of depth diffs and snapshots
plus trades; best-bid/ask messages not counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mmbot.domain.instrument import plain
from mmbot.engine.engine import Engine
from mmbot.portfolio.metrics import METRIC_FIELDS, fill_rate

SUMMARY_FIELDS = (
    "run_id",
    "events",
    "book_updates",
    "trades_seen",
    "quotes",
    "orders_placed",
    "orders_cancelled",
    "fills",
    "bid_fills",
    "ask_fills",
    "fill_rate",
    "volume_base",
    "gross_pnl",
    "fees_paid",
    "net_pnl",
    "max_abs_inventory",
    "final_inventory",
    "open_orders",
    "wall_seconds",
    "events_per_second",
)
# Added by runs that keep a run record (paper, L2 and bar backtests): mmbot.portfolio.metrics.
METRIC_SUMMARY_FIELDS = METRIC_FIELDS


def _q(value: Decimal) -> str:
    return f"{value:.8f}"


def build_summary(
    engine: Engine,
    *,
    run_id: str,
    wall_seconds: float,
    open_orders: int,
    extra: dict[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary of an engine run; ``metrics`` are :meth:`Performance.fields` of the run record."""
    ledger = engine.ledger
    inst = engine.instrument
    mark = engine.mark_ticks()
    gross = ledger.gross_pnl(mark)
    net = gross - ledger.fees_paid
    placed = engine.om.placed
    filled_orders = len(engine.filled_orders)
    markouts = {
        f"markout_{h // 1_000_000_000}s_bps": (None if (m := engine.markouts.mean_bps(h)) is None else round(m, 4))
        for h in engine.markouts.horizons_ns
    }
    summary: dict[str, Any] = {
        "run_id": run_id,
        "symbol": engine.symbol,
        "quote_ccy": inst.quote_ccy,
        "events": engine.events_count,
        "book_updates": engine.book_updates,
        "trades_seen": engine.trades_seen,
        "quotes": engine.quotes,
        "orders_placed": placed,
        "orders_cancelled": engine.om.cancelled,
        "fills": ledger.fills,
        "bid_fills": ledger.bid_fills,
        "ask_fills": ledger.ask_fills,
        "filled_orders": filled_orders,
        "fill_rate": round(fill_rate(filled_orders, placed), 6),
        "volume_base": plain(inst.qty(ledger.volume_lots)),
        "volume_quote": _q(ledger.volume_notional),
        "gross_pnl": _q(gross),
        "fees_paid": _q(ledger.fees_paid),
        "net_pnl": _q(net),
        "max_abs_inventory": plain(inst.qty(ledger.max_abs_position_lots)),
        "final_inventory": plain(inst.qty(ledger.position_lots)),
        # A run that ends holding inventory says so (the status line's last line too).
        "flat_at_stop": ledger.position_lots == 0,
        "cash": _q(ledger.cash),
        "mark_price": format(inst.price(mark), "f"),
        "open_orders": open_orders,
        "wall_seconds": round(wall_seconds, 3),
        "events_per_second": round(engine.events_count / wall_seconds, 1) if wall_seconds > 0 else 0.0,
        "risk_state": engine.gate.state.name,
        "risk_reasons": list(engine.gate.reasons),
        "kill_switch_engaged": engine.gate.kill_switch_engaged,
        "risk_denials": engine.denials,
        "risk_denials_by_reason": dict(sorted(engine.gate.denials.items())),
        # State changes with their reasons and cause (the last 1000; the total counts all).
        "risk_transitions": [t.as_dict() for t in engine.gate.transitions],
        "risk_transitions_total": engine.gate.transitions_total,
        "fill_reasons": dict(sorted(engine.fill_reasons.items())),
        **markouts,
        # Net PnL split into spread, adverse selection, inventory, fees, rebates (exact sum).
        "pnl_attribution": engine.attribution.result(mark).fields(),
    }
    if metrics:
        summary.update(metrics)
    if extra:
        summary.update(extra)
    return summary
