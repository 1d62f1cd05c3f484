"""Opening a run's journal: a new one, or the continuation of a crashed run.

On start (paper runs; backtests always start a new journal), the latest journal
of the same account and symbol set decides:

* none, or sealed (the last run stopped cleanly): a new journal, fresh state;
* unsealed (crash): verify it; refuse to start if it was tampered with (exit 3,
  ``--fresh`` starts a new journal deliberately); drop a torn last line (journaled
  as a ``repair`` record), fold the records into position, cash, fees and open
  orders, restore them into the engine's ledger, the order manager and the
  simulated venue, and continue the same journal (``run_start`` with
  ``resumed: true`` then a ``recovery`` record);
* a different capture (``data`` paths) than the crashed run: a new journal, the
  old one is left unsealed (logged).

A replay resumes after the last journaled capture timestamp: earlier events only
rebuild the books (``warm_up``), without decisions, orders or fills.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbot.audit.state import JournalState, fold
from mmbot.audit.verify import VerifyResult, latest_journal, verify_journal
from mmbot.audit.writer import JournalWriter
from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, MarketEvent, Trade
from mmbot.domain.orders import Order, OrderStatus
from mmbot.domain.risk import RiskReason
from mmbot.engine.engine import Engine
from mmbot.engine.session import ReplaySession
from mmbot.errors import ConfigError, JournalError
from mmbot.portfolio.ledger import Ledger
from mmbot.sim.venue import SimVenue

# Operator and loss decisions survive a restart; market-condition reasons are re-evaluated.
RESTORED_REASONS = frozenset({RiskReason.KILL_SWITCH, RiskReason.MAX_DRAWDOWN, RiskReason.DAILY_LOSS, RiskReason.MANUAL})


def journal_root(base: str | os.PathLike[str], account: str, symbols: list[str]) -> Path:
    """``<audit.dir>/<account>__<SYMBOLS>``: one journal family per account and symbol set."""
    syms = "_".join(s.replace("/", "").replace(":", "") for s in symbols)
    safe_account = "".join(c if c.isalnum() or c in "-_." else "_" for c in account)
    return Path(base) / f"{safe_account}__{syms}"


@dataclass
class Opened:
    writer: JournalWriter
    state: JournalState | None = None  # set when continuing a crashed run
    repair: dict[str, Any] | None = None
    note: str = ""


def open_journal(
    root: Path,
    *,
    run_id: str,
    rotate_bytes: int,
    info: dict[str, Any],
    data: list[str],
    fresh: bool,
    resume: bool,
) -> Opened:
    note = ""
    latest = latest_journal(root) if resume else None
    if latest is not None and fresh:
        note = f"--fresh: the previous journal {latest.name} is left as it is"
    elif latest is not None:
        result = verify_journal(latest)
        if result.status == "tampered":
            raise JournalError(
                f"the latest journal {latest} fails verification ({result.problem}); inspect it with "
                f"`mmbot audit verify {latest}`, or start a new journal with --fresh"
            )
        if result.status == "unsealed":
            state = fold(result.records)
            prev_data = state.run_start.get("data") if state.run_start else None
            if state.run_start is None:
                note = f"the previous journal {latest.name} holds no run_start record; starting a new journal"
            elif prev_data != data:
                note = f"the unsealed journal {latest.name} replayed other data ({prev_data}); starting a new journal"
            else:
                repair = _repair(result)
                writer = JournalWriter.reopen(latest, rotate_bytes=rotate_bytes, seq=result.last_seq, last_hash=result.last_hash)
                return Opened(writer=writer, state=state, repair=repair)
    writer = JournalWriter.create(root, run_id, rotate_bytes=rotate_bytes, info=info)
    return Opened(writer=writer, note=note)


def _repair(result: VerifyResult) -> dict[str, Any] | None:
    """Cut a torn last line (keeping the file up to the last complete record)."""
    try:
        if result.torn is not None:
            torn = result.torn
            with open(torn.path, "r+b") as f:
                f.seek(torn.offset)
                dropped = f.read()
                f.truncate(torn.offset)
                f.flush()
                os.fsync(f.fileno())
            return {
                "reason": "torn last line (partial write cut by a crash)",
                "segment": torn.path.name,
                "offset": torn.offset,
                "dropped_bytes": len(dropped),
                "dropped_sha256": hashlib.sha256(dropped).hexdigest(),
            }
        if "last line lacks its newline" in result.notes:
            seg = Path(str(result.records[-1]["_where"]).split(" line ")[0])
            with open(result.directory / seg, "ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
            return {"reason": "newline added after the last complete record", "segment": seg.name}
    except OSError as exc:
        raise JournalError(f"cannot repair the journal {result.directory}: {exc}") from exc
    return None


def restore(state: JournalState, engine: Engine, venue: SimVenue, session: ReplaySession) -> dict[str, Any]:
    """Put the journal's position, cash, fees and resting orders back; return what was restored."""
    src = state.ledger
    ledger = engine.ledger
    if src is not None:
        for attr in Ledger.__slots__:
            if attr not in ("instrument", "_unit"):
                setattr(ledger, attr, getattr(src, attr))
    engine.filled_orders |= state.filled_orders
    for reason, n in state.fill_reasons.items():
        engine.fill_reasons[reason] = engine.fill_reasons.get(reason, 0) + n
    om = engine.om
    om.placed += state.places
    om.cancelled += state.cancelled
    engine.denials += state.denials
    restored: list[dict[str, Any]] = []
    dropped: list[str] = []
    wallet = venue.wallet
    if wallet is not None and src is not None:
        # The paper account as the fills left it: start + position (holding minus target)
        # and the cash the fills moved, fees included.
        inst = engine.instrument
        try:
            wallet.adjust(inst.base, inst.qty(ledger.position_lots))
            wallet.adjust(inst.quote_ccy, ledger.cash - ledger.fees_paid)
        except ValueError as exc:
            raise ConfigError(f"paper.balances cannot hold the journal's position and cash: {exc}") from exc
    for o in state.open_orders.values():
        if o.is_taker or not o.acked:
            # In flight at the crash (never acknowledged) or an IOC hedge: gone with the process.
            dropped.append(o.client_order_id)
            continue
        if not venue.restore_order(o.client_order_id, o.side, o.price_ticks, o.qty_lots, o.filled_lots, o.queue_ahead_lots):
            dropped.append(o.client_order_id)  # the paper wallet cannot cover it
            continue
        om.orders[o.client_order_id] = Order(
            client_order_id=o.client_order_id,
            symbol=engine.symbol,
            side=o.side,
            price_ticks=o.price_ticks,
            qty_lots=o.qty_lots,
            filled_lots=o.filled_lots,
            status=OrderStatus.OPEN,
            level=o.level,
            post_only=True,
            ts_created_ns=o.ts_created_ns,
        )
        restored.append(o.to_json())
    # New client order ids must not collide with the crashed run's (same config -> same prefix).
    prefix = om.coid_prefix.rstrip("-")
    om._seq = max(om._seq, state.max_coid_seq.get(prefix, 0))
    reasons = [r for r in state.risk_reasons if r in RiskReason.__members__ and RiskReason[r] in RESTORED_REASONS]
    for r in reasons:
        session.operator(engine.raise_reason(RiskReason[r], session.now_ns, "restored from the journal after a crash"))
    inst = engine.instrument
    return {
        "position_lots": ledger.position_lots,
        "position": str(inst.qty(ledger.position_lots)),
        "cash": f"{ledger.cash:.8f}",
        "fees_paid": f"{ledger.fees_paid:.8f}",
        "fills": ledger.fills,
        "open_orders": restored,
        "dropped_orders": dropped,
        "resume_after_ns": state.last_capture_ns,
        "restored_reasons": reasons,
        "records_before": state.records,
    }


def make_warm_up(engine: Engine, session: ReplaySession) -> Callable[[MarketEvent], None]:
    """Rebuild the books (and the model's market view) from events before the resume point."""
    venue_book = session.venue_book
    engine_book = engine.book
    separate = engine_book is not venue_book
    model = engine.model

    def warm_up(event: MarketEvent) -> None:
        kind = type(event)
        t = event.ts_local_ns
        if kind is BookDelta:
            venue_book.apply_delta(event)  # type: ignore[arg-type]
            if separate:
                engine_book.apply_delta(event)  # type: ignore[arg-type]
        elif kind is BookSnapshot:
            venue_book.apply_snapshot(event)  # type: ignore[arg-type]
            if separate:
                engine_book.apply_snapshot(event)  # type: ignore[arg-type]
        elif kind is BestBidAsk:
            engine.bbo = event  # type: ignore[assignment]
        elif kind is Trade:
            model.on_trade(event)  # type: ignore[arg-type]
            return
        session.now_ns = t
        if engine_book.is_synced:
            mid = engine.current_mid()
            if mid is not None:
                engine.mid_ticks = mid
                model.on_mid(t, mid)

    return warm_up
