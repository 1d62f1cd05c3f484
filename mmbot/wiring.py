"""The composition root: the only code that builds a run from the settings and the mode.

It picks the node's ports (:mod:`mmbot.runtime.ports`): the market source (a replayed
capture or a live feed through ccxt.pro), the execution venue (the simulated venue,
one kernel per symbol, or the exchange through ccxt) and the clock, and it builds the
engines, executors and observers (journal, metrics, run record, fill log, admin
endpoint). Client order ids have one scheme (:func:`coid_prefix`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import SecretStr

from mmbot import __version__, strict_yaml
from mmbot.config.settings import BUILTIN_MODELS, Settings, config_hash
from mmbot.domain.engine_events import FillBooked
from mmbot.domain.instrument import Instrument, symbol_kind
from mmbot.engine.engine import Engine, EngineConfig
from mmbot.engine.hedging import HedgeLink
from mmbot.engine.session import Fault, ReplaySession
from mmbot.errors import ConfigError, DataMismatch
from mmbot.marketdata.book import L2Book, sync_rule_for
from mmbot.marketdata.capture import CaptureInfo, check_instrument_grid, scan_capture
from mmbot.marketdata.validate import MarketDataValidator, ValidationRules
from mmbot.observability.logging import register_secret
from mmbot.plugins import build_plugin
from mmbot.portfolio.funding import FundingSchedule
from mmbot.portfolio.margin import MarginParams
from mmbot.risk.gate import GlobalLimit, RiskConfig, RiskGate
from mmbot.runtime.fill_log import FillLog
from mmbot.runtime.node import Node
from mmbot.runtime.ports import Clock, WallClock
from mmbot.runtime.record import make_recorder
from mmbot.runtime.run_file import RunFile
from mmbot.runtime.simulated import Kernel, SimExecution, SimLane
from mmbot.runtime.sources import DecodedCapture, LiveSource, ReplaySource
from mmbot.runtime.views import OperatorViews
from mmbot.sim.venue import FillModel, LatencyModel, SimVenue, VenueConfig
from mmbot.sim.wallet import Wallet
from mmbot.strategy import composed as c
from mmbot.strategy.adverse import AdverseSelectionParams
from mmbot.strategy.breakeven import breakeven_flags, settings_breakeven_bps
from mmbot.strategy.hedge import HedgeOnlyModel, HedgeParams
from mmbot.strategy.ladder import LadderLevel
from mmbot.strategy.model import QuoteModel

BUNDLED_CAPTURE = ("btcusdt_20240808.gz", "btcusdt_20240809.gz")
# The bundled futures captures (cut copies, mmbot/data/PROVENANCE.md section 3), by instrument kind.
BUNDLED_FUTURES_CAPTURES = {
    "linear_perp": ("usdm_btcusdt_20240808_head.gz",),
    "inverse_perp": ("coinm_btcusd_perp_20240808.gz", "coinm_btcusd_perp_20240809_head.gz"),
}
BUNDLED_BARS = "binance_spot_BTC_USDT-1m_2023-04-05_2023-05-05.json.gz"


def bundled_data_path(name: str) -> Path:
    return Path(str(resources.files("mmbot.data").joinpath(name)))


def refuse_unbuilt_futures(settings: Settings, where: str) -> None:
    """Perpetuals run in paper replays only in this build (docs/futures.md, "Not yet done"):
    live futures data, futures sandbox/live trading and the emulator's fapi/dapi are not
    built, so a perpetual symbol there is a config error (exit 2), never a spot-rule run."""
    perps = [sym for sym in settings.symbols if _kind_or_spot(sym) != "spot"]
    if perps:
        raise ConfigError(
            f"symbols {', '.join(perps)}: perpetual futures run in paper replays only in this build "
            f"(mmbot backtest / mmbot run on a capture); {where} is not built for them yet"
        )


def _kind_or_spot(symbol: str) -> str:
    try:
        return symbol_kind(symbol)
    except ValueError:
        return "spot"  # a bad symbol is reported where the instrument is built


def capture_paths(settings: Settings, override: list[str] | None = None) -> list[str]:
    if override:
        return list(override)
    if settings.data.path:
        return list(settings.data.path)
    kind = _kind_or_spot(settings.symbols[0])
    if settings.strategy.hedge.enabled and settings.strategy.hedge.instrument not in (None, settings.symbols[0]):
        # A hedged replay: the quoted spot book's first file and the hedge perpetual's (the same minutes).
        hedge_kind = _kind_or_spot(settings.strategy.hedge.instrument)
        names = (BUNDLED_CAPTURE[0], *BUNDLED_FUTURES_CAPTURES.get(hedge_kind, ()))
        return [str(bundled_data_path(name)) for name in names]
    return [str(bundled_data_path(name)) for name in BUNDLED_FUTURES_CAPTURES.get(kind, BUNDLED_CAPTURE)]


def build_instrument(settings: Settings, symbol: str | None = None) -> Instrument:
    """The instrument of ``symbol`` (default: the first configured) with the config's rules."""
    i = settings.instrument
    symbol = symbol or settings.symbols[0]
    own = i.symbols.get(symbol)

    def rule(name: str) -> Any:
        value = getattr(own, name) if own is not None else None
        return value if value is not None else getattr(i, name)

    try:
        return Instrument.from_symbol(
            symbol, tick_size=rule("tick_size"), step_size=rule("step_size"), min_notional=rule("min_notional"),
            contract_size=rule("contract_size"),
        )
    except ValueError as exc:  # rules the domain type refuses: a config error (exit 2), not our bug
        raise ConfigError(f"instrument: {exc}") from exc


VENUE_KINDS = {"spot": "spot", "usdm": "Binance USD-M futures", "coinm": "Binance COIN-M futures"}
# The capture's venue kind each instrument kind replays (its book's sync rule follows the kind).
KIND_VENUE = {"spot": "spot", "linear_perp": "usdm", "inverse_perp": "coinm"}


def replay_instrument(settings: Settings, paths: list[str], info: CaptureInfo | None = None) -> Instrument:
    """The one instrument a replay trades, checked against what the capture holds.

    The capture names its symbols and venue kind (mmbot.marketdata.capture.scan_capture),
    which must be the configured instrument's: a spot symbol (``BTC/USDT``) replays a spot
    capture, a linear perpetual (``BTC/USDT:USDT``) a USD-M one, an inverse perpetual
    (``BTC/USD:BTC``) a COIN-M one. A futures capture is never replayed with the spot
    sync rule, nor a spot capture with the futures one. The data's symbols must be exactly
    the configured ones; else DataMismatch (exit 2) naming both. Rules: the capture's
    metadata file (``mmbot record``) for that symbol, else the config; the tick and step
    must fit the data's prices and trade sizes.
    """
    info = info if info is not None else scan_capture(paths)
    kind = info.kind
    wanted = [build_instrument(settings, sym) for sym in settings.symbols]
    for inst in wanted:
        expected = KIND_VENUE[inst.kind]
        if kind != expected:
            if kind != "spot" and inst.kind == "spot":
                raise DataMismatch(
                    f"{paths[0]} is a {VENUE_KINDS.get(kind, kind)} capture (its depth diffs chain by `pu`), but {inst.symbol} is "
                    f"spot: a futures capture is never replayed with the spot sync rule (configure the perpetual's ccxt symbol, "
                    f"{'BTC/USDT:USDT' if kind == 'usdm' else 'BTC/USD:BTC'} for BTC)"
                )
            raise DataMismatch(
                f"{paths[0]} is a {VENUE_KINDS.get(kind, kind)} capture, but {inst.symbol} is a {inst.kind} instrument "
                f"({VENUE_KINDS[expected]} data): the sync rules differ"
            )
    configured = {inst.venue_symbol: inst.symbol for inst in wanted}
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
                contract_size=str(meta.get("contract_size", instrument.contract_size)),
            )
        except (ValueError, ArithmeticError) as exc:
            raise DataMismatch(f"capture metadata of {paths[0]}: bad instrument rules for {symbol}: {exc}") from exc
    check_instrument_grid(info, instrument)
    return instrument


def hedge_symbol(settings: Settings) -> str | None:
    """The other instrument ``strategy.hedge.instrument`` names (None: no cross-instrument hedge).

    It must be one of ``symbols`` and not the quoted one (``symbols[0]``); else ConfigError.
    """
    h = settings.strategy.hedge
    quoted = settings.symbols[0]
    if not h.enabled or h.instrument in (None, quoted):
        return None
    if h.instrument not in settings.symbols:
        raise ConfigError(
            f"strategy.hedge.instrument {h.instrument!r} must be one of symbols ({', '.join(settings.symbols)}): the hedge "
            "instrument trades in the same account and process as the quoted one"
        )
    if len(settings.symbols) != 2:
        raise ConfigError(f"a hedged replay trades the quoted symbol and its hedge; symbols lists {len(settings.symbols)}")
    return h.instrument


def replay_groups(settings: Settings, paths: list[str]) -> list[tuple[Instrument, list[str]]]:
    """The quoted and the hedge instrument of a hedged replay, each with the capture files
    of its kind (scanned one by one: a spot file for ``BTC/USDT``, a USD-M one for
    ``BTC/USDT:USDT``), each checked as :func:`replay_instrument` checks a single one."""
    by_kind: dict[str, list[str]] = {}
    for path in paths:
        by_kind.setdefault(scan_capture([path]).kind, []).append(path)
    groups: list[tuple[Instrument, list[str]]] = []
    for symbol in settings.symbols:
        kind = KIND_VENUE[build_instrument(settings, symbol).kind]
        mine = by_kind.pop(kind, [])
        if not mine:
            raise DataMismatch(f"no {VENUE_KINDS[kind]} capture for {symbol} among {', '.join(paths)}")
        one = settings.model_copy(update={"symbols": [symbol]})
        groups.append((replay_instrument(one, mine), mine))
    if by_kind:
        extra = [p for ps in by_kind.values() for p in ps]
        raise DataMismatch(f"capture {', '.join(extra)} is of no configured symbol's kind ({', '.join(settings.symbols)})")
    return groups


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
        if h.instrument not in settings.symbols:
            raise ConfigError(
                f"strategy.hedge.instrument {h.instrument!r}: the hedge instrument must be one of symbols "
                f"({', '.join(settings.symbols)}), or null (a taker fill at the quoted book's own touch)"
            )
    elif h.enabled and h.instrument == instrument.symbol and instrument.symbol != settings.symbols[0]:
        return HedgeOnlyModel()  # the hedge instrument quotes nothing: it carries the quoted one's hedges
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
    delta = settings.risk.max_net_delta
    return None if limit is None and delta is None else GlobalLimit(limit, delta)


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
        margin_ratio_reducing=r.margin_ratio_reducing,
        margin_ratio_halt=r.margin_ratio_halt,
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
        L2Book(instrument.symbol, on_crossed="resync", sync=sync_rule_for(instrument.kind)),
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
    if instrument.is_perp:
        # The margin watchdog: paper collateral from paper.balances (a live account's would come from the venue).
        engine.margin_params = margin_params(settings)
        engine.collateral_start = settings.paper.balances.get(instrument.settle, Decimal(0))
    return engine


def build_wallet(settings: Settings) -> Wallet:
    """The paper account (``paper.balances``); share one between the venues of one run."""
    return Wallet(settings.paper.balances)


def margin_params(settings: Settings) -> MarginParams:
    f = settings.futures
    return MarginParams(leverage=f.leverage, margin_mode=f.margin_mode, maintenance_margin_rate=f.maintenance_margin_rate)


def wallet_fields(wallet: Wallet | None) -> dict[str, dict[str, str]]:
    """The summary's ``balances_start`` / ``balances_end`` (asset -> decimal string)."""
    if wallet is None:
        return {}
    return {"balances_start": wallet.balances_start(), "balances_end": wallet.balances_end()}


def build_replay(
    settings: Settings,
    run_id: str,
    faults: tuple[Fault, ...] = (),
    symbol: str | None = None,
    instrument: Instrument | None = None,
    *,
    global_limit: GlobalLimit | None = None,
    wallet: Wallet | None = None,
) -> Kernel:
    """The paper kernel of every paper mode: engine, simulated venue and the session that
    steps them, for a replayed capture (backtest, ``mmbot run``) and a live feed alike
    (the live runner steps it with the feed's events at their wall-clock receive times).
    ``global_limit`` and ``wallet`` are shared by every symbol of one run."""
    instrument = instrument if instrument is not None else build_instrument(settings, symbol)
    # The venue's book is the exchange's true book: stale levels that cross it heal.
    venue_book = L2Book(instrument.symbol, on_crossed="heal", sync=sync_rule_for(instrument.kind))
    # The engine always keeps its own book: a sequence gap or a crossed book in the data
    # must take the live recovery path (snapshot request).
    engine = build_engine(
        settings, instrument, coid_prefix(settings, run_id, instrument), global_limit
    )
    wallet = wallet if wallet is not None else build_wallet(settings)
    if instrument.is_perp:
        wallet.open_perp(instrument, margin_params(settings))  # the same wallet: margin of the settlement asset
    venue = SimVenue(instrument, venue_book, venue_config(settings), wallet)
    session = ReplaySession(
        engine,
        venue,
        md_latency_ms=settings.sim.md_latency_ms,
        rest_latency_ms=settings.sim.rest_latency_ms,
        timer_interval_ms=settings.run.timer_interval_ms,
        faults=faults,
        validator=MarketDataValidator(validation_rules(settings)),
        funding=FundingSchedule(settings.futures.funding_rate) if instrument.is_perp else None,
    )
    return Kernel(instrument=instrument, engine=engine, venue=venue, session=session, max_clock_jump_ns=max_clock_jump_ns(settings))


# --- secrets ----------------------------------------------------------------------------------------
def apply_secrets_file(settings: Settings) -> Settings:
    """Keys from ``exchange.secrets_file`` (YAML/JSON ``api_key``, ``secret``); the environment wins."""
    path = settings.exchange.secrets_file
    if not path:
        return settings
    p = Path(path)
    # Every scalar is read as the text written (strict_yaml.StringsLoader): YAML 1.1
    # would turn an unquoted `secret: 0123` into 83. A key written twice is an error.
    # No message quotes the file's contents (only the key and line numbers).
    try:
        data = strict_yaml.load(p.read_text(), strings_only=True)
    except strict_yaml.DuplicateKeyError as exc:
        raise ConfigError(f"exchange.secrets_file {p}: {exc}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"exchange.secrets_file {p} cannot be read: {type(exc).__name__}") from exc
    if not isinstance(data, dict) or not {"api_key", "secret"} <= set(data):
        raise ConfigError(f"exchange.secrets_file {p} must hold a mapping with api_key and secret")
    update: dict[str, Any] = {}
    for key in ("api_key", "secret"):
        register_secret(str(data[key]))
        if getattr(settings.exchange, key) is None:
            update[key] = SecretStr(str(data[key]))
    return settings.model_copy(update={"exchange": settings.exchange.model_copy(update=update)})


# --- the node of every mode ----------------------------------------------------------------------
def rebuild(settings: Settings, instrument: Instrument) -> tuple[QuoteModel, RiskConfig]:
    """A reload's model and limits for one engine (mmbot.runtime.controls)."""
    return build_model(settings, instrument), build_risk_config(settings, instrument)


def make_kernel_factory(settings: Settings, run_id: str, faults: tuple[Fault, ...], wallet: Wallet,
                        global_limit: GlobalLimit | None) -> Callable[[Instrument], Kernel]:
    def make(instrument: Instrument) -> Kernel:
        return build_replay(settings, run_id, faults, instrument=instrument, global_limit=global_limit, wallet=wallet)

    return make


def simulated_venue(settings: Settings, run_id: str, faults: tuple[Fault, ...], clock: Clock | None) -> SimExecution:
    """One wallet and one global limit for every symbol of the run (a shared quote asset is spent once)."""
    wallet = build_wallet(settings)
    return SimExecution(make_kernel_factory(settings, run_id, faults, wallet, build_global_limit(settings)), wallet,
                        settings.sim.fill_model, clock)


@dataclass
class RunRequest:
    """What the command line asks of a run."""

    paths: list[str] | None = None  # capture files (replays); None: live data
    mode_label: str | None = None  # the summary's mode (default: settings.mode)
    speed: float = 0.0
    loop: bool = False
    duration_s: float | None = None
    max_events: int | None = None
    faults: tuple[Fault, ...] = ()
    status: bool = False
    emit: Callable[[str], None] | None = None
    config_path: str | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)
    decoded: DecodedCapture | None = None  # the capture decoded once (the L2 optimiser's workers)
    inputs: list[Any] = field(default_factory=list)  # mmbot rerun: the recorded run's signals (runtime.sources.RecordedInput)


def build_node(settings: Settings, run_id: str, request: RunRequest, observers: ObserverRequest | None = None) -> Node:
    """The run's node: source, venue and clock picked from the settings and the mode.

    Replays (``request.paths``) open their lane (and ``observers``) at once; live
    sources open theirs when the node starts (markets loaded from the venue).
    """
    mode = request.mode_label or settings.mode
    common: dict[str, Any] = {
        "mode": mode, "rebuild": rebuild, "duration_s": request.duration_s, "status": request.status,
        "emit": request.emit, "config_path": request.config_path,
        # Every summary flags a spread below break-even (backtests run it; run refuses it unless allowed).
        "extra_fields": {**breakeven_flags(settings), **request.extra_fields},
    }  # fmt: skip
    if request.paths is not None:
        hedged = hedge_symbol(settings)
        groups = replay_groups(settings, request.paths) if hedged is not None else None
        instrument = groups[0][0] if groups else replay_instrument(settings, request.paths)
        source = ReplaySource(request.paths, instrument, speed=request.speed, loop=request.loop,
                              max_clock_jump_ns=max_clock_jump_ns(settings), max_events=request.max_events,
                              decoded=request.decoded, inputs=request.inputs, groups=groups)
        clock = ReplayClock()
        node = Node(settings, run_id, source=source, venue=simulated_venue(settings, run_id, request.faults, None),
                    clock=clock, **common)
        clock.node = node
        node.open_lanes({inst.symbol: inst for inst, _ in (groups or [(instrument, request.paths)])})
        if groups:
            connect_hedge(settings, node, groups[0][0].symbol, groups[1][0].symbol)
        if observers is not None:
            open_observers(node, observers)
        return node
    refuse_unbuilt_futures(settings, "live market data and sandbox/live trading")
    wall = WallClock()
    live = live_source(settings)
    if settings.mode == "paper":
        venue: Any = simulated_venue(settings, run_id, (), wall)
        venue.resync = live.request_resync
    else:
        venue = exchange_venue(settings, run_id, wall, live)
    node = Node(settings, run_id, source=live, venue=venue, clock=wall, **common)
    if settings.mode != "paper":
        venue.node = node  # the exchange venue publishes and journals through the node
    if observers is not None:
        node.open_observers = lambda n: open_observers(n, observers)
    return node


def connect_hedge(settings: Settings, node: Node, quoted: str, hedge: str) -> HedgeLink:
    """Join the quoted lane's engine to the hedge lane's (mmbot.engine.hedging): net-delta
    inventory, withdrawn side while a hedge is in flight, hedges sent as taker orders."""
    if settings.strategy.hedge.execution != "taker":
        raise ConfigError("strategy.hedge.execution: only taker hedges on another instrument are built (maker: not yet)")
    if settings.audit.enabled:
        raise ConfigError(
            "audit.enabled: a hedged replay (two instruments) keeps no journal in this build (the journal holds one "
            "instrument); set audit.enabled: false"
        )
    q_lane, h_lane = node.lanes[quoted], node.lanes[hedge]
    assert isinstance(h_lane, SimLane)
    session = h_lane.kernel.session
    link = HedgeLink(q_lane.engine, h_lane.engine, session.act)
    q_lane.engine.hedge_link = link

    def add_fields(summary: dict[str, Any]) -> None:
        mark_q, mark_h = link.quoted.mark_ticks(), link.hedge.mark_ticks()
        total = link.quoted.ledger.net_pnl_quote(mark_q) + link.hedge.ledger.net_pnl_quote(mark_h)
        summary["hedge"] = {**link.fields(), "net_pnl_total": f"{total:.8f}",
                            "max_abs_net_delta_base": format(link.max_abs_net_lots * link.quoted.instrument.qty_unit, "f")}

    node.on_finish.append(add_fields)
    return link


class ReplayClock:
    """Replay time: the capture's receive time of the last event (the first lane's session)."""

    def __init__(self) -> None:
        self.node: Node | None = None

    def now_ns(self) -> int:
        node = self.node
        return node.now_ns() if node is not None else 0


def exchange_params(settings: Settings) -> Any:
    from mmbot.adapters.ccxt.exchange import ExchangeParams  # ccxt: only for live data

    return ExchangeParams.from_settings(settings.exchange)


def live_source(settings: Settings) -> LiveSource:
    """Market data through ccxt.pro (every symbol of ``symbols``)."""
    from mmbot.marketdata.feeds.live import FeedConfig, LiveFeed  # ccxt: only for live data

    ex = settings.exchange
    config = FeedConfig(watch_timeout_s=ex.watch_timeout_s, reconnect_initial_s=ex.reconnect_initial_s,
                        reconnect_max_s=ex.reconnect_max_s, bids_asks=ex.watch_bids_asks)
    params = exchange_params(settings)
    name = ex.base_url or f"{ex.id}{' sandbox' if ex.sandbox else ''}"
    return LiveSource(lambda sink: LiveFeed(params, settings.symbols, config, sink), venue_name=name, exchange_id=ex.id,
                      close_timeout_s=settings.risk.shutdown_deadline_s)


def exchange_venue(settings: Settings, run_id: str, clock: Clock, source: LiveSource) -> Any:
    """Sandbox and live: one CcxtExecutor for every symbol, the engines built here."""
    from mmbot.adapters.ccxt.exchange import build_exchange  # ccxt: only for sandbox/live
    from mmbot.execution.budget import OrderBudget
    from mmbot.execution.ccxt_executor import CcxtExecutor, account_prefix
    from mmbot.runtime.exchange import ExchangeExecution, ExchangeLane, baseline_path

    ex = settings.exchange
    exchange = build_exchange(exchange_params(settings))
    executor = CcxtExecutor(
        exchange, {}, account_prefix=account_prefix(settings.audit.account), order_timeout_s=ex.timeout_s,
        watch_timeout_s=ex.watch_timeout_s, budget=OrderBudget(per_window=ex.order_weight_budget_per_10s),
        use_ws=ex.ws_orders, down_grace_s=ex.down_grace_s,
    )  # fmt: skip
    global_limit = build_global_limit(settings)

    def make_lane(instrument: Instrument) -> ExchangeLane:
        engine = build_engine(settings, instrument, coid_prefix(settings, run_id, instrument), global_limit)
        return ExchangeLane(instrument=instrument, engine=engine, validator=MarketDataValidator(validation_rules(settings)),
                            clock=clock, resync=source.request_resync)

    return ExchangeExecution(
        exchange, executor, make_lane=make_lane, clock=clock, exchange_id=ex.id, load_timeout_s=max(ex.timeout_s * 3, 10.0),
        reconcile_interval_s=ex.reconcile_interval_s, baseline_file=baseline_path(settings.audit.dir, settings.audit.account, ex.id),
        order_prefix=order_prefix(settings, run_id),
    )  # fmt: skip


# --- observers -------------------------------------------------------------------------------------
@dataclass
class ObserverRequest:
    fresh: bool = False  # --fresh: a new journal even after a crash
    force_resume: bool = False  # --resume: continue a crashed run's journal of another config/account
    record: bool | None = None  # the run record: None = record.enabled
    record_out: str | None = None
    write_record: bool = True  # False: sample the series for the summary's figures, write no files
    fills: bool = False  # the fill log (--fills-json)
    metrics: bool = True  # /metrics when metrics.enabled
    admin: bool = True  # the admin endpoint when admin.token is set
    journal: bool = True  # the audit journal when audit.enabled
    run_file: bool = True  # <run.dir>/<run_id>.pid and .json while the loop runs (mmbot ctl finds the daemon)


def journal_account(settings: Settings, node: Node) -> tuple[str, bool]:
    """(account, may resume): replays continue a crashed run's journal; everything else starts new."""
    if node.mode == "backtest":
        return "backtest", False
    if node.source.kind == "replay":
        return settings.audit.account, True
    if node.venue.kind == "simulated":
        return f"{settings.audit.account}-livefeed", False
    return f"{settings.audit.account}-{settings.mode}", False


def open_observers(node: Node, request: ObserverRequest) -> None:
    """Everything that watches the run, subscribed to the lanes' event buses.

    Order matters: the metrics port is bound first (a taken one exits 2 before a
    journal exists); the journal is opened (or continued) last.
    """
    settings = node.settings
    if request.metrics and settings.metrics.enabled:
        _open_metrics(node)
    record = settings.record.enabled if request.record is None else request.record
    if record or request.record_out:
        for lane in node.lanes.values():
            recorder = make_recorder(settings, lane.engine, queue_known=node.venue.kind == "simulated")
            lane.recorder = recorder
            node.recorders.append(recorder)
            node.buses[lane.instrument.symbol].subscribe_batch(recorder.on_events)
        node.record_out = request.record_out
        node.write_record = request.write_record
    if node.source.kind == "live" and settings.record.market_data:
        _open_market_recording(node, request)
    if request.fills:
        first = next(iter(node.lanes.values()))
        fill_log = FillLog(first.instrument)
        node.buses[first.instrument.symbol].subscribe_batch(fill_log.observe)
        node.fill_log = fill_log
    if request.admin:
        services = admin_services(node)
        if services:
            node.views = views = OperatorViews(lambda: node.engines, node.now_ns)
            for lane in node.lanes.values():
                node.buses[lane.instrument.symbol].subscribe(FillBooked, views.fill_observer(lane.instrument))
        node.services += services
    if request.run_file:
        node.run_file = RunFile(settings.run.dir, node.run_id)
    if request.journal and settings.audit.enabled:
        _open_journal(node, request)


def _open_market_recording(node: Node, request: ObserverRequest) -> None:
    """Every market event the live run receives, into its run record (mmbot.runtime.market_record)."""
    from mmbot.runtime.market_record import RECORDING_FILE, MarketRecording

    settings = node.settings
    directory = Path(request.record_out) if request.record_out else Path(settings.record.dir) / node.run_id
    try:
        node.market_recording = MarketRecording(
            directory / RECORDING_FILE, {s: lane.instrument for s, lane in node.lanes.items()},
            exchange=settings.exchange.id, mode=node.mode, run_id=node.run_id,
        )  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"record.dir: cannot write the market recording in {directory}: {exc}") from exc


def _open_metrics(node: Node) -> None:
    from mmbot.observability.metrics import Metrics  # prometheus_client: only when metrics.enabled
    from mmbot.observability.server import MetricsServer, bind_socket  # aiohttp: only when metrics.enabled

    settings = node.settings
    sock = bind_socket(settings.metrics.host, settings.metrics.port)  # a taken port: ConfigError, no journal yet
    metrics = Metrics(version=__version__, config_hash=config_hash(settings), mode=settings.mode)
    for symbol, lane in node.lanes.items():
        view = metrics.add_engine(lane.engine, last_event_wall=lambda: node.last_event_wall)

        def on_events(events: list[Any], view: Any = view) -> None:
            view.on_events(events, node.md_receipt_ns, node.step_done_ns)

        node.buses[symbol].subscribe_batch(on_events)
    balances = getattr(getattr(node.venue, "executor", None), "stream_balances", None)
    wallet = getattr(node.venue, "wallet", None)
    if balances is not None:
        metrics.venue_balances = lambda: node.venue.executor.stream_balances  # type: ignore[attr-defined]
    elif wallet is not None:  # every paper mode: the simulated wallet is the venue's account
        metrics.venue_balances = lambda: {asset: wallet.total(asset) for asset in wallet.free}

    def journal_records() -> int:
        journal = node.journal
        return int(journal.writer.written_records) if journal is not None else 0

    metrics.journal_sources.append(journal_records)
    server = MetricsServer(metrics, sock, ready_checks=node.ready_checks())
    node.metrics_server = server
    structlog.get_logger("mmbot.metrics").info("metrics_listening", port=server.port)
    node.services.append(server.run)


def admin_services(node: Node) -> list[Any]:
    """The admin endpoint for ``mmbot ctl`` when ``admin.token`` is set."""
    cfg = node.settings.admin
    if not cfg.enabled:
        return []
    if cfg.token is None or not cfg.token.get_secret_value():
        structlog.get_logger("mmbot.admin").info("admin_disabled", reason="no token", hint="set MMBOT_ADMIN__TOKEN to enable mmbot ctl")
        return []

    async def admin_task(node: Node) -> None:
        from mmbot.runtime.admin import serve  # aiohttp is slow to import: only when the endpoint starts

        await serve(node, node, on_listening=lambda port: node.announce(admin={"host": "127.0.0.1", "port": port}))

    return [admin_task]


def _open_journal(node: Node, request: ObserverRequest) -> None:
    from mmbot.audit.recovery import make_warm_up, restore  # the journal stack: only with audit.enabled
    from mmbot.runtime.journal import first_flush, open_run_journal

    settings = node.settings
    account, resume = journal_account(settings, node)
    sessions = {s: lane.session for s, lane in node.lanes.items() if isinstance(lane, SimLane) and node.source.kind == "replay"}
    journal, opened = open_run_journal(
        settings, node.run_id, account=account, mode=node.mode, data=node.source.describe(),
        engines={s: lane.engine for s, lane in node.lanes.items()}, sessions=sessions,
        on_failure=node.on_journal_failure, resume=resume, fresh=request.fresh, force_resume=request.force_resume,
    )  # fmt: skip
    start = node.venue.start_record()
    if start is not None:
        journal.note("reconcile", start, None)
    if node.market_recording is not None:
        journal.note("market_recording", node.market_recording.opened_record(), None)
    if opened.state is not None:
        lane = next(iter(node.lanes.values()))
        assert isinstance(lane, SimLane) and isinstance(node.source, ReplaySource)
        kernel = lane.kernel
        restored = restore(opened.state, kernel.engine, kernel.venue, kernel.session)
        # Events of restored sticky reasons stay queued: journaled after the recovery record.
        journal.writer.append("recovery", restored)
        node.source.resume_after_ns = restored["resume_after_ns"]
        node.source.warm_up = make_warm_up(kernel.engine, kernel.session)
        structlog.get_logger("mmbot.audit").warning(
            "journal_recovered", journal=str(journal.writer.directory), position=restored["position"], cash=restored["cash"],
            fills=restored["fills"], open_orders=len(restored["open_orders"]), dropped_orders=len(restored["dropped_orders"]),
            resume_after_ns=restored["resume_after_ns"],
        )  # fmt: skip
    first_flush(journal, opened.state is not None)
    node.journal = journal
    for symbol, bus in node.buses.items():
        recorder = journal.recorders[symbol]
        bus.subscribe_batch(recorder.observe, first=True)
    if node.mode != "backtest":
        node.services.append(lambda n: journal.run(n.stop))
