"""What every command shares: the consoles, the one-line error/exit mapping, the summary table.

A module of its own (not mmbot.cli.main) so that the command modules and the drivers
(daemon, live, sandbox, backtest) use it without importing the CLI that registers them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmbot.config.settings import Settings, load_settings
from mmbot.errors import ConfigError, MmbotError
from mmbot.portfolio.metrics import summary_cell

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    from mmbot.observability.logging import scrub  # observability loads prometheus_client: only on an error

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
    from mmbot.observability.logging import configure_logging  # prometheus_client and structlog setup: only on a crash

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
        table.add_row(key, summary_cell(summary, key, value))
    console.print(table)


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    tmp.replace(target)


def make_report(run: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    from mmbot.research.record import load_record  # plotly/matplotlib: only for a report
    from mmbot.research.report import write_report

    return write_report(load_record(run), out)


def print_report(record_dir: str | Path) -> tuple[Path, Path]:
    html_path, png_path = make_report(record_dir)
    console.print(f"report: {html_path}", highlight=False, soft_wrap=True)
    console.print(f"chart:  {png_path}", highlight=False, soft_wrap=True)
    return html_path, png_path


ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (default: the bundled config/default.yaml)")
]


def fault_tuple(faults: str | None) -> tuple[Any, ...]:
    from mmbot.engine.session import parse_faults  # engine stack (numpy): not for every mmbot call

    try:
        return parse_faults(faults)
    except ValueError as exc:
        raise ConfigError(f"--faults: {exc}") from exc


def sim_overrides(fill_model: str | None, latency_ms: float | None) -> dict[str, Any]:
    sim: dict[str, Any] = {}
    if fill_model is not None:
        sim["fill_model"] = fill_model
    if latency_ms is not None:
        sim["entry_latency_ms"] = latency_ms
        sim["cancel_latency_ms"] = latency_ms
        sim["md_latency_ms"] = latency_ms
    return {"sim": sim} if sim else {}
