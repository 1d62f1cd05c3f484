"""Run one broken-capture case through the real CLI and report what happened.

``python -m tests.integrity.run_case NAME OUT_JSON`` (or :func:`run`): builds the case's
file in a temporary directory, runs ``mmbot backtest`` (or ``mmbot run --speed 0``) on it
with a timeout, and returns exit status, fills, net PnL, final risk state and the
market-data counters. ``python -m tests.integrity.run_case --table`` prints every case
as a markdown table row (the note's before/after table: run it with ``PYTHONPATH`` on
each tree).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.integrity.cases import BY_NAME, CASES, Case, source_lines, write

TIMEOUT_S = 60.0


def case_env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    env.update(
        MMBOT_AUDIT__DIR=str(tmp / "journal"), MMBOT_RECORD__DIR=str(tmp / "runs"), MMBOT_METRICS__PORT="0",
        MMBOT_ADMIN__PORT="0", MMBOT_LOG__FORMAT="json",
    )
    env.update(extra)
    return env


def run(case: Case, tmp: Path, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    data = write(tmp / f"{case.name}.gz", case.build(list(source_lines(case.source) if case.source else source_lines())))
    summary = tmp / "summary.json"
    args = [sys.executable, "-m", "mmbot", case.command]
    if case.command == "run":
        args += ["--speed", "0", "--no-status"]
    args += ["--data", str(data), "--summary-json", str(summary), *case.args]
    if case.config is not None:
        cfg = tmp / "config.yaml"
        cfg.write_text(case.config)
        args += ["--config", str(cfg)]
    started = time.monotonic()
    try:
        proc = subprocess.run(args, env=case_env(tmp, case.env), capture_output=True, text=True, timeout=timeout_s)
        code: int | str = proc.returncode
        err = proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = f"hang (> {timeout_s:.0f} s)"
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    s = json.loads(summary.read_text()) if summary.exists() else {}
    last_error = ""
    for line in err.splitlines():
        if "error" in line.lower() or "Error" in line:
            last_error = line.strip()[:1000]
    return {
        "case": case.name,
        "exit": code,
        "seconds": round(time.monotonic() - started, 1),
        "fills": s.get("fills"),
        "net_pnl": s.get("net_pnl"),
        "risk_state": s.get("risk_state"),
        "risk_reasons": s.get("risk_reasons"),
        "rejections": s.get("market_data_rejections"),
        "garbage_lines": s.get("garbage_lines"),
        "backwards": s.get("backwards_timestamps"),
        "book_gaps": s.get("book_gaps"),
        "traceback": "Traceback" in err,
        "message": last_error,
    }


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or [c.name for c in CASES]
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory() as d:
            rows.append(run(BY_NAME[name], Path(d)))
        print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
