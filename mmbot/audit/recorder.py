"""Engine -> journal: the observer that turns engine events into journal records.

Record types written here: every :class:`~mmbot.engine.engine.EngineEvent` kind
(``fill``, ``place``, ``cancel``, ``cancelled``, ``cancel_all``, ``deny``,
``reject``, ``risk``, ``decision``) under its own name, with its payload; ``ack``
(the venue accepted an order; queue ahead at arrival, lots); ``book`` (sync/resync
markers of the engine's and the venue's L2 book); ``signal`` (operator signals).
A fill record also carries the engine's mid (``mid_ticks``) so an unsealed
journal can still be marked to market.

Acks are appended to the engine's own event list (the session reports them before
the engine handles them), so records keep the order in which things happened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmbot.audit.writer import JournalWriter
from mmbot.domain.orders import ExecReport, OrderAccepted
from mmbot.engine.engine import Engine, EngineEvent
from mmbot.engine.session import ReplaySession


class Recorder:
    def __init__(self, writer: JournalWriter, engine: Engine, session: ReplaySession | None = None) -> None:
        self.writer = writer
        self.engine = engine
        self.session = session
        self._books: dict[str, tuple[str, int]] = {}

    # --- observers ------------------------------------------------------------------------
    def observe(self, events: list[EngineEvent]) -> None:
        append = self.writer.append
        engine = self.engine
        for ev in events:
            if ev.kind == "fill":
                append("fill", {**ev.payload, "mid_ticks": engine.mid_ticks}, ev.ts_ns)
            else:
                append(ev.kind, ev.payload, ev.ts_ns)
        self.check_book()

    def on_reports(self, reports: list[ExecReport]) -> None:
        events = self.engine.events
        for r in reports:
            if type(r) is OrderAccepted:
                events.append(
                    EngineEvent("ack", r.ts_ns, {"client_order_id": r.client_order_id, "venue_order_id": r.venue_order_id, "queue_ahead": r.queue_ahead_lots})
                )

    def install(self, session: ReplaySession) -> None:
        """Chain our ack hook onto the session's report hook (keeping any other one)."""
        self.session = session
        previous = session.on_reports
        if previous is None:
            session.on_reports = self.on_reports
            return

        def both(reports: list[ExecReport], _prev: Callable[[list[ExecReport]], None] = previous) -> None:
            _prev(reports)
            self.on_reports(reports)

        session.on_reports = both

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
