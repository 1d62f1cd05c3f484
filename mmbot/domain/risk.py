"""Trading states, risk reason codes and venue outcome kinds.

They live in the domain so adapters and executors can raise a reason without
importing risk internals. The trading state is the worst state any active reason
implies. Sticky reasons stay until an operator clears them.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class TradingState(IntEnum):
    """Ordered by severity: ACTIVE < REDUCING < HALTED."""

    ACTIVE = 0
    REDUCING = 1
    HALTED = 2


class RiskReason(Enum):
    KILL_SWITCH = "KILL_SWITCH"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    DAILY_LOSS = "DAILY_LOSS"
    MAX_POSITION = "MAX_POSITION"
    STALE_BOOK = "STALE_BOOK"
    BOOK_GAP = "BOOK_GAP"
    CROSSED_BOOK = "CROSSED_BOOK"
    FEED_SILENT = "FEED_SILENT"
    LOOP_LAG = "LOOP_LAG"
    ORDER_RATE = "ORDER_RATE"
    REJECT_STORM = "REJECT_STORM"
    EXCHANGE_DOWN = "EXCHANGE_DOWN"
    RECONCILE_MISMATCH = "RECONCILE_MISMATCH"
    JOURNAL_FAILURE = "JOURNAL_FAILURE"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    DEAD_MAN = "DEAD_MAN"  # the quoting loop stopped running while the process is alive
    MANUAL = "MANUAL"
    NET_DELTA = "NET_DELTA"  # |net delta over every instrument of the account| > risk.max_net_delta (base units)
    MARGIN_RATIO = "MARGIN_RATIO"  # futures margin ratio above risk.margin_ratio_reducing
    MARGIN_CALL = "MARGIN_CALL"  # futures margin ratio above risk.margin_ratio_halt


_STATE_OF: dict[RiskReason, TradingState] = {
    RiskReason.KILL_SWITCH: TradingState.HALTED,
    RiskReason.MAX_DRAWDOWN: TradingState.HALTED,
    RiskReason.DAILY_LOSS: TradingState.HALTED,
    RiskReason.MAX_POSITION: TradingState.REDUCING,
    RiskReason.STALE_BOOK: TradingState.HALTED,
    RiskReason.BOOK_GAP: TradingState.HALTED,
    RiskReason.CROSSED_BOOK: TradingState.HALTED,
    RiskReason.FEED_SILENT: TradingState.HALTED,
    RiskReason.LOOP_LAG: TradingState.HALTED,
    RiskReason.ORDER_RATE: TradingState.REDUCING,
    RiskReason.REJECT_STORM: TradingState.HALTED,
    RiskReason.EXCHANGE_DOWN: TradingState.HALTED,
    RiskReason.RECONCILE_MISMATCH: TradingState.HALTED,
    RiskReason.JOURNAL_FAILURE: TradingState.HALTED,
    RiskReason.INSUFFICIENT_FUNDS: TradingState.REDUCING,
    RiskReason.DEAD_MAN: TradingState.HALTED,
    RiskReason.MANUAL: TradingState.HALTED,
    RiskReason.NET_DELTA: TradingState.REDUCING,
    RiskReason.MARGIN_RATIO: TradingState.REDUCING,
    RiskReason.MARGIN_CALL: TradingState.HALTED,
}

STICKY_REASONS: frozenset[RiskReason] = frozenset(
    {
        RiskReason.KILL_SWITCH,
        RiskReason.MAX_DRAWDOWN,
        RiskReason.DAILY_LOSS,
        RiskReason.JOURNAL_FAILURE,
        RiskReason.MANUAL,
    }
)


def reason_state(reason: RiskReason) -> TradingState:
    return _STATE_OF[reason]


def parse_reason(text: str) -> RiskReason:
    """``"kill_switch"`` or ``"KILL_SWITCH"`` -> RiskReason; ValueError naming the valid codes."""
    try:
        return RiskReason(text.strip().upper())
    except ValueError:
        valid = ", ".join(r.value for r in RiskReason)
        raise ValueError(f"risk reason must be one of {valid}, was {text!r}") from None


# The symbol label of a venue error of an account-wide call (user stream, balances, the
# ws-api probe): it concerns no one symbol.
ACCOUNT_WIDE = "account"


class VenueOutcome(Enum):
    """What a venue error means for us, independent of the client library."""

    REJECTED = "rejected"  # invalid order, counted toward REJECT_STORM
    INSUFFICIENT_FUNDS = "insufficient_funds"
    WOULD_TAKE = "would_take"  # post-only would cross: re-price next step
    RATE_LIMITED = "rate_limited"  # 429
    IP_BANNED = "ip_banned"  # 418
    BOOK_GAP = "book_gap"
    CLOCK_SKEW = "clock_skew"  # -1021
    TIMEOUT = "timeout"  # state unknown: look the order up
    VENUE_DOWN = "venue_down"
    ORDER_NOT_FOUND = "order_not_found"
    AUTH = "auth"
    UNKNOWN = "unknown"
