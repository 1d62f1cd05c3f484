"""Break-even spread: the seed's example, the startup refusal message, flags for backtests."""

from __future__ import annotations

import pytest

from mmbot.cli.run import startup_checks
from mmbot.config.settings import Settings
from mmbot.errors import ConfigError
from mmbot.strategy import breakeven_flags, breakeven_flags_for, breakeven_spread_bps, check_breakeven_settings, quoted_spread_bps


def _settings(**strategy: object) -> Settings:
    return Settings.model_validate(
        {"fees": {"maker_fee_bps": "5", "slippage_bps": "2", "profit_bps": "10"}, "strategy": {"spread_bps": 20, **strategy}}
    )


def test_breakeven_spread_bps_when_seed_example_then_22() -> None:
    assert breakeven_spread_bps(5, 2, 10) == 22


def test_breakeven_spread_bps_when_maker_rebate_then_lower() -> None:
    assert breakeven_spread_bps(-1, 0, 0.5) == pytest.approx(-1.5)


def test_check_breakeven_settings_when_spread_below_then_message_names_both_figures() -> None:
    message = check_breakeven_settings(_settings())

    assert message is not None
    assert "20 bps" in message and "22 bps" in message


def test_startup_checks_when_below_breakeven_then_config_error_unless_allowed() -> None:
    with pytest.raises(ConfigError, match=r"spread 20 bps is below the break-even spread 22 bps"):
        startup_checks(_settings())
    startup_checks(_settings(allow_below_breakeven=True))  # no exception: allowed on purpose


def test_quoted_spread_bps_when_simple_ladder_then_twice_first_offset() -> None:
    ladder = [{"offset_bps": 20, "size": 1.5}, {"offset_bps": 10, "size": 2.0}]

    assert quoted_spread_bps(_settings(ladder=ladder).strategy) == 20
    assert quoted_spread_bps(_settings(ladder=ladder, model="glft").strategy) == 20  # spread_bps: the GLFT floor


def test_breakeven_flags_when_below_then_flag_and_warning_for_results() -> None:
    flags = breakeven_flags(_settings())
    row = breakeven_flags_for(25, 5, 2, 10)

    assert flags["below_breakeven"] is True and flags["breakeven_bps"] == 22 and flags["spread_bps"] == 20
    assert "22 bps" in flags["breakeven_warning"]
    assert row == {"spread_bps": 25, "breakeven_bps": 22, "below_breakeven": False, "breakeven_warning": None}
