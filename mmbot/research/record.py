"""The run record: what every run leaves behind for ``mmbot report``.

One directory per run, written by the paper run (``mmbot run``), the L2 backtest
and the bar backtest alike::

    <dir>/summary.json   the run summary (the same dict --summary-json writes), with
                         "record": {kind, version, interval_s, series, fills, markout_horizons_s}
    <dir>/series.csv     one row per sampling interval (L2: ``record.interval_ms`` of capture
                         time; bars: one per bar), the state at the END of the interval:
                         ts_ns, mid, bid, ask, inventory, gross_pnl, net_pnl
                         (+ open, high, low for bars; market_bid, market_ask for L2)
    <dir>/fills.csv      one row per fill: ts_ns, side (+1 buy, -1 sell), price, qty, fee
                         (fees + slippage, quote currency), mid_ref, markout_<h>s_bps...

Prices in the quote currency per base unit, quantities in base units, money in the
quote currency; an empty cell is "none" (no quote resting, markout horizon not reached).
The metrics in the summary are computed from exactly these samples and fills by
:func:`mmbot.portfolio.metrics.compute_performance`, so the summary and the report agree.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from mmbot.domain.engine_events import EngineEvent, FillBooked, MarkoutResolved
from mmbot.engine.engine import Engine
from mmbot.errors import DataError
from mmbot.portfolio.ledger import mark_ticks_from_mid
from mmbot.portfolio.metrics import FillRecord, Performance, compute_performance
from mmbot.research.bars import BarResult, Bars

RECORD_VERSION = 1
MAX_EMPTY_SAMPLES = 64  # intervals without events sampled one by one before the sampler skips
SUMMARY_FILE = "summary.json"
SERIES_FILE = "series.csv"
FILLS_FILE = "fills.csv"
SERIES_BASE = ("ts_ns", "mid", "bid", "ask", "inventory", "gross_pnl", "net_pnl")

F64 = npt.NDArray[np.float64]


def _cell(v: float | int | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(round(v, 10))
    return str(v)


def write_record(
    out_dir: str | Path,
    summary: dict[str, Any],
    series: Mapping[str, Sequence[float | int | None]],
    fills: Mapping[str, Sequence[float | int | None]],
    *,
    kind: str,
    interval_s: float,
    markout_horizons_s: Sequence[float],
) -> Path:
    """Write the three files; return the directory. ``summary`` gains "record" and "record_dir"."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    summary["record_dir"] = str(d.resolve())
    summary["record"] = {
        "kind": kind,
        "version": RECORD_VERSION,
        "interval_s": interval_s,
        "series": SERIES_FILE,
        "fills": FILLS_FILE,
        "markout_horizons_s": list(markout_horizons_s),
    }
    for name, table in ((SERIES_FILE, series), (FILLS_FILE, fills)):
        cols = list(table)
        n = len(table[cols[0]]) if cols else 0
        tmp = d / (name + ".tmp")
        with tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            columns = [table[c] for c in cols]
            for i in range(n):
                w.writerow([_cell(col[i]) for col in columns])
        tmp.replace(d / name)
    tmp = d / (SUMMARY_FILE + ".tmp")
    tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(d / SUMMARY_FILE)
    return d


@dataclass(frozen=True, slots=True)
class RunRecord:
    dir: Path
    summary: dict[str, Any]
    series: dict[str, F64]
    fills: dict[str, F64]

    @property
    def kind(self) -> str:
        return str(self.summary.get("record", {}).get("kind", "unknown"))

    @property
    def interval_s(self) -> float:
        return float(self.summary.get("record", {}).get("interval_s", 1.0))


def _read_table(path: Path) -> dict[str, F64]:
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not rows:
        raise DataError(f"{path} is empty (no header)")
    header = rows[0]
    data = rows[1:]
    out: dict[str, F64] = {}
    try:
        for j, name in enumerate(header):
            out[name] = np.array([float(r[j]) if r[j] != "" else np.nan for r in data], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise DataError(f"{path}: malformed row ({exc})") from exc
    return out


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
    return RunRecord(d, summary, _read_table(d / SERIES_FILE), _read_table(d / FILLS_FILE))


# --------------------------------------------------------------------------- L2 runs


class SeriesRecorder:
    """Samples an engine's state once per interval of capture time; collects its fills.

    The driver calls :meth:`advance` with each event's timestamp *before* the event is
    processed (one integer compare per event when no boundary is due), so the sample
    at a boundary is the state after every event before it. Fills come from the
    engine's event stream through :meth:`on_events` (an observer; it never steers).
    """

    def __init__(
        self, engine: Engine, interval_ms: float, max_inventory: float, neutral_band: float = 0.1, max_samples: int = 200_000
    ) -> None:
        self.engine = engine
        self.interval_ns = max(1, int(interval_ms * 1_000_000))
        self.max_inventory = max_inventory
        self.neutral_band = neutral_band
        self.max_samples = max(2, max_samples)
        self.origin_ns = 0
        self.next_ns: int = -1  # first event sets the origin
        self.cols: dict[str, list[float | int | None]] = {
            name: [] for name in (*SERIES_BASE, "market_bid", "market_ask")
        }
        self.fill_rows: list[tuple[int, int, float, float, float, float | None]] = []
        self.fill_index: dict[int, int] = {}  # engine fill index -> row
        self.markouts: dict[tuple[int, int], float] = {}  # (row, horizon ns) -> bps
        inst = engine.instrument
        self._tick = float(inst.tick_size)
        self._unit = float(inst.qty_unit)

    def advance(self, ts_ns: int) -> None:
        if self.next_ns < 0:
            self.origin_ns = ts_ns
            self.next_ns = ts_ns + self.interval_ns
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

    def on_events(self, events: Sequence[EngineEvent]) -> None:
        mid = self.engine.mid_ticks
        for ev in events:
            kind = type(ev)
            if kind is FillBooked:
                f: FillBooked = ev  # type: ignore[assignment]
                side = 1 if f.side == "BUY" else -1
                self.fill_index[f.fill_index] = len(self.fill_rows)
                self.fill_rows.append(
                    (f.ts_ns, side, f.price * self._tick, f.qty * self._unit, float(Decimal(f.fee)), None if mid is None else mid * self._tick)
                )
            elif kind is MarkoutResolved:
                m: MarkoutResolved = ev  # type: ignore[assignment]
                row = self.fill_index.get(m.fill_index)
                if row is not None:
                    self.markouts[(row, m.horizon_ns)] = m.bps

    def fill_records(self) -> list[FillRecord]:
        return [FillRecord(ts_ns=t, side=s, price=px, qty=q, fee=fee, mid_ref=m) for t, s, px, q, fee, m in self.fill_rows]

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

    def fills_table(self) -> Mapping[str, Sequence[float | int | None]]:
        marks = self.engine.markouts
        table: dict[str, list[float | int | None]] = {
            "ts_ns": [r[0] for r in self.fill_rows],
            "side": [r[1] for r in self.fill_rows],
            "price": [r[2] for r in self.fill_rows],
            "qty": [r[3] for r in self.fill_rows],
            "fee": [r[4] for r in self.fill_rows],
            "mid_ref": [r[5] for r in self.fill_rows],
        }
        for h in marks.horizons_ns:
            table[f"markout_{h / 1e9:g}s_bps"] = [self.markouts.get((i, h)) for i in range(len(self.fill_rows))]
        return table

    def write(self, out_dir: str | Path, summary: dict[str, Any]) -> Path:
        return write_record(
            out_dir,
            summary,
            self.cols,
            self.fills_table(),
            kind="l2",
            interval_s=self.interval_ns / 1e9,
            markout_horizons_s=[h / 1e9 for h in self.engine.markouts.horizons_ns],
        )


# --------------------------------------------------------------------------- bar runs


Table = Mapping[str, Sequence[float | int | None]]


def bar_tables(result: BarResult, bars: Bars) -> tuple[Table, Table]:
    """(series, fills) tables of a bar backtest for :func:`write_record`."""
    tick = float(result.instrument.tick_size)
    unit = float(result.instrument.qty_unit)
    interval_ns = bars.interval_ms * 1_000_000
    series: dict[str, Sequence[float | int | None]] = {
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
    fills: dict[str, list[float | int | None]] = {
        "ts_ns": [f.ts_ms * 1_000_000 for f in result.fills],
        "side": [int(f.side) for f in result.fills],
        "price": [f.price_ticks * tick for f in result.fills],
        "qty": [f.qty_lots * unit for f in result.fills],
        "fee": [float(f.fee + f.slippage) for f in result.fills],
        "mid_ref": [f.mid_ref_ticks * tick for f in result.fills],
    }
    for h in result.markout_horizons_ns:
        fills[f"markout_{h / 1e9:g}s_bps"] = [result.markout_values.get((i, h)) for i in range(len(result.fills))]
    return series, fills
