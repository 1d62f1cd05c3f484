"""Compiled (numba) bar backtest of the seed strategy for a whole parameter grid.

One call runs many parameter combinations over the same OHLC bars and returns every
objective per combination. The rules are those of the reference bar backtest
(:mod:`mmbot.research.bars`); ``tests/optimize`` checks fill-by-fill equality.

Rules (bars ``i = 0..N-1``; prices in integer ticks, sizes in integer lots)
---------------------------------------------------------------------------
1. Fills in bar ``i`` (``i >= 1``) against the quotes resting from an earlier close,
   bid first, then ask; a fill is always the whole order:

   ==================  ==========================  ==================================
   fill_semantics      bid fills when              bid fill price
   ==================  ==========================  ==================================
   strict (default)    ``low < bid``               ``fill_rule`` quote: ``bid``;
                                                   open_gap: ``open`` if ``open < bid``
   backtrader          ``low <= bid``              ``open`` if ``open <= bid`` else ``bid``
   ==================  ==========================  ==================================

   The ask mirrors it (``high > ask``; ``open > ask``). A filled side stays empty
   until the next update bar.
2. At the close ``c`` of bar ``i``, when ``i % update_freq == 0``, both resting quotes
   are cancelled and new ones computed from ``c`` and inventory ``q``
   (:func:`mmbot.strategy.simple.simple_quote_prices`, in ticks)::

       r   = c * (1 - clip(q/Q, -1, 1) * skew_factor)
       bid = floor(r - c * spread_bps / 20000)      ask = ceil(r + c * spread_bps / 20000)

   ``cross_policy`` clamp: ``bid <= c - 1 tick``, ``ask >= c + 1 tick``; allow: as computed.
   A bid is placed only if ``q + order_size <= Q``, an ask only if ``-q + order_size <= Q``.
3. Costs: ``fee = notional * (maker_fee_bps + slippage_bps) / 10^4`` per fill.
   Mark-to-market at each close: ``equity_i = cash_i + q_i * c_i - fees_i``
   (quote currency; starts at 0, no capital base).

Objectives (per combination; see docs/optimization.md for the metrics-module mapping)
------------------------------------------------------------------------------------
- ``net_pnl``: final equity (quote currency). ``gross_pnl``: before fees/slippage.
- ``sharpe``: mean / std (ddof 1) of equity changes over whole periods of ``period_bars``
  bars, times ``sqrt(periods_per_year)`` (default: daily periods, 365 per year); NaN
  where :func:`mmbot.portfolio.metrics.sharpe_ratio` gives None (< 2 periods, no variation).
- ``max_drawdown``: max over bars of (running peak equity - equity), quote currency, >= 0.
- ``inventory_balance``: share of bars whose closing ``|q| <= neutral_band * Q`` (band 0.1).
- ``max_abs_inventory``: max ``|q|`` at closes and right after each fill (base units).
- ``time_at_max_inventory``: share of bars whose closing ``|q| >= Q``.
- ``fill_rate``: fills / orders placed (each quote placed at an update bar is one order).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mmbot.extras import OPTIMIZE_MODULES, RESEARCH, require

require(RESEARCH, "the optimizer's grid kernels (mmbot optimize)", *OPTIMIZE_MODULES)  # before numba's ImportError
from numba import njit  # noqa: E402  (after the extras check, which names the missing extra)

if TYPE_CHECKING:
    from mmbot.research.bars import Bars

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

PARAM_NAMES: tuple[str, ...] = ("spread_bps", "max_inventory", "order_size", "skew_factor", "update_freq")
OBJECTIVE_NAMES: tuple[str, ...] = (
    "net_pnl",
    "gross_pnl",
    "fees",
    "sharpe",
    "max_drawdown",
    "inventory_balance",
    "fill_rate",
    "fills",
    "orders",
    "bid_fills",
    "ask_fills",
    "max_abs_inventory",
    "final_inventory",
    "time_at_max_inventory",
)
COL = {name: k for k, name in enumerate(OBJECTIVE_NAMES)}

CROSS_POLICIES = ("clamp", "allow")
FILL_RULES = ("quote", "open_gap")
FILL_SEMANTICS = ("strict", "backtrader")

TICK_SIZE = 0.01
QTY_UNIT = 1e-8  # lots, as mmbot.domain.instrument.Instrument.qty_unit
LOTS_PER_UNIT = 100_000_000
MINUTES_PER_YEAR = 365 * 24 * 60


@dataclass(frozen=True, slots=True, kw_only=True)
class GridRules:
    """Rules shared by every combination of a grid run."""

    cross_policy: str = "clamp"
    fill_rule: str = "quote"
    fill_semantics: str = "strict"
    maker_fee_bps: float = 0.0
    slippage_bps: float = 0.0
    tick_size: float = TICK_SIZE
    neutral_band: float = 0.1  # |q| <= band * Q counts as neutral
    period_bars: int = 1440  # Sharpe return interval (1440 one-minute bars = 1 day)
    periods_per_year: float = 365.0

    def __post_init__(self) -> None:
        if self.cross_policy not in CROSS_POLICIES:
            raise ValueError(f"cross_policy must be one of {CROSS_POLICIES}, was {self.cross_policy!r}")
        if self.fill_rule not in FILL_RULES:
            raise ValueError(f"fill_rule must be one of {FILL_RULES}, was {self.fill_rule!r}")
        if self.fill_semantics not in FILL_SEMANTICS:
            raise ValueError(f"fill_semantics must be one of {FILL_SEMANTICS}, was {self.fill_semantics!r}")
        if self.tick_size <= 0:
            raise ValueError(f"tick_size must be > 0, was {self.tick_size}")
        if self.period_bars < 1:
            raise ValueError(f"period_bars must be >= 1, was {self.period_bars}")
        if not 0 <= self.neutral_band <= 1:
            raise ValueError(f"neutral_band must be in [0, 1], was {self.neutral_band}")


@dataclass(frozen=True, slots=True)
class TickBars:
    """OHLC bars as integer ticks (exact comparisons), plus bar-open timestamps in ms."""

    ts_ms: I64
    open: I64
    high: I64
    low: I64
    close: I64

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def slice(self, start: int, stop: int) -> TickBars:
        return TickBars(
            self.ts_ms[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
        )


def to_ticks(prices: npt.ArrayLike, tick_size: float = TICK_SIZE) -> I64:
    """Float prices on the tick grid -> int ticks (rint: 28510.11/0.01 = 2851011.0000000005)."""
    return np.rint(np.asarray(prices, dtype=np.float64) / tick_size).astype(np.int64)


def tick_bars_from_ohlc(rows: npt.ArrayLike, tick_size: float = TICK_SIZE) -> TickBars:
    """``[[ts_ms, open, high, low, close, ...], ...]`` -> :class:`TickBars`."""
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] < 5:
        raise ValueError(f"bars must be rows of [ts, open, high, low, close, ...], shape was {a.shape}")
    return TickBars(
        a[:, 0].astype(np.int64),
        to_ticks(a[:, 1], tick_size),
        to_ticks(a[:, 2], tick_size),
        to_ticks(a[:, 3], tick_size),
        to_ticks(a[:, 4], tick_size),
    )


def tick_bars_from_bars(bars: Bars, tick_size: float = TICK_SIZE) -> TickBars:
    """:class:`mmbot.research.bars.Bars` -> :class:`TickBars` (the same ``rint(price / tick)``)."""
    return TickBars(
        np.asarray(bars.ts_ms, dtype=np.int64),
        to_ticks(bars.open, tick_size),
        to_ticks(bars.high, tick_size),
        to_ticks(bars.low, tick_size),
        to_ticks(bars.close, tick_size),
    )


def param_matrix(combos: list[dict[str, float]]) -> F64:
    """List of parameter dicts -> (n, 5) float64 matrix in :data:`PARAM_NAMES` order."""
    m = np.empty((len(combos), len(PARAM_NAMES)), dtype=np.float64)
    for k, combo in enumerate(combos):
        for j, name in enumerate(PARAM_NAMES):
            m[k, j] = float(combo[name])
    return m


# --------------------------------------------------------------------------- kernel


@njit(cache=True, nogil=True)
def _simulate(
    o: I64,
    h: I64,
    lo: I64,
    c: I64,
    spread_bps: float,
    max_inventory_lots: int,
    size_lots: int,
    skew_factor: float,
    update_freq: int,
    clamp: bool,
    open_gap: bool,
    bt_semantics: bool,
    cost_rate: float,
    unit: float,
    neutral_lots: float,
    period_bars: int,
    periods_per_year: float,
    out: F64,
    record: bool,
    fill_bar: I64,
    fill_side: I64,
    fill_price: I64,
    equity_out: F64,
    inv_out: I64,
) -> int:
    n = c.shape[0]
    q = 0  # inventory, lots
    cash = 0  # tick*lot units (exact)
    costs = 0.0  # quote currency
    bid = 0
    ask = 0
    has_bid = False
    has_ask = False
    fills = 0
    bid_fills = 0
    ask_fills = 0
    orders = 0
    peak = 0.0
    max_dd = 0.0
    neutral = 0
    at_max = 0
    max_abs = 0
    # Sharpe over period increments of equity
    last_sample = 0.0
    s1 = 0.0  # running mean of period returns
    s2 = 0.0  # running sum of squared deviations
    ns = 0
    q_max = float(max_inventory_lots)
    # Countdown counters instead of i % k: an integer division per bar costs more than the rest of the step.
    to_sample = period_bars  # bars until the next Sharpe sample ((i + 1) % period_bars == 0)
    to_update = 0  # bars until the next update bar (i % update_freq == 0)
    for i in range(n):
        if i > 0:
            if has_bid:
                px = -1
                if bt_semantics:
                    if lo[i] <= bid:
                        px = o[i] if o[i] <= bid else bid
                elif lo[i] < bid:
                    px = o[i] if (open_gap and o[i] < bid) else bid
                if px >= 0:
                    q += size_lots
                    cash -= px * size_lots
                    costs += px * size_lots * unit * cost_rate
                    has_bid = False
                    if record:
                        fill_bar[fills] = i
                        fill_side[fills] = 1
                        fill_price[fills] = px
                    fills += 1
                    bid_fills += 1
                    if abs(q) > max_abs:
                        max_abs = abs(q)
            if has_ask:
                px = -1
                if bt_semantics:
                    if h[i] >= ask:
                        px = o[i] if o[i] >= ask else ask
                elif h[i] > ask:
                    px = o[i] if (open_gap and o[i] > ask) else ask
                if px >= 0:
                    q -= size_lots
                    cash += px * size_lots
                    costs += px * size_lots * unit * cost_rate
                    has_ask = False
                    if record:
                        fill_bar[fills] = i
                        fill_side[fills] = -1
                        fill_price[fills] = px
                    fills += 1
                    ask_fills += 1
                    if abs(q) > max_abs:
                        max_abs = abs(q)
        ci = c[i]
        equity = (cash + q * ci) * unit - costs
        if equity > peak:
            peak = equity
        dd = peak - equity
        if dd > max_dd:
            max_dd = dd
        aq = q if q >= 0 else -q
        if aq > max_abs:
            max_abs = aq
        if aq <= neutral_lots:
            neutral += 1
        if aq >= max_inventory_lots:
            at_max += 1
        to_sample -= 1
        if to_sample == 0:
            to_sample = period_bars
            # Welford's update: no cancellation, and exactly 0 variance for identical returns
            d = equity - last_sample
            ns += 1
            delta = d - s1
            s1 += delta / ns
            s2 += delta * (d - s1)
            last_sample = equity
        if record:
            equity_out[i] = equity
            inv_out[i] = q
        if to_update == 0:
            to_update = update_freq
            # Same operation order as mmbot.strategy.simple.simple_quote_prices (bit-identical floats).
            mid = float(ci)
            ratio = q / q_max
            if ratio > 1.0:
                ratio = 1.0
            elif ratio < -1.0:
                ratio = -1.0
            r = mid * (1.0 - ratio * skew_factor)
            half = mid * spread_bps / 20_000.0
            nb = int(math.floor(r - half))  # noqa: RUF046 - explicit int64 in numba
            na = int(math.ceil(r + half))  # noqa: RUF046
            if clamp:
                if nb > ci - 1:
                    nb = ci - 1
                if na < ci + 1:
                    na = ci + 1
            has_bid = nb > 0 and q + size_lots <= max_inventory_lots
            has_ask = na > 0 and -q + size_lots <= max_inventory_lots
            bid = nb
            ask = na
            if has_bid:
                orders += 1
            if has_ask:
                orders += 1
        to_update -= 1
    last_c = c[n - 1] if n > 0 else 0
    net = (cash + q * last_c) * unit - costs
    out[0] = net
    out[1] = net + costs
    out[2] = costs
    sharpe = math.nan  # the metrics module's None: < 2 periods or no variation
    if ns >= 2:
        var = s2 / (ns - 1)  # s1 = running mean, s2 = sum of squared deviations
        if var > 0.0:
            sharpe = s1 / math.sqrt(var) * math.sqrt(periods_per_year)
    out[3] = sharpe
    out[4] = max_dd
    out[5] = neutral / n if n > 0 else 0.0
    out[6] = fills / orders if orders > 0 else 0.0
    out[7] = fills
    out[8] = orders
    out[9] = bid_fills
    out[10] = ask_fills
    out[11] = max_abs / LOTS_PER_UNIT
    out[12] = q / LOTS_PER_UNIT
    out[13] = at_max / n if n > 0 else 0.0
    return fills


@njit(cache=True, nogil=True)
def _run_chunk(
    o: I64,
    h: I64,
    lo: I64,
    c: I64,
    params: F64,
    clamp: bool,
    open_gap: bool,
    bt_semantics: bool,
    cost_rate: float,
    unit: float,
    neutral_band: float,
    period_bars: int,
    periods_per_year: float,
    out: F64,
) -> None:
    empty_i = np.empty(0, dtype=np.int64)
    empty_f = np.empty(0, dtype=np.float64)
    for k in range(params.shape[0]):
        q_max = int(round(params[k, 1] * LOTS_PER_UNIT))  # noqa: RUF046
        size = int(round(params[k, 2] * LOTS_PER_UNIT))  # noqa: RUF046
        _simulate(
            o, h, lo, c,
            params[k, 0], q_max, size, params[k, 3], int(params[k, 4]),
            clamp, open_gap, bt_semantics, cost_rate, unit,
            neutral_band * q_max * (1.0 + 1e-9), period_bars, periods_per_year,
            out[k], False, empty_i, empty_i, empty_i, empty_f, empty_i,
        )  # fmt: skip


def _rule_args(rules: GridRules) -> tuple[bool, bool, bool, float, float]:
    return (
        rules.cross_policy == "clamp",
        rules.fill_rule == "open_gap",
        rules.fill_semantics == "backtrader",
        (rules.maker_fee_bps + rules.slippage_bps) / 10_000.0,
        # float(Decimal(tick) * Decimal(qty_unit)), exactly as Ledger.gross_pnl_float, so PnL is bit-identical
        float(Decimal(repr(rules.tick_size)) * Decimal("0.00000001")),
    )


def run_chunk(bars: TickBars, params: F64, rules: GridRules) -> F64:
    """Objectives for each parameter row (shape (n, len(OBJECTIVE_NAMES))). Releases the GIL."""
    out = np.zeros((params.shape[0], len(OBJECTIVE_NAMES)), dtype=np.float64)
    if params.shape[0] == 0 or len(bars) == 0:
        return out
    clamp, open_gap, bt, cost_rate, unit = _rule_args(rules)
    _run_chunk(
        bars.open, bars.high, bars.low, bars.close, np.ascontiguousarray(params, dtype=np.float64),
        clamp, open_gap, bt, cost_rate, unit, rules.neutral_band, rules.period_bars, rules.periods_per_year, out,
    )  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class Trace:
    """Fills and per-bar series of one combination (for comparisons and charts)."""

    objectives: dict[str, float]
    fill_bar: I64  # bar index of each fill
    fill_side: I64  # +1 bid (buy), -1 ask (sell)
    fill_price_ticks: I64
    equity: F64  # mark-to-market net PnL at each close, quote currency
    inventory_lots: I64  # inventory at each close, lots (1e-8 base units)


def run_one(bars: TickBars, params: dict[str, float], rules: GridRules) -> Trace:
    """One combination with its fills and per-bar series recorded."""
    n = len(bars)
    fb = np.zeros(2 * n + 2, dtype=np.int64)
    fs = np.zeros(2 * n + 2, dtype=np.int64)
    fp = np.zeros(2 * n + 2, dtype=np.int64)
    eq = np.zeros(n, dtype=np.float64)
    inv = np.zeros(n, dtype=np.int64)
    out = np.zeros(len(OBJECTIVE_NAMES), dtype=np.float64)
    clamp, open_gap, bt, cost_rate, unit = _rule_args(rules)
    q_max = round(float(params["max_inventory"]) * LOTS_PER_UNIT)
    k = _simulate(
        bars.open, bars.high, bars.low, bars.close,
        float(params["spread_bps"]), q_max, round(float(params["order_size"]) * LOTS_PER_UNIT),
        float(params["skew_factor"]), int(params["update_freq"]),
        clamp, open_gap, bt, cost_rate, unit, rules.neutral_band * q_max * (1.0 + 1e-9), rules.period_bars, rules.periods_per_year,
        out, True, fb, fs, fp, eq, inv,
    )  # fmt: skip
    return Trace(dict(zip(OBJECTIVE_NAMES, out.tolist(), strict=True)), fb[:k], fs[:k], fp[:k], eq, inv)


def warm_up() -> float:
    """Compile (or load from numba's cache) both kernels; return the seconds it took."""
    t0 = time.perf_counter()
    tiny = TickBars(*(np.array([100, 101, 99, 100], dtype=np.int64) for _ in range(5)))
    run_chunk(tiny, param_matrix([dict.fromkeys(PARAM_NAMES, 1.0)]), GridRules())
    run_one(tiny, dict.fromkeys(PARAM_NAMES, 1.0), GridRules())
    return time.perf_counter() - t0
