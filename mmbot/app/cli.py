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
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from mmbot import __version__
from mmbot.app import cmd_audit, cmd_ctl, cmd_emulator, cmd_optimize, cmd_research, cmd_sandbox, cmd_strategy
from mmbot.app.console import console, describe_internal_error, err_console, fail, guarded, print_summary, settings_for
from mmbot.app.settings import config_hash, make_run_id, redacted_dict
from mmbot.errors import ConfigError
from mmbot.extras import REPORT_MODULES, RESEARCH, require

app = typer.Typer(
    name="mmbot",
    help="mmbot: a market-making daemon (paper trading, backtests, sandbox through ccxt).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (default: the bundled config/default.yaml)")
]


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


def _fault_tuple(faults: str | None) -> tuple[Any, ...]:
    from mmbot.engine.session import parse_faults  # engine stack (numpy): not for every mmbot call

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
    from mmbot.app.daemon import run_daemon  # ccxt and aiohttp (through live/sandbox): only for mmbot run

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
    if report:
        require(RESEARCH, "mmbot backtest --report", *REPORT_MODULES)  # before the run, not after it
    from mmbot.app.backtest_cmd import run_backtest_command  # the audit journal and replay stack: only for mmbot backtest

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

__all__ = ["Path", "app", "console", "describe_internal_error", "entrypoint", "err_console", "fail", "guarded", "make_run_id", "print_summary", "settings_for"]
