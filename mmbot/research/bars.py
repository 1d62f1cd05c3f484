"""OHLCV bars: loading, quality checks and the reference bar backtest of the seed strategy.

Loading
-------
:func:`load_bars` reads CSV (header optional: ``date|timestamp|time|open_time, open, high,
low, close, volume`` or those six columns in that order), freqtrade JSON
``[[ts_ms, open, high, low, close, volume], ...]`` (also ``.json.gz``), feather and
parquet (freqtrade's ``date`` timestamp column or an integer one). Timestamps are bar
*open* times in UTC milliseconds (integers in s, ms, us or ns and ISO strings are
accepted). :func:`check_bars` reports gaps (missing intervals), zero-volume bars and
inconsistent OHLC rows; nothing is filled in or dropped: the backtest runs on the
bars as they are, and the summary says what was found.

Bar backtest rules (the seed's mode; :mod:`mmbot.research.grid` compiles the same rules)
----------------------------------------------------------------------------------------
Prices are integer ticks (``c = rint(close / tick)``), sizes integer lots.
Bars ``i = 0..N-1``. For each bar, in this order:

1. **Fills** (``i >= 1``), against the quotes resting from an earlier close, the bid
   first, then the ask; a fill is always the whole ``order_size``:

   ==============  ====================  ===============================================
   fill_semantics  a bid fills when      at price
   ==============  ====================  ===============================================
   strict          ``low < bid``         fill_rule ``quote``: ``bid``;
   (default)                             fill_rule ``open_gap``: ``open`` if ``open < bid``
                                         else ``bid``
   backtrader      ``low <= bid``        ``open`` if ``open <= bid`` else ``bid`` (as a
                                         backtrader Limit order)
   ==============  ====================  ===============================================

   The ask mirrors it (``high > ask``, ``open > ask``). Both sides can fill in the same
   bar. A filled side stays empty until the next update bar.
2. **Mark to market** at the close: ``gross = cash + q * c``, ``net = gross - fees - slippage``.
3. **Re-quote** when ``i % update_freq == 0``: cancel both resting quotes and compute new
   ones from the close and the inventory ``q`` with the corrected skew
   (:func:`mmbot.strategy.simple.simple_quote_prices`, in ticks)::

       r   = c * (1 - clip(q/Q, -1, 1) * skew_factor)
       bid = floor(r - c * spread_bps / 20000)      ask = ceil(r + c * spread_bps / 20000)

   ``cross_policy`` clamp (default): ``bid <= c - 1``, ``ask >= c + 1`` (a quote never
   crosses the close, which would be a taker order); allow: as computed. A bid is
   placed only if ``q + order_size <= Q``, an ask only if ``-q + order_size <= Q``.
   Each quote placed is one order (for the fill rate).

Costs per fill: ``fee = notional * maker_fee_bps / 10^4`` and
``slippage = notional * slippage_bps / 10^4`` (a cost, the price is not moved),
both in the quote currency.

Timing: a fill in bar ``i`` is stamped at the bar's open time; the series sample of bar
``i`` (inventory, PnL, the quotes resting after its update) at its close time
``open + interval``. Markouts at 1, 5 and 30 bars use the closes as the mid.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Side
from mmbot.errors import ConfigError, DataError
from mmbot.extras import ARROW_MODULES, RESEARCH, require
from mmbot.portfolio.attribution import Attribution, AttributionTracker
from mmbot.portfolio.ledger import Ledger
from mmbot.portfolio.markout import MarkoutTracker
from mmbot.portfolio.metrics import FillRecord, Performance, compute_performance
from mmbot.strategy.simple import SimpleParams, simple_quote_prices

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

BUNDLED_BARS = "binance_spot_BTC_USDT-1m_2023-04-05_2023-05-05.json.gz"
MARKOUT_BARS = (1, 5, 30)
_TS_NAMES = ("date", "timestamp", "time", "open_time", "ts", "datetime")
_COLS = ("open", "high", "low", "close", "volume")


def bundled_bars_path() -> Path:
    return Path(str(resources.files("mmbot.data").joinpath(BUNDLED_BARS)))


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Bars:
    """OHLCV bars; ``ts_ms`` are bar open times (UTC ms), prices in quote currency."""

    ts_ms: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    source: str = ""

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @property
    def interval_ms(self) -> int:
        """The bar interval: the most common spacing of open times."""
        if len(self) < 2:
            return 60_000
        diffs = np.diff(self.ts_ms)
        values, counts = np.unique(diffs, return_counts=True)
        return int(values[int(np.argmax(counts))])

    def slice(self, start: int, stop: int) -> Bars:
        return Bars(
            self.ts_ms[start:stop], self.open[start:stop], self.high[start:stop], self.low[start:stop],
            self.close[start:stop], self.volume[start:stop], self.source,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class BarQuality:
    """What :func:`check_bars` found; reported, never repaired."""

    bars: int
    interval_ms: int
    first_ts_ms: int
    last_ts_ms: int
    gaps: int  # places where one or more bars are missing
    missing_bars: int
    gap_examples: tuple[tuple[int, int], ...]  # (open time of the bar before the gap, bars missing)
    zero_volume_bars: int
    zero_volume_examples: tuple[int, ...]
    inconsistent_ohlc: int

    def fields(self) -> dict[str, Any]:
        return {
            "bars": self.bars,
            "bar_interval_s": self.interval_ms / 1000,
            "first_bar": _iso(self.first_ts_ms),
            "last_bar": _iso(self.last_ts_ms),
            "bar_gaps": self.gaps,
            "missing_bars": self.missing_bars,
            "bar_gap_examples": [[_iso(t), n] for t, n in self.gap_examples],
            "zero_volume_bars": self.zero_volume_bars,
            "zero_volume_examples": [_iso(t) for t in self.zero_volume_examples],
            "inconsistent_ohlc_bars": self.inconsistent_ohlc,
        }

    def lines(self) -> list[str]:
        out = [
            f"{self.bars} bars of {self.interval_ms / 1000:g} s, {_iso(self.first_ts_ms)} to {_iso(self.last_ts_ms)} (bar open, UTC)"
        ]
        if self.gaps:
            first = ", ".join(f"{n} after {_iso(t)}" for t, n in self.gap_examples[:3])
            out.append(f"WARNING: {self.gaps} gaps, {self.missing_bars} bars missing (not filled): {first}")
        if self.zero_volume_bars:
            first = ", ".join(_iso(t) for t in self.zero_volume_examples[:3])
            out.append(f"WARNING: {self.zero_volume_bars} zero-volume bars (kept as they are): {first}")
        if self.inconsistent_ohlc:
            out.append(f"WARNING: {self.inconsistent_ohlc} bars with high < max(open, close) or low > min(open, close)")
        return out


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_bars(bars: Bars, examples: int = 10) -> BarQuality:
    n = len(bars)
    interval = bars.interval_ms
    diffs = np.diff(bars.ts_ms) if n > 1 else np.zeros(0, dtype=np.int64)
    gap_idx = np.nonzero(diffs > interval)[0]
    missing = ((diffs[gap_idx] // interval) - 1).astype(np.int64)
    zero = np.nonzero(bars.volume <= 0)[0]
    bad = (bars.high < np.maximum(bars.open, bars.close)) | (bars.low > np.minimum(bars.open, bars.close))
    return BarQuality(
        bars=n,
        interval_ms=interval,
        first_ts_ms=int(bars.ts_ms[0]) if n else 0,
        last_ts_ms=int(bars.ts_ms[-1]) if n else 0,
        gaps=int(gap_idx.shape[0]),
        missing_bars=int(missing.sum()),
        gap_examples=tuple((int(bars.ts_ms[i]), int(m)) for i, m in zip(gap_idx[:examples], missing[:examples], strict=True)),
        zero_volume_bars=int(zero.shape[0]),
        zero_volume_examples=tuple(int(bars.ts_ms[i]) for i in zero[:examples]),
        inconsistent_ohlc=int(bad.sum()),
    )


# --------------------------------------------------------------------------- loading


def _ts_to_ms(value: Any) -> int:
    """One timestamp (number in s/ms/us/ns, or ISO text) -> UTC milliseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
    else:
        text = str(value).strip()
        try:
            v = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise DataError(f"bar timestamp {text!r} is neither a number nor an ISO date") from exc
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return round(dt.timestamp() * 1000)
    if v < 1e11:  # seconds (until year 5138)
        return round(v * 1000)
    if v < 1e14:
        return int(v)
    if v < 1e17:
        return int(v // 1000)  # microseconds
    return int(v // 1_000_000)  # nanoseconds


def _from_rows(rows: list[list[Any]], source: str) -> Bars:
    if not rows:
        raise DataError(f"{source}: no bars")
    try:
        ts = np.array([_ts_to_ms(r[0]) for r in rows], dtype=np.int64)
        ohlcv = np.array([[float(x) for x in r[1:6]] for r in rows], dtype=np.float64)
    except (IndexError, TypeError, ValueError) as exc:
        raise DataError(f"{source}: bars must be rows of [timestamp, open, high, low, close, volume] ({exc})") from exc
    if ohlcv.ndim != 2 or ohlcv.shape[1] != 5:
        raise DataError(f"{source}: bars must be rows of [timestamp, open, high, low, close, volume]")
    return _validated(ts, ohlcv, source)


def _validated(ts: I64, ohlcv: F64, source: str) -> Bars:
    if ts.shape[0] == 0:
        raise DataError(f"{source}: no bars")
    if not np.all(np.isfinite(ohlcv)):
        row = int(np.nonzero(~np.all(np.isfinite(ohlcv), axis=1))[0][0])
        raise DataError(f"{source}: bar {row} has a missing or non-numeric value")
    if np.any(ohlcv[:, :4] <= 0):
        row = int(np.nonzero(np.any(ohlcv[:, :4] <= 0, axis=1))[0][0])
        raise DataError(f"{source}: bar {row} has a price <= 0")
    if ts.shape[0] > 1 and np.any(np.diff(ts) <= 0):
        row = int(np.nonzero(np.diff(ts) <= 0)[0][0]) + 1
        raise DataError(f"{source}: bar timestamps must increase; bar {row} ({_iso(int(ts[row]))}) does not")
    return Bars(ts, ohlcv[:, 0].copy(), ohlcv[:, 1].copy(), ohlcv[:, 2].copy(), ohlcv[:, 3].copy(), ohlcv[:, 4].copy(), source)


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from exc
    return raw


def _load_json(path: Path) -> Bars:
    try:
        data = orjson.loads(_read_bytes(path))
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if isinstance(data, dict):  # {"columns": [...], "data": [[...]]} (pandas split orient)
        data = data.get("data", [])
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of [timestamp, open, high, low, close, volume] rows")
    return _from_rows(data, str(path))


def _load_csv(path: Path) -> Bars:
    text = _read_bytes(path).decode("utf-8-sig")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: no bars")
    head = [c.strip().lower() for c in rows[0]]
    try:
        float(head[1])
        has_header = False
    except (IndexError, ValueError):
        has_header = True
    if has_header:
        rows = rows[1:]
        order = _column_order(head, str(path))
        rows = [[r[k] for k in order] for r in rows]
    return _from_rows(rows, str(path))


def _column_order(names: list[str], source: str) -> list[int]:
    ts_col = next((names.index(n) for n in _TS_NAMES if n in names), None)
    if ts_col is None:
        raise DataError(f"{source}: no timestamp column (one of {', '.join(_TS_NAMES)}); columns were {names}")
    missing = [c for c in _COLS if c not in names]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}; columns were {names}")
    return [ts_col, *(names.index(c) for c in _COLS)]


def _load_arrow(path: Path, kind: str) -> Bars:
    require(RESEARCH, f"reading {kind} bars ({path})", *ARROW_MODULES)
    import pyarrow as pa  # pyarrow is heavy and optional: only for parquet/feather bars

    try:
        if kind == "parquet":
            import pyarrow.parquet as pq  # pyarrow is heavy and optional: only for parquet/feather bars

            table = pq.read_table(path)
        else:
            import pyarrow.feather as feather  # pyarrow is heavy and optional: only for parquet/feather bars

            table = feather.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: cannot read {kind} file ({exc})") from exc
    names = [n.lower() for n in table.column_names]
    order = _column_order(names, str(path))
    ts_col = table.column(order[0])
    if pa.types.is_timestamp(ts_col.type) or pa.types.is_date(ts_col.type):
        ts = ts_col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    elif pa.types.is_integer(ts_col.type) or pa.types.is_floating(ts_col.type):
        ts = np.array([_ts_to_ms(v) for v in ts_col.to_pylist()], dtype=np.int64)
    else:
        ts = np.array([_ts_to_ms(v) for v in ts_col.to_pylist()], dtype=np.int64)
    ohlcv = np.column_stack([table.column(k).cast(pa.float64()).to_numpy(zero_copy_only=False) for k in order[1:]])
    return _validated(np.asarray(ts, dtype=np.int64), ohlcv.astype(np.float64), str(path))


def load_bars(path: str | Path) -> Bars:
    """Read bars from CSV, JSON (freqtrade, optionally gzipped), feather or parquet."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"bar file {p} does not exist")
    name = p.name.lower()
    for suffix in (".gz",):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(".json"):
        return _load_json(p)
    if name.endswith((".csv", ".txt")):
        return _load_csv(p)
    if name.endswith((".feather", ".arrow", ".ipc")):
        return _load_arrow(p, "feather")
    if name.endswith((".parquet", ".pq")):
        return _load_arrow(p, "parquet")
    raise DataError(f"bar file {p}: unknown format; use .csv, .json(.gz), .feather or .parquet")


# --------------------------------------------------------------------------- backtest


@dataclass(frozen=True, slots=True, kw_only=True)
class BarRules:
    fill_rule: str = "quote"  # quote | open_gap
    fill_semantics: str = "strict"  # strict | backtrader
    cross_policy: str = "clamp"  # clamp | allow

    def __post_init__(self) -> None:
        if self.fill_rule not in ("quote", "open_gap"):
            raise ValueError(f"fill_rule must be quote or open_gap, was {self.fill_rule!r}")
        if self.fill_semantics not in ("strict", "backtrader"):
            raise ValueError(f"fill_semantics must be strict or backtrader, was {self.fill_semantics!r}")
        if self.cross_policy not in ("clamp", "allow"):
            raise ValueError(f"cross_policy must be clamp or allow, was {self.cross_policy!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BarFees:
    maker_fee_bps: Decimal = Decimal(0)
    slippage_bps: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class BarFill:
    bar: int
    ts_ms: int  # the fill bar's open time
    side: Side
    price_ticks: int
    qty_lots: int
    fee: Decimal
    slippage: Decimal
    mid_ref_ticks: int  # the close the quote was computed from


@dataclass(slots=True, kw_only=True)
class BarResult:
    """Fills and per-bar series (one entry per bar, sampled at its close)."""

    instrument: Instrument
    params: SimpleParams
    rules: BarRules
    fees: BarFees
    fills: list[BarFill] = field(default_factory=list)
    orders_placed: int = 0
    close_ticks: list[int] = field(default_factory=list)
    bid_ticks: list[int] = field(default_factory=list)  # resting after the bar's update; 0 = none
    ask_ticks: list[int] = field(default_factory=list)
    inventory_lots: list[int] = field(default_factory=list)
    gross_pnl: list[float] = field(default_factory=list)
    net_pnl: list[float] = field(default_factory=list)
    ledger: Ledger | None = None
    slippage_paid: Decimal = Decimal(0)
    markout_horizons_ns: tuple[int, ...] = ()
    markout_values: dict[tuple[int, int], float] = field(default_factory=dict)  # (fill index, horizon ns) -> bps

    def markout_mean_bps(self, horizon_ns: int) -> float | None:
        values = [v for (_, h), v in self.markout_values.items() if h == horizon_ns]
        return sum(values) / len(values) if values else None

    @property
    def bid_fills(self) -> int:
        return sum(1 for f in self.fills if f.side is Side.BUY)

    @property
    def ask_fills(self) -> int:
        return sum(1 for f in self.fills if f.side is Side.SELL)


def default_instrument() -> Instrument:
    return Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


def run_bar_backtest(
    bars: Bars,
    params: SimpleParams,
    fees: BarFees | None = None,
    rules: BarRules | None = None,
    instrument: Instrument | None = None,
) -> BarResult:
    """The reference bar backtest: a plain loop over the bars, rules as in the module docstring."""
    fees = fees or BarFees()
    rules = rules or BarRules()
    inst = instrument or default_instrument()
    tick = float(inst.tick_size)
    size = inst.to_lots(Decimal(str(params.order_size)))
    q_max = inst.to_lots(Decimal(str(params.max_inventory)))
    if size <= 0:
        raise ConfigError(f"order_size {params.order_size} is below the step size {inst.step_size}")
    opens = np.rint(bars.open / tick).astype(np.int64).tolist()
    highs = np.rint(bars.high / tick).astype(np.int64).tolist()
    lows = np.rint(bars.low / tick).astype(np.int64).tolist()
    closes = np.rint(bars.close / tick).astype(np.int64).tolist()
    ts_list = bars.ts_ms.tolist()
    interval_ns = bars.interval_ms * 1_000_000
    fee_rate = fees.maker_fee_bps / Decimal(10_000)
    slip_rate = fees.slippage_bps / Decimal(10_000)
    backtrader = rules.fill_semantics == "backtrader"
    open_gap = rules.fill_rule == "open_gap"
    clamp = rules.cross_policy == "clamp"

    ledger = Ledger(inst)
    markouts = MarkoutTracker(horizons_ns=tuple(k * interval_ns for k in MARKOUT_BARS))
    result = BarResult(
        instrument=inst, params=params, rules=rules, fees=fees, ledger=ledger, markout_horizons_ns=markouts.horizons_ns
    )
    costs = 0.0  # fees + slippage as a float, for the per-bar series
    bid = 0  # resting bid in ticks; 0 = none
    ask = 0
    mid_ref = 0

    def fill(i: int, side: Side, price: int) -> None:
        nonlocal costs
        notional = inst.notional(price, size)
        fee = notional * fee_rate
        slippage = notional * slip_rate
        ledger.apply_fill(side, price, size, fee)
        result.slippage_paid += slippage
        costs += float(fee + slippage)
        ts_ns = ts_list[i] * 1_000_000
        markouts.on_fill(ts_ns, int(side), float(price))
        result.fills.append(
            BarFill(bar=i, ts_ms=ts_list[i], side=side, price_ticks=price, qty_lots=size, fee=fee, slippage=slippage, mid_ref_ticks=mid_ref)
        )

    for i in range(len(closes)):
        o, h, lo, c = opens[i], highs[i], lows[i], closes[i]
        # 1. fills against the quotes resting from an earlier close (bid first)
        if bid:
            if backtrader:
                if lo <= bid:
                    fill(i, Side.BUY, o if o <= bid else bid)
                    bid = 0
            elif lo < bid:
                fill(i, Side.BUY, o if (open_gap and o < bid) else bid)
                bid = 0
        if ask:
            if backtrader:
                if h >= ask:
                    fill(i, Side.SELL, o if o >= ask else ask)
                    ask = 0
            elif h > ask:
                fill(i, Side.SELL, o if (open_gap and o > ask) else ask)
                ask = 0
        # 2. mark to market at the close
        q = ledger.position_lots
        close_ns = ts_list[i] * 1_000_000 + interval_ns
        for index, horizon_ns, bps in markouts.on_mid(close_ns, float(c)):
            result.markout_values[(index, horizon_ns)] = bps
        gross = ledger.gross_pnl_float(c)
        # 3. re-quote on update bars
        if i % params.update_freq == 0:
            bid_f, ask_f = simple_quote_prices(float(c), float(q), params.spread_bps, float(q_max), params.skew_factor)
            new_bid = math.floor(bid_f)
            new_ask = math.ceil(ask_f)
            if clamp:
                new_bid = min(new_bid, c - 1)
                new_ask = max(new_ask, c + 1)
            bid = new_bid if new_bid > 0 and q + size <= q_max else 0
            ask = new_ask if new_ask > 0 and -q + size <= q_max else 0
            result.orders_placed += (bid > 0) + (ask > 0)
            mid_ref = c
        result.close_ticks.append(c)
        result.bid_ticks.append(bid)
        result.ask_ticks.append(ask)
        result.inventory_lots.append(q)
        result.gross_pnl.append(gross)
        result.net_pnl.append(gross - costs)
    return result


def bar_attribution(result: BarResult, bars: Bars) -> Attribution:
    """The PnL attribution of a bar run (:mod:`mmbot.portfolio.attribution`); horizon one bar.

    Replays the run's fills and closes through the tracker: each fill's mid is the close its
    quote was priced from, its horizon mid the close of the bar it filled in; slippage counts
    as a fee, so the parts add up to the bar summary's net PnL (fees and slippage included).
    """
    inst = result.instrument
    interval_ns = bars.interval_ms * 1_000_000
    tracker = AttributionTracker(inst.tick_size * inst.qty_unit, inst.quote_ccy, horizon_ns=interval_ns)
    ts_list = bars.ts_ms.tolist()
    fills = result.fills
    k = 0
    for i, c in enumerate(result.close_ticks):
        while k < len(fills) and fills[k].bar == i:
            f = fills[k]
            tracker.on_fill(f.ts_ms * 1_000_000, int(f.side), f.price_ticks, f.qty_lots, f.fee, float(f.mid_ref_ticks), f.slippage)
            k += 1
        tracker.on_mid(ts_list[i] * 1_000_000 + interval_ns, float(c))
    return tracker.result(result.close_ticks[-1] if result.close_ticks else 0)


def bar_performance(result: BarResult, bars: Bars, *, sharpe_interval_s: float = 86_400.0, neutral_band: float = 0.1) -> Performance:
    """All metrics of a bar run through :func:`mmbot.portfolio.metrics.compute_performance`."""
    inst = result.instrument
    tick = float(inst.tick_size)
    unit = float(inst.qty_unit)
    fee_fills = [
        FillRecord(
            ts_ns=f.ts_ms * 1_000_000,
            side=int(f.side),
            price=f.price_ticks * tick,
            qty=f.qty_lots * unit,
            fee=float(f.fee + f.slippage),
            mid_ref=f.mid_ref_ticks * tick,
        )
        for f in result.fills
    ]
    interval_s = bars.interval_ms / 1000
    period = max(1, round(sharpe_interval_s / interval_s))
    return compute_performance(
        fills=fee_fills,
        inventory=[q * unit for q in result.inventory_lots],
        net_pnl=result.net_pnl,
        sample_interval_s=interval_s,
        max_inventory_limit=result.params.max_inventory,
        return_period=period,
        neutral_band=neutral_band,
        data_start_ns=int(bars.ts_ms[0]) * 1_000_000 if len(bars) else None,  # first bar's open
        data_end_ns=(int(bars.ts_ms[-1]) + bars.interval_ms) * 1_000_000 if len(bars) else None,  # last close
    )
