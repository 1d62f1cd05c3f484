"""``--fills-json PATH``: the fill list of a run, fill by fill, with markouts.

An observer of engine events (it never steers): it keeps every ``fill`` event and
attaches the ``markout`` events that resolve later (``markout_1s_bps``...). Written
by both ``mmbot backtest`` and ``mmbot run`` so the two code paths can be compared
fill by fill. Prices are exact decimal strings in the quote currency, quantities in
the base currency; ``ts_ns`` is capture time.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mmbot.domain.engine_events import EngineEvent, FillBooked, MarkoutResolved
from mmbot.domain.instrument import Instrument


class FillLog:
    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.fills: list[dict[str, Any]] = []
        self._by_index: dict[int, dict[str, Any]] = {}

    def observe(self, events: Sequence[EngineEvent]) -> None:
        inst = self.instrument
        for ev in events:
            kind = type(ev)
            if kind is FillBooked:
                f: FillBooked = ev  # type: ignore[assignment]
                record: dict[str, Any] = {
                    "ts_ns": f.ts_ns,
                    "client_order_id": f.client_order_id,
                    "side": f.side,
                    "price": f"{inst.price(f.price):f}",
                    "qty": f"{inst.qty(f.qty):f}",
                    "leaves": f"{inst.qty(f.leaves):f}",
                    "fee": f"{Decimal(f.fee):f}",
                    "liquidity": f.liquidity,
                    "reason": f.reason,
                    "queue_ahead_at_placement": f"{inst.qty(f.queue_ahead):f}",
                    "position": f"{inst.qty(f.position):f}",
                }
                self.fills.append(record)
                self._by_index[f.fill_index] = record
            elif kind is MarkoutResolved:
                m: MarkoutResolved = ev  # type: ignore[assignment]
                target = self._by_index.get(m.fill_index)
                if target is not None:
                    target[f"markout_{m.horizon_ns // 1_000_000_000}s_bps"] = round(m.bps, 6)

    def document(self, run_id: str, mode: str) -> dict[str, Any]:
        return {"run_id": run_id, "mode": mode, "symbol": self.instrument.symbol, "fills": self.fills}
