"""How the CLI reports errors (mmbot/cli/main.py ``guarded``), in process with CliRunner.

A MmbotError prints its one line and exits with its ``exit_code``; anything else is our
bug: exit 1, one line on stderr, the traceback in the log (a ``command_crashed`` record
at error level). Bad flags stay usage errors (exit 2).
"""

from __future__ import annotations

import ast
import importlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
import typer
from typer.testing import CliRunner, Result

from mmbot.cli.main import app, describe_internal_error
from mmbot.errors import (
    BookIntegrityError,
    ConfigError,
    DataError,
    DataMismatch,
    JournalError,
    MmbotError,
    TemporaryVenueError,
    VenueError,
)
from mmbot.observability import logging as mmlog
from tests.conftest import ROOT


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No MMBOT_ variables leak in; JSON logs; structlog and the root logger restored after."""
    for key in list(os.environ):
        if key.startswith("MMBOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MMBOT_LOG__FORMAT", "json")
    monkeypatch.setenv("MMBOT_AUDIT__DIR", str(tmp_path / "journal"))
    monkeypatch.chdir(tmp_path)
    handlers = logging.getLogger().handlers[:]
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers = handlers


def _split(stderr: str) -> tuple[list[str], list[dict[str, Any]]]:
    """stderr -> (lines that are not log records, the JSON log records)."""
    plain: list[str] = []
    records: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            records.append(orjson.loads(line))
        elif line.strip():
            plain.append(line)
    return plain, records


def _breakeven_raises(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> Result:
    def broken(*_: Any) -> float:
        raise exc

    monkeypatch.setattr("mmbot.strategy.breakeven.breakeven_spread_bps", broken)
    return CliRunner().invoke(app, ["breakeven"])


@pytest.mark.parametrize("exc", [ValueError("boom: a bug"), KeyError("missing"), RuntimeError("line one\nline two")])
def test_cli_when_command_hits_an_internal_bug_then_exit_1_one_line_and_traceback_in_the_log(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    result = _breakeven_raises(monkeypatch, exc)

    plain, records = _split(result.stderr)
    crashed = [r for r in records if r.get("event") == "command_crashed"]
    one_line = " ".join(str(exc).split())
    assert result.exit_code == 1
    assert plain == [f"error: internal error: {type(exc).__name__}: {one_line} (traceback in the log)"]
    assert not any(line.startswith("Traceback") for line in plain)
    assert len(crashed) == 1 and crashed[0]["level"] == "error" and crashed[0]["command"] == "breakeven"
    assert crashed[0]["error_type"] == type(exc).__name__
    assert crashed[0]["exception"].startswith("Traceback (most recent call last)")
    assert "in broken" in crashed[0]["exception"]  # the frame that raised is in the log
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("exc", "code"),
    [(ConfigError("spread_bps must be > 0, was -3"), 2), (DataMismatch("tick 1 contradicts the data"), 2),
     (DataError("bars.csv: no bars"), 2), (BookIntegrityError("book BTC/USDT lost sync"), 1), (JournalError("disk full"), 3),
     (VenueError("venue said no"), 1), (MmbotError("plain [x] message"), 1)],
)
def test_cli_when_mmbot_error_then_its_exit_code_one_line_and_nothing_logged(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, exc: MmbotError, code: int
) -> None:
    result = _breakeven_raises(monkeypatch, exc)

    plain, records = _split(result.stderr)
    assert result.exit_code == code == exc.exit_code
    assert plain == [f"error: {exc}"]
    assert records == []


def test_cli_when_command_raises_typer_exit_then_its_status_passes_through(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _breakeven_raises(monkeypatch, typer.Exit(4))

    assert result.exit_code == 4
    assert result.stderr == ""


def test_cli_when_internal_error_holds_a_registered_secret_then_neither_line_nor_log_shows_it(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-in-a-traceback-42"
    mmlog.register_secret(secret)
    try:
        result = _breakeven_raises(monkeypatch, RuntimeError(f"signed with {secret}"))
    finally:
        mmlog._SECRETS.discard(secret)

    plain, records = _split(result.stderr)
    assert result.exit_code == 1
    assert secret not in result.stderr and secret not in result.stdout
    assert plain == ["error: internal error: RuntimeError: signed with *** (traceback in the log)"]
    assert "signed with ***" in records[0]["exception"]


def test_describe_internal_error_when_exception_group_then_names_the_first_error() -> None:
    group = ExceptionGroup("unhandled errors in a TaskGroup", [RuntimeError("boom"), ValueError("later")])

    text = describe_internal_error(group)

    assert text == "ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions): RuntimeError: boom"


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["run", "--faults", "bogus"], {}, "--faults"),
        (["backtest", "--faults", "freeze@3"], {}, "freeze needs a duration"),
        (["run", "--duration", "0"], {}, "--duration must be > 0, was 0"),
        (["run", "--symbols", ","], {}, "symbols must list at least one symbol"),
        (["emulate", "--symbols", ",", "--duration", "1"], {}, "--symbols must name at least one symbol"),
        (["emulate", "--duration", "-1"], {}, "--duration must be > 0, was -1"),
        (["record", "--symbols", " , ", "--duration", "1"], {}, "--symbols must name at least one symbol"),
        (["ctl", "risk", "clear", "NOPE", "--port", "1"], {"MMBOT_ADMIN__TOKEN": "some-token"}, "risk reason must be one of"),
        (["backtest"], {"MMBOT_INSTRUMENT__TICK_SIZE": "0.003"}, "instrument: tick_size and qty_unit must divide 1 exactly"),
        (["backtest", "--bars", "bundled"], {"MMBOT_STRATEGY__ORDER_SIZE": "0.000001"}, "is below the step size"),
        (["emulate", "--duration", "1"], {"MMBOT_INSTRUMENT__TICK_SIZE": "0.003"}, "emulator: tick_size and qty_unit"),
    ],
)
def test_cli_when_bad_flag_or_config_value_then_exit_2_naming_the_problem(
    cli_env: None, args: list[str], env: dict[str, str], names: str
) -> None:
    result = CliRunner().invoke(app, args, env=env)

    plain, records = _split(result.stderr)
    assert result.exit_code == 2, result.stderr
    assert plain[0].startswith("error: ") and names in "\n".join(plain)  # config errors list every field
    assert "internal error" not in result.stderr
    assert not any(r.get("event") == "command_crashed" for r in records)


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) of every class in mmbot/ whose bases name an exception."""
    found = []
    for path in sorted((ROOT / "mmbot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception", "Down", "Gap", "Silent", "Unsupported", "Mismatch", "Unreachable")) for b in bases):
                    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    found.append((module, node.name))
    return found


def test_every_exception_class_of_mmbot_when_defined_then_derives_from_mmbot_error() -> None:
    classes = _exception_classes()

    outside = [f"{m}.{n}" for m, n in classes if not issubclass(getattr(importlib.import_module(m), n), MmbotError)]
    assert len(classes) >= 15  # the scan sees the hierarchy (errors.py alone has 8)
    assert outside == []


def test_venue_call_error_when_raised_then_a_venue_error_classified_by_outcome_not_retried_as_temporary() -> None:
    import ccxt

    from mmbot.adapters.ccxt.errors import classify
    from mmbot.adapters.ccxt.orders import VenueCallError
    from mmbot.domain.risk import VenueOutcome

    err = VenueCallError(classify(ccxt.RequestTimeout("timed out")))

    assert isinstance(err, VenueError) and not isinstance(err, TemporaryVenueError)
    assert err.outcome.kind is VenueOutcome.TIMEOUT and err.exit_code == 1
