"""Quotes, orders, commands and execution reports.

A *quote* is a desired resting price/size with no order id yet; an *order* rests at
a venue and is keyed by ``client_order_id``; a *fill* is one execution against it.
Commands are imperative (``PlaceOrder``), reports are past tense (``OrderFilled``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum, IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderStatus(Enum):
    PENDING_NEW = "pending_new"
    OPEN = "open"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Liquidity(Enum):
    MAKER = "maker"
    TAKER = "taker"


class FillReason(Enum):
    TRADE_THROUGH = "trade_through"
    QUEUE_CONSUMED = "queue_consumed"
    CROSSED_ON_ARRIVAL = "crossed_on_arrival"
    BOOK_CROSSED = "book_crossed"
    HEDGE_TAKER = "hedge_taker"
    VENUE = "venue"  # reported by a real venue; the reason is not known


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """One desired resting order: the strategy's output."""

    side: Side
    price_ticks: int
    qty_lots: int
    level: int = 0
    reason: str = "quote"
    is_taker: bool = False  # a hedge order: crosses the spread on purpose

    def __post_init__(self) -> None:
        if self.qty_lots <= 0:
            raise ValueError(f"qty_lots must be > 0, was {self.qty_lots}")
        if self.price_ticks <= 0:
            raise ValueError(f"price_ticks must be > 0, was {self.price_ticks}")


@dataclass(slots=True, kw_only=True)
class Order:
    """Mutable view of one of our orders, kept by the OrderManager/venues."""

    client_order_id: str
    symbol: str
    side: Side
    price_ticks: int
    qty_lots: int
    filled_lots: int = 0
    status: OrderStatus = OrderStatus.PENDING_NEW
    level: int = 0
    post_only: bool = True
    is_taker: bool = False
    ts_created_ns: int = 0
    venue_order_id: str = ""

    @property
    def leaves_lots(self) -> int:
        return self.qty_lots - self.filled_lots

    @property
    def is_live(self) -> bool:
        return self.status in (OrderStatus.PENDING_NEW, OrderStatus.OPEN, OrderStatus.PENDING_CANCEL)


# --- commands -------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder:
    client_order_id: str
    symbol: str
    side: Side
    price_ticks: int
    qty_lots: int
    post_only: bool = True
    is_taker: bool = False  # market/IOC hedge order
    level: int = 0
    reason: str = "quote"


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    client_order_id: str
    symbol: str
    reason: str = "requote"


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAll:
    symbol: str
    reason: str = "cancel_all"


Command = PlaceOrder | CancelOrder | CancelAll


# --- execution reports ------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted:
    client_order_id: str
    symbol: str
    ts_ns: int
    queue_ahead_lots: int = 0
    venue_order_id: str = ""
    venue_ts_ns: int = 0  # the venue's own time of the acceptance (0: not known, e.g. the simulated venue)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected:
    client_order_id: str
    symbol: str
    ts_ns: int
    code: int
    message: str
    for_cancel: bool = False  # a cancel was refused (e.g. -2011: the order already filled)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled:
    client_order_id: str
    symbol: str
    ts_ns: int
    reason: str = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled:
    client_order_id: str
    symbol: str
    ts_ns: int
    side: Side
    price_ticks: int
    qty_lots: int
    leaves_lots: int
    fee: Decimal  # quote currency; negative = rebate received
    liquidity: Liquidity
    reason: FillReason
    queue_ahead_at_placement_lots: int = 0
    trade_id: str = ""


ExecReport = OrderAccepted | OrderRejected | OrderCancelled | OrderFilled


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRecord:
    """A fill as stored in run records and summaries (exact strings)."""

    ts_ns: int
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    reason: str
    client_order_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)
