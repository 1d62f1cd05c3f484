"""``mmbot run``: start-up checks, logging, the asyncio run and the summary."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import structlog
from rich.console import Console

from mmbot.app import hooks, live
from mmbot.app.console import print_summary
from mmbot.app.runner import Runner, RunOptions, run_paper
from mmbot.app.settings import Settings, make_run_id
from mmbot.app.wiring import capture_paths
from mmbot.engine.session import Fault
from mmbot.errors import ConfigError
from mmbot.marketdata.capture import check_capture_files
from mmbot.observability.logging import bind_run, configure_logging, register_secret
from mmbot.strategy.breakeven import check_breakeven_settings

log = structlog.get_logger("mmbot.daemon")


def startup_checks(settings: Settings) -> None:
    """Refuse configurations that must not start (exit 2 with the reason)."""
    if settings.mode == "live" and os.environ.get("MMBOT_ALLOW_LIVE") != "yes":
        raise ConfigError(
            "mode: live is refused unless the environment variable MMBOT_ALLOW_LIVE=yes is also set "
            "(live trading risks real money; test on paper and a sandbox first)"
        )
    problem = check_breakeven_settings(settings)
    if problem and not settings.strategy.allow_below_breakeven:
        raise ConfigError(problem + "; set strategy.allow_below_breakeven: true to start anyway")


def run_daemon(
    settings: Settings,
    *,
    config_path: str | None,
    data: list[str] | None,
    duration: float | None,
    loop: bool,
    summary_json: str | None,
    faults: tuple[Fault, ...],
    fresh: bool,
    status: bool,
    extra_tasks: list[Any] | None = None,
    fills_json: str | None = None,
    force_resume: bool = False,
) -> int:
    """Start-up checks first, then the run; its journal is opened only once start-up succeeded.

    Replay: capture files checked and the metrics port bound before the audit hook opens
    (or continues) the journal. Live feed, sandbox and live: markets loaded (and for orders
    the venue reconciled) and the metrics port bound before their (always new) journal.
    """
    configure_logging(settings.log.level, settings.log.format)
    if settings.mode != "paper":
        from mmbot.app.sandbox import apply_secrets_file  # ccxt execution: only for sandbox/live modes

        settings = apply_secrets_file(settings)
    for secret in (settings.exchange.api_key, settings.exchange.secret, settings.admin.token):
        if secret is not None:
            register_secret(secret.get_secret_value())
    startup_checks(settings)
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
    run_id = make_run_id(settings)
    bind_run(run_id, ",".join(settings.symbols))
    if settings.mode in ("sandbox", "live"):
        from mmbot.app.sandbox import run_sandbox  # ccxt execution: only for sandbox/live modes

        return run_sandbox(settings, run_id=run_id, duration=duration, summary_json=summary_json, status=status,
                           config_path=config_path)
    if settings.data.source == "live":
        return live.run_live(settings, run_id=run_id, config_path=config_path, duration=duration, summary_json=summary_json, status=status)
    paths = capture_paths(settings, data)
    check_capture_files(paths)
    options = RunOptions(
        paths=paths,
        speed=settings.run.speed,
        duration_s=duration,
        loop=loop,
        summary_json=summary_json,
        faults=faults,
        config_path=config_path,
        status=status,
        fills_json=fills_json,
        force_resume=force_resume,
    )
    runner = Runner(settings, run_id, options)

    tasks = list(extra_tasks or []) + hooks.paper_tasks(runner, fresh=fresh)
    log.info(
        "run_started",
        mode=settings.mode,
        data=paths,
        speed=settings.run.speed,
        fill_model=settings.sim.fill_model,
        loop=loop,
    )

    out = Console(stderr=False)

    def emit(text: str) -> None:
        out.print(text, highlight=False, markup=False)

    try:
        import uvloop  # uvloop is optional (ImportError falls back to asyncio)

        summary = uvloop.run(run_paper(runner, emit, tasks))
    except ImportError:  # pragma: no cover - platforms without uvloop
        summary = asyncio.run(run_paper(runner, emit, tasks))
    hooks.after_run(runner)
    log.info("run_stopped", stop_reason=summary.get("stop_reason"), fills=summary["fills"], net_pnl=summary["net_pnl"])

    print_summary(summary)
    sys.stdout.flush()
    # 3 when the audit journal could not be written (trading was halted with JOURNAL_FAILURE).
    return runner.state.exit_code
