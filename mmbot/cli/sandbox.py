"""``mmbot compare``: paper vs sandbox on the same emulator stream.

One emulator (in-process, 127.0.0.1, a fresh random API key pair) replays a capture;
two daemons run side by side against it for the same wall-clock duration:

* paper:   ``mmbot run --mode paper`` with ``data.source: live`` (SimVenue in-process),
* sandbox: ``mmbot run --mode sandbox`` (real ccxt orders to the emulator's venue).

Both see the same market-data stream. The report lists, for each, fills, orders
placed, fill rate (orders with a fill / orders placed) and the 5 s markout (mean
signed mid move after each fill, bps; negative = adverse selection), and the
difference sandbox - paper. The two fill paths differ by design only in what paper
cannot see: network latency, post-only rejects against the venue's book at arrival,
rate limits and re-quote timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mmbot.cli.common import guarded, settings_for, write_json_atomic
from mmbot.errors import ConfigError
from mmbot.marketdata.capture import check_capture_files
from mmbot.observability.logging import configure_logging, register_secret

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (default: the bundled config/default.yaml)")]

COMPARED = ("orders_placed", "fills", "fill_rate", "markout_5s_bps", "markout_1s_bps", "volume_base", "net_pnl", "final_inventory")


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def divergence(paper: dict[str, Any], sandbox: dict[str, Any]) -> dict[str, Any]:
    """Per field: paper, sandbox and sandbox - paper (None when either side has no value)."""
    out: dict[str, Any] = {}
    for key in COMPARED:
        p, s = _num(paper.get(key)), _num(sandbox.get(key))
        out[key] = {"paper": paper.get(key), "sandbox": sandbox.get(key), "difference": None if p is None or s is None else round(s - p, 6)}
    return out


def _child_env(base_url: str, audit_dir: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMBOT_EXCHANGE__API_KEY", "MMBOT_EXCHANGE__SECRET"))}
    env.update(
        {
            "MMBOT_DATA__SOURCE": "live",
            "MMBOT_EXCHANGE__BASE_URL": base_url,
            "MMBOT_AUDIT__DIR": audit_dir,
            "MMBOT_METRICS__ENABLED": "false",
            "MMBOT_ADMIN__ENABLED": "false",
            "MMBOT_LOG__FORMAT": "json",
            **extra,
        }
    )
    return env


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def compare(
        config: ConfigOpt = None,
        duration: Annotated[float, typer.Option("--duration", help="seconds each daemon trades (same wall-clock window)")] = 120.0,
        speed: Annotated[float, typer.Option("--speed", help="emulator replay speed (x real time)")] = 1.0,
        data: Annotated[list[str] | None, typer.Option("--data", help="capture file(s) (default: the bundled BTCUSDT capture)")] = None,
        out: Annotated[str | None, typer.Option("--out", help="write both summaries and the divergence as JSON here")] = None,
    ) -> None:
        """Paper vs sandbox on the same emulator stream: fills, fill rate and 5 s markout."""
        from mmbot.emulator.server import run_emulator  # aiohttp: only for the emulator commands

        if duration <= 0:
            raise ConfigError(f"--duration must be > 0, was {duration}")
        if speed <= 0:
            raise ConfigError(f"--speed must be > 0, was {speed}")
        settings = settings_for(config)
        configure_logging(settings.log.level, settings.log.format)
        from mmbot.wiring import (
            capture_paths,  # engine stack (numpy): not for every mmbot call
        )
        paths = capture_paths(settings, data)
        check_capture_files(paths)
        key, secret = "cmp-" + secrets.token_hex(8), "cmp-" + secrets.token_hex(16)
        register_secret(secret)
        inst = settings.instrument
        work = Path(tempfile.mkdtemp(prefix="mmbot-compare-"))

        async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
            async with run_emulator(
                paths, port=0, symbols=settings.symbols, speed=speed, api_key=key, secret=secret,
                tick_size=inst.tick_size, step_size=inst.step_size, min_notional=inst.min_notional,
                fill_model=settings.sim.fill_model, maker_fee_bps=settings.fees.maker_fee_bps, taker_fee_bps=settings.fees.taker_fee_bps,
            ) as emu:
                print(f"emulator on {emu.base_url}; paper and sandbox trade for {duration:g} s ...", flush=True)
                runs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
                for mode, extra in (("paper", {}), ("sandbox", {"MMBOT_EXCHANGE__API_KEY": key, "MMBOT_EXCHANGE__SECRET": secret})):
                    summary = work / f"{mode}.json"
                    argv = [sys.executable, "-m", "mmbot", "run", "--mode", mode, "--duration", str(duration), "--no-status", "--summary-json", str(summary)]
                    if config:
                        argv += ["--config", config]
                    env = _child_env(emu.base_url, str(work / "audit"), extra)
                    with (work / f"{mode}.log").open("wb") as log_file:
                        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
                    runs[mode] = (proc, summary)
                deadline = time.monotonic() + duration + 120
                while any(p.poll() is None for p, _ in runs.values()):
                    if time.monotonic() > deadline:
                        for p, _ in runs.values():
                            p.kill()
                        raise ConfigError(f"compare: a daemon did not stop in time; logs in {work}")
                    await asyncio.sleep(0.2)
                results: dict[str, dict[str, Any]] = {}
                for mode, (proc, summary) in runs.items():
                    if proc.returncode != 0 or not summary.exists():
                        raise ConfigError(f"compare: the {mode} daemon exited with status {proc.returncode}; its log: {work / (mode + '.log')}")
                    results[mode] = json.loads(summary.read_text())
                state = emu.emulator.state()
            return results["paper"], results["sandbox"], state

        paper, sandbox, state = asyncio.run(main())
        table = divergence(paper, sandbox)

        view = Table(title=f"paper vs sandbox, same emulator stream ({duration:g} s at {speed:g}x)")
        for column in ("metric", "paper", "sandbox", "sandbox - paper"):
            view.add_column(column)
        for metric, row in table.items():
            view.add_row(metric, str(row["paper"]), str(row["sandbox"]), str(row["difference"]))
        Console().print(view)
        print(f"sandbox venue outcomes: {sandbox['venue'].get('outcomes')}; open orders left: {sandbox['venue'].get('open_orders')}")
        if out:
            write_json_atomic(out, {"duration_s": duration, "speed": speed, "data": paths, "divergence": table,
                                    "paper": paper, "sandbox": sandbox, "emulator": {"open_orders": state.get("open_orders")}})
        sys.stdout.flush()
