"""The metrics/health server in-process: bind address, endpoints, readiness reasons, loop probe."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest

from mmbot.config.settings import MetricsSettings, load_settings
from mmbot.domain.events import BookSnapshot
from mmbot.errors import ConfigError
from mmbot.observability.metrics import Metrics
from mmbot.observability.server import MetricsServer, bind_socket
from mmbot.wiring import build_replay


@dataclass
class StopState:
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def test_bind_socket_when_default_settings_listens_on_loopback_only() -> None:
    defaults = MetricsSettings()

    sock = bind_socket(defaults.host, 0)
    host, port = sock.getsockname()[:2]
    sock.close()

    assert (defaults.host, defaults.port, defaults.enabled) == ("127.0.0.1", 9464, True)
    assert host == "127.0.0.1"
    assert port > 0


def test_bind_socket_when_port_taken_raises_config_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}.*MMBOT_METRICS__PORT"):
            bind_socket("127.0.0.1", port)


def test_bind_socket_when_host_is_not_an_address_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"metrics\.host 'no such host\.invalid'"):
        bind_socket("no such host.invalid", 0)


async def fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with asyncio.timeout(5), session.get(url) as r:
        return r.status, await r.text(), r.headers.get("Content-Type", "")


async def test_server_when_book_not_synced_readyz_says_why_then_ready_after_snapshot() -> None:
    built = build_replay(load_settings(environ={}), "20260101T000000Z-test0000")
    metrics = Metrics(version="0.1.0", config_hash="x", mode="paper", process_metrics=False)
    metrics.add_engine(built.engine)
    book = built.engine.book
    server = MetricsServer(
        metrics,
        bind_socket("127.0.0.1", 0),
        ready_checks=[lambda: None if book.is_synced else "order book BTC/USDT not synced"],
        probe_interval_s=0.02,
    )
    state = StopState()
    base = f"http://127.0.0.1:{server.port}"
    async with asyncio.TaskGroup() as tg, aiohttp.ClientSession() as session:
        task = tg.create_task(server.run(state))
        for _ in range(100):
            try:
                not_ready = await fetch(session, f"{base}/readyz")
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        book.apply_snapshot(BookSnapshot("BTC/USDT", 1, 10, ((100, 1000),), ((101, 1000),)))
        ready = await fetch(session, f"{base}/readyz")
        health = await fetch(session, f"{base}/healthz")
        exposition = await fetch(session, f"{base}/metrics")
        missing = await fetch(session, f"{base}/nope")
        state.stop.set()
    closed = True
    try:
        async with aiohttp.ClientSession() as session:
            await fetch(session, f"{base}/healthz")
        closed = False
    except aiohttp.ClientConnectionError:
        pass

    assert not_ready[0] == 503 and "order book BTC/USDT not synced" in not_ready[1]
    assert ready[:2] == (200, "ready\n")
    assert health[0] == 200 and '"status":"ok"' in health[1]
    assert exposition[0] == 200 and exposition[2].startswith("text/plain; version=0.0.4")
    assert 'mmbot_book_synced{symbol="BTC/USDT"} 1.0' in exposition[1]
    assert missing[0] == 404
    assert task.done() and closed


async def test_healthz_when_loop_probe_stalls_returns_503() -> None:
    metrics = Metrics(version="0.1.0", config_hash="x", mode="paper", process_metrics=False)
    now = [100.0]
    server = MetricsServer(metrics, bind_socket("127.0.0.1", 0), stall_after_s=5.0, clock=lambda: now[0])
    server.sock.close()

    alive = await server.handle_healthz(None)  # type: ignore[arg-type]
    now[0] += 6.0
    stalled = await server.handle_healthz(None)  # type: ignore[arg-type]

    assert alive.status == 200
    assert stalled.status == 503 and b"stalled" in stalled.body  # type: ignore[operator]


async def test_probe_when_loop_blocked_records_the_lag() -> None:
    metrics = Metrics(version="0.1.0", config_hash="x", mode="paper", process_metrics=False)
    server = MetricsServer(metrics, bind_socket("127.0.0.1", 0), probe_interval_s=0.01, refresh_interval_s=1.0)
    server.sock.close()
    stop = asyncio.Event()

    async def block_then_stop() -> None:
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # blocks the event loop on purpose: the probe wakes up about 0.2 s late
        for _ in range(5):
            await asyncio.sleep(0.01)  # a few on-time probes after the stall
        stop.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(server._probe(stop))
        tg.create_task(block_then_stop())
    lag = metrics.registry.get_sample_value("mmbot_event_loop_lag_seconds")

    assert lag is not None and lag >= 0.15
    assert server.last_lag_s < 0.15  # the latest probe was on time; the gauge kept the worst one


def test_open_observers_when_metrics_enabled_gives_one_view_per_symbol_on_loopback_else_none() -> None:
    from mmbot.wiring import ObserverRequest
    from tests.conftest import CAPTURE, replay_node

    watch = ObserverRequest(journal=False, record=False, admin=False)
    enabled = load_settings(environ={}, overrides={"metrics": {"port": 0}})
    disabled = load_settings(environ={}, overrides={"metrics": {"enabled": False}})
    node: Any = replay_node(enabled, "20260101T000000Z-test0000", CAPTURE, observers=watch)
    server = node.metrics_server
    assert server is not None
    server.sock.close()
    exposition = generate_latest(server.metrics.registry).decode()

    assert list(node.buses) == ["BTC/USDT"] and 'symbol="BTC/USDT"' in exposition
    assert server.host == "127.0.0.1" and server.port > 0
    assert replay_node(disabled, "20260101T000000Z-test0000", CAPTURE, observers=watch).metrics_server is None
