"""Runner hooks of the risk area: the admin endpoint (see mmbot.app.hooks, mmbot.app.admin).

Used by the replay runner (through mmbot.app.hooks) and by the live and sandbox
runners (mmbot.app.live), which pass themselves: both have ``settings`` and
``controls``, and the task's ``state`` argument needs only ``stop``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from mmbot.app.admin import ControlledRunner

log = structlog.get_logger("mmbot.admin")


def tasks(runner: ControlledRunner, *, fresh: bool) -> list[Any]:
    settings = runner.settings.admin
    if not settings.enabled:
        return []
    if settings.token is None or not settings.token.get_secret_value():
        log.info("admin_disabled", reason="no token", hint="set MMBOT_ADMIN__TOKEN to enable mmbot ctl")
        return []
    from mmbot.app.admin import serve  # aiohttp is slow to import: only when the endpoint starts

    async def admin_task(state: Any) -> None:
        await serve(runner, state)

    return [admin_task]


def after_run(runner: ControlledRunner) -> None:
    return None
