"""The simulated execution venue: one kernel per symbol for backtests, replay paper and live paper.

A :class:`Kernel` is the engine with its own book, a :class:`~mmbot.sim.venue.SimVenue`
with the exchange's true book and the run's wallet, and the
:class:`~mmbot.engine.session.ReplaySession` that steps them (validation, market-data,
entry and cancel latency, the resync path, faults). A replay feeds it the capture's
events at their capture times; a live feed feeds it the feed's events at their
wall-clock receive times. Either way the fills are the same for the same events
(tests/sim/test_live_paper_determinism.py). Commands are executed synchronously.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mmbot.domain.events import ClockJump, FeedSignal, MarketEvent
from mmbot.domain.instrument import Instrument, plain
from mmbot.domain.orders import Command
from mmbot.domain.risk import RiskReason
from mmbot.engine.engine import Engine
from mmbot.engine.session import ReplaySession
from mmbot.engine.summary import futures_fields
from mmbot.marketdata.book import L2Book
from mmbot.marketdata.capture import DEFAULT_MAX_CLOCK_JUMP_NS, ReadStats
from mmbot.marketdata.validate import merge_counts
from mmbot.runtime.ports import Clock, Lane, venue_block
from mmbot.sim.venue import SimVenue
from mmbot.sim.wallet import Wallet

SHUTDOWN_DRAIN_STEPS = 100  # latency-delayed cancels reach the venue within this many due times


@dataclass
class Kernel:
    """Engine, simulated venue and the session that steps them (one symbol)."""

    instrument: Instrument
    engine: Engine
    venue: SimVenue
    session: ReplaySession
    max_clock_jump_ns: int = DEFAULT_MAX_CLOCK_JUMP_NS  # the reader's time rule (data.max_clock_jump_s)


@dataclass
class SimLane:
    """A symbol on the simulated venue: every event and command goes through its session."""

    kernel: Kernel
    recorder: Any = None
    signals: dict[str, int] = field(default_factory=dict)
    resync: Callable[[str], None] | None = None  # ask the live feed for a new snapshot

    @property
    def instrument(self) -> Instrument:
        return self.kernel.instrument

    @property
    def engine(self) -> Engine:
        return self.kernel.engine

    @property
    def book(self) -> L2Book:
        return self.kernel.engine.book

    @property
    def session(self) -> ReplaySession:
        return self.kernel.session

    @property
    def now_ns(self) -> int:
        return self.kernel.session.now_ns

    def on_market(self, event: MarketEvent, now: int) -> list[Command]:
        session = self.kernel.session
        if event.ts_local_ns < session.now_ns:
            # A live feed's loops stamp their own receive times: the session's clock never goes back.
            event = event._replace(ts_local_ns=session.now_ns)
        recorder = self.recorder
        if recorder is not None and event.ts_local_ns >= recorder.next_ns:
            recorder.advance(event.ts_local_ns)
        gaps = session.venue_gaps
        session.step(event)
        if session.venue_gaps != gaps and self.resync is not None:
            # A live feed's own chain broke (it chains ids itself): ask for a snapshot.
            self.resync(event.symbol)
        return []

    def on_signal(self, signal: FeedSignal, now: int) -> list[Command]:
        self.signals[signal.kind] = self.signals.get(signal.kind, 0) + 1
        if signal.kind in ("gap", "down", "silent"):
            session = self.kernel.session
            session.invalidate_books()
            reason = RiskReason.BOOK_GAP if signal.kind == "gap" else RiskReason.STALE_BOOK
            session.act(self.engine.raise_reason(reason, max(now, session.now_ns), signal.detail), now)
        return []

    def on_jump(self, jump: ClockJump) -> None:
        self.kernel.session.step(jump)

    def on_timer(self, now: int) -> list[Command]:
        # The session's own timers (run.timer_interval_ms on its clock), latency queue, snapshots.
        self.kernel.session.drain_until(now)
        return []

    def act(self, commands: list[Command], now: int) -> list[Command]:
        if commands:
            self.kernel.session.act(commands, now)
        return []

    def seam(self, now: int) -> None:
        """Between two passes of a looped capture: cancel everything, the snapshot rebuilds the books."""
        session = self.kernel.session
        session.operator(self.engine.cancel_everything(session.now_ns, "loop_seam"))
        session.invalidate_books()

    def finish(self, reason: str, now: int | None = None) -> None:
        """Cancel everything and let the latency-delayed cancels reach the venue."""
        session = self.kernel.session
        if now is None:  # replay: at the session's own time
            session.operator(self.engine.cancel_everything(session.now_ns, reason))
        else:  # live: at the wall clock, after everything due before it
            t = max(now, session.now_ns)
            session.act(self.engine.cancel_everything(t, reason), t)
        for _ in range(SHUTDOWN_DRAIN_STEPS):
            due = self.kernel.venue.next_due_ns
            if due is None:
                break
            session.drain_until(due)

    def open_orders(self) -> int:
        return len(self.kernel.venue.open_order_ids())

    def market_data_rejections(self) -> dict[str, int]:
        rejections = self.kernel.session.data_quality()["market_data_rejections"]
        assert isinstance(rejections, dict)
        return rejections

    def data_fields(self, stats: ReadStats) -> dict[str, Any]:
        session = self.kernel.session
        quality = session.data_quality()
        rejections = quality.pop("market_data_rejections")
        assert isinstance(rejections, dict)
        book = self.engine.book
        return {
            "garbage_lines": stats.garbage_lines + session.garbage_injected,
            "backwards_timestamps": stats.backwards_ts,
            "clock_discontinuities": stats.clock_discontinuities,
            "truncated_files": stats.truncated_files,
            "ignored_trades": dict(sorted(stats.ignored_trades.items())),
            "market_data_rejections": merge_counts(stats.rejections, rejections),
            "book_gaps": book.gap_count,
            "snapshot_requests": session.snapshot_requests,
            "data_sequence_gaps": session.venue_gaps,
            "book_ever_valid": book.update_count > 0 or bool(quality["engine_book_synced"]),
            **quality,
            **self.futures_fields(),
        }

    def futures_fields(self) -> dict[str, Any]:
        """A perpetual's ``futures`` summary block (empty for spot)."""
        kernel = self.kernel
        wallet = kernel.venue.wallet
        inst = kernel.instrument
        account = wallet.perps.get(inst.symbol) if wallet is not None else None
        if account is None or wallet is None:
            return {}
        funding = kernel.session.funding
        return {"futures": futures_fields(
            inst, self.engine.ledger, mark_ticks=self.engine.mark_ticks(), wallet_balance=wallet.total(inst.settle),
            params=account.params, funding_rate=funding.rate if funding is not None else Decimal(0),
            funding_booked=kernel.session.funding_booked, max_margin_ratio=self.engine.max_margin_ratio,
            max_margin_used=self.engine.max_margin_used,
        )}


class SimExecution:
    """The simulated venue for every symbol of a run (one wallet, one global limit)."""

    kind = "simulated"
    synchronous = True

    def __init__(self, make_kernel: Callable[[Instrument], Kernel], wallet: Wallet, fill_model: str,
                 clock: Clock | None = None) -> None:
        self.make_kernel = make_kernel
        self.clock = clock  # None: replay time (each session's own); a live feed: the wall clock
        self.wallet = wallet
        self.fill_model = fill_model
        self.lanes: dict[str, SimLane] = {}
        self.resync: Callable[[str], None] | None = None

    async def connect(self, instruments: Mapping[str, Instrument]) -> None:
        return None

    def open_lane(self, instrument: Instrument) -> SimLane:
        lane = SimLane(self.make_kernel(instrument), resync=self.resync)
        self.lanes[instrument.symbol] = lane
        return lane

    def after_lanes(self, lanes: Mapping[str, Lane]) -> None:
        return None

    def start_record(self) -> dict[str, Any] | None:
        return None

    async def send(self, lane: Lane, commands: list[Command], now: int) -> None:
        lane.act(commands, now)

    async def pump(self, now: int) -> None:
        return None  # each lane's timer drains its own session

    def tasks(self, node: Any) -> list[Coroutine[Any, Any, None]]:
        return []

    def bind(self, node: Any) -> None:
        return None  # synchronous: the node calls it, never the other way round

    def finish_now(self, reason: str, now: int | None = None) -> int:
        for lane in self.lanes.values():
            lane.finish(reason, now)
        return self.open_orders()

    async def finish(self, lanes: Mapping[str, Lane], deadline_s: float) -> int:
        return self.finish_now("shutdown", None if self.clock is None else self.clock.now_ns())

    def summary_fields(self, lane: Lane, left: int) -> dict[str, Any]:
        assert isinstance(lane, SimLane)
        venue = lane.kernel.venue
        inst = lane.instrument
        return venue_block(
            kind=self.kind,
            open_orders=left,
            position_matches_venue=True,  # the simulated venue books what the ledger books
            rejections=dict(sorted(venue.rejections.items())),
            position=plain(inst.qty(lane.engine.ledger.position_lots)),
            balances=self.wallet.balances_end(),
        )

    def rejections(self, lane: Lane) -> dict[str, int]:
        assert isinstance(lane, SimLane)
        return dict(sorted(lane.kernel.venue.rejections.items()))

    def balances(self) -> dict[str, dict[str, str]]:
        return {"balances_start": self.wallet.balances_start(), "balances_end": self.wallet.balances_end()}

    def ready(self) -> str | None:
        waiting = [s for s, lane in self.lanes.items() if not lane.kernel.venue.book.is_synced]
        return f"paper executor (simulated venue) has no synced book yet: {', '.join(waiting)}" if waiting else None

    def open_orders(self) -> int:
        return sum(lane.open_orders() for lane in self.lanes.values())

    async def close(self) -> None:
        return None
