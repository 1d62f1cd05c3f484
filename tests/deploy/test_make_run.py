"""`make run` on a terminal: Ctrl-C stops the daemon cleanly and make exits 0 (not 130).

A real pseudo-terminal: ^C written to its master makes the terminal driver send SIGINT to
the foreground process group, exactly as a keyboard does. The Makefile's own recipe
runs, with VENV pointing at a stand-in whose bin/mmbot is this interpreter's mmbot.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _drive(argv: list[str], env: dict[str, str], cwd: Path, ready: bytes, timeout: float = 60.0) -> tuple[int, str]:
    """Run ``argv`` on a new pty; once ``ready`` appears in its output, type ^C; (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the session leader with the pty as its terminal
        os.chdir(cwd)
        os.execvpe(argv[0], argv, env)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([fd], [], [], 0.2)
            if readable:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child side closed
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and ready in out:
                time.sleep(1.0)  # a second of quoting, then the keyboard interrupt
                os.write(fd, b"\x03")
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert sent, f"never saw {ready!r}: {out.decode(errors='replace')[-2000:]}"
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_make_run_when_ctrl_c_on_a_terminal_then_clean_stop_and_exit_0(tmp_path: Path, clean_env: dict[str, str]) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make not found; install it: apt-get install -y make")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    wrapper = venv / "bin" / "mmbot"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mmbot "$@"\n')
    wrapper.chmod(0o755)
    env = dict(clean_env, MMBOT_LOG__FORMAT="json", TERM="dumb", PYTHONPATH=str(ROOT))

    code, out = _drive([make, "-s", "-f", str(ROOT / "Makefile"), "run", f"VENV={venv}", "STAMP_RUN="], env, tmp_path,
                       ready=b'"run_started"')

    assert code == 0, out[-3000:]
    assert '"stop_reason": "SIGINT"' in out and "Interrupt" not in out
    assert "run summary" in out
