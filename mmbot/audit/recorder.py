"""Engine -> journal: the observer that turns engine events into journal records.

Record types written here: every typed engine event (mmbot.domain.engine_events:
``fill``, ``place``, ``ack``, ``cancel``, ``cancelled``, ``cancel_all``, ``deny``,
``reject``, ``risk``, ``decision``, ``markout`` and operator notes) under its journal
kind, with :meth:`~mmbot.domain.engine_events.EngineEvent.record` as its body;
``book`` (sync/resync markers of the engine's and the venue's L2 book); ``signal``
(operator signals). A fill record also carries the engine's mid (``mid_ticks``) so
an unsealed journal can still be marked to market.

Records keep the order in which the engine recorded the events (an ack is recorded
when the engine handles the venue's acceptance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmbot.audit.writer import JournalWriter
from mmbot.domain.engine_events import EngineEvent, FillBooked
from mmbot.engine.engine import Engine
from mmbot.engine.session import ReplaySession


class Recorder:
    def __init__(self, writer: JournalWriter, engine: Engine, session: ReplaySession | None = None) -> None:
        self.writer = writer
        self.engine = engine
        self.session = session
        self._books: dict[str, tuple[str, int]] = {}

    # --- observers ------------------------------------------------------------------------
    def observe(self, events: Sequence[EngineEvent]) -> None:
        append = self.writer.append
        engine = self.engine
        for ev in events:
            if type(ev) is FillBooked:
                append("fill", {**ev.record(), "mid_ticks": engine.mid_ticks}, ev.ts_ns)
            else:
                append(ev.kind, ev.record(), ev.ts_ns)
        self.check_book()

    def install(self, session: ReplaySession) -> None:
        """Know the session (the venue's book markers and the session clock)."""
        self.session = session

    def check_book(self) -> None:
        """Journal a marker when a book gains or loses sync (or counts a new gap)."""
        engine = self.engine
        books = [("engine", engine.book)]
        if self.session is not None and self.session.venue_book is not engine.book:
            books.append(("venue", self.session.venue_book))
        for name, book in books:
            now = (book.state.name, book.gap_count)
            if self._books.get(name) != now:
                old = self._books.get(name)
                self._books[name] = now
                kind = "sync" if book.is_synced else "resync"
                self.writer.append(
                    "book",
                    {"book": name, "marker": kind, "state": now[0], "gaps": now[1], "last_update_id": book.last_update_id, "was": None if old is None else old[0]},
                    self.session.now_ns if self.session is not None else None,
                )

    def note(self, kind: str, payload: dict[str, Any]) -> None:
        ts = self.session.now_ns if self.session is not None else None
        self.writer.append(kind, payload, ts)
