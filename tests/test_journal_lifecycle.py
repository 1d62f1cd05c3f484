"""Journal lifecycle: opened only after start-up succeeded; a crash-resume only into a matching journal.

Subprocess runs of the real CLI on the bundled capture (issue 29): a start-up failure
leaves no journal behind; after a SIGKILL a restart with another configuration refuses
(exit 2) until ``--fresh`` (new journal) or ``--resume`` (forced, journaled) says which.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mmbot.audit.verify import find_journals, verify_journal
from tests.conftest import CAPTURE, MMBOT, live_node

FIRST_FILE = CAPTURE[0]
RUN = [*MMBOT, "run", "--no-status", "--speed", "0", "--data", FIRST_FILE]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=cwd)


def _journal_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _fill_count(root: Path) -> int:
    return sum(seg.read_bytes().count(b'"type":"fill"') for seg in root.rglob("seg-*.jsonl"))


def _types(journal: Path) -> list[str]:
    return [r["type"] for r in verify_journal(journal).records]


def test_run_when_metrics_port_taken_then_exit_2_no_journal_and_next_run_starts_fresh(tmp_path: Path, clean_env: dict[str, str]) -> None:
    root = Path(clean_env["MMBOT_AUDIT__DIR"])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = dict(clean_env, MMBOT_METRICS__PORT=str(port))
        failed = _run(RUN, env, tmp_path)
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert f"127.0.0.1:{port}" in failed.stderr
    assert _journal_files(root) == [], "a start-up failure left journal files behind"

    ok = _run(RUN, clean_env, tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "journal_recovered" not in ok.stderr
    (journal,) = find_journals([str(root)])
    assert journal.name.startswith("000001-")
    assert verify_journal(journal).status == "ok"
    assert _types(journal).count("run_start") == 1


def test_run_when_metrics_port_taken_then_previous_sealed_journal_untouched(tmp_path: Path, clean_env: dict[str, str]) -> None:
    root = Path(clean_env["MMBOT_AUDIT__DIR"])
    first = _run(RUN, clean_env, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p: p.read_bytes() for p in _journal_files(root)}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        failed = _run(RUN, dict(clean_env, MMBOT_METRICS__PORT=str(taken.getsockname()[1])), tmp_path)
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert {p: p.read_bytes() for p in _journal_files(root)} == before


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audit dir holding one journal of a run SIGKILLed mid-replay (default config)."""
    base = tmp_path_factory.mktemp("crashed")
    root = base / "journal"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    env.update(MMBOT_AUDIT__DIR=str(root), MMBOT_METRICS__PORT="0", MMBOT_ADMIN__PORT="0")
    args = [*MMBOT, "run", "--no-status", "--speed", "20", "--data", FIRST_FILE]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=base)
    try:
        deadline = time.monotonic() + 120
        while _fill_count(root) < 10:
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
            assert time.monotonic() < deadline, "no 10 fills journaled within 120 s"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    (journal,) = find_journals([str(root)])
    assert verify_journal(journal).status == "unsealed"
    return root


def _copy(crashed: Path, tmp_path: Path, clean_env: dict[str, str]) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path / "journal"
    shutil.copytree(crashed, root)
    (journal,) = find_journals([str(root)])
    return root, journal, dict(clean_env, MMBOT_AUDIT__DIR=str(root))


def _config_hash(env: dict[str, str], cwd: Path) -> str:
    out = _run([*MMBOT, "check-config"], dict(env, MMBOT_RUN__SPEED="0"), cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout.split("# config hash ")[1].split()[0]


def test_restart_when_config_differs_then_exit_2_naming_both_hashes_and_journal_untouched(
    crashed: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    root, journal, env = _copy(crashed, tmp_path, clean_env)
    before = {p: p.read_bytes() for p in _journal_files(root)}
    old_hash = verify_journal(journal).records[0]["payload"]["config_hash"]
    other = dict(env, MMBOT_STRATEGY__SPREAD_BPS="25")
    proc = _run(RUN, other, tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    new_hash = _config_hash(other, tmp_path)
    assert old_hash != new_hash
    err = " ".join(proc.stderr.split())
    assert old_hash in err and new_hash in err
    assert "--fresh" in err and "--resume" in err
    assert "strategy.spread_bps" in err
    assert {p: p.read_bytes() for p in _journal_files(root)} == before, "the refused start wrote to the journal"
    assert find_journals([str(root)]) == [journal]


def test_restart_when_config_differs_with_fresh_then_new_journal_and_old_reported_abandoned(
    crashed: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    root, journal, env = _copy(crashed, tmp_path, clean_env)
    before = {p: p.read_bytes() for p in journal.iterdir()}
    proc = _run([*RUN, "--fresh"], dict(env, MMBOT_STRATEGY__SPREAD_BPS="25"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "journal_recovered" not in proc.stderr
    old, new = find_journals([str(root)])
    assert old == journal and new.name.startswith("000002-")
    assert verify_journal(new).status == "ok"
    assert {p: p.read_bytes() for p in journal.iterdir()} == before, "--fresh changed the old journal"
    start = verify_journal(new).records[0]["payload"]
    assert start["resumed"] is False
    assert start["abandoned"]["journal"] == journal.name
    audit = _run([*MMBOT, "audit", "verify", str(root)], env, tmp_path)
    assert audit.returncode == 4, audit.stdout + audit.stderr
    text = " ".join((audit.stdout + audit.stderr).split())
    assert "ABANDONED" in text and new.name in text


def test_restart_when_config_differs_with_resume_then_resumed_and_forced_resume_journaled(
    crashed: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    root, journal, env = _copy(crashed, tmp_path, clean_env)
    old_hash = verify_journal(journal).records[0]["payload"]["config_hash"]
    other = dict(env, MMBOT_STRATEGY__SPREAD_BPS="25")
    proc = _run([*RUN, "--resume"], other, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "journal_recovered" in proc.stderr and "journal_resume_forced" in proc.stderr
    assert find_journals([str(root)]) == [journal]
    result = verify_journal(journal)
    assert result.status == "ok", result.describe()
    forced = [r["payload"] for r in result.records if r["type"] == "resume_forced"]
    assert len(forced) == 1
    assert forced[0]["journal_config_hash"] == old_hash
    assert forced[0]["config_hash"] == _config_hash(other, tmp_path)
    assert any(d.startswith("strategy.spread_bps") for d in forced[0]["differences"])
    types = [r["type"] for r in result.records]
    assert types.index("resume_forced") == types.index("run_start", 1) + 1


def test_restart_when_same_config_then_resumes_silently(crashed: Path, tmp_path: Path, clean_env: dict[str, str]) -> None:
    root, journal, env = _copy(crashed, tmp_path, clean_env)
    proc = _run(RUN, env, tmp_path)  # other speed and audit.dir than the crashed run: still the same trading config
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "journal_recovered" in proc.stderr and "resume_forced" not in proc.stderr
    assert find_journals([str(root)]) == [journal]
    assert verify_journal(journal).status == "ok"
    assert "resume_forced" not in _types(journal)


def test_run_when_fresh_and_resume_together_then_usage_error(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = _run([*RUN, "--fresh", "--resume"], clean_env, tmp_path)
    assert proc.returncode == 2
    err = " ".join(proc.stderr.split())
    assert "--fresh and --resume cannot be used together" in err
    assert _journal_files(Path(clean_env["MMBOT_AUDIT__DIR"])) == []


async def test_live_feed_run_when_metrics_port_taken_then_config_error_and_no_journal(tmp_path: Path) -> None:
    """Paper on a live feed: markets loaded, then the metrics port, then (only then) the journal."""
    from mmbot.config.settings import load_settings
    from mmbot.emulator.server import run_emulator
    from mmbot.errors import ConfigError

    root = tmp_path / "journal"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        async with run_emulator(CAPTURE, port=0, speed=3.0) as emu:
            settings = load_settings(None, environ={}, overrides={
                "data": {"source": "live"},
                "exchange": {"base_url": emu.base_url},
                "audit": {"dir": str(root)},
                "metrics": {"enabled": True, "host": "127.0.0.1", "port": port},
                "admin": {"enabled": False},
            })  # fmt: skip
            runner: Any = live_node(settings, "20261126T000000Z-test0003")
            with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
                await runner.run()
    assert runner.lanes, "the markets were loaded (the failure came after them)"
    assert _journal_files(root) == [], "a start-up failure left journal files behind"


def test_backtest_when_capture_file_missing_then_fails_and_no_journal(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = _run([*MMBOT, "backtest", "--data", str(tmp_path / "missing.gz")], clean_env, tmp_path)
    assert proc.returncode != 0
    assert "missing.gz" in proc.stderr
    assert _journal_files(Path(clean_env["MMBOT_AUDIT__DIR"])) == []


def _synthetic_crashed(root: Path, config: dict[str, object], config_hash: str) -> Path:
    from mmbot.audit.state import instrument_json
    from mmbot.audit.writer import JournalWriter
    from tests.audit.helpers import INSTRUMENT

    writer = JournalWriter.create(root, "20260101T000000Z-test0001", rotate_bytes=1 << 20, info={"account": "paper", "symbols": ["BTC/USDT"]})
    start = {"run_id": "r", "data": ["x"], "instrument": instrument_json(INSTRUMENT), "account": "paper", "config_hash": config_hash, "config": config}
    writer.append("run_start", start)
    writer.flush(fsync=True, checkpoint=True)
    writer.close()
    return writer.directory


def test_open_journal_when_identity_differs_then_refused_forced_or_resumed(tmp_path: Path) -> None:
    from mmbot.audit.recovery import RunIdentity, open_journal
    from mmbot.errors import JournalMismatchError

    config = {"strategy": {"spread_bps": 20.0}, "run": {"speed": 20.0}, "audit": {"dir": "a", "account": "paper"}}
    crashed_dir = _synthetic_crashed(tmp_path, config, "aaaaaaaaaa")
    kwargs: dict[str, Any] = {"run_id": "r2", "rotate_bytes": 1 << 20, "info": {}, "data": ["x"], "fresh": False, "resume": True}
    same = RunIdentity("paper", "bbbbbbbbbb", {"strategy": {"spread_bps": 20.0}, "run": {"speed": 0.0}, "audit": {"dir": "b", "account": "paper"}})
    other = RunIdentity("paper", "cccccccccc", {**config, "strategy": {"spread_bps": 25.0}})
    with pytest.raises(JournalMismatchError, match=r"aaaaaaaaaa.*cccccccccc.*strategy\.spread_bps was 20\.0, now 25\.0"):
        open_journal(tmp_path, identity=other, **kwargs)
    with pytest.raises(JournalMismatchError, match=r"audit\.account was 'paper', now 'other'"):
        open_journal(tmp_path, identity=RunIdentity("other", "aaaaaaaaaa", config), **kwargs)
    forced = open_journal(tmp_path, identity=other, force_resume=True, **kwargs)
    forced.writer.close()
    assert forced.writer.directory == crashed_dir and forced.state is not None
    assert forced.forced is not None and forced.forced["journal_config_hash"] == "aaaaaaaaaa" and forced.forced["config_hash"] == "cccccccccc"
    resumed = open_journal(tmp_path, identity=same, **kwargs)
    resumed.writer.close()
    assert resumed.writer.directory == crashed_dir and resumed.state is not None and resumed.forced is None


def test_verify_when_unsealed_journal_superseded_then_reported_abandoned(tmp_path: Path) -> None:
    from tests.audit.helpers import make_journal

    old = make_journal(tmp_path, seal=False)  # an old-format journal: no config hash, no abandoned field
    assert verify_journal(old).abandoned_by is None
    assert "ABANDONED" not in verify_journal(old).describe()
    new = make_journal(tmp_path, seal=True)
    result = verify_journal(old)
    assert result.status == "unsealed" and result.exit_code == 4
    assert result.abandoned_by == new.name and "UNSEALED, ABANDONED" in result.describe()
    assert verify_journal(new).status == "ok"
