"""The image built and run for real: health, fills in /metrics, SIGUSR1 kill switch, clean stop;
docker compose with a real Prometheus scraping the daemon.

Needs a Docker engine: `.ci/run` starts one with ../shared/tools/offline-base-images.sh
(`make test-containers`). Without one these tests fail with that instruction.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.container
IMAGE = "mmbot:ci"


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    return proc


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine: run `bash ../shared/tools/offline-base-images.sh` (as .ci/run does) first")
    started = time.monotonic()
    docker("build", "-t", IMAGE, ".", timeout=900)
    print(f"docker build took {time.monotonic() - started:.1f} s")
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def metric_value(text: str, name: str, label_filter: str = "") -> float | None:
    total = None
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and label_filter in line:
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


@pytest.fixture
def container(image: str, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    name = f"mmbot-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o777)  # the container user (uid 10001) writes the journal and summary here
    docker(
        "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
        "-e", "MMBOT_METRICS__HOST=0.0.0.0", "-e", "MMBOT_RUN__SPEED=5",
        "-p", f"127.0.0.1:{port}:9464", "-v", f"{state}:/var/lib/mmbot", image,
    )  # fmt: skip
    try:
        yield name, port, state
    finally:
        logs = docker("logs", "--tail", "30", name, check=False)
        print(logs.stdout[-3000:], logs.stderr[-3000:])
        docker("rm", "-f", name, check=False)


def test_container_when_running_then_healthy_fills_kill_switch_and_clean_stop(container: tuple[str, int, Path]) -> None:
    name, port, state = container
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_get(base + "/healthz"), 60, "/healthz")
    wait_for(lambda: (metric_value(http_get(base + "/metrics"), "mmbot_fills_total") or 0) > 0, 120, "a fill in /metrics")
    pid1 = docker("exec", name, "python", "-c", "print(open('/proc/1/cmdline').read().split(chr(0))[:3])").stdout
    assert "mmbot" in pid1  # the daemon itself is PID 1 (exec form)

    docker("kill", "-s", "USR1", name)

    def engaged() -> bool:
        text = http_get(base + "/metrics")
        return metric_value(text, "mmbot_kill_switch_engaged") == 1.0 and metric_value(text, "mmbot_open_orders") == 0.0

    wait_for(engaged, 10, "kill switch engaged with zero open orders")
    started = time.monotonic()
    docker("stop", "-t", "30", name, timeout=60)
    stop_seconds = time.monotonic() - started
    exit_code = int(docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip())
    assert exit_code == 0
    assert stop_seconds < 30
    summary = json.loads((state / "summary.json").read_text())
    assert summary["open_orders"] == 0
    assert summary["kill_switch_engaged"] is True
    assert summary["fills"] > 0


def test_compose_when_up_then_prometheus_scrapes_the_daemon(image: str) -> None:
    docker("compose", "config", "-q")
    project = f"mmbotci{uuid.uuid4().hex[:6]}"
    try:
        docker("compose", "-p", project, "up", "-d", "--build", "--wait", timeout=900)

        def build_info() -> list[object]:
            body = json.loads(http_get("http://127.0.0.1:9090/api/v1/query?query=mmbot_build_info"))
            result: list[object] = body["data"]["result"]
            return result

        result = wait_for(build_info, 60, "mmbot_build_info in Prometheus")
        assert result
    finally:
        docker("compose", "-p", project, "down", "-v", timeout=120, check=False)


def test_compose_offline_profile_when_up_then_paper_daemon_trades_on_the_emulator_feed(image: str) -> None:
    project = f"mmbotoff{uuid.uuid4().hex[:6]}"
    probe = (
        "import urllib.request; t = urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode(); "
        "print(sum(float(l.rsplit(' ', 1)[1]) for l in t.splitlines() if l.startswith('mmbot_fills_total{')))"
    )
    try:
        docker("compose", "-p", project, "--profile", "offline", "up", "-d", "--build", "--wait", "emulator", "mmbot-live", timeout=900)
        container = f"{project}-mmbot-live-1"

        def fills() -> float:
            out = docker("exec", container, "python", "-c", probe, check=False).stdout.strip()
            return float(out) if out else 0.0

        assert wait_for(fills, 120, "fills of the paper daemon on the emulator's live feed") > 0
    finally:
        docker("compose", "-p", project, "--profile", "offline", "down", "-v", timeout=120, check=False)


def test_image_when_built_then_lean_under_350_mb_and_research_commands_name_the_extra(image: str) -> None:
    size_mb = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout.strip()) / 1e6
    venv = docker("run", "--rm", "--entrypoint", "du", image, "-sm", "/opt/venv").stdout.split()[0]
    print(f"daemon image {size_mb:.0f} MB, venv {venv} MB")
    assert size_mb < 350
    for args, feature in ((["backtest", "--report"], "mmbot backtest --report"), (["optimize"], "mmbot optimize")):
        proc = docker("run", "--rm", image, "mmbot", *args, check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{feature} needs the research extra" in proc.stderr
        assert "pip install 'mmbot[research]'" in proc.stderr


def test_research_image_when_built_then_reports_and_optimizer_kernels_work(tmp_path: Path) -> None:
    tag = "mmbot:ci-research"
    docker("build", "--target", "research", "-t", tag, ".", timeout=1500)
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)  # the container user (uid 10001) writes the record and report here
    proc = docker("run", "--rm", "-v", f"{out}:/out", tag, "mmbot", "backtest", "--bars", "bundled", "--report", "--out", "/out/r", check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (out / "r" / "report.html").stat().st_size > 100_000 and (out / "r" / "report.png").exists()
    docker("run", "--rm", tag, "python", "-c", "import mmbot.research.grid, dask.distributed, pyarrow")
