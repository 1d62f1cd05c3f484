"""Typed engine events: what the engine did, as immutable facts for the observers.

The engine's handlers (``on_market``, ``on_exec``, ``on_timer`` and the operator
actions) record these in order; the driver takes them with ``Engine.drain_events()``
and hands them to the observers (journal, metrics, fill log, run record, status line),
which subscribe by type through :class:`EventBus` and never steer.

Every event has a time (``ts_ns``, the engine's clock: capture time on a replay, wall
time live) and a journal ``KIND``; :meth:`EngineEvent.record` is the journal body,
field for field (prices in ticks, quantities in lots, money as decimal strings), the
same records `mmbot audit` reads back.

============================  ==============  ===============================================
event                         journal kind    when
============================  ==============  ===============================================
QuotesDecided                 decision        the model decided (only with audit.record_decisions)
OrderPlaced                   place           a placement passed the risk gate
OrderDenied                   deny            the risk gate (or the order budget) refused one
CancelRequested               cancel          a cancel was sent (replace or withdraw)
CancelAllRequested            cancel_all      every order is being cancelled (halt, model, stop)
OrderAcked                    ack             the venue accepted an order (queue ahead at arrival)
OrderCancelConfirmed          cancelled       the venue confirmed a cancel
VenueRejected                 reject          the venue refused a placement
FillBooked                    fill            a fill reached the ledger
MarkoutResolved               markout         a fill's markout horizon passed
FundingBooked                 funding         a perpetual's funding payment reached the ledger
RiskChanged                   risk            the risk gate changed state
Noted                         (its own kind)  an operator action or a fact decided outside the engine
============================  ==============  ===============================================
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineEvent:
    KIND: ClassVar[str] = ""
    ts_ns: int

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def payload(self) -> dict[str, Any]:
        """The journal body as a dict (read-only views, tests and tools)."""
        return self.record()

    def record(self) -> dict[str, Any]:
        """The journal record's body: every field but the time, in declaration order."""
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__ if name != "ts_ns"}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotesDecided(EngineEvent):
    KIND: ClassVar[str] = "decision"
    quotes: tuple[tuple[str, int, int, int, str], ...]  # (side, price ticks, qty lots, level, reason)
    cancel_all: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(EngineEvent):
    KIND: ClassVar[str] = "place"
    client_order_id: str
    side: str  # BUY | SELL
    price: int  # ticks
    qty: int  # lots
    level: int
    taker: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(EngineEvent):
    KIND: ClassVar[str] = "deny"
    reason: str  # a RiskReason value, a state or a check name (PRICE_BAND, ORDER_BUDGET, ...)
    detail: str
    side: str = ""  # the gate's denials name the quote; the order budget's name the order
    price: int | None = None
    client_order_id: str = ""

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "detail": self.detail}
        if self.side:
            out["side"] = self.side
            out["price"] = self.price
        if self.client_order_id:
            out["client_order_id"] = self.client_order_id
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequested(EngineEvent):
    KIND: ClassVar[str] = "cancel"
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAllRequested(EngineEvent):
    KIND: ClassVar[str] = "cancel_all"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAcked(EngineEvent):
    KIND: ClassVar[str] = "ack"
    client_order_id: str
    venue_order_id: str
    queue_ahead: int  # lots ahead of us at arrival
    venue_ts_ns: int = 0  # an exchange's own time of the acceptance (journaled only when known)

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"client_order_id": self.client_order_id, "venue_order_id": self.venue_order_id, "queue_ahead": self.queue_ahead}
        if self.venue_ts_ns:
            out["venue_ts_ns"] = self.venue_ts_ns
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelConfirmed(EngineEvent):
    KIND: ClassVar[str] = "cancelled"
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueRejected(EngineEvent):
    KIND: ClassVar[str] = "reject"
    client_order_id: str
    code: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FillBooked(EngineEvent):
    KIND: ClassVar[str] = "fill"
    fill_index: int
    client_order_id: str
    side: str  # BUY | SELL
    price: int  # ticks
    qty: int  # lots
    leaves: int  # lots still open on the order
    fee: str  # quote currency, decimal string (negative = rebate)
    liquidity: str  # maker | taker
    reason: str  # the fill rule (mmbot.domain.orders.FillReason)
    queue_ahead: int  # lots ahead at placement
    position: int  # lots, after this fill
    trade_id: str = ""  # an exchange's trade id (journaled only when known: sandbox and live)
    received_ns: int = 0  # when the engine booked an exchange's fill (its ts_ns is the venue's trade time)

    def record(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _FILL_FIELDS}
        if self.trade_id:
            out["trade_id"] = self.trade_id
            out["received_ns"] = self.received_ns
        return out


_FILL_FIELDS = ("fill_index", "client_order_id", "side", "price", "qty", "leaves", "fee", "liquidity", "reason", "queue_ahead", "position")


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingBooked(EngineEvent):
    KIND: ClassVar[str] = "funding"
    funding_ts_ns: int  # the funding instant (00:00/08:00/16:00 UTC); ts_ns is when it was booked
    position: int  # lots (contracts for inverse) that paid or received
    mark: int  # ticks
    rate: str  # decimal string, per interval
    payment: str  # settlement asset, decimal string; > 0 paid


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkoutResolved(EngineEvent):
    KIND: ClassVar[str] = "markout"
    fill_index: int
    horizon_ns: int
    bps: float  # signed mid move after the fill, positive = good for us


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskChanged(EngineEvent):
    KIND: ClassVar[str] = "risk"
    old: str
    new: str
    reasons: tuple[str, ...]
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Noted(EngineEvent):
    """A fact decided outside the engine (kill switch, reload) for the observers; its
    journal kind is its own ``name`` and its body the ``fields``."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.name

    def record(self) -> dict[str, Any]:
        return dict(self.fields)


E = TypeVar("E", bound=EngineEvent)


class EventBus:
    """Observers subscribe by event type; :meth:`publish` calls them in subscription order.

    ``subscribe(EngineEvent, fn)`` receives every event. Handlers are resolved once per
    event type (a dict lookup per event on the hot path).
    """

    def __init__(self) -> None:
        self._handlers: list[tuple[type[EngineEvent], Callable[[Any], None]]] = []
        self._batch: list[Callable[[list[EngineEvent]], None]] = []
        self._by_type: dict[type[EngineEvent], list[Callable[[Any], None]]] = defaultdict(list)
        self._resolved: set[type[EngineEvent]] = set()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        self._handlers.append((event_type, handler))
        self._by_type.clear()
        self._resolved.clear()

    def subscribe_batch(self, handler: Callable[[list[EngineEvent]], None], *, first: bool = False) -> None:
        """``handler(events)`` once per published batch (for observers that time a batch);
        ``first``: before the handlers subscribed so far (the journal records before others act)."""
        if first:
            self._batch.insert(0, handler)
        else:
            self._batch.append(handler)

    def _handlers_for(self, event_type: type[EngineEvent]) -> list[Callable[[Any], None]]:
        if event_type not in self._resolved:
            self._by_type[event_type] = [h for t, h in self._handlers if issubclass(event_type, t)]
            self._resolved.add(event_type)
        return self._by_type[event_type]

    def publish(self, events: Iterable[EngineEvent]) -> None:
        batch = events if isinstance(events, list) else list(events)
        if not batch:
            return
        for event in batch:
            for handler in self._handlers_for(type(event)):
                handler(event)
        for handler in self._batch:
            handler(batch)
