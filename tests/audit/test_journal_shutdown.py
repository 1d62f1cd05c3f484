"""A flush cancelled at shutdown must not lose the records it had taken (issue 30 review).

Seen in a sandbox run under load: the journal task's flush was cancelled while its
write waited for a thread; the write never ran, the seal wrote the later records, and
`audit verify` found seq 13 followed by seq 23. The write is now shielded from the
flush's cancellation and the seal waits for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path

from mmbot.audit.verify import verify_journal
from mmbot.audit.writer import JournalWriter
from mmbot.runtime.journal import Journal


def _writer(tmp_path: Path) -> JournalWriter:
    return JournalWriter.create(tmp_path, "20260101T000000Z-test", rotate_bytes=1 << 20, info={"account": "test"})


def _check(journal: Journal, writer: JournalWriter, failures: list[object]) -> None:
    error = journal.seal({"fills": 0}, "SIGTERM", None, 12)
    assert error is None and failures == []
    result = verify_journal(writer.directory)
    assert result.status == "ok" and result.sealed, result.problem
    assert [r["seq"] for r in result.records] == list(range(1, 14))


def test_seal_when_flush_cancelled_before_its_write_started_then_every_record_on_disk_in_order(tmp_path: Path) -> None:
    # The loop's default thread pool is busy (DNS lookups, other to_thread calls): a write
    # queued there and then cancelled would never run.
    writer = _writer(tmp_path)
    failures: list[object] = []
    journal = Journal(writer, {}, flush_interval_ms=10, on_failure=failures.append)
    busy = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        occupant = loop.run_in_executor(None, busy.wait, 5)
        writer.append("run_start", {"n": 0}, 1)
        for n in range(1, 11):
            writer.append("note", {"n": n}, n)
        flush = asyncio.create_task(journal.flush(fsync=True, checkpoint=False))
        await asyncio.sleep(0.05)
        flush.cancel()
        await asyncio.gather(flush, return_exceptions=True)
        writer.append("note", {"n": 11}, 11)
        busy.set()
        await occupant

    asyncio.run(main())
    _check(journal, writer, failures)


def test_seal_when_flush_cancelled_mid_write_then_every_record_on_disk_in_order(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    release = threading.Event()
    original = writer.write

    def slow_write(*args: object, **kwargs: object) -> None:
        release.wait(5)  # the disk is slow: the write is still in flight when the flush is cancelled
        original(*args, **kwargs)  # type: ignore[arg-type]

    writer.write = slow_write  # type: ignore[method-assign]
    failures: list[object] = []
    journal = Journal(writer, {}, flush_interval_ms=10, on_failure=failures.append)

    async def main() -> None:
        writer.append("run_start", {"n": 0}, 1)
        for n in range(1, 11):
            writer.append("note", {"n": n}, n)
        flush = asyncio.create_task(journal.flush(fsync=True, checkpoint=False))
        await asyncio.sleep(0.05)
        flush.cancel()  # the phased shutdown cancels the journal task
        await asyncio.gather(flush, return_exceptions=True)
        writer.append("note", {"n": 11}, 11)
        threading.Timer(0.2, release.set).start()

    asyncio.run(main())
    _check(journal, writer, failures)
