"""What every command shares: the consoles, the one-line error/exit mapping, the summary table.

A module of its own (not mmbot.app.cli) so that the command modules and the drivers
(daemon, live, sandbox, backtest) use it without importing the CLI that registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from mmbot.app.settings import Settings, load_settings
from mmbot.errors import MmbotError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    from mmbot.observability.logging import scrub  # as moved from cli.py: the error mapping is being reworked elsewhere

    message = scrub(message)  # registered keys never reach an error message
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(func: F) -> F:
    """Map MmbotError to a one-line message and its exit status."""
    import functools  # as moved from cli.py: the error mapping is being reworked elsewhere

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MmbotError as exc:
            fail(str(exc), exc.exit_code)
        except ValueError as exc:
            fail(str(exc), 2)
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
