"""structlog setup: JSON lines to stderr (pretty console on a TTY), secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from decimal import Decimal
from typing import Any

import structlog

from mmbot.domain.instrument import plain

_SECRETS: set[str] = set()
_SECRET_KEYS = ("secret", "api_key", "apikey", "token", "password", "signature")


def register_secret(value: str | None) -> None:
    """Any string registered here is replaced by '***' wherever it appears in a log line."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        value = event_dict[key]
        if any(s in key.lower() for s in _SECRET_KEYS) and value not in (None, ""):
            event_dict[key] = "***"
        elif isinstance(value, str) and _SECRETS:
            event_dict[key] = scrub(value)
    return event_dict


def _plain_decimals(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Decimals as plain decimal strings (``0``, not ``Decimal('0E-8')`` or ``0E-8``)."""
    for key, value in event_dict.items():
        if isinstance(value, Decimal):
            event_dict[key] = plain(value)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """structlog and the stdlib ``logging`` (aiohttp, asyncio, libraries) both render through
    the same processors, so every line is one JSON object with ``event``, ``level``,
    ``timestamp`` and the bound ``run_id``/``symbol`` (see :func:`bind_run`)."""
    stream = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        _plain_decimals,
    ]
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    # _redact again after format_exc_info: a traceback's text can hold a registered secret.
    processors: Iterable[Any] = [*shared, structlog.processors.format_exc_info, _redact, renderer]
    structlog.configure(
        processors=list(processors),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)


def bind_run(run_id: str, symbol: str) -> None:
    structlog.contextvars.bind_contextvars(run_id=run_id, symbol=symbol)
