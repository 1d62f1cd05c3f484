"""``mmbot report RUN_OR_SUMMARY`` (the bar backtest behind ``mmbot backtest --bars`` is mmbot.cli.bars).

    mmbot backtest --bars bundled --config config/profiles/seed-bars.yaml --out reports/seed-bars --report
    mmbot report reports/seed-bars            # or .../summary.json, or a --summary-json file

Every run (paper, L2 backtest, bar backtest) leaves a run record
(:mod:`mmbot.research.record`); the report is built from it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mmbot.cli.common import console, guarded, make_report
from mmbot.config.settings import load_settings
from mmbot.extras import REPORT_MODULES, RESEARCH, require
from mmbot.observability.logging import configure_logging


def register(app: typer.Typer) -> None:
    @app.command("report")
    @guarded
    def report(
        run: Annotated[str, typer.Argument(help="run directory, its summary.json, or a --summary-json file of a run")],
        out: Annotated[str | None, typer.Option("--out", help="directory for report.html/report.png (default: the run directory)")] = None,
        config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (logging settings)")] = None,
        self_contained: Annotated[
            bool, typer.Option("--self-contained", help="inline plotly.js (+4.7 MB) instead of the shared plotly-<version>.min.js beside the run directory")
        ] = False,
    ) -> None:
        """Write the HTML report (charts; plotly.js from one shared bundle, no network) and a PNG of the main chart; print their paths."""
        require(RESEARCH, "mmbot report", *REPORT_MODULES)
        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        html_path, png_path = make_report(run, out, self_contained=self_contained)
        console.print(str(html_path), highlight=False, soft_wrap=True)
        console.print(str(png_path), highlight=False, soft_wrap=True)
