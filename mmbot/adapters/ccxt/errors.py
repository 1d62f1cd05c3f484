"""Translate ccxt exceptions into domain venue outcomes (the one place that does).

ccxt's classes nest, so the most specific classes are checked first:

=================================  ===========================  =====================================
ccxt exception (Binance code)      VenueOutcome                 what the executor does
=================================  ===========================  =====================================
InsufficientFunds (-2010 msg)      INSUFFICIENT_FUNDS           reject; risk REDUCING
OrderImmediatelyFillable (-2010)   WOULD_TAKE                   reject; re-price on the next step
OrderNotFound (-2011, -2013)       ORDER_NOT_FOUND              on cancel: reconcile
other InvalidOrder / BadRequest    REJECTED                     reject; counts toward REJECT_STORM
AuthenticationError                AUTH                         reject; halt (operator must act)
DDoSProtection HTTP 418            IP_BANNED                    stop order traffic until retry-after
DDoSProtection 429 / RateLimit     RATE_LIMITED                 back off, cut the order budget
ChecksumError                      BOOK_GAP                     resync the book
other InvalidNonce (-1021)         CLOCK_SKEW                   resync time
RequestTimeout                     TIMEOUT                      order call: look the order up by id
OperationFailed / NetworkError /   VENUE_DOWN                   retry idempotent calls; EXCHANGE_DOWN
ExchangeNotAvailable                                            after a grace period
anything else                      UNKNOWN                      reject, logged
=================================  ===========================  =====================================

ccxt's ws-api subscribe error path can raise a plain ``KeyError`` (a ccxt bug, see
docs/emulator.md); such non-ccxt exceptions map to UNKNOWN, never crash the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ccxt

from mmbot.domain.risk import VenueOutcome

_STATUS = re.compile(r"\b(418|429|5\d\d)\b")
_RETRY_AFTER = re.compile(r"retry[- ]after\D{0,5}(\d+)", re.IGNORECASE)
_BANNED_UNTIL = re.compile(r"banned until (\d{13})")


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: VenueOutcome
    message: str
    status: int | None = None
    retry_after_s: float | None = None

    @property
    def is_retryable(self) -> bool:
        """Safe to retry an *idempotent* call (never order creation)."""
        return self.kind in (VenueOutcome.VENUE_DOWN, VenueOutcome.TIMEOUT, VenueOutcome.CLOCK_SKEW)


def _status_of(text: str) -> int | None:
    match = _STATUS.search(text)
    return int(match.group(1)) if match else None


def classify(exc: BaseException, *, now_ms: int | None = None) -> Outcome:
    """The domain outcome of an exception raised by a ccxt call."""
    text = str(exc)[:500]
    if isinstance(exc, ccxt.InsufficientFunds):
        return Outcome(VenueOutcome.INSUFFICIENT_FUNDS, text)
    if isinstance(exc, ccxt.OrderImmediatelyFillable):
        return Outcome(VenueOutcome.WOULD_TAKE, text)
    if isinstance(exc, ccxt.OrderNotFound):
        return Outcome(VenueOutcome.ORDER_NOT_FOUND, text)
    if isinstance(exc, ccxt.AuthenticationError):
        return Outcome(VenueOutcome.AUTH, text)
    if isinstance(exc, (ccxt.InvalidOrder, ccxt.BadRequest, ccxt.BadSymbol)):
        return Outcome(VenueOutcome.REJECTED, text)
    if isinstance(exc, ccxt.DDoSProtection):
        status = _status_of(text)
        if status == 418:
            retry = 120.0
            banned = _BANNED_UNTIL.search(text)
            if banned and now_ms is not None:
                retry = max(1.0, (int(banned.group(1)) - now_ms) / 1000.0)
            return Outcome(VenueOutcome.IP_BANNED, text, 418, retry)
        retry_match = _RETRY_AFTER.search(text)
        return Outcome(VenueOutcome.RATE_LIMITED, text, status or 429, float(retry_match.group(1)) if retry_match else 1.0)
    if isinstance(exc, ccxt.RateLimitExceeded):
        return Outcome(VenueOutcome.RATE_LIMITED, text, _status_of(text), 1.0)
    if isinstance(exc, ccxt.ChecksumError):
        return Outcome(VenueOutcome.BOOK_GAP, text)
    if isinstance(exc, ccxt.InvalidNonce):
        return Outcome(VenueOutcome.CLOCK_SKEW, text)
    if isinstance(exc, ccxt.RequestTimeout):
        return Outcome(VenueOutcome.TIMEOUT, text)
    if isinstance(exc, TimeoutError):
        return Outcome(VenueOutcome.TIMEOUT, text or "timed out")
    if isinstance(exc, (ccxt.ExchangeNotAvailable, ccxt.NetworkError, ccxt.OperationFailed)):
        return Outcome(VenueOutcome.VENUE_DOWN, text, _status_of(text))
    if isinstance(exc, ccxt.ExchangeError):
        return Outcome(VenueOutcome.REJECTED, text)
    return Outcome(VenueOutcome.UNKNOWN, f"{type(exc).__name__}: {text}")
