"""``mmbot ctl``: operate a running daemon through its admin endpoint (127.0.0.1).

::

    mmbot ctl kill-switch on|off|status
    mmbot ctl risk status
    mmbot ctl risk clear REASON

The port comes from ``admin.port`` of the config (``--port`` overrides it), the
token from ``MMBOT_ADMIN__TOKEN`` (the same variable the daemon reads), so inside a
container ``docker exec NAME mmbot ctl kill-switch on`` works as is. Output is the
daemon's JSON answer. Exit status: 0 done; 1 the daemon is unreachable or refused
(for example a release while the kill switch file exists); 2 usage or config
error (unknown reason, no token).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Annotated, Any

import orjson
import typer

from mmbot.cli.common import guarded
from mmbot.config.settings import load_settings
from mmbot.domain.risk import parse_reason
from mmbot.errors import ConfigError, MmbotError

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (for admin.port)")]
PortOption = Annotated[int | None, typer.Option("--port", help="admin port (default: admin.port from the config)")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="seconds to wait for the daemon")]


class DaemonUnreachable(MmbotError):
    """The admin endpoint did not answer or answered with an error (exit 1)."""


def _target(config: str | None, port: int | None) -> tuple[str, str]:
    from mmbot.runtime.admin import ADMIN_HOST  # imported here: aiohttp is slow to import for every CLI call

    settings = load_settings(config)
    token = settings.admin.token.get_secret_value() if settings.admin.token is not None else ""
    if not token:
        raise ConfigError("MMBOT_ADMIN__TOKEN is not set: the admin endpoint needs the daemon's token")
    chosen = port if port is not None else settings.admin.port
    if chosen <= 0:
        raise ConfigError(f"admin port must be given (--port or admin.port), was {chosen}")
    return f"http://{ADMIN_HOST}:{chosen}", token


def call(config: str | None, port: int | None, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    base, token = _target(config, port)
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload: dict[str, Any] = orjson.loads(response.read())
            return payload
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        if exc.code == 400:
            raise ConfigError(f"{method} {path}: {text}") from exc
        raise DaemonUnreachable(f"{method} {path} answered {exc.code}: {text}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DaemonUnreachable(f"no mmbot admin endpoint at {base} ({exc}); is the daemon running with MMBOT_ADMIN__TOKEN set?") from exc


def _print(data: dict[str, Any]) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def register(app: typer.Typer) -> None:
    ctl = typer.Typer(help="Operate a running daemon over its admin endpoint (127.0.0.1, token from MMBOT_ADMIN__TOKEN).",
                      no_args_is_help=True)
    kill = typer.Typer(help="The kill switch: on = halt and cancel every order; off = release.", no_args_is_help=True)
    risk = typer.Typer(help="The risk gate: state, reasons, operator clear.", no_args_is_help=True)

    def _kill(engaged: bool, config: str | None, port: int | None, timeout: float) -> None:
        result = call(config, port, "POST", "/kill-switch", {"engaged": engaged}, timeout)
        _print(result)

    @kill.command("on")
    @guarded
    def kill_on(config: ConfigOption = None, port: PortOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Engage: HALTED, cancel all orders; answers once zero open orders are confirmed."""
        _kill(True, config, port, timeout)

    @kill.command("off")
    @guarded
    def kill_off(config: ConfigOption = None, port: PortOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Release: quoting resumes if no other risk reason holds."""
        _kill(False, config, port, timeout)

    @kill.command("status")
    @guarded
    def kill_status(config: ConfigOption = None, port: PortOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Print whether the kill switch is engaged and how many orders are open."""
        _print(call(config, port, "GET", "/kill-switch", None, timeout))

    @risk.command("status")
    @guarded
    def risk_status(config: ConfigOption = None, port: PortOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Print the risk state, active reasons, kill switch, open orders, watchdogs and limits."""
        _print(call(config, port, "GET", "/status", None, timeout))

    @risk.command("clear")
    @guarded
    def risk_clear(
        reason: Annotated[str, typer.Argument(help="reason code, e.g. MAX_DRAWDOWN, DAILY_LOSS, KILL_SWITCH")],
        config: ConfigOption = None,
        port: PortOption = None,
        timeout: TimeoutOption = 10.0,
    ) -> None:
        """Clear a risk reason (sticky ones need this); a condition that still holds comes back."""
        try:
            code = parse_reason(reason)
        except ValueError as exc:  # a bad argument: usage error (exit 2)
            raise ConfigError(str(exc)) from exc
        _print(call(config, port, "POST", "/risk/clear", {"reason": code.value}, timeout))

    ctl.add_typer(kill, name="kill-switch")
    ctl.add_typer(risk, name="risk")
    app.add_typer(ctl, name="ctl")
