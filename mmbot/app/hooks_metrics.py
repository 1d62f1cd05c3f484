"""Metrics hooks of the paper runner: Prometheus ``/metrics``, ``/healthz``, ``/readyz``.

``tasks`` builds the metrics for the runner's engine, subscribes the per-batch
observer and binds the server socket (before the event loop starts, so a taken
port exits with status 2 and a one-line message). The returned factory serves
until ``state.stop`` is set. ``metrics.enabled: false`` turns all of it off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mmbot import __version__
from mmbot.app import hooks_audit
from mmbot.app.runner import Runner, RunState
from mmbot.app.settings import Settings, config_hash
from mmbot.domain.engine_events import EngineEvent
from mmbot.engine.engine import Engine
from mmbot.observability.metrics import Metrics, SymbolMetrics
from mmbot.observability.server import MetricsServer, ReadyCheck, bind_socket


def ready_checks(state: RunState) -> list[ReadyCheck]:
    """Readiness of a paper run: replay running, book synced, executor connected."""
    engine = state.built.engine

    def replay_running() -> str | None:
        if state.done or state.stop.is_set():
            return f"replay stopped ({state.stop_reason or 'stopping'})"
        return None

    def book_synced() -> str | None:
        if not engine.book.is_synced:
            return f"order book {engine.symbol} not synced (waiting for a snapshot)"
        return None

    def executor_connected() -> str | None:
        # The paper executor is the in-process SimVenue: connected once it has seen the book.
        if not state.built.venue.book.is_synced:
            return "paper executor (simulated venue) has no synced book yet"
        return None

    return [replay_running, book_synced, executor_connected]


def tasks(runner: Runner, *, fresh: bool) -> list[Any]:
    settings = runner.settings
    if not settings.metrics.enabled:
        return []
    state = runner.state
    metrics = Metrics(version=__version__, config_hash=config_hash(settings), mode=settings.mode)
    view = metrics.add_engine(state.built.engine, last_event_wall=lambda: state.last_event_wall)
    on_events = view.on_events

    def observe(events: list[EngineEvent]) -> None:
        on_events(events, state.md_receipt_ns, state.step_done_ns)

    state.observers.append(observe)
    journal_records = _journal_records_source(runner)
    if journal_records is not None:
        metrics.journal_sources.append(journal_records)
    sock = bind_socket(settings.metrics.host, settings.metrics.port)
    server = MetricsServer(metrics, sock, ready_checks=ready_checks(state))
    return [server.run]


def build_for_engines(
    settings: Settings, engines: Sequence[Engine], ready: list[ReadyCheck]
) -> tuple[dict[str, SymbolMetrics], MetricsServer] | None:
    """Metrics for another driver (e.g. the live runner), or None when ``metrics.enabled`` is false.

    The driver feeds each engine's drained events to ``views[symbol].on_events(events)``
    and runs ``server.run(obj_with_stop_event)`` in its TaskGroup. The socket is bound
    here, so a taken port raises ConfigError before trading starts.
    """
    if not settings.metrics.enabled:
        return None
    metrics = Metrics(version=__version__, config_hash=config_hash(settings), mode=settings.mode)
    views = {engine.symbol: metrics.add_engine(engine) for engine in engines}
    server = MetricsServer(metrics, bind_socket(settings.metrics.host, settings.metrics.port), ready_checks=ready)
    return views, server


def _journal_records_source(runner: Runner) -> Callable[[], int] | None:
    """The paper journal's written-record counter, read at scrape time (0 without a journal).

    This hook runs before the audit hook (mmbot.app.hooks._AREAS order: the port is bound
    before any journal is opened), so the journal is looked up when the counter is read.
    A journal writer that calls ``mmbot.observability.counters.journal_records_written``
    itself needs none of this.
    """
    key = id(runner)

    def written() -> int:
        journal = getattr(hooks_audit, "_ACTIVE", {}).get(key)
        return int(getattr(getattr(journal, "writer", None), "written_records", 0))

    return written


def after_run(runner: Runner) -> None:
    return None
