"""Build the engine, venue and session from settings (the composition root)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

from mmbot.app.settings import Settings
from mmbot.domain.instrument import Instrument
from mmbot.engine.engine import Engine, EngineConfig
from mmbot.engine.session import Fault, ReplaySession
from mmbot.errors import ConfigError
from mmbot.marketdata.book import L2Book
from mmbot.risk.gate import RiskConfig, RiskGate
from mmbot.sim.venue import FillModel, LatencyModel, SimVenue, VenueConfig
from mmbot.strategy.model import QuoteModel
from mmbot.strategy.seed_model import SeedModel

BUNDLED_CAPTURE = ("btcusdt_20240808.gz", "btcusdt_20240809.gz")
BUNDLED_BARS = "binance_spot_BTC_USDT-1m_2023-04-05_2023-05-05.json.gz"


def bundled_data_path(name: str) -> Path:
    return Path(str(resources.files("mmbot.data").joinpath(name)))


def capture_paths(settings: Settings, override: list[str] | None = None) -> list[str]:
    if override:
        return list(override)
    if settings.data.path:
        return list(settings.data.path)
    return [str(bundled_data_path(name)) for name in BUNDLED_CAPTURE]


def build_instrument(settings: Settings, symbol: str | None = None) -> Instrument:
    i = settings.instrument
    return Instrument.from_symbol(
        symbol or i.symbol, tick_size=i.tick_size, step_size=i.step_size, min_notional=i.min_notional
    )


def lots(instrument: Instrument, qty: float) -> int:
    value = instrument.to_lots(Decimal(str(qty)))
    if value <= 0:
        raise ConfigError(f"size {qty} is below the step size {instrument.step_size}")
    return value


def build_model(settings: Settings, instrument: Instrument) -> QuoteModel:
    s = settings.strategy
    return SeedModel(
        spread_bps=s.spread_bps,
        order_size_lots=lots(instrument, s.order_size),
        max_inventory_lots=lots(instrument, s.max_inventory),
        skew_factor=s.skew_factor,
    )


def build_gate(settings: Settings, instrument: Instrument) -> RiskGate:
    r = settings.risk
    return RiskGate(
        RiskConfig(
            max_inventory_lots=lots(instrument, settings.strategy.max_inventory),
            max_order_notional=r.max_order_notional,
            max_open_orders=r.max_open_orders,
            price_band_bps=r.price_band_bps,
            max_orders_per_second=r.max_orders_per_second,
            max_orders_per_minute=r.max_orders_per_minute,
            max_drawdown=r.max_drawdown,
            daily_loss_limit=r.daily_loss_limit,
            calm_period_ms=r.calm_period_ms,
            reject_storm_count=r.reject_storm_count,
            reject_storm_window_ms=r.reject_storm_window_ms,
        ),
        instrument,
    )


def order_prefix(settings: Settings, run_id: str) -> str:
    """Client order id prefix: stable per account, unique per run (see CcxtExecutor)."""
    import os

    from mmbot.execution.ccxt_executor import run_order_prefix

    return run_order_prefix(settings.audit.account, run_id, os.getpid())


def venue_config(settings: Settings) -> VenueConfig:
    s = settings.sim
    return VenueConfig(
        fill_model=FillModel(s.fill_model),
        prob_power=s.prob_power,
        entry_latency_ms=s.entry_latency_ms,
        cancel_latency_ms=s.cancel_latency_ms,
        latency_model=LatencyModel(s.latency_model),
        latency_jitter_ms=s.latency_jitter_ms,
        maker_fee_bps=settings.fees.maker_fee_bps,
        taker_fee_bps=settings.fees.taker_fee_bps,
        seed=s.seed,
    )


@dataclass
class Built:
    instrument: Instrument
    engine: Engine
    venue: SimVenue
    session: ReplaySession


def build_replay(settings: Settings, run_id: str, faults: tuple[Fault, ...] = (), symbol: str | None = None) -> Built:
    instrument = build_instrument(settings, symbol)
    venue_book = L2Book(instrument.symbol)
    # The engine always keeps its own book: the venue's is the exchange's true book,
    # and a sequence gap in the data must take the live recovery path (snapshot request).
    engine_book = L2Book(instrument.symbol)
    engine = Engine(
        instrument,
        engine_book,
        build_model(settings, instrument),
        build_gate(settings, instrument),
        EngineConfig(
            min_requote_interval_ms=settings.strategy.min_requote_interval_ms,
            update_every_n=settings.strategy.update_freq,
            stale_book_ms=settings.risk.stale_book_ms,
            coid_prefix=order_prefix(settings, run_id),
            requote_tolerance_ticks=settings.strategy.requote_tolerance_ticks,
        ),
    )
    engine.record_decisions = settings.audit.enabled and settings.audit.record_decisions
    venue = SimVenue(instrument, venue_book, venue_config(settings))
    session = ReplaySession(
        engine,
        venue,
        md_latency_ms=settings.sim.md_latency_ms,
        rest_latency_ms=settings.sim.rest_latency_ms,
        timer_interval_ms=settings.run.timer_interval_ms,
        faults=faults,
    )
    return Built(instrument=instrument, engine=engine, venue=venue, session=session)
