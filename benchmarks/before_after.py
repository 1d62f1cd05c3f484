"""Before/after events/s of two source trees, interleaved (issue 31's measurement).

``python -m benchmarks.before_after --before DIR [--after DIR] [--rounds N]``: each
round runs, in a fresh interpreter per tree (alternating which goes first), the
harness's ``full_pipeline`` and ``backtest_command`` rows (benchmarks/throughput.py:
the replay core, and ``mmbot backtest`` as shipped with the journal and run record on)
after the harness's warm-up; prints the medians and the ratio. ``DIR`` is a checkout,
e.g. ``git archive <commit> | tar -x -C /tmp/before``. The environment is passed on, so
``MMBOT_PURE_PYTHON=1`` measures the fallback.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROWS = ("full_pipeline", "backtest_command")
PROBE = (
    "import json; from benchmarks import throughput as t; from benchmarks.run import _warm_imports; _warm_imports();"
    f"print(json.dumps({{n: t.timed(getattr(t, n), 1)[0] for n in {ROWS!r}}}))"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    trees = [("before", args.before), ("after", args.after)]
    res: dict[str, dict[str, list[float]]] = {k: {n: [] for n in ROWS} for k, _ in trees}
    for rnd in range(args.rounds):
        for name, root in trees if rnd % 2 == 0 else trees[::-1]:
            env = {**os.environ, "PYTHONPATH": root}
            out = subprocess.run([sys.executable, "-c", PROBE], cwd=root, env=env, capture_output=True, text=True, check=True)
            for row, rate in json.loads(out.stdout.strip().splitlines()[-1]).items():
                res[name][row].append(rate)
    for row in ROWS:
        before, after = statistics.median(res["before"][row]), statistics.median(res["after"][row])
        print(f"{row}: before {before:,.0f} events/s, after {after:,.0f} events/s, ratio {after / before:.2f}x "
              f"(rounds before {[round(x) for x in res['before'][row]]}, after {[round(x) for x in res['after'][row]]})")


if __name__ == "__main__":
    main()
