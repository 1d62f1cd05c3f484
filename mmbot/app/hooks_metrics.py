"""Runner hooks of one area (see mmbot.app.hooks)."""

from __future__ import annotations

from typing import Any

from mmbot.app.runner import Runner


def tasks(runner: Runner, *, fresh: bool) -> list[Any]:
    return []


def after_run(runner: Runner) -> None:
    return None
