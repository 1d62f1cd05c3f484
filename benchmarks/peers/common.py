"""Shared by the peer adapters (stdlib only: imported inside each peer's own venv).

The strategy every peer runs ("simple skewed market maker"), in ticks of 0.01 USDT:
every 100 ms of data time, with both sides of the book present,
    mid  = (best_bid + best_ask) / 2
    skew = -SKEW_TICKS * position / MAX_POSITION
    bid  = floor(mid - HALF_SPREAD_TICKS + skew), ask = ceil(mid + HALF_SPREAD_TICKS + skew)
post-only limit orders of ORDER_QTY BTC, one per side, cancelled and replaced when the
price changes; a side is not quoted when the position is at +/-MAX_POSITION.

Events, as mmbot counts them: every price level of a depth diff or snapshot, every trade.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

TICK = 0.01
LOT = 0.00001
ORDER_QTY = 0.001
MAX_POSITION = 0.01
HALF_SPREAD_TICKS = 5
SKEW_TICKS = 10
REQUOTE_NS = 100_000_000

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = [ROOT / "mmbot" / "data" / "btcusdt_20240808.gz", ROOT / "mmbot" / "data" / "btcusdt_20240809.gz"]


def capture_lines() -> Iterator[tuple[int, dict]]:
    """(local_ts_ns, payload) of every line of the bundled capture, in order."""
    for path in CAPTURE:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                ts, _, body = line.partition(b" ")
                yield int(ts), json.loads(body)


def count_events() -> int:
    """Depth levels + trades of the capture (the project's event definition)."""
    n = 0
    for _, msg in capture_lines():
        data = msg.get("data", msg)
        if data.get("e") == "trade":
            n += 1
        elif data.get("e") == "depthUpdate":
            n += len(data["b"]) + len(data["a"])
        elif "lastUpdateId" in data:
            n += len(data["bids"]) + len(data["asks"])
    return n


def emit(result: dict) -> None:
    print("PEER_RESULT " + json.dumps(result), flush=True)


class Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def lap(self) -> float:
        t1 = time.perf_counter()
        dt, self.t0 = t1 - self.t0, t1
        return dt
