"""The backtrader adapter in Cerebro fills exactly like our bar backtest with backtrader semantics."""

from __future__ import annotations

import pytest

from mmbot.frameworks import MarketMakerAdapter, StrategyConfig, StrategyFramework
from mmbot.frameworks.mm_adapter import run_cerebro
from mmbot.research.bars import Bars
from mmbot.research.grid import GridRules, run_one, tick_bars_from_bars

DAY = 1440  # one day of 1-minute bars

CASES = [
    ({"spread_bps": 20, "max_inventory": 10, "order_size": 1.0, "skew_factor": 0.001, "update_freq": 1}, "clamp"),
    ({"spread_bps": 10, "max_inventory": 5, "order_size": 1.5, "skew_factor": 0.002, "update_freq": 2}, "allow"),
    ({"spread_bps": 10, "max_inventory": 5, "order_size": 2.0, "skew_factor": 0.002, "update_freq": 5}, "clamp"),
]


@pytest.mark.parametrize(("params", "cross"), CASES)
def test_backtrader_adapter_when_run_in_cerebro_on_a_day_then_fills_equal_bar_backtest(
    month_bars: Bars, params: dict[str, float], cross: str
) -> None:
    day = month_bars.slice(0, DAY)
    rows = [list(r) for r in zip(day.ts_ms.tolist(), day.open.tolist(), day.high.tolist(), day.low.tolist(),
                                 day.close.tolist(), day.volume.tolist(), strict=True)]  # fmt: skip
    config = StrategyConfig(
        name="BTC_MarketMaker",
        parameters={**params, "cross_policy": cross},
        timeframe="1m",
        symbols=["BTC/USD"],
        capital=10000,
        framework=StrategyFramework.BACKTRADER,
    )
    strategy = run_cerebro(MarketMakerAdapter(config), rows, cash=1e12)
    ours = run_one(tick_bars_from_bars(day), params, GridRules(fill_semantics="backtrader", cross_policy=cross))
    bt_fills = [(f.bar, f.side, round(f.price * 100), f.size) for f in strategy.fills]
    our_fills = [
        (b, s, p, params["order_size"])
        for b, s, p in zip(ours.fill_bar.tolist(), ours.fill_side.tolist(), ours.fill_price_ticks.tolist(), strict=True)
    ]
    bt_pnl = strategy.broker.getvalue() - 1e12
    assert len(bt_fills) > 100
    assert bt_fills == our_fills
    assert strategy.orders_placed == ours.objectives["orders"]
    assert bt_pnl == pytest.approx(ours.objectives["net_pnl"], abs=1e-3)


def test_strategy_config_when_unknown_parameter_then_value_error_names_it() -> None:
    with pytest.raises(ValueError, match="spred_bps"):
        StrategyConfig(name="x", parameters={"spred_bps": 20})


def test_market_maker_adapter_when_seed_example_then_returns_backtrader_strategy_class() -> None:
    import backtrader as bt

    from mmbot.strategy import SimpleMarketMaker

    config = StrategyConfig(
        name="BTC_MarketMaker",
        parameters={"spread_bps": 20, "max_inventory": 10, "order_size": 1.0, "skew_factor": 0.001, "update_freq": 1},
        timeframe="1m",
        symbols=["BTC/USD"],
        capital=10000,
        framework=StrategyFramework.BACKTRADER,
    )
    strategy_class = MarketMakerAdapter(config).to_backtrader()
    assert issubclass(strategy_class, bt.Strategy)
    assert strategy_class.params.spread_bps == 20
    assert SimpleMarketMaker(spread_bps=20).on_bar(50_000.0)["bid"] == (49_950.0, 1.0)
