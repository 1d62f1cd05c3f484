"""Extension points of the paper runner: journal, metrics, admin endpoint.

Each area owns one module (``hooks_audit``, ``hooks_metrics``, ``hooks_admin``)
exposing ``tasks(runner, fresh=...) -> list`` and ``after_run(runner)``; this file
only combines them, so the areas never edit the same file.
"""

from __future__ import annotations

from typing import Any

from mmbot.app import hooks_admin, hooks_audit, hooks_metrics
from mmbot.app.runner import Runner

# Metrics first: it binds its port (a taken one exits 2) before the audit hook creates
# or continues a journal, so a failed start leaves no journal behind.
_AREAS = (hooks_metrics, hooks_audit, hooks_admin)


def paper_tasks(runner: Runner, *, fresh: bool) -> list[Any]:
    """Coroutine factories ``f(state)`` to run beside the replay; they exit when state.stop is set."""
    tasks: list[Any] = []
    for area in _AREAS:
        tasks.extend(area.tasks(runner, fresh=fresh))
    return tasks


def after_run(runner: Runner) -> None:
    for area in _AREAS:
        area.after_run(runner)
