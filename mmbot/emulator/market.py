"""One emulated symbol: the venue's true book, its SimVenue and the outgoing frames.

Update-id arithmetic (``off`` = the current pass's id offset, tape ids are the
capture's own):

* a tape diff ``(U, u)`` goes out as ``(U + off, u + off)``;
* a reset (loop seam, or a gap inside the capture) to levels with id ``L`` goes
  out as one synthetic diff ``U = u = last + 1``, after which ``off = last + 1 - L``,
  so the next tape diff (``U = L + 1``) continues with ``U = last + 2``.

Trade ids and bookTicker ``u`` are shifted the same way, so every pass is a new,
strictly increasing stretch of the same market.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mmbot.domain.events import BookDelta, BookSnapshot, Trade
from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import ExecReport
from mmbot.emulator.tape import BBO, DEPTH, RESET, TRADE, Tape, TapeEntry, fmt_price, fmt_qty, level_diff
from mmbot.marketdata.book import L2Book
from mmbot.sim.venue import SimVenue, VenueConfig

Frame = tuple[str, dict[str, Any]]  # (stream name, bare payload)


class SymbolMarket:
    def __init__(self, instrument: Instrument, tape: Tape, venue_config: VenueConfig) -> None:
        self.instrument = instrument
        self.venue_symbol = instrument.venue_symbol
        self.stream_prefix = instrument.venue_symbol.lower()
        self.tape = tape
        self.book = L2Book(instrument.symbol, on_crossed="heal")  # the exchange's true book: stale levels heal
        self.venue = SimVenue(instrument, self.book, venue_config)
        self.id_offset = 0
        self.trade_offset = 0
        self.last_trade_id = 0
        self.last_price_ticks: int | None = None
        self.open_ticks: int | None = None
        self.high_ticks = 0
        self.low_ticks = 0
        self.volume_lots = 0
        self.quote_volume = Decimal(0)
        self.trade_count = 0
        self.passes = 0
        self.skipped_updates = 0
        self.book.apply_snapshot(BookSnapshot(instrument.symbol, 0, tape.initial_id, tape.initial_bids, tape.initial_asks))

    @property
    def last_update_id(self) -> int:
        return self.book.last_update_id

    # --- replay ------------------------------------------------------------------------
    def step(self, entry: TapeEntry, now_ns: int, skip_depth: bool) -> tuple[list[Frame], list[ExecReport]]:
        """Apply one tape entry at wall time ``now_ns``; return frames to send and venue reports.

        ``skip_depth``: the gap fault: the book applies the diff but it is not sent.
        """
        now_ms = now_ns // 1_000_000
        kind = entry.kind
        if kind == DEPTH:
            base = self.tape.delta(entry)
            off = self.id_offset
            delta = base._replace(
                symbol=self.instrument.symbol,
                ts_local_ns=now_ns,
                ts_event_ns=now_ms * 1_000_000,
                first_update_id=base.first_update_id + off,
                last_update_id=base.last_update_id + off,
            )
            reports = self._apply(delta)
            if skip_depth:
                self.skipped_updates += 1
                return [], reports
            data = entry.data()
            data["E"] = now_ms
            data["s"] = self.venue_symbol
            data["U"] = delta.first_update_id
            data["u"] = delta.last_update_id
            return [(f"{self.stream_prefix}@depth", data)], reports
        if kind == TRADE:
            raw_trade = self.tape.trade(entry)
            trade = raw_trade._replace(
                symbol=self.instrument.symbol,
                ts_local_ns=now_ns,
                ts_event_ns=now_ms * 1_000_000,
                trade_id=raw_trade.trade_id + self.trade_offset,
            )
            self._count_trade(trade)
            reports = self.venue.on_trade(trade) if self.venue.has_orders else []
            data = entry.data()
            data["E"] = now_ms
            data["T"] = now_ms
            data["s"] = self.venue_symbol
            data["t"] = trade.trade_id
            return [(f"{self.stream_prefix}@trade", data)], reports
        if kind == BBO:
            data = entry.data()
            data["s"] = self.venue_symbol
            data["u"] = int(data["u"]) + self.id_offset
            bbo_reports: list[ExecReport] = []
            if self.venue.has_orders:
                bbo = self.tape.bbo(entry)
                bbo_reports = self.venue.on_bbo(bbo._replace(symbol=self.instrument.symbol, ts_local_ns=now_ns, update_id=data["u"]))
            return [(f"{self.stream_prefix}@bookTicker", data)], bbo_reports
        assert kind == RESET and entry.reset_levels is not None
        return self.reset_to(entry.reset_levels[0], entry.reset_levels[1], entry.reset_id, now_ns)

    def reset_to(
        self, bids: tuple[tuple[int, int], ...], asks: tuple[tuple[int, int], ...], level_id: int, now_ns: int
    ) -> tuple[list[Frame], list[ExecReport]]:
        """One synthetic diff that turns the current book into ``bids``/``asks``."""
        bid_changes, ask_changes = level_diff(self.book, bids, asks)
        new_id = self.book.last_update_id + 1
        delta = BookDelta(
            self.instrument.symbol, now_ns, (now_ns // 1_000_000) * 1_000_000, new_id, new_id,
            tuple(bid_changes), tuple(ask_changes),
        )
        reports = self._apply(delta)
        self.id_offset = new_id - level_id
        inst = self.instrument
        data = {
            "e": "depthUpdate",
            "E": now_ns // 1_000_000,
            "s": self.venue_symbol,
            "U": new_id,
            "u": new_id,
            "b": [[fmt_price(inst, p), fmt_qty(inst, q)] for p, q in bid_changes],
            "a": [[fmt_price(inst, p), fmt_qty(inst, q)] for p, q in ask_changes],
        }
        return [(f"{self.stream_prefix}@depth", data)], reports

    def seam(self, now_ns: int) -> tuple[list[Frame], list[ExecReport]]:
        """End of the tape: back to the initial book; trade ids continue upward."""
        self.passes += 1
        self.trade_offset += self.tape.last_trade_id - self.tape.first_trade_id + 1
        tape = self.tape
        return self.reset_to(tape.initial_bids, tape.initial_asks, tape.initial_id, now_ns)

    def _apply(self, delta: BookDelta) -> list[ExecReport]:
        self.book.apply_delta(delta)
        venue = self.venue
        if venue.has_orders:
            return venue.advance(delta.ts_local_ns) + venue.on_depth(delta)
        return []

    def _count_trade(self, trade: Trade) -> None:
        p = trade.price_ticks
        self.last_trade_id = trade.trade_id
        if self.open_ticks is None:
            self.open_ticks = self.high_ticks = self.low_ticks = p
        self.high_ticks = max(self.high_ticks, p)
        self.low_ticks = min(self.low_ticks, p)
        self.last_price_ticks = p
        self.volume_lots += trade.qty_lots
        self.quote_volume += self.instrument.notional(p, trade.qty_lots)
        self.trade_count += 1

    # --- REST views ---------------------------------------------------------------------
    def depth(self, limit: int) -> dict[str, Any]:
        inst = self.instrument
        return {
            "lastUpdateId": self.book.last_update_id,
            "bids": [[fmt_price(inst, p), fmt_qty(inst, q)] for p, q in self.book.top_bids(limit)],
            "asks": [[fmt_price(inst, p), fmt_qty(inst, q)] for p, q in self.book.top_asks(limit)],
        }

    def ticker_24h(self, now_ms: int) -> dict[str, Any]:
        inst = self.instrument
        bid = self.book.best_bid()
        ask = self.book.best_ask()
        last = self.last_price_ticks or bid or 0
        opened = self.open_ticks or last
        change = inst.price(last) - inst.price(opened)
        pct = (change / inst.price(opened) * 100) if opened else Decimal(0)
        return {
            "symbol": self.venue_symbol,
            "priceChange": f"{change:.8f}",
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": fmt_price(inst, last),
            "prevClosePrice": fmt_price(inst, opened),
            "lastPrice": fmt_price(inst, last),
            "lastQty": "0.00000000",
            "bidPrice": fmt_price(inst, bid or 0),
            "bidQty": fmt_qty(inst, self.book.bid_qty(bid) if bid else 0),
            "askPrice": fmt_price(inst, ask or 0),
            "askQty": fmt_qty(inst, self.book.ask_qty(ask) if ask else 0),
            "openPrice": fmt_price(inst, opened),
            "highPrice": fmt_price(inst, self.high_ticks or last),
            "lowPrice": fmt_price(inst, self.low_ticks or last),
            "volume": fmt_qty(inst, self.volume_lots),
            "quoteVolume": f"{self.quote_volume:.8f}",
            "openTime": now_ms - 86_400_000,
            "closeTime": now_ms,
            "firstId": max(self.last_trade_id - self.trade_count + 1, 0),
            "lastId": self.last_trade_id,
            "count": self.trade_count,
        }

    def mini_ticker(self, now_ms: int) -> dict[str, Any]:
        t = self.ticker_24h(now_ms)
        return {
            "e": "24hrMiniTicker", "E": now_ms, "s": self.venue_symbol, "c": t["lastPrice"], "o": t["openPrice"],
            "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"],
        }

    def exchange_info_entry(self) -> dict[str, Any]:
        inst = self.instrument
        return {
            "symbol": self.venue_symbol,
            "status": "TRADING",
            "baseAsset": inst.base,
            "baseAssetPrecision": 8,
            "quoteAsset": inst.quote_ccy,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": False,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": f"{inst.tick_size:.8f}", "maxPrice": "1000000.00000000",
                 "tickSize": f"{inst.tick_size:.8f}"},
                {"filterType": "LOT_SIZE", "minQty": f"{inst.step_size:.8f}", "maxQty": "9000.00000000",
                 "stepSize": f"{inst.step_size:.8f}"},
                {"filterType": "NOTIONAL", "minNotional": f"{inst.min_notional:.8f}", "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
