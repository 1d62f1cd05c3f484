"""The lean runtime and the extras (mmbot/extras.py): commands that need the research stack
say which extra to install (exit 2), and ``mmbot run`` needs none of it.

The subprocess cases run the real CLI with an import blocker in front of ``sys.meta_path``
that makes the research modules (and the removed msgspec/pydantic-settings) look
uninstalled, as in the daemon image: any import of one of them is a ModuleNotFoundError.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mmbot.errors import ConfigError
from mmbot.extras import MissingExtra, installed, require
from tests.conftest import ROOT

LEAN = ("numba", "llvmlite", "pyarrow", "matplotlib", "plotly", "dask", "distributed", "msgspec", "pydantic_settings", "backtrader")
BOOT = f"""
import runpy, sys
BLOCKED = {set(LEAN)!r}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: not in the lean runtime)", name=name)
        return None
sys.meta_path.insert(0, Blocker())
sys.argv = ["mmbot", *sys.argv[1:]]
runpy.run_module("mmbot", run_name="__main__")
"""


def lean_mmbot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BOOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_require_when_module_missing_then_missing_extra_exit_2_names_feature_and_pip_line() -> None:
    with pytest.raises(MissingExtra) as info:
        require("research", "mmbot backtest --report", "json", "no_such_module_xyz", "no_such_either")
    assert isinstance(info.value, ConfigError) and info.value.exit_code == 2
    assert str(info.value) == (
        "mmbot backtest --report needs the research extra (no_such_module_xyz, no_such_either not installed): pip install 'mmbot[research]'"
    )
    require("research", "anything", "json", "orjson")  # all present: no error


def test_installed_when_module_blocked_or_absent_then_false() -> None:
    assert installed("json") and not installed("no_such_module_xyz") and not installed("no_such_pkg.sub")
    sys.modules["mmbot_fake_none"] = None  # type: ignore[assignment]  # how `import` marks a module as refused
    try:
        assert not installed("mmbot_fake_none")
    finally:
        del sys.modules["mmbot_fake_none"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "--report"], "mmbot backtest --report needs the research extra (plotly, matplotlib not installed)"),
        (["backtest", "--bars", "bundled", "--report"], "mmbot backtest --report needs the research extra (plotly, matplotlib not installed)"),
        (["report", "nowhere"], "mmbot report needs the research extra (plotly, matplotlib not installed)"),
        (["optimize"], "mmbot optimize needs the research extra (numba, plotly not installed)"),
        (["optimize", "--no-report"], "mmbot optimize --no-report needs the research extra (numba not installed)"),
    ],
)
def test_command_when_research_extra_missing_then_exit_2_with_install_line(
    args: list[str], message: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    proc = lean_mmbot(*args, env=clean_env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in " ".join(proc.stderr.split())
    assert "pip install 'mmbot[research]'" in proc.stderr
    assert "summary" not in proc.stdout  # refused before any work, not after a long backtest
    assert "Traceback" not in proc.stderr


def test_run_and_backtest_when_research_stack_absent_then_work(clean_env: dict[str, str], tmp_path: Path) -> None:
    run = lean_mmbot("run", "--speed", "0", "--duration", "4", "--no-status", env=clean_env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    bars = lean_mmbot("backtest", "--bars", "bundled", env=clean_env, cwd=tmp_path)
    assert bars.returncode == 0, bars.stderr[-3000:]
    assert "bar backtest summary" in bars.stdout
    check = lean_mmbot("check-config", env=clean_env, cwd=tmp_path)
    assert check.returncode == 0, check.stderr[-3000:]


def test_pyproject_when_read_then_runtime_is_lean_and_extras_hold_the_research_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {d.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in project["dependencies"]}
    research = " ".join(project["optional-dependencies"]["research"])
    assert not runtime & {"numba", "pyarrow", "matplotlib", "plotly", "dask", "msgspec", "pydantic-settings", "backtrader"}
    for name in ("numba", "pyarrow", "matplotlib", "plotly", "dask[distributed]"):
        assert name in research
    assert isinstance(project["license"], str)  # SPDX string: no setuptools deprecation banner for a table
