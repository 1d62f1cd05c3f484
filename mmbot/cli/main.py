"""The ``mmbot`` command line (typer). Every command takes ``--config PATH``.

Exit statuses of every command wrapped by :func:`guarded`:

* an :class:`~mmbot.errors.MmbotError` (the errors the user can fix: bad config, bad
  data, bad arguments, an unreachable venue) prints its one-line message and exits with
  its ``exit_code`` (the rule in :mod:`mmbot.errors`): 2 to fix the input (usage,
  config, an input file missing, unreadable, malformed or contradicting the config),
  3 the audit journal, 1 a failure while running; never a traceback;
* anything else is our bug: one line ``error: internal error: <type>: <message>
  (traceback in the log)`` on stderr, exit 1, and the full traceback in the log
  (structlog event ``command_crashed`` at error level, JSON or console per ``log.*``).
  A plain ``ValueError`` is such a bug too: code that turns bad user input into an
  error raises ``ConfigError`` explicitly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from mmbot import __version__
from mmbot.cli import audit, backtest, ctl, emulate, optimize, rerun, research, run, sandbox, strategy
from mmbot.cli.common import (
    CONTEXT_SETTINGS,
    ConfigOpt,
    console,
    describe_internal_error,
    err_console,
    fail,
    guarded,
    print_summary,
    settings_for,
)
from mmbot.config.settings import config_hash, make_run_id, redacted_dict

app = typer.Typer(
    name="mmbot",
    help="mmbot: a market-making daemon (paper trading, backtests, sandbox through ccxt).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        console.print(f"mmbot {__version__}")
        raise typer.Exit(0)


@app.command("check-config")
@guarded
def check_config(
    path: Annotated[str | None, typer.Argument(help="config file to check (default: --config or the bundled one)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print the resolved config (secrets redacted) or name every invalid field (exit 2)."""
    settings = settings_for(path or config)
    from mmbot.strategy.breakeven import check_breakeven_settings  # engine stack (numpy): not for every mmbot call

    problem = check_breakeven_settings(settings)
    data = redacted_dict(settings)

    console.print(yaml.safe_dump(data, sort_keys=False), highlight=False, markup=False)
    console.print(f"# config hash {config_hash(settings)}", highlight=False, markup=False)
    if problem:
        console.print(f"# note: {problem}", highlight=False, markup=False)


def _register_extensions() -> None:
    # Each area adds its own commands, so areas never edit this file at once.

    for module in (run, backtest, strategy, research, optimize, audit, ctl, emulate, sandbox, rerun):
        module.register(app)


_register_extensions()


def entrypoint() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    entrypoint()

__all__ = ["Path", "app", "console", "describe_internal_error", "entrypoint", "err_console", "fail", "guarded", "make_run_id", "print_summary", "settings_for"]
