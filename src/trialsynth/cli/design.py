"""``trialsynth design FIT``: assurance of a future trial from a saved fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trialsynth.cli import render
from trialsynth.cli.options import CLIError, Criterion
from trialsynth.cli.updated_meta import print_updated_design

# The options of ``design``, declared once here so that its signature stays readable.
_Fit = Annotated[Path, typer.Argument(metavar="FIT", help="Output folder of fit/run.")]
_NPerArm = Annotated[
    list[int] | None,
    typer.Option("--n-per-arm", help="Participants per arm (repeat for several sizes)."),
]
_NRange = Annotated[
    str | None, typer.Option("--n-range", help="Sizes per arm START:STOP:STEP, e.g. 50:1000:50")
]
_ControlRate = Annotated[
    float | None,
    typer.Option(help="Control-arm event rate (default: drawn from the fit's control arms)."),
]
_Alpha = Annotated[float, typer.Option(help="Two-sided level of the Wald test.")]
_Criterion = Annotated[
    Criterion,
    typer.Option(
        help="posterior: P(OR > 1) > --threshold; updated-meta: the meta-analysis with the "
        "new trial has P(OR > 1) > --threshold; updated-meta-classical: its "
        "DerSimonian-Laird 95% CI excludes 1"
    ),
]
_Threshold = Annotated[
    float, typer.Option(help="Posterior P(OR > 1) needed (criteria posterior, updated-meta).")
]
_AnalysisPrior = Annotated[
    str,
    typer.Option(help="Prior of the new trial's log-OR (criterion posterior): normal(m, s)."),
]
_Target = Annotated[float, typer.Option(help="Assurance wanted (reports the N).")]
_Sims = Annotated[int, typer.Option(help="Simulated future trials.")]
_Seed = Annotated[int | None, typer.Option(help="Seed (default: the fit's seed).")]
_Subgroup = Annotated[
    str | None, typer.Option(help="A future trial in this subgroup (subgroup fits).")
]
_Plot = Annotated[
    Path | None, typer.Option("--plot", help="Write the assurance curve figure (PNG).")
]
_RefitCheck = Annotated[
    int,
    typer.Option(
        help="updated-meta on an MCMC fit: where the Kish ESS near the threshold is below "
        "200, refit this many simulated trials by MCMC to check the reweighting (0: never)."
    ),
]
_Json = Annotated[bool, typer.Option("--json", help="Print the design object(s) as JSON.")]


def design(
    fit_dir: _Fit,
    n_per_arm: _NPerArm = None,
    n_range: _NRange = None,
    control_rate: _ControlRate = None,
    alpha: _Alpha = 0.05,
    criterion: _Criterion = Criterion.TWO_SIDED_TEST,
    threshold: _Threshold = 0.95,
    analysis_prior: _AnalysisPrior = "normal(0, 2.82)",
    target: _Target = 0.8,
    sims: _Sims = 40_000,
    seed: _Seed = None,
    subgroup: _Subgroup = None,
    plot: _Plot = None,
    refit_check: _RefitCheck = 5,
    as_json: _Json = False,
) -> None:
    """Assurance of a future trial (probability it shows benefit) from a saved fit."""
    from trialsynth.analysis import assurance
    from trialsynth.workflow import design as workflow

    sizes = list(n_per_arm or []) + (assurance.parse_n_range(n_range) if n_range else [])
    common: dict[str, Any] = {
        "control_rate": control_rate,
        "target": target,
        "sims": sims,
        "seed": seed,
    }
    if criterion.updated:
        if subgroup is not None:
            raise CLIError(f"--criterion {criterion.value} does not take --subgroup")
        updated = workflow.updated_design_from_folder(
            fit_dir,
            sizes,
            criterion=criterion.value,
            refit_check=refit_check,
            plot=plot,
            notify=None if as_json else render.note,
            threshold=threshold,
            alpha=alpha,
            **common,
        )
        if as_json:
            render.print_json(updated.design.to_json())
        else:
            print_updated_design(updated.design, render.out)  # type: ignore[arg-type]
        if not updated.fit.ok:
            render.err.print("[bold red]warning[/bold red]: this fit FAILED its convergence checks")
        return
    crit = assurance.Criterion.from_options(
        criterion.value, alpha=alpha, threshold=threshold, analysis_prior=analysis_prior
    )
    done = workflow.design_from_folder(
        fit_dir, sizes, criterion=crit, plot=plot, subgroup=subgroup, **common
    )
    if not done.fit.ok:
        render.err.print(
            "[bold red]warning[/bold red]: this fit FAILED its convergence checks; "
            'its design numbers are marked "fit_status": "failed"'
        )
    if as_json:
        render.print_json(done.design.to_json())
        return
    render.print_design(done.design, subgroup=subgroup, criterion=crit.describe())


def register(app: typer.Typer) -> None:
    """Add ``design`` to the app."""
    app.command()(design)
