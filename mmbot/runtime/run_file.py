"""The run file: how ``mmbot ctl`` (and an operator's ``kill``) find a running daemon.

A daemon (``mmbot run`` in every mode) writes two files into the run directory
``run.dir`` (default ``var/run``, relative to its working directory) when its loop
starts, and removes them when it stops (any stop that runs the shutdown: end of data,
``--duration``, SIGINT/SIGTERM, a journal failure; a SIGKILL leaves them, and readers
skip a file whose process is gone):

- ``<run_id>.pid``: the process id, one line (``kill -USR1 "$(cat var/run/<run_id>.pid)"``);
- ``<run_id>.json``: pid, run id, mode, symbols, start time, working directory,
  config path and the admin and metrics endpoints (host, port; the bound port when the
  config said 0). Never the admin token.

Both are written atomically (temporary file + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningDaemon:
    run_id: str
    pid: int
    info: dict[str, Any]
    path: Path

    @property
    def admin_port(self) -> int | None:
        admin = self.info.get("admin") or {}
        port = admin.get("port")
        return port if isinstance(port, int) and port > 0 else None

    def describe(self) -> str:
        symbols = ",".join(self.info.get("symbols") or [])
        admin = f"admin 127.0.0.1:{self.admin_port}" if self.admin_port else "no admin endpoint"
        return f"{self.run_id} (pid {self.pid}, {self.info.get('mode', '?')} {symbols}, {admin})"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class RunFile:
    def __init__(self, directory: str | Path, run_id: str) -> None:
        self.directory = Path(directory)
        self.run_id = run_id
        self.pid = os.getpid()
        self.info: dict[str, Any] = {}
        self.written = False

    @property
    def json_path(self) -> Path:
        return self.directory / f"{self.run_id}.json"

    @property
    def pid_path(self) -> Path:
        return self.directory / f"{self.run_id}.pid"

    def write(self, **fields: Any) -> None:
        """Write (or rewrite, with ``fields`` merged in) both files."""
        self.info.update(fields)
        self.info.update(pid=self.pid, run_id=self.run_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.pid_path, f"{self.pid}\n".encode())
        _write_atomic(self.json_path, orjson.dumps(self.info, option=orjson.OPT_INDENT_2) + b"\n")
        self.written = True

    def update(self, **fields: Any) -> None:
        if self.written:
            self.write(**fields)
        else:
            self.info.update(fields)

    def remove(self) -> None:
        for path in (self.json_path, self.pid_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.written = False


def pid_alive(pid: int) -> bool:
    """The process exists (and, where /proc tells, is an mmbot: a reused pid is not ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"mmbot" in cmdline.read_bytes()
        except OSError:
            return True
    return True


def running_daemons(directory: str | Path) -> tuple[list[RunningDaemon], list[Path]]:
    """(daemons whose process is alive, stale run files) in the run directory, oldest first."""
    base = Path(directory)
    alive: list[RunningDaemon] = []
    stale: list[Path] = []
    if not base.is_dir():
        return alive, stale
    for path in sorted(base.glob("*.json")):
        try:
            info = orjson.loads(path.read_bytes())
            pid = int(info["pid"])
            run_id = str(info["run_id"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            stale.append(path)  # half-written by hand or another tool: not a daemon we can reach
            continue
        if pid_alive(pid):
            alive.append(RunningDaemon(run_id=run_id, pid=pid, info=info, path=path))
        else:
            stale.append(path)
    return alive, stale
