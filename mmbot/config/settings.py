"""Configuration: YAML file -> pydantic models -> environment overrides -> CLI flags.

Models are frozen and reject unknown keys. Every number is finite and within the
range its Field description states (docs/configuration.md has the table): a value
of ``.inf`` or ``1e308`` used to pass ``check-config`` and then break the run (an
OverflowError in the strategy, or ``stale_book_ms: .inf`` silently switching the
stale-book watchdog off), so both are now errors naming the field.

Files are read with :mod:`mmbot.strict_yaml`: duplicate keys and YAML 1.1's
non-decimal numbers (``0x10``, ``017``, ``1:30``) are errors naming the key or field,
not silently a different value.

Environment variables (``MMBOT_`` + a dotted path with ``__`` for the dots):

* ``MMBOT_<SECTION>__<FIELD>`` (``MMBOT_STRATEGY__SPREAD_BPS=3``) sets one field,
  nested sections too (``MMBOT_STRATEGY__VOLATILITY__ENABLED=true``);
* ``MMBOT_<FIELD>`` sets a top-level field (``MMBOT_MODE=live``;
  ``MMBOT_SYMBOLS`` takes a YAML/JSON list or ``BTC/USDT,ETH/USDT``);
* ``MMBOT_<SECTION>`` takes a YAML/JSON mapping merged into that section
  (``MMBOT_STRATEGY='{"spread_bps": 3}'``); the more specific variable wins.

Values are parsed as (strict) YAML; text fields (and secrets) take the value
verbatim. Every ``MMBOT_*`` variable is applied or rejected: a name that maps to no
setting is an error naming it (a typo used to be ignored silently), and a value that
fails validation names its variable. The only other ``MMBOT_*`` variables are
:data:`NON_SETTING_ENV` (read elsewhere, e.g. ``MMBOT_ALLOW_LIVE``).

Secrets come from the environment (or a secrets file) and never appear in an error
message or in the printed/journaled config: errors about a secret field show
``<redacted>`` instead of the value.
"""

from __future__ import annotations

import hashlib
import os
import types
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from mmbot import strict_yaml
from mmbot.errors import ConfigError

ENV_PREFIX = "MMBOT_"
DEFAULT_CONFIG_NAME = "default.yaml"
# MMBOT_* variables that are not settings: read directly where they matter.
NON_SETTING_ENV = frozenset({
    "MMBOT_ALLOW_LIVE",  # mmbot.cli.run: the second key for mode: live
    "MMBOT_PURE_PYTHON",  # mmbot.marketdata._speedups: force the pure-Python fallback of the compiled path (issue 31)
})  # fmt: skip
REDACTED = "<redacted>"


# --- numbers ------------------------------------------------------------------------------
# Every number in the config is finite (``allow_inf_nan=False`` on every model: ``.inf``,
# ``.nan``, ``1e999`` are errors naming the field) and bounded above, so that a huge value
# is an error at ``check-config`` time rather than an OverflowError or a disabled
# watchdog at run time. The bounds are generous (well past any sane value) and each
# Field's description states its range; docs/configuration.md has the table
# (``numeric_ranges()`` lists it, and a test keeps the two in step).
MAX_BPS = 10_000  # 100 %
MAX_MS = 86_400_000  # one day in milliseconds: every *_ms duration
MAX_S = 86_400  # one day in seconds: every *_s duration
MAX_BASE = 1e9  # base-currency sizes and inventories
MAX_QUOTE = Decimal("1e15")  # quote-currency notionals and loss limits
MAX_QUOTE_F = 1e15
MAX_COUNT = 1_000_000  # counts (orders, levels, events)
MAX_MULTIPLIER = 1_000.0  # dimensionless multipliers and model coefficients
MAX_SEED = 2**63 - 1


def _fmt(v: Any) -> str:
    """1e9 for large powers of ten, 86_400_000 for other large integers, else as written."""
    if isinstance(v, (float, Decimal)) and v == int(v):
        v = int(v)
    if isinstance(v, int) and abs(v) >= 10_000:
        digits = str(abs(v))
        if len(digits) >= 10 and digits.rstrip("0") == "1":
            return f"{'-' if v < 0 else ''}1e{len(digits) - 1}"
        return f"{v:_}"
    return str(v)


def range_text(*, gt: Any = None, ge: Any = None, le: Any = None) -> str:
    low = f"{_fmt(gt)} < x" if gt is not None else f"{_fmt(ge)} <= x" if ge is not None else "x"
    return f"{low} <= {_fmt(le)}"


def num(default: Any, *, le: Any, gt: Any = None, ge: Any = None, description: str = "") -> Any:
    """A numeric Field whose range is part of its description (``range: 0 < x <= 10000``)."""
    rng = f"range: {range_text(gt=gt, ge=ge, le=le)}"
    return Field(default=default, gt=gt, ge=ge, le=le, description=f"{description}; {rng}" if description else rng)


class _Model(BaseModel):
    # allow_inf_nan=False: float and Decimal fields reject nan/inf (also "1e999" -> inf).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SymbolInstrumentSettings(_Model):
    """Rules of one symbol that differ from the section's (unset = the section's value):
    a spot book and its perpetual hedge have different ticks and steps."""

    tick_size: Decimal | None = num(None, gt=0, le=Decimal(1_000_000), description="price increment, quote currency")
    step_size: Decimal | None = num(None, gt=0, le=Decimal(1_000_000), description="quantity increment")
    min_notional: Decimal | None = num(None, ge=0, le=MAX_QUOTE, description="quote currency")
    contract_size: Decimal | None = num(None, gt=0, le=Decimal(1_000_000), description="perpetuals; see instrument.contract_size")


class InstrumentSettings(_Model):
    """Instrument rules for every configured symbol (``symbols`` names what is traded).

    Live and sandbox runs take tick, step and min notional from the exchange's markets
    (ccxt ``load_markets``); a replay takes them from the metadata file ``mmbot record``
    writes next to its capture, else from here. ``symbol`` is the old single-symbol
    spelling: unset, it is ``symbols[0]``; set alone, it is the one symbol; set together
    with ``symbols``, it must be ``symbols[0]`` (one source of truth for what is traded).
    """

    symbol: str = "BTC/USDT"
    tick_size: Decimal = num(Decimal("0.01"), gt=0, le=Decimal(1_000_000), description="price increment, quote currency")
    step_size: Decimal = num(Decimal("0.00001"), gt=0, le=Decimal(1_000_000), description="quantity increment, base units")
    min_notional: Decimal = num(Decimal("5"), ge=0, le=MAX_QUOTE, description="quote currency")
    contract_size: Decimal | None = num(
        None, gt=0, le=Decimal(1_000_000),
        description="perpetuals: base units per 1 of quantity (linear) or quote units per contract (inverse); None = 1, inverse 100",
    )
    symbols: dict[str, SymbolInstrumentSettings] = Field(default_factory=dict, description="per-symbol rule overrides")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        if "/" not in v:
            raise ValueError(f"must look like BASE/QUOTE or BASE/QUOTE:SETTLE, was {v!r}")
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
    max_clock_jump_s: float = num(
        10.0, gt=0, le=86_400,
        description="a receive-time step beyond this is checked against the next lines: an outlier line is dropped, a real jump re-syncs",
    )
    max_ticker_deviation_bps: float = num(
        50.0, gt=0, le=10_000, description="a book ticker whose mid lies further from the depth book's mid is ignored"
    )
    max_trade_deviation_bps: float = num(100.0, gt=0, le=10_000, description="a trade further from the depth book's mid is ignored")
    max_update_id_jump: int = num(
        1_000_000, gt=0, le=10**15, description="a diff whose u moves further than this past the last one is a gap, not a new baseline"
    )


class FeesSettings(_Model):
    # Negative fees are rebates, so the fee ranges are symmetric.
    maker_fee_bps: Decimal = num(Decimal("0"), ge=-MAX_BPS, le=MAX_BPS, description="negative = rebate")
    taker_fee_bps: Decimal = num(Decimal("1"), ge=-MAX_BPS, le=MAX_BPS, description="negative = rebate")
    slippage_bps: Decimal = num(Decimal("0"), ge=-MAX_BPS, le=MAX_BPS)
    profit_bps: Decimal = num(Decimal("0.5"), ge=-MAX_BPS, le=MAX_BPS)


class LadderLevel(_Model):
    offset_bps: float = num(..., gt=0, le=MAX_BPS)
    size: float = num(..., gt=0, le=MAX_BASE, description="base units")


class VolatilitySettings(_Model):
    enabled: bool = False
    half_life_s: float = num(30.0, gt=0, le=MAX_S)
    long_half_life_s: float = num(600.0, gt=0, le=MAX_S)
    min_multiplier: float = num(0.5, gt=0, le=MAX_MULTIPLIER)
    max_multiplier: float = num(3.0, gt=0, le=MAX_MULTIPLIER)


class ImbalanceSettings(_Model):
    enabled: bool = False
    levels: int = num(5, ge=1, le=MAX_COUNT)
    within_bps: float | None = num(None, gt=0, le=MAX_BPS, description="None = the top `levels` levels")
    threshold: float = num(0.2, ge=0, le=1)
    adjust_fraction: float = num(0.25, ge=0, le=1)


class AdverseSelectionSettings(_Model):
    enabled: bool = False
    size_multiple: float = num(10.0, gt=0, le=MAX_COUNT)
    notional_threshold: float | None = num(None, gt=0, le=MAX_QUOTE_F, description="quote currency")
    move_bps: float = num(5.0, gt=0, le=MAX_BPS)
    move_window_ms: float = num(500.0, gt=0, le=MAX_MS)
    cooldown_ms: float = num(2000.0, ge=0, le=MAX_MS)
    widen_multiplier: float = num(2.0, ge=1, le=MAX_MULTIPLIER)
    widen_for_ms: float = num(5000.0, ge=0, le=MAX_MS)


class AvellanedaSettings(_Model):
    gamma: float = num(0.1, gt=0, le=MAX_MULTIPLIER)
    k: float | None = num(None, gt=0, le=MAX_COUNT, description="order arrival decay; None = estimate online")
    sigma: float | None = num(
        None, ge=0, le=MAX_BASE, description="volatility per sqrt(second) in price units; None = estimate"
    )
    horizon_s: float = num(60.0, gt=0, le=MAX_S, description="rolling horizon T-t for the 24/7 variant")
    variant: Literal["rolling", "infinite"] = Field(default="rolling", description="rolling horizon or the paper's infinite horizon")
    warmup_s: float = num(30.0, ge=0, le=MAX_S)


class GlftSettings(_Model):
    gamma: float = num(0.1, gt=0, le=MAX_MULTIPLIER)
    xi: float | None = num(None, ge=0, le=MAX_MULTIPLIER, description="None = gamma")
    A: float | None = num(None, gt=0, le=MAX_BASE, description="order arrival intensity; None = estimate")
    k: float | None = num(None, gt=0, le=MAX_COUNT, description="order arrival decay; None = estimate")
    sigma: float | None = num(
        None, ge=0, le=MAX_BASE, description="volatility per sqrt(second) in price units; None = estimate"
    )
    warmup_s: float = num(30.0, ge=0, le=MAX_S)


class HedgeSettings(_Model):
    enabled: bool = False
    threshold: float = num(0.0, ge=0, le=MAX_BASE, description="base units; hedge when |inventory| exceeds it")
    target: float = num(0.0, ge=-MAX_BASE, le=MAX_BASE, description="base units")
    instrument: str | None = Field(
        default=None,
        description="None = the quoted symbol's own book (taker at the touch); another of `symbols` (e.g. BTC/USDT:USDT): hedge there",
    )
    execution: Literal["taker", "maker"] = Field(default="taker", description="hedge orders on another instrument: taker (IOC at the touch)")
    cooldown_ms: float = num(1000.0, ge=0, le=MAX_MS, description="wait for the last hedge's fill before another")


BUILTIN_MODELS = ("simple", "avellaneda_stoikov", "glft")


class StrategySettings(_Model):
    # A built-in model, a plugin "package.module:ClassName", or the name of an entry point
    # in the group "mmbot.strategies" (mmbot/plugins.py; docs/strategy.md).
    model: str = Field(default="simple", pattern=r"^[A-Za-z_][\w.-]*(:[A-Za-z_]\w*)?$", max_length=200)
    # A plugin's own parameters, validated by its pydantic ``Params`` model when it is built.
    params: dict[str, Any] = Field(default_factory=dict)
    spread_bps: float = num(20.0, gt=0, le=MAX_BPS)
    order_size: float = num(1.0, gt=0, le=MAX_BASE, description="base units")
    max_inventory: float = num(10.0, gt=0, le=MAX_BASE, description="base units")
    skew_factor: float = num(0.001, ge=0, le=1, description="fraction of mid at full inventory")
    update_freq: int = num(1, ge=1, le=MAX_COUNT)
    min_requote_interval_ms: float = num(100.0, ge=0, le=MAX_MS)
    requote_tolerance_ticks: int = num(0, ge=0, le=MAX_COUNT)
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
    prob_power: float = num(2.0, gt=0, le=MAX_MULTIPLIER)
    entry_latency_ms: float = num(0.0, ge=0, le=MAX_MS)
    cancel_latency_ms: float = num(0.0, ge=0, le=MAX_MS)
    md_latency_ms: float = num(0.0, ge=0, le=MAX_MS)
    rest_latency_ms: float = num(50.0, ge=0, le=MAX_MS)
    latency_model: Literal["constant", "uniform", "lognormal"] = "constant"
    latency_jitter_ms: float = num(0.0, ge=0, le=MAX_MS)
    seed: int = num(0, ge=-MAX_SEED, le=MAX_SEED)


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

    balances: dict[str, Annotated[Decimal, Field(ge=0, le=PAPER_MAX_BALANCE)]] = Field(
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


class FuturesSettings(_Model):
    """Perpetual futures (symbols ``BTC/USDT:USDT`` linear, ``BTC/USD:BTC`` inverse; docs/futures.md).

    The paper wallet trades them on margin of the settlement asset (``paper.balances``):
    one-way positions, one per contract. Funding is booked at 00:00, 08:00 and 16:00 UTC
    of the replay clock (the capture's local receive time) at ``funding_rate``: the
    captures carry no funding-rate or mark-price stream.
    """

    leverage: int = num(10, ge=1, le=125, description="initial margin = position value / leverage")
    margin_mode: Literal["cross", "isolated"] = Field(
        default="cross", description="cross: the whole settlement balance is collateral; isolated: the position's initial margin"
    )
    maintenance_margin_rate: Decimal = num(
        Decimal("0.004"), ge=0, le=Decimal("0.5"), description="fraction of the position value (Binance BTCUSDT tier 1: 0.4 %)"
    )
    funding_rate: Decimal = num(
        Decimal("0.0001"), ge=Decimal("-0.03"), le=Decimal("0.03"),
        description="per 8 h funding interval, fraction (0.0001 = 0.01 %); > 0: longs pay shorts",
    )

    @model_validator(mode="after")
    def _mmr_below_initial(self) -> FuturesSettings:
        if self.maintenance_margin_rate * self.leverage >= 1:
            raise ValueError(
                f"futures.maintenance_margin_rate ({self.maintenance_margin_rate}) must be below 1 / futures.leverage "
                f"({1 / self.leverage:.4f}): a new position would be liquidated at once"
            )
        return self


class SymbolRiskSettings(_Model):
    """Per-symbol overrides of the risk limits (unset = the section's value)."""

    max_inventory: float | None = num(None, gt=0, le=MAX_BASE, description="base units; default strategy.max_inventory")
    max_order_notional: Decimal | None = num(None, gt=0, le=MAX_QUOTE, description="quote currency")
    max_open_orders: int | None = num(None, ge=1, le=MAX_COUNT)


class RiskSettings(_Model):
    max_order_notional: Decimal = num(Decimal("100000"), ge=0, le=MAX_QUOTE, description="quote currency")
    max_open_orders: int = num(20, ge=1, le=MAX_COUNT)
    price_band_bps: float = num(100.0, gt=0, le=MAX_BPS)
    max_orders_per_second: int = num(20, ge=1, le=MAX_COUNT)
    max_orders_per_minute: int = num(1200, ge=1, le=MAX_COUNT)
    max_drawdown: Decimal = num(Decimal("5000"), ge=0, le=MAX_QUOTE, description="quote currency")
    daily_loss_limit: Decimal = num(Decimal("5000"), ge=0, le=MAX_QUOTE, description="quote currency")
    calm_period_ms: int = num(1000, ge=0, le=MAX_MS)
    stale_book_ms: float = num(5000.0, gt=0, le=MAX_MS)
    feed_silent_ms: float = num(10000.0, gt=0, le=MAX_MS)
    loop_lag_ms: float = num(500.0, gt=0, le=MAX_MS)
    reject_storm_count: int = num(20, ge=1, le=MAX_COUNT)
    reject_storm_window_ms: int = num(10000, ge=1, le=MAX_MS)
    kill_switch_file: str | None = Field(default=None, description="present = kill switch engaged (polled)")
    kill_switch_poll_ms: float = num(250.0, gt=0, le=MAX_MS)
    kill_confirm_timeout_s: float = num(5.0, gt=0, le=MAX_S, description="wait this long for zero open orders")
    shutdown_deadline_s: float = num(10.0, gt=0, le=MAX_S)
    deadman_ms: float = num(5000.0, gt=0, le=MAX_MS, description="DEAD_MAN when the quoting loop stops this long")
    wall_clock_watchdogs: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="LOOP_LAG/DEAD_MAN on wall-clock time; auto = on for live data, off for replays (measured only)",
    )
    global_max_inventory_notional: Decimal | None = num(
        None, gt=0, le=MAX_QUOTE, description="quote currency, worst-case inventory summed over all symbols"
    )
    symbols: dict[str, SymbolRiskSettings] = Field(default_factory=dict, description="per-symbol limit overrides")
    max_net_delta: Decimal | None = num(
        None, gt=0, le=Decimal(1_000_000_000), description="base units, |net delta| over every instrument of the account (spot + perpetuals); None = off"
    )
    margin_ratio_reducing: Decimal = num(
        Decimal("0.5"), gt=0, le=1, description="perpetuals: margin ratio (maintenance / margin balance) above it = MARGIN_RATIO (REDUCING)"
    )
    margin_ratio_halt: Decimal = num(Decimal("0.8"), gt=0, le=1, description="perpetuals: margin ratio above it = MARGIN_CALL (HALTED)")

    @model_validator(mode="after")
    def _margin_levels(self) -> RiskSettings:
        if self.margin_ratio_reducing >= self.margin_ratio_halt:
            raise ValueError(
                f"risk.margin_ratio_reducing ({self.margin_ratio_reducing}) must be below risk.margin_ratio_halt ({self.margin_ratio_halt})"
            )
        return self

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
    timeout_s: float = num(10.0, gt=0, le=MAX_S)
    watch_timeout_s: float = num(10.0, gt=0, le=MAX_S)
    order_weight_budget_per_10s: int = num(50, ge=1, le=MAX_COUNT)
    # Live market data (mmbot.adapters.ccxt): a Binance-compatible host such as the
    # emulator (http://127.0.0.1:8765) rewrites every REST/ws/ws-api url to it.
    base_url: str | None = Field(default=None, description="Binance-compatible host; None = the exchange's own urls")
    keepalive_ms: int = num(20000, ge=1000, le=MAX_MS, description="ccxt ping/pong watchdog (streaming.keepAlive)")
    reconnect_initial_s: float = num(0.2, gt=0, le=MAX_S, description="first reconnect delay; doubles, with jitter")
    reconnect_max_s: float = num(10.0, gt=0, le=MAX_S)
    watch_bids_asks: bool = Field(default=True, description="also stream bookTicker (watch_bids_asks)")
    # Sandbox/live execution (mmbot.runtime.exchange, docs/sandbox.md).
    secrets_file: str | None = Field(default=None, description="YAML/JSON file with api_key and secret (instead of the environment)")
    ws_orders: bool = Field(default=False, description="place/cancel through the ws-api (create_order_ws) instead of REST")
    reconcile_interval_s: float = num(
        5.0, gt=0, le=MAX_S, description="REST reconciliation period (open orders, trades, balances)"
    )
    down_grace_s: float = num(15.0, ge=0, le=MAX_S, description="EXCHANGE_DOWN once the venue failed this long")


class AuditSettings(_Model):
    enabled: bool = True
    dir: str = "var/journal"
    flush_interval_ms: float = num(200.0, ge=0, le=MAX_MS)
    rotate_bytes: int = num(64 * 1024 * 1024, ge=1024, le=2**40, description="bytes (up to 1 TiB)")
    account: str = "paper"
    record_decisions: bool = True


class MetricsSettings(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = num(9464, ge=0, le=65535, description="0 = any free port")


class AdminSettings(_Model):
    enabled: bool = True
    port: int = num(9465, ge=0, le=65535, description="0 = any free port")
    token: SecretStr | None = None


class LogSettings(_Model):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class RunSettings(_Model):
    speed: float = num(1.0, ge=0, le=MAX_COUNT, description="replay speed x real time; 0 = as fast as possible")
    status_interval_s: float = num(5.0, gt=0, le=MAX_S)
    timer_interval_ms: float = num(100.0, gt=0, le=MAX_MS)
    dir: str = Field(default="var/run", description="the run directory: a running daemon's <run_id>.pid and "
                     "<run_id>.json (mmbot ctl finds it there; removed at stop)")


class BacktestSettings(_Model):
    """Bar backtest fill rules (docs/backtest.md)."""

    fill_rule: Literal["quote", "open_gap"] = Field(
        default="quote", description="quote: fill at the quote price; open_gap: at the open when the bar opens through it"
    )
    fill_semantics: Literal["strict", "backtrader"] = Field(
        default="strict", description="strict: low < bid / high > ask; backtrader: <= / >= and the open when it gaps through"
    )
    sharpe_interval_s: float = num(
        86400.0, gt=0, le=366 * MAX_S, description="Sharpe/Sortino return interval for bar runs (1 day; at most a year)"
    )


class RecordSettings(_Model):
    """The run record (summary + series + fills) that `mmbot report` reads."""

    enabled: bool = True
    dir: str = Field(default="var/runs", description="paper runs and L2 backtests write DIR/<run_id>/")
    interval_ms: float = num(1000.0, gt=0, le=MAX_MS, description="series sampling interval = Sharpe return interval (L2)")
    neutral_band: float = num(0.1, gt=0, le=1, description="inventory balance band, fraction of max_inventory")
    market_data: bool = Field(
        default=True,
        description="live-fed runs (sandbox, live, paper on a live feed) record every market event they receive into DIR/<run_id>/market.gz (mmbot rerun replays it)",
    )


class Settings(_Model):
    mode: Literal["paper", "sandbox", "live"] = "paper"
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT"])
    instrument: InstrumentSettings = InstrumentSettings()
    data: DataSettings = DataSettings()
    fees: FeesSettings = FeesSettings()
    strategy: StrategySettings = StrategySettings()
    sim: SimSettings = SimSettings()
    paper: PaperSettings = PaperSettings()
    futures: FuturesSettings = FuturesSettings()
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


# --- schema helpers -----------------------------------------------------------------------
def _unwrap_optional(ann: Any) -> Any:
    """``X | None`` -> ``X`` (other unions and plain types unchanged)."""
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def _allows_none(ann: Any) -> bool:
    return get_origin(ann) in (Union, types.UnionType) and type(None) in get_args(ann)


def _model_class(ann: Any) -> type[_Model] | None:
    inner = _unwrap_optional(ann)
    return inner if isinstance(inner, type) and issubclass(inner, _Model) else None


def _secret_paths(model: type[_Model] = Settings, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        inner = _unwrap_optional(info.annotation)
        sub = _model_class(inner)
        if inner is SecretStr:
            out.append((*prefix, name))
        elif sub is not None:
            out.extend(_secret_paths(sub, (*prefix, name)))
    return out


SECRET_PATHS: tuple[tuple[str, ...], ...] = tuple(_secret_paths())  # exchange.api_key, exchange.secret, admin.token


def _touches_secret(loc: tuple[Any, ...]) -> bool:
    """True when ``loc`` is a secret field, inside one, or a section that holds one."""
    key = tuple(str(p) for p in loc)
    return any(key[: len(s)] == s or s[: len(key)] == key for s in SECRET_PATHS)


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "(root)"


def numeric_ranges(model: type[_Model] = Settings, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted field, type, range) of every numeric setting: the table in docs/configuration.md."""
    out: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        inner = _unwrap_optional(info.annotation)
        metadata = list(info.metadata)
        if get_origin(inner) in (list, dict):
            inner = _unwrap_optional(get_args(inner)[-1])
            name = f"{name}[]" if get_origin(_unwrap_optional(info.annotation)) is list else f"{name}.<key>"
            if get_origin(inner) is Annotated:  # bounds on the values: dict[str, Annotated[Decimal, Field(le=...)]]
                base, *extras = get_args(inner)
                inner = base
                metadata = [m for extra in extras for m in getattr(extra, "metadata", [extra])]
        sub = _model_class(inner)
        if sub is not None:
            out.extend(numeric_ranges(sub, f"{prefix}{name}."))
        elif inner in (int, float, Decimal):
            bounds = {type(m).__name__.lower(): getattr(m, type(m).__name__.lower()) for m in metadata
                      if type(m).__name__ in ("Gt", "Ge", "Le", "Lt")}  # fmt: skip
            rng = range_text(gt=bounds.get("gt"), ge=bounds.get("ge"), le=bounds.get("le")) if "le" in bounds else "unbounded"
            typename = inner.__name__ + (" or null" if _allows_none(info.annotation) else "")
            out.append((f"{prefix}{name}", typename, rng))
    return out


# --- environment --------------------------------------------------------------------------
def _field_named(model: type[_Model], part: str) -> str | None:
    """The field an environment name part means (names are case-insensitive: GLFT's ``A``)."""
    for name in model.model_fields:
        if name.lower() == part:
            return name
    return None


def _resolve_env_name(var: str) -> tuple[tuple[str, ...], Any]:
    """The settings path and annotation an ``MMBOT_*`` name means; ConfigError if none."""
    parts = var[len(ENV_PREFIX) :].lower().split("__")
    path: list[str] = []
    ann: Any = Settings
    free_key_next = False  # the next part is a key of a dict field (risk.symbols.<symbol>, exchange.options.<key>)
    for i, part in enumerate(parts):
        model = _model_class(ann)
        if free_key_next:
            path.append(part)
            ann = get_args(_unwrap_optional(ann))[1]
            free_key_next = get_origin(_unwrap_optional(ann)) is dict
            continue
        name = _field_named(model, part) if model is not None and part else None
        if name is None and ann is Any and part:
            path.append(part)  # nested keys inside a free-form mapping (exchange.options)
            continue
        if name is None:
            raise ConfigError(f"environment variable {var}: no such setting {'.'.join(parts[: i + 1]) or '(empty)'}")
        assert model is not None
        path.append(name)
        ann = model.model_fields[name].annotation
        free_key_next = get_origin(_unwrap_optional(ann)) is dict
    return tuple(path), ann


def _env_value(var: str, raw: str, path: tuple[str, ...], ann: Any) -> Any:
    inner = _unwrap_optional(ann)
    if inner is SecretStr or raw == "":
        return raw  # a secret is the text as given (never YAML-parsed: "0123", "[x]" stay as typed)
    try:
        value = strict_yaml.load(raw)
    except yaml.YAMLError as exc:
        if _model_class(inner) is not None or get_origin(inner) in (dict, list):
            raise ConfigError(
                f"environment variable {var}: must be YAML/JSON for {_dotted(path)}, was not valid YAML "
                f"({strict_yaml.describe_yaml_error(exc)})"
            ) from exc
        return raw  # a scalar field: validation names the variable if the text does not fit
    if inner is str:
        # Text fields take the text: MMBOT_AUDIT__ACCOUNT=007 is "007", not an error or 7.
        return value if isinstance(value, str) or (value is None and _allows_none(ann)) else raw
    for sub, marker in strict_yaml.iter_non_decimal(value):
        where = path + tuple(str(s) for s in sub)
        shown = REDACTED if _touches_secret(where) else None
        raise ConfigError(f"environment variable {var}: {_dotted(where)} {marker.problem(shown)}")
    if _model_class(inner) is not None and not isinstance(value, dict):
        raise ConfigError(
            f"environment variable {var}: must be a YAML/JSON mapping of {_dotted(path)} settings, "
            f"was a {type(value).__name__}"
        )
    if get_origin(inner) is list and get_args(inner) == (str,) and isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]  # MMBOT_SYMBOLS=BTC/USDT,ETH/USDT
    return value


def _get_path(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = tree
    for key in path:
        value = value[key]
    return value


def _leaf_paths(value: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    if isinstance(value, Mapping) and value:
        return [path, *(p for k, v in value.items() for p in _leaf_paths(v, (*path, str(k))))]
    return [path]


def env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The MMBOT_* overrides as a tree, and which variable set each path.

    Variables are applied shallow first (``MMBOT_STRATEGY`` before
    ``MMBOT_STRATEGY__SPREAD_BPS``), so the more specific one wins.
    """
    resolved: list[tuple[tuple[str, ...], str, str, Any]] = []
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key in NON_SETTING_ENV:
            continue
        path, ann = _resolve_env_name(key)
        resolved.append((path, key, raw, ann))
    tree: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for path, key, raw, ann in sorted(resolved, key=lambda r: (len(r[0]), r[1])):
        value = _env_value(key, raw, path, ann)
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {key} conflicts with another override")
        last = path[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = merge_overrides(node[last], value)
        else:
            node[last] = value
        for p in _leaf_paths(value, path):
            origins[p] = key
    return tree, origins


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    return env_layer(environ)[0]


def merge_overrides(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of ``over`` into a copy of ``base`` (the later layer wins); inputs untouched."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge_overrides(out[k], v)
        else:
            out[k] = v
    return out


# --- errors -------------------------------------------------------------------------------
def _origin_of(loc: tuple[str, ...], env: Mapping[tuple[str, ...], str], cli: Mapping[tuple[str, ...], str]) -> str | None:
    """Where ``loc``'s value came from: a command-line flag or an environment variable
    (None: the config file or a default)."""
    for n in range(len(loc), 0, -1):
        prefix = loc[:n]
        if prefix in cli:
            return f"command-line flag {cli[prefix]}" if cli[prefix] else "a command-line flag"
        if prefix in env:
            return f"environment variable {env[prefix]}"
    return None


def format_validation_error(
    err: ValidationError,
    source: str,
    *,
    env_origins: Mapping[tuple[str, ...], str] | None = None,
    cli_paths: Mapping[tuple[str, ...], str] | set[tuple[str, ...]] | None = None,
) -> str:
    """One line per invalid field, each naming where its value came from (a flag, an
    environment variable); the header names the file only when a value came from it."""
    cli = cli_paths if isinstance(cli_paths, Mapping) else dict.fromkeys(cli_paths or set(), "")
    lines: list[str] = []
    from_file = False
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        where = _dotted(loc)
        origin = _origin_of(loc, env_origins or {}, cli)
        if origin is not None:
            where += f" ({origin})"
        else:
            from_file = True
        if e["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key")
            continue
        value = e.get("input")
        if any(loc[: len(s)] == s for s in SECRET_PATHS):
            shown = f" (was {REDACTED})"  # a secret's value never reaches a message
        elif isinstance(value, dict) or _touches_secret(loc):
            shown = ""  # a whole section (one that holds a secret, or too long to show)
        else:
            shown = f" (was {value!r})"
        lines.append(f"  {where}: {e['msg']}{shown}")
    return "\n".join([f"invalid configuration ({source}):" if from_file else "invalid configuration:", *lines])


# --- loading ------------------------------------------------------------------------------
def bundled_config_text(name: str = DEFAULT_CONFIG_NAME) -> str:
    return resources.files("mmbot.config").joinpath("config_default.yaml").read_text() if name == DEFAULT_CONFIG_NAME else ""


def _read_config_text(p: Path) -> str:
    """The file's text; each way it can fail has its own one-line message."""
    if p.is_dir():
        raise ConfigError(f"config path {p} is a directory, expected a YAML file")
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    if not p.is_file():
        raise ConfigError(f"config path {p} is not a regular file, expected a YAML file")
    try:
        blob = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc.strerror or type(exc).__name__}") from exc
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {p} is not a text file (invalid UTF-8 at byte {exc.start}), expected a YAML file"
        ) from exc
    if "\x00" in text:
        raise ConfigError(f"config file {p} is a binary file (it holds NUL bytes), expected a YAML file")
    return text


def parse_config_text(text: str, source: str) -> dict[str, Any]:
    """Strict YAML (see mmbot.strict_yaml) holding a mapping; ConfigError names ``source``."""
    try:
        data = strict_yaml.load(text)
    except yaml.YAMLError as exc:
        if isinstance(exc, strict_yaml.DuplicateKeyError):
            raise ConfigError(f"config file {source}: {strict_yaml.describe_yaml_error(exc)}") from exc
        raise ConfigError(f"config file {source} is not valid YAML: {strict_yaml.describe_yaml_error(exc)}") from exc
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"config file {source} must hold a mapping at the top level")
    for path, marker in strict_yaml.iter_non_decimal(data):
        shown = REDACTED if _touches_secret(path) else None
        raise ConfigError(f"config file {source}: {_dotted(path)} (line {marker.line}) {marker.problem(shown)}")
    return data


def load_raw(path: str | os.PathLike[str] | None) -> tuple[dict[str, Any], str]:
    if path is None:
        text = resources.files("mmbot.config").joinpath("config_default.yaml").read_text()
        source = "bundled default.yaml"
    else:
        p = Path(path)
        text = _read_config_text(p)
        source = str(p)
    return parse_config_text(text, source), source


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """The file (or the bundled default), then ``MMBOT_*`` environment variables, then the
    command line's ``overrides``; ``flags`` names the flag of each overridden setting
    (dotted path -> ``--speed``) so that an error says where the bad value came from."""
    data, source = load_raw(path)
    env = os.environ if environ is None else environ
    tree, env_origins = env_layer(env)
    data = merge_overrides(data, tree)
    cli_paths: dict[tuple[str, ...], str] = {}
    if overrides:
        data = merge_overrides(data, overrides)
        names = dict(flags or {})
        # Only the values a flag set: a section it touched keeps its other fields' origins.
        leaves = [p for p in _leaf_paths(overrides, ()) if not isinstance(_get_path(overrides, p), Mapping)]
        cli_paths = {leaf: names.get(".".join(leaf), "") for leaf in leaves}
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, env_origins=env_origins, cli_paths=cli_paths)) from err


def redacted_dict(settings: Settings) -> dict[str, Any]:
    """The resolved config as plain data with every secret replaced."""
    return settings.model_dump(mode="json")  # SecretStr dumps as "**********"


def config_hash(settings: Settings) -> str:
    blob = orjson.dumps(redacted_dict(settings), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:10]


def make_run_id(settings: Settings, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{config_hash(settings)[:8]}"
