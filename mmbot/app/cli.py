"""The ``mmbot`` command line (typer). Every command takes ``--config PATH``.

Exit statuses of every command wrapped by :func:`guarded`:

* an :class:`~mmbot.errors.MmbotError` (the errors the user can fix: bad config, bad
  data, bad arguments, an unreachable venue) prints its one-line message and exits with
  its ``exit_code``: 2 only for :class:`~mmbot.errors.ConfigError` (usage and config) and
  :class:`~mmbot.errors.DataMismatch` (data that contradicts the config), 1 for the rest;
  never a traceback;
* anything else is our bug: one line ``error: internal error: <type>: <message>
  (traceback in the log)`` on stderr, exit 1, and the full traceback in the log
  (structlog event ``command_crashed`` at error level, JSON or console per ``log.*``).
  A plain ``ValueError`` is such a bug too: code that turns bad user input into an
  error raises ``ConfigError`` explicitly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from mmbot import __version__
from mmbot.app.settings import Settings, config_hash, load_settings, make_run_id, redacted_dict
from mmbot.errors import ConfigError, MmbotError

app = typer.Typer(
    name="mmbot",
    help="mmbot: a market-making daemon (paper trading, backtests, sandbox through ccxt).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (default: the bundled config/default.yaml)")
]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    from mmbot.observability.logging import scrub

    message = scrub(message)  # registered keys never reach an error message
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def describe_internal_error(exc: Exception) -> str:
    """``<type>: <message>`` on one line; an exception group also names its first error."""
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    while isinstance(exc, BaseExceptionGroup) and isinstance(exc.exceptions[0], Exception):
        exc = exc.exceptions[0]
        text += f": {type(exc).__name__}: {' '.join(str(exc).split())}"
    return text


def log_internal_error(exc: Exception, command: str, config: str | None) -> None:
    """The full traceback, at error level, in the log (configured from ``log.*`` if the
    command had not configured logging yet)."""
    import structlog

    from mmbot.observability.logging import configure_logging

    if not structlog.is_configured():
        try:
            log_settings = load_settings(config).log
            level, fmt = log_settings.level, log_settings.format
        except MmbotError:  # the config cannot be read: the defaults still log the crash
            level, fmt = "info", "auto"
        configure_logging(level, fmt)
    structlog.get_logger("mmbot.cli").error(
        "command_crashed", command=command, error_type=type(exc).__name__, error=str(exc), exc_info=exc
    )


def guarded(func: F) -> F:
    """Map MmbotError to its one-line message and exit status; anything else is an internal
    error: one line and exit 1, the traceback in the log (module docstring)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MmbotError as exc:
            fail(str(exc), exc.exit_code)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own exits (typer.Exit is a RuntimeError) and usage errors (BadParameter)
        except Exception as exc:  # our bug: crash loudly, but in the log, not as a bare traceback
            config = kwargs.get("config")
            log_internal_error(exc, func.__name__, config if isinstance(config, str) else None)
            fail(f"internal error: {describe_internal_error(exc)} (traceback in the log)", 1)
        return None

    return wrapper  # type: ignore[return-value]


def settings_for(config: str | None, overrides: dict[str, Any] | None = None) -> Settings:
    return load_settings(config, overrides=overrides)


def print_summary(summary: dict[str, Any], title: str = "run summary") -> None:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        if isinstance(value, (dict, list)):
            value = orjson.dumps(value).decode()
        table.add_row(key, str(value))
    console.print(table)


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
    from mmbot.strategy.breakeven import check_breakeven_settings

    problem = check_breakeven_settings(settings)
    data = redacted_dict(settings)
    import yaml

    console.print(yaml.safe_dump(data, sort_keys=False), highlight=False, markup=False)
    console.print(f"# config hash {config_hash(settings)}", highlight=False, markup=False)
    if problem:
        console.print(f"# note: {problem}", highlight=False, markup=False)


def _fault_tuple(faults: str | None) -> tuple[Any, ...]:
    from mmbot.engine.session import parse_faults

    try:
        return parse_faults(faults)
    except ValueError as exc:
        raise ConfigError(f"--faults: {exc}") from exc


def _sim_overrides(fill_model: str | None, latency_ms: float | None) -> dict[str, Any]:
    sim: dict[str, Any] = {}
    if fill_model is not None:
        sim["fill_model"] = fill_model
    if latency_ms is not None:
        sim["entry_latency_ms"] = latency_ms
        sim["cancel_latency_ms"] = latency_ms
        sim["md_latency_ms"] = latency_ms
    return {"sim": sim} if sim else {}


@app.command()
@guarded
def run(
    config: ConfigOpt = None,
    speed: Annotated[float | None, typer.Option(help="replay speed; 0 = as fast as possible")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many wall-clock seconds")] = None,
    loop: Annotated[bool, typer.Option("--loop", help="replay the capture again when it ends")] = False,
    summary_json: Annotated[str | None, typer.Option("--summary-json", help="write the summary JSON here")] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="capture file(s), read in order")] = None,
    fill_model: Annotated[str | None, typer.Option("--fill-model", help="touch | risk_averse | probabilistic")] = None,
    latency_ms: Annotated[float | None, typer.Option("--latency-ms", help="entry, cancel and market-data latency")] = None,
    faults: Annotated[str | None, typer.Option("--faults", help="freeze@T:DUR,gap@T,garbage@T (seconds)")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="paper | sandbox | live")] = None,
    exchange: Annotated[str | None, typer.Option("--exchange", help="ccxt exchange id (live data)")] = None,
    symbols: Annotated[str | None, typer.Option("--symbols", help="comma-separated symbols (live data)")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="start a new journal, leaving a crashed run's unsealed one as it is")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue a crashed run's unsealed journal even if its config or account differs (journaled)")
    ] = False,
    no_status: Annotated[bool, typer.Option("--no-status", help="no status line")] = False,
    fills_json: Annotated[str | None, typer.Option("--fills-json", help="write every fill (with markouts) here")] = None,
) -> None:
    """Run the daemon: paper trading on the bundled capture by default."""
    from mmbot.app.daemon import run_daemon

    if fresh and resume:
        raise ConfigError(
            "--fresh and --resume cannot be used together: --fresh starts a new journal, "
            "--resume continues the crashed run's unsealed one"
        )
    overrides: dict[str, Any] = _sim_overrides(fill_model, latency_ms)
    if mode is not None:
        overrides["mode"] = mode
    if exchange is not None:
        overrides.setdefault("exchange", {})["id"] = exchange
        if not data:
            # Naming an exchange means live market data from it (unless --data is given).
            overrides.setdefault("data", {})["source"] = "live"
    if duration is not None and duration <= 0:
        raise ConfigError(f"--duration must be > 0, was {duration}")
    if symbols is not None:
        overrides["symbols"] = [s.strip() for s in symbols.split(",") if s.strip()]
    if speed is not None:
        overrides.setdefault("run", {})["speed"] = speed
    settings = settings_for(config, overrides)
    code = run_daemon(
        settings,
        config_path=config,
        data=data,
        duration=duration,
        loop=loop,
        summary_json=summary_json,
        faults=_fault_tuple(faults),
        fresh=fresh,
        force_resume=resume,
        status=not no_status,
        fills_json=fills_json,
    )
    raise typer.Exit(code)


@app.command()
@guarded
def backtest(
    config: ConfigOpt = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="capture file(s) for an L2 backtest")] = None,
    bars: Annotated[str | None, typer.Option("--bars", help="OHLCV bars file (csv/json/feather/parquet); 'bundled' = the bundled month")] = None,
    fill_model: Annotated[str | None, typer.Option("--fill-model", help="touch | risk_averse | probabilistic")] = None,
    latency_ms: Annotated[float | None, typer.Option("--latency-ms", help="entry, cancel and market-data latency")] = None,
    summary_json: Annotated[str | None, typer.Option("--summary-json", help="write the summary JSON here")] = None,
    out: Annotated[str | None, typer.Option("--out", help="directory for the run record")] = None,
    report: Annotated[bool, typer.Option("--report", help="also write the HTML report and print its path")] = False,
    faults: Annotated[str | None, typer.Option("--faults", help="freeze@T:DUR,gap@T,garbage@T (seconds)")] = None,
    fills_json: Annotated[str | None, typer.Option("--fills-json", help="write every fill (with markouts) here")] = None,
) -> None:
    """Backtest on an L2 capture (default: bundled) or on OHLCV bars (--bars)."""
    from mmbot.app.backtest_cmd import run_backtest_command

    settings = settings_for(config, _sim_overrides(fill_model, latency_ms))
    run_backtest_command(
        settings,
        data=data,
        bars=bars,
        summary_json=summary_json,
        out=out,
        report=report,
        faults=_fault_tuple(faults),
        print_summary=print_summary,
        fills_json=fills_json,
    )


def _register_extensions() -> None:
    # Each area adds its own commands, so areas never edit this file at once.
    from mmbot.app import cmd_audit, cmd_ctl, cmd_emulator, cmd_optimize, cmd_research, cmd_sandbox, cmd_strategy

    for module in (cmd_strategy, cmd_research, cmd_optimize, cmd_audit, cmd_ctl, cmd_emulator, cmd_sandbox):
        module.register(app)


_register_extensions()


def entrypoint() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    entrypoint()

__all__ = ["Path", "app", "entrypoint", "fail", "guarded", "make_run_id", "print_summary", "settings_for"]
