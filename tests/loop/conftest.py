"""A recorded sandbox run with faults, shared by the recording, rerun and divergence tests.

The daemon is the real CLI (``python -m mmbot run --mode sandbox``) talking real ccxt to
the emulator on 127.0.0.1 (replaying at ``SPEED`` x real time), which injects a market-data
``freeze`` and an ``http5xx`` outage while the daemon quotes. Built once per session:
every test reads the same run record and journal; a test that edits a file restores
it, and ``mmbot divergence`` only adds its figures to the record's summary.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mmbot.emulator.faults import parse_fault_specs
from mmbot.emulator.server import run_emulator
from tests.conftest import CAPTURE, MMBOT

SPEED = 3.0
DURATION_S = 30.0
FAULTS = "freeze@8:5,http5xx@18:3"  # seconds after the emulator started


@dataclass(frozen=True)
class RecordedRun:
    summary: dict[str, Any]
    record_dir: Path
    journal_dir: Path
    workdir: Path
    env: dict[str, str]
    exit_code: int
    stderr: str


def child_env(workdir: Path, base_url: str, key: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBOT_")}
    env.update({
        "MMBOT_DATA__SOURCE": "live", "MMBOT_EXCHANGE__BASE_URL": base_url, "MMBOT_EXCHANGE__API_KEY": key,
        "MMBOT_EXCHANGE__SECRET": secret, "MMBOT_EXCHANGE__TIMEOUT_S": "2", "MMBOT_EXCHANGE__WATCH_TIMEOUT_S": "3",
        "MMBOT_EXCHANGE__RECONCILE_INTERVAL_S": "2", "MMBOT_EXCHANGE__DOWN_GRACE_S": "1", "MMBOT_LOG__FORMAT": "json",
        "MMBOT_METRICS__ENABLED": "false", "MMBOT_ADMIN__ENABLED": "false",
        "MMBOT_AUDIT__DIR": str(workdir / "journal"), "MMBOT_RECORD__DIR": str(workdir / "runs"),
        # 3x real time: re-quote less often so the order budget holds.
        "MMBOT_STRATEGY__MIN_REQUOTE_INTERVAL_MS": "500", "MMBOT_STRATEGY__REQUOTE_TOLERANCE_TICKS": "2",
    })  # fmt: skip
    return env


async def _record(workdir: Path, emulator_options: dict[str, Any], faults: str, duration_s: float, speed: float,
                  env_extra: dict[str, str], mode: str) -> RecordedRun:
    key, secret = "loop-" + secrets.token_hex(6), "loop-" + secrets.token_hex(12)
    summary_path = workdir / "summary.json"
    err = workdir / "daemon.err"
    async with run_emulator(CAPTURE, port=0, speed=speed, api_key=key, secret=secret, faults=parse_fault_specs(faults),
                            **emulator_options) as emu:
        env = {**child_env(workdir, emu.base_url, key, secret), **env_extra}
        proc = await asyncio.create_subprocess_exec(
            *MMBOT, "run", "--mode", mode, "--duration", str(duration_s), "--no-status", "--summary-json", str(summary_path),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err.open("wb"), cwd=str(workdir),
        )  # fmt: skip
        async with asyncio.timeout(duration_s + 90):
            code = await proc.wait()
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    journals = sorted((workdir / "journal").rglob("manifest.json"))
    return RecordedRun(
        summary=summary, record_dir=Path(summary.get("record_dir", workdir / "runs")), journal_dir=journals[-1].parent if journals else workdir,
        workdir=workdir, env=env, exit_code=code, stderr=err.read_text(),
    )  # fmt: skip


def record_sandbox_run(workdir: Path, emulator_options: dict[str, Any] | None = None, faults: str = FAULTS,
                       duration_s: float = DURATION_S, speed: float = SPEED, env_extra: dict[str, str] | None = None,
                       mode: str = "sandbox") -> RecordedRun:
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_record(workdir, emulator_options or {}, faults, duration_s, speed, env_extra or {}, mode))


@pytest.fixture(scope="session")
def faulted_run(tmp_path_factory: pytest.TempPathFactory) -> RecordedRun:
    run = record_sandbox_run(tmp_path_factory.mktemp("faulted-run"))
    assert run.exit_code == 0, run.stderr[-3000:]
    return run


def journal_records(journal_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for seg in sorted(journal_dir.glob("seg-*.jsonl")) for line in seg.read_text().splitlines() if line]
