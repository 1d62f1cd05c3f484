"""Market-data validation: one step for every message, replay and live alike (pure).

Every market-data message passes these rules before any book, venue or engine sees
it. A message that breaks a rule is dropped and counted under the rule's name
(``market_data_rejections`` in the summary, ``mmbot_market_data_rejections_total``
on ``/metrics``); the feed goes on. The rules (docs/market-data.md has the table):

Decoding (the capture reader and the live feed's conversion):
  ``malformed``          not JSON, a field missing or of the wrong type, a number that is not
                         a plain finite decimal (``NaN``, ``Infinity``, ``1e400``, a JSON number
                         where Binance sends a string), a level that is not ``[price, qty]``
  ``unknown_symbol``     a message for a symbol that is not configured
  ``price_off_grid``     a price finer than the instrument's tick
  ``qty_off_grid``       a quantity finer than the venue's quantity unit
  ``timestamp_invalid``  a receive time that is not a positive 64-bit integer of nanoseconds
  ``clock_outlier``      a receive time far from both its neighbours (see ``TimeFilter`` in
                         mmbot.marketdata.capture: one bad line is not a new clock)

Values (:meth:`MarketDataValidator.check`, here):
  ``price_not_positive`` a price <= 0 in a level, trade or book ticker
  ``qty_negative``       a level or ticker quantity < 0, or a trade quantity <= 0
  ``update_ids_reversed`` a diff whose first update id ``U`` is above its last ``u``
  ``update_id_jump``     a diff or snapshot whose ``u`` lies more than ``max_update_id_jump``
                         beyond the last accepted one: a gap, not a new baseline. If the next
                         diff chains from the rejected one (``U == rejected u + 1``, or on
                         futures ``pu == rejected u``), the jump
                         was real: that diff is accepted as a new baseline (counted in
                         ``update_id_discontinuities``), and the books resync through their
                         gap rule.
  ``diff_self_crossed``  a diff whose own new best bid (qty > 0) is >= its own new best ask
  ``snapshot_crossed``   a snapshot whose best bid >= its best ask
  ``ticker_crossed``     a book ticker whose own bid >= its ask
  ``ticker_deviation``   a book ticker whose mid lies more than ``max_ticker_deviation_bps`` from
                         the depth book's mid. A ticker that crosses the depth book's opposite
                         side is normal (depth arrives every 100 ms, the ticker in real time) and
                         is accepted.
  ``trade_deviation``    a trade more than ``max_trade_deviation_bps`` from the depth book's mid

Books (mmbot.marketdata.book): ``crossed_book`` counts the engine's depth books that came out
crossed after a diff: not believed, invalidated and resynced from a snapshot.

Units: prices in ticks, quantities in lots, deviations in basis points of the depth mid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mmbot.domain.events import BestBidAsk, BookDelta, BookSnapshot, Level, MarketEvent, Trade
from mmbot.errors import DataError
from mmbot.marketdata.book import L2Book


class Rule(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_SYMBOL = "unknown_symbol"
    PRICE_OFF_GRID = "price_off_grid"
    QTY_OFF_GRID = "qty_off_grid"
    TIMESTAMP_INVALID = "timestamp_invalid"
    CLOCK_OUTLIER = "clock_outlier"
    PRICE_NOT_POSITIVE = "price_not_positive"
    QTY_NEGATIVE = "qty_negative"
    UPDATE_IDS_REVERSED = "update_ids_reversed"
    UPDATE_ID_JUMP = "update_id_jump"
    DIFF_SELF_CROSSED = "diff_self_crossed"
    SNAPSHOT_CROSSED = "snapshot_crossed"
    TICKER_CROSSED = "ticker_crossed"
    TICKER_DEVIATION = "ticker_deviation"
    TRADE_DEVIATION = "trade_deviation"
    CROSSED_BOOK = "crossed_book"


class BadMessage(DataError, ValueError):
    """A message that breaks a named rule (raised while decoding, counted by the reader);
    still a ValueError, so every reader that skips undecodable lines skips it too."""

    def __init__(self, rule: Rule, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationRules:
    """Thresholds of the value rules (``data.*`` in the config)."""

    max_update_id_jump: int = 1_000_000
    max_ticker_deviation_bps: float = 50.0
    max_trade_deviation_bps: float = 100.0

    def __post_init__(self) -> None:
        if self.max_update_id_jump <= 0:
            raise ValueError(f"max_update_id_jump must be > 0, was {self.max_update_id_jump}")
        for name in ("max_ticker_deviation_bps", "max_trade_deviation_bps"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0, was {value}")


def merge_counts(*parts: Mapping[str, int]) -> dict[str, int]:
    """Rule -> count over several counters, sorted by rule, zero counts left out."""
    out: dict[str, int] = {}
    for part in parts:
        for rule, n in part.items():
            if n:
                out[str(rule)] = out.get(str(rule), 0) + n
    return dict(sorted(out.items()))


@dataclass(slots=True)
class _SymbolState:
    last_u: int | None = None
    rejected_jump_u: int | None = None


@dataclass
class MarketDataValidator:
    """The value rules, with the per-symbol update-id state they need.

    ``check(event, book)`` -> True to accept; ``book`` is the depth book the event will be
    applied to (the venue's true book on a replay, the feed's book live): the ticker and
    trade deviations are measured against it while it is synced.
    """

    rules: ValidationRules = field(default_factory=ValidationRules)
    counts: dict[str, int] = field(default_factory=dict)
    update_id_discontinuities: int = 0
    _symbols: dict[str, _SymbolState] = field(default_factory=dict)

    def _reject(self, rule: Rule) -> bool:
        self.counts[rule.value] = self.counts.get(rule.value, 0) + 1
        return False

    def check(self, event: MarketEvent, book: L2Book | None = None) -> bool:
        kind = type(event)
        if kind is BookDelta:
            return self._delta(event, book)  # type: ignore[arg-type]
        if kind is Trade:
            return self._trade(event, book)  # type: ignore[arg-type]
        if kind is BestBidAsk:
            return self._ticker(event, book)  # type: ignore[arg-type]
        if kind is BookSnapshot:
            return self._snapshot(event)  # type: ignore[arg-type]
        return True

    def reset_symbol(self, symbol: str) -> None:
        """Forget the update-id baseline (a feed resubscribed: its ids start afresh)."""
        self._symbols.pop(symbol, None)

    # --- rules ---------------------------------------------------------------------
    def _levels(self, levels: tuple[Level, ...]) -> Rule | None:
        for price, qty in levels:
            if price <= 0:
                return Rule.PRICE_NOT_POSITIVE
            if qty < 0:
                return Rule.QTY_NEGATIVE
        return None

    def _delta(self, delta: BookDelta, book: L2Book | None) -> bool:
        bad = self._levels(delta.bids) or self._levels(delta.asks)
        if bad is not None:
            return self._reject(bad)
        if delta.first_update_id > delta.last_update_id:
            return self._reject(Rule.UPDATE_IDS_REVERSED)
        new_bids = [p for p, q in delta.bids if q]
        new_asks = [p for p, q in delta.asks if q]
        if new_bids and new_asks and max(new_bids) >= min(new_asks):
            return self._reject(Rule.DIFF_SELF_CROSSED)
        state = self._symbols.get(delta.symbol)
        if state is None:
            state = self._symbols[delta.symbol] = _SymbolState()
        last = state.last_u
        if last is not None and delta.last_update_id - last > self.rules.max_update_id_jump:
            rejected = state.rejected_jump_u
            if rejected is not None and (delta.first_update_id == rejected + 1 or delta.prev_update_id == rejected):
                # The stream chains from the jump: a real discontinuity, a new baseline.
                self.update_id_discontinuities += 1
            else:
                state.rejected_jump_u = delta.last_update_id
                return self._reject(Rule.UPDATE_ID_JUMP)
        state.rejected_jump_u = None
        if last is None or delta.last_update_id > last:
            state.last_u = delta.last_update_id
        return True

    def _snapshot(self, snap: BookSnapshot) -> bool:
        bad = self._levels(snap.bids) or self._levels(snap.asks)
        if bad is not None:
            return self._reject(bad)
        bids = [p for p, q in snap.bids if q]
        asks = [p for p, q in snap.asks if q]
        if bids and asks and max(bids) >= min(asks):
            return self._reject(Rule.SNAPSHOT_CROSSED)
        state = self._symbols.get(snap.symbol)
        if state is not None and state.last_u is not None:
            if abs(snap.last_update_id - state.last_u) > self.rules.max_update_id_jump:
                return self._reject(Rule.UPDATE_ID_JUMP)
        return True

    def _deviation_bps(self, price: float, book: L2Book | None) -> float | None:
        if book is None or not book.is_synced:
            return None
        bid = book.best_bid()
        ask = book.best_ask()
        if bid is None or ask is None or bid >= ask:
            return None
        mid = (bid + ask) / 2.0
        return abs(price - mid) / mid * 10_000.0

    def _ticker(self, bbo: BestBidAsk, book: L2Book | None) -> bool:
        if bbo.bid_ticks <= 0 or bbo.ask_ticks <= 0:
            return self._reject(Rule.PRICE_NOT_POSITIVE)
        if bbo.bid_lots < 0 or bbo.ask_lots < 0:
            return self._reject(Rule.QTY_NEGATIVE)
        if bbo.bid_ticks >= bbo.ask_ticks:
            return self._reject(Rule.TICKER_CROSSED)
        dev = self._deviation_bps((bbo.bid_ticks + bbo.ask_ticks) / 2.0, book)
        if dev is not None and dev > self.rules.max_ticker_deviation_bps:
            return self._reject(Rule.TICKER_DEVIATION)
        return True

    def _trade(self, trade: Trade, book: L2Book | None) -> bool:
        if trade.price_ticks <= 0:
            return self._reject(Rule.PRICE_NOT_POSITIVE)
        if trade.qty_lots <= 0:
            return self._reject(Rule.QTY_NEGATIVE)
        dev = self._deviation_bps(float(trade.price_ticks), book)
        if dev is not None and dev > self.rules.max_trade_deviation_bps:
            return self._reject(Rule.TRADE_DEVIATION)
        return True
