"""Configuration: YAML file -> pydantic models -> environment overrides.

Models are frozen and reject unknown keys. Environment variables
``MMBOT_<SECTION>__<FIELD>`` (e.g. ``MMBOT_STRATEGY__SPREAD_BPS=3``) override the
file; values are parsed as YAML scalars. Secrets come only from the environment
(or a secrets file) and are redacted whenever the config is printed or journaled.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from mmbot.errors import ConfigError

ENV_PREFIX = "MMBOT_"
DEFAULT_CONFIG_NAME = "default.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InstrumentSettings(_Model):
    """Instrument rules for every configured symbol (``symbols`` names what is traded).

    Live and sandbox runs take tick, step and min notional from the exchange's markets
    (ccxt ``load_markets``); a replay takes them from the metadata file ``mmbot record``
    writes next to its capture, else from here. ``symbol`` is the old single-symbol
    spelling: unset, it is ``symbols[0]``; set alone, it is the one symbol; set together
    with ``symbols``, it must be ``symbols[0]`` (one source of truth for what is traded).
    """

    symbol: str = "BTC/USDT"
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal("5")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        if "/" not in v:
            raise ValueError(f"must look like BASE/QUOTE, was {v!r}")
        return v

    @field_validator("tick_size", "step_size")
    @classmethod
    def _positive(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError(f"must be > 0, was {v}")
        return v


class DataSettings(_Model):
    """Where market data comes from, and the thresholds of the market-data rules
    (mmbot.marketdata.validate, docs/market-data.md)."""

    source: Literal["replay", "live"] = "replay"
    path: list[str] = Field(default_factory=list, description="capture files; empty = the bundled BTCUSDT capture")
    bars_path: str | None = Field(default=None, description="OHLCV bars for bar backtests; None = bundled month")
    max_clock_jump_s: float = Field(
        default=10.0, gt=0, le=86_400,
        description="a receive-time step beyond this is checked against the next lines: an outlier line is dropped, a real jump re-syncs",
    )
    max_ticker_deviation_bps: float = Field(
        default=50.0, gt=0, le=10_000, description="a book ticker whose mid lies further from the depth book's mid is ignored"
    )
    max_trade_deviation_bps: float = Field(
        default=100.0, gt=0, le=10_000, description="a trade further from the depth book's mid is ignored"
    )
    max_update_id_jump: int = Field(
        default=1_000_000, gt=0, le=10**15, description="a diff whose u moves further than this past the last one is a gap, not a new baseline"
    )


class FeesSettings(_Model):
    maker_fee_bps: Decimal = Decimal("0")
    taker_fee_bps: Decimal = Decimal("1")
    slippage_bps: Decimal = Decimal("0")
    profit_bps: Decimal = Decimal("0.5")


class LadderLevel(_Model):
    offset_bps: float = Field(gt=0)
    size: float = Field(gt=0)


class VolatilitySettings(_Model):
    enabled: bool = False
    half_life_s: float = Field(default=30.0, gt=0)
    long_half_life_s: float = Field(default=600.0, gt=0)
    min_multiplier: float = Field(default=0.5, gt=0)
    max_multiplier: float = Field(default=3.0, gt=0)


class ImbalanceSettings(_Model):
    enabled: bool = False
    levels: int = Field(default=5, ge=1)
    within_bps: float | None = None
    threshold: float = Field(default=0.2, ge=0, le=1)
    adjust_fraction: float = Field(default=0.25, ge=0, le=1)


class AdverseSelectionSettings(_Model):
    enabled: bool = False
    size_multiple: float = Field(default=10.0, gt=0)
    notional_threshold: float | None = None
    move_bps: float = Field(default=5.0, gt=0)
    move_window_ms: float = Field(default=500.0, gt=0)
    cooldown_ms: float = Field(default=2000.0, ge=0)
    widen_multiplier: float = Field(default=2.0, ge=1)
    widen_for_ms: float = Field(default=5000.0, ge=0)


class AvellanedaSettings(_Model):
    gamma: float = Field(default=0.1, gt=0)
    k: float | None = Field(default=None, description="order arrival decay; None = estimate online")
    sigma: float | None = Field(default=None, description="volatility per sqrt(second) in price units; None = estimate")
    horizon_s: float = Field(default=60.0, gt=0, description="rolling horizon T-t for the 24/7 variant")
    variant: Literal["rolling", "infinite"] = Field(default="rolling", description="rolling horizon or the paper's infinite horizon")
    warmup_s: float = Field(default=30.0, ge=0)


class GlftSettings(_Model):
    gamma: float = Field(default=0.1, gt=0)
    xi: float | None = None
    A: float | None = None
    k: float | None = None
    sigma: float | None = Field(default=None, description="volatility per sqrt(second) in price units; None = estimate")
    warmup_s: float = Field(default=30.0, ge=0)


class HedgeSettings(_Model):
    enabled: bool = False
    threshold: float = Field(default=0.0, ge=0, description="base units; hedge when |inventory| exceeds it")
    target: float = 0.0
    instrument: str | None = Field(default=None, description="None = the quoted symbol's own book (taker at the touch)")
    cooldown_ms: float = Field(default=1000.0, ge=0, description="wait for the last hedge's fill before another")


class StrategySettings(_Model):
    model: Literal["simple", "avellaneda_stoikov", "glft"] = "simple"
    spread_bps: float = Field(default=20.0, gt=0)
    order_size: float = Field(default=1.0, gt=0, description="base units")
    max_inventory: float = Field(default=10.0, gt=0, description="base units")
    skew_factor: float = Field(default=0.001, ge=0)
    update_freq: int = Field(default=1, ge=1)
    min_requote_interval_ms: float = Field(default=100.0, ge=0)
    requote_tolerance_ticks: int = Field(default=0, ge=0)
    cross_policy: Literal["clamp", "allow"] = "clamp"
    allow_below_breakeven: bool = False
    ladder: list[LadderLevel] = Field(default_factory=list)
    volatility: VolatilitySettings = VolatilitySettings()
    imbalance: ImbalanceSettings = ImbalanceSettings()
    adverse_selection: AdverseSelectionSettings = AdverseSelectionSettings()
    avellaneda: AvellanedaSettings = AvellanedaSettings()
    glft: GlftSettings = GlftSettings()
    hedge: HedgeSettings = HedgeSettings()


class SimSettings(_Model):
    fill_model: Literal["touch", "risk_averse", "probabilistic"] = "risk_averse"
    prob_power: float = Field(default=2.0, gt=0)
    entry_latency_ms: float = Field(default=0.0, ge=0)
    cancel_latency_ms: float = Field(default=0.0, ge=0)
    md_latency_ms: float = Field(default=0.0, ge=0)
    rest_latency_ms: float = Field(default=50.0, ge=0)
    latency_model: Literal["constant", "uniform", "lognormal"] = "constant"
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    seed: int = 0


# Paper wallet defaults: they cover every shipped profile on the bundled capture
# (config/profiles/ladder.yaml rests 4.5 BTC a side and may hold 10 BTC, ~620,000
# USDT at ~61,800), so none of them is ever refused for balance.
PAPER_DEFAULT_BALANCES = {"USDT": Decimal("1000000"), "BTC": Decimal("15")}
PAPER_MAX_BALANCE = Decimal("1e12")


class PaperSettings(_Model):
    """The simulated wallet of every paper mode (backtest, replay, live paper; mmbot.sim.wallet).

    ``balances``: asset -> starting balance (any asset name; missing assets start at 0).
    The starting base balance is also the target holding: the engine's inventory is
    holding minus target (docs/simulation.md). Sandbox and live runs use the exchange's
    balances instead.
    """

    balances: dict[str, Decimal] = Field(
        default_factory=lambda: dict(PAPER_DEFAULT_BALANCES), description="asset -> starting balance (finite, >= 0)"
    )

    @field_validator("balances")
    @classmethod
    def _balances(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, amount in v.items():
            if not asset or asset != asset.strip():
                raise ValueError(f"asset names must be non-empty without spaces, was {asset!r}")
            if not amount.is_finite() or amount < 0 or amount > PAPER_MAX_BALANCE:
                raise ValueError(f"balance of {asset} must be finite, >= 0 and <= {PAPER_MAX_BALANCE:f}, was {amount}")
        return v


class SymbolRiskSettings(_Model):
    """Per-symbol overrides of the risk limits (unset = the section's value)."""

    max_inventory: float | None = Field(default=None, gt=0, description="base units; default strategy.max_inventory")
    max_order_notional: Decimal | None = Field(default=None, gt=0, description="quote currency")
    max_open_orders: int | None = Field(default=None, ge=1)


class RiskSettings(_Model):
    max_order_notional: Decimal = Decimal("100000")
    max_open_orders: int = Field(default=20, ge=1)
    price_band_bps: float = Field(default=100.0, gt=0)
    max_orders_per_second: int = Field(default=20, ge=1)
    max_orders_per_minute: int = Field(default=1200, ge=1)
    max_drawdown: Decimal = Decimal("5000")
    daily_loss_limit: Decimal = Decimal("5000")
    calm_period_ms: int = Field(default=1000, ge=0)
    stale_book_ms: float = Field(default=5000.0, gt=0)
    feed_silent_ms: float = Field(default=10000.0, gt=0)
    loop_lag_ms: float = Field(default=500.0, gt=0)
    reject_storm_count: int = Field(default=20, ge=1)
    reject_storm_window_ms: int = Field(default=10000, ge=1)
    kill_switch_file: str | None = Field(default=None, description="present = kill switch engaged (polled)")
    kill_switch_poll_ms: float = Field(default=250.0, gt=0)
    kill_confirm_timeout_s: float = Field(default=5.0, gt=0, description="wait this long for zero open orders")
    shutdown_deadline_s: float = Field(default=10.0, gt=0)
    deadman_ms: float = Field(default=5000.0, gt=0, description="DEAD_MAN when the quoting loop stops this long")
    wall_clock_watchdogs: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="LOOP_LAG/DEAD_MAN on wall-clock time; auto = on for live data, off for replays (measured only)",
    )
    global_max_inventory_notional: Decimal | None = Field(
        default=None, gt=0, description="quote currency, worst-case inventory summed over all symbols"
    )
    symbols: dict[str, SymbolRiskSettings] = Field(default_factory=dict, description="per-symbol limit overrides")

    @field_validator("wall_clock_watchdogs", mode="before")
    @classmethod
    def _on_off(cls, v: Any) -> Any:
        # YAML (and MMBOT_RISK__WALL_CLOCK_WATCHDOGS=off) reads on/off as booleans.
        if isinstance(v, bool):
            return "on" if v else "off"
        return v


class ExchangeSettings(_Model):
    id: str = "binance"
    sandbox: bool = True
    urls: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    watch_timeout_s: float = Field(default=10.0, gt=0)
    order_weight_budget_per_10s: int = Field(default=50, ge=1)
    # Live market data (mmbot.adapters.ccxt): a Binance-compatible host such as the
    # emulator (http://127.0.0.1:8765) rewrites every REST/ws/ws-api url to it.
    base_url: str | None = Field(default=None, description="Binance-compatible host; None = the exchange's own urls")
    keepalive_ms: int = Field(default=20000, ge=1000, description="ccxt ping/pong watchdog (streaming.keepAlive)")
    reconnect_initial_s: float = Field(default=0.2, gt=0, description="first reconnect delay; doubles, with jitter")
    reconnect_max_s: float = Field(default=10.0, gt=0)
    watch_bids_asks: bool = Field(default=True, description="also stream bookTicker (watch_bids_asks)")
    # Sandbox/live execution (mmbot.app.sandbox, docs/sandbox.md).
    secrets_file: str | None = Field(default=None, description="YAML/JSON file with api_key and secret (instead of the environment)")
    ws_orders: bool = Field(default=False, description="place/cancel through the ws-api (create_order_ws) instead of REST")
    reconcile_interval_s: float = Field(default=5.0, gt=0, description="REST reconciliation period (open orders, trades, balances)")
    down_grace_s: float = Field(default=15.0, ge=0, description="EXCHANGE_DOWN once the venue failed this long")


class AuditSettings(_Model):
    enabled: bool = True
    dir: str = "var/journal"
    flush_interval_ms: float = Field(default=200.0, ge=0)
    rotate_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    account: str = "paper"
    record_decisions: bool = True


class MetricsSettings(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class AdminSettings(_Model):
    enabled: bool = True
    port: int = Field(default=9465, ge=0, le=65535)
    token: SecretStr | None = None


class LogSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class RunSettings(_Model):
    speed: float = Field(default=1.0, ge=0, description="replay speed; 0 = as fast as possible")
    status_interval_s: float = Field(default=5.0, gt=0)
    timer_interval_ms: float = Field(default=100.0, gt=0)


class BacktestSettings(_Model):
    """Bar backtest fill rules (docs/backtest.md)."""

    fill_rule: Literal["quote", "open_gap"] = Field(
        default="quote", description="quote: fill at the quote price; open_gap: at the open when the bar opens through it"
    )
    fill_semantics: Literal["strict", "backtrader"] = Field(
        default="strict", description="strict: low < bid / high > ask; backtrader: <= / >= and the open when it gaps through"
    )
    sharpe_interval_s: float = Field(default=86400.0, gt=0, description="Sharpe/Sortino return interval for bar runs (1 day)")


class RecordSettings(_Model):
    """The run record (summary + series + fills) that `mmbot report` reads."""

    enabled: bool = True
    dir: str = Field(default="var/runs", description="paper runs and L2 backtests write DIR/<run_id>/")
    interval_ms: float = Field(default=1000.0, gt=0, description="series sampling interval = Sharpe return interval (L2)")
    neutral_band: float = Field(default=0.1, gt=0, le=1, description="inventory balance band, fraction of max_inventory")


class Settings(_Model):
    mode: Literal["paper", "sandbox", "live"] = "paper"
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT"])
    instrument: InstrumentSettings = InstrumentSettings()
    data: DataSettings = DataSettings()
    fees: FeesSettings = FeesSettings()
    strategy: StrategySettings = StrategySettings()
    sim: SimSettings = SimSettings()
    paper: PaperSettings = PaperSettings()
    risk: RiskSettings = RiskSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()
    admin: AdminSettings = AdminSettings()
    log: LogSettings = LogSettings()
    run: RunSettings = RunSettings()
    backtest: BacktestSettings = BacktestSettings()
    record: RecordSettings = RecordSettings()

    @model_validator(mode="before")
    @classmethod
    def _one_symbol_list(cls, data: Any) -> Any:
        """``symbols`` and ``instrument.symbol`` name the same thing (InstrumentSettings)."""
        if not isinstance(data, dict):
            return data
        inst = data.get("instrument")
        own = inst.get("symbol") if isinstance(inst, dict) else None
        symbols = data.get("symbols")
        if own is not None and symbols is None:
            return {**data, "symbols": [own]}
        if isinstance(symbols, list) and symbols and isinstance(inst, dict | None):
            if own is not None and own != symbols[0]:
                raise ValueError(
                    f"instrument.symbol ({own}) and symbols ({', '.join(map(str, symbols))}) disagree: "
                    "list the traded symbols in `symbols` only (instrument.symbol is symbols[0])"
                )
            return {**data, "instrument": {**(inst or {}), "symbol": symbols[0]}}
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.strategy.order_size > self.strategy.max_inventory:
            raise ValueError(
                f"strategy.order_size ({self.strategy.order_size}) must be <= strategy.max_inventory "
                f"({self.strategy.max_inventory})"
            )
        if not self.symbols:
            raise ValueError("symbols must list at least one symbol")
        return self


# --- loading ------------------------------------------------------------------------------
def bundled_config_text(name: str = DEFAULT_CONFIG_NAME) -> str:
    return resources.files("mmbot.app").joinpath("config_default.yaml").read_text() if name == DEFAULT_CONFIG_NAME else ""


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {key} conflicts with another override")
        node[path[-1]] = value
    # Top-level scalars: MMBOT_MODE is not SECTION__FIELD, accept MMBOT__MODE too.
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            value = e.get("input")
            shown = "" if isinstance(value, dict) else f" (was {value!r})"
            lines.append(f"  {loc}: {e['msg']}{shown}")
    return "\n".join(lines)


def load_raw(path: str | os.PathLike[str] | None) -> tuple[dict[str, Any], str]:
    if path is None:
        text = resources.files("mmbot.app").joinpath("config_default.yaml").read_text()
        source = "bundled default.yaml"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError(f"config file {p} cannot be read: {exc}") from exc
        source = str(p)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {source} must hold a mapping at the top level")
    return data, source


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    data, source = load_raw(path)
    env = os.environ if environ is None else environ
    data = _merge(data, _env_overrides(env))
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from err


def redacted_dict(settings: Settings) -> dict[str, Any]:
    """The resolved config as plain data with every secret replaced."""
    return settings.model_dump(mode="json")  # SecretStr dumps as "**********"


def config_hash(settings: Settings) -> str:
    blob = orjson.dumps(redacted_dict(settings), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:10]


def make_run_id(settings: Settings, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{config_hash(settings)[:8]}"
