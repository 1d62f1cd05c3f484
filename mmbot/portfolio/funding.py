"""Perpetual funding: when it is paid and how much (pure: time arrives as a parameter).

Binance perpetuals settle funding every 8 hours, at 00:00, 08:00 and 16:00 UTC. Those
instants are the multiples of 8 h since the Unix epoch (1970-01-01 00:00 UTC), so
:func:`funding_times` needs no calendar. A replay books funding on its replay clock, the
capture's local receive time (``ts_local_ns``): the first event received at or after a
funding instant books it (the position and mark then are those just before the event).
Live paper runs do the same on the wall clock.

Payment of one funding, in the settlement asset, positive = paid, negative = received::

    linear  (BTC/USDT:USDT):  q x cs x M x rate        q base units, M mark (quote per base)
    inverse (BTC/USD:BTC):    n x cs / M x rate        n contracts, cs USD per contract

``rate`` is the funding rate of the interval (0.0001 = 0.01 %, Binance's usual value;
``futures.funding_rate``): a positive rate makes longs pay shorts. The captures carry no
mark-price stream, so the mark is the venue book's mid (rounded to the tick,
mmbot.portfolio.ledger.mark_ticks_from_mid). Payments are rounded up to 1e-8 (a charge
never falls short, a credit never exceeds).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from mmbot.domain.instrument import Instrument, round_up_8

FUNDING_INTERVAL_NS = 8 * 3600 * 1_000_000_000
FUNDING_HOURS_UTC = (0, 8, 16)


def funding_times(after_ns: int, until_ns: int) -> list[int]:
    """Funding instants ``t`` with ``after_ns < t <= until_ns`` (ns since the epoch, UTC)."""
    if until_ns <= after_ns:
        return []
    first = (after_ns // FUNDING_INTERVAL_NS + 1) * FUNDING_INTERVAL_NS
    return list(range(first, until_ns + 1, FUNDING_INTERVAL_NS))


def funding_payment(inst: Instrument, position_lots: int, mark_ticks: int, rate: Decimal) -> Decimal:
    """The payment of one funding (module docstring); 0 when flat."""
    if not inst.is_perp:
        raise ValueError(f"funding needs a perpetual, {inst.symbol} is spot")
    if position_lots == 0:
        return Decimal(0)
    if mark_ticks <= 0:
        raise ValueError(f"funding needs a mark > 0, was {mark_ticks} ticks")
    value = inst.settle_value(mark_ticks, abs(position_lots))
    signed = value if position_lots > 0 else -value
    return round_up_8(signed * Fraction(rate))


class FundingSchedule:
    """Which funding instants a clock has passed: ``due(now_ns)`` returns the new ones.

    The first call only sets the start (a run does not pay the funding before it began).
    """

    __slots__ = ("last_ns", "rate")

    def __init__(self, rate: Decimal) -> None:
        self.rate = rate
        self.last_ns: int | None = None

    def due(self, now_ns: int) -> list[int]:
        last = self.last_ns
        if last is None or now_ns > last:
            self.last_ns = now_ns
        if last is None:
            return []
        return funding_times(last, now_ns)
