"""``mmbot rerun RUN``, ``mmbot divergence RUN``, ``mmbot calibrate RUN...``: recorded live-fed runs replayed.

``rerun`` (open loop, the default): the run's recorded market data through the
simulated venue with the run's own order actions at their recorded send times
(:func:`mmbot.research.rerun.open_loop`); prints the venue's and the model's fill
figures side by side. ``--closed-loop``: the strategy re-decides on the recorded
market data, with the run's feed signals and venue risk inputs applied at their
times (the engine, risk gate and simulated venue of a backtest, built by the
composition root); prints whether the risk-state transitions came in the same order
and which summary fields differ, each with the reason it cannot match.

The simulated venue uses the run's own ``sim`` and ``fees`` settings (from its
journal) unless ``--config`` gives others (e.g. a ``sim:`` block printed by
``mmbot calibrate``).

``calibrate``: the latency of entry, cancel and market data fitted from the runs'
send/ack/event times, then the queue model and ``prob_power`` chosen by the smallest
divergence (:mod:`mmbot.research.calibrate`); prints the divergence by cause before
and after, the fill figures, a reliability table and the fitted ``sim:`` block.

RUN: a journal directory, a run record directory (``record.dir/<run_id>``) or a run
id (its journal is searched under ``audit.dir``). Exit 2 when RUN has no journal or
the journal names no market recording (only live-fed runs record one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mmbot.cli.common import guarded, write_json_atomic
from mmbot.config.settings import Settings, load_settings
from mmbot.errors import ConfigError, DataError

RunArg = Annotated[str, typer.Argument(help="journal directory, run record directory or run id of a sandbox/live/live-paper run")]
ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="YAML config whose sim/fees sections the simulated venue uses (default: the run's own)")]
AuditOpt = Annotated[str | None, typer.Option("--audit-dir", help="where to look for the journal of a run id (default: audit.dir)")]


def run_settings(run: Any, config: str | None) -> Settings:
    """The run's own settings (from its journal); ``config``'s sim and fees sections replace its own."""
    try:
        settings = Settings.model_validate(run.config)
    except ValueError as exc:
        raise DataError(f"the config journaled by run {run.run_id} no longer validates: {exc}") from exc
    if config:
        other = load_settings(config)
        settings = settings.model_copy(update={"sim": other.sim, "fees": other.fees})
    return settings


def load_run(run_arg: str, audit_dir: str | None, config: str | None) -> Any:
    from mmbot.research.rerun import load_recorded_run, resolve_journal  # numpy: not for every mmbot call

    base = load_settings(config) if config else load_settings(None)
    try:
        return load_recorded_run(resolve_journal(run_arg, audit_dir or base.audit.dir))
    except DataError as exc:
        raise ConfigError(str(exc)) from exc


def closed_loop(run: Any, settings: Settings) -> dict[str, Any]:
    """The strategy re-run on the recording with the run's signals; the rerun's summary.

    Its run record (the same metrics as the run's own) goes next to the recording, in
    ``rerun-closed-loop/``; no journal, metrics endpoint or admin endpoint is opened.
    """
    from mmbot import wiring
    from mmbot.runtime.sources import RecordedInput

    inputs = [RecordedInput(ts, kind, payload) for ts, kind, payload in run.inputs]
    request = wiring.RunRequest(paths=[str(run.recording)], mode_label="rerun", inputs=inputs)
    observers = wiring.ObserverRequest(record=True, record_out=str(run.recording.parent / "rerun-closed-loop"), metrics=False,
                                       admin=False, journal=False)
    node = wiring.build_node(settings, f"rerun-{run.run_id}", request, observers)
    return node.run_sync()


def _step(step: list[Any] | None) -> str:
    return f"{step[0]} -> {step[1]} {','.join(step[2])}" if step else "-"


def register(app: typer.Typer) -> None:
    register_calibrate(app)

    @app.command()
    @guarded
    def rerun(
        run: RunArg,
        config: ConfigOpt = None,
        closed_loop_: Annotated[bool, typer.Option("--closed-loop", help="the strategy re-decides (default: the run's own order actions)")] = False,
        audit_dir: AuditOpt = None,
        out: Annotated[str | None, typer.Option("--out", help="write the result as JSON here")] = None,
    ) -> None:
        """Replay a recorded sandbox/live run through the simulated venue (open or closed loop)."""
        from mmbot.research.rerun import compare_closed_loop, open_loop, summarise_fills
        from mmbot.wiring import venue_config

        recorded = load_run(run, audit_dir, config)
        settings = run_settings(recorded, config)
        console = Console()
        if closed_loop_:
            summary = closed_loop(recorded, settings)
            result = compare_closed_loop(recorded.summary, summary)
            view = Table(title=f"closed-loop rerun of {recorded.run_id}: risk-state transitions")
            for column in ("#", "run", "rerun", "offset ms"):
                view.add_column(column)
            a, b = result["run_transitions"], result["rerun_transitions"]
            for i in range(max(len(a), len(b))):
                offset = result["transition_offsets_ms"][i] if i < len(result["transition_offsets_ms"]) else ""
                view.add_row(str(i + 1), _step(a[i] if i < len(a) else None), _step(b[i] if i < len(b) else None), str(offset))
            console.print(view)
            print(f"transitions in the same order: {'yes' if result['transitions_equal'] else 'NO'}")
            print(f"summary fields equal: {len(result['fields_equal'])}; cannot match: {len(result['fields_unmatchable'])}; "
                  f"unexplained differences: {', '.join(result['fields_unexplained']) or 'none'}")
            reasons: dict[str, list[str]] = {}
            for key, why in result["fields_unmatchable"].items():
                reasons.setdefault(why, []).append(key)
            for why, keys in reasons.items():
                print(f"  differ ({why}): {', '.join(keys)}")
            document: dict[str, Any] = {"run_id": recorded.run_id, "mode": "closed_loop", **result, "rerun_summary": summary}
        else:
            model = open_loop(recorded, venue_config(settings), settings.sim.md_latency_ms)
            venue_side = summarise_fills(recorded.fills, model.last_mid, recorded.instrument)
            model_side = summarise_fills(model.fills, model.last_mid, recorded.instrument)
            view = Table(title=f"open-loop rerun of {recorded.run_id} ({len(recorded.actions)} order actions, {model.events} events, "
                               f"fill model {settings.sim.fill_model})")
            for column in ("figure", "venue", "model"):
                view.add_column(column)
            for key in venue_side:
                view.add_row(key, str(venue_side[key]), str(model_side[key]))
            console.print(view)
            document = {"run_id": recorded.run_id, "mode": "open_loop", "venue": venue_side, "model": model_side,
                        "sim": settings.sim.model_dump(mode="json")}
        if out:
            write_json_atomic(out, document)

    @app.command()
    @guarded
    def divergence(
        run: RunArg,
        config: ConfigOpt = None,
        audit_dir: AuditOpt = None,
        out: Annotated[str | None, typer.Option("--out", help="directory for divergence.json and divergence.html (default: the run record)")] = None,
        worst: Annotated[int, typer.Option("--worst", help="orders drawn in the per-order timeline", min=1, max=100)] = 8,
    ) -> None:
        """Match the open-loop replay's fills to the venue's, order by order, and explain every difference."""
        from mmbot.research.divergence import divergence_report, write_divergence
        from mmbot.research.rerun import open_loop
        from mmbot.wiring import venue_config

        recorded = load_run(run, audit_dir, config)
        settings = run_settings(recorded, config)
        model = open_loop(recorded, venue_config(settings), settings.sim.md_latency_ms)
        report = divergence_report(recorded, model)
        directory = Path(out) if out else recorded.recording.parent
        paths = write_divergence(report, recorded, model, directory, worst=worst)
        view = Table(title=f"divergence of {recorded.run_id}: open-loop model ({settings.sim.fill_model}) vs venue, by cause")
        for column in ("cause", "orders", "PnL impact (venue - model)"):
            view.add_column(column)
        for row in report["causes"]:
            view.add_row(row["cause"], str(row["orders"]), row["pnl_impact"])
        Console().print(view)
        totals = report["totals"]
        print(f"orders {totals['orders']}, matched {totals['matched']}, diverged {totals['diverged']}; "
              f"PnL venue {totals['venue_pnl']} model {totals['model_pnl']}; divergence score {totals['score']}")
        print(f"wrote {paths['json']} and {paths['html']}")


def register_calibrate(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def calibrate(
        runs: Annotated[list[str], typer.Argument(help="journal directories, run record directories or run ids of sandbox/live runs")],
        config: ConfigOpt = None,
        audit_dir: AuditOpt = None,
        seeds: Annotated[int, typer.Option("--seeds", help="latency draws averaged for the fill figures and the reliability table", min=1, max=50)] = 5,
        out: Annotated[str | None, typer.Option("--out", help="write the result as JSON here")] = None,
    ) -> None:
        """Fit latency (from send/ack/event times) and the queue model + prob_power (by divergence); print a sim: block."""
        import yaml

        from mmbot.research.calibrate import calibrate as fit
        from mmbot.wiring import venue_config

        recorded = [load_run(r, audit_dir, config) for r in runs]
        settings = run_settings(recorded[0], config)
        try:
            result = fit(recorded, venue_config(settings), settings.sim.md_latency_ms, seeds=seeds)
        except ValueError as exc:
            raise ConfigError(f"calibrate: {exc}") from exc
        console = Console()
        view = Table(title=f"divergence by cause over {len(recorded)} run(s): before (the runs' own sim settings) and after the fit")
        for column in ("cause", "orders before", "PnL impact before", "orders after", "PnL impact after"):
            view.add_column(column)
        before, after = result["before"]["causes"], result["after"]["causes"]
        for cause in before:
            view.add_row(cause, str(before[cause]["orders"]), before[cause]["pnl_impact"], str(after[cause]["orders"]), after[cause]["pnl_impact"])
        console.print(view)
        print(f"divergence score: before {result['before']['score']}, after {result['after']['score']}")
        b, a = result["before"]["fills_mean_over_seeds"], result["after"]["fills_mean_over_seeds"]
        print(f"fills (mean of {seeds} seeds): venue {b['venue_fills']}, before {b['model_fills']}, after {a['model_fills']}; "
              f"filled lots: venue {b['venue_filled_lots']}, before {b['model_filled_lots']}, after {a['model_filled_lots']}")
        rel = Table(title="reliability: predicted (model) vs observed (venue) fill rate by queue ahead at arrival (base units)")
        for column in ("queue ahead", "orders", "predicted", "observed", "observed 95 %"):
            rel.add_column(column)
        for row in result["reliability"]:
            rel.add_row(row["queue_ahead"], str(row["orders"]), str(row["predicted"]), str(row["observed"]), str(row["observed_95"]))
        console.print(rel)
        print(f"# fitted in {result['elapsed_s']} s; entry latency median {result['latency']['entry_median_ms']} ms "
              f"({result['latency']['samples']['entry']} samples); paste into a config:")
        print(yaml.safe_dump({"sim": result["sim"]}, sort_keys=False), end="")
        if out:
            write_json_atomic(out, result)
