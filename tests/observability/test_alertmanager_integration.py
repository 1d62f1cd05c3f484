"""An alert fired by the real Prometheus reaches a webhook receiver through the real
Alertmanager (Debian's prometheus-alertmanager), all on 127.0.0.1.

daemon (replay, SIGUSR1: kill switch) -> Prometheus (deploy/prometheus/alerts.yml) ->
Alertmanager (deploy/alertmanager/alertmanager.yml, webhook URL and group timings made
local and short) -> the alert log (mmbot.observability.alert_log) -> JSON lines.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.conftest import DEPLOY, free_port, http_get, json_lines, listening_addresses, terminate, wait_for

AM_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


class Process:
    def __init__(self, args: list[str], log: Path, out: Path | None = None) -> None:
        self._log = log.open("w")
        self._out = out.open("w") if out is not None else None
        self.proc = subprocess.Popen(args, stdout=self._out or subprocess.DEVNULL, stderr=self._log)
        self.log = log

    def alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"{what} exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        terminate(self.proc)
        self._log.close()
        if self._out is not None:
            self._out.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in started:
        p.stop()


def local_alertmanager_config(webhook_url: str, out: Path) -> dict[str, Any]:
    """The shipped config with the webhook made local and the group timings short (seconds, not minutes)."""
    config = yaml.safe_load(AM_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    for route in [config["route"], *config["route"].get("routes", [])]:
        route.update({"group_wait": "1s", "group_interval": "1s"})
    out.write_text(yaml.safe_dump(config))
    return config


@pytest.mark.prometheus
@pytest.mark.slow
def test_alertmanager_when_kill_switch_alert_fires_then_webhook_receives_firing_then_resolved(
    tmp_path: Path, start_daemon: Any, start_prometheus: Any, alertmanager_bin: str, amtool: str, processes: list[Process]
) -> None:
    # The receiver: the alert log on a free port.
    sink_port = free_port()
    sink_out = tmp_path / "alert-log.jsonl"
    sink = Process([sys.executable, "-m", "mmbot.observability.alert_log", "--host", "127.0.0.1", "--port", str(sink_port)],
                   tmp_path / "alert-log.err", sink_out)
    processes.append(sink)
    wait_for(lambda: (sink.alive("the alert log"), http_get(f"http://127.0.0.1:{sink_port}/healthz")[0] == 200)[1], 20, "the alert log")

    # Alertmanager with the shipped routes and receivers.
    config_path = tmp_path / "alertmanager.yml"
    config = local_alertmanager_config(f"http://127.0.0.1:{sink_port}/alerts", config_path)
    check = subprocess.run([amtool, "check-config", str(config_path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    am_port = free_port()
    am = Process([alertmanager_bin, f"--config.file={config_path}", f"--storage.path={tmp_path / 'am-data'}",
                  f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=", "--log.level=warn"],
                 tmp_path / "alertmanager.log")
    processes.append(am)
    wait_for(lambda: (am.alive("alertmanager"), http_get(f"http://127.0.0.1:{am_port}/-/ready")[0] == 200)[1], 30, "alertmanager /-/ready")

    daemon = start_daemon("run", "--speed", "1", "--loop", "--no-status")
    port = daemon.wait_metrics_port()
    wait_for(lambda: http_get(f"{daemon.base}/readyz")[0] == 200, 30, "/readyz to say ready")
    prom = start_prometheus(port, alertmanager_port=am_port)
    wait_for(lambda: prom.query('mmbot_quoting{symbol="BTC/USDT"} == 1'), 40, "Prometheus to see the daemon quoting")

    def received(status: str) -> list[dict[str, Any]]:
        sink.alive("the alert log")
        return [r for r in json_lines(sink_out) if r.get("event") == "alert" and r.get("alertname") == "MmbotKillSwitchEngaged"
                and r.get("status") == status]

    daemon.proc.send_signal(signal.SIGUSR1)
    engaged = time.monotonic()
    firing = wait_for(lambda: received("firing"), 60, "the firing MmbotKillSwitchEngaged at the webhook", step=0.25)
    firing_after_s = time.monotonic() - engaged
    quoting_while_halted = prom.query('mmbot_quoting{symbol="BTC/USDT"}')[0]["value"][1]
    am_alerts = json.loads(http_get(f"http://127.0.0.1:{am_port}/api/v2/alerts")[1])

    daemon.proc.send_signal(signal.SIGUSR1)  # release: Prometheus resolves, Alertmanager sends "resolved"
    released = time.monotonic()
    resolved = wait_for(lambda: received("resolved"), 60, "the resolved MmbotKillSwitchEngaged at the webhook", step=0.25)
    resolved_after_s = time.monotonic() - released
    am_listening = listening_addresses(am_port)
    sink_listening = listening_addresses(sink_port)
    code = daemon.stop()

    alert = firing[0]
    assert alert["symbol"] == "BTC/USDT" and alert["severity"] == "page" and alert["receiver"] == "webhook"
    assert alert["summary"].startswith("kill switch engaged on BTC/USDT")
    assert alert["instance"] == f"127.0.0.1:{port}"
    assert any(a["labels"]["alertname"] == "MmbotKillSwitchEngaged" for a in am_alerts)
    assert quoting_while_halted == "0"
    assert resolved[0]["ends_at"] and resolved[0]["symbol"] == "BTC/USDT"
    assert config["route"]["receiver"] == "webhook"
    assert am_listening == {"127.0.0.1"} and sink_listening == {"127.0.0.1"}
    assert code == 0
    print(f"SIGUSR1 -> firing alert at the webhook after {firing_after_s:.1f} s; release -> resolved after {resolved_after_s:.1f} s")
