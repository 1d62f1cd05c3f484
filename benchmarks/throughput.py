"""Replay throughput: parse-only, parse + book, and the full pipeline, same data, same run.

Every row counts events the project's way (depth levels + trades) over the raw
gzip capture, parse included.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from mmbot.domain.events import BookDelta, BookSnapshot, count_events
from mmbot.domain.instrument import Instrument
from mmbot.marketdata.book import L2Book
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events

DATA = Path(__file__).resolve().parents[1] / "mmbot" / "data"
CAPTURE = [str(DATA / "btcusdt_20240808.gz"), str(DATA / "btcusdt_20240809.gz")]
INSTRUMENT = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")


def parse_only() -> int:
    """Plain orjson parse of every line (a lower bound on what any reader pays)."""
    n = 0
    for path in CAPTURE:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                _, _, body = line.partition(b" ")
                msg = orjson.loads(body)
                data = msg.get("data", msg)
                if "e" in data:
                    n += 1 if data["e"] == "trade" else len(data["b"]) + len(data["a"])
                elif "lastUpdateId" in data:
                    n += len(data["bids"]) + len(data["asks"])
    return n


def parse_and_book() -> int:
    """mmbot's reader (exact ints) + the Binance-synced L2 book."""
    book = L2Book(INSTRUMENT.symbol)
    n = 0
    for event in read_events(CAPTURE, CaptureParser([INSTRUMENT]), ReadStats()):
        n += count_events(event)
        if type(event) is BookDelta:
            book.apply_delta(event)
        elif type(event) is BookSnapshot:
            book.apply_snapshot(event)
    return n


def full_pipeline(journal_dir: str | None = None) -> int:
    """The replay core of `mmbot backtest`: parse, books, strategy, risk, sim, portfolio, summary.

    Journal off unless ``journal_dir`` (the shipped command's default has it on: see
    :func:`backtest_command`).
    """
    from mmbot.cli.backtest import run_l2_backtest
    from mmbot.config.settings import load_settings

    overrides = {"audit": {"enabled": journal_dir is not None, "dir": journal_dir or "var/journal"}}
    settings = load_settings(None, environ={}, overrides=overrides)
    summary, _ = run_l2_backtest(settings, CAPTURE)
    return int(summary["events"])


def timed(fn: Callable[[], int], rounds: int) -> list[float]:
    """Events/s of each round."""
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def backtest_command() -> int:
    """`mmbot backtest` as shipped, in-process: default config, so the audit journal and the
    run record (series for `mmbot report`) are written too (into a temporary directory)."""
    import contextlib
    import io
    import tempfile

    from mmbot.cli.backtest import run_backtest_command
    from mmbot.config.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"audit": {"dir": f"{tmp}/journal"}, "record": {"dir": f"{tmp}/runs"}, "log": {"level": "warning"}}
        settings = load_settings(None, environ={}, overrides=overrides)
        with contextlib.redirect_stdout(io.StringIO()):  # the summary table, as the command prints it
            run_backtest_command(settings, data=CAPTURE, bars=None, summary_json=None, out=None, report=False, faults=())
    return 320_015  # the capture's events (same definition as every row)
