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


def synced_lines() -> Iterator[tuple[int, dict]]:
    """The capture in Binance's documented order-book sync order, for peers that apply data blindly.

    The REST snapshot (lastUpdateId 50093239218) reached the collector after two diffs
    that go beyond it (u = ...224): Binance's procedure buffers diffs, applies the
    snapshot, then the buffered diffs with u > lastUpdateId. mmbot's book does this
    itself; here the buffered diffs are moved right after the snapshot (with its
    receive time) so a peer applying events in order gets the same book. Without
    it nautilus_trader's L2 book keeps a stale level and stays crossed for 86 % of
    the run. Same lines, same event count.
    """
    pending: list[tuple[int, dict]] = []
    synced = False
    for ts, msg in capture_lines():
        data = msg.get("data", msg)
        if synced:
            yield ts, msg
        elif "lastUpdateId" in data:
            synced = True
            yield ts, msg
            for _, diff in pending:
                if diff["data"]["u"] > data["lastUpdateId"]:
                    yield ts, diff
        elif data.get("e") == "depthUpdate":
            pending.append((ts, msg))
        else:
            yield ts, msg


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
