"""``mmbot run``: start-up checks, logging, the node of the mode, the summary."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated, Any

import structlog
import typer

from mmbot.cli.common import (
    ConfigOpt,
    FillModelChoice,
    ModeChoice,
    config_default,
    console,
    fault_tuple,
    guarded,
    print_summary,
    settings_for,
    sim_overrides,
    write_json_atomic,
)
from mmbot.config.settings import Settings, make_run_id
from mmbot.errors import ConfigError, JournalError
from mmbot.marketdata.capture import check_capture_files
from mmbot.observability.logging import bind_run, configure_logging, register_secret

log = structlog.get_logger("mmbot.daemon")


def startup_checks(settings: Settings) -> None:
    """Refuse configurations that must not start (exit 2 with the reason)."""
    from mmbot.strategy.breakeven import check_breakeven_settings  # the engine stack: only once the command runs

    if settings.mode == "live" and os.environ.get("MMBOT_ALLOW_LIVE") != "yes":
        raise ConfigError(
            "mode: live is refused unless the environment variable MMBOT_ALLOW_LIVE=yes is also set "
            "(live trading risks real money; test on paper and a sandbox first)"
        )
    problem = check_breakeven_settings(settings)
    if problem and not settings.strategy.allow_below_breakeven:
        raise ConfigError(problem + "; set strategy.allow_below_breakeven: true to start anyway")


def _check_resume(settings: Settings, force_resume: bool) -> None:
    if force_resume and settings.mode != "paper":
        raise ConfigError(
            f"--resume continues a crashed paper replay's journal; mode was {settings.mode}, which always starts "
            "a new journal (the venue is the state to recover)"
        )
    if force_resume and settings.data.source == "live":
        raise ConfigError(
            "--resume continues a crashed paper replay's journal; data.source was live (paper on a live feed), "
            "which always starts a new journal (the live feed is the state to recover)"
        )


def run_daemon(
    settings: Settings,
    *,
    config_path: str | None,
    data: list[str] | None,
    duration: float | None,
    loop: bool,
    summary_json: str | None,
    faults: tuple[Any, ...],
    fresh: bool,
    status: bool,
    fills_json: str | None = None,
    force_resume: bool = False,
) -> int:
    """Start-up checks first, then the run; its journal is opened only once start-up succeeded.

    Replay: capture files checked and the metrics port bound before the journal is
    opened (or continued). Live feed, sandbox and live: markets loaded (and for orders
    the venue reconciled) and the metrics port bound before their (always new) journal.
    """
    from mmbot import wiring  # the engine stack: only once the command runs

    configure_logging(settings.log.level, settings.log.format)
    if settings.mode != "paper":
        settings = wiring.apply_secrets_file(settings)
        ex = settings.exchange
        if ex.api_key is None or ex.secret is None:
            raise ConfigError(
                f"mode: {settings.mode} signs orders: set MMBOT_EXCHANGE__API_KEY and MMBOT_EXCHANGE__SECRET "
                "(or exchange.secrets_file)"
            )
        if settings.data.source != "live":
            # Orders go to a real venue, so its own market data drives the quotes.
            settings = settings.model_copy(update={"data": settings.data.model_copy(update={"source": "live"})})
    for secret in (settings.exchange.api_key, settings.exchange.secret, settings.admin.token):
        if secret is not None:
            register_secret(secret.get_secret_value())
    startup_checks(settings)
    _check_resume(settings, force_resume)
    run_id = make_run_id(settings)
    bind_run(run_id, ",".join(settings.symbols))
    paths: list[str] | None = None
    if settings.data.source != "live":
        paths = wiring.capture_paths(settings, data)
        check_capture_files(paths)

    def emit(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    request = wiring.RunRequest(paths=paths, speed=settings.run.speed, loop=loop, duration_s=duration, faults=faults,
                                status=status, emit=emit, config_path=config_path)
    observers = wiring.ObserverRequest(fresh=fresh, force_resume=force_resume, fills=bool(fills_json))
    # A replay opens its observers now: a taken port or a refused journal exits 2 before the loop.
    node = wiring.build_node(settings, run_id, request, observers)
    if paths is not None:
        log.info("run_started", mode=settings.mode, data=paths, speed=settings.run.speed, fill_model=settings.sim.fill_model, loop=loop)

    async def main() -> dict[str, Any]:
        return await node.run()

    try:
        import uvloop  # uvloop is optional (ImportError falls back to asyncio)

        summary: dict[str, Any] = uvloop.run(main())
    except ImportError:  # pragma: no cover - platforms without uvloop
        summary = asyncio.run(main())
    if summary_json:
        write_json_atomic(summary_json, summary)
    if node.fill_log is not None and fills_json:
        write_json_atomic(fills_json, node.fill_log.document(run_id, settings.mode))
    left = (summary.get("venue") or {}).get("open_orders", 0)  # -1: the venue could not be asked
    log.info("run_stopped", stop_reason=summary.get("stop_reason"), fills=summary.get("fills"), net_pnl=summary.get("net_pnl"),
             venue_open_orders=left)
    for per in (summary.get("symbols") or {"": summary}).values():
        if per.get("flat_at_stop") is False:  # the summary and the status line say so too
            log.warning("inventory_left_at_stop", symbol=per.get("symbol"), inventory=per.get("final_inventory"),
                        mark_price=per.get("mark_price"))
    print_summary({k: v for k, v in summary.items() if k != "symbols"})
    sys.stdout.flush()
    if node.exit_code:
        return node.exit_code  # 3: the audit journal could not be written (trading was halted)
    if left:
        log.error("orders_left_open", count=left, action="cancel them at the venue; the next start cancels them too")
        return 1
    if summary.get("stop_reason") == "journal_failure":
        return JournalError.exit_code
    return 0


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def run(
        config: ConfigOpt = None,
        speed: Annotated[float | None, typer.Option(help="replay speed x real time (>= 0); 0 = as fast as possible",
                                                    show_default=config_default("run.speed"))] = None,
        duration: Annotated[float | None, typer.Option(help="stop after this many wall-clock seconds (> 0); without it the run ends with its data (a looped replay or a live feed: at Ctrl-C/SIGTERM)",
                                                       show_default="no limit")] = None,
        loop: Annotated[bool, typer.Option("--loop", help="replay the capture again when it ends")] = False,
        summary_json: Annotated[str | None, typer.Option("--summary-json", help="write the summary JSON here")] = None,
        data: Annotated[list[str] | None, typer.Option("--data", help="capture file(s), read in order (repeat the flag)",
                                                       show_default="config data.path, else the bundled capture")] = None,
        fill_model: Annotated[FillModelChoice | None, typer.Option("--fill-model", help="how the simulated venue fills resting orders",
                                                                   show_default=config_default("sim.fill_model"))] = None,
        latency_ms: Annotated[float | None, typer.Option("--latency-ms", help="entry, cancel and market-data latency (ms, >= 0)",
                                                         show_default="config sim.*_latency_ms: 0")] = None,
        faults: Annotated[str | None, typer.Option("--faults", help="freeze@T:DUR,gap@T,garbage@T (seconds)")] = None,
        mode: Annotated[ModeChoice | None, typer.Option("--mode", help="paper: simulated fills; sandbox/live: orders through ccxt",
                                                        show_default=config_default("mode"))] = None,
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
        if fresh and resume:
            raise ConfigError(
                "--fresh and --resume cannot be used together: --fresh starts a new journal, "
                "--resume continues the crashed run's unsealed one"
            )
        overrides: dict[str, Any] = sim_overrides(fill_model, latency_ms)
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
            faults=fault_tuple(faults),
            fresh=fresh,
            force_resume=resume,
            status=not no_status,
            fills_json=fills_json,
        )
        raise typer.Exit(code)
