"""``trialsynth sensitivity SPEC.toml``: the scenarios of a spec's ``[sensitivity]`` section."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trialsynth.cli import render
from trialsynth.cli.options import EXIT_NOT_CONVERGED, CLIError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from trialsynth.analysis.sensitivity import Elsewhere
    from trialsynth.results.base import FitResult
    from trialsynth.workflow.sensitivity import SensitivityPlan


def run_and_show(
    plan: SensitivityPlan,
    *,
    workers: int | None,
    scheduler: str | None,
    quiet: bool,
    elsewhere: Elsewhere | None = None,
    fitted: Mapping[str, FitResult] | None = None,
) -> Any:
    """Run the scenarios of ``plan`` with a progress bar, then print their table.

    ``quiet`` (``--json``): no bar and no table; failed scenarios are still named.
    ``elsewhere``: those ``run``'s second process is fitting; ``fitted``: ``run``'s main fit.
    """
    from trialsynth.models.schema import AXES
    from trialsynth.workflow.sensitivity import run_sensitivity

    result = run_sensitivity(
        plan,
        workers=workers,
        scheduler=scheduler,
        tracker=None if quiet else render.scenario_bar,
        elsewhere=elsewhere,
        fitted=fitted,
    )
    if not quiet:
        render.print_sensitivity(result, title=plan.title, axes=AXES)
        how = [f"{len(result.given)} the main fit"] if result.given else []
        how += [f"{len(result.beside)} in a second process"] if result.beside else []
        beside = f" ({'; '.join(how)})" if how else ""
        render.out.print(
            f"{len(result.ran)} scenario(s) fitted{beside}, {len(result.reused)} reused from "
            f"{plan.folder}/scenarios in {result.wall_s:.1f}s; wrote {plan.folder}/ "
            "(sensitivity.csv, sensitivity.json, sensitivity.png, sensitivity.svg)"
        )
    elif result.failed:
        for r in result.failed:
            render.err.print(
                f"warning: scenario {r['scenario']} ({r['label']}) failed: {r['error']}"
            )
    return result


def sensitivity(
    spec_path: Annotated[
        Path,
        typer.Argument(metavar="SPEC.toml", help="Analysis spec with a sensitivity section."),
    ],
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (default: the spec's, else 1 = this process)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask distributed scheduler, e.g. tcp://HOST:PORT (instead of workers)."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: the spec's output dir/sensitivity)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the spec's seed.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the rows (one object per scenario) as JSON.")
    ] = False,
    strict: Annotated[bool, typer.Option(help="Exit 3 when any scenario failed.")] = False,
) -> None:
    """Refit the analysis over the scenarios of its spec's sensitivity section (resumable)."""
    if workers is not None and workers < 1:
        raise CLIError(f"--workers must be >= 1, got {workers}")
    from trialsynth.workflow.sensitivity import load_sensitivity

    plan = load_sensitivity(
        spec_path, out_dir=out_dir, seed=seed, notify=None if as_json else render.note
    )
    result = run_and_show(plan, workers=workers, scheduler=scheduler, quiet=as_json)
    if as_json:
        render.print_json(result.rows)
    if strict and result.failed:
        raise typer.Exit(EXIT_NOT_CONVERGED)


def register(app: typer.Typer) -> None:
    """Add ``sensitivity`` to the app."""
    app.command()(sensitivity)
