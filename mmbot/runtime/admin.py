"""Admin endpoint: kill switch and risk controls over HTTP, for `mmbot ctl` and scripts.

It always binds 127.0.0.1 (never configurable): in a container it is reached from
inside with ``docker exec NAME mmbot ctl ...`` or ``kubectl exec POD -- mmbot ctl ...``,
never from the network. It is separate from the metrics server and every request
must carry the token from the environment (``MMBOT_ADMIN__TOKEN``) as
``Authorization: Bearer TOKEN``; without a token configured the endpoint does not
start (SIGUSR1 and the kill switch file still work).

Routes (JSON in and out):

===========================  ===================================================
GET  /status                 risk state, reasons, kill switch, open orders, params
GET  /kill-switch            kill switch status
POST /kill-switch            ``{"engaged": true|false}``; on engage, answers after
                             the venue confirms zero open orders (``confirmed``)
POST /risk/clear             ``{"reason": "MAX_DRAWDOWN"}`` operator clear
GET  /orders                 our open orders (mmbot.runtime.views)
GET  /fills?last=N           the last N fills (default 20, at most 1000 kept)
GET  /pnl                    realised, unrealised, fees, net PnL per symbol
===========================  ===================================================

The calls are idempotent: engaging an engaged switch changes nothing but reports.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web

from mmbot.config.settings import Settings
from mmbot.domain.risk import parse_reason
from mmbot.runtime.controls import Controls
from mmbot.runtime.views import OperatorViews

log = structlog.get_logger("mmbot.admin")

ADMIN_HOST = "127.0.0.1"
DEFAULT_FILLS = 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlledRunner(Protocol):
    """What :func:`serve` needs of a runner: the node of every mode satisfies it."""

    settings: Settings
    controls: Controls
    views: OperatorViews | None


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"body must be JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def build_app(controls: Controls, token: str, views: OperatorViews | None = None) -> web.Application:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            log.warning("admin_unauthorized", path=request.path, peer=request.remote)
            return _json({"error": "missing or wrong token (Authorization: Bearer $MMBOT_ADMIN__TOKEN)"}, 401)
        return await handler(request)

    async def status(_: web.Request) -> web.Response:
        return _json(controls.status())

    async def kill_get(_: web.Request) -> web.Response:
        return _json(controls.kill_status())

    async def kill_post(request: web.Request) -> web.Response:
        data = await _body(request)
        engaged = data.get("engaged")
        if not isinstance(engaged, bool):
            return _json({"error": f"'engaged' must be true or false, was {engaged!r}"}, 400)
        started = time.monotonic()
        result = controls.set_kill_switch(engaged, source="admin")
        if engaged and "refused" not in result:
            confirmed = await controls.wait_flat(controls.settings.risk.kill_confirm_timeout_s)
            result = controls.kill_status() | {"confirmed": confirmed}
        result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 3)
        return _json(result, 409 if "refused" in result else 200)

    async def risk_clear(request: web.Request) -> web.Response:
        data = await _body(request)
        try:
            reason = parse_reason(str(data.get("reason", "")))
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        return _json(controls.clear_reason(reason, source="admin"))

    async def orders(_: web.Request) -> web.Response:
        return _json(views.orders() if views is not None else {"orders": [], "count": 0})

    async def fills(request: web.Request) -> web.Response:
        text = request.query.get("last", str(DEFAULT_FILLS))
        if not text.isdigit():
            return _json({"error": f"'last' must be a whole number >= 0, was {text!r}"}, 400)
        return _json(views.fills(int(text)) if views is not None else {"fills": [], "shown": 0, "total": 0})

    async def pnl(_: web.Request) -> web.Response:
        return _json(views.pnl() if views is not None else {"symbols": []})

    app = web.Application(middlewares=[auth])
    app.router.add_get("/orders", orders)
    app.router.add_get("/fills", fills)
    app.router.add_get("/pnl", pnl)
    app.router.add_get("/status", status)
    app.router.add_get("/kill-switch", kill_get)
    app.router.add_post("/kill-switch", kill_post)
    app.router.add_post("/risk/clear", risk_clear)
    return app


async def serve(runner: ControlledRunner, state: Any, on_listening: Callable[[int], None] | None = None) -> None:
    """Node service: serve until ``state.stop`` is set; a port that cannot be bound is logged, not fatal.
    ``on_listening(port)`` once bound (the run file records the port)."""
    settings = runner.settings.admin
    token = settings.token.get_secret_value() if settings.token is not None else ""
    controls = runner.controls
    app_runner = web.AppRunner(build_app(controls, token, runner.views), access_log=None)
    await app_runner.setup()
    try:
        site = web.TCPSite(app_runner, ADMIN_HOST, settings.port)
        try:
            await site.start()
        except OSError as exc:
            log.error("admin_unavailable", host=ADMIN_HOST, port=settings.port, error=str(exc),
                      hint="the kill switch still works with SIGUSR1 and risk.kill_switch_file")
            return
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else settings.port
        controls.admin_port = port
        log.info("admin_started", host=ADMIN_HOST, port=port)
        if on_listening is not None:
            on_listening(port)
        await state.stop.wait()
    finally:
        await app_runner.cleanup()
