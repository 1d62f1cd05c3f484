"""`mmbot optimize` flags (never refuses) combinations quoting below the break-even spread."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import MMBOT, ROOT


def test_optimize_when_fees_put_narrow_spreads_below_breakeven_then_rows_flagged_not_refused(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_FEES__PROFIT_BPS="12")  # break-even = 2 x 0 + 0 + 12 = 12 bps
    out = tmp_path / "opt"
    proc = subprocess.run(
        [*MMBOT, "optimize", "--grid", str(ROOT / "config" / "grids" / "seed.yaml"), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    rows = doc["results"]
    assert len(rows) == 960
    assert all(r["below_breakeven"] == (r["spread_bps"] < 12) for r in rows)
    assert doc["info"]["below_breakeven_combinations"] == 192  # spread_bps 10: 1 of 5 values
    assert "below the break-even spread" in proc.stdout
