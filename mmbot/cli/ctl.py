"""``mmbot ctl``: operate a running daemon through its admin endpoint (127.0.0.1).

::

    mmbot ctl status | orders | fills [--last N] | pnl | risk   readable tables (--json: the raw answer)
    mmbot ctl list                                             the daemons running from this directory
    mmbot ctl pid                                              the daemon's process id (kill -USR1 "$(mmbot ctl pid)")
    mmbot ctl kill-switch on|off|status                        JSON
    mmbot ctl risk status                                      JSON (= mmbot ctl risk --json)
    mmbot ctl risk clear REASON                                JSON

Which daemon: ``--port`` names its admin port; otherwise the run files in the run
directory ``run.dir`` (default ``var/run``, :mod:`mmbot.runtime.run_file`) say which
daemons are running: one is used as is; several are listed and one must be chosen with
``--run RUN_ID`` (a prefix is enough) or ``--port`` (exit 2); none falls back to
``admin.port`` of the config. The token comes from ``MMBOT_ADMIN__TOKEN`` (the same
variable the daemon reads), so inside a container ``docker exec NAME mmbot ctl status``
works as is.

Exit status: 0 done; 1 the daemon is unreachable or refused (for example a release
while the kill switch file exists); 2 usage or config error (unknown reason, no token,
several daemons and none chosen, no daemon for ``--run``).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from mmbot.cli.common import console, guarded
from mmbot.config.settings import Settings, load_settings
from mmbot.domain.risk import parse_reason
from mmbot.errors import ConfigError, MmbotError

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (for admin.port and run.dir)")]
PortOption = Annotated[int | None, typer.Option("--port", help="admin port (default: the running daemon's, from its run file)")]
RunOption = Annotated[str | None, typer.Option("--run", help="run id (or its prefix) of the daemon, when several run")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="seconds to wait for the daemon")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the daemon's JSON answer instead of a table")]
ADMIN_HOST = "127.0.0.1"  # mmbot.runtime.admin binds only this (aiohttp is not imported for a CLI call)


class DaemonUnreachable(MmbotError):
    """The admin endpoint did not answer or answered with an error (exit 1)."""


@dataclass(frozen=True, slots=True)
class Target:
    config: str | None
    port: int | None
    run: str | None
    timeout: float


def _choose(settings: Settings, run: str | None) -> Any:
    """The one running daemon (a RunningDaemon), None when no run file is found, else exit 2."""
    from mmbot.runtime.run_file import running_daemons

    directory = settings.run.dir
    alive, _stale = running_daemons(directory)
    if run is not None:
        chosen = [d for d in alive if d.run_id.startswith(run)]
        if not chosen:
            listed = "; ".join(d.describe() for d in alive) or "none"
            raise ConfigError(f"--run {run}: no running daemon with that run id in {directory} (running: {listed})")
        alive = chosen
    if len(alive) > 1:
        listed = "; ".join(d.describe() for d in alive)
        raise ConfigError(f"several daemons are running (run files in {directory}): {listed}; choose one with --run RUN_ID or --port PORT")
    return alive[0] if alive else None


def _base(target: Target) -> tuple[str, str]:
    settings = load_settings(target.config)
    port = target.port
    if port is None:
        daemon = _choose(settings, target.run)
        if daemon is not None:
            if daemon.admin_port is None:
                raise ConfigError(
                    f"daemon {daemon.describe()} has no admin endpoint: start it with MMBOT_ADMIN__TOKEN set "
                    f"(its kill switch: kill -USR1 {daemon.pid})"
                )
            port = daemon.admin_port
        else:
            port = settings.admin.port
    token = settings.admin.token.get_secret_value() if settings.admin.token is not None else ""
    if not token:
        raise ConfigError("MMBOT_ADMIN__TOKEN is not set: the admin endpoint needs the daemon's token")
    if port <= 0:
        raise ConfigError(f"admin port must be given (--port or admin.port), was {port}")
    return f"http://{ADMIN_HOST}:{port}", token


def call(target: Target, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    base, token = _base(target)
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=target.timeout) as response:
            payload: dict[str, Any] = orjson.loads(response.read())
            return payload
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        if exc.code == 400:
            raise ConfigError(f"{method} {path}: {text}") from exc
        raise DaemonUnreachable(f"{method} {path} answered {exc.code}: {text}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DaemonUnreachable(f"no mmbot admin endpoint at {base} ({exc}); is the daemon running with MMBOT_ADMIN__TOKEN set?") from exc


def _print_json(data: dict[str, Any]) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode() if value else "-"
    return str(value)


def _fields_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, _cell(value))
    return table


def _rows_table(title: str, rows: list[dict[str, Any]], columns: list[str], empty: str) -> Table | str:
    if not rows:
        return empty
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in NUMERIC else "left")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


NUMERIC = frozenset({"price", "qty", "filled", "leaves", "level", "age_s", "fee", "position", "avg_entry", "mark",
                     "realized_pnl", "unrealized_pnl", "fees_paid", "net_pnl", "volume_base", "volume_quote", "fills"})


def status_rows(s: dict[str, Any]) -> list[tuple[str, Any]]:
    reasons = ",".join(s.get("risk_reasons") or []) or "-"
    return [
        ("run_id", s.get("run_id")), ("mode", s.get("mode")), ("symbol", s.get("symbol")),
        ("mid", s.get("mid")), ("quotes", f"{_cell(s.get('quoted_bid'))} / {_cell(s.get('quoted_ask'))}"),
        ("position", s.get("position")), ("net_pnl", s.get("net_pnl")), ("fills", s.get("fills")),
        ("risk", f"{s.get('risk_state')} ({reasons})"), ("kill_switch", "ENGAGED" if s.get("kill_switch_engaged") else "off"),
        ("open_orders", s.get("open_orders")), ("orders_placed", s.get("orders_placed")),
        ("events", s.get("events")), ("config_hash", s.get("config_hash")),
        ("stopping", f"yes ({s.get('stop_reason')})" if s.get("done") or s.get("stop_reason") else "no"),
    ]  # fmt: skip


def risk_rows(s: dict[str, Any]) -> list[tuple[str, Any]]:
    info = s.get("risk_reason_info") or {}
    rows: list[tuple[str, Any]] = [
        ("risk_state", s.get("risk_state")),
        ("risk_reasons", ", ".join(f"{r} ({(info.get(r) or {}).get('cause', '')})".replace(" ()", "") for r in s.get("risk_reasons") or []) or "-"),
        ("kill_switch", "ENGAGED" if s.get("kill_switch_engaged") else "off"),
        ("kill_switch_file", s.get("kill_switch_file")), ("open_orders", s.get("open_orders")),
        ("denials", s.get("risk_denials_by_reason")), ("transitions", s.get("risk_transitions_total")),
    ]
    rows += [(f"watchdog {k}", v) for k, v in (s.get("watchdogs") or {}).items()]
    rows += [(f"limit {k}", v) for k, v in (s.get("params") or {}).items()]
    return rows


def register(app: typer.Typer) -> None:
    ctl = typer.Typer(help="Operate a running daemon over its admin endpoint (127.0.0.1, token from MMBOT_ADMIN__TOKEN).",
                      no_args_is_help=True)
    kill = typer.Typer(help="The kill switch: on = halt and cancel every order; off = release.", no_args_is_help=True)
    risk = typer.Typer(help="The risk gate: state, reasons, limits (a table); status (JSON); operator clear.",
                       invoke_without_command=True)

    @ctl.command("status")
    @guarded
    def status(config: ConfigOption = None, port: PortOption = None, run: RunOption = None,
               timeout: TimeoutOption = 10.0, as_json: JsonOption = False) -> None:
        """The daemon at a glance: mid, our quotes, position, PnL, fills, risk state, open orders."""
        data = call(Target(config, port, run, timeout), "GET", "/status")
        if as_json:
            _print_json(data)
            return
        console.print(_fields_table("mmbot status", status_rows(data)))
        for symbol, per in (data.get("symbols") or {}).items():
            console.print(_fields_table(f"{symbol}", status_rows({**per, "run_id": data.get("run_id"), "mode": data.get("mode")})))

    @ctl.command("orders")
    @guarded
    def orders(config: ConfigOption = None, port: PortOption = None, run: RunOption = None,
               timeout: TimeoutOption = 10.0, as_json: JsonOption = False) -> None:
        """Our open orders: side, price, quantity, filled, status, age."""
        data = call(Target(config, port, run, timeout), "GET", "/orders")
        if as_json:
            _print_json(data)
            return
        columns = ["symbol", "side", "price", "qty", "filled", "status", "level", "age_s", "client_order_id"]
        console.print(_rows_table(f"open orders ({data.get('count', 0)})", data.get("orders") or [], columns, "no open orders"))

    @ctl.command("fills")
    @guarded
    def fills(config: ConfigOption = None, port: PortOption = None, run: RunOption = None, timeout: TimeoutOption = 10.0,
              last: Annotated[int, typer.Option("--last", min=1, max=1000, help="how many of the latest fills")] = 20,
              as_json: JsonOption = False) -> None:
        """The latest fills of the run (newest last)."""
        data = call(Target(config, port, run, timeout), "GET", "/fills?" + urllib.parse.urlencode({"last": last}))
        if as_json:
            _print_json(data)
            return
        columns = ["time", "symbol", "side", "price", "qty", "fee", "liquidity", "reason", "position"]
        title = f"last {data.get('shown', 0)} of {data.get('total', 0)} fills"
        console.print(_rows_table(title, data.get("fills") or [], columns, "no fills yet"))

    @ctl.command("pnl")
    @guarded
    def pnl(config: ConfigOption = None, port: PortOption = None, run: RunOption = None,
            timeout: TimeoutOption = 10.0, as_json: JsonOption = False) -> None:
        """Realised and unrealised PnL, fees, position, average entry and mark, per symbol."""
        data = call(Target(config, port, run, timeout), "GET", "/pnl")
        if as_json:
            _print_json(data)
            return
        columns = ["symbol", "position", "avg_entry", "mark", "realized_pnl", "unrealized_pnl", "fees_paid", "net_pnl",
                   "volume_base", "fills"]
        console.print(_rows_table("PnL (quote currency)", data.get("symbols") or [], columns, "no symbols"))

    @ctl.command("list")
    @guarded
    def list_daemons(config: ConfigOption = None) -> None:
        """The daemons running from this directory (their run files in run.dir)."""
        from mmbot.runtime.run_file import running_daemons

        directory = load_settings(config).run.dir
        alive, stale = running_daemons(directory)
        if not alive:
            console.print(f"no running daemon (no live run file in {directory})", highlight=False, soft_wrap=True)
        for daemon in alive:
            console.print(daemon.describe(), highlight=False, soft_wrap=True)
        for path in stale:
            console.print(f"stale run file (process gone): {path}", highlight=False, soft_wrap=True)

    @ctl.command("pid")
    @guarded
    def pid(config: ConfigOption = None, run: RunOption = None) -> None:
        """Print the running daemon's process id, e.g. kill -USR1 "$(mmbot ctl pid)" (exit 2: none or several)."""
        settings = load_settings(config)
        daemon = _choose(settings, run)
        if daemon is None:
            raise ConfigError(f"no running daemon: no live run file in {settings.run.dir}")
        typer.echo(str(daemon.pid))

    @risk.callback()
    @guarded
    def risk_view(ctx: typer.Context, config: ConfigOption = None, port: PortOption = None, run: RunOption = None,
                  timeout: TimeoutOption = 10.0, as_json: JsonOption = False) -> None:
        """The risk gate: state, reasons, kill switch, watchdogs, limits."""
        if ctx.invoked_subcommand is not None:
            return
        data = call(Target(config, port, run, timeout), "GET", "/status")
        if as_json:
            _print_json(data)
            return
        console.print(_fields_table("risk", risk_rows(data)))

    def _kill(engaged: bool, target: Target) -> None:
        _print_json(call(target, "POST", "/kill-switch", {"engaged": engaged}))

    @kill.command("on")
    @guarded
    def kill_on(config: ConfigOption = None, port: PortOption = None, run: RunOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Engage: HALTED, cancel all orders; answers once zero open orders are confirmed."""
        _kill(True, Target(config, port, run, timeout))

    @kill.command("off")
    @guarded
    def kill_off(config: ConfigOption = None, port: PortOption = None, run: RunOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Release: quoting resumes if no other risk reason holds."""
        _kill(False, Target(config, port, run, timeout))

    @kill.command("status")
    @guarded
    def kill_status(config: ConfigOption = None, port: PortOption = None, run: RunOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Print whether the kill switch is engaged and how many orders are open."""
        _print_json(call(Target(config, port, run, timeout), "GET", "/kill-switch"))

    @risk.command("status")
    @guarded
    def risk_status(config: ConfigOption = None, port: PortOption = None, run: RunOption = None, timeout: TimeoutOption = 10.0) -> None:
        """Print the risk state, active reasons, kill switch, open orders, watchdogs and limits (JSON)."""
        _print_json(call(Target(config, port, run, timeout), "GET", "/status"))

    @risk.command("clear")
    @guarded
    def risk_clear(
        reason: Annotated[str, typer.Argument(help="reason code, e.g. MAX_DRAWDOWN, DAILY_LOSS, KILL_SWITCH")],
        config: ConfigOption = None,
        port: PortOption = None,
        run: RunOption = None,
        timeout: TimeoutOption = 10.0,
    ) -> None:
        """Clear a risk reason (sticky ones need this); a condition that still holds comes back."""
        try:
            code = parse_reason(reason)
        except ValueError as exc:  # a bad argument: usage error (exit 2)
            raise ConfigError(str(exc)) from exc
        _print_json(call(Target(config, port, run, timeout), "POST", "/risk/clear", {"reason": code.value}))

    ctl.add_typer(kill, name="kill-switch")
    ctl.add_typer(risk, name="risk")
    app.add_typer(ctl, name="ctl")
