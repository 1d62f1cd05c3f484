"""``--fills-json PATH``: the fill list of a run, fill by fill, with markouts.

An observer of engine events (it never steers): it keeps every ``fill`` event and
attaches the ``markout`` events that resolve later (``markout_1s_bps``...). Written
by both ``mmbot backtest`` and ``mmbot run`` so the two code paths can be compared
fill by fill. Prices are exact decimal strings in the quote currency, quantities in
the base currency; ``ts_ns`` is capture time.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mmbot.domain.instrument import Instrument


class FillLog:
    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.fills: list[dict[str, Any]] = []
        self._by_index: dict[int, dict[str, Any]] = {}

    def observe(self, events: list[Any]) -> None:
        inst = self.instrument
        for ev in events:
            kind = ev.kind
            if kind == "fill":
                p = ev.payload
                record: dict[str, Any] = {
                    "ts_ns": ev.ts_ns,
                    "client_order_id": p["client_order_id"],
                    "side": p["side"],
                    "price": f"{inst.price(p['price']):f}",
                    "qty": f"{inst.qty(p['qty']):f}",
                    "leaves": f"{inst.qty(p['leaves']):f}",
                    "fee": f"{Decimal(p['fee']):f}",
                    "liquidity": p["liquidity"],
                    "reason": p["reason"],
                    "queue_ahead_at_placement": f"{inst.qty(p['queue_ahead']):f}",
                    "position": f"{inst.qty(p['position']):f}",
                }
                self.fills.append(record)
                index = p.get("fill_index")
                if index is not None:
                    self._by_index[index] = record
            elif kind == "markout":
                p = ev.payload
                target = self._by_index.get(p["fill_index"])
                if target is not None:
                    target[f"markout_{p['horizon_ns'] // 1_000_000_000}s_bps"] = round(p["bps"], 6)

    def document(self, run_id: str, mode: str) -> dict[str, Any]:
        return {"run_id": run_id, "mode": mode, "symbol": self.instrument.symbol, "fills": self.fills}
