"""Fixtures for the observability tests: Debian's prometheus/promtool, a running daemon, a real Prometheus."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import MMBOT, ROOT

DEPLOY = ROOT / "deploy"
PROM_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mmbot.json"
PACKAGES = {"prometheus-alertmanager": "prometheus-alertmanager", "amtool": "prometheus-alertmanager"}  # binary -> package

T = TypeVar("T")


def tool(name: str) -> str:
    """Path of a Debian prometheus binary; a missing one fails the test (never skips)."""
    path = shutil.which(name)
    if path is None:
        package = PACKAGES.get(name, "prometheus")
        pytest.fail(f"{name} not found; install it: apt-get install -y --no-install-recommends {package} "
                    "(or: sudo bash scripts/install-test-deps.sh)")
    return path


@pytest.fixture
def promtool() -> str:
    return tool("promtool")


@pytest.fixture
def prometheus_bin() -> str:
    return tool("prometheus")


@pytest.fixture
def alertmanager_bin() -> str:
    return tool("prometheus-alertmanager")


@pytest.fixture
def amtool() -> str:
    return tool("amtool")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(fn: Callable[[], T | None], timeout: float, what: str, step: float = 0.2) -> T:
    """Poll ``fn`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < end:
        try:
            value = fn()
        except (OSError, ValueError) as exc:  # server not up yet, half-written file
            last_exc = exc
            value = None
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def prom_api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.strip():
            lines.append(json.loads(line))
    return lines


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        p = Path(name)
        if not p.exists():
            continue
        for line in p.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr_hex)[::-1]))
            else:
                raw = b"".join(bytes.fromhex(addr_hex[i : i + 8])[::-1] for i in range(0, 32, 8))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


class Daemon:
    """``python -m mmbot run`` in a subprocess, JSON logs captured to a file."""

    def __init__(self, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.log_path = workdir / "daemon.stderr.jsonl"
        self.out_path = workdir / "daemon.stdout.txt"
        self._err = self.log_path.open("w")
        self._out = self.out_path.open("w")
        self.proc = subprocess.Popen([*MMBOT, *args], env=env, cwd=workdir, stdout=self._out, stderr=self._err)
        self.port = 0

    def wait_metrics_port(self, timeout: float = 30.0) -> int:
        def find() -> int | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            for text in self.log_path.read_text().splitlines():
                if '"metrics_server_started"' in text:
                    return int(json.loads(text)["port"])
            return None

        self.port = wait_for(find, timeout, "the daemon's metrics_server_started log line")
        return self.port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._err.close()
        self._out.close()
        return code


@pytest.fixture
def start_daemon(tmp_path: Path, clean_env: dict[str, str]) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Daemon:
        full_env = dict(clean_env)
        full_env.setdefault("MMBOT_LOG__FORMAT", "json")
        full_env.update(env or {})
        daemon = Daemon(list(args), full_env, tmp_path)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


class Prometheus:
    def __init__(self, binary: str, config: Path, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            return http_get(f"{self.base}/-/ready", timeout=1)[0] == 200

        wait_for(ready, 20, "prometheus /-/ready", step=0.05)

    def query(self, expr: str) -> list[dict[str, Any]]:
        result = prom_api(self.base, "/api/v1/query", query=expr)["result"]
        assert isinstance(result, list)
        return result

    def stop(self) -> None:
        terminate(self.proc)
        self._log.close()


def terminate(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s, of a process the test started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def start_prometheus(tmp_path: Path, prometheus_bin: str, promtool: str) -> Iterator[Callable[[int], Prometheus]]:
    """A real Prometheus on 127.0.0.1 (temporary storage, 1 s scrapes) using deploy/prometheus/alerts.yml."""
    started: list[Prometheus] = []

    def start(target_port: int, alertmanager_port: int | None = None) -> Prometheus:
        config = tmp_path / "prometheus-test.yml"
        alerting = (
            f"alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{alertmanager_port}']}}]}}]}}\n"
            if alertmanager_port else ""
        )
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
            f"rule_files: ['{PROM_DIR / 'alerts.yml'}']\n"
            + alerting
            + "scrape_configs:\n"
            "  - job_name: mmbot\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        prom = Prometheus(prometheus_bin, config, tmp_path)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel (rows may nest panels)."""
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for sub in [panel, *panel.get("panels", [])]:
            for target in sub.get("targets", []):
                if "expr" in target:
                    out.append((sub["title"], target["expr"]))
    return out


GRAFANA_MACROS = {
    r"\$__rate_interval": "1m",
    r"\$__interval": "15s",
    r"\$__range": "1h",
}


def concrete(expr: str, variable_value: str = ".*") -> str:
    """A dashboard expr with Grafana macros and template variables replaced by concrete values."""
    for pattern, value in GRAFANA_MACROS.items():
        expr = re.sub(pattern, value, expr)
    return re.sub(r"\$\{?(\w+)(:\w+)?\}?", variable_value, expr)

