"""scripts/install-test-deps.sh run against a fake PATH: only stub ``id``/``apt-get`` and the
stub binaries the case provides are visible, so every branch (all present, missing as a
user, missing as root, apt-get not delivering) runs without touching the machine's packages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "install-test-deps.sh"
BINARIES = {"prometheus": "prometheus", "promtool": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager", "chromium": "chromium"}
BASH = shutil.which("bash") or "/bin/bash"
CHMOD = shutil.which("chmod") or "/bin/chmod"


def stub(path: Path, body: str) -> None:
    path.write_text("#!" + BASH + "\n" + body)
    path.chmod(0o755)


def fake_path(tmp_path: Path, present: set[str], uid: int, apt_delivers: bool = True) -> Path:
    """A directory standing in for PATH; ``apt-get install P`` creates the stubs of package P."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in present:
        stub(bindir / name, "exit 0\n")
    stub(bindir / "id", f'[ "$1" = -u ] && echo {uid}\n')
    for tool in ("chmod", "dirname", "rm"):  # what the script itself calls besides id and apt-get
        (bindir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    bins_of = " ".join(f"{pkg}:{b}" for b, pkg in BINARIES.items())
    make = 'for pkg in "$@"; do for pb in ' + bins_of + '; do [ "${pb%%:*}" = "$pkg" ] && ' + f'{{ echo "exit 0" > "{bindir}/${{pb#*:}}"; {CHMOD} +x "{bindir}/${{pb#*:}}"; }}; done; done\n'
    stub(
        bindir / "apt-get",
        f'echo "$*" >> "{tmp_path}/apt.log"\n'
    + f'[ -x "{tmp_path}/policy-rc.d" ] && echo policy-rc.d-present >> "{tmp_path}/apt.log"\n'
        + ("if [ \"$1\" = install ]; then shift; " + make + "fi\n" if apt_delivers else "")
        + "exit 0\n",
    )
    return bindir


def run(bindir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bindir), "INSTALL_TEST_DEPS_POLICY_RC_D": str(bindir.parent / "policy-rc.d")}
    return subprocess.run([BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)


def apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_install_test_deps_when_everything_present_then_exit_0_silently_without_apt(tmp_path: Path) -> None:
    bindir = fake_path(tmp_path, set(BINARIES), uid=1000)
    proc = run(bindir)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert apt_calls(tmp_path) == []


def test_install_test_deps_when_missing_and_not_root_then_one_message_with_packages_and_command(tmp_path: Path) -> None:
    bindir = fake_path(tmp_path, {"prometheus-alertmanager"}, uid=1000)
    proc = run(bindir)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Debian packages: prometheus chromium" in lines[0]
    assert "apt-get install -y --no-install-recommends prometheus" in lines[0]
    assert "apt-get install -y chromium" in lines[0]
    assert apt_calls(tmp_path) == []


def test_install_test_deps_when_missing_and_root_then_apt_installs_only_the_missing(tmp_path: Path) -> None:
    bindir = fake_path(tmp_path, {"chromium"}, uid=0)
    proc = run(bindir)
    assert proc.returncode == 0, proc.stderr
    # no package's service starts meanwhile: policy-rc.d is in place during apt-get, gone after
    assert apt_calls(tmp_path) == [
        "update -qq", "policy-rc.d-present",
        "install -y -qq --no-install-recommends prometheus prometheus-alertmanager", "policy-rc.d-present",
    ]  # fmt: skip
    assert not (tmp_path / "policy-rc.d").exists()
    assert all((bindir / b).exists() for b in BINARIES)
    assert run(bindir).returncode == 0 and len(apt_calls(tmp_path)) == 4  # second run: nothing to do


def test_install_test_deps_when_apt_does_not_deliver_then_exit_1_naming_the_binary(tmp_path: Path) -> None:
    bindir = fake_path(tmp_path, {"prometheus", "promtool", "prometheus-alertmanager"}, uid=0, apt_delivers=False)
    proc = run(bindir)
    assert proc.returncode == 1
    assert "chromium still not on PATH" in proc.stderr
    assert [c for c in apt_calls(tmp_path) if c != "policy-rc.d-present"] == ["update -qq", "install -y -qq chromium"]


def test_install_test_deps_when_check_as_root_then_reports_without_installing(tmp_path: Path) -> None:
    bindir = fake_path(tmp_path, set(), uid=0)
    proc = run(bindir, "--check")
    assert proc.returncode == 1
    assert "prometheus promtool prometheus-alertmanager chromium" in proc.stderr
    assert apt_calls(tmp_path) == []
