"""The run record: what every run leaves behind for ``mmbot report``.

One directory per run, written by the paper run (``mmbot run``), the L2 backtest
and the bar backtest alike::

    <dir>/summary.json   the run summary (the same dict --summary-json writes), with
                         "record": {kind, version, interval_s, series, fills, orders, risk,
                         markout_horizons_s, risk_state_start, orders_thinned, risk_changes_dropped}
    <dir>/series.csv     one row per sampling interval (L2: ``record.interval_ms`` of capture
                         time; bars: one per bar), the state at the END of the interval:
                         time, mid, bid, ask, inventory, gross_pnl, net_pnl
                         (+ open, high, low for bars; market_bid, market_ask, risk_denials
                         (cumulative gate denials) for L2)
    <dir>/fills.csv      one row per fill, at its exact capture time: time, order_id, side
                         (buy | sell), price, qty, fee (fees + slippage, quote currency),
                         liquidity (maker | taker), reason (the fill rule: trade_through,
                         queue_consumed, book_crossed, ...; "venue" from a real exchange),
                         queue_ahead (base units ahead of the order when it arrived; empty
                         on a real venue, which does not tell),
                         position (base units after the fill), mid_ref, markout_<h>s_bps...
    <dir>/orders.csv     (L2) one row per order: order_id, side, price, qty, level, reason
                         (the quote's), placed, acked, queue_ahead (at the ack), ended,
                         end (filled | cancelled | rejected | open), filled_qty
    <dir>/risk.csv       (L2) one row per risk state change: time, old, new, reasons
                         (``|``-separated), cause; the state at the start is
                         record.risk_state_start

Times are ISO 8601 UTC with nanoseconds (``2024-08-08T23:54:14.371832667Z``; version 1
records held integer ``ts_ns`` and are still read). Prices in the quote currency per
base unit, quantities in base units, money in the quote currency; an empty cell is
"none" (no quote resting, markout horizon not reached, order still open).

Bounded memory (a daemon runs for days): the series halves its resolution at
``max_samples``; the orders table, at ``max_orders``, drops every other finished order
that never filled (orders with fills and open orders are always kept; the count is
record.orders_thinned); risk changes beyond ``MAX_RISK_CHANGES`` are counted, not kept.
The metrics in the summary are computed from exactly these samples and fills by
:func:`mmbot.portfolio.metrics.compute_performance`, so the summary and the report agree.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from mmbot.domain.engine_events import (
    EngineEvent,
    FillBooked,
    MarkoutResolved,
    OrderAcked,
    OrderCancelConfirmed,
    OrderPlaced,
    RiskChanged,
    VenueRejected,
)
from mmbot.engine.engine import Engine
from mmbot.errors import DataError
from mmbot.portfolio.ledger import mark_ticks_from_mid
from mmbot.portfolio.metrics import FillRecord, Performance, compute_performance
from mmbot.research.bars import BarResult, Bars

RECORD_VERSION = 2
MAX_EMPTY_SAMPLES = 64  # intervals without events sampled one by one before the sampler skips
MAX_RISK_CHANGES = 10_000
SUMMARY_FILE = "summary.json"
SERIES_FILE = "series.csv"
FILLS_FILE = "fills.csv"
ORDERS_FILE = "orders.csv"
RISK_FILE = "risk.csv"
SERIES_BASE = ("ts_ns", "mid", "bid", "ask", "inventory", "gross_pnl", "net_pnl")
# Columns holding integer ns in memory and ISO 8601 text in the files.
TIME_COLUMNS = {"ts_ns": "time", "placed_ns": "placed", "acked_ns": "acked", "ended_ns": "ended"}
TEXT_COLUMNS = frozenset({"order_id", "liquidity", "reason", "end", "old", "new", "reasons", "cause"})
SIDE_TEXT = {1: "buy", -1: "sell"}
SIDE_VALUE = {"buy": 1.0, "sell": -1.0}

F64 = npt.NDArray[np.float64]
Cell = float | int | str | None


def iso_ns(ts_ns: int) -> str:
    """``2024-08-08T23:54:14.371832667Z``: UTC, nanoseconds kept (integer arithmetic)."""
    sec, ns = divmod(int(ts_ns), 1_000_000_000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def parse_iso_ns(text: str) -> int:
    """Inverse of :func:`iso_ns` (also reads fewer fraction digits, or none)."""
    body = text.removesuffix("Z")
    whole, _, frac = body.partition(".")
    try:
        sec = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
        ns = int((frac + "000000000")[:9]) if frac else 0
    except ValueError as exc:
        raise DataError(f"time {text!r} is not ISO 8601 UTC (2024-08-08T23:54:14.371832667Z)") from exc
    return sec * 1_000_000_000 + ns


def _cell(v: Cell) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        if math.isinf(v):
            return repr(v)
        # fixed point, 10 decimals, trailing zeros trimmed: 0.00009, never 9e-05
        text = f"{v:.10f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(v)


def _write_csv(path: Path, table: Mapping[str, Sequence[Cell]]) -> None:
    """One CSV, atomically; time columns (int ns) written as ISO text, ``side`` as buy/sell."""
    cols = list(table)
    n = len(table[cols[0]]) if cols else 0
    header = [TIME_COLUMNS.get(c, c) for c in cols]
    columns: list[list[str]] = []
    for c in cols:
        values = table[c]
        if c in TIME_COLUMNS:
            columns.append(["" if v is None else iso_ns(int(v)) for v in values])
        elif c == "side":
            columns.append([SIDE_TEXT.get(int(v), str(v)) if v is not None and v != "" else "" for v in values])
        else:
            columns.append([_cell(v) for v in values])
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(n):
            w.writerow([col[i] for col in columns])
    tmp.replace(path)


def write_record(
    out_dir: str | Path,
    summary: dict[str, Any],
    series: Mapping[str, Sequence[Cell]],
    fills: Mapping[str, Sequence[Cell]],
    *,
    kind: str,
    interval_s: float,
    markout_horizons_s: Sequence[float],
    orders: Mapping[str, Sequence[Cell]] | None = None,
    risk: Mapping[str, Sequence[Cell]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the files; return the directory. ``summary`` gains "record" and "record_dir"."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    summary["record_dir"] = str(d.resolve())
    summary["record"] = {
        "kind": kind,
        "version": RECORD_VERSION,
        "interval_s": interval_s,
        "series": SERIES_FILE,
        "fills": FILLS_FILE,
        "orders": ORDERS_FILE if orders is not None else None,
        "risk": RISK_FILE if risk is not None else None,
        "markout_horizons_s": list(markout_horizons_s),
        **(extra or {}),
    }
    tables = [(SERIES_FILE, series), (FILLS_FILE, fills), (ORDERS_FILE, orders), (RISK_FILE, risk)]
    for name, table in tables:
        if table is not None:
            _write_csv(d / name, table)
    tmp = d / (SUMMARY_FILE + ".tmp")
    tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(d / SUMMARY_FILE)
    return d


@dataclass(frozen=True, slots=True)
class Columns:
    """A CSV read back: numeric columns as float arrays (time columns as ``*_ns``), text
    columns (``TEXT_COLUMNS``, and the exact ISO text of each time column) as tuples of strings."""

    num: dict[str, F64]
    text: dict[str, tuple[str, ...]]
    rows: int

    @staticmethod
    def empty() -> Columns:
        return Columns({}, {}, 0)


@dataclass(frozen=True, slots=True)
class RunRecord:
    dir: Path
    summary: dict[str, Any]
    series: dict[str, F64]
    fills: dict[str, F64]
    fill_text: dict[str, tuple[str, ...]]
    orders: Columns
    risk: Columns

    @property
    def kind(self) -> str:
        return str(self.summary.get("record", {}).get("kind", "unknown"))

    @property
    def interval_s(self) -> float:
        return float(self.summary.get("record", {}).get("interval_s", 1.0))


_TIME_NAMES = {v: k for k, v in TIME_COLUMNS.items()}


def _read_table(path: Path) -> Columns:
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not rows:
        raise DataError(f"{path} is empty (no header)")
    header = rows[0]
    data = rows[1:]
    num: dict[str, F64] = {}
    text: dict[str, tuple[str, ...]] = {}
    try:
        for j, name in enumerate(header):
            cells = [r[j] for r in data]
            if name in TEXT_COLUMNS:
                text[name] = tuple(cells)
            elif name in _TIME_NAMES:
                # float64 ns is ~256 ns coarse at today's epoch: plots use it, the exact text is kept too
                num[_TIME_NAMES[name]] = np.array([float(parse_iso_ns(c)) if c else np.nan for c in cells], dtype=np.float64)
                text[name] = tuple(cells)
            elif name == "side":
                num[name] = np.array([SIDE_VALUE[c] if c in SIDE_VALUE else float(c) for c in cells], dtype=np.float64)
            else:
                num[name] = np.array([float(c) if c != "" else np.nan for c in cells], dtype=np.float64)
    except (ValueError, IndexError, KeyError) as exc:
        raise DataError(f"{path}: malformed row ({exc})") from exc
    return Columns(num, text, len(data))


def load_record(path: str | Path) -> RunRecord:
    """A run directory, its summary.json, or any summary JSON that names its record_dir."""
    p = Path(path)
    if p.is_dir():
        summary_path = p / SUMMARY_FILE
    elif p.is_file():
        summary_path = p
    else:
        raise DataError(f"{p} is neither a run directory nor a summary JSON file")
    if not summary_path.is_file():
        raise DataError(f"{p} holds no {SUMMARY_FILE}; pass a run directory written by mmbot run/backtest")
    try:
        summary = orjson.loads(summary_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{summary_path} is not valid JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise DataError(f"{summary_path} does not hold a summary object")
    d = summary_path.parent
    if not (d / SERIES_FILE).is_file() and summary.get("record_dir"):
        d = Path(summary["record_dir"])
    if not (d / SERIES_FILE).is_file():
        raise DataError(
            f"{summary_path}: no run record next to it ({SERIES_FILE}, {FILLS_FILE}); "
            "it was written with recording disabled (record.enabled: false)"
        )
    fills = _read_table(d / FILLS_FILE)
    optional = {name: _read_table(d / name) if (d / name).is_file() else Columns.empty() for name in (ORDERS_FILE, RISK_FILE)}
    return RunRecord(
        d, summary, _read_table(d / SERIES_FILE).num, fills.num, fills.text, optional[ORDERS_FILE], optional[RISK_FILE]
    )


# --------------------------------------------------------------------------- L2 runs


class SeriesRecorder:
    """Samples an engine's state once per interval of capture time; collects its fills,
    orders and risk state changes at their exact times.

    The driver calls :meth:`advance` with each event's timestamp *before* the event is
    processed (one integer compare per event when no boundary is due), so the sample
    at a boundary is the state after every event before it. Fills, orders and risk
    changes come from the engine's event stream through :meth:`on_events` (an
    observer; it never steers).
    """

    def __init__(
        self,
        engine: Engine,
        interval_ms: float,
        max_inventory: float,
        neutral_band: float = 0.1,
        max_samples: int = 200_000,
        max_orders: int = 200_000,
        queue_known: bool = True,
    ) -> None:
        self.engine = engine
        # A real venue does not say how much rests ahead of us: its queue cells stay empty.
        self.queue_known = queue_known
        self.interval_ns = max(1, int(interval_ms * 1_000_000))
        self.max_inventory = max_inventory
        self.neutral_band = neutral_band
        self.max_samples = max(2, max_samples)
        self.max_orders = max(2, max_orders)
        self.origin_ns = 0
        self.next_ns: int = -1  # first event sets the origin
        self.cols: dict[str, list[float | int | None]] = {
            name: [] for name in (*SERIES_BASE, "market_bid", "market_ask", "risk_denials")
        }
        self.fill_rows: list[_FillRow] = []
        self.fill_index: dict[int, int] = {}  # engine fill index -> row
        self.markouts: dict[tuple[int, int], float] = {}  # (row, horizon ns) -> bps
        self.orders: dict[str, _OrderRow] = {}  # insertion order = placement order
        self.orders_thinned = 0
        self.risk_rows: list[tuple[int, str, str, str, str]] = []
        self.risk_changes_dropped = 0
        self.risk_state_start = engine.gate.state.name
        inst = engine.instrument
        self._tick = float(inst.tick_size)
        self._unit = float(inst.qty_unit)

    def advance(self, ts_ns: int) -> None:
        if self.next_ns < 0:
            self.origin_ns = ts_ns
            self.next_ns = ts_ns + self.interval_ns
            self.risk_state_start = self.engine.gate.state.name
            return
        behind = (ts_ns - self.next_ns) // self.interval_ns
        if behind > MAX_EMPTY_SAMPLES:
            # A discontinuity in the data: the state did not change across it, so one sample
            # at its start and one at the end stand for the empty intervals between (the
            # work is bounded by the data, not by the size of the jump).
            self._sample(self.next_ns)
            self.next_ns += behind * self.interval_ns
        while ts_ns >= self.next_ns:
            self._sample(self.next_ns)
            self.next_ns += self.interval_ns
            if len(self.cols["ts_ns"]) >= self.max_samples:
                self._halve_resolution()

    def _halve_resolution(self) -> None:
        """Keep every other sample and double the interval: a daemon's memory stays bounded.

        The kept samples are those at whole multiples of the new interval from the
        origin, so every sample still holds the state at the end of its interval.
        """
        step = 2 * self.interval_ns
        keep = [i for i, t in enumerate(self.cols["ts_ns"]) if (int(t or 0) - self.origin_ns) % step == 0]
        for name, col in self.cols.items():
            self.cols[name] = [col[i] for i in keep]
        self.interval_ns = step
        self.next_ns = self.origin_ns + ((self.next_ns - self.origin_ns + step - 1) // step) * step

    def _sample(self, ts_ns: int) -> None:
        e = self.engine
        tick = self._tick
        mid = e.mid_ticks
        c = self.cols
        c["ts_ns"].append(ts_ns)
        c["mid"].append(None if mid is None else mid * tick)
        c["bid"].append(None if e.quoted_bid is None else e.quoted_bid * tick)
        c["ask"].append(None if e.quoted_ask is None else e.quoted_ask * tick)
        c["inventory"].append(e.ledger.position_lots * self._unit)
        gross = e.ledger.gross_pnl_float(mark_ticks_from_mid(mid)) if mid is not None else float(e.ledger.cash)
        c["gross_pnl"].append(gross)
        c["net_pnl"].append(gross - float(e.ledger.fees_paid))
        touch = e.touch() if e.book.is_synced else None
        c["market_bid"].append(None if touch is None else touch[0] * tick)
        c["market_ask"].append(None if touch is None else touch[1] * tick)
        c["risk_denials"].append(e.denials)

    def on_events(self, events: Sequence[EngineEvent]) -> None:
        mid = self.engine.mid_ticks
        for ev in events:
            kind = type(ev)
            if kind is FillBooked:
                f: FillBooked = ev  # type: ignore[assignment]
                self.fill_index[f.fill_index] = len(self.fill_rows)
                self.fill_rows.append(
                    _FillRow(
                        ts_ns=f.ts_ns, order_id=f.client_order_id, side=1 if f.side == "BUY" else -1,
                        price=f.price * self._tick, qty=f.qty * self._unit, fee=float(Decimal(f.fee)),
                        liquidity=f.liquidity, reason=f.reason, queue_ahead=f.queue_ahead * self._unit if self.queue_known else None,
                        position=f.position * self._unit, mid_ref=None if mid is None else mid * self._tick,
                    )
                )  # fmt: skip
                order = self.orders.get(f.client_order_id)
                if order is not None:
                    order.filled_lots += f.qty
                    if f.leaves <= 0:
                        order.ended_ns, order.end = f.ts_ns, "filled"
            elif kind is MarkoutResolved:
                m: MarkoutResolved = ev  # type: ignore[assignment]
                row = self.fill_index.get(m.fill_index)
                if row is not None:
                    self.markouts[(row, m.horizon_ns)] = m.bps
            elif kind is OrderPlaced:
                p: OrderPlaced = ev  # type: ignore[assignment]
                if len(self.orders) >= self.max_orders:
                    self._thin_orders()
                self.orders[p.client_order_id] = _OrderRow(
                    side=1 if p.side == "BUY" else -1, price_ticks=p.price, qty_lots=p.qty, level=p.level,
                    reason=p.reason, placed_ns=p.ts_ns,
                )  # fmt: skip
            elif kind is OrderAcked:
                a: OrderAcked = ev  # type: ignore[assignment]
                order = self.orders.get(a.client_order_id)
                if order is not None:
                    order.acked_ns, order.queue_ahead_lots = a.ts_ns, a.queue_ahead if self.queue_known else None
            elif kind is OrderCancelConfirmed or kind is VenueRejected:
                order = self.orders.get(ev.client_order_id)  # type: ignore[attr-defined]
                if order is not None and order.ended_ns is None:
                    order.ended_ns, order.end = ev.ts_ns, "cancelled" if kind is OrderCancelConfirmed else "rejected"
            elif kind is RiskChanged:
                r: RiskChanged = ev  # type: ignore[assignment]
                if len(self.risk_rows) < MAX_RISK_CHANGES:
                    self.risk_rows.append((r.ts_ns, r.old, r.new, "|".join(r.reasons), r.cause))
                else:
                    self.risk_changes_dropped += 1

    def _thin_orders(self) -> None:
        """At ``max_orders``: drop every other finished order that never filled."""
        kept: dict[str, _OrderRow] = {}
        parity = 0
        for coid, order in self.orders.items():
            if order.filled_lots or order.ended_ns is None:
                kept[coid] = order
                continue
            parity ^= 1
            if parity:
                kept[coid] = order
            else:
                self.orders_thinned += 1
        self.orders = kept

    def fill_records(self) -> list[FillRecord]:
        return [FillRecord(ts_ns=r.ts_ns, side=r.side, price=r.price, qty=r.qty, fee=r.fee, mid_ref=r.mid_ref) for r in self.fill_rows]

    def performance(self) -> Performance:
        return compute_performance(
            fills=self.fill_records(),
            inventory=[float(q) for q in self.cols["inventory"] if q is not None],
            net_pnl=[float(v) for v in self.cols["net_pnl"] if v is not None],
            sample_interval_s=self.interval_ns / 1e9,
            max_inventory_limit=self.max_inventory,
            return_period=1,
            neutral_band=self.neutral_band,
            data_start_ns=self.origin_ns if self.next_ns >= 0 else None,  # the first event's capture time
            data_end_ns=max((int(t) for t in self.cols["ts_ns"] if t is not None), default=None),
        )

    def fills_table(self) -> Mapping[str, Sequence[Cell]]:
        rows = self.fill_rows
        table: dict[str, list[Cell]] = {
            "ts_ns": [r.ts_ns for r in rows],
            "order_id": [r.order_id for r in rows],
            "side": [r.side for r in rows],
            "price": [r.price for r in rows],
            "qty": [r.qty for r in rows],
            "fee": [r.fee for r in rows],
            "liquidity": [r.liquidity for r in rows],
            "reason": [r.reason for r in rows],
            "queue_ahead": [r.queue_ahead for r in rows],
            "position": [r.position for r in rows],
            "mid_ref": [r.mid_ref for r in rows],
        }
        for h in self.engine.markouts.horizons_ns:
            table[f"markout_{h / 1e9:g}s_bps"] = [self.markouts.get((i, h)) for i in range(len(rows))]
        return table

    def orders_table(self) -> Mapping[str, Sequence[Cell]]:
        tick, unit = self._tick, self._unit
        items = list(self.orders.items())
        return {
            "order_id": [k for k, _ in items],
            "side": [o.side for _, o in items],
            "price": [o.price_ticks * tick for _, o in items],
            "qty": [o.qty_lots * unit for _, o in items],
            "level": [o.level for _, o in items],
            "reason": [o.reason for _, o in items],
            "placed_ns": [o.placed_ns for _, o in items],
            "acked_ns": [o.acked_ns for _, o in items],
            "queue_ahead": [None if o.queue_ahead_lots is None else o.queue_ahead_lots * unit for _, o in items],
            "ended_ns": [o.ended_ns for _, o in items],
            "end": [o.end for _, o in items],
            "filled_qty": [o.filled_lots * unit for _, o in items],
        }

    def risk_table(self) -> Mapping[str, Sequence[Cell]]:
        names = ("ts_ns", "old", "new", "reasons", "cause")
        return {name: [row[j] for row in self.risk_rows] for j, name in enumerate(names)}

    def write(self, out_dir: str | Path, summary: dict[str, Any]) -> Path:
        return write_record(
            out_dir,
            summary,
            self.cols,
            self.fills_table(),
            kind="l2",
            interval_s=self.interval_ns / 1e9,
            markout_horizons_s=[h / 1e9 for h in self.engine.markouts.horizons_ns],
            orders=self.orders_table(),
            risk=self.risk_table(),
            extra={
                "start": iso_ns(self.origin_ns) if self.next_ns >= 0 else None,
                "risk_state_start": self.risk_state_start,
                "orders_thinned": self.orders_thinned,
                "risk_changes_dropped": self.risk_changes_dropped,
            },
        )


@dataclass(slots=True, kw_only=True)
class _FillRow:
    ts_ns: int
    order_id: str
    side: int
    price: float
    qty: float
    fee: float
    liquidity: str
    reason: str
    queue_ahead: float | None
    position: float
    mid_ref: float | None


@dataclass(slots=True, kw_only=True)
class _OrderRow:
    side: int
    price_ticks: int
    qty_lots: int
    level: int
    reason: str
    placed_ns: int
    acked_ns: int | None = None
    queue_ahead_lots: int | None = None
    ended_ns: int | None = None
    end: str = "open"
    filled_lots: int = 0



# --------------------------------------------------------------------------- bar runs


Table = Mapping[str, Sequence[Cell]]
BAR_FILL_REASON = "bar_range"  # the bar's high/low reached the quote (mmbot.research.bars)


def bar_tables(result: BarResult, bars: Bars) -> tuple[Table, Table]:
    """(series, fills) tables of a bar backtest for :func:`write_record`."""
    tick = float(result.instrument.tick_size)
    unit = float(result.instrument.qty_unit)
    interval_ns = bars.interval_ms * 1_000_000
    series: dict[str, Sequence[Cell]] = {
        "ts_ns": [int(t) * 1_000_000 + interval_ns for t in bars.ts_ms.tolist()],
        "mid": [c * tick for c in result.close_ticks],
        "bid": [b * tick if b else None for b in result.bid_ticks],
        "ask": [a * tick if a else None for a in result.ask_ticks],
        "inventory": [q * unit for q in result.inventory_lots],
        "gross_pnl": result.gross_pnl,
        "net_pnl": result.net_pnl,
        "open": bars.open.tolist(),
        "high": bars.high.tolist(),
        "low": bars.low.tolist(),
    }
    position = np.cumsum([int(f.side) * f.qty_lots for f in result.fills], dtype=np.int64).tolist()
    n = len(result.fills)
    fills: dict[str, list[Cell]] = {
        "ts_ns": [f.ts_ms * 1_000_000 for f in result.fills],
        # The bar model has no order ids or queue: the bar index names the quote, queue_ahead is empty.
        "order_id": [f"bar-{f.bar}-{'buy' if int(f.side) > 0 else 'sell'}" for f in result.fills],
        "side": [int(f.side) for f in result.fills],
        "price": [f.price_ticks * tick for f in result.fills],
        "qty": [f.qty_lots * unit for f in result.fills],
        "fee": [float(f.fee + f.slippage) for f in result.fills],
        "liquidity": ["maker"] * n,
        "reason": [BAR_FILL_REASON] * n,
        "queue_ahead": [None] * n,
        "position": [q * unit for q in position],
        "mid_ref": [f.mid_ref_ticks * tick for f in result.fills],
    }
    for h in result.markout_horizons_ns:
        fills[f"markout_{h / 1e9:g}s_bps"] = [result.markout_values.get((i, h)) for i in range(len(result.fills))]
    return series, fills
