"""Property: no single-byte change anywhere in a sealed journal's records passes verification."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.audit.verify import verify_journal
from tests.audit.helpers import lines_of, make_journal

_BASE = Path(tempfile.mkdtemp(prefix="mmbot-audit-prop-"))
atexit.register(shutil.rmtree, _BASE, True)
_JOURNAL = make_journal(_BASE, fills=6)
_SEG, _LINES = lines_of(_JOURNAL)
_DATA = b"".join(_LINES)


@settings(max_examples=150, deadline=None)
@given(offset=st.integers(min_value=0, max_value=len(_DATA) - 1), delta=st.integers(min_value=1, max_value=255))
def test_verify_when_any_single_byte_changed_then_not_ok(offset: int, delta: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="mmbot-audit-case-"))
    try:
        copy = work / _JOURNAL.name
        shutil.copytree(_JOURNAL, copy)
        data = bytearray(_DATA)
        data[offset] = (data[offset] + delta) % 256
        (copy / _SEG.name).write_bytes(bytes(data))
        result = verify_journal(copy)
        assert result.status != "ok", f"byte {offset} changed by {delta} went unnoticed"
    finally:
        shutil.rmtree(work)


def test_verify_when_journal_untouched_then_ok() -> None:
    assert verify_journal(_JOURNAL).status == "ok"
