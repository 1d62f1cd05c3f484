"""Process-wide counters that edge components bump without importing prometheus_client.

The journal writer, the websocket feeds and the exchange adapter call these plain
functions (an integer add under a lock, safe from worker threads such as a journal
writer running in ``asyncio.to_thread``); :mod:`mmbot.observability.metrics` reads
them at scrape time and exports

* ``mmbot_journal_records_total``            records appended to the audit journal
* ``mmbot_websocket_reconnects_total{symbol}`` market-data / user-stream reconnects
* ``mmbot_exchange_errors_total{symbol,kind}`` venue errors by symbol and outcome kind
  (the values of :class:`mmbot.domain.risk.VenueOutcome`; every kind exists at zero for
  every traded symbol and for ``symbol="account"``, the account-wide calls: user
  stream, balances, the ws-api probe)
* ``mmbot_market_data_rejections_total{symbol,rule}`` market-data messages dropped by a
  rule of mmbot.marketdata.validate; the runners register a source per symbol
  (:func:`add_market_data_source`) that returns its rule -> count, read at scrape time

Usage::

    from mmbot.observability import counters
    counters.journal_records_written(3)
    counters.websocket_reconnected("BTC/USDT")
    counters.exchange_error(VenueOutcome.RATE_LIMITED, "BTC/USDT")
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mmbot.domain.risk import ACCOUNT_WIDE, VenueOutcome

ERROR_KINDS: tuple[str, ...] = tuple(kind.value for kind in VenueOutcome)


@dataclass
class ProcessCounters:
    journal_records: int = 0
    websocket_reconnects: dict[str, int] = field(default_factory=dict)
    exchange_errors: dict[tuple[str, str], int] = field(default_factory=dict)  # (symbol, kind) -> count
    market_data_sources: dict[str, Callable[[], Mapping[str, int]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


COUNTERS = ProcessCounters()


def journal_records_written(n: int = 1) -> None:
    with COUNTERS.lock:
        COUNTERS.journal_records += n


def websocket_reconnected(symbol: str) -> None:
    with COUNTERS.lock:
        COUNTERS.websocket_reconnects[symbol] = COUNTERS.websocket_reconnects.get(symbol, 0) + 1


def exchange_error(kind: VenueOutcome | str, symbol: str = ACCOUNT_WIDE) -> None:
    """Count one venue error of ``symbol`` (``account`` for account-wide calls); unknown
    kinds are counted as ``unknown`` (labels stay bounded)."""
    value = kind.value if isinstance(kind, VenueOutcome) else kind
    if value not in ERROR_KINDS:
        value = VenueOutcome.UNKNOWN.value
    key = (symbol, value)
    with COUNTERS.lock:
        COUNTERS.exchange_errors[key] = COUNTERS.exchange_errors.get(key, 0) + 1


def snapshot() -> tuple[int, dict[str, int], dict[tuple[str, str], int]]:
    """(journal_records, reconnects by symbol, errors by (symbol, kind)), copied under the lock."""
    with COUNTERS.lock:
        return COUNTERS.journal_records, dict(COUNTERS.websocket_reconnects), dict(COUNTERS.exchange_errors)


def add_market_data_source(symbol: str, counts: Callable[[], Mapping[str, int]]) -> None:
    """``counts()`` returns the symbol's market-data rejections by rule (replaces an earlier one)."""
    with COUNTERS.lock:
        COUNTERS.market_data_sources[symbol] = counts


def market_data_rejections() -> dict[tuple[str, str], int]:
    """(symbol, rule) -> count over every registered source."""
    with COUNTERS.lock:
        sources = list(COUNTERS.market_data_sources.items())
    out: dict[tuple[str, str], int] = {}
    for symbol, counts in sources:
        for rule, n in counts().items():
            out[(symbol, rule)] = out.get((symbol, rule), 0) + n
    return out
