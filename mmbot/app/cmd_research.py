"""CLI commands of one area, registered by mmbot.app.cli."""

from __future__ import annotations

from typing import Any

import typer


def register(app: typer.Typer) -> None:
    return None


def run_bar_backtest_command(settings: Any, **kwargs: Any) -> None:
    from mmbot.errors import ConfigError

    raise ConfigError("bar backtests are not available in this build yet")
