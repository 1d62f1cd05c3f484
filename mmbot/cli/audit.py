"""``mmbot audit``: verify a journal, recompute its summary, check for wash trades.

Exit statuses:

* ``verify``: 0 chain intact and sealed; 1 tampered (the first bad record is
  named); 4 unsealed (crash or still running) with no damage but possibly a torn
  last line; 2 no journal at PATH.
* ``summary``: 0 when the recomputed fields equal the run's own summary (or the
  journal is unsealed and intact); 1 when they differ or the journal is tampered.
* ``wash``: 0 nothing found; 1 a fill against our own order or an order that
  would have crossed our own resting order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from mmbot.audit.state import fold
from mmbot.audit.verify import EXIT_TAMPERED, EXIT_UNSEALED, VerifyResult, find_journals, verify_journal
from mmbot.cli.common import console, err_console, guarded, print_summary
from mmbot.config.settings import load_settings
from mmbot.errors import ConfigError

PathsArg = Annotated[
    list[str] | None,
    typer.Argument(help="journal directories (or a directory holding journals, or a file in one); default: audit.dir"),
]
ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (its audit.dir is the default PATH)")]


def _paths(paths: list[str] | None, config: str | None) -> list[str]:
    if paths:
        return paths

    return [load_settings(config).audit.dir]


def _journals(paths: list[str]) -> list[Path]:
    found = find_journals(paths)
    if not found:
        raise ConfigError(f"no audit journal found at {', '.join(paths)} (expected a directory with manifest.json and seg-*.jsonl files)")
    return found


def _worst(results: list[VerifyResult]) -> int:
    codes = {r.exit_code for r in results}
    if EXIT_TAMPERED in codes:
        return EXIT_TAMPERED
    if EXIT_UNSEALED in codes:
        return EXIT_UNSEALED
    return 0


def summarize(directory: Path) -> tuple[dict[str, Any], int]:
    result = verify_journal(directory)
    state = fold(result.records)
    out: dict[str, Any] = {"journal": str(directory), "verify": result.status}
    if result.status == "tampered":
        out["problem"] = result.problem
    out.update(state.summary())
    mismatches = state.compare_with_run()
    if state.run_stop is not None:
        out["matches_run_summary"] = not mismatches
        if mismatches:
            out["mismatches"] = mismatches
    code = 1 if result.status == "tampered" or mismatches else 0
    return out, code


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="Audit journals: verify the hash chain, recompute the summary, check for wash trades.", no_args_is_help=True)

    @audit.command("verify")
    @guarded
    def verify(paths: PathsArg = None, config: ConfigOpt = None) -> None:
        """Check the hash chain, the manifest checkpoint and the seal (exit 0 ok, 1 tampered, 4 unsealed)."""
        results = [verify_journal(d) for d in _journals(_paths(paths, config))]
        for r in results:
            (console if r.status == "ok" else err_console).print(r.describe(), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(_worst(results))

    @audit.command("summary")
    @guarded
    def summary(
        paths: PathsArg = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        config: ConfigOpt = None,
    ) -> None:
        """Recompute fills, volume, fees, PnL and position from the journal alone."""
        outs = []
        code = 0
        for d in _journals(_paths(paths, config)):
            out, c = summarize(d)
            outs.append(out)
            code = max(code, c)
        if as_json:
            doc: Any = outs[0] if len(outs) == 1 else outs
            typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        else:
            for out in outs:
                print_summary(out, f"journal summary {Path(out['journal']).name}")
        raise typer.Exit(code)

    @audit.command("wash")
    @guarded
    def wash(paths: PathsArg = None, config: ConfigOpt = None) -> None:
        """Report fills against our own orders and orders that would have crossed our own resting order."""
        code = 0
        for d in _journals(_paths(paths, config)):
            result = verify_journal(d)
            state = fold(result.records)
            findings = state.self_trades + state.crossing_orders
            console.print(
                f"{d}: {len(state.self_trades)} fills against our own orders, "
                f"{len(state.crossing_orders)} orders that would have crossed our own resting order"
                f"{'' if result.status != 'tampered' else ' (journal TAMPERED: ' + result.problem + ')'}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            for line in findings[:50]:
                console.print("  " + line, highlight=False, markup=False)
            if findings:
                code = 1
        raise typer.Exit(code)

    app.add_typer(audit, name="audit")
