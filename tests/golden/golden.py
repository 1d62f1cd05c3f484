"""Golden fills: every fill of ``mmbot backtest`` on the bundled capture, per combination.

The matrix: the default, Avellaneda-Stoikov, GLFT and ladder profiles (config/default.yaml,
config/profiles/{avellaneda,glft,ladder}.yaml) x the three fill models (touch,
risk_averse, probabilistic) x latency 0 and 20 ms (``--latency-ms``: entry, cancel and
market-data latency alike) = 24 runs. Each golden file, ``data/<profile>-<fill model>-<ms>ms.jsonl.gz``,
holds one JSON line per fill as ``mmbot backtest --fills-json`` writes it (exact decimal
strings, capture-time ns, markouts), then a last line with the run's event count and
fill count. The files were generated from the code before the compiled per-event path
(issue 31) and every later change must reproduce them exactly, on the compiled path and
on the pure-Python fallback (``MMBOT_PURE_PYTHON=1``).

Regenerate (only for a deliberate behaviour change, and say so in the commit):
``PYTHONPATH=. python -m tests.golden.golden --write [PROFILE-MODEL-MS ...]``.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
PROFILES = {
    "default": ROOT / "config" / "default.yaml",
    "avellaneda": ROOT / "config" / "profiles" / "avellaneda.yaml",
    "glft": ROOT / "config" / "profiles" / "glft.yaml",
    "ladder": ROOT / "config" / "profiles" / "ladder.yaml",
}
FILL_MODELS = ("touch", "risk_averse", "probabilistic")
LATENCIES_MS = (0, 20)
RUN_ID = "golden"  # client order ids carry the run id: fixed so they compare


def combinations() -> list[str]:
    return [f"{p}-{m}-{ms}ms" for p in PROFILES for m in FILL_MODELS for ms in LATENCIES_MS]


def split(combo: str) -> tuple[str, str, int]:
    profile, model, ms = combo.rsplit("-", 2)
    return profile, model, int(ms.removesuffix("ms"))


def golden_path(combo: str) -> Path:
    return DATA / f"{combo}.jsonl.gz"


def run_fills(combo: str) -> tuple[list[dict[str, Any]], int]:
    """(every fill, events) of ``mmbot backtest --config PROFILE --fill-model M --latency-ms MS``
    on the bundled capture (journal and run record off: they observe, never steer)."""
    from mmbot.cli.backtest import run_l2_backtest
    from mmbot.config.settings import load_settings
    from mmbot.runtime.fill_log import FillLog
    from mmbot.wiring import build_instrument, capture_paths, coid_prefix

    profile, model, ms = split(combo)
    overrides = {
        "sim": {"fill_model": model, "entry_latency_ms": ms, "cancel_latency_ms": ms, "md_latency_ms": ms},
        "audit": {"enabled": False},
        "record": {"enabled": False},
        "log": {"level": "error"},
    }
    settings = load_settings(PROFILES[profile], environ={}, overrides=overrides)
    instrument = build_instrument(settings)
    log = FillLog(instrument)
    summary, _ = run_l2_backtest(settings, capture_paths(settings), run_id=RUN_ID, observers=[log.observe])
    # The id prefix carries the process id (unique per run); the order sequence after it is what compares.
    prefix = coid_prefix(settings, RUN_ID, instrument)
    for fill in log.fills:
        coid = fill["client_order_id"]
        assert coid.startswith(prefix), f"client order id {coid!r} lacks the run's prefix {prefix!r}"
        fill["client_order_id"] = coid[len(prefix):]
    return log.fills, int(summary["events"])


def encode(fills: list[dict[str, Any]], events: int) -> bytes:
    lines = [orjson.dumps(f, option=orjson.OPT_SORT_KEYS) for f in fills]
    lines.append(orjson.dumps({"end": True, "events": events, "fills": len(fills)}, option=orjson.OPT_SORT_KEYS))
    return b"\n".join(lines) + b"\n"


def load(combo: str) -> tuple[list[dict[str, Any]], int]:
    rows = [orjson.loads(line) for line in gzip.decompress(golden_path(combo).read_bytes()).splitlines()]
    end = rows.pop()
    assert end.get("end") and end["fills"] == len(rows), f"{golden_path(combo)}: bad trailer {end}"
    return rows, int(end["events"])


def first_difference(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> str | None:
    """None when equal, else where the two fill lists part (the first differing fill)."""
    for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
        if e != a:
            keys = sorted(k for k in set(e) | set(a) if e.get(k) != a.get(k))
            return f"fill {i} differs in {keys}: expected {e}, got {a}"
    if len(expected) != len(actual):
        return f"{len(expected)} fills expected, {len(actual)} produced"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the golden files (else compare)")
    ap.add_argument("--expect-path", choices=("compiled", "pure"), help="fail unless this per-event path is the one in use")
    ap.add_argument("combos", nargs="*", help="PROFILE-MODEL-MSms (default: all 24)")
    args = ap.parse_args(argv)
    from mmbot.marketdata.fastpath import per_event_path

    path = per_event_path()
    print(f"per-event path: {path}")
    if args.expect_path and path != args.expect_path:
        print(f"expected the {args.expect_path} per-event path, the process uses the {path} one"
              + (" (build it: pip install -e . with Cython and gcc)" if args.expect_path == "compiled" else ""))
        return 1
    combos = args.combos or combinations()
    failed = 0
    for combo in combos:
        fills, events = run_fills(combo)
        if args.write:
            DATA.mkdir(parents=True, exist_ok=True)
            golden_path(combo).write_bytes(gzip.compress(encode(fills, events), compresslevel=9, mtime=0))
            print(f"{combo}: wrote {len(fills)} fills, {events} events")
            continue
        expected, expected_events = load(combo)
        diff = first_difference(expected, fills) or (None if events == expected_events else f"events {events} != {expected_events}")
        print(f"{combo}: {'OK' if diff is None else 'DIFFERS: ' + diff} ({len(fills)} fills)")
        failed += diff is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
