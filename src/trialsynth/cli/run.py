"""``trialsynth run SPEC.toml``: fit, check, print, and write the analysis of a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialsynth.cli import render
from trialsynth.cli.fit import finish
from trialsynth.cli.options import AsJson, Strict
from trialsynth.cli.sensitivity import run_and_show


def run(
    spec_path: Annotated[
        Path, typer.Argument(metavar="SPEC.toml", help="Analysis spec (see models/).")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default from the spec: reports/NAME)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the spec's seed.")] = None,
    strict: Strict = False,
    refit: Annotated[
        bool,
        typer.Option(help="Sample again even if an identical fit is saved in the output folder."),
    ] = False,
    as_json: AsJson = False,
    force: Annotated[
        bool, typer.Option(help="Overwrite an output folder that holds a different analysis.")
    ] = False,
    formats: Annotated[
        str, typer.Option("--format", help="Report formats: html, md, pdf (comma-separated).")
    ] = "html,md",
    figure_formats: Annotated[
        str,
        typer.Option(
            "--figure-format",
            help="Figure formats, comma-separated: svg (always written), png (300 dpi), pdf.",
        ),
    ] = "svg",
) -> None:
    """Run an analysis spec: fit, check, print, and write summary, posterior and forest plot."""
    from trialsynth.report.pdf import FIGURE_FORMATS, REPORT_FORMATS, parse_formats
    from trialsynth.workflow import run as workflow
    from trialsynth.workflow.sensitivity import plan_sensitivity

    kinds = (
        parse_formats(formats, REPORT_FORMATS, "--format"),
        parse_formats(figure_formats, FIGURE_FORMATS, "--figure-format"),
    )
    plan = workflow.plan_run(
        spec_path,
        out_dir=out_dir,
        seed=seed,
        refit=refit,
        force=force,
        formats=kinds,
        notify=render.note,
    )
    scenarios = None
    if plan.spec.sensitivity:  # the spec's [sensitivity] scenarios (resumable)
        scenarios = plan_sensitivity(
            plan.spec, plan.data, plan.folder / "sensitivity", settings=plan.settings
        )
        workflow.compile_ahead(plan, scenarios)
    with render.progress(not as_json) as say:
        done = workflow.run_analysis(plan, progress=say, notify=render.note)
    if as_json:
        render.print_json(done.summary)
    else:
        render.print_summary(
            done.summary,
            title=plan.spec.title or plan.spec.name,
            timings=done.result.timings,
            shown_notices=plan.data.notices,
        )
        render.out.print(
            f"wrote {plan.folder}/ (summary.json, summary.csv, posterior.nc, forest.png, "
            "report.html, report.md, figures/)"
        )
    if scenarios is not None:
        sens = run_and_show(
            scenarios,
            workers=None,
            scheduler=None,
            quiet=as_json,
            elsewhere=plan.ahead,
            fitted=workflow.main_fit_scenario(plan, done, scenarios),
        )
        workflow.finish_run(plan, done, sens)
    finish(done.summary, strict)


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""
    app.command()(run)
