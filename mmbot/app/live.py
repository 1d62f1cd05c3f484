"""Live market data (ccxt.pro) and sandbox/live execution runner."""

from __future__ import annotations

from mmbot.app.settings import Settings
from mmbot.errors import ConfigError


def run_live(
    settings: Settings,
    *,
    run_id: str,
    config_path: str | None,
    duration: float | None,
    summary_json: str | None,
    status: bool,
) -> int:
    raise ConfigError("live data and sandbox execution are not available in this build yet")
