"""Shared fixtures: the bundled capture, the instrument, small book builders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mmbot.domain.instrument import Instrument

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "mmbot" / "data"
CAPTURE = [str(DATA / "btcusdt_20240808.gz"), str(DATA / "btcusdt_20240809.gz")]
MMBOT = [sys.executable, "-m", "mmbot"]


@pytest.fixture
def instrument() -> Instrument:
    return Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


@pytest.fixture
def capture_paths() -> list[str]:
    return list(CAPTURE)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """Environment for subprocess runs: no MMBOT_ overrides leak in; journal in tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    env["MMBOT_AUDIT__DIR"] = str(tmp_path / "journal")
    env["MMBOT_METRICS__PORT"] = "0"
    env["MMBOT_ADMIN__PORT"] = "0"
    return env


def live_node(settings: object, run_id: str, *, observers: bool = True, duration_s: float | None = None,
              config_path: str | None = None) -> object:
    """The node of a run on live data (paper or sandbox per ``settings.mode``), built by the composition root."""
    from mmbot import wiring

    request = wiring.RunRequest(duration_s=duration_s, config_path=config_path)
    return wiring.build_node(settings, run_id, request, wiring.ObserverRequest() if observers else None)  # type: ignore[arg-type]


def replay_node(settings: object, run_id: str, paths: list[str], *, speed: float = 0.0, max_events: int | None = None,
                config_path: str | None = None, observers: object = None, duration_s: float | None = None) -> object:
    """The node of ``mmbot run`` on a capture (observers: a wiring.ObserverRequest or None)."""
    from mmbot import wiring

    request = wiring.RunRequest(paths=list(paths), speed=speed, max_events=max_events, config_path=config_path, duration_s=duration_s)
    return wiring.build_node(settings, run_id, request, observers)  # type: ignore[arg-type]
