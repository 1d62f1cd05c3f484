"""CLI help and usage: -h everywhere, choices and defaults shown, no `<bool>` for plain
flags, and errors that name where a bad value came from."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mmbot.cli.main import app
from tests.conftest import MMBOT


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ALL = list(_commands(typer.main.get_command(app)))


def _help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "-h"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, (path, result.output)
    return result.output


def test_cli_tree_when_listed_then_every_command_group_is_covered() -> None:
    assert ("run",) in ALL and ("ctl", "status") in ALL and ("ctl", "risk", "clear") in ALL and len(ALL) > 20


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "mmbot")
def test_help_when_dash_h_then_exit_0_and_no_bool_metavar(path: tuple[str, ...]) -> None:
    text = _help(*path)

    assert "<bool>" not in text
    assert "-h" in text and "--help" in text


def test_run_help_when_shown_then_choices_and_defaults_listed() -> None:
    text = " ".join(_help("run").split())

    assert "<paper|sandbox|live>" in text and "[default: (config mode: paper)]" in text
    assert "<touch|risk_averse|probabilistic>" in text and "(config sim.fill_model: risk_averse)" in text
    assert "[default: (config run.speed: 1.0)]" in text
    assert "[default: (no limit)]" in text and "(> 0)" in text
    assert "--no-status no status line" in text  # a flag: no value column


def test_backtest_help_when_shown_then_fill_model_choices_listed() -> None:
    assert "<touch|risk_averse|probabilistic>" in _help("backtest")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["run", "--speed", "-1"], {}, "run.speed (command-line flag --speed): Input should be greater than or equal to 0 (was -1.0)"),
        (["run"], {"MMBOT_RUN__SPEED": "-2"}, "run.speed (environment variable MMBOT_RUN__SPEED)"),
        (["run", "--latency-ms", "-3"], {}, "sim.md_latency_ms (command-line flag --latency-ms)"),
        (["run", "--mode", "nope"], {}, "'nope' is not one of 'paper', 'sandbox', 'live'"),
        (["run", "--fill-model", "magic"], {}, "'magic' is not one of 'touch', 'risk_averse', 'probabilistic'"),
        (["run", "--no-status", "true"], {}, "unexpected extra argument"),
        (["run", "--duration", "0"], {}, "--duration must be > 0, was 0.0"),
    ],
)
def test_run_when_bad_value_then_exit_2_naming_its_origin(args: list[str], env: dict[str, str], expected: str,
                                                          clean_env: dict[str, str]) -> None:
    proc = subprocess.run([*MMBOT, *args], env={**clean_env, **env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 2, proc.stderr
    assert expected in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr
    if "--speed" in args:
        assert "bundled default.yaml" not in proc.stderr  # the flag set it, not the file


def test_config_error_when_value_from_the_file_then_header_names_the_file(tmp_path: Any, clean_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: {speed: -4}\n")

    proc = subprocess.run([*MMBOT, "run", "-c", str(bad)], env=clean_env, capture_output=True, text=True, timeout=60)

    assert proc.returncode == 2
    assert f"invalid configuration ({bad}):" in proc.stderr and "run.speed: Input should be" in proc.stderr
