"""The example plugin (examples/microprice) installed offline into a private target, for
the tests that run it through the CLI (backtest, sandbox)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "microprice"
PROFILE = EXAMPLE / "microprice.yaml"


def install_example(tmp_path: Path) -> Path:
    """``pip install`` the example into ``tmp_path/site`` (its entry point registered there).

    No network, no build isolation, no deps; from a copy, so the build writes nothing into
    the source tree."""
    source = tmp_path / "microprice"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    return target


def plugin_env(env: dict[str, str], extra_path: str = "") -> dict[str, str]:
    """``env`` with the repo (and ``extra_path``, e.g. an install target) on PYTHONPATH."""
    paths = [p for p in (extra_path, str(ROOT), env.get("PYTHONPATH", "")) if p]
    return dict(env, PYTHONPATH=os.pathsep.join(paths))
