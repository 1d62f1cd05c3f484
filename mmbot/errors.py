"""One exception hierarchy for mmbot: everything mmbot raises on purpose is a ``MmbotError``.

The exit-status rule (the README's table; every command, through ``mmbot.cli.common.guarded``):

* **2: fix the input and run again**, nothing ran or nothing was changed: a usage
  error, an invalid config file, environment variable or flag, and an input file that is
  missing, unreadable, malformed or contradicts the config (``ConfigError``,
  ``DataError`` and its subclass ``DataMismatch``);
* **3: the audit journal** could not be written or read (``JournalError``; a running
  daemon halts trading first);
* **1: something failed while running**: a venue or the daemon unreachable, the book
  lost integrity, orders left open at stop, and our own bugs (any exception that is not
  a ``MmbotError``: one line, the traceback in the log);
* 0: done (a daemon: stopped cleanly, by end of data, ``--duration``, SIGINT or SIGTERM).

================================  =====  ====================================================
class                             exit   meaning
================================  =====  ====================================================
``MmbotError``                    1      root; the CLI prints its message, no traceback
``ConfigError``                   2      invalid configuration or command-line usage
``DataError``                     2      an input file is missing, unreadable or malformed
``DataMismatch(DataError)``       2      the input data contradicts the configuration
``BookIntegrityError(DataError)`` 1      the order book lost sync or became inconsistent (runtime)
``JournalError``                  3      the audit journal could not be written or read
``VenueError``                    1      reported by (or on the way to) a venue
``TemporaryVenueError``           1      a venue error an idempotent call may retry
================================  =====  ====================================================

Subclasses that live next to the code raising them: ``StreamGap``/``StreamDown``/
``StreamSilent``/``StreamUnsupported`` (:mod:`mmbot.adapters.ccxt.stream`),
``VenueCallError`` (:mod:`mmbot.adapters.ccxt.orders`: a failed ccxt order-path call,
classified by its ``outcome``, never by its class), ``BadMessage``
(:mod:`mmbot.marketdata.validate`), ``RecordError`` (:mod:`mmbot.audit.codec`),
``ApiError`` (the emulator's Binance error answer), ``DaemonUnreachable``
(:mod:`mmbot.cli.ctl`).

A venue's refusal of an order is not an exception: it is the exec report
:class:`mmbot.domain.orders.OrderRejected`; a rate limit is the outcome
``VenueOutcome.RATE_LIMITED`` with its retry-after. Anything the CLI catches that is
not a ``MmbotError`` is our bug (exit 1, traceback in the log: :mod:`mmbot.cli.main`);
a ``ValueError`` from a domain value type's constructor is such a bug unless the code
that fed it user input translates it into a ``ConfigError``.
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
    """An input file is missing, unreadable or malformed (exit 2: fix the input, run again)."""

    exit_code = 2


class DataMismatch(DataError):
    """The input data contradicts the configuration or cannot be used as asked (exit 2):
    a symbol or venue kind that is not configured, a tick the prices don't fit."""

    exit_code = 2


class BookIntegrityError(DataError):
    """The order book lost sync (gap) or became inconsistent (crossed): found while running (exit 1)."""

    exit_code = 1


class JournalError(MmbotError):
    """The audit journal could not be written or read."""

    exit_code = 3


class VenueError(MmbotError):
    """An error reported by (or on the way to) a trading venue."""


class TemporaryVenueError(VenueError):
    """A venue error that an idempotent call may retry."""
