"""Building a ccxt (async / ccxt.pro) exchange object from configuration.

Order of construction (measured with ccxt 4.5.90, ../shared/docs/REAL-COMPONENTS-ccxt.md):

1. options: spot only. For Binance ``defaultType: spot``, ``fetchMarkets.types: [spot]``,
   ``fetchCurrencies: false`` and ``fetchMargins: false``; otherwise load_markets
   also calls sapi/fapi/dapi endpoints. User ``exchange.options`` are merged on top.
2. sandbox FIRST (``set_sandbox_mode(True)`` replaces ``urls['api']`` wholesale with
   the testnet urls), THEN url overrides; the other order loses the override.
3. ``base_url`` (a Binance-compatible host such as the emulator): every string in
   ``urls['api']`` (REST, ws, ws-api, also sapi/fapi/... that spot never uses) is
   rewritten to that host keeping its path, so an unexpected call shows up as a 404
   in the emulator's log instead of reaching the internet (the safety net).
4. ``exchange.urls``: merged last into ``urls``, so explicit entries win.

Price/size conversion from ccxt's floats: ``ticks = round(price / tick_size)``,
``lots = round(qty / qty_unit)`` (exact for venue numbers on the grid; ccxt parsed
them from decimal strings, so the float is the nearest double of a grid value).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ccxt
import ccxt.pro

from mmbot.domain.instrument import Instrument
from mmbot.errors import ConfigError, VenueError

BINANCE_SPOT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeParams:
    """What the adapter needs from ``settings.exchange`` (no dependency on mmbot.config)."""

    id: str = "binance"
    sandbox: bool = True
    urls: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    secret: str | None = None
    timeout_s: float = 10.0
    keepalive_ms: int = 20000
    base_url: str | None = None
    enable_rate_limit: bool = True

    @classmethod
    def from_settings(cls, ex: Any) -> ExchangeParams:
        """From an ``ExchangeSettings``-like object (secrets as pydantic SecretStr or str)."""

        def secret(value: Any) -> str | None:
            if value is None:
                return None
            getter = getattr(value, "get_secret_value", None)
            return str(getter() if getter else value)

        return cls(
            id=ex.id,
            sandbox=ex.sandbox,
            urls=dict(ex.urls),
            options=dict(ex.options),
            api_key=secret(ex.api_key),
            secret=secret(ex.secret),
            timeout_s=ex.timeout_s,
            keepalive_ms=getattr(ex, "keepalive_ms", 20000),
            base_url=getattr(ex, "base_url", None),
        )


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _rehost(url: str, http_base: str) -> str:
    """``wss://stream.testnet.binance.vision/ws`` + ``http://127.0.0.1:8765`` -> ``ws://127.0.0.1:8765/ws``."""
    parts = urlsplit(url)
    base = urlsplit(http_base)
    is_ws = parts.scheme in ("ws", "wss")
    scheme = ("wss" if base.scheme == "https" else "ws") if is_ws else base.scheme
    return urlunsplit((scheme, base.netloc, parts.path, parts.query, parts.fragment))


def rehost_urls(api: Any, http_base: str) -> Any:
    """Every URL string inside ``api`` (nested dicts too) moved to ``http_base``, paths kept."""
    if isinstance(api, str):
        return _rehost(api, http_base) if "://" in api else api
    if isinstance(api, dict):
        return {k: rehost_urls(v, http_base) for k, v in api.items()}
    return api


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"exchange.base_url must look like http://HOST:PORT, was {base_url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def exchange_config(params: ExchangeParams) -> dict[str, Any]:
    options: dict[str, Any] = {"defaultType": "spot"}
    if params.id.startswith("binance"):
        options = dict(BINANCE_SPOT_OPTIONS)
    options = deep_merge(options, params.options)
    config: dict[str, Any] = {
        "options": options,
        "timeout": int(params.timeout_s * 1000),
        "enableRateLimit": params.enable_rate_limit,
        "streaming": {"keepAlive": params.keepalive_ms},
    }
    if params.api_key:
        config["apiKey"] = params.api_key
    if params.secret:
        config["secret"] = params.secret
    return config


def build_exchange(params: ExchangeParams, *, pro: bool = True) -> Any:
    """A ccxt.pro (or plain async ccxt) exchange, sandbox first, then url overrides."""
    module: Any = ccxt.pro if pro else __import__("ccxt.async_support", fromlist=["async_support"])
    cls = getattr(module, params.id, None)
    if cls is None or not isinstance(cls, type):
        raise ConfigError(f"exchange.id {params.id!r} is not a ccxt{'.pro' if pro else ''} exchange id")
    ex = cls(exchange_config(params))
    try:
        if params.sandbox:
            ex.set_sandbox_mode(True)
    except ccxt.NotSupported as exc:
        raise ConfigError(f"exchange {params.id} has no sandbox in ccxt; set exchange.sandbox: false") from exc
    if params.base_url:
        ex.urls["api"] = rehost_urls(ex.urls["api"], _check_base_url(params.base_url))
    if params.urls:
        ex.urls = deep_merge(ex.urls, params.urls)
    return ex


def _decimal(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def market_instrument(ex: Any, symbol: str) -> Instrument:
    """The instrument (tick, step, min notional) as the exchange's markets describe it."""
    market = ex.markets.get(symbol) if ex.markets else None
    if market is None:
        raise ConfigError(f"symbol {symbol} is not listed by {ex.id} (spot markets loaded: {len(ex.markets or {})})")
    precision = market.get("precision") or {}
    price_p, amount_p = precision.get("price"), precision.get("amount")
    if price_p is None or amount_p is None:
        raise ConfigError(f"{ex.id} gives no price/amount precision for {symbol}; set instrument.tick_size/step_size")
    if ex.precisionMode == ccxt.TICK_SIZE:
        tick, step = _decimal(price_p), _decimal(amount_p)
    else:  # DECIMAL_PLACES / SIGNIFICANT_DIGITS: a number of decimals
        tick, step = Decimal(1).scaleb(-int(price_p)), Decimal(1).scaleb(-int(amount_p))
    min_cost = ((market.get("limits") or {}).get("cost") or {}).get("min") or 0
    return Instrument.from_symbol(
        symbol, tick_size=tick.normalize(), step_size=step.normalize(), min_notional=_decimal(min_cost).normalize()
    )


async def load_instruments(params: ExchangeParams, symbols: Sequence[str], *, timeout_s: float) -> dict[str, Instrument]:
    """``load_markets`` once (plain REST ccxt, bounded by ``timeout_s``) -> each symbol's instrument.

    ccxt errors and the timeout become VenueError; an unlisted symbol is a ConfigError.
    """
    ex = build_exchange(params, pro=False)
    try:
        async with asyncio.timeout(timeout_s):
            await ex.load_markets()
        return {symbol: market_instrument(ex, symbol) for symbol in symbols}
    except TimeoutError as exc:
        raise VenueError(f"{params.id}: load_markets timed out after {timeout_s:g} s") from exc
    except ccxt.BaseError as exc:
        raise VenueError(f"{params.id}: load_markets failed: {str(exc)[:200]}") from exc
    finally:
        await close_exchange(ex)


async def close_exchange(ex: Any) -> None:
    """Close sockets and the HTTP session; the object can be reused afterwards."""
    await ex.close()
