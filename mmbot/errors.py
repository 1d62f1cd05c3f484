"""One exception hierarchy for mmbot.

``ConfigError`` maps to exit status 2 at the CLI; ``DataError`` covers bad files and
bad venue payloads; venue errors say whether a retry is safe.
"""

from __future__ import annotations


class MmbotError(Exception):
    """Root of every error mmbot raises on purpose."""

    exit_code = 1


class ConfigError(MmbotError):
    """Invalid configuration or command-line usage (exit 2)."""

    exit_code = 2


class JournalMismatchError(ConfigError):
    """The unsealed journal of a crashed run belongs to another configuration or account (exit 2)."""


class DataError(MmbotError):
    """A data file or a venue payload is unreadable or malformed."""

    exit_code = 1


class DataMismatch(DataError):
    """The input data contradicts the configuration or cannot be used as asked (exit 2):
    a symbol or venue kind that is not configured, a tick the prices don't fit."""

    exit_code = 2


class BookIntegrityError(DataError):
    """The order book lost sync (gap) or became inconsistent (crossed)."""


class JournalError(MmbotError):
    """The audit journal could not be written or read."""

    exit_code = 3


class VenueError(MmbotError):
    """An error reported by (or on the way to) a trading venue."""


class TemporaryVenueError(VenueError):
    """A venue error that an idempotent call may retry."""


class RateLimited(TemporaryVenueError):
    """The venue asked us to slow down."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OrderRejected(VenueError):
    """The venue refused an order; never retried blindly."""
