"""The real CLI in a subprocess: /metrics, /healthz, /readyz, bind address, secrets, JSON logs."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import MMBOT
from tests.observability.conftest import http_get, json_lines, listening_addresses, wait_for

SECRET_KEY = "obs-test-KEY-7f3a9c1e55"
SECRET = "obs-test-SECRET-0b8d2e44aa"


def journal_records(exposition: str) -> float:
    for line in exposition.splitlines():
        if line.startswith("mmbot_journal_records_total "):
            return float(line.split()[1])
    raise AssertionError("mmbot_journal_records_total missing from /metrics")


def test_daemon_when_running_serves_endpoints_on_loopback_without_secrets(start_daemon) -> None:
    daemon = start_daemon(
        "run", "--speed", "1", "--duration", "60", "--no-status",
        env={"MMBOT_EXCHANGE__API_KEY": SECRET_KEY, "MMBOT_EXCHANGE__SECRET": SECRET},
    )  # fmt: skip
    port = daemon.wait_metrics_port()
    listening = listening_addresses(port)
    health_status, health_body = http_get(f"{daemon.base}/healthz")
    ready = wait_for(lambda: (r := http_get(f"{daemon.base}/readyz"))[0] == 200 and r, 30, "/readyz 200")
    wait_for(lambda: "mmbot_fills_total" in http_get(f"{daemon.base}/metrics")[1], 10, "/metrics")
    with urllib.request.urlopen(f"{daemon.base}/metrics", timeout=3) as r:
        content_type = r.headers["Content-Type"]
        metrics = r.read().decode()
    index_status, _ = http_get(f"{daemon.base}/")
    code = daemon.stop()
    logs = json_lines(daemon.log_path)

    assert listening == {"127.0.0.1"}
    assert health_status == 200 and json.loads(health_body)["status"] == "ok"
    assert ready[1] == "ready\n"
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'mmbot_build_info{config_hash="' in metrics and 'version="0.1.0"' in metrics
    assert 'mmbot_risk_reason_active{reason="KILL_SWITCH",symbol="BTC/USDT"} 0.0' in metrics
    assert SECRET_KEY not in metrics and SECRET not in metrics
    assert journal_records(metrics) >= 1  # the audit journal is on by default (run_start at least)
    assert index_status == 200
    assert code == 0
    assert logs and all({"run_id", "symbol", "event", "level", "timestamp"} <= set(line) for line in logs)
    assert len({line["run_id"] for line in logs}) == 1
    assert {"run_started", "metrics_server_started", "run_stopped"} <= {line["event"] for line in logs}
    assert all(SECRET_KEY not in json.dumps(line) and SECRET not in json.dumps(line) for line in logs)


def test_daemon_when_metrics_host_configured_binds_that_address(start_daemon) -> None:
    daemon = start_daemon(
        "run", "--speed", "1", "--duration", "60", "--no-status", env={"MMBOT_METRICS__HOST": "127.0.0.2"}
    )
    port = daemon.wait_metrics_port()
    listening = listening_addresses(port)
    status, _ = http_get(f"http://127.0.0.2:{port}/healthz")
    code = daemon.stop()

    assert listening == {"127.0.0.2"}
    assert status == 200
    assert code == 0


def test_daemon_when_metrics_port_in_use_exits_2_naming_the_port(clean_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = dict(clean_env, MMBOT_METRICS__PORT=str(port), MMBOT_LOG__FORMAT="json")
        result = subprocess.run(
            [*MMBOT, "run", "--speed", "0", "--no-status"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    assert result.returncode == 2
    assert f"metrics server cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_daemon_when_metrics_disabled_starts_no_server(clean_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(clean_env, MMBOT_METRICS__ENABLED="false", MMBOT_LOG__FORMAT="json")

    result = subprocess.run(
        [*MMBOT, "run", "--speed", "0", "--duration", "1", "--no-status"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    events = [json.loads(line)["event"] for line in result.stderr.splitlines() if line.startswith("{")]

    assert result.returncode == 0, result.stderr
    assert "run_stopped" in events
    assert "metrics_server_started" not in events
