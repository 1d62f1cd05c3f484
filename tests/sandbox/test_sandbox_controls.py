"""Operator controls on a sandbox daemon (issue 18): kill switch file, ``mmbot ctl``, SIGHUP reload.

The daemon is the real CLI (``mmbot run --mode sandbox``) trading through ccxt with
the in-process emulator; the test reads the emulator's account to see what is open
at the venue, and the daemon's admin endpoint (127.0.0.1, token from the
environment) through ``mmbot ctl``.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path
from typing import Any

from mmbot.emulator.server import RunningEmulator
from tests.conftest import MMBOT
from tests.sandbox.conftest import Daemon, open_orders, sandbox_env, start_daemon, wait_for

TOKEN = "sandbox-admin-token-18"
CONFIG = "strategy:\n  spread_bps: {spread}\nrisk:\n  kill_switch_file: {flag}\n  kill_switch_poll_ms: 50\n"


def controls_env(clean_env: dict[str, str], emu: RunningEmulator) -> dict[str, str]:
    # Reconcile rarely: what the test sees is the kill switch's work, not a periodic cancel-all.
    return sandbox_env(clean_env, emu.base_url, MMBOT_ADMIN__TOKEN=TOKEN, MMBOT_ADMIN__PORT="0",
                       MMBOT_EXCHANGE__RECONCILE_INTERVAL_S="30")


def write_config(tmp: Path, spread: float) -> tuple[Path, Path]:
    path, flag = tmp / "mmbot.yaml", tmp / "KILL"
    path.write_text(CONFIG.format(spread=spread, flag=flag))
    return path, flag


async def log_event(daemon: Daemon, event: str, timeout_s: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            for rec in daemon.log_lines():
                if rec.get("event") == event:
                    return rec
            assert daemon.proc.returncode is None, f"daemon exited while waiting for {event}: {daemon.err.read_text()[-2000:]}"
            await asyncio.sleep(0.1)


async def ctl(env: dict[str, str], port: int, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = await asyncio.create_subprocess_exec(
        *MMBOT, "ctl", *args, "--port", str(port), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    data: dict[str, Any] = json.loads(out) if out.strip() else {}
    return proc.returncode, data, err.decode(errors="replace")


def journal_text(tmp: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (tmp / "journal").rglob("*.jsonl"))


async def test_sandbox_kill_switch_file_when_created_then_venue_flat_and_journaled_when_removed_then_quoting_resumes(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    config, flag = write_config(tmp_path, 20.0)
    env = dict(controls_env(clean_env, emu), MMBOT_RUN__STATUS_INTERVAL_S="0.5")
    daemon = await start_daemon(env, tmp_path, "killfile", "--config", str(config))
    try:
        await wait_for(lambda: len(open_orders(emu)) >= 1, 30, "quotes resting at the emulator")
        flag.write_text("")
        await wait_for(lambda: open_orders(emu) == [], 5, "zero open orders at the venue after the kill switch file")
        engaged = await log_event(daemon, "kill_switch_engaged", 5)
        confirmed = await log_event(daemon, "kill_switch_confirmed", 5)
        await asyncio.sleep(1.5)  # market data keeps coming: nothing new may rest while engaged
        still_flat = open_orders(emu)
        flag.unlink()
        released = await log_event(daemon, "kill_switch_released", 5)
        await wait_for(lambda: len(open_orders(emu)) >= 1, 15, "quoting resumed after the file was removed")
    finally:
        daemon.terminate()
    code = await daemon.wait(40)
    summary = daemon.result()
    journal = journal_text(tmp_path)
    stdout = " ".join(daemon.out.read_text().split())  # the console wraps long status lines

    assert code == 0, daemon.err.read_text()[-2000:]
    # The status line shows the kill switch and the open orders while engaged.
    assert "state HALTED KILL_SWITCH KILL SWITCH open 0" in stdout and re.search(r"state ACTIVE open \d", stdout), stdout[:2000]
    assert engaged["source"] == "file" and engaged["risk_state"] == "HALTED" and "KILL_SWITCH" in engaged["risk_reasons"]
    assert confirmed["open_orders"] == 0
    assert still_flat == []
    assert released["source"] == "file" and released["quoting"] == "resumes"
    assert '"kill_switch"' in journal and '"kill_switch_confirmed"' in journal
    assert summary["kill_switch_engaged"] is False and summary["venue"]["open_orders"] == 0 and open_orders(emu) == []


async def test_sandbox_ctl_kill_switch_when_on_then_zero_open_orders_and_risk_status_halted_then_off_resumes(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = controls_env(clean_env, emu)
    daemon = await start_daemon(env, tmp_path, "ctl")
    try:
        port = int((await log_event(daemon, "admin_started"))["port"])
        await wait_for(lambda: len(open_orders(emu)) >= 1, 30, "quotes resting at the emulator")
        code_on, on, err_on = await ctl(env, port, "kill-switch", "on")
        venue_after_on = open_orders(emu)
        code_status, status, _ = await ctl(env, port, "risk", "status")
        code_kstatus, kstatus, _ = await ctl(env, port, "kill-switch", "status")
        code_clear, cleared, _ = await ctl(env, port, "risk", "clear", "MANUAL")
        code_off, off, _ = await ctl(env, port, "kill-switch", "off")
        await wait_for(lambda: len(open_orders(emu)) >= 1, 15, "quoting resumed after kill-switch off")
    finally:
        daemon.terminate()
    code = await daemon.wait(40)

    assert code_on == 0, err_on
    assert on["kill_switch_engaged"] is True and on["confirmed"] is True and on["open_orders"] == 0
    assert venue_after_on == []  # the engine saw every cancel acknowledged: the venue agrees
    assert code_status == 0 and status["mode"] == "sandbox" and status["risk_state"] == "HALTED"
    assert status["kill_switch_engaged"] is True and status["open_orders"] == 0 and "KILL_SWITCH" in status["risk_reasons"]
    assert status["watchdogs"]["wall_clock_watchdogs"] == "on"
    assert code_kstatus == 0 and kstatus["kill_switch_engaged"] is True
    assert code_clear == 0 and cleared["cleared"] is False and cleared["reason"] == "MANUAL"
    assert code_off == 0 and off["kill_switch_engaged"] is False
    assert code == 0, daemon.err.read_text()[-2000:]
    assert open_orders(emu) == []


async def test_sandbox_sighup_when_config_changed_then_reloaded_invalid_refused_keeps_running_and_sigterm_exits_0(
    emu: RunningEmulator, clean_env: dict[str, str], tmp_path: Path
) -> None:
    env = controls_env(clean_env, emu)
    config, _ = write_config(tmp_path, 20.0)
    daemon = await start_daemon(env, tmp_path, "reload", "--config", str(config))
    try:
        port = int((await log_event(daemon, "admin_started"))["port"])
        await wait_for(lambda: len(open_orders(emu)) >= 1, 30, "quotes resting at the emulator")
        _, before, _ = await ctl(env, port, "risk", "status")
        write_config(tmp_path, 25.0)
        daemon.proc.send_signal(signal.SIGHUP)
        reloaded = await log_event(daemon, "config_reloaded", 10)
        _, after, _ = await ctl(env, port, "risk", "status")
        config.write_text("strategy:\n  spread_bps: -2\n")
        daemon.proc.send_signal(signal.SIGHUP)
        refused = await log_event(daemon, "config_reload_refused", 10)
        _, kept, _ = await ctl(env, port, "risk", "status")
        placed = kept["orders_placed"]
        await wait_for(lambda: len(open_orders(emu)) >= 1, 15, "still quoting after the refused reload")
        running = daemon.proc.returncode
    finally:
        daemon.terminate()
    code = await daemon.wait(40)
    summary = daemon.result()

    assert before["params"]["spread_bps"] == 20.0 and before["reloads"] == 0
    assert reloaded["config_hash"] != before["config_hash"] and reloaded["applied"] == ["strategy", "risk"]
    assert "data" not in reloaded["needs_restart"] and "exchange" not in reloaded["needs_restart"]
    assert after["reloads"] == 1 and after["params"]["spread_bps"] == 25.0 and after["config_hash"] == reloaded["config_hash"]
    assert "spread_bps" in refused["error"]
    assert kept["reload_failures"] == 1 and kept["params"]["spread_bps"] == 25.0 and kept["config_hash"] == after["config_hash"]
    assert kept["risk_state"] == "ACTIVE" and placed >= 1
    assert running is None  # SIGHUP did not stop the daemon
    assert code == 0, daemon.err.read_text()[-2000:]
    assert summary["stop_reason"] == "SIGTERM" and summary["venue"]["open_orders"] == 0 and open_orders(emu) == []
