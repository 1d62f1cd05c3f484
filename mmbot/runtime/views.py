"""What ``mmbot ctl orders | fills | pnl`` show: JSON views of a running node's engines.

Served by the admin endpoint (:mod:`mmbot.runtime.admin`); every price and quantity is a
plain decimal string (``0``, never ``0E-8``), money in the quote currency with 8
decimals, times as integer ns of the engines' clock (capture time on a replay, the wall
clock live) plus an ISO UTC rendering.

- orders: our open orders per symbol (client order id, side, price, quantity, filled,
  leaves, status, level, age in seconds of engine time);
- fills: the last ``N`` fills of the run across symbols (newest last), kept in a ring
  of :data:`RECENT_FILLS` per node from the engines' ``FillBooked`` events;
- pnl: per symbol realised PnL net of fees (R - fees), unrealised at the mark
  (q x (M - A)), fees, net = realised + unrealised, position, average entry, mark,
  traded volume; exact (the ledger's fractions) rounded to 8 decimals for display.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from mmbot.domain.engine_events import FillBooked
from mmbot.domain.instrument import Instrument, plain, price_text
from mmbot.engine.engine import Engine
from mmbot.runtime.status_line import iso_utc

RECENT_FILLS = 1000


def _money(value: Fraction | Decimal) -> str:
    return f"{Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else value:.8f}"


class OperatorViews:
    def __init__(self, engines: Callable[[], list[Engine]], now_ns: Callable[[], int]) -> None:
        self.engines = engines
        self.now_ns = now_ns
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_FILLS)
        self.fills_seen = 0

    def fill_observer(self, instrument: Instrument) -> Callable[[FillBooked], None]:
        """Subscribe the result to a lane's bus for ``FillBooked``."""

        def on_fill(event: FillBooked) -> None:
            self.fills_seen += 1
            self.recent.append({
                "ts_ns": event.ts_ns, "time": iso_utc(event.ts_ns), "symbol": instrument.symbol,
                "client_order_id": event.client_order_id, "side": event.side,
                "price": price_text(instrument, event.price), "qty": plain(instrument.qty(event.qty)),
                "fee": _money(Decimal(event.fee)), "liquidity": event.liquidity, "reason": event.reason,
                "position": plain(instrument.qty(event.position)),
            })  # fmt: skip

        return on_fill

    def orders(self) -> dict[str, Any]:
        now = self.now_ns()
        rows = []
        for engine in self.engines():
            inst = engine.instrument
            for order in sorted(engine.om.orders.values(), key=lambda o: (-o.side.value, o.level, o.client_order_id)):
                rows.append({
                    "symbol": inst.symbol, "client_order_id": order.client_order_id, "side": order.side.name,
                    "price": price_text(inst, order.price_ticks), "qty": plain(inst.qty(order.qty_lots)),
                    "filled": plain(inst.qty(order.filled_lots)), "leaves": plain(inst.qty(order.leaves_lots)),
                    "status": order.status.name, "level": order.level,
                    "age_s": round((now - order.ts_created_ns) / 1e9, 3) if order.ts_created_ns else None,
                })  # fmt: skip
        return {"orders": rows, "count": len(rows), "ts_ns": now}

    def fills(self, last: int) -> dict[str, Any]:
        rows = list(self.recent)[-last:] if last > 0 else []
        return {"fills": rows, "shown": len(rows), "total": self.fills_seen, "kept": RECENT_FILLS}

    def pnl(self) -> dict[str, Any]:
        rows = []
        for engine in self.engines():
            inst = engine.instrument
            ledger = engine.ledger
            mark = engine.mark_ticks()
            realized = ledger.realized_pnl()
            unrealized = ledger.unrealized_pnl(mark)
            entry = ledger.avg_entry_ticks
            rows.append({
                "symbol": inst.symbol, "quote_ccy": inst.quote_ccy,
                "position": plain(ledger.position), "avg_entry": None if entry is None else format(
                    (Decimal(entry.numerator) / Decimal(entry.denominator) * inst.tick_size).quantize(inst.tick_size / 100), "f"),
                "mark": price_text(inst, mark), "realized_pnl": _money(realized), "unrealized_pnl": _money(unrealized),
                "fees_paid": _money(ledger.fees_paid), "net_pnl": _money(engine.net_pnl()),
                "volume_base": plain(inst.qty(ledger.volume_lots)), "volume_quote": _money(ledger.volume_notional),
                "fills": ledger.fills,
            })  # fmt: skip
        return {"symbols": rows}
