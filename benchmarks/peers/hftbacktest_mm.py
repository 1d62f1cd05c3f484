"""hftbacktest 2.4.4 running the benchmark's skewed market maker on the bundled capture.

Run inside .bench/venv-hftbacktest:  python benchmarks/peers/hftbacktest_mm.py --rounds 5

Conversion uses hftbacktest's own Binance converter
(``hftbacktest.data.utils.binancefutures.convert``). It reads USD-M futures JSON, so
each spot line first gets the three fields futures messages carry and spot ones lack
(the "small additions"): ``T`` (transaction time) on depth diffs and on the REST
snapshot (set to ``E``, or the receive time for the snapshot, which has no time),
``X: "MARKET"`` on trades, and ``e: "bookTicker"`` on book tickers (ignored by the
converter without the ``t`` option, as hftbacktest reads depth + trades).
The converted array is cached as .bench/data/hftbacktest_btcusdt.npz (pre-converted data).

Timed: ``conversion_s`` (once), ``first_run_s`` (includes numba compilation of the
strategy and hftbacktest's Rust engine), ``warm_runs_s`` (same process, fresh
backtest object each round, pre-converted data already in memory).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import numpy as np
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.data.utils import binancefutures
from hftbacktest.order import GTX, LIMIT
from hftbacktest.types import DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, TRADE_EVENT
from numba import njit

CACHE = common.ROOT / ".bench" / "data"


def futures_shaped_capture(out: Path) -> None:
    """The capture with the futures-only fields added, same ``<ts_ns> <json>`` line format."""
    with gzip.open(out, "wt") as fh:
        for ts, msg in common.synced_lines():
            data = msg.get("data")
            if data is None:  # REST snapshot: no envelope, no time
                msg["T"] = ts // 1_000_000
            elif data.get("e") == "depthUpdate":
                data["T"] = data["E"]
            elif data.get("e") == "trade":
                data["X"] = "MARKET"
            elif "e" not in data:
                data["e"] = "bookTicker"
            fh.write(f"{ts} {json.dumps(msg, separators=(',', ':'))}\n")


def converted() -> tuple[np.ndarray, float]:
    CACHE.mkdir(parents=True, exist_ok=True)
    npz = CACHE / "hftbacktest_btcusdt.npz"
    timing = CACHE / "hftbacktest_btcusdt.json"  # conversion time, measured when the cache was made
    clock = common.Clock()
    if not npz.exists() or not timing.exists():
        shaped = CACHE / "btcusdt_futures_shaped.gz"
        futures_shaped_capture(shaped)
        binancefutures.convert(str(shaped), output_filename=str(npz))
        shaped.unlink()
        timing.write_text(json.dumps({"conversion_s": round(clock.lap(), 3)}))
    return np.load(npz)["data"], float(json.loads(timing.read_text())["conversion_s"])


@njit
def skewed_mm(hbt, tick, order_qty, max_pos, half_spread_ticks, skew_ticks, step_ns):
    quotes = 0
    bid_id = 0
    ask_id = 0
    next_id = 1
    while hbt.elapse(step_ns) == 0:
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        bb = depth.best_bid_tick
        ba = depth.best_ask_tick
        if bb <= -2147483647 or ba >= 2147483647 or bb >= ba:
            continue
        pos = hbt.position(0)
        mid = (bb + ba) / 2.0
        skew = -skew_ticks * pos / max_pos
        bid = np.floor(mid - half_spread_ticks + skew)
        ask = np.ceil(mid + half_spread_ticks + skew)
        orders = hbt.orders(0)
        if bid_id != 0 and orders.get(bid_id) is not None and orders.get(bid_id).price_tick != bid:
            hbt.cancel(0, bid_id, False)
            bid_id = 0
        if ask_id != 0 and orders.get(ask_id) is not None and orders.get(ask_id).price_tick != ask:
            hbt.cancel(0, ask_id, False)
            ask_id = 0
        if bid_id != 0 and orders.get(bid_id) is None:
            bid_id = 0
        if ask_id != 0 and orders.get(ask_id) is None:
            ask_id = 0
        if bid_id == 0 and pos < max_pos:
            bid_id = next_id
            next_id += 1
            hbt.submit_buy_order(0, bid_id, bid * tick, order_qty, GTX, LIMIT, False)
            quotes += 1
        if ask_id == 0 and pos > -max_pos:
            ask_id = next_id
            next_id += 1
            hbt.submit_sell_order(0, ask_id, ask * tick, order_qty, GTX, LIMIT, False)
            quotes += 1
    return quotes


def one_run(data: np.ndarray) -> tuple[float, int, float]:
    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(1_000_000, 1_000_000)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(common.TICK)
        .lot_size(common.LOT)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    clock = common.Clock()
    quotes = skewed_mm(hbt, common.TICK, common.ORDER_QTY, common.MAX_POSITION, common.HALF_SPREAD_TICKS, common.SKEW_TICKS, common.REQUOTE_NS)
    spent = clock.lap()
    position = hbt.position(0)
    hbt.close()
    return spent, int(quotes), float(position)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import hftbacktest

    data, conversion_s = converted()
    ev = data["ev"]
    kinds = ev & 0xFF
    rows_counted = int(((kinds == DEPTH_EVENT) | (kinds == TRADE_EVENT) | (kinds == DEPTH_SNAPSHOT_EVENT)).sum())
    events = common.count_events()  # same definition as every row (the converter duplicates re-ordered rows)
    first_s, quotes, position = one_run(data)
    warm = [one_run(data)[0] for _ in range(args.rounds)]
    med = statistics.median(warm)
    common.emit({
        "peer": "hftbacktest",
        "version": hftbacktest.__version__ if hasattr(hftbacktest, "__version__") else "2.4.4",
        "rows": len(data),
        "depth_trade_rows": rows_counted,
        "events": events,
        "conversion_s": round(conversion_s, 3),  # once, cached in .bench/data
        "first_run_s": round(first_s, 3),
        "warm_runs_s": [round(x, 4) for x in warm],
        "events_per_s": events / med,
        "events_per_s_first_run": events / first_s,
        "quotes": quotes,
        "final_position": position,
        "pid": os.getpid(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
