"""Canonical encoding and the sha256 hash chain of the audit journal.

One record is one JSON object on one line (JSON Lines), keys sorted, no spaces
(orjson with ``OPT_SORT_KEYS``)::

    body  = canonical({seq, ts_mono_ns, ts_wall_ns, ts_capture_ns, type, payload, prev_hash})
    hash  = sha256(body) as 64 lowercase hex digits
    line  = body[:-1] + ',"hash":"<hash>"}' + "\\n"

``prev_hash`` is the previous record's ``hash`` (``GENESIS``, 64 zeros, for seq 1),
so editing, deleting, inserting or reordering any record breaks the chain at that
point. A line is valid only if it is byte for byte the canonical form of its own
content: re-encoding the parsed record must give the same bytes.

Units: ``ts_mono_ns`` monotonic clock and ``ts_wall_ns`` UTC wall clock of the
writing process (ns); ``ts_capture_ns`` the exchange/capture time of what the
record is about (ns since the epoch) or null when unknown.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from mmbot.errors import JournalError

GENESIS = "0" * 64
FORMAT = "mmbot-journal/1"
_SORT = orjson.OPT_SORT_KEYS


def _default(value: Any) -> str:
    # Decimal money and anything else orjson does not know: its exact string form.
    return str(value)


class RecordError(JournalError, ValueError):
    """A journal line that is not a valid record (why in the message); still a
    ValueError for callers that catch decode errors as such."""


def encode_record(
    seq: int,
    ts_mono_ns: int,
    ts_wall_ns: int,
    ts_capture_ns: int | None,
    rtype: str,
    payload: dict[str, Any],
    prev_hash: str,
) -> tuple[bytes, str]:
    """(line with trailing newline, hash) of a new record."""
    body = orjson.dumps(
        {
            "payload": payload,
            "prev_hash": prev_hash,
            "seq": seq,
            "ts_capture_ns": ts_capture_ns,
            "ts_mono_ns": ts_mono_ns,
            "ts_wall_ns": ts_wall_ns,
            "type": rtype,
        },
        default=_default,
        option=_SORT,
    )
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}\n', digest


def decode_line(line: bytes) -> dict[str, Any]:
    """Parse one line (without its newline) and check its canonical form and hash.

    Raises :class:`RecordError` naming what is wrong.
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    digest = record.pop("hash", None)
    if not isinstance(digest, str):
        raise RecordError("has no hash field")
    for key in ("seq", "type", "payload", "prev_hash"):
        if key not in record:
            raise RecordError(f"has no {key} field")
    body = orjson.dumps(record, option=_SORT)
    if hashlib.sha256(body).hexdigest() != digest:
        raise RecordError("its hash does not match its contents (the record was modified)")
    if body[:-1] + b',"hash":"' + digest.encode() + b'"}' != line:
        raise RecordError("it is not in canonical form (the line was edited)")
    record["hash"] = digest
    return record
