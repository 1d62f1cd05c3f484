"""Walk-forward optimisation: choose on a training window, judge on the next one.

Rolling windows over bars ``0..N-1`` with ``TRAIN`` and ``TEST`` lengths in bars::

    window w:  train = [w*TEST, w*TEST + TRAIN)     test = [w*TEST + TRAIN, w*TEST + TRAIN + TEST)

Only complete windows are used. In each window the whole grid runs on the training
bars; the best combination by the objective is then run on the test bars, starting
flat (inventory 0, PnL 0; quotes from the first test close). The out-of-sample
figures are the honest ones: nothing in the test window influenced the choice.

Reported per window: the chosen parameters, its in-sample objectives (on the
training bars) and its out-of-sample objectives (on the test bars). In aggregate:

- ``oos_net_pnl``: sum of the test windows' net PnL (a chained, re-flattened run).
- ``is_net_pnl_per_day`` / ``oos_net_pnl_per_day``: net PnL per 24 h of bars, so
  windows of different length compare.
- ``oos_sharpe``: mean / std (ddof 1) of per-window out-of-sample net PnL times
  ``sqrt(windows per year)``, i.e. the Sharpe of the test-window return series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmbot.errors import ConfigError
from mmbot.research.grid import COL, F64, PARAM_NAMES, GridRules, TickBars, param_matrix, run_chunk
from mmbot.research.optimize import GridSpec, rank, run_grid_local

GridRunner = Callable[[TickBars, F64], F64]  # (bars, params) -> objectives

_UNITS_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def bar_interval_ms(bars: TickBars) -> int:
    if len(bars) < 2:
        return 60_000
    return int(np.median(np.diff(bars.ts_ms)))


def parse_length(text: str, interval_ms: int) -> int:
    """``"7d"``, ``"12h"``, ``"90m"``, ``"2w"`` or a plain bar count -> number of bars."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw]?)\s*", text)
    if not m:
        raise ConfigError(f"walk-forward length must look like 7d, 12h, 90m or a bar count, was {text!r}")
    value = float(m.group(1))
    unit = m.group(2)
    bars = value if not unit else value * _UNITS_MS[unit] / interval_ms
    if bars < 1 or not float(bars).is_integer():
        raise ConfigError(f"walk-forward length {text!r} must be a whole number >= 1 of bars ({interval_ms} ms each)")
    return int(bars)


def parse_walk_forward(text: str, interval_ms: int) -> tuple[int, int]:
    train, sep, test = text.partition(":")
    if not sep:
        raise ConfigError(f"--walk-forward must be TRAIN:TEST (e.g. 7d:1d), was {text!r}")
    return parse_length(train, interval_ms), parse_length(test, interval_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class WalkForwardWindow:
    index: int
    train: tuple[int, int]  # bar index range [a, b)
    test: tuple[int, int]
    train_start_ms: int
    test_start_ms: int
    params: dict[str, float]
    in_sample: dict[str, float]
    out_of_sample: dict[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class WalkForwardResult:
    objective: str
    train_bars: int
    test_bars: int
    interval_ms: int
    windows: tuple[WalkForwardWindow, ...]

    def summary(self) -> dict[str, Any]:
        day_bars = 86_400_000 / self.interval_ms
        oos = np.array([w.out_of_sample["net_pnl"] for w in self.windows])
        ins = np.array([w.in_sample["net_pnl"] for w in self.windows])
        n = len(self.windows)
        oos_sharpe = 0.0
        if n >= 2 and oos.std(ddof=1) > 0:
            per_year = 365.0 * day_bars / self.test_bars
            oos_sharpe = float(oos.mean() / oos.std(ddof=1) * math.sqrt(per_year))
        return {
            "objective": self.objective,
            "windows": n,
            "train_bars": self.train_bars,
            "test_bars": self.test_bars,
            "is_net_pnl_per_day": float(ins.sum() / (n * self.train_bars / day_bars)) if n else 0.0,
            "oos_net_pnl_per_day": float(oos.sum() / (n * self.test_bars / day_bars)) if n else 0.0,
            "oos_net_pnl": float(oos.sum()),
            "oos_windows_profitable": int((oos > 0).sum()),
            "is_sharpe_mean": float(np.mean([w.in_sample["sharpe"] for w in self.windows])) if n else 0.0,
            "oos_sharpe": oos_sharpe,
            "is_max_drawdown_mean": float(np.mean([w.in_sample["max_drawdown"] for w in self.windows])) if n else 0.0,
            "oos_max_drawdown_mean": float(np.mean([w.out_of_sample["max_drawdown"] for w in self.windows])) if n else 0.0,
            "is_fill_rate_mean": float(np.mean([w.in_sample["fill_rate"] for w in self.windows])) if n else 0.0,
            "oos_fill_rate_mean": float(np.mean([w.out_of_sample["fill_rate"] for w in self.windows])) if n else 0.0,
        }


def window_bounds(n_bars: int, train_bars: int, test_bars: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    out = []
    start = 0
    while start + train_bars + test_bars <= n_bars:
        out.append(((start, start + train_bars), (start + train_bars, start + train_bars + test_bars)))
        start += test_bars
    return out


def walk_forward(
    bars: TickBars,
    spec: GridSpec,
    rules: GridRules,
    train_bars: int,
    test_bars: int,
    *,
    run: GridRunner | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """Rolling walk-forward; ``run`` evaluates the grid on one window (default: local threads)."""
    bounds = window_bounds(len(bars), train_bars, test_bars)
    if not bounds:
        raise ConfigError(
            f"walk-forward needs at least train + test = {train_bars + test_bars} bars, the data has {len(bars)}"
        )
    runner: GridRunner = run or (lambda b, p: run_grid_local(b, p, rules).objectives)
    params = param_matrix(spec.combinations())
    windows = []
    if progress:
        progress(0, len(bounds))
    for w, ((a, b), (c, d)) in enumerate(bounds):
        train_obj = runner(bars.slice(a, b), params)
        best = rank(train_obj, spec.objective)[0]
        test_obj = run_chunk(bars.slice(c, d), params[best : best + 1], rules)[0]
        chosen = dict(zip(PARAM_NAMES, params[best].tolist(), strict=True))
        chosen["update_freq"] = int(chosen["update_freq"])
        windows.append(
            WalkForwardWindow(
                index=w,
                train=(a, b),
                test=(c, d),
                train_start_ms=int(bars.ts_ms[a]),
                test_start_ms=int(bars.ts_ms[c]),
                params=chosen,
                in_sample={k: float(train_obj[best, j]) for k, j in COL.items()},
                out_of_sample={k: float(test_obj[j]) for k, j in COL.items()},
            )
        )
        if progress:
            progress(w + 1, len(bounds))
    return WalkForwardResult(
        objective=spec.objective,
        train_bars=train_bars,
        test_bars=test_bars,
        interval_ms=bar_interval_ms(bars),
        windows=tuple(windows),
    )
