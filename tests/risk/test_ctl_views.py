"""`mmbot ctl status | orders | fills | pnl | risk | list | pid` against real daemons found
through their run files (mmbot/runtime/run_file.py), no port given."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MMBOT

TOKEN = "ctl-views-token-1234"


def _run_files(cwd: Path) -> list[Path]:
    return sorted((cwd / "var" / "run").glob("*.json"))


def _ctl(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMBOT, "ctl", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)  # polling interval
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def daemons(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[tuple[Path, dict[str, str], list[subprocess.Popen[bytes]]]]:
    env = dict(clean_env, MMBOT_ADMIN__TOKEN=TOKEN, MMBOT_LOG__FORMAT="json")
    procs: list[subprocess.Popen[bytes]] = []
    yield tmp_path, env, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _start(cwd: Path, env: dict[str, str], procs: list[subprocess.Popen[bytes]], n: int) -> subprocess.Popen[bytes]:
    # Each daemon its own journal directory and config hash (so its own run id).
    own = dict(env, MMBOT_AUDIT__DIR=str(cwd / f"journal{n}"), MMBOT_STRATEGY__SPREAD_BPS=str(2.0 + n))
    proc = subprocess.Popen([*MMBOT, "run", "--speed", "5", "--duration", "60", "--no-status"], cwd=cwd, env=own,
                            stdout=subprocess.DEVNULL, stderr=(cwd / f"daemon{n}.err").open("wb"))
    procs.append(proc)
    return proc


def test_ctl_when_one_then_several_daemons_then_tables_json_and_exit_2_naming_both(
    daemons: tuple[Path, dict[str, str], list[subprocess.Popen[bytes]]],
) -> None:
    cwd, env, procs = daemons
    first = _start(cwd, env, procs, 0)
    _wait(lambda: _run_files(cwd) and json.loads(_run_files(cwd)[0].read_text()).get("admin"), 30, "the run file with the admin port")
    info = json.loads(_run_files(cwd)[0].read_text())
    assert info["pid"] == first.pid and TOKEN not in _run_files(cwd)[0].read_text()
    assert (cwd / "var" / "run" / f"{info['run_id']}.pid").read_text().strip() == str(first.pid)
    _wait(lambda: json.loads(_ctl(cwd, env, "pnl", "--json").stdout or "{}").get("symbols", [{}])[0].get("fills", 0) > 0, 60, "a fill")

    table = _ctl(cwd, env, "status")
    assert table.returncode == 0, table.stderr
    for word in (info["run_id"], "BTC/USDT", "mid", "quotes", "position", "net_pnl", "ACTIVE", "open_orders"):
        assert word in table.stdout, (word, table.stdout)
    status = json.loads(_ctl(cwd, env, "status", "--json").stdout)
    assert status["run_id"] == info["run_id"] and status["risk_state"] == "ACTIVE"

    orders = json.loads(_ctl(cwd, env, "orders", "--json").stdout)
    assert orders["count"] == len(orders["orders"])
    assert all(o["side"] in ("BUY", "SELL") and Decimal(o["qty"]) > 0 for o in orders["orders"])
    fills = json.loads(_ctl(cwd, env, "fills", "--last", "2", "--json").stdout)
    assert 1 <= fills["shown"] <= 2 and fills["total"] >= fills["shown"]
    assert all("E" not in f["qty"] and "E" not in f["fee"] for f in fills["fills"])
    pnl = json.loads(_ctl(cwd, env, "pnl", "--json").stdout)["symbols"][0]
    # Net = realised (net of fees) + unrealised, exactly as the ledger keeps them (8 decimals here).
    assert abs(Decimal(pnl["realized_pnl"]) + Decimal(pnl["unrealized_pnl"]) - Decimal(pnl["net_pnl"])) <= Decimal("0.00000002")
    for view in (["orders"], ["fills", "--last", "3"], ["pnl"], ["risk"]):
        shown = _ctl(cwd, env, *view)
        assert shown.returncode == 0, (view, shown.stderr)
    assert "limit max_inventory" in _ctl(cwd, env, "risk").stdout
    pid = _ctl(cwd, env, "pid")
    assert pid.returncode == 0 and pid.stdout.strip() == str(first.pid)

    second = _start(cwd, env, procs, 1)
    _wait(lambda: len(_run_files(cwd)) == 2 and all(json.loads(p.read_text()).get("admin") for p in _run_files(cwd)), 30, "two run files")
    ids = [json.loads(p.read_text())["run_id"] for p in _run_files(cwd)]
    several = _ctl(cwd, env, "status")
    assert several.returncode == 2
    text = " ".join((several.stdout + several.stderr).split())
    assert "several daemons" in text and all(run_id in text for run_id in ids), text
    assert _ctl(cwd, env, "pid").returncode == 2
    listed = _ctl(cwd, env, "list")
    assert all(run_id in listed.stdout for run_id in ids)
    other = next(i for i in ids if i != info["run_id"])
    chosen = json.loads(_ctl(cwd, env, "status", "--json", "--run", other).stdout)
    assert chosen["run_id"] == other

    # A clean stop (SIGINT, as Ctrl-C) exits 0 and removes the daemon's run files.
    for proc in (first, second):
        proc.send_signal(signal.SIGINT)
    assert [first.wait(timeout=30), second.wait(timeout=30)] == [0, 0]
    assert list((cwd / "var" / "run").iterdir()) == []
    gone = _ctl(cwd, env, "pid")
    assert gone.returncode == 2 and "no running daemon" in gone.stderr


def test_ctl_when_run_file_of_dead_process_then_ignored(tmp_path: Path, clean_env: dict[str, str]) -> None:
    run_dir = tmp_path / "var" / "run"
    run_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / "old.json").write_text(json.dumps({"pid": dead.pid, "run_id": "old", "admin": {"port": 1}}))
    listed = _ctl(tmp_path, clean_env, "list")
    assert "no running daemon" in listed.stdout and "stale run file" in listed.stdout
    assert _ctl(tmp_path, clean_env, "pid").returncode == 2
