"""The journal writer: buffered appends, segment rotation, fsync, manifest, seal.

Layout of one journal (one run, or one run and its crash-resumed continuation)::

    <audit.dir>/<account>__<SYMBOLS>/<NNNNNN>-<run_id>/
        manifest.json             checkpoint: last durable seq and hash, segments, seal
        seg-000001-YYYYMMDD.jsonl records, rotated by size (audit.rotate_bytes) and UTC day
        seg-000002-YYYYMMDD.jsonl the chain continues: its first prev_hash = last hash before

Appends are synchronous and cheap (encode + sha256 into an in-memory buffer);
:meth:`JournalWriter.take` hands the buffered lines to :meth:`JournalWriter.write`,
which the asyncio runner calls in a worker thread (fsync never blocks the event
loop) and the synchronous backtest calls inline. ``needs_sync`` is set when a
record that must be durable before the engine goes on (fill, risk change,
signal, recovery) is buffered.

The manifest is rewritten atomically (tmp + fsync + rename + directory fsync),
only after the records it names were fsynced, so after a crash the journal always
holds at least what the manifest claims. A write error (disk full, I/O error)
raises :class:`~mmbot.errors.JournalError`; the writer then keeps counting (never
silently dropping) the records it could not write: ``unwritten``.
"""

from __future__ import annotations

import calendar
import os
import time
from pathlib import Path
from typing import Any

import orjson

from mmbot.audit.codec import FORMAT, GENESIS, encode_record
from mmbot.errors import JournalError

MANIFEST = "manifest.json"
NS_PER_DAY = 86_400 * 1_000_000_000
DURABLE_TYPES = frozenset({"fill", "risk", "signal", "recovery", "repair", "resume_forced", "run_start", "run_stop"})


def segment_name(index: int, wall_ns: int) -> str:
    day = time.strftime("%Y%m%d", time.gmtime(wall_ns // 1_000_000_000))
    return f"seg-{index:06d}-{day}.jsonl"


def segment_index(name: str) -> int:
    return int(name.split("-")[1])


def list_segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.jsonl"), key=lambda p: segment_index(p.name))


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    tmp = directory / (MANIFEST + ".tmp")
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / MANIFEST)
    fsync_dir(directory)


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError):
        return {"_unreadable": True}
    return data if isinstance(data, dict) else {"_unreadable": True}


def _datasync(fd: int) -> None:
    # fdatasync: the data and the file size, without the mtime update: cheaper than fsync.
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)  # a short write (file size limit, disk full) loops and then raises
        view = view[n:]


class JournalWriter:
    """Appends records to one journal directory. Not thread safe: one writer thread at a time."""

    def __init__(
        self,
        directory: Path,
        *,
        rotate_bytes: int,
        manifest: dict[str, Any],
        seq: int = 0,
        prev_hash: str = GENESIS,
        seg_index: int = 1,
        seg_name: str | None = None,
        seg_bytes: int = 0,
    ) -> None:
        self.directory = directory
        self.rotate_bytes = rotate_bytes
        self.manifest = manifest
        self.seq = seq
        self.last_hash = prev_hash
        self._seg_index = seg_index
        now = time.time_ns()
        self._seg_name = seg_name or segment_name(seg_index, now)
        self._seg_day = now // NS_PER_DAY if seg_name is None else self._day_of(self._seg_name)
        self._seg_bytes = seg_bytes
        self._pending: list[tuple[str, bytes]] = []  # (segment name, line) in order
        self._pending_bytes = 0
        self._fd: int | None = None
        self._fd_name = ""
        self.needs_sync = False
        self.failed: JournalError | None = None
        self.unwritten = 0
        self.first_unwritten_seq: int | None = None
        self.durable_seq = seq
        self.durable_hash = prev_hash
        self.written_records = 0

    @staticmethod
    def _day_of(name: str) -> int:
        day = name.split("-")[2].split(".")[0]
        return calendar.timegm(time.strptime(day, "%Y%m%d")) * 1_000_000_000 // NS_PER_DAY

    # --- construction ------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, run_id: str, *, rotate_bytes: int, info: dict[str, Any]) -> JournalWriter:
        """A new journal directory under ``root`` (numbered after the latest one)."""
        try:
            root.mkdir(parents=True, exist_ok=True)
            existing = [p.name for p in root.iterdir() if p.is_dir() and p.name[:6].isdigit()]
            number = max((int(n[:6]) for n in existing), default=0) + 1
            directory = root / f"{number:06d}-{run_id}"
            directory.mkdir()
            manifest = {
                "format": FORMAT,
                "journal": directory.name,
                **info,
                "created_wall_ns": time.time_ns(),
                "segments": [],
                "checkpoint": {"seq": 0, "hash": GENESIS},
                "sealed": False,
                "seal": None,
            }
            write_manifest(directory, manifest)
        except OSError as exc:
            raise JournalError(f"cannot create the audit journal under {root}: {exc}") from exc
        return cls(directory, rotate_bytes=rotate_bytes, manifest=manifest)

    @classmethod
    def reopen(cls, directory: Path, *, rotate_bytes: int, seq: int, last_hash: str) -> JournalWriter:
        """Continue an existing (unsealed, repaired) journal after its last record."""
        manifest = read_manifest(directory) or {}
        if manifest.get("_unreadable"):
            manifest = {"format": FORMAT, "journal": directory.name}
        segments = list_segments(directory)
        if segments:
            last = segments[-1]
            return cls(
                directory,
                rotate_bytes=rotate_bytes,
                manifest=manifest,
                seq=seq,
                prev_hash=last_hash,
                seg_index=segment_index(last.name),
                seg_name=last.name,
                seg_bytes=last.stat().st_size,
            )
        return cls(directory, rotate_bytes=rotate_bytes, manifest=manifest, seq=seq, prev_hash=last_hash)

    # --- appending (event-loop thread) -----------------------------------------------------
    def append(self, rtype: str, payload: dict[str, Any], ts_capture_ns: int | None = None) -> int:
        self.seq += 1
        wall = time.time_ns()
        line, digest = encode_record(self.seq, time.monotonic_ns(), wall, ts_capture_ns, rtype, payload, self.last_hash)
        self.last_hash = digest
        if self.failed is not None:
            self.unwritten += 1
            if self.first_unwritten_seq is None:
                self.first_unwritten_seq = self.seq
            return self.seq
        size = len(line)
        day = wall // NS_PER_DAY
        if self._seg_bytes and (self._seg_bytes + size > self.rotate_bytes or day != self._seg_day):
            # Rotation: the chain simply continues into the next segment file.
            self._seg_index += 1
            self._seg_name = segment_name(self._seg_index, wall)
            self._seg_day = day
            self._seg_bytes = 0
        self._seg_bytes += size
        self._pending.append((self._seg_name, line))
        self._pending_bytes += size
        if rtype in DURABLE_TYPES:
            self.needs_sync = True
        return self.seq

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def take(self) -> tuple[list[tuple[str, bytes]], int, str]:
        """Hand over the buffered lines with the seq/hash they end at."""
        chunks = self._pending
        self._pending = []
        self._pending_bytes = 0
        self.needs_sync = False
        return chunks, self.seq, self.last_hash

    # --- writing (worker thread or inline) ----------------------------------------------------
    def write(self, chunks: list[tuple[str, bytes]], end_seq: int, end_hash: str, *, fsync: bool, checkpoint: bool) -> None:
        """Write lines in order; optionally fsync and checkpoint the manifest. Raises JournalError."""
        if self.failed is not None:
            self._count_lost(chunks, end_seq)
            return
        try:
            i = 0
            while i < len(chunks):
                name = chunks[i][0]
                j = i
                while j < len(chunks) and chunks[j][0] == name:
                    j += 1
                self._open(name)
                assert self._fd is not None
                _write_all(self._fd, b"".join(line for _, line in chunks[i:j]))
                self.written_records += j - i
                i = j
            if fsync and self._fd is not None:
                _datasync(self._fd)
                self.durable_seq = end_seq
                self.durable_hash = end_hash
                if checkpoint:
                    self.manifest["checkpoint"] = {"seq": end_seq, "hash": end_hash, "ts_wall_ns": time.time_ns()}
                    write_manifest(self.directory, self.manifest)
        except OSError as exc:
            self.failed = JournalError(f"audit journal write failed in {self.directory}: {exc.strerror or exc} (errno {exc.errno})")
            self._count_lost(chunks, end_seq)
            raise self.failed from exc

    def _count_lost(self, chunks: list[tuple[str, bytes]], end_seq: int) -> None:
        # Lines of a failed write may be partly on disk; none is counted as written.
        self.unwritten += len(chunks)
        if chunks and self.first_unwritten_seq is None:
            self.first_unwritten_seq = end_seq - len(chunks) + 1

    def _open(self, name: str) -> None:
        if self._fd is not None and self._fd_name == name:
            return
        if self._fd is not None:
            os.fsync(self._fd)  # the previous segment is complete
            os.close(self._fd)
            self._fd = None
        self._fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._fd_name = name
        segments = self.manifest.setdefault("segments", [])
        if name not in segments:
            segments.append(name)
            fsync_dir(self.directory)

    def flush(self, *, fsync: bool = True, checkpoint: bool = True) -> None:
        chunks, seq, digest = self.take()
        self.write(chunks, seq, digest, fsync=fsync, checkpoint=checkpoint)

    def seal(self) -> None:
        """Flush everything, fsync, and mark the manifest sealed (after the run_stop record)."""
        self.flush(fsync=True, checkpoint=False)
        if self.failed is not None:
            return
        try:
            self.manifest["checkpoint"] = {"seq": self.seq, "hash": self.last_hash, "ts_wall_ns": time.time_ns()}
            self.manifest["sealed"] = True
            self.manifest["seal"] = {"seq": self.seq, "hash": self.last_hash}
            write_manifest(self.directory, self.manifest)
        except OSError as exc:
            self.failed = JournalError(f"audit journal seal failed in {self.directory}: {exc}")
            raise self.failed from exc

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None
