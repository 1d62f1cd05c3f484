"""``mmbot emulate`` (Binance-protocol emulator) and ``mmbot record`` (capture writer)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from decimal import Decimal
from typing import Annotated, Any

import typer

from mmbot.cli.common import guarded, settings_for
from mmbot.errors import ConfigError, MmbotError
from mmbot.marketdata.capture import check_capture_files
from mmbot.observability.logging import configure_logging, register_secret

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (default: the bundled config/default.yaml)")
]

HELP_FAULTS = (
    "faults at start, KIND@SECONDS[:DURATION], comma-separated: drop, gap, garbage, malformed, "
    "freeze:D, http429:D, http418:D, http5xx:D, slow:D, reject:D, skew:D"
)


def _symbols(text: str | None, default: list[str]) -> list[str]:
    if not text:
        return list(default)
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise ConfigError(f"--symbols must name at least one symbol, e.g. BTC/USDT, was {text!r}")
    return symbols


async def _until_signal(duration: float | None) -> str:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reason = {"why": "duration"}

    def on_signal(name: str) -> None:
        reason["why"] = name
        stop.set()

    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        loop.add_signal_handler(sig, on_signal, name)
    try:
        if duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return reason["why"]


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def emulate(
        config: ConfigOpt = None,
        data: Annotated[list[str] | None, typer.Option("--data", help="capture file(s) to replay (default: the bundled BTCUSDT capture)")] = None,
        port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 (0 = any free port)")] = 8765,
        symbols: Annotated[str | None, typer.Option("--symbols", help="comma-separated symbols; extra ones are renamed copies of the capture")] = None,
        host: Annotated[str, typer.Option("--host", help="bind address; keep 127.0.0.1 unless a container network must reach it")] = "127.0.0.1",
        speed: Annotated[float, typer.Option("--speed", help="replay speed (x real time); the capture loops for ever")] = 1.0,
        faults: Annotated[str | None, typer.Option("--faults", help=HELP_FAULTS)] = None,
        api_key: Annotated[str | None, typer.Option("--api-key", help="accepted API key (default: $MMBOT_EXCHANGE__API_KEY or the test key)")] = None,
        secret: Annotated[str | None, typer.Option("--secret", help="HMAC secret (default: $MMBOT_EXCHANGE__SECRET or the test secret)")] = None,
        duration: Annotated[float | None, typer.Option("--duration", help="stop after this many seconds (default: run until Ctrl-C)")] = None,
        slow_ms: Annotated[float, typer.Option("--slow-ms", help="delay of the 'slow' fault")] = 3000.0,
        skew_ms: Annotated[float, typer.Option("--skew-ms", help="clock offset of the 'skew' fault")] = 15000.0,
    ) -> None:
        """Serve the Binance spot protocol on 127.0.0.1 from a capture, with fault injection."""
        from mmbot.emulator.faults import parse_fault_specs  # only for mmbot emulator; keeps the CLI start-up light
        from mmbot.emulator.server import env_credentials, run_emulator  # aiohttp: only for the emulator commands

        settings = settings_for(config)
        configure_logging(settings.log.level, settings.log.format)
        from mmbot.wiring import (
            capture_paths,  # engine stack (numpy): not for every mmbot call
            refuse_unbuilt_futures,
        )
        refuse_unbuilt_futures(settings, "the emulator (Binance spot protocol only; fapi/dapi not built)")
        paths = capture_paths(settings, data)
        check_capture_files(paths)
        try:
            specs = parse_fault_specs(faults)
        except ValueError as exc:
            raise ConfigError(f"--faults: {exc}") from exc
        if speed <= 0:
            raise ConfigError(f"--speed must be > 0, was {speed}")
        if duration is not None and duration <= 0:
            raise ConfigError(f"--duration must be > 0, was {duration}")
        key, sec = env_credentials(api_key, secret)
        register_secret(sec)
        inst = settings.instrument
        options: dict[str, Any] = {
            "tick_size": inst.tick_size,
            "step_size": inst.step_size,
            "min_notional": inst.min_notional,
            # The venue's hidden settings (a test bed for mmbot calibrate): fill model, queue
            # power and latency (applied in wall time by the server).
            "fill_model": settings.sim.fill_model,
            "prob_power": settings.sim.prob_power,
            "entry_latency_ms": settings.sim.entry_latency_ms,
            "cancel_latency_ms": settings.sim.cancel_latency_ms,
            "md_latency_ms": settings.sim.md_latency_ms,
            "latency_model": settings.sim.latency_model,
            "latency_jitter_ms": settings.sim.latency_jitter_ms,
            "seed": settings.sim.seed,
            "maker_fee_bps": Decimal(settings.fees.maker_fee_bps),
            "taker_fee_bps": Decimal(settings.fees.taker_fee_bps),
            "slow_ms": slow_ms,
            "skew_ms": skew_ms,
        }

        async def main() -> str:
            async with run_emulator(
                paths, port=port, symbols=_symbols(symbols, settings.symbols), speed=speed, faults=specs,
                api_key=key, secret=sec, host=host, **options,
            ) as emu:
                print(f"emulator listening on {emu.base_url}", flush=True)
                print(f"  point mmbot at it: MMBOT_DATA__SOURCE=live MMBOT_EXCHANGE__BASE_URL={emu.base_url}", flush=True)
                print(f"  admin (loopback): curl -X POST '{emu.base_url}/admin/fault?kind=gap'", flush=True)
                return await _until_signal(duration)

        why = asyncio.run(main())
        print(f"emulator stopped ({why})", flush=True)
        sys.stdout.flush()

    @app.command()
    @guarded
    def record(
        config: ConfigOpt = None,
        out: Annotated[str, typer.Option("--out", help="capture file to write (gzip, <ts_ns> <json> lines)")] = "capture.gz",
        exchange: Annotated[str | None, typer.Option("--exchange", help="ccxt exchange id (binance: raw streams)")] = None,
        symbols: Annotated[str | None, typer.Option("--symbols", help="comma-separated symbols")] = None,
        duration: Annotated[float | None, typer.Option("--duration", help="stop after this many seconds (default: until Ctrl-C)")] = None,
        base_url: Annotated[str | None, typer.Option("--base-url", help="a Binance-compatible host, e.g. the emulator's http://127.0.0.1:8765")] = None,
    ) -> None:
        """Record live market data (or the emulator's) into the capture format."""
        from mmbot.adapters.ccxt.exchange import ExchangeParams  # ccxt: only for mmbot record
        from mmbot.marketdata.feeds.record import (  # ccxt (through the live feed): only for mmbot record
            RecordStats,
            record_capture,
        )

        overrides: dict[str, Any] = {}
        if exchange is not None:
            overrides.setdefault("exchange", {})["id"] = exchange
        if base_url is not None:
            overrides.setdefault("exchange", {})["base_url"] = base_url
        settings = settings_for(config, overrides)
        configure_logging(settings.log.level, settings.log.format)
        syms = _symbols(symbols, settings.symbols)
        if duration is not None and duration <= 0:
            raise ConfigError(f"--duration must be > 0, was {duration}")
        ex = settings.exchange
        params = ExchangeParams.from_settings(ex)

        async def main() -> RecordStats | None:
            try:
                async with asyncio.TaskGroup() as tg:
                    rec = tg.create_task(record_capture(
                        params, syms, out, watch_timeout_s=ex.watch_timeout_s,
                        reconnect_initial_s=ex.reconnect_initial_s, reconnect_max_s=ex.reconnect_max_s,
                    ))
                    stopper = tg.create_task(_until_signal(duration))
                    await asyncio.wait({rec, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    rec.cancel()
                    stopper.cancel()
            except* MmbotError as group:
                raise group.exceptions[0] from None
            return None if rec.cancelled() else rec.result()

        asyncio.run(main())
        print(f"recorded to {out}", flush=True)
