"""Shared fixtures for the optimisation tests: the bundled month of 1-minute bars."""

from __future__ import annotations

import pytest

from mmbot.research.bars import Bars, bundled_bars_path, load_bars
from mmbot.research.grid import TickBars, tick_bars_from_bars

SEED_SPACE = {
    "spread_bps": (10, 15, 20, 25, 30),
    "max_inventory": (5, 10, 15, 20),
    "order_size": (0.5, 1.0, 1.5, 2.0),
    "skew_factor": (0.0005, 0.001, 0.0015, 0.002),
    "update_freq": (1, 2, 5),
}


@pytest.fixture(scope="session")
def month_bars() -> Bars:
    return load_bars(bundled_bars_path())


@pytest.fixture(scope="session")
def month_ticks(month_bars: Bars) -> TickBars:
    return tick_bars_from_bars(month_bars)
