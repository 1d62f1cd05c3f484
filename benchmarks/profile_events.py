"""Where the time per event goes in ``mmbot backtest`` on the bundled capture (issue 31).

``python -m benchmarks.profile_events [--top N]`` prints, for the per-event path this
process runs (compiled, or pure with ``MMBOT_PURE_PYTHON=1``):

* stages timed without a profiler (best of 3, µs per event, 320,015 events): gzip line
  reading, reading + decoding (``read_stream``: time filter, orjson, CaptureParser),
  and the replay core (``run_l2_backtest``, default config, journal and run record off);
* a cProfile of the replay core: each function's own time (tottime) in µs per event.
  cProfile inflates small Python functions (its own cost is per call), so read it for
  the shares, and the stage table for the absolute figures.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable

from benchmarks.throughput import CAPTURE, INSTRUMENT
from mmbot.marketdata.capture import CaptureParser, ReadStats, iter_lines, read_stream
from mmbot.marketdata.fastpath import per_event_path

EVENTS = 320_015


def _noop(event: str, fields: dict[str, object]) -> None:
    return None


def lines() -> None:
    for _ in iter_lines(CAPTURE, ReadStats(), _noop):
        pass


def decode() -> None:
    for _ in read_stream(CAPTURE, CaptureParser([INSTRUMENT]), ReadStats()):
        pass


def replay() -> None:
    from tests.golden.golden import run_fills

    run_fills("default-risk_averse-0ms")


def best_of(fn: Callable[[], None], n: int = 3) -> float:
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    print(f"per-event path: {per_event_path()}\n")
    stages = {"read lines (gzip)": best_of(lines), "read + decode": best_of(decode), "replay core": best_of(replay)}
    print("| stage | s | µs/event | events/s |\n|---|---:|---:|---:|")
    for name, s in stages.items():
        print(f"| {name} | {s:.3f} | {s / EVENTS * 1e6:.2f} | {EVENTS / s:,.0f} |")
    prof = cProfile.Profile()
    prof.enable()
    replay()
    prof.disable()
    st = pstats.Stats(prof)
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: args.top]  # type: ignore[attr-defined]
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    print(f"\ncProfile of the replay core: {total:.2f} s under the profiler\n")
    print("| function | calls | own µs/event | share |\n|---|---:|---:|---:|")
    for (file, line, func), (_, calls, tottime, _, _) in rows:
        where = file.split("/mmbot/")[-1] if "/mmbot/" in file else file.rsplit("/", 1)[-1]
        print(f"| `{where}:{line} {func}` | {calls:,} | {tottime / EVENTS * 1e6:.2f} | {tottime / total:.0%} |")


if __name__ == "__main__":
    main()
