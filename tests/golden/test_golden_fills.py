"""Every fill of the bundled capture's backtest matches the golden files, on both per-event paths.

``make test`` runs one combination per profile (below); ``make golden`` sets
``GOLDEN_MATRIX=full`` and runs all 24 (tests/golden/golden.py has the matrix). Each
combination runs in a fresh interpreter, once with the compiled per-event path and once
with the pure-Python fallback forced (``MMBOT_PURE_PYTHON=1``): the path is chosen at
import time, and both must reproduce the golden fills exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.golden.golden import ROOT, combinations

QUICK = ("default-risk_averse-0ms", "avellaneda-probabilistic-20ms", "glft-touch-20ms", "ladder-risk_averse-20ms")
COMBOS = combinations() if os.environ.get("GOLDEN_MATRIX") == "full" else list(QUICK)


@pytest.mark.parametrize("path", ["compiled", "pure"])
@pytest.mark.parametrize("combo", COMBOS)
def test_golden_fills_when_bundled_capture_replayed_then_every_fill_identical(combo: str, path: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MMBOT_PURE_PYTHON"}
    env["PYTHONPATH"] = str(ROOT)
    if path == "pure":
        env["MMBOT_PURE_PYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, "-m", "tests.golden.golden", "--expect-path", path, combo],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"{combo}: OK" in out.stdout
