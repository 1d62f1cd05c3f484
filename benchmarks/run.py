"""mmbot benchmark runner: `python -m benchmarks.run --quick|--full`.

Prints one JSON document and rewrites BENCHMARKS.md (table: benchmark, ours,
baseline/peer measured in the same run, ratio, goal, met). Sub-second rows are
repeated (interleaved rounds) and reported as the median; ratios under 1.3x are
ties on these noisy 2-core machines.

--full: 5+ interleaved throughput rounds, both peers (their venvs in .bench/ are
created on first use, timed apart), 6 scaling points of 20 s, a 10x-loop memory run.
--quick (CI, < 2 minutes): 2 rounds, no peers, 3 short scaling points, a short
memory run, 1 optimizer repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import suite, throughput

ROOT = Path(__file__).resolve().parents[1]
TIE = 1.3


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _warm_imports() -> None:
    """Module imports (ccxt is pulled in by the wiring) are startup, not per-event cost."""
    import mmbot.cli.backtest
    import mmbot.wiring  # noqa: F401

    throughput.full_pipeline()  # one untimed pass: imports, caches, first allocation


def bench_throughput(rounds: int, between: Any = None) -> dict[str, Any]:
    rows: dict[str, list[float]] = {"parse_only": [], "parse_book": [], "full_pipeline": [], "backtest_command": []}
    fns = {
        "parse_only": throughput.parse_only,
        "parse_book": throughput.parse_and_book,
        "full_pipeline": throughput.full_pipeline,
        "backtest_command": throughput.backtest_command,
    }
    for i in range(rounds):  # interleaved rounds
        if between is not None and i == rounds // 2:
            between()  # the peers run in the middle of our rounds
        for name, fn in fns.items():
            rows[name].extend(throughput.timed(fn, 1))
    med = {name: _median(v) for name, v in rows.items()}
    return {
        "rounds": rounds,
        "events": 320_015,
        "events_per_second": med,
        "all_rounds": rows,
        "ratio_full_vs_parse_only": med["full_pipeline"] / med["parse_only"],
        "ratio_full_vs_parse_book": med["full_pipeline"] / med["parse_book"],
    }


def _ratio(ours: float, theirs: float) -> str:
    if not theirs:
        return "-"
    r = ours / theirs
    return f"{r:.2f}x" + (" (tie)" if 1 / TIE < r < TIE else "")


def _n(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def table(result: dict[str, Any]) -> list[str]:
    tp = result["throughput"]["events_per_second"]
    full = tp["full_pipeline"]
    rows = [
        "| benchmark | ours | baseline/peer (same run) | ratio | goal | met |",
        "|---|---:|---:|---:|---|---|",
        f"| replay throughput, full pipeline vs parse-only (events/s, raw gzip) | {full:,.0f} | {tp['parse_only']:,.0f} (orjson parse only) | "
        f"{_ratio(full, tp['parse_only'])} | - | - |",
        f"| replay throughput, full pipeline vs parse + book (events/s, raw gzip) | {full:,.0f} | {tp['parse_book']:,.0f} (mmbot reader + L2Book) | "
        f"{_ratio(full, tp['parse_book'])} | - | - |",
        f"| `mmbot backtest` as shipped (default config: + audit journal + run record), events/s, vs the replay core above | "
        f"{tp['backtest_command']:,.0f} | {full:,.0f} (replay core, journal off) | {_ratio(tp['backtest_command'], full)} | - | - |",
    ]
    peers = result.get("peers", {})
    naut = peers.get("nautilus_trader", {})
    if "events_per_s" in naut:
        r = full / naut["events_per_s"]
        rows.append(f"| replay throughput vs nautilus_trader {naut['version']} (events/s; ours raw gzip, theirs pre-converted) | {full:,.0f} | "
                    f"{naut['events_per_s']:,.0f} | {_ratio(full, naut['events_per_s'])} | >= 3x | {'met' if r >= 3 else 'not met'} |")
    else:
        rows.append(f"| replay throughput vs nautilus_trader | {full:,.0f} | not run: {naut.get('error', 'n/a')} | - | >= 3x | not measured |")
    if "events_per_s" in naut:
        # The "full pipeline" includes the journal: the shipped command against the same peer.
        shipped = tp["backtest_command"]
        r = shipped / naut["events_per_s"]
        rows.append(f"| `mmbot backtest` as shipped (journal on) vs nautilus_trader {naut['version']} (events/s) | {shipped:,.0f} | "
                    f"{naut['events_per_s']:,.0f} | {_ratio(shipped, naut['events_per_s'])} | >= 3x | {'met' if r >= 3 else 'not met'} |")
    hft = peers.get("hftbacktest", {})
    if "events_per_s" in hft:
        rows.append(f"| replay throughput vs hftbacktest {hft['version']} warm (events/s; ours raw gzip, theirs pre-converted) | {full:,.0f} | "
                    f"{hft['events_per_s']:,.0f} | {_ratio(full, hft['events_per_s'])} | as close as Python allows | - |")
        rows.append(f"| replay throughput vs hftbacktest first run in a process (incl. numba compilation) | {full:,.0f} | "
                    f"{hft['events_per_s_first_run']:,.0f} | {_ratio(full, hft['events_per_s_first_run'])} | - | - |")
    else:
        rows.append(f"| replay throughput vs hftbacktest | {full:,.0f} | not run: {hft.get('error', 'n/a')} | - | as close as Python allows | not measured |")
    lat = result["latency_replay"]
    rows.append(f"| tick-to-quote in-process on the replay, p50 / p99 / p99.9 (us; {lat['samples']} quoting frames) | "
                f"{lat['p50_us']:,.0f} / {lat['p99_us']:,.0f} / {lat['p999_us']:,.0f} | - | - | p99 < 1 ms | {'met' if lat['p99_us'] < 1000 else 'not met'} |")
    e2e = result.get("latency_e2e", {})
    if "p99_us" in e2e:
        rows.append(f"| tick-to-quote end to end, ccxt.pro <- `mmbot emulate` on loopback, p50 / p99 / p99.9 (us; {e2e['samples']} samples in {e2e['seconds']} s) | "
                    f"{e2e['p50_us']:,.0f} / {e2e['p99_us']:,.0f} / {e2e['p999_us']:,.0f} | - | - | - | - |")
    else:
        rows.append(f"| tick-to-quote end to end via ccxt + `mmbot emulate` | not run: {e2e.get('error', 'n/a')} | - | - | - | not measured |")
    sbx = result.get("latency_e2e_sandbox", {})
    if "p99_us" in sbx:
        rows.append(f"| tick-to-quote end to end, sandbox runner: ccxt.pro market data -> order action handed to the ccxt executor (REST to `mmbot emulate`), "
                    f"p50 / p99 / p99.9 (us; {sbx['samples']} samples in {sbx['seconds']} s; the order call itself: p50 {sbx['order_call_p50_us']:,.0f} / "
                    f"p99 {sbx['order_call_p99_us']:,.0f} us) | {sbx['p50_us']:,.0f} / {sbx['p99_us']:,.0f} / {sbx['p999_us']:,.0f} | - | - | - | - |")
    elif sbx:
        rows.append(f"| tick-to-quote end to end, sandbox runner (orders through ccxt) | not run: {sbx.get('error', 'n/a')} | - | - | - | not measured |")
    sc = result["scaling"]
    best = sc["largest_n_loop_lag_p99_under_10ms"]
    tested = [p["symbols"] for p in sc["points"]]
    strict = sc.get("largest_n_also_never_1s_behind")
    rows.append(f"| symbols per process at real Binance rates (largest N tested with loop lag p99 < 10 ms; N tested: {', '.join(map(str, tested))}) | "
                f"{best} (largest that also never fell 1 s behind real time: {strict}) | - | - | >= 200 | {'met' if best >= 200 else 'not met'} |")
    opt = result.get("optimizer", {})
    if "grid" in opt:
        g = opt["grid"].get(f"{opt['cores']}_threads") or next(iter(opt["grid"].values()))
        bt = result.get("backtrader", {})
        bt_s = bt.get("extrapolated_full_grid_s")
        rows.append(f"| optimizer: 960-combination seed grid on {opt['bars']:,} 1-min bars, wall (s, {opt['cores']} threads, median; after compilation) | "
                    f"{g['wall_median_s']:.3f} ({g['combos_per_s_median']:,.0f} combos/s) | "
                    f"{_n(bt_s, 0)} s backtrader optstrategy, EXTRAPOLATED from {bt.get('combinations_run', '?')} combos x {bt.get('bars_per_run', '?')} bars | "
                    f"{(bt_s / g['wall_median_s']) if bt_s else 0:,.0f}x faster | < 2 s | {'met' if g['wall_median_s'] < 2 else 'not met'} |")
        rows.append(f"| optimizer: numba compile from scratch / cache load (s) | {opt['numba_compile_s']:.2f} / {opt['numba_cache_load_s']:.2f} | - | - | - | - |")
    else:
        rows.append(f"| optimizer grid | not run: {opt.get('error', 'n/a')} | - | - | < 2 s | not measured |")
    mem = result.get("memory", {})
    if "rss_end_mb" in mem:
        growth = mem["growth_mb_per_data_hour_second_half"]
        flat = growth is not None and growth < 1.0
        rows.append(f"| memory: RSS start -> end of {mem['loops']} capture loops ({mem['data_hours']} h of data in {mem['wall_s']} s), MB; "
                    f"growth per hour of data over the second half | {mem['rss_start_mb']} -> {mem['rss_end_mb']}; {growth} MB/h | - | - | flat (< 1 MB per data hour) | "
                    f"{'met' if flat else 'not met'} |")
    else:
        rows.append(f"| memory | not run: {mem.get('error', 'n/a')} | - | - | flat | not measured |")
    return rows


def write_markdown(result: dict[str, Any]) -> None:
    quick = result["mode"] == "quick"
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench{'-quick' if quick else ''}` ({result['mode']} mode) on {result['machine']}, {result['date']}, "
        f"2 cores, load average at start {result['load_avg_start']}; the whole run took {result['wall_seconds']} s. "
        "These machines are noisy: sub-second rows vary +-30-50 %, ratios under 1.3x are ties. "
        "Definitions: docs/performance.md.",
        "",
        *table(result),
        "",
        "## What each row times",
        "",
        "- **Events**: depth levels (diffs and the snapshot) + trades, 320,015 on the bundled capture "
        "(mmbot/data/btcusdt_20240808.gz + btcusdt_20240809.gz, 650.6 s of BTCUSDT). Every throughput row divides this same number.",
        f"- **ours / parse-only / parse + book**: raw gzip capture read and parsed in the timed region; medians of {result['throughput']['rounds']} interleaved rounds. "
        "Full pipeline = `mmbot.cli.backtest.run_l2_backtest` with the default config (parse, books, strategy, risk, simulated venue, portfolio, "
        "markouts, summary metrics) with the audit journal off — the replay core of `mmbot backtest`; it also uses the book-ticker stream "
        "(read, not counted). The peer ratios use this row. The `mmbot backtest` as shipped row adds what the default config also does: "
        "the audit journal (hash-chained, fsynced) and the run record.",
        "- **nautilus_trader**: `BacktestEngine.run()` on data pre-converted in memory by nautilus' own Binance adapter schemas "
        "(OrderBookDeltas + TradeTicks, L2_MBP book, logging bypassed); conversion and engine setup timed apart (below). Strategy: "
        "benchmarks/peers/common.py (skewed market maker re-quoting every 100 ms).",
        "- **hftbacktest**: the same strategy as an `@njit` loop on `HashMapMarketDepthBacktest`, data pre-converted by hftbacktest's "
        "Binance converter (npz cached in .bench/data); warm = later runs in the same process; first run includes numba compilation.",
        "",
    ]
    peers = result.get("peers", {})
    if peers:
        lines += ["## Peers", ""]
        for name, p in peers.items():
            env = result.get("peer_envs", {}).get(name, {})
            lines.append(f"- **{name}**: " + (f"error: `{p['error']}`" if "error" in p else json.dumps({k: v for k, v in p.items() if k != "pid"})))
            if env:
                lines.append(f"  - environment: {json.dumps(env)}")
        lines.append("")
    sc = result["scaling"]
    lines += [
        f"## Symbol scaling ({sc['seconds_per_point']} s per point, real rate)",
        "",
        "| N | CPU share | loop lag p99 (ms) | tick-to-quote p99 (us) | max behind schedule (s) | events handled |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for p in sc["points"]:
        lines.append(f"| {p['symbols']} | {p['cpu_share']:.2f} | {p['loop_lag_p99_ms']} | {p['t2q_p99_us']:,.0f} | {p['behind_max_s']} | {p['events_handled']:,} |")
    lines += ["", "Raw figures: the JSON printed by the run (`python -m benchmarks.run --full > bench.json`).", ""]
    # The committed BENCHMARKS.md holds the full run; a quick run (CI) writes beside it
    # in .bench/ so it never overwrites the full table.
    target = ROOT / "BENCHMARKS.md" if not quick else ROOT / ".bench" / "BENCHMARKS-quick.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="short run for CI (< 2 minutes, no peers)")
    group.add_argument("--full", action="store_true", help="the whole suite")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite BENCHMARKS.md")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers")
    parser.add_argument("--markdown-from", metavar="JSON", help="only rewrite BENCHMARKS.md from a saved result")
    args = parser.parse_args(argv)
    if args.markdown_from:
        saved = json.loads(Path(args.markdown_from).read_text())
        sc = saved["scaling"]
        lag_ok = [p["symbols"] for p in sc["points"] if p["loop_lag_p99_ms"] < 10.0]
        sc["largest_n_loop_lag_p99_under_10ms"] = max(lag_ok) if lag_ok else 0
        kept = [p["symbols"] for p in sc["points"] if p["loop_lag_p99_ms"] < 10.0 and p["behind_max_s"] < 1.0]
        sc.setdefault("largest_n_also_never_1s_behind", max(kept) if kept else 0)
        write_markdown(saved)
        return 0
    full = bool(args.full)
    mode = "full" if full else "quick"
    started = time.perf_counter()
    result: dict[str, Any] = {
        "mode": mode,
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_avg_start": round(os.getloadavg()[0], 2),
    }

    def log(msg: str) -> None:
        print(f"[bench {time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if full and not args.no_peers:
        log("peer environments")
        result["peer_envs"] = {name: suite.ensure_peer_env(name) for name in suite.PEERS}
    log("warm-up")
    _warm_imports()
    peers: dict[str, Any] = {}

    def run_peers() -> None:
        if args.no_peers:
            return
        for name in suite.PEERS:
            if not full:  # keeps CI's quick run under 2 minutes; the peers' venvs are not in CI
                peers[name] = {"error": "skipped in quick mode (run by `make bench`)"}
                continue
            log(f"peer {name}")
            try:
                peers[name] = suite.peer(name, rounds=5 if full else 2)
            except Exception as exc:  # a peer failing is a reported result
                peers[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}

    log("throughput (peers in the middle of our rounds)")
    result["throughput"] = bench_throughput(rounds=6 if full else 2, between=run_peers)
    result["peers"] = peers
    log("tick-to-quote on the replay")
    result["latency_replay"] = suite.replay_latency()
    log("tick-to-quote end to end (ccxt + mmbot emulate)")
    result["latency_e2e"] = suite.end_to_end(60 if full else 6)
    log("tick-to-quote end to end, orders through ccxt (sandbox runner + mmbot emulate)")
    result["latency_e2e_sandbox"] = suite.end_to_end_sandbox(60 if full else 6)
    log("symbol scaling")
    result["scaling"] = suite.symbol_scaling([1, 10, 50, 100, 200, 400] if full else [1, 10, 50], 20 if full else 3)
    log("optimizer")
    try:
        from benchmarks import optimizer_bench

        result["optimizer"] = optimizer_bench.measure(5 if full else 1)
    except Exception as exc:
        result["optimizer"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    log("backtrader optstrategy subset")
    try:
        result["backtrader"] = suite.backtrader_subset(8 if full else 2)
    except Exception as exc:
        result["backtrader"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    log("memory")
    result["memory"] = suite.memory(100 if full else 12)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    log("done")
    if not args.no_write:
        write_markdown(result)
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
