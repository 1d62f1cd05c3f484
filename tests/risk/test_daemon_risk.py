"""End to end: the real daemon in a subprocess on the bundled replay, driven by signals.

Observed through the admin endpoint (127.0.0.1, token from the environment) and the
summary file, never through log text.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MMBOT

TOKEN = "test-admin-token-18"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        env = dict(env, MMBOT_ADMIN__TOKEN=TOKEN, MMBOT_ADMIN__PORT=str(self.port), MMBOT_LOG__FORMAT="json")
        self.env = env
        self.stderr = (cwd / "daemon.err").open("wb")
        self.proc = subprocess.Popen([*MMBOT, "run", "--no-status", *args], env=env, cwd=cwd,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)

    def status(self) -> dict[str, Any] | None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/status", headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except OSError:
            return None

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"daemon exited ({self.proc.returncode}) while waiting for {what}"
            last = self.status()
            if last is not None and predicate(last):
                return last
            time.sleep(0.02)  # polling interval, not an assertion
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last status {last}")

    def signal(self, sig: signal.Signals) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stderr.close()


def listening_ports(pid: int) -> dict[int, str]:
    """port -> hex local address of the TCP sockets in LISTEN state (IPv4) seen by the process."""
    ports = {}
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            host, port = fields[1].split(":")
            ports[int(port, 16)] = host
    return ports


@pytest.fixture
def daemon_factory(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str) -> Daemon:
        d = Daemon(list(args), clean_env, tmp_path)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


def test_daemon_when_sigusr1_twice_then_flat_within_1s_no_new_orders_then_resumes_and_sigterm_exits_clean(
    daemon_factory: Callable[..., Daemon], tmp_path: Path, clean_env: dict[str, str]
) -> None:
    summary_path = tmp_path / "summary.json"
    d = daemon_factory("--speed", "5", "--summary-json", str(summary_path))
    quoting = d.wait_for(lambda s: s["orders_placed"] > 3 and s["open_orders"] > 0, 60, "quoting with open orders")

    sent = d.signal(signal.SIGUSR1)
    flat = d.wait_for(lambda s: s["kill_switch_engaged"] and s["open_orders"] == 0, 5, "kill switch engaged, zero orders")
    flat_s = time.monotonic() - sent
    # Watch for 2 s of wall time (10 s of capture time at speed 5): nothing new goes out.
    placed_at_halt = flat["orders_placed"]
    window_end = time.monotonic() + 2.0
    during = []
    while time.monotonic() < window_end:
        status = d.status()
        assert status is not None
        during.append((status["orders_placed"], status["open_orders"], status["engine_open_orders"], status["events"]))
        time.sleep(0.05)  # sampling interval of the observation window
    ctl = subprocess.run([*MMBOT, "ctl", "risk", "status", "--port", str(d.port)], env=d.env, capture_output=True, timeout=60)
    ctl_status = json.loads(ctl.stdout)

    sent_again = d.signal(signal.SIGUSR1)
    resumed = d.wait_for(lambda s: not s["kill_switch_engaged"] and s["orders_placed"] > placed_at_halt and s["open_orders"] > 0,
                         10, "quoting resumed")
    resume_s = time.monotonic() - sent_again
    code = d.stop()
    summary = json.loads(summary_path.read_text())

    print(f"SIGUSR1 -> zero open orders observed after {flat_s * 1000:.0f} ms (poll 20 ms); "
          f"daemon-side confirm {flat['last_kill_confirm_ms']} ms; resume after {resume_s * 1000:.0f} ms")
    assert quoting["risk_state"] == "ACTIVE"
    assert flat_s < 1.0
    assert flat["risk_state"] == "HALTED" and flat["risk_reasons"] == ["KILL_SWITCH"]
    assert all(placed == placed_at_halt and open_ == 0 and om == 0 for placed, open_, om, _ in during)
    assert during[-1][3] > during[0][3]  # market data kept flowing while halted
    assert ctl.returncode == 0 and ctl_status["kill_switch_engaged"] is True and ctl_status["risk_state"] == "HALTED"
    assert resumed["risk_state"] == "ACTIVE"
    assert code == 0
    assert summary["open_orders"] == 0 and summary["stop_reason"] == "SIGTERM"
    assert summary["kill_switch_engaged"] is False and summary["risk_state"] == "ACTIVE"
    assert [(t["new"], t["reasons"]) for t in summary["risk_transitions"]] == [("HALTED", ["KILL_SWITCH"]), ("ACTIVE", [])]


def test_daemon_when_feed_frozen_then_stale_book_halt_then_active_again(
    daemon_factory: Callable[..., Daemon], tmp_path: Path
) -> None:
    summary_path = tmp_path / "summary.json"
    d = daemon_factory("--speed", "10", "--faults", "freeze@4:7", "--summary-json", str(summary_path))

    halted = d.wait_for(lambda s: s["risk_state"] == "HALTED", 60, "STALE_BOOK halt")
    back = d.wait_for(lambda s: s["risk_state"] == "ACTIVE" and s["risk_transitions_total"] >= 2, 10, "ACTIVE again")
    code = d.stop()
    summary = json.loads(summary_path.read_text())

    assert halted["risk_reasons"] == ["STALE_BOOK"] and halted["open_orders"] == 0
    assert back["risk_reasons"] == []
    assert code == 0
    assert [(t["old"], t["new"], t["reasons"]) for t in summary["risk_transitions"]][:2] == [
        ("ACTIVE", "HALTED", ["STALE_BOOK"]), ("HALTED", "ACTIVE", []),
    ]
    assert summary["open_orders"] == 0


def test_daemon_when_sighup_with_invalid_config_then_keeps_running_on_old_config_and_file_flag_works(
    daemon_factory: Callable[..., Daemon], tmp_path: Path
) -> None:
    config = tmp_path / "mmbot.yaml"
    flag = tmp_path / "KILL"
    config.write_text(
        "strategy:\n  spread_bps: 3.0\n  order_size: 0.01\n  max_inventory: 0.05\n"
        f"risk:\n  kill_switch_file: {flag}\n  kill_switch_poll_ms: 50\n"
    )
    d = daemon_factory("--speed", "5", "--config", str(config))
    first = d.wait_for(lambda s: s["orders_placed"] > 0, 60, "daemon quoting")

    config.write_text("strategy:\n  spread_bps: -2\n  max_inventory: lots\n")
    d.signal(signal.SIGHUP)
    refused = d.wait_for(lambda s: s["reload_failures"] == 1, 10, "reload refused")
    still = d.wait_for(lambda s: s["orders_placed"] > refused["orders_placed"], 10, "still quoting after refused reload")

    wrong = urllib.request.Request(f"http://127.0.0.1:{d.port}/kill-switch", data=b'{"engaged": true}', method="POST",
                                   headers={"Authorization": "Bearer wrong"})
    with pytest.raises(urllib.error.HTTPError) as unauthorized:
        urllib.request.urlopen(wrong, timeout=5)
    after_wrong = d.status()
    listen = listening_ports(d.proc.pid)
    flag.write_text("")
    engaged = d.wait_for(lambda s: s["kill_switch_engaged"] and s["open_orders"] == 0, 5, "file flag engaged")
    release = subprocess.run([*MMBOT, "ctl", "kill-switch", "off", "--port", str(d.port)], env=d.env, capture_output=True, timeout=60)
    flag.unlink()
    released = d.wait_for(lambda s: not s["kill_switch_engaged"], 5, "file flag removed")
    code = d.stop()

    assert unauthorized.value.code == 401
    assert after_wrong is not None and after_wrong["kill_switch_engaged"] is False
    assert listen.get(d.port) == "0100007F"  # the admin endpoint listens on 127.0.0.1 only
    assert refused["params"]["spread_bps"] == 3.0 and refused["config_hash"] == first["config_hash"]
    assert "spread_bps" in refused["last_reload_error"] and refused["reloads"] == 0
    assert still["risk_state"] == "ACTIVE"
    assert engaged["risk_state"] == "HALTED"
    assert release.returncode == 1 and b"kill switch file exists" in release.stderr
    assert released["risk_state"] == "ACTIVE"
    assert code == 0
