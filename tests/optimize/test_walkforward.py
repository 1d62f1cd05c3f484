"""Walk-forward: windows, the choice on the training window, honest out-of-sample numbers."""

from __future__ import annotations

import pytest

from mmbot.errors import ConfigError
from mmbot.research.grid import COL, GridRules, TickBars, param_matrix, run_chunk
from mmbot.research.optimize import SEED_GRID, rank
from mmbot.research.walkforward import parse_walk_forward, walk_forward, window_bounds


def test_parse_walk_forward_when_days_on_minute_bars_then_bar_counts() -> None:
    assert parse_walk_forward("7d:1d", 60_000) == (10_080, 1_440)
    assert parse_walk_forward("12h:90m", 60_000) == (720, 90)
    assert parse_walk_forward("100:20", 60_000) == (100, 20)


@pytest.mark.parametrize("text", ["7d", "7x:1d", "0:1d", "1.5m:1d", ""])
def test_parse_walk_forward_when_malformed_then_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="walk-forward"):
        parse_walk_forward(text, 60_000)


def test_window_bounds_when_rolling_then_tests_are_adjacent_and_complete() -> None:
    bounds = window_bounds(100, 40, 20)
    assert bounds == [((0, 40), (40, 60)), ((20, 60), (60, 80)), ((40, 80), (80, 100))]


def test_walk_forward_when_bundled_month_then_out_of_sample_is_the_chosen_combo_on_unseen_bars(month_ticks: TickBars) -> None:
    rules = GridRules()
    result = walk_forward(month_ticks, SEED_GRID, rules, train_bars=7 * 1440, test_bars=1440)
    params = param_matrix(SEED_GRID.combinations())
    w = result.windows[5]
    train_obj = run_chunk(month_ticks.slice(*w.train), params, rules)
    best = rank(train_obj, "net_pnl")[0]
    test_obj = run_chunk(month_ticks.slice(*w.test), params[best : best + 1], rules)[0]
    summary = result.summary()
    assert len(result.windows) == (len(month_ticks) - 7 * 1440) // 1440 == 22
    assert w.train[1] == w.test[0]
    assert w.in_sample["net_pnl"] == train_obj[best, COL["net_pnl"]] == max(train_obj[:, COL["net_pnl"]])
    assert w.out_of_sample["net_pnl"] == test_obj[COL["net_pnl"]]
    assert summary["oos_net_pnl"] == pytest.approx(sum(x.out_of_sample["net_pnl"] for x in result.windows))
    assert summary["windows"] == 22


def test_walk_forward_when_data_shorter_than_one_window_then_config_error(month_ticks: TickBars) -> None:
    with pytest.raises(ConfigError, match="at least"):
        walk_forward(month_ticks.slice(0, 100), SEED_GRID, GridRules(), train_bars=80, test_bars=40)
