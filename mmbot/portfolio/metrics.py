"""Performance metrics: one module for the daemon's summary, both backtests and the reports.

Every function is pure and takes plain numbers, so the L2 replay, the paper run and
the bar backtest (and the compiled grid) compute each number the same way.
Money is in the quote currency (USDT for BTC/USDT), inventory in base units,
time in integer nanoseconds.

Definitions (``docs/metrics.md`` has worked examples):

======================  =========================================================================
metric                  formula
======================  =========================================================================
gross_pnl               cash from trading + inventory x mark            (realised + unrealised)
net_pnl                 gross_pnl - fees - slippage
fill_rate               orders with at least one fill / orders placed
win_rate                round trips with net pnl > 0 / round trips; round trips are matched
                        FIFO: each closing quantity is paired with the oldest open quantity
                        on the other side; a trip's net pnl = d*(exit-entry)*qty minus the
                        fees of its entry and exit fills pro rata by quantity (d = +1 long)
avg_spread_captured     mean over round trips, weighted by quantity, of
  _bps                  d*(exit-entry)/entry*10_000 (gross of fees)
avg_fill_edge_bps       mean over fills of side*(mid_ref - price)/mid_ref*10_000, mid_ref = the
                        mid the quote was priced from (bars: the quoting close; L2: the engine's
                        mid when the fill was seen); a buy below the mid earns a positive edge
max_inventory           max |inventory| over the run (base units)
time_at_max_inventory   time with |inventory| >= the inventory limit Q (seconds and share),
                        from the inventory sampled at the end of each interval (bar close)
sharpe                  mean(r)/std(r) * sqrt(N), r = changes of net PnL (quote currency) over
                        one return interval (bar backtests: one day = 1440 one-minute bars,
                        ``backtest.sharpe_interval_s``; L2 and paper runs: the sampling interval
                        ``record.interval_ms``), whole intervals only, std with ddof=1,
                        N = 365*86400 / interval_s intervals a year (crypto trades every day)
sortino                 mean(r)/dd * sqrt(N), dd = sqrt(mean(min(r, 0)^2)) over all intervals
max_drawdown            max over t of (max_{s<=t} equity_s - equity_t), equity = net PnL,
                        starting from 0 (quote currency, >= 0)
inventory_balance       share of samples (= of time) with |inventory| <= band * Q (band 0.1)
markout_<h>s_bps        mean over fills of side*(mid(t_fill + h) - price)/price*10_000, mid(t) the
                        first mid observed at or after t (see :mod:`mmbot.portfolio.markout`)
trades_per_day          fills / (run duration in days)
======================  =========================================================================

Sharpe on PnL changes equals Sharpe on returns of any fixed capital (the capital
cancels), so no account size is assumed. A run with fewer than two intervals or no
variation has no Sharpe (``None``, JSON ``null``).

When a figure means something (the summary's :meth:`Performance.fields`): an
annualised Sharpe or Sortino from an 11-minute run extrapolates one-second noise to a
year (the bundled capture gave -1,179), so they are shown only when the data spans at
least ``SHARPE_MIN_DURATION_S`` (7 days) **and** holds at least ``SHARPE_MIN_RETURNS``
(20) whole return intervals; otherwise ``sharpe``/``sortino`` are ``null`` and
``sharpe_note`` says why (it is ``null`` when they are shown). Per-day rates
(``trades_per_day``) need at least ``RATE_MIN_DURATION_S`` (one day) of data, else
``null`` (and the note says so). The raw values stay on :class:`Performance` for
code that compares engines (the grid's equivalence tests). The summary states the data
span: ``data_start``/``data_end`` (ISO 8601 UTC, first and last sample) and
``duration_s``.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

NS_PER_S = 1_000_000_000
SECONDS_PER_YEAR = 365 * 86_400
SHARPE_MIN_DURATION_S = 7 * 86_400  # a week of data before an annualised ratio is shown
SHARPE_MIN_RETURNS = 20  # and at least this many whole return intervals
RATE_MIN_DURATION_S = 86_400  # a day of data before a per-day rate is shown
QTY_EPS = 1e-12  # base units; fills are multiples of 1e-8, so anything smaller is float noise


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRecord:
    """One fill as the metrics see it (floats: statistics only, never the ledger)."""

    ts_ns: int
    side: int  # +1 buy, -1 sell
    price: float
    qty: float  # base units, > 0
    fee: float = 0.0  # quote currency, fees + slippage charged on this fill
    mid_ref: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundTrip:
    direction: int  # +1: bought then sold (long trip), -1: sold then bought
    qty: float
    entry_price: float
    exit_price: float
    entry_ts_ns: int
    exit_ts_ns: int
    gross_pnl: float
    net_pnl: float

    @property
    def spread_bps(self) -> float:
        return self.direction * (self.exit_price - self.entry_price) / self.entry_price * 10_000.0


# Money fields of every mode's summary (quote currency); the console table shows their unit.
MONEY_FIELDS = frozenset(
    {"gross_pnl", "fees_paid", "slippage_paid", "net_pnl", "cash", "volume_quote", "max_drawdown"}
)
QUANTITY_FIELDS = frozenset({"volume_base", "final_inventory", "max_abs_inventory"})  # base currency
# Shown only when the run is long enough (mmbot.portfolio.metrics, ``sharpe_note``).
CONTEXT_FIELDS = frozenset({"sharpe", "sortino", "trades_per_day"})


def summary_cell(summary: Mapping[str, Any], key: str, value: Any) -> str:
    """One value of the console summary table: money with its unit, short-run ratios as n/a."""
    if value is None and key in CONTEXT_FIELDS and summary.get("sharpe_note"):
        return "n/a (run too short)"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    if key in MONEY_FIELDS and value is not None and summary.get("quote_ccy"):
        return f"{value} {summary['quote_ccy']}"
    if key in QUANTITY_FIELDS and value is not None and "/" in str(summary.get("symbol", "")):
        base = str(summary["symbol"]).split("/")[0]
        left = " (inventory left at stop: not flat)" if key == "final_inventory" and summary.get("flat_at_stop") is False else ""
        return f"{value} {base}{left}"
    return str(value)


def fill_rate(filled_orders: int, orders_placed: int) -> float:
    """Orders with at least one fill / orders placed (0.0 when nothing was placed)."""
    return filled_orders / orders_placed if orders_placed else 0.0


def fifo_round_trips(fills: Sequence[FillRecord]) -> list[RoundTrip]:
    """Pair closing quantity with the oldest open quantity (FIFO); partial matches split fills."""
    open_lots: deque[list[float]] = deque()  # [side, remaining qty, price, ts, fee per unit]
    trips: list[RoundTrip] = []
    for f in fills:
        remaining = f.qty
        fee_per_unit = f.fee / f.qty if f.qty > 0 else 0.0
        while remaining > QTY_EPS and open_lots and open_lots[0][0] != f.side:
            lot = open_lots[0]
            matched = min(remaining, lot[1])
            direction = int(lot[0])
            gross = direction * (f.price - lot[2]) * matched
            net = gross - lot[4] * matched - fee_per_unit * matched
            trips.append(
                RoundTrip(
                    direction=direction,
                    qty=matched,
                    entry_price=lot[2],
                    exit_price=f.price,
                    entry_ts_ns=int(lot[3]),
                    exit_ts_ns=f.ts_ns,
                    gross_pnl=gross,
                    net_pnl=net,
                )
            )
            lot[1] -= matched
            remaining -= matched
            if lot[1] <= QTY_EPS:
                open_lots.popleft()
        if remaining > QTY_EPS:
            open_lots.append([float(f.side), remaining, f.price, float(f.ts_ns), fee_per_unit])
    return trips


def win_rate(trips: Sequence[RoundTrip]) -> float | None:
    """Share of round trips closed with net pnl > 0 (a break-even trip is not a win).

    "> 0" means above float noise: more than 1e-9 of the trip's entry notional.
    """
    if not trips:
        return None
    return sum(1 for t in trips if t.net_pnl > 1e-9 * t.entry_price * t.qty) / len(trips)


def avg_spread_captured_bps(trips: Sequence[RoundTrip]) -> float | None:
    """Quantity-weighted mean round-trip spread in bps (gross of fees)."""
    total = sum(t.qty for t in trips)
    if total <= 0:
        return None
    return sum(t.spread_bps * t.qty for t in trips) / total


def avg_fill_edge_bps(fills: Sequence[FillRecord]) -> float | None:
    """Mean of side*(mid_ref - price)/mid_ref in bps over fills that carry a mid_ref."""
    values = [f.side * (f.mid_ref - f.price) / f.mid_ref * 10_000.0 for f in fills if f.mid_ref]
    return sum(values) / len(values) if values else None


def max_abs_inventory(inventory: Sequence[float]) -> float:
    return max((abs(q) for q in inventory), default=0.0)


def time_at_max_inventory(inventory: Sequence[float], max_inventory: float, interval_s: float) -> tuple[float, float]:
    """(seconds, share of samples) with |inventory| >= max_inventory (the configured limit).

    ``inventory`` is sampled at the end of each interval (each bar's close), so every
    sample stands for one interval of ``interval_s`` seconds.
    """
    threshold = max_inventory * (1.0 - 1e-9)
    at_max = sum(1 for q in inventory if abs(q) >= threshold)
    return at_max * interval_s, (at_max / len(inventory) if inventory else 0.0)


def inventory_balance(inventory: Sequence[float], max_inventory: float, band: float = 0.1) -> float:
    """Share of samples (= of time) with |inventory| <= band * max_inventory (the neutral band)."""
    limit = band * max_inventory * (1.0 + 1e-9)
    return sum(1 for q in inventory if abs(q) <= limit) / len(inventory) if inventory else 0.0


def period_returns(equity: Sequence[float], period: int = 1, start: float = 0.0) -> list[float]:
    """Changes of equity over whole periods of ``period`` samples, from ``start`` before the first.

    The equity at samples ``period-1, 2*period-1, ...`` is differenced; a trailing
    partial period is left out (so daily Sharpe uses whole days only).
    """
    if period < 1:
        raise ValueError(f"period must be >= 1, was {period}")
    out = []
    last = start
    for i in range(period - 1, len(equity), period):
        out.append(equity[i] - last)
        last = equity[i]
    return out


def periods_per_year(interval_s: float) -> float:
    return SECONDS_PER_YEAR / interval_s


def sharpe_ratio(returns: Sequence[float], interval_s: float) -> float | None:
    """Annualised Sharpe of per-interval PnL changes: mean/std(ddof=1) * sqrt(365*86400/interval_s)."""
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns) / n
    var = sum((r - mean) ** 2 for r in returns) / (n - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(periods_per_year(interval_s))


def sortino_ratio(returns: Sequence[float], interval_s: float) -> float | None:
    """Annualised Sortino: mean / sqrt(mean(min(r,0)^2)) * sqrt(365*86400/interval_s), target 0."""
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns) / n
    downside = sum(min(r, 0.0) ** 2 for r in returns) / n
    if downside <= 0:
        return None
    return mean / math.sqrt(downside) * math.sqrt(periods_per_year(interval_s))


def drawdown_series(equity: Sequence[float], start: float = 0.0) -> list[float]:
    """Peak-to-date minus equity at each point (>= 0); the peak starts at ``start``."""
    peak = start
    out = []
    for e in equity:
        peak = max(peak, e)
        out.append(peak - e)
    return out


def max_drawdown(equity: Sequence[float], start: float = 0.0) -> float:
    return max(drawdown_series(equity, start), default=0.0)


def trades_per_day(fills: int, duration_s: float) -> float | None:
    return fills / (duration_s / 86_400) if duration_s > 0 else None


METRIC_FIELDS = (
    "round_trips",
    "win_rate",
    "avg_spread_captured_bps",
    "avg_fill_edge_bps",
    "max_inventory",
    "time_at_max_inventory_s",
    "time_at_max_inventory_share",
    "inventory_balance",
    "neutral_band",
    "sharpe",
    "sortino",
    "return_interval_s",
    "sharpe_periods_per_year",
    "max_drawdown",
    "trades_per_day",
    "sharpe_note",
    "duration_s",
    "data_start",
    "data_end",
)


def iso_utc(ts_ns: int | None) -> str | None:
    """ISO 8601 UTC with milliseconds of an integer-ns timestamp (capture time, never the clock)."""
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def figures_note(duration_s: float, returns: int, return_interval_s: float) -> str | None:
    """Why Sharpe/Sortino (and per-day rates) are not shown, or None when they are."""
    if duration_s >= SHARPE_MIN_DURATION_S and returns >= SHARPE_MIN_RETURNS:
        return None
    rate = "" if duration_s >= RATE_MIN_DURATION_S else f"; per-day rates need >= {RATE_MIN_DURATION_S} s"
    return (
        f"n/a (run too short): {duration_s:g} s of data, {returns} return intervals of {return_interval_s:g} s; "
        f"Sharpe/Sortino need >= {SHARPE_MIN_DURATION_S} s and >= {SHARPE_MIN_RETURNS} intervals{rate}"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Performance:
    """All metrics of one run; ``fields()`` is what summaries and reports show."""

    fills: int
    round_trips: int
    win_rate: float | None
    avg_spread_captured_bps: float | None
    avg_fill_edge_bps: float | None
    max_inventory: float
    time_at_max_inventory_s: float
    time_at_max_inventory_share: float
    inventory_balance: float
    neutral_band: float
    sharpe: float | None
    sortino: float | None
    return_interval_s: float
    periods_per_year: float
    max_drawdown: float
    trades_per_day: float | None
    duration_s: float
    returns: int = 0  # whole return intervals behind sharpe/sortino
    data_start_ns: int | None = None
    data_end_ns: int | None = None

    @property
    def sharpe_note(self) -> str | None:
        return figures_note(self.duration_s, self.returns, self.return_interval_s)

    def fields(self) -> dict[str, float | int | str | None]:
        def r(x: float | None, nd: int = 6) -> float | None:
            return None if x is None else round(x, nd)

        note = self.sharpe_note
        rates_ok = self.duration_s >= RATE_MIN_DURATION_S

        return {
            "round_trips": self.round_trips,
            "win_rate": r(self.win_rate),
            "avg_spread_captured_bps": r(self.avg_spread_captured_bps, 4),
            "avg_fill_edge_bps": r(self.avg_fill_edge_bps, 4),
            "max_inventory": r(self.max_inventory, 8),
            "time_at_max_inventory_s": r(self.time_at_max_inventory_s, 3),
            "time_at_max_inventory_share": r(self.time_at_max_inventory_share),
            "inventory_balance": r(self.inventory_balance),
            "neutral_band": self.neutral_band,
            "sharpe": None if note else r(self.sharpe, 4),
            "sortino": None if note else r(self.sortino, 4),
            "return_interval_s": self.return_interval_s,
            "sharpe_periods_per_year": r(self.periods_per_year, 3),
            "max_drawdown": r(self.max_drawdown, 8),
            "trades_per_day": r(self.trades_per_day, 3) if rates_ok else None,
            "sharpe_note": note,
            "duration_s": r(self.duration_s, 3),
            "data_start": iso_utc(self.data_start_ns),
            "data_end": iso_utc(self.data_end_ns),
        }


def compute_performance(
    *,
    fills: Sequence[FillRecord],
    inventory: Sequence[float],
    net_pnl: Sequence[float],
    sample_interval_s: float,
    max_inventory_limit: float,
    return_period: int = 1,
    neutral_band: float = 0.1,
    data_start_ns: int | None = None,
    data_end_ns: int | None = None,
) -> Performance:
    """Every metric from the fills and the series sampled at the end of each interval.

    ``inventory``/``net_pnl`` hold the state at the end of each sampling interval
    (each bar's close); the run starts flat with equity 0. Sharpe and Sortino use
    returns over ``return_period`` samples (1440 one-minute bars = one day).
    """
    trips = fifo_round_trips(fills)
    return_interval_s = sample_interval_s * return_period
    returns = period_returns(net_pnl, return_period)
    secs, share = time_at_max_inventory(inventory, max_inventory_limit, sample_interval_s)
    duration_s = len(inventory) * sample_interval_s
    return Performance(
        fills=len(fills),
        round_trips=len(trips),
        win_rate=win_rate(trips),
        avg_spread_captured_bps=avg_spread_captured_bps(trips),
        avg_fill_edge_bps=avg_fill_edge_bps(fills),
        max_inventory=max(max_abs_inventory(inventory), max_abs_inventory(_fill_path(fills))),
        time_at_max_inventory_s=secs,
        time_at_max_inventory_share=share,
        inventory_balance=inventory_balance(inventory, max_inventory_limit, neutral_band),
        neutral_band=neutral_band,
        sharpe=sharpe_ratio(returns, return_interval_s),
        sortino=sortino_ratio(returns, return_interval_s),
        return_interval_s=return_interval_s,
        periods_per_year=periods_per_year(return_interval_s),
        max_drawdown=max_drawdown(net_pnl),
        trades_per_day=trades_per_day(len(fills), duration_s),
        duration_s=duration_s,
        returns=len(returns),
        data_start_ns=data_start_ns,
        data_end_ns=data_end_ns,
    )


def _fill_path(fills: Sequence[FillRecord]) -> list[float]:
    """Inventory right after each fill (a peak between two samples still counts)."""
    q = 0.0
    out = []
    for f in fills:
        q += f.side * f.qty
        out.append(q)
    return out
