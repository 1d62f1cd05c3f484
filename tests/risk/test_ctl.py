"""`mmbot ctl` error paths, in process (the daemon round trips are in test_daemon_risk.py)."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from mmbot.cli.main import app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def no_mmbot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MMBOT_"):
            monkeypatch.delenv(key)


def test_ctl_when_token_missing_then_exit_2_naming_the_variable(no_mmbot_env: None) -> None:
    result = CliRunner().invoke(app, ["ctl", "risk", "status", "--port", "1"])

    assert result.exit_code == 2
    assert "MMBOT_ADMIN__TOKEN" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_ctl_when_daemon_absent_then_exit_1_with_hint(no_mmbot_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBOT_ADMIN__TOKEN", "some-token")

    result = CliRunner().invoke(app, ["ctl", "kill-switch", "on", "--port", str(free_port()), "--timeout", "2"])

    assert result.exit_code == 1
    assert "no mmbot admin endpoint at http://127.0.0.1:" in result.output


def test_ctl_when_reason_unknown_then_exit_2_listing_codes(no_mmbot_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBOT_ADMIN__TOKEN", "some-token")

    result = CliRunner().invoke(app, ["ctl", "risk", "clear", "NOPE", "--port", "1"])

    assert result.exit_code == 2
    assert "KILL_SWITCH" in result.output and "was 'NOPE'" in result.output
