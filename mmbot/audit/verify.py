"""Reading and verifying a journal: the chain, the manifest checkpoint and the seal.

Checks, in order, for every line of every segment (segments in index order):

1. the line is a canonical record whose sha256 matches (else: modified/inserted bytes);
2. its ``seq`` is the previous seq + 1 (lower: reordered or inserted line;
   higher: deleted lines);
3. its ``prev_hash`` is the previous record's hash (else: a record was replaced
   or inserted with a recomputed hash).

Then against ``manifest.json``: the checkpoint (last durable seq and hash) must be
present in the journal with the same hash (a shorter journal means records were
deleted from the tail); a sealed manifest must match the final ``run_stop`` record.

Attachments: a ``market_recording_closed`` record (the market data a live-fed run
received, mmbot.runtime.market_record) names a file and its metadata file with their
SHA-256; both are hashed again, and a missing or different file is ``tampered``
(the journal vouches for the recording, so an edited recording is a damaged run).

Outcome and exit status of ``mmbot audit verify``:

* ``ok`` (0): the chain is intact and sealed by a run_stop record;
* ``tampered`` (1): the first bad record is named;
* ``unsealed`` (4): no seal (the run crashed or is still running) and no damage
  except, possibly, a torn last line (a partial write cut by the crash). An unsealed
  journal that is not the latest of its account and symbol set is reported as
  ABANDONED: a later journal was started instead of resuming it (``mmbot run
  --fresh``, or a restart on other data), so no run will ever seal it. It keeps
  exit status 4: its run still did not stop cleanly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmbot.audit.codec import GENESIS, RecordError, decode_line
from mmbot.audit.writer import MANIFEST, list_segments, read_manifest

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_UNSEALED = 4


@dataclass
class TornTail:
    path: Path
    offset: int  # the file is intact up to this byte offset
    length: int


@dataclass
class VerifyResult:
    directory: Path
    status: str = "ok"  # ok | tampered | unsealed
    problem: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: TornTail | None = None
    sealed: bool = False
    last_seq: int = 0
    last_hash: str = GENESIS
    notes: list[str] = field(default_factory=list)
    abandoned_by: str | None = None  # unsealed, and a later journal of the same family exists (its name)

    @property
    def exit_code(self) -> int:
        return {"ok": EXIT_OK, "tampered": EXIT_TAMPERED, "unsealed": EXIT_UNSEALED}[self.status]

    def describe(self) -> str:
        n = len(self.records)
        if self.status == "ok":
            return f"{self.directory}: OK, {n} records, chain intact, sealed (last hash {self.last_hash[:16]})"
        if self.status == "unsealed":
            torn = f"; torn last line ({self.torn.length} bytes at offset {self.torn.offset} of {self.torn.path.name})" if self.torn else ""
            if self.abandoned_by is not None:
                return (
                    f"{self.directory}: UNSEALED, ABANDONED, {n} records, chain intact{torn}: the run did not stop cleanly "
                    f"(crash) and the later journal {self.abandoned_by} was started instead of resuming it"
                )
            return f"{self.directory}: UNSEALED, {n} records, chain intact{torn}: the run did not stop cleanly (crash) or is still running"
        return f"{self.directory}: TAMPERED: {self.problem}"


def is_journal_dir(path: Path) -> bool:
    return path.is_dir() and ((path / MANIFEST).is_file() or any(path.glob("seg-*.jsonl")))


def find_journals(paths: list[str]) -> list[Path]:
    """Journal directories named by PATHs: a journal dir, a file in one, or a dir holding journals."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if is_journal_dir(path.parent):
                found.append(path.parent)
        elif is_journal_dir(path):
            found.append(path)
        elif path.is_dir():
            found.extend(sorted({p.parent for p in path.rglob(MANIFEST)} | {p.parent for p in path.rglob("seg-*.jsonl")}))
    unique: list[Path] = []
    for p in found:
        if p not in unique:
            unique.append(p)
    return unique


def latest_journal(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name[:6].isdigit()]
    return max(dirs, key=lambda p: int(p.name[:6])) if dirs else None


def later_journal(directory: Path) -> Path | None:
    """The latest journal of ``directory``'s family when it is numbered after ``directory`` (else None)."""
    if not directory.name[:6].isdigit():
        return None
    latest = latest_journal(directory.parent)
    if latest is None or int(latest.name[:6]) <= int(directory.name[:6]):
        return None
    return latest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_attachments(records: list[dict[str, Any]]) -> str:
    """The files the journal vouches for (market recordings) against their hashes; '' when all match."""
    for rec in records:
        if rec["type"] != "market_recording_closed":
            continue
        payload = rec["payload"]
        for key, hash_key in (("path", "sha256"), ("meta_path", "meta_sha256")):
            name = payload.get(key)
            if not name or not payload.get(hash_key):
                continue
            path = Path(str(name))
            if not path.is_file():
                return f"the market recording {path} named at {rec['_where']} (seq {rec['seq']}) is missing"
            if _sha256(path) != payload[hash_key]:
                return f"the market recording {path} does not match its SHA-256 journaled at {rec['_where']} (seq {rec['seq']}): the file was changed"
    return ""


def verify_journal(directory: Path) -> VerifyResult:
    result = VerifyResult(directory=directory)
    records = result.records
    expected = 1
    prev = GENESIS
    segments = list_segments(directory)

    def bad(msg: str) -> VerifyResult:
        result.status = "tampered"
        result.problem = msg
        return result

    for si, seg in enumerate(segments):
        data = seg.read_bytes()
        is_last_seg = si == len(segments) - 1
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        offset = 0
        for lineno, line in enumerate(lines, start=1):
            where = f"{seg.name} line {lineno}"
            try:
                rec = decode_line(line)
            except RecordError as exc:
                return bad(f"first bad record at {where} (expected seq {expected}): {exc}")
            seq = rec["seq"]
            if seq != expected:
                if isinstance(seq, int) and seq < expected:
                    return bad(f"first bad record at {where}: seq {seq} after seq {expected - 1} (a line was reordered or inserted)")
                return bad(f"first bad record at {where}: expected seq {expected}, found seq {seq} (records deleted or lines reordered)")
            if rec["prev_hash"] != prev:
                return bad(f"first bad record at {where} (seq {seq}): prev_hash does not match the previous record (a record was inserted or replaced)")
            if records and records[-1]["type"] == "run_stop":
                return bad(f"first bad record at {where} (seq {seq}): record after the seal (run_stop at seq {seq - 1})")
            rec["_where"] = where
            records.append(rec)
            prev = rec["hash"]
            expected += 1
            offset += len(line) + 1
        if tail:
            if not is_last_seg:
                return bad(f"{seg.name} ends with a partial line but is not the last segment")
            try:
                rec = decode_line(tail)
            except RecordError:
                result.torn = TornTail(path=seg, offset=offset, length=len(tail))
            else:
                # A complete record that only lacks its newline: keep it.
                if rec["seq"] != expected or rec["prev_hash"] != prev:
                    return bad(f"first bad record at {seg.name} line {len(lines) + 1}: seq/prev_hash out of chain")
                rec["_where"] = f"{seg.name} line {len(lines) + 1}"
                records.append(rec)
                prev = rec["hash"]
                expected += 1
                result.notes.append("last line lacks its newline")
    result.last_seq = expected - 1
    result.last_hash = prev
    result.sealed = bool(records) and records[-1]["type"] == "run_stop"
    if result.sealed and result.torn is not None:
        return bad(f"bytes after the seal in {result.torn.path.name}")

    manifest = read_manifest(directory)
    if manifest is None:
        return bad(f"{MANIFEST} is missing (it bounds what a deleted tail could hide)")
    if manifest.get("_unreadable"):
        return bad(f"{MANIFEST} is unreadable")
    by_seq = {r["seq"]: r for r in records}
    cp = manifest.get("checkpoint") or {}
    cp_seq = int(cp.get("seq", 0))
    if cp_seq > result.last_seq:
        return bad(
            f"records missing against the manifest: its checkpoint names seq {cp_seq}, the journal ends at seq {result.last_seq}"
        )
    if cp_seq and by_seq[cp_seq]["hash"] != cp.get("hash"):
        return bad(f"record seq {cp_seq} ({by_seq[cp_seq]['_where']}) does not match the manifest checkpoint hash")
    seal = manifest.get("seal")
    if manifest.get("sealed"):
        if not isinstance(seal, dict) or int(seal.get("seq", -1)) != result.last_seq or seal.get("hash") != result.last_hash or not result.sealed:
            want = seal.get("seq") if isinstance(seal, dict) else "?"
            return bad(
                f"records missing against the seal: the manifest says sealed at seq {want}, the journal ends at seq "
                f"{result.last_seq}{' without a run_stop record' if not result.sealed else ''}"
            )
    problem = check_attachments(records)
    if problem:
        return bad(problem)
    if not result.sealed:
        result.status = "unsealed"
        later = later_journal(directory)
        if later is not None:
            result.abandoned_by = later.name
    return result
