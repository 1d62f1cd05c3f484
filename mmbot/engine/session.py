"""Replay session: one deterministic step function for backtests and paper runs.

Both ``mmbot backtest`` (synchronous, as fast as possible) and ``mmbot run`` on a
capture (asyncio, paced to wall-clock time) feed events through :meth:`step`, so
for the same config and seed they produce identical fills: every decision depends
on capture time only.

Order of processing for an event at capture time t:

1. everything due before or at t in time order: venue arrivals/cancels (latency),
   delayed market-data deliveries to the engine, snapshot answers, timers;
2. the venue sees the event at t (it is the exchange: its book is the true book);
3. the engine sees the event at t + market-data latency (immediately if zero),
   its commands go to the venue and, with zero entry latency, are matched at once.

Feed faults (``freeze``, ``gap``, ``garbage``) act only on what the engine receives;
the venue keeps the true book and answers the engine's snapshot requests from it
after ``rest_latency_ms``, the same recovery path as a live feed.

Untrusted data: every event first passes the market-data rules
(:class:`~mmbot.marketdata.validate.MarketDataValidator`); a rejected one reaches
neither the venue nor the engine. The venue's book heals itself when stale levels
cross it (newest information wins); the engine's book is not believed when crossed
and resyncs from the venue's snapshot, like after a gap. A :class:`ClockJump` (a real
discontinuity in the capture's time) invalidates the engine's book (BOOK_GAP until
it has resynced), and timers skip the empty time instead of firing once per interval
across it: the work per event is bounded by the data, not by the timestamps.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, ClockJump, MarketEvent, Trade
from mmbot.domain.orders import Command, ExecReport
from mmbot.domain.risk import RiskReason
from mmbot.engine.engine import Engine
from mmbot.marketdata.book import ApplyResult, BookState, L2Book
from mmbot.marketdata.validate import MarketDataValidator, merge_counts
from mmbot.portfolio.funding import FundingSchedule, funding_payment
from mmbot.portfolio.ledger import mark_ticks_from_mid
from mmbot.sim.latency import LatencySampler
from mmbot.sim.venue import SimVenue

# A timer more than this many intervals behind the event time skips to the event's
# interval (after a real discontinuity) instead of firing once per interval across it.
MAX_TIMER_CATCHUP = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A feed fault at capture offset ``at_ms`` from the first event."""

    kind: str  # freeze | gap | garbage
    at_ms: float
    duration_ms: float = 0.0


def split_fault_spec(spec: str | None) -> list[tuple[str, float, float]]:
    """``KIND@SECONDS[:DURATION],...`` -> [(kind, at_s, duration_s)]: the fault syntax
    shared by the replay feed (``--faults`` on run/backtest) and the emulator."""
    out: list[tuple[str, float, float]] = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, rest = part.partition("@")
        if not sep:
            raise ValueError(f"fault {part!r} must look like KIND@SECONDS[:DURATION]")
        when, _, duration = rest.partition(":")
        try:
            at_s = float(when)
            dur_s = float(duration) if duration else 0.0
        except ValueError as exc:
            raise ValueError(f"fault {part!r}: times must be numbers of seconds") from exc
        out.append((kind, at_s, dur_s))
    return out


def parse_faults(spec: str | None) -> tuple[Fault, ...]:
    """``freeze@T:DURATION,gap@T,garbage@T`` (seconds from the start of the replay)."""
    faults = []
    for kind, at_s, dur_s in split_fault_spec(spec):
        if kind not in ("freeze", "gap", "garbage"):
            raise ValueError(f"fault kind must be freeze, gap or garbage, was {kind!r}")
        if kind == "freeze" and dur_s <= 0:
            raise ValueError(f"fault {kind}@{at_s:g}: freeze needs a duration, e.g. freeze@30:8")
        faults.append(Fault(kind=kind, at_ms=at_s * 1000.0, duration_ms=dur_s * 1000.0))
    return tuple(faults)


class ReplaySession:
    def __init__(
        self,
        engine: Engine,
        venue: SimVenue,
        *,
        md_latency_ms: float = 0.0,
        rest_latency_ms: float = 50.0,
        timer_interval_ms: float = 100.0,
        faults: tuple[Fault, ...] = (),
        on_reports: Callable[[list[ExecReport]], None] | None = None,
        validator: MarketDataValidator | None = None,
        funding: FundingSchedule | None = None,
    ) -> None:
        self.engine = engine
        # Perpetuals: funding booked at 00:00/08:00/16:00 UTC of the replay clock (mmbot.portfolio.funding).
        self.funding = funding
        self.funding_booked: list[dict[str, object]] = []
        self.validator = validator if validator is not None else MarketDataValidator()
        self.clock_jumps = 0
        self.venue = venue
        self.venue_book: L2Book = venue.book
        self.shared_book = engine.book is venue.book
        if self.shared_book and (md_latency_ms > 0 or faults):
            raise ValueError("the engine needs its own book when market data is delayed or faulted")
        self.md_latency_ns = int(md_latency_ms * 1_000_000)
        # Market-data latency: constant or drawn from the venue's seeded distribution.
        vcfg = venue.config
        self._md_latency = LatencySampler(md_latency_ms, vcfg.latency_model, vcfg.latency_jitter_ms, seed=vcfg.seed, stream="md")
        if self.shared_book and not self._md_latency.is_zero:
            raise ValueError("the engine needs its own book when market data is delayed or faulted")
        self.venue_gaps = 0
        self.rest_latency_ns = int(rest_latency_ms * 1_000_000)
        self.timer_interval_ns = int(timer_interval_ms * 1_000_000)
        self.faults = faults
        self._md: list[tuple[int, int, MarketEvent]] = []  # (deliver_at, seq, event)
        self._seq = 0
        self._next_timer = 0
        self._start_ns: int | None = None
        self._last_md_deliver = 0
        self._snapshot_due: int | None = None
        self._dropped_gap: set[int] = set()
        self.now_ns = 0
        self.snapshot_requests = 0
        self.garbage_injected = 0
        self.commands_sent = 0
        self.on_reports = on_reports

    # --- commands and reports ----------------------------------------------------------
    def submit(self, commands: Iterable[Command], now_ns: int) -> None:
        venue = self.venue
        for command in commands:
            venue.submit(command, now_ns)
            self.commands_sent += 1

    def _handle_reports(self, reports: list[ExecReport], now_ns: int) -> None:
        if not reports:
            return
        if self.on_reports is not None:
            self.on_reports(reports)
        engine = self.engine
        for report in reports:
            commands = engine.on_exec(report, now_ns)
            if commands:
                self.submit(commands, now_ns)

    # --- time --------------------------------------------------------------------------
    def _advance_to(self, t: int) -> None:
        venue = self.venue
        engine = self.engine
        while True:
            # The earliest of: venue command due, market data due, snapshot due, timer due
            # (ties: that order). Plain comparisons, no list: this runs twice per event.
            when = -1
            kind = -1
            due = venue.next_due_ns
            if due is not None and due <= t:
                when, kind = due, 0
            md = self._md
            if md and md[0][0] <= t and (kind < 0 or md[0][0] < when):
                when, kind = md[0][0], 1
            snap_due = self._snapshot_due
            if snap_due is not None and snap_due <= t and (kind < 0 or snap_due < when):
                when, kind = snap_due, 2
            timer = self._next_timer
            if self.timer_interval_ns and timer and timer <= t and (kind < 0 or timer < when):
                when, kind = timer, 3
            if kind < 0:
                return
            self.now_ns = max(self.now_ns, when)
            if kind == 0:
                self._handle_reports(venue.advance(when), when)
            elif kind == 1:
                _, _, event = heapq.heappop(self._md)
                self._engine_event(event, when)
            elif kind == 2:
                self._snapshot_due = None
                if not self.venue_book.is_synced:
                    # Live: the feed's own book is resyncing too; ask again after the REST
                    # latency (at least 100 ms, so the retries move forward in time).
                    self._snapshot_due = when + max(self.rest_latency_ns, 100_000_000)
                    continue
                bids, asks = self.venue_book.snapshot_levels()
                snap = BookSnapshot(engine.symbol, when, self.venue_book.last_update_id, bids, asks)
                self._engine_event(snap, when)
            else:
                interval = self.timer_interval_ns
                self._next_timer = when + interval
                if t - self._next_timer > MAX_TIMER_CATCHUP * interval:
                    self._next_timer = t - (t - self._next_timer) % interval
                commands = engine.on_timer(when)
                if commands:
                    self.submit(commands, when)

    def step(self, event: MarketEvent | ClockJump) -> None:
        if isinstance(event, ClockJump):
            self._clock_jump(event)
            return
        if not self.validator.check(event, self.venue_book):
            return
        kind = type(event)
        t = event.ts_local_ns
        if self._start_ns is None:
            self._start_ns = t
            if self.timer_interval_ns:
                self._next_timer = t + self.timer_interval_ns
        self._advance_to(t)
        self.now_ns = t
        if self.funding is not None:
            for funding_ns in self.funding.due(t):
                self._book_funding(funding_ns)
        # The venue (exchange) sees the true stream at capture time.
        venue = self.venue
        if kind is BookDelta:
            if self.venue_book.apply_delta(event) is ApplyResult.GAP:  # type: ignore[arg-type]
                self._venue_resync(event)  # type: ignore[arg-type]
            if venue.has_orders:
                self._handle_reports(venue.on_depth(event), t)  # type: ignore[arg-type]
        elif kind is Trade:
            if venue.has_orders:
                self._handle_reports(venue.on_trade(event), t)  # type: ignore[arg-type]
        elif kind is BookSnapshot:
            self.venue_book.apply_snapshot(event)  # type: ignore[arg-type]
            if venue.has_orders:
                self._handle_reports(venue.on_depth(event), t)  # type: ignore[arg-type]
        elif kind is BestBidAsk:
            self._handle_reports(venue.on_bbo(event), t)  # type: ignore[arg-type]
        # The engine sees it after market-data latency, through the fault filter.
        if self.faults:
            event_or_none = self._apply_faults(event, t)
            if event_or_none is None:
                return
            deliver_at = self._deliver_time(t)
        else:
            deliver_at = t + self._md_latency.sample_ns()
        if deliver_at <= t and not self._md:
            self._engine_event(event, t)
        else:
            self._seq += 1
            deliver_at = max(deliver_at, self._last_md_deliver)
            self._last_md_deliver = deliver_at
            heapq.heappush(self._md, (deliver_at, self._seq, event))
        self._advance_to(t)

    def _clock_jump(self, jump: ClockJump) -> None:
        """A real discontinuity: nothing is known of the time between, so the engine's
        book is not trusted until it has resynced (BOOK_GAP holds until then)."""
        self.clock_jumps += 1
        if self._start_ns is None:
            return
        t = jump.ts_local_ns
        self._advance_to(t)
        self.now_ns = max(self.now_ns, t)
        engine = self.engine
        if not self.shared_book:
            engine.book.invalidate()
            self._request_snapshot(self.now_ns)
        commands = engine.raise_reason(RiskReason.BOOK_GAP, self.now_ns, f"clock discontinuity of {jump.jump_ns / 1e9:.3f} s")
        if commands:
            self.submit(commands, self.now_ns)
            self._advance_to(self.now_ns)

    def data_quality(self) -> dict[str, object]:
        """The market-data counters of this session for the summary (every replay driver)."""
        book = self.engine.book
        return {
            "market_data_rejections": merge_counts(self.validator.counts, {"crossed_book": book.crossed_count if not self.shared_book else 0}),
            "update_id_discontinuities": self.validator.update_id_discontinuities,
            "venue_healed_levels": self.venue_book.healed_levels,
            "engine_book_synced": book.is_synced,
        }

    def _deliver_time(self, t: int) -> int:
        assert self._start_ns is not None
        offset_ms = (t - self._start_ns) / 1_000_000
        for fault in self.faults:
            if fault.kind == "freeze" and fault.at_ms <= offset_ms < fault.at_ms + fault.duration_ms:
                return self._start_ns + int((fault.at_ms + fault.duration_ms) * 1_000_000)
        return t + self._md_latency.sample_ns()

    def _apply_faults(self, event: MarketEvent, t: int) -> MarketEvent | None:
        assert self._start_ns is not None
        offset_ms = (t - self._start_ns) / 1_000_000
        for i, fault in enumerate(self.faults):
            if i in self._dropped_gap or offset_ms < fault.at_ms:
                continue
            if fault.kind == "gap" and type(event) is BookDelta:
                self._dropped_gap.add(i)
                return None  # the diff is lost: the engine's book must resync
            if fault.kind == "garbage":
                self._dropped_gap.add(i)
                self.garbage_injected += 1
                return None  # an unparseable frame: counted and skipped by the feed
        return event

    def _engine_event(self, event: MarketEvent, t: int) -> None:
        engine = self.engine
        if not self.shared_book:
            book = engine.book
            kind = type(event)
            if kind is BookDelta:
                was_synced = book.state is BookState.SYNCED
                result = book.apply_delta(event)  # type: ignore[arg-type]
                if result is ApplyResult.GAP or (was_synced and not book.is_synced):
                    self._request_snapshot(t)
            elif kind is BookSnapshot:
                book.apply_snapshot(event)  # type: ignore[arg-type]
        commands = engine.on_market(event, t)
        if commands:
            self.submit(commands, t)
            self._advance_to(t)

    def _book_funding(self, funding_ns: int) -> None:
        """One funding instant: the venue's position pays (or receives) at the venue book's
        mid; the engine's ledger books the same payment (as it books the venue's fees)."""
        assert self.funding is not None
        engine = self.engine
        wallet = self.venue.wallet
        account = wallet.perps.get(engine.symbol) if wallet is not None else None
        position = account.ledger.position_lots if account is not None else engine.ledger.position_lots
        book = self.venue_book
        bid, ask = book.best_bid(), book.best_ask()
        mark = mark_ticks_from_mid((bid + ask) / 2) if book.is_synced and bid is not None and ask is not None else engine.mark_ticks()
        if mark <= 0:
            return  # no price yet: nothing is open either
        payment = funding_payment(engine.instrument, position, mark, self.funding.rate)
        if account is not None and wallet is not None:
            wallet.book_funding(engine.symbol, payment)
        engine.book_funding(funding_ns=funding_ns, payment=payment, position_lots=position, mark_ticks=mark,
                            rate=self.funding.rate, now_ns=self.now_ns)
        self.funding_booked.append({
            "funding_ts_ns": funding_ns, "booked_ts_ns": self.now_ns, "position_lots": position, "mark_ticks": mark,
            "rate": str(self.funding.rate), "payment": str(payment),
        })

    def _venue_resync(self, delta: BookDelta) -> None:
        """A sequence gap in the data itself: the exchange's book never stops.

        The venue keeps its levels and applies the diff (the missing diffs' changes
        are lost, as they are for everyone replaying this data); the engine's own
        book sees the gap and recovers through a snapshot request, as live.
        """
        self.venue_gaps += 1
        book = self.venue_book
        bids, asks = book.snapshot_levels()
        # The re-based id is the one this diff chains from: ``U - 1`` (spot), ``pu`` (futures).
        base_id = delta.prev_update_id if book.sync == "futures" else delta.first_update_id - 1
        book.apply_snapshot(BookSnapshot(delta.symbol, delta.ts_local_ns, base_id, bids, asks))

    def _request_snapshot(self, t: int) -> None:
        if self._snapshot_due is None:
            self.snapshot_requests += 1
            self._snapshot_due = t + self.rest_latency_ns

    # --- operator actions ------------------------------------------------------------
    def operator(self, commands: list[Command]) -> None:
        """Commands decided outside the event flow (kill switch, shutdown)."""
        if commands:
            self.submit(commands, self.now_ns)
            self._advance_to(self.now_ns)

    def flush(self) -> None:
        """End of data: process everything still pending, including market data in flight.

        With market-data latency the engine has not yet seen the last events; they
        are delivered (and the engine reacts) before the caller cancels everything,
        so no quote is placed after the shutdown's cancel-all.
        """
        last = self.now_ns
        if self._md:
            last = max(last, max(deliver for deliver, _, _ in self._md))
        if self._snapshot_due is not None:
            last = max(last, self._snapshot_due)
        self._advance_to(last)
        self.now_ns = max(self.now_ns, last)

    def drain_until(self, t: int) -> None:
        self._advance_to(t)
        self.now_ns = max(self.now_ns, t)

    def act(self, commands: list[Command], t: int) -> None:
        """Commands decided at time ``t`` outside the event flow (an operator, a live timer):
        everything due before ``t`` happens first; time never goes back."""
        t = max(t, self.now_ns)
        self.drain_until(t)
        if commands:
            self.submit(commands, t)
            self._advance_to(t)

    def invalidate_books(self) -> None:
        """Live: the feed lost the book (gap, drop, silence): both books wait for its next snapshot."""
        self.venue_book.invalidate()
        if not self.shared_book:
            self.engine.book.invalidate()


def is_market(event: object) -> bool:
    return isinstance(event, (BookDelta, BookSnapshot, Trade, BestBidAsk))
