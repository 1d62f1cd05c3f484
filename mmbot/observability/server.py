"""The metrics and health HTTP server (aiohttp, on the daemon's own event loop).

Endpoints (default 127.0.0.1:9464, ``metrics.host`` / ``metrics.port``):

* ``GET /metrics``: Prometheus text format 0.0.4.
* ``GET /healthz``: 200 while the process and its event loop are alive: the loop
  probe woke up within ``stall_after_s`` (a stalled loop cannot answer at all; a
  dead probe task answers 503). Body: JSON with the last loop lag and uptime.
* ``GET /readyz``: 200 ``ready`` when every readiness check passes (book synced,
  executor connected, ...); otherwise 503 and one line per failing check.

The server runs on the trading loop on purpose: a scrape proves the loop is alive,
and reading engine state needs no locks. Its socket is bound before the loop
starts (:func:`bind_socket`), so a taken port is a configuration error with exit
status 2, not a crash inside the task group.

The loop-lag probe sleeps ``probe_interval_s`` and records how late it woke up;
``mmbot_event_loop_lag_seconds`` is the worst lag of the last ``refresh_interval_s``. Every ``refresh_interval_s`` it also refreshes
the metrics (markout histogram, staleness).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from mmbot.errors import ConfigError
from mmbot.observability.metrics import Metrics

log = structlog.get_logger("mmbot.observability")

ReadyCheck = Callable[[], str | None]  # None = ready, else why not


class _Stoppable(Protocol):
    @property
    def stop(self) -> asyncio.Event: ...


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 = ephemeral); ConfigError when it cannot bind."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"metrics.host {host!r} is not a usable address: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"metrics server cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "set metrics.port (MMBOT_METRICS__PORT, 0 = any free port) or metrics.enabled: false"
        ) from exc
    sock.setblocking(False)
    return sock


class MetricsServer:
    def __init__(
        self,
        metrics: Metrics,
        sock: socket.socket,
        *,
        ready_checks: list[ReadyCheck] | None = None,
        probe_interval_s: float = 0.25,
        refresh_interval_s: float = 1.0,
        stall_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self.sock = sock
        self.ready_checks = ready_checks or []
        self.probe_interval_s = probe_interval_s
        self.refresh_interval_s = refresh_interval_s
        self.stall_after_s = stall_after_s
        self.clock = clock
        self.started = clock()
        self.heartbeat = clock()
        self.last_lag_s = 0.0
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port

    # --- handlers ---------------------------------------------------------------------------
    async def handle_metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def handle_healthz(self, _: web.Request) -> web.Response:
        now = self.clock()
        alive = now - self.heartbeat <= self.stall_after_s
        body = {
            "status": "ok" if alive else "event loop probe stalled",
            "loop_lag_seconds": round(self.last_lag_s, 6),
            "probe_age_seconds": round(now - self.heartbeat, 3),
            "uptime_seconds": round(now - self.started, 3),
        }
        return web.Response(
            body=orjson.dumps(body) + b"\n", status=200 if alive else 503, content_type="application/json"
        )

    async def handle_readyz(self, _: web.Request) -> web.Response:
        problems = [p for check in self.ready_checks if (p := check()) is not None]
        if problems:
            return web.Response(text="not ready:\n" + "".join(f"- {p}\n" for p in problems), status=503)
        return web.Response(text="ready\n")

    async def handle_index(self, _: web.Request) -> web.Response:
        return web.Response(text="mmbot: /metrics /healthz /readyz\n")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        app.router.add_get("/", self.handle_index)
        return app

    # --- lifecycle --------------------------------------------------------------------------------
    async def run(self, state: _Stoppable) -> None:
        """Serve until ``state.stop`` is set (a coroutine factory for the runner's TaskGroup)."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.SockSite(runner, self.sock, shutdown_timeout=1.0).start()
            log.info("metrics_server_started", host=self.host, port=self.port, url=f"http://{self._url_host()}:{self.port}/metrics")
            await self._probe(state.stop)
        finally:
            with contextlib.suppress(Exception):
                await runner.cleanup()
            self.sock.close()

    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    async def _probe(self, stop: asyncio.Event) -> None:
        interval = self.probe_interval_s
        # The gauge shows the worst lag of the last refresh interval, so a short stall
        # between two scrapes is not overwritten by the next on-time probe.
        recent: deque[float] = deque(maxlen=max(1, math.ceil(self.refresh_interval_s / interval)))
        next_refresh = self.clock() + self.refresh_interval_s
        while not stop.is_set():
            before = self.clock()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
            now = self.clock()
            self.heartbeat = now
            if stop.is_set():
                break
            self.last_lag_s = max(0.0, now - before - interval)
            recent.append(self.last_lag_s)
            self.metrics.loop_lag.set(max(recent))
            if now >= next_refresh:
                next_refresh = now + self.refresh_interval_s
                self.metrics.refresh()

    def info(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port}
