"""Build the engine, venue and session from settings (the composition root)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

from mmbot.app.settings import BUILTIN_MODELS, Settings
from mmbot.domain.instrument import Instrument
from mmbot.engine.engine import Engine, EngineConfig
from mmbot.engine.session import Fault, ReplaySession
from mmbot.errors import ConfigError, DataMismatch
from mmbot.marketdata.book import L2Book
from mmbot.marketdata.capture import DEFAULT_MAX_CLOCK_JUMP_NS, CaptureInfo, check_instrument_grid, scan_capture
from mmbot.marketdata.validate import MarketDataValidator, ValidationRules
from mmbot.plugins import build_plugin
from mmbot.risk.gate import GlobalLimit, RiskConfig, RiskGate
from mmbot.sim.venue import FillModel, LatencyModel, SimVenue, VenueConfig
from mmbot.sim.wallet import Wallet
from mmbot.strategy import composed as c
from mmbot.strategy.adverse import AdverseSelectionParams
from mmbot.strategy.breakeven import settings_breakeven_bps
from mmbot.strategy.hedge import HedgeParams
from mmbot.strategy.ladder import LadderLevel
from mmbot.strategy.model import QuoteModel

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
    """The instrument of ``symbol`` (default: the first configured) with the config's rules."""
    i = settings.instrument
    try:
        return Instrument.from_symbol(
            symbol or settings.symbols[0], tick_size=i.tick_size, step_size=i.step_size, min_notional=i.min_notional
        )
    except ValueError as exc:  # rules the domain type refuses: a config error (exit 2), not our bug
        raise ConfigError(f"instrument: {exc}") from exc


VENUE_KINDS = {"spot": "spot", "usdm": "Binance USD-M futures", "coinm": "Binance COIN-M futures"}


def replay_instrument(settings: Settings, paths: list[str], info: CaptureInfo | None = None) -> Instrument:
    """The one instrument a replay trades, checked against what the capture holds.

    The capture names its symbols and venue kind (mmbot.marketdata.capture.scan_capture):
    a futures capture is refused (it must never be replayed with the spot sync rule), and
    the data's symbols must be exactly the configured ones; else DataMismatch (exit 2)
    naming both. Rules: the capture's metadata file (``mmbot record``) for that symbol,
    else the config; the tick and step must fit the data's prices and trade sizes.
    """
    info = info if info is not None else scan_capture(paths)
    kind = info.kind
    if kind != "spot":
        raise DataMismatch(
            f"{paths[0]} is a {VENUE_KINDS.get(kind, kind)} capture (its depth diffs chain by `pu`): this build replays spot "
            "captures only, and a futures capture is never replayed with the spot sync rule"
        )
    configured = {sym.replace("/", "").upper(): sym for sym in settings.symbols}
    held = info.held_symbols()
    if held:
        extra = [h for h in held if h not in configured]
        missing = [sym for venue, sym in configured.items() if venue not in held]
        if extra or missing:
            parts = []
            if extra:
                parts.append(f"the data holds {', '.join(extra)}, which is not configured")
            if missing:
                parts.append(f"the configured {', '.join(missing)} is not in the data")
            raise DataMismatch(
                f"capture {', '.join(paths)}: {'; '.join(parts)} (the data holds {', '.join(held)}; symbols: "
                f"{', '.join(settings.symbols)}). Set symbols to what the capture holds, or replay another capture"
            )
    if len(settings.symbols) > 1:
        raise ConfigError(f"a replay trades one symbol; symbols lists {len(settings.symbols)} ({', '.join(settings.symbols)})")
    symbol = settings.symbols[0]
    instrument = build_instrument(settings, symbol)
    meta = (info.metadata or {}).get("instruments", {}).get(symbol) if isinstance(info.metadata, dict) else None
    if isinstance(meta, dict):
        try:
            instrument = Instrument.from_symbol(
                symbol,
                tick_size=str(meta.get("tick_size", instrument.tick_size)),
                step_size=str(meta.get("step_size", instrument.step_size)),
                min_notional=str(meta.get("min_notional", instrument.min_notional)),
            )
        except (ValueError, ArithmeticError) as exc:
            raise DataMismatch(f"capture metadata of {paths[0]}: bad instrument rules for {symbol}: {exc}") from exc
    check_instrument_grid(info, instrument)
    return instrument


def validation_rules(settings: Settings) -> ValidationRules:
    d = settings.data
    return ValidationRules(
        max_update_id_jump=d.max_update_id_jump,
        max_ticker_deviation_bps=d.max_ticker_deviation_bps,
        max_trade_deviation_bps=d.max_trade_deviation_bps,
    )


def max_clock_jump_ns(settings: Settings) -> int:
    return int(settings.data.max_clock_jump_s * 1_000_000_000)


def lots(instrument: Instrument, qty: float) -> int:
    value = instrument.to_lots(Decimal(str(qty)))
    if value <= 0:
        raise ConfigError(f"size {qty} is below the step size {instrument.step_size}")
    return value


def build_model(settings: Settings, instrument: Instrument) -> QuoteModel:
    """The composed quoting model of ``strategy.model`` with its switched-on modifiers, or a plugin."""
    s = settings.strategy
    if s.model not in BUILTIN_MODELS:
        return build_plugin(s.model, s.params, instrument)  # mmbot/plugins.py
    if s.params:
        raise ConfigError(f"strategy.params {sorted(s.params)}: only a plugin model takes params (strategy.model is {s.model!r})")
    floor = 0.0 if s.allow_below_breakeven else settings_breakeven_bps(settings)
    if s.model != "simple":
        floor = max(floor, s.spread_bps)  # spread_bps is the AS/GLFT minimum spread
    v, im, a, h = s.volatility, s.imbalance, s.adverse_selection, s.hedge
    if h.enabled and h.instrument not in (None, instrument.symbol):
        raise ConfigError(
            f"strategy.hedge.instrument {h.instrument!r}: only the quoted book ({instrument.symbol}) can be hedged on "
            "in this build (set it to null: a taker fill at our own book's touch)"
        )
    try:
        params = c.ComposedParams(
            model=s.model,  # type: ignore[arg-type]  # one of BUILTIN_MODELS, checked above
            spread_bps=s.spread_bps,
            order_size_lots=lots(instrument, s.order_size),
            max_inventory_lots=lots(instrument, s.max_inventory),
            skew_factor=s.skew_factor,
            min_spread_bps=floor,
            cross_policy=s.cross_policy,
            ladder=tuple(LadderLevel(offset_bps=lv.offset_bps, size=float(lots(instrument, lv.size))) for lv in s.ladder),
            volatility=c.VolatilityParams(
                half_life_s=v.half_life_s, long_half_life_s=v.long_half_life_s, min_multiplier=v.min_multiplier, max_multiplier=v.max_multiplier
            ) if v.enabled else None,
            imbalance=c.ImbalanceParams(
                levels=im.levels, within_bps=im.within_bps, threshold=im.threshold, adjust_fraction=im.adjust_fraction
            ) if im.enabled else None,
            adverse_selection=AdverseSelectionParams(
                size_multiple=a.size_multiple, notional_threshold=a.notional_threshold, move_bps=a.move_bps,
                move_window_ms=a.move_window_ms, cooldown_ms=a.cooldown_ms, widen_multiplier=a.widen_multiplier,
                widen_for_ms=a.widen_for_ms,
            ) if a.enabled else None,
            avellaneda=c.AvellanedaParams(
                gamma=s.avellaneda.gamma, k=s.avellaneda.k, sigma=s.avellaneda.sigma, horizon_s=s.avellaneda.horizon_s,
                variant=s.avellaneda.variant, warmup_s=s.avellaneda.warmup_s,
            ),
            glft=c.GlftParams(gamma=s.glft.gamma, xi=s.glft.xi, A=s.glft.A, k=s.glft.k, sigma=s.glft.sigma, warmup_s=s.glft.warmup_s),
            hedge=HedgeParams(
                threshold_lots=instrument.to_lots(Decimal(str(h.threshold))),
                target_lots=instrument.to_lots(Decimal(str(h.target))) if h.target >= 0 else -instrument.to_lots(Decimal(str(-h.target))),
                cooldown_ms=h.cooldown_ms,
            ) if h.enabled else None,
        )
    except ValueError as exc:
        raise ConfigError(f"strategy: {exc}") from exc
    return c.ComposedModel(params, instrument)


def build_global_limit(settings: Settings) -> GlobalLimit | None:
    """One object shared by every symbol's gate in the process (None = no global limit)."""
    limit = settings.risk.global_max_inventory_notional
    return None if limit is None else GlobalLimit(limit)


def build_risk_config(settings: Settings, instrument: Instrument) -> RiskConfig:
    """The symbol's limits: the risk section, overridden by risk.symbols[SYMBOL]."""
    r = settings.risk
    own = r.symbols.get(instrument.symbol)
    max_inventory = own.max_inventory if own is not None and own.max_inventory is not None else settings.strategy.max_inventory
    return RiskConfig(
        max_inventory_lots=lots(instrument, max_inventory),
        max_order_notional=own.max_order_notional if own is not None and own.max_order_notional is not None else r.max_order_notional,
        max_open_orders=own.max_open_orders if own is not None and own.max_open_orders is not None else r.max_open_orders,
        price_band_bps=r.price_band_bps,
        max_orders_per_second=r.max_orders_per_second,
        max_orders_per_minute=r.max_orders_per_minute,
        max_drawdown=r.max_drawdown,
        daily_loss_limit=r.daily_loss_limit,
        calm_period_ms=r.calm_period_ms,
        reject_storm_count=r.reject_storm_count,
        reject_storm_window_ms=r.reject_storm_window_ms,
    )


def build_gate(settings: Settings, instrument: Instrument, global_limit: GlobalLimit | None = None) -> RiskGate:
    """Pass the same ``global_limit`` to the gate of every symbol run in one process."""
    if global_limit is None:
        global_limit = build_global_limit(settings)
    return RiskGate(build_risk_config(settings, instrument), instrument, global_limit=global_limit)


def order_prefix(settings: Settings, run_id: str) -> str:
    """Client order id prefix: stable per account, unique per run (see CcxtExecutor)."""
    from mmbot.execution.ccxt_executor import run_order_prefix  # ccxt: only for sandbox/live order prefixes

    return run_order_prefix(settings.audit.account, run_id, os.getpid())


def coid_prefix(settings: Settings, run_id: str, instrument: Instrument) -> str:
    """Client order ids, one scheme in every mode: ``<account><run>-<base>-<sequence hex>``.

    The account part lets a restart find its own orders at the venue, the run part keeps
    runs apart, the base keeps symbols of one account apart; [A-Za-z0-9_-], <= 36 chars.
    """
    base = re.sub(r"[^a-z0-9]", "", instrument.base.lower())[:6]
    return f"{order_prefix(settings, run_id)}{base}-"


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


def build_engine(settings: Settings, instrument: Instrument, coid_prefix: str, global_limit: GlobalLimit | None = None) -> Engine:
    """The one construction of an engine (every mode): model, risk gate and its own L2 book,
    which is not believed when crossed (it resyncs, mmbot.marketdata.book)."""
    engine = Engine(
        instrument,
        L2Book(instrument.symbol, on_crossed="resync"),
        build_model(settings, instrument),
        build_gate(settings, instrument, global_limit),
        EngineConfig(
            min_requote_interval_ms=settings.strategy.min_requote_interval_ms,
            update_every_n=settings.strategy.update_freq,
            stale_book_ms=settings.risk.stale_book_ms,
            feed_silent_ms=settings.risk.feed_silent_ms,
            coid_prefix=coid_prefix,
            requote_tolerance_ticks=settings.strategy.requote_tolerance_ticks,
        ),
    )
    engine.record_decisions = settings.audit.enabled and settings.audit.record_decisions
    return engine


def build_wallet(settings: Settings) -> Wallet:
    """The paper account (``paper.balances``); share one between the venues of one run."""
    return Wallet(settings.paper.balances)


def wallet_fields(wallet: Wallet | None) -> dict[str, dict[str, str]]:
    """The summary's ``balances_start`` / ``balances_end`` (asset -> decimal string)."""
    if wallet is None:
        return {}
    return {"balances_start": wallet.balances_start(), "balances_end": wallet.balances_end()}


@dataclass
class Built:
    instrument: Instrument
    engine: Engine
    venue: SimVenue
    session: ReplaySession
    max_clock_jump_ns: int = DEFAULT_MAX_CLOCK_JUMP_NS  # the reader's time rule (data.max_clock_jump_s)


def build_replay(
    settings: Settings,
    run_id: str,
    faults: tuple[Fault, ...] = (),
    symbol: str | None = None,
    instrument: Instrument | None = None,
    *,
    global_limit: GlobalLimit | None = None,
    wallet: Wallet | None = None,
) -> Built:
    """The paper kernel of every paper mode: engine, simulated venue and the session that
    steps them, for a replayed capture (backtest, ``mmbot run``) and a live feed alike
    (the live runner steps it with the feed's events at their wall-clock receive times).
    ``global_limit`` and ``wallet`` are shared by every symbol of one run."""
    instrument = instrument if instrument is not None else build_instrument(settings, symbol)
    # The venue's book is the exchange's true book: stale levels that cross it heal.
    venue_book = L2Book(instrument.symbol, on_crossed="heal")
    # The engine always keeps its own book: a sequence gap or a crossed book in the data
    # must take the live recovery path (snapshot request).
    engine = build_engine(
        settings, instrument, coid_prefix(settings, run_id, instrument), global_limit
    )
    venue = SimVenue(instrument, venue_book, venue_config(settings), wallet if wallet is not None else build_wallet(settings))
    session = ReplaySession(
        engine,
        venue,
        md_latency_ms=settings.sim.md_latency_ms,
        rest_latency_ms=settings.sim.rest_latency_ms,
        timer_interval_ms=settings.run.timer_interval_ms,
        faults=faults,
        validator=MarketDataValidator(validation_rules(settings)),
    )
    return Built(instrument=instrument, engine=engine, venue=venue, session=session, max_clock_jump_ns=max_clock_jump_ns(settings))
