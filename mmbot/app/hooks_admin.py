"""Runner hooks of the risk area: the admin endpoint (see mmbot.app.hooks, mmbot.app.admin)."""

from __future__ import annotations

from typing import Any

import structlog

from mmbot.app.runner import Runner

log = structlog.get_logger("mmbot.admin")


def tasks(runner: Runner, *, fresh: bool) -> list[Any]:
    settings = runner.settings.admin
    if not settings.enabled:
        return []
    if settings.token is None or not settings.token.get_secret_value():
        log.info("admin_disabled", reason="no token", hint="set MMBOT_ADMIN__TOKEN to enable mmbot ctl")
        return []
    from mmbot.app.admin import serve

    async def admin_task(state: Any) -> None:
        await serve(runner, state)

    return [admin_task]


def after_run(runner: Runner) -> None:
    return None
