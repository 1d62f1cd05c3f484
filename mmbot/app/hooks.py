"""Extension points of the paper runner: journal, metrics, admin endpoint.

Each area adds its tasks/observers here so the runner itself stays small.
"""

from __future__ import annotations

from typing import Any

from mmbot.app.runner import Runner


def paper_tasks(runner: Runner, *, fresh: bool) -> list[Any]:
    """Coroutine factories ``f(state)`` to run beside the replay; they exit when state.stop is set."""
    return []


def after_run(runner: Runner) -> None:
    return None
