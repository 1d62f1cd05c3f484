"""nautilus_trader 1.221.0 running the benchmark's skewed market maker on the bundled capture.

Run inside .bench/venv-nautilus:  python benchmarks/peers/nautilus_mm.py --rounds 5

Conversion uses nautilus_trader's own Binance adapter schemas (the msgspec structs its
live Binance data client decodes websocket frames with), in Binance's sync order
(common.synced_lines): depth diffs ->
``BinanceOrderBookMsg.data.parse_to_order_book_deltas``, trades ->
``BinanceSpotTradeMsg.data.parse_to_trade_tick``, the REST snapshot ->
``BinanceDepth.parse_to_order_book_snapshot``; ``ts_init`` is the capture's receive time.
Book tickers are not used (the book is L2_MBP from the diffs, as in hftbacktest).
The converted objects stay in memory (pre-converted data; conversion timed apart).

Timed: ``conversion_s`` (once), and per round a fresh ``BacktestEngine`` (logging
bypassed) with the data added: ``engine.run()`` only (``run_s``), the figure the
events/s uses; ``setup_s`` (engine + venue + add_data sort) is reported next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from decimal import Decimal
from math import ceil, floor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datetime import timedelta

import common
import msgspec
import nautilus_trader
from nautilus_trader.adapters.binance.common.schemas.market import BinanceDepth, BinanceOrderBookMsg
from nautilus_trader.adapters.binance.spot.schemas.market import BinanceSpotTradeMsg
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AccountType, BookType, OmsType, OrderSide, TimeInForce
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy


def _instrument():
    """Binance spot BTCUSDT (nautilus' test instrument) at the wire's 8-decimal precision.

    Binance sends every price and size with 8 decimals and the adapter's parsers keep
    that precision, which nautilus' matching engine requires to equal the instrument's.
    """
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Price, Quantity

    base = TestInstrumentProvider.btcusdt_binance()
    return CurrencyPair(
        instrument_id=base.id, raw_symbol=base.raw_symbol, base_currency=BTC, quote_currency=USDT,
        price_precision=8, size_precision=8,
        price_increment=Price(1e-08, precision=8), size_increment=Quantity(1e-08, precision=8),
        lot_size=None, max_quantity=Quantity(9000, precision=8), min_quantity=Quantity(1e-05, precision=8),
        max_notional=None, min_notional=Money(5, USDT), max_price=Price(1000000, precision=8), min_price=Price(0.01, precision=8),
        margin_init=Decimal(0), margin_maint=Decimal(0), maker_fee=Decimal(0), taker_fee=Decimal(0), ts_event=0, ts_init=0,
    )


INSTRUMENT = _instrument()


def convert() -> list:
    depth = msgspec.json.Decoder(BinanceOrderBookMsg)
    trade = msgspec.json.Decoder(BinanceSpotTradeMsg)
    snap = msgspec.json.Decoder(BinanceDepth)
    iid = INSTRUMENT.id
    out: list = []
    for ts, msg in common.synced_lines():
        body = json.dumps(msg).encode()  # the peer's own decoder reads the raw frame
        stream = msg.get("stream", "")
        if "@depth" in stream:
            out.append(depth.decode(body).data.parse_to_order_book_deltas(iid, ts))
        elif "@trade" in stream:
            out.append(trade.decode(body).data.parse_to_trade_tick(iid, ts))
        elif "lastUpdateId" in msg:
            out.append(snap.decode(body).parse_to_order_book_snapshot(iid, ts))
    return out


class SkewedMMConfig(StrategyConfig, frozen=True):
    instrument_id: str = "BTCUSDT.BINANCE"


class SkewedMM(Strategy):
    def __init__(self, config: SkewedMMConfig) -> None:
        super().__init__(config)
        self.bid = None
        self.ask = None
        self.quotes = 0

    def on_start(self) -> None:
        self.subscribe_order_book_deltas(INSTRUMENT.id, book_type=BookType.L2_MBP)
        self.subscribe_trade_ticks(INSTRUMENT.id)
        self.clock.set_timer("requote", timedelta(milliseconds=100), callback=self.on_requote)

    def on_requote(self, event) -> None:
        book = self.cache.order_book(INSTRUMENT.id)
        if book is None:
            return
        bb = book.best_bid_price()
        ba = book.best_ask_price()
        if bb is None or ba is None or bb >= ba:
            return
        pos = float(self.portfolio.net_position(INSTRUMENT.id))
        mid = (bb.as_double() + ba.as_double()) / 2 / common.TICK
        skew = -common.SKEW_TICKS * pos / common.MAX_POSITION
        bid = floor(mid - common.HALF_SPREAD_TICKS + skew)
        ask = ceil(mid + common.HALF_SPREAD_TICKS + skew)
        self.bid = self._requote(self.bid, OrderSide.BUY, bid, pos < common.MAX_POSITION)
        self.ask = self._requote(self.ask, OrderSide.SELL, ask, pos > -common.MAX_POSITION)

    def _requote(self, order, side, ticks, allowed):
        if order is not None and order.is_open:
            if order.price.as_double() == round(ticks * common.TICK, 2) and allowed:
                return order
            if not order.is_pending_cancel:
                self.cancel_order(order)
            return None  # re-quoted on the next tick once cancelled
        if order is not None and not order.is_closed:
            return order  # in flight
        if not allowed:
            return None
        new = self.order_factory.limit(
            INSTRUMENT.id, side, INSTRUMENT.make_qty(common.ORDER_QTY), INSTRUMENT.make_price(ticks * common.TICK),
            time_in_force=TimeInForce.GTC, post_only=True,
        )
        self.submit_order(new)
        self.quotes += 1
        return new


def one_run(data: list) -> dict:
    clock = common.Clock()
    engine = BacktestEngine(config=BacktestEngineConfig(trader_id="BENCH-001", logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(
        venue=Venue("BINANCE"), oms_type=OmsType.NETTING, account_type=AccountType.CASH,
        starting_balances=[Money(1_000_000, USDT), Money(10, BTC)], book_type=BookType.L2_MBP,
    )
    engine.add_instrument(INSTRUMENT)
    # Book data and trades as two streams (nautilus merges them by ts_init; it looks
    # for book data per add_data call).
    engine.add_data([d for d in data if not isinstance(d, TradeTick)])
    engine.add_data([d for d in data if isinstance(d, TradeTick)])
    strategy = SkewedMM(SkewedMMConfig())
    engine.add_strategy(strategy)
    setup_s = clock.lap()
    engine.run()
    run_s = clock.lap()
    position = float(engine.portfolio.net_position(INSTRUMENT.id))
    engine.dispose()
    return {"setup_s": setup_s, "run_s": run_s, "quotes": strategy.quotes, "position": position}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    clock = common.Clock()
    data = convert()
    conversion_s = clock.lap()
    events = common.count_events()
    runs = [one_run(data) for _ in range(args.rounds)]
    med = statistics.median(r["run_s"] for r in runs)
    common.emit({
        "peer": "nautilus_trader",
        "version": nautilus_trader.__version__,
        "data_objects": len(data),
        "events": events,
        "conversion_s": round(conversion_s, 3),
        "run_s": [round(r["run_s"], 4) for r in runs],
        "setup_s": [round(r["setup_s"], 4) for r in runs],
        "events_per_s": events / med,
        "quotes": runs[0]["quotes"],
        "final_position": runs[0]["position"],
        "pid": os.getpid(),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
