"""Folding journal records into state: the summary, crash recovery, wash-trade check.

The fold replays the journal's ``fill`` records through the same
:class:`~mmbot.portfolio.ledger.Ledger` the engine uses, so position, cash, fees,
volume and PnL are recomputed exactly (integer ticks x lots, Decimal money)::

    gross_pnl = cash + position x mark      net_pnl = gross_pnl - fees_paid

with ``mark`` = the engine's mark (mid, in ticks) stored in the ``run_stop`` record,
or, for an unsealed journal, the last mid journaled with a fill.

Open orders: ``place`` opens an order, ``ack`` marks it resting (with the queue
ahead at arrival), ``fill`` reduces it (gone at leaves 0), ``cancelled``/``reject``
close it; a ``recovery`` record lists orders dropped at a restart.

Wash-trade check (expected: nothing found):

* a fill against our own order: a taker fill at a price our own resting opposite
  order was offering, or two of our fills on opposite sides at the same capture
  time and price;
* an order that would have crossed our own resting order: a buy priced at or
  above our lowest resting ask, or a sell at or below our highest resting bid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mmbot.domain.instrument import Instrument, plain
from mmbot.domain.orders import Liquidity, Side
from mmbot.portfolio.attribution import AttributionTracker
from mmbot.portfolio.ledger import Ledger, mark_ticks_from_mid

COMPARED_FIELDS = (
    "fills",
    "bid_fills",
    "ask_fills",
    "filled_orders",
    "volume_base",
    "volume_quote",
    "fees_paid",
    "gross_pnl",
    "net_pnl",
    "final_inventory",
    "max_abs_inventory",
    "cash",
)


@dataclass
class OpenOrder:
    client_order_id: str
    side: Side
    price_ticks: int
    qty_lots: int
    filled_lots: int = 0
    level: int = 0
    is_taker: bool = False
    acked: bool = False
    queue_ahead_lots: int = 0
    ts_created_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "side": self.side.name,
            "price": self.price_ticks,
            "qty": self.qty_lots,
            "filled": self.filled_lots,
            "level": self.level,
            "taker": self.is_taker,
            "acked": self.acked,
            "queue_ahead": self.queue_ahead_lots,
        }


def instrument_from(payload: dict[str, Any]) -> Instrument:
    return Instrument(
        symbol=payload["symbol"],
        venue_symbol=payload["venue_symbol"],
        base=payload["base"],
        quote_ccy=payload["quote_ccy"],
        tick_size=Decimal(payload["tick_size"]),
        step_size=Decimal(payload["step_size"]),
        min_notional=Decimal(payload["min_notional"]),
        qty_unit=Decimal(payload["qty_unit"]),
        # Perpetuals (issue 32); journals written before them hold spot instruments.
        kind=payload.get("kind", "spot"),
        contract_size=Decimal(payload.get("contract_size", "1")),
        settle=payload.get("settle", ""),
    )


def instrument_json(inst: Instrument) -> dict[str, Any]:
    return {
        "symbol": inst.symbol,
        "venue_symbol": inst.venue_symbol,
        "base": inst.base,
        "quote_ccy": inst.quote_ccy,
        "tick_size": str(inst.tick_size),
        "step_size": str(inst.step_size),
        "min_notional": str(inst.min_notional),
        "kind": inst.kind,
        "contract_size": str(inst.contract_size),
        "settle": inst.settle,
        "qty_unit": str(inst.qty_unit),
    }


def _q(value: Decimal) -> str:
    return f"{value:.8f}"


@dataclass
class JournalState:
    instrument: Instrument | None = None
    ledger: Ledger | None = None
    # PnL attribution from the journal: its mids are those journaled with fills (the
    # engine's mid when the fill was journaled, which can be a later event's) and marks,
    # so the split can differ from the run's; the parts still sum to net PnL exactly.
    attribution: AttributionTracker | None = None
    open_orders: dict[str, OpenOrder] = field(default_factory=dict)
    last_capture_ns: int | None = None
    last_mid_ticks: float | None = None
    run_start: dict[str, Any] | None = None
    last_run_start: dict[str, Any] | None = None  # the latest run (a crash-resume adds one per restart)
    run_stop: dict[str, Any] | None = None
    runs: int = 0
    places: int = 0
    cancelled: int = 0
    denials: int = 0
    rejects: int = 0
    filled_orders: set[str] = field(default_factory=set)
    fill_reasons: dict[str, int] = field(default_factory=dict)
    risk_reasons: list[str] = field(default_factory=list)
    risk_state: str = "ACTIVE"
    fill_keys: set[tuple[str, int, int, int]] = field(default_factory=set)
    duplicate_fills: list[str] = field(default_factory=list)
    self_trades: list[str] = field(default_factory=list)
    crossing_orders: list[str] = field(default_factory=list)
    _fill_ts: int = -1
    _fill_sides: dict[int, set[str]] = field(default_factory=dict)
    max_coid_seq: dict[str, int] = field(default_factory=dict)
    records: int = 0

    # --- the fold -----------------------------------------------------------------------
    def apply(self, rec: dict[str, Any]) -> None:
        self.records += 1
        rtype = rec["type"]
        p = rec["payload"]
        ts = rec.get("ts_capture_ns")
        if isinstance(ts, int) and rtype not in ("run_start", "run_stop", "recovery", "repair"):
            if self.last_capture_ns is None or ts > self.last_capture_ns:
                self.last_capture_ns = ts
        handler = getattr(self, "_on_" + rtype, None)
        if handler is not None:
            handler(p, rec)

    def _on_run_start(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        self.runs += 1
        self.last_run_start = p
        if self.run_start is None:
            self.run_start = p
            self.instrument = instrument_from(p["instrument"])
            self.ledger = Ledger(self.instrument)
            self.attribution = AttributionTracker(self.instrument.tick_size * self.instrument.qty_unit, self.instrument.quote_ccy)

    def _on_run_stop(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        self.run_stop = p

    def _on_place(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        self.places += 1
        coid = p["client_order_id"]
        side = Side[p["side"]]
        price = p["price"]
        is_taker = bool(p.get("taker", False))
        own_opposite = [o.price_ticks for o in self.open_orders.values() if o.side is side.opposite and not o.is_taker]
        if own_opposite:
            if side is Side.BUY and price >= min(own_opposite):
                self.crossing_orders.append(f"seq {rec['seq']}: buy {coid} at {price} ticks would cross our own ask at {min(own_opposite)}")
            elif side is Side.SELL and price <= max(own_opposite):
                self.crossing_orders.append(f"seq {rec['seq']}: sell {coid} at {price} ticks would cross our own bid at {max(own_opposite)}")
        self.open_orders[coid] = OpenOrder(
            client_order_id=coid,
            side=side,
            price_ticks=price,
            qty_lots=p["qty"],
            level=p.get("level", 0),
            is_taker=is_taker,
            ts_created_ns=rec.get("ts_capture_ns") or 0,
        )
        prefix, _, tail = coid.rpartition("-")
        try:
            n = int(tail, 16)
        except ValueError:
            return
        if n > self.max_coid_seq.get(prefix, 0):
            self.max_coid_seq[prefix] = n

    def _on_ack(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        order = self.open_orders.get(p["client_order_id"])
        if order is not None:
            order.acked = True
            order.queue_ahead_lots = p.get("queue_ahead", 0)

    def _on_funding(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        """A perpetual's funding payment (FundingBooked): the ledger books it as the run did."""
        if self.ledger is not None:
            self.ledger.book_funding(Decimal(p["payment"]))

    def _on_fill(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        if self.ledger is None:
            return
        coid = p["client_order_id"]
        side = Side[p["side"]]
        price = p["price"]
        qty = p["qty"]
        ts = rec.get("ts_capture_ns") or 0
        key = (coid, ts, qty, p["leaves"])
        if key in self.fill_keys:
            self.duplicate_fills.append(f"seq {rec['seq']}: fill of {coid} at {ts} repeated")
        self.fill_keys.add(key)
        # Wash trade: a taker fill where our own resting opposite order offered that price.
        if p.get("liquidity") == Liquidity.TAKER.value:
            for o in self.open_orders.values():
                if o.side is side.opposite and not o.is_taker and o.client_order_id != coid:
                    if (side is Side.BUY and o.price_ticks <= price) or (side is Side.SELL and o.price_ticks >= price):
                        self.self_trades.append(f"seq {rec['seq']}: taker fill {coid} at {price} against our own resting {o.client_order_id}")
                        break
        if ts != self._fill_ts:
            self._fill_ts = ts
            self._fill_sides = {}
        sides = self._fill_sides.setdefault(price, set())
        sides.add(side.name)
        if len(sides) == 2:
            self.self_trades.append(f"seq {rec['seq']}: our buy and sell filled at the same time and price ({price} ticks at {ts})")
        self.ledger.apply_fill(side, price, qty, Decimal(p["fee"]))
        if self.attribution is not None:
            fill_mid = p.get("mid_ticks")
            if fill_mid is not None:
                self.attribution.on_mid(ts, fill_mid)
            self.attribution.on_fill(ts, int(side), price, qty, Decimal(p["fee"]), fill_mid)
        self.filled_orders.add(coid)
        reason = p.get("reason", "")
        self.fill_reasons[reason] = self.fill_reasons.get(reason, 0) + 1
        mid = p.get("mid_ticks")
        if mid is not None:
            self.last_mid_ticks = mid
        order = self.open_orders.get(coid)
        if order is not None:
            order.filled_lots += qty
            if p["leaves"] == 0 or order.filled_lots >= order.qty_lots:
                del self.open_orders[coid]

    def _on_cancelled(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        if self.open_orders.pop(p["client_order_id"], None) is not None:
            self.cancelled += 1

    def _on_reject(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        self.rejects += 1
        self.open_orders.pop(p["client_order_id"], None)

    def _on_deny(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        self.denials += 1

    def _on_risk(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        self.risk_state = p.get("new", self.risk_state)
        self.risk_reasons = list(p.get("reasons", []))

    def _on_mark(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        if p.get("mid_ticks") is not None:
            self.last_mid_ticks = p["mid_ticks"]
            if self.attribution is not None and isinstance(rec.get("ts_capture_ns"), int):
                self.attribution.on_mid(rec["ts_capture_ns"], p["mid_ticks"])

    def _on_recovery(self, p: dict[str, Any], rec: dict[str, Any]) -> None:
        for coid in p.get("dropped_orders", []):
            self.open_orders.pop(coid, None)

    # --- results ------------------------------------------------------------------------
    def mark_ticks(self) -> int:
        if self.run_stop is not None and self.run_stop.get("mark_ticks") is not None:
            return int(self.run_stop["mark_ticks"])
        return mark_ticks_from_mid(self.last_mid_ticks) if self.last_mid_ticks is not None else 0

    def summary(self) -> dict[str, Any]:
        """The recomputed summary fields (formatted like the run's own summary)."""
        if self.ledger is None or self.instrument is None:
            return {}
        ledger = self.ledger
        inst = self.instrument
        mark = self.mark_ticks()
        gross = ledger.gross_pnl(mark)
        return {
            "symbol": inst.symbol,
            "quote_ccy": inst.quote_ccy,
            "fills": ledger.fills,
            "bid_fills": ledger.bid_fills,
            "ask_fills": ledger.ask_fills,
            "filled_orders": len(self.filled_orders),
            "volume_base": plain(inst.qty(ledger.volume_lots)),
            "volume_quote": _q(ledger.volume_notional),
            "fees_paid": _q(ledger.fees_paid),
            "gross_pnl": _q(gross),
            "net_pnl": _q(ledger.net_pnl(mark)),  # gross - fees - funding (perpetuals)
            "final_inventory": plain(inst.qty(ledger.position_lots)),
            "max_abs_inventory": plain(inst.qty(ledger.max_abs_position_lots)),
            "cash": _q(ledger.cash),
            "mark_price": str(inst.price(mark)),
            "orders_placed": self.places,
            "open_orders": len(self.open_orders),
            "risk_state": self.risk_state,
            "risk_reasons": self.risk_reasons,
            "runs": self.runs,
            "sealed": self.run_stop is not None,
            "wash_trades": len(self.self_trades),
            "self_crossing_orders": len(self.crossing_orders),
            "duplicate_fills": len(self.duplicate_fills),
            "pnl_attribution": self.attribution.result(mark).fields()
            if self.attribution is not None and inst.kind != "inverse_perp" else None,  # as the run summary
        }

    def compare_with_run(self) -> list[str]:
        """Fields where the recomputed summary differs from the run's own (sealed) summary."""
        if self.run_stop is None:
            return []
        own = self.run_stop.get("summary") or {}
        mine = self.summary()
        return [f"{k}: journal {mine.get(k)!r} != run {own.get(k)!r}" for k in COMPARED_FIELDS if k in own and not _same(own[k], mine.get(k))]


def _same(a: Any, b: Any) -> bool:
    """Equal values; decimal strings by value ("0.03000000" written by older runs == "0.03")."""
    if isinstance(a, str) and isinstance(b, str):
        try:
            return Decimal(a) == Decimal(b)
        except ArithmeticError:
            return a == b
    return bool(a == b)


def fold(records: list[dict[str, Any]]) -> JournalState:
    state = JournalState()
    for rec in records:
        state.apply(rec)
    return state
