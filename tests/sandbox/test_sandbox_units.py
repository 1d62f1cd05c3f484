"""Sandbox runner pieces without a venue: secrets file, baseline, divergence, redaction."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from mmbot.cli.sandbox import divergence
from mmbot.config.settings import load_settings
from mmbot.errors import ConfigError
from mmbot.observability.logging import configure_logging, register_secret
from mmbot.runtime.exchange import baseline_path, load_or_create_baseline
from mmbot.wiring import apply_secrets_file


def test_secrets_file_when_given_then_keys_loaded_and_environment_wins(tmp_path: Path) -> None:
    secrets_file = tmp_path / "keys.yaml"
    secrets_file.write_text("api_key: file-key-123\nsecret: file-secret-456\n")
    from_file = apply_secrets_file(load_settings(environ={"MMBOT_EXCHANGE__SECRETS_FILE": str(secrets_file)}))
    env_wins = apply_secrets_file(
        load_settings(environ={"MMBOT_EXCHANGE__SECRETS_FILE": str(secrets_file), "MMBOT_EXCHANGE__API_KEY": "env-key-789"})
    )

    assert from_file.exchange.api_key is not None and from_file.exchange.api_key.get_secret_value() == "file-key-123"
    assert from_file.exchange.secret is not None and from_file.exchange.secret.get_secret_value() == "file-secret-456"
    assert env_wins.exchange.api_key is not None and env_wins.exchange.api_key.get_secret_value() == "env-key-789"
    assert "file-secret-456" not in repr(from_file) and "file-secret-456" not in from_file.model_dump_json()


@pytest.mark.parametrize("content", ["api_key: only-a-key\n", "[1, 2", "just text"])
def test_secrets_file_when_incomplete_or_broken_then_config_error_without_content(tmp_path: Path, content: str) -> None:
    secrets_file = tmp_path / "keys.yaml"
    secrets_file.write_text(content)
    settings = load_settings(environ={"MMBOT_EXCHANGE__SECRETS_FILE": str(secrets_file)})

    with pytest.raises(ConfigError) as err:
        apply_secrets_file(settings)

    assert str(secrets_file) in str(err.value) and "only-a-key" not in str(err.value)


def test_baseline_when_first_start_then_written_and_reused_after_restart(tmp_path: Path) -> None:
    settings = load_settings(environ={"MMBOT_AUDIT__DIR": str(tmp_path), "MMBOT_AUDIT__ACCOUNT": "acct/1"})
    path = baseline_path(settings.audit.dir, settings.audit.account, settings.exchange.id)
    first, created = load_or_create_baseline(path, {"BTC": Decimal("10"), "USDT": Decimal("1000")}, ["BTC", "USDT"])
    again, created_again = load_or_create_baseline(path, {"BTC": Decimal("10.5"), "USDT": Decimal("970")}, ["BTC", "USDT"])

    assert created and not created_again
    assert first == again == {"BTC": Decimal("10"), "USDT": Decimal("1000")}
    assert path.parent == tmp_path and "/" not in path.name.removeprefix("sandbox-baseline-")
    assert json.loads(path.read_text())["assets"] == {"BTC": "10", "USDT": "1000"}


def test_baseline_when_file_corrupt_then_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("{not json")

    with pytest.raises(ConfigError) as err:
        load_or_create_baseline(path, {"BTC": Decimal(1)}, ["BTC"])

    assert str(path) in str(err.value)


def test_divergence_when_both_sides_then_sandbox_minus_paper() -> None:
    table = divergence({"fills": 19, "fill_rate": 0.15, "markout_5s_bps": -1.0}, {"fills": 12, "fill_rate": 0.13, "markout_5s_bps": None})

    assert table["fills"]["difference"] == -7
    assert table["fill_rate"]["difference"] == pytest.approx(-0.02)
    assert table["markout_5s_bps"]["difference"] is None


def test_logging_when_secret_registered_then_redacted_in_values_and_foreign_logs() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    register_secret("very-secret-value-42")
    structlog.get_logger("t").warning("venue_error", message="binance said very-secret-value-42 is wrong", secret="x")
    import logging

    logging.getLogger("ccxt.base.exchange").warning("request with very-secret-value-42")
    text = stream.getvalue()

    assert "very-secret-value-42" not in text and text.count("***") >= 3
