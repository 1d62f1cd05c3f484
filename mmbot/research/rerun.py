"""A recorded run read back, and its open-loop replay through the simulated venue.

What a live-fed run leaves (issue 33; :mod:`mmbot.runtime.market_record`): the market
events it received (``market.gz``, the capture format, receive times) and a journal
holding every order action with its local send time (``order_sent``), the venue's
acks, rejects, cancels and fills (trade id, venue time), feed signals and venue risk
inputs. :func:`load_recorded_run` reads them (the journal chain verified first);
:func:`open_loop` replays the market data through a
:class:`~mmbot.sim.venue.SimVenue` with the run's own order actions at their
recorded send times: the strategy is not re-run, so every difference between the
model's fills and the venue's is the model's (queue, latency, fees), not the
strategy's reaction to a different past.

Time base of the open loop
--------------------------
The recording holds *receive* times: the venue saw each event ``md`` earlier. The
model's matching engine therefore sees the event at ``t_recv - md`` and a command
sent at ``t_send`` arrives at ``t_send + entry`` (cancels ``+ cancel``), commands
first-in first-out on one connection (the venue model's rule):

=========  ==========================================  ====
symbol     meaning                                     unit
=========  ==========================================  ====
``md``     market-data latency (``sim.md_latency_ms``)  ms
``entry``  order entry latency (``sim.entry_latency_ms``, sampled per order)  ms
``cancel`` cancel latency (``sim.cancel_latency_ms``)   ms
=========  ==========================================  ====

``md`` is one constant here (its median): a per-event draw would let events overtake
each other.

PnL of a fill, marked at the run's last mid ``m`` (quote currency): ``side x qty x
(m - price) - fee`` with side +1 for a buy; the sum over a run's fills is its net PnL
at ``m``, so per-order differences add up to the difference of the two runs' PnL.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from mmbot.audit.verify import find_journals, verify_journal
from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, ClockJump, MarketEvent, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import (
    CancelAll,
    CancelOrder,
    Command,
    ExecReport,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PlaceOrder,
    Side,
)
from mmbot.errors import DataError
from mmbot.marketdata.book import ApplyResult, L2Book
from mmbot.marketdata.capture import DEFAULT_MAX_CLOCK_JUMP_NS, CaptureParser, ReadStats, read_stream
from mmbot.sim.venue import SimVenue, VenueConfig

NS_PER_MS = 1_000_000


# --- the recorded run ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One fill of one order (either side of the comparison)."""

    client_order_id: str
    ts_ns: int  # venue: its trade time; model: the matching time (venue time base)
    side: int  # +1 buy, -1 sell
    price_ticks: int
    qty_lots: int
    fee: Decimal
    liquidity: str
    trade_id: str = ""
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class OrderLife:
    """What happened to one of our orders (either side): placement, answer, fills, end."""

    client_order_id: str
    side: int = 0
    price_ticks: int = 0
    qty_lots: int = 0
    taker: bool = False
    sent_ns: int | None = None  # local send time (the venue side) / send time (the model)
    ack_ns: int | None = None  # venue: its transactTime; model: arrival at the matching engine
    reject: str = ""  # refused at placement: the message
    cancel_sent_ns: int | None = None
    cancelled_ns: int | None = None
    cancel_lost: bool = False  # the cancel arrived after the order had filled (-2011)
    queue_ahead_lots: int | None = None  # the model: market quantity ahead at arrival
    fills: list[Fill] = field(default_factory=list)

    @property
    def filled_lots(self) -> int:
        return sum(f.qty_lots for f in self.fills)


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """An order action as it left the node: at ``sent_ns``, with what the venue answered."""

    sent_ns: int  # when the request left: the client's wire time when known (ms + 0.5), else the local send call
    reply_ns: int
    command: Command
    outcome: str  # ok | a venue outcome kind (venue_down, rejected, ...)
    venue_ts_ns: int = 0  # the venue's time of the answer (transactTime) when it gave one
    local_sent_ns: int = 0  # when the executor made the call (before the client's own rate limiter)
    wire_sent_ms: int = 0  # the client's record of the request leaving (ms), 0 when unknown


@dataclass
class RecordedRun:
    journal_dir: Path
    run_id: str
    mode: str
    config: dict[str, Any]
    instrument: Instrument
    recording: Path
    actions: list[Action]
    orders: dict[str, OrderLife]  # the venue's side, by client order id
    inputs: list[tuple[int, str, dict[str, Any]]]  # (ts, feed_signal | venue_risk, payload), by time
    summary: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def fills(self) -> list[Fill]:
        return sorted((f for o in self.orders.values() for f in o.fills), key=lambda f: f.ts_ns)


def _instrument(doc: dict[str, Any]) -> Instrument:
    return Instrument.from_symbol(doc["symbol"], tick_size=doc["tick_size"], step_size=doc["step_size"], min_notional=doc["min_notional"])


def resolve_journal(run: str, audit_dir: str) -> Path:
    """RUN: a journal directory, a run record directory (its run id), or a run id; searched under ``audit_dir``."""
    path = Path(run)
    found = find_journals([run]) if path.exists() else []
    if found:
        return found[0]
    run_id = path.name
    if (path / "summary.json").is_file():
        import orjson

        run_id = str(orjson.loads((path / "summary.json").read_bytes()).get("run_id") or run_id)
    candidates = sorted(p.parent for p in Path(audit_dir).rglob("manifest.json") if p.parent.name.endswith(run_id))
    if not candidates:
        raise DataError(f"no journal of run {run_id!r} under {audit_dir} (give the journal directory, or set audit.dir)")
    return candidates[-1]


def load_recorded_run(journal_dir: Path) -> RecordedRun:
    """The run's journal (verified) and what it says about the run's orders and inputs."""
    result = verify_journal(journal_dir)
    if result.status == "tampered":
        raise DataError(f"journal {journal_dir} is damaged: {result.problem}")
    records = result.records
    start = next((r["payload"] for r in records if r["type"] == "run_start"), None)
    if start is None:
        raise DataError(f"journal {journal_dir} has no run_start record")
    recording_rec = next((r["payload"] for r in records if r["type"] == "market_recording_closed"), None) or next(
        (r["payload"] for r in records if r["type"] == "market_recording"), None)
    if recording_rec is None:
        raise DataError(f"journal {journal_dir} names no market recording (only live-fed runs record one: sandbox, live, paper on a live feed)")
    recording = Path(recording_rec["path"])
    if not recording.is_file():
        raise DataError(f"the market recording {recording} of journal {journal_dir} is missing")
    inst = _instrument(start["instrument"])
    orders: dict[str, OrderLife] = {}
    actions: list[Action] = []
    inputs: list[tuple[int, str, dict[str, Any]]] = []
    summary: dict[str, Any] = {}
    not_found: set[str] = set()
    engine_actions: list[tuple[int, dict[str, Any]]] = []  # paper on a live feed: no order_sent records
    o: OrderLife | None
    for rec in records:
        kind, p, ts = rec["type"], rec["payload"], rec.get("ts_capture_ns") or rec.get("ts_wall_ns") or 0
        if kind == "place":
            o = orders.setdefault(p["client_order_id"], OrderLife(client_order_id=p["client_order_id"]))
            o.side, o.price_ticks, o.qty_lots, o.taker = (1 if p["side"] == "BUY" else -1), p["price"], p["qty"], bool(p["taker"])
            engine_actions.append((ts, {"action": "place", "client_order_id": p["client_order_id"]}))
        elif kind == "cancel":
            engine_actions.append((ts, {"action": "cancel", "client_order_id": p["client_order_id"]}))
        elif kind == "cancel_all":
            engine_actions.append((ts, {"action": "cancel_all", "client_order_id": ""}))
        elif kind == "order_sent":
            command = _command(p, orders, inst)
            if command is None:
                continue
            venue_ts = int(p.get("venue_ts_ms") or 0) * NS_PER_MS
            wire_ms = int(p.get("wire_sent_ms") or 0)
            # The wire time when the client noted it: the time spent in the client's own
            # rate limiter before the request left is not latency to the venue.
            sent = wire_ms * NS_PER_MS + NS_PER_MS // 2 if wire_ms and wire_ms * NS_PER_MS + NS_PER_MS > p["sent_ns"] else p["sent_ns"]
            actions.append(Action(sent_ns=max(sent, p["sent_ns"]), reply_ns=p["reply_ns"], command=command, outcome=p["outcome"],
                                  venue_ts_ns=venue_ts, local_sent_ns=p["sent_ns"], wire_sent_ms=wire_ms))
            if p["action"] == "place" and p["client_order_id"] in orders:
                o = orders[p["client_order_id"]]
                o.sent_ns = actions[-1].sent_ns if o.sent_ns is None else o.sent_ns
                if p["outcome"] == "ok" and venue_ts:
                    o.ack_ns = venue_ts
            elif p["action"] == "cancel" and p["client_order_id"] in orders:
                o = orders[p["client_order_id"]]
                o.cancel_sent_ns = actions[-1].sent_ns if o.cancel_sent_ns is None else o.cancel_sent_ns
                if p["outcome"] == "order_not_found":
                    not_found.add(o.client_order_id)
            elif p["action"] == "cancel_all":
                for coid in p.get("cancelled") or []:
                    if coid in orders and orders[coid].cancel_sent_ns is None:
                        orders[coid].cancel_sent_ns = p["sent_ns"]
        elif kind == "ack":
            o = orders.get(p["client_order_id"])
            if o is not None and o.ack_ns is None:
                o.ack_ns = p.get("venue_ts_ns") or ts
        elif kind == "reject":
            o = orders.get(p["client_order_id"])
            if o is not None:
                o.reject = str(p.get("message") or p.get("code"))
        elif kind == "cancelled":
            o = orders.get(p["client_order_id"])
            if o is not None and o.cancelled_ns is None:
                o.cancelled_ns = ts
        elif kind == "fill":
            coid = p["client_order_id"]
            o = orders.setdefault(coid, OrderLife(client_order_id=coid, side=1 if p["side"] == "BUY" else -1, price_ticks=p["price"]))
            o.fills.append(Fill(client_order_id=coid, ts_ns=ts, side=1 if p["side"] == "BUY" else -1, price_ticks=p["price"],
                                qty_lots=p["qty"], fee=Decimal(p["fee"]), liquidity=p["liquidity"], trade_id=str(p.get("trade_id", "")),
                                reason=p["reason"]))
        elif kind in ("feed_signal", "venue_risk"):
            inputs.append((int(p.get("received_ns") or ts), kind, p))
        elif kind == "run_stop":
            summary = p.get("summary") or {}
    if not actions:
        # Paper on a live feed: the engine's own records are the order actions, sent when decided
        # (the simulated venue's acks and rejects are the venue side).
        for ts, p in engine_actions:
            command = _command(p, orders, inst)
            if command is not None:
                rejected = p["action"] == "place" and bool(orders[p["client_order_id"]].reject)
                actions.append(Action(sent_ns=ts, reply_ns=ts, command=command, outcome="rejected" if rejected else "ok", local_sent_ns=ts))
                if p["action"] == "place":
                    orders[p["client_order_id"]].sent_ns = ts
    for coid in not_found:  # a cancel answered "unknown order" for an order that filled: it lost the race
        o = orders[coid]
        o.cancel_lost = bool(o.fills)
    actions.sort(key=lambda a: a.sent_ns)
    inputs.sort(key=lambda x: x[0])
    return RecordedRun(journal_dir=journal_dir, run_id=start["run_id"], mode=start["mode"], config=start["config"], instrument=inst,
                       recording=recording, actions=actions, orders=orders, inputs=inputs, summary=summary, records=records)


def _command(p: dict[str, Any], orders: dict[str, OrderLife], inst: Instrument) -> Command | None:
    action = p["action"]
    if action == "place":
        o = orders.get(p["client_order_id"])
        if o is None or not o.qty_lots:
            return None
        return PlaceOrder(client_order_id=o.client_order_id, symbol=inst.symbol, side=Side.BUY if o.side > 0 else Side.SELL,
                          price_ticks=o.price_ticks, qty_lots=o.qty_lots, post_only=not o.taker, is_taker=o.taker)
    if action == "cancel":
        return CancelOrder(client_order_id=p["client_order_id"], symbol=inst.symbol, reason="recorded")
    if action == "cancel_all":
        return CancelAll(symbol=inst.symbol, reason="recorded")
    return None


def market_events(recording: Path, instrument: Instrument) -> Iterator[MarketEvent]:
    """The recording's events in order (clock discontinuities are markers only: skipped here)."""
    stats = ReadStats()
    for event in read_stream([str(recording)], CaptureParser([instrument]), stats, lambda *a: None, max_clock_jump_ns=DEFAULT_MAX_CLOCK_JUMP_NS):
        if type(event) is not ClockJump:
            yield event  # type: ignore[misc]


# --- the open loop ------------------------------------------------------------------------------
@dataclass
class OpenLoopResult:
    orders: dict[str, OrderLife]  # the model's side
    mids: list[tuple[int, float]]  # (venue time ns, mid ticks), one per second of the run
    last_mid: float | None
    events: int

    @property
    def fills(self) -> list[Fill]:
        return sorted((f for o in self.orders.values() for f in o.fills), key=lambda f: f.ts_ns)

    def mid_at(self, ts_ns: int) -> float | None:
        if not self.mids:
            return None
        i = bisect.bisect_right(self.mids, (ts_ns, float("inf"))) - 1
        return self.mids[max(i, 0)][1]


def open_loop(run: RecordedRun, config: VenueConfig, md_latency_ms: float = 0.0) -> OpenLoopResult:
    """The run's own order actions, at their send times, against the recorded market (module docstring)."""
    inst = run.instrument
    book = L2Book(inst.symbol, on_crossed="heal")
    venue = SimVenue(inst, book, config)
    md_ns = int(md_latency_ms * NS_PER_MS)
    actions = [a for a in run.actions if not (isinstance(a.command, PlaceOrder) and a.command.client_order_id not in run.orders)]
    orders: dict[str, OrderLife] = {}
    sent_place: dict[str, int] = {}
    i = 0
    mids: list[tuple[int, float]] = []
    next_mid = 0
    events = 0

    def handle(reports: list[ExecReport]) -> None:
        for r in reports:
            o = orders.get(r.client_order_id)
            if o is None:
                continue
            if isinstance(r, OrderAccepted):
                o.ack_ns = r.ts_ns
                o.queue_ahead_lots = r.queue_ahead_lots
            elif isinstance(r, OrderRejected):
                if r.for_cancel:
                    o.cancel_lost = bool(o.fills)
                else:
                    o.reject = r.message
            elif isinstance(r, OrderCancelled):
                o.cancelled_ns = r.ts_ns
            elif isinstance(r, OrderFilled):
                o.fills.append(Fill(client_order_id=r.client_order_id, ts_ns=r.ts_ns, side=int(r.side), price_ticks=r.price_ticks,
                                    qty_lots=r.qty_lots, fee=r.fee, liquidity=r.liquidity.value, reason=r.reason.value))

    def submit_until(t: int) -> None:
        nonlocal i
        while i < len(actions) and actions[i].sent_ns <= t:
            a = actions[i]
            i += 1
            cmd = a.command
            if isinstance(cmd, PlaceOrder):
                if cmd.client_order_id in sent_place:
                    continue  # one placement per order (a retried create was a lookup)
                sent_place[cmd.client_order_id] = a.sent_ns
                src = run.orders[cmd.client_order_id]
                orders[cmd.client_order_id] = OrderLife(client_order_id=cmd.client_order_id, side=src.side, price_ticks=src.price_ticks,
                                                        qty_lots=src.qty_lots, taker=src.taker, sent_ns=a.sent_ns)
            elif isinstance(cmd, CancelOrder) and cmd.client_order_id in orders and orders[cmd.client_order_id].cancel_sent_ns is None:
                orders[cmd.client_order_id].cancel_sent_ns = a.sent_ns
            elif isinstance(cmd, CancelAll):
                for o in orders.values():
                    if o.cancel_sent_ns is None and o.cancelled_ns is None and o.filled_lots < o.qty_lots:
                        o.cancel_sent_ns = a.sent_ns
            venue.submit(cmd, a.sent_ns)
            # Commands due before the next one is sent are matched at their own time.
            handle(venue.advance(a.sent_ns))

    for event in market_events(run.recording, inst):
        t = event.ts_local_ns - md_ns  # when the venue saw it
        submit_until(t)
        due = venue.next_due_ns
        if due is not None and due <= t:
            handle(venue.advance(t))
        events += 1
        seen = event._replace(ts_local_ns=t)
        if isinstance(seen, BookDelta):
            if book.apply_delta(seen) is ApplyResult.GAP:
                # A gap in the recording: the venue's book keeps its levels (as a replay's does).
                bids, asks = book.snapshot_levels()
                book.apply_snapshot(BookSnapshot(inst.symbol, t, seen.first_update_id - 1, bids, asks))
                book.apply_delta(seen)
            if venue.has_orders:
                handle(venue.on_depth(seen))
        elif isinstance(seen, BookSnapshot):
            book.apply_snapshot(seen)
            if venue.has_orders:
                handle(venue.on_depth(seen))
        elif isinstance(seen, Trade):
            if venue.has_orders:
                handle(venue.on_trade(seen))
        elif isinstance(seen, BestBidAsk):
            handle(venue.on_bbo(seen))
        if t >= next_mid and book.is_synced:
            bid, ask = venue.true_touch()
            if bid is not None and ask is not None:
                mids.append((t, (bid + ask) / 2.0))
                next_mid = t + 1_000_000_000
    submit_until(2**62)
    handle(venue.advance(2**62))
    bid, ask = venue.true_touch()
    last_mid = (bid + ask) / 2.0 if bid is not None and ask is not None else (mids[-1][1] if mids else None)
    return OpenLoopResult(orders=orders, mids=mids, last_mid=last_mid, events=events)


def fill_pnl(fill: Fill, mark_ticks: float, instrument: Instrument) -> Decimal:
    """``side x qty x (mark - price) - fee`` in the quote currency (module docstring)."""
    unit = instrument.tick_size * instrument.qty_unit
    edge = Decimal(str(mark_ticks)) - Decimal(fill.price_ticks)
    return Decimal(fill.side * fill.qty_lots) * edge * unit - fill.fee


def summarise_fills(fills: list[Fill], mark_ticks: float | None, instrument: Instrument) -> dict[str, Any]:
    volume = sum(f.qty_lots for f in fills)
    pnl = sum((fill_pnl(f, mark_ticks, instrument) for f in fills), Decimal(0)) if mark_ticks is not None else Decimal(0)
    return {
        "fills": len(fills),
        "orders_filled": len({f.client_order_id for f in fills}),
        "volume_base": str(instrument.qty(volume)),
        "fees": f"{sum((f.fee for f in fills), Decimal(0)):.8f}",
        "pnl_at_last_mid": f"{pnl:.8f}",
    }


# --- closed loop: what must match -----------------------------------------------------------------
# Summary fields a rerun cannot reproduce, and why (everything else is compared).
UNMATCHABLE: dict[str, str] = {
    "fills": "fills", "bid_fills": "fills", "ask_fills": "fills", "filled_orders": "fills", "fill_rate": "fills",
    "volume_base": "fills", "volume_quote": "fills", "gross_pnl": "fills", "fees_paid": "fills", "net_pnl": "fills",
    "max_abs_inventory": "fills", "final_inventory": "fills", "cash": "fills", "fill_reasons": "fills",
    "markout_1s_bps": "fills", "markout_5s_bps": "fills", "markout_30s_bps": "fills", "pnl_attribution": "fills",
    "round_trips": "fills", "win_rate": "fills", "avg_spread_captured_bps": "fills", "avg_fill_edge_bps": "fills",
    "max_inventory": "fills", "time_at_max_inventory_s": "fills", "time_at_max_inventory_share": "fills",
    "inventory_balance": "fills", "max_drawdown": "fills", "sharpe": "fills", "sortino": "fills",
    "quotes": "decisions", "orders_placed": "decisions", "orders_cancelled": "decisions", "risk_denials": "decisions",
    "risk_denials_by_reason": "decisions",
    "wall_seconds": "wall", "events_per_second": "wall",
    "venue": "venue", "venue_rejections": "venue", "balances_start": "venue", "balances_end": "venue",
    "feed_snapshots": "feed", "feed_deltas": "feed", "feed_gaps": "feed", "feed_disconnects": "feed", "feed_silences": "feed",
    "feed_resyncs": "feed", "feed_last_outage_s": "feed", "data_sequence_gaps": "feed", "snapshot_requests": "feed",
    "mode": "identity", "run_id": "identity", "stop_reason": "identity", "data_source": "identity", "market_recording": "identity",
    "record_dir": "identity", "record": "identity", "loops": "identity",
    "mark_price": "end", "data_end": "end", "duration_s": "end",
}
WHY: dict[str, str] = {
    "fills": "the simulated venue's fills are the model's, not the exchange's (divergence explains them); what follows "
             "from fills (inventory, PnL, markouts, drawdown) follows them",
    "decisions": "quotes follow inventory and fills, so after the first different fill the strategy decides differently",
    "wall": "wall-clock time of the run, not of the data",
    "venue": "the exchange's own figures (outcomes, reconciliations, balances) have no simulated counterpart",
    "feed": "the live feed's own counters (reconnects, resubscriptions); a replay reads a file",
    "identity": "what the run is (mode, id, files, why it stopped), not what it did",
    "end": "the live run's last events arrived after its shutdown started; the rerun ends with the recording",
}


def _comparable(key: str, value: Any) -> Any:
    # A replay lists its truncated capture files; a live run counts none (it reads no file).
    if key == "truncated_files" and isinstance(value, list):
        return len(value)
    return value


def transition_steps(transitions: list[dict[str, Any]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """Risk-state transitions without their times: (old, new, reasons)."""
    return [(str(t["old"]), str(t["new"]), tuple(sorted(t.get("reasons") or []))) for t in transitions]


def compare_closed_loop(run: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """Transitions in order (with time offsets) and every summary field: equal, or why it cannot be."""
    a, b = run.get("risk_transitions") or [], rerun.get("risk_transitions") or []
    steps_a, steps_b = transition_steps(a), transition_steps(b)
    offsets_ms = [round((y["ts_ns"] - x["ts_ns"]) / 1e6, 1) for x, y in zip(a, b, strict=False)]
    fields: dict[str, Any] = {}
    for key in sorted(set(run) | set(rerun)):
        if key == "risk_transitions":
            continue
        same = _comparable(key, run.get(key)) == _comparable(key, rerun.get(key))
        category = UNMATCHABLE.get(key)
        fields[key] = {"run": run.get(key), "rerun": rerun.get(key), "equal": same,
                       "why_not": None if same or category is None else WHY[category]}
    unexplained = sorted(k for k, v in fields.items() if not v["equal"] and v["why_not"] is None)
    return {
        "transitions_equal": steps_a == steps_b,
        "run_transitions": [[s[0], s[1], list(s[2])] for s in steps_a],
        "rerun_transitions": [[s[0], s[1], list(s[2])] for s in steps_b],
        "transition_offsets_ms": offsets_ms,
        "fields": fields,
        "fields_equal": sorted(k for k, v in fields.items() if v["equal"]),
        "fields_unmatchable": {k: v["why_not"] for k, v in fields.items() if v["why_not"]},
        "fields_unexplained": unexplained,
    }
