"""CLI commands of one area, registered by mmbot.app.cli."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
