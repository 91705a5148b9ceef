"""``trialsynth compare DATA``: models by leave-one-trial-out ELPD."""

from __future__ import annotations

from typing import Annotated

import typer

from trialsynth.cli import render
from trialsynth.cli.fit import priors_from_options
from trialsynth.cli.options import DATA_HELP, Chains, Draws, Seed, Tune
from trialsynth.core.settings import DEFAULT_SEED, SamplerSettings


def compare(
    data: Annotated[str, typer.Argument(help=DATA_HELP)],
    models: Annotated[
        str,
        typer.Option(help="Comma-separated: normal, student-t, common-effect, covariate:COLUMN"),
    ] = "normal,student-t,common-effect",
    mu_prior: Annotated[str | None, typer.Option(help="Prior of the pooled log-OR.")] = None,
    tau_prior: Annotated[str | None, typer.Option(help="Heterogeneity prior.")] = None,
    baseline_prior: Annotated[
        str | None, typer.Option(help="Prior of control-arm log-odds (must be proper).")
    ] = None,
    nu: Annotated[float, typer.Option(help="Degrees of freedom of the student-t model.")] = 4.0,
    k_threshold: Annotated[
        float | None,
        typer.Option(
            help="Refit trials with PSIS k above this (default: every trial for binomial "
            "data, 0.7 for contrasts)."
        ),
    ] = None,
    draws: Draws = 2000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """Compare models by leave-one-trial-out ELPD (exact refits where PSIS is unreliable)."""
    from trialsynth.analysis.loo import compare_models, parse_models
    from trialsynth.data import load

    priors = priors_from_options(mu=mu_prior, tau=tau_prior, baseline=baseline_prior)
    settings = SamplerSettings(
        draws=draws, tune=tune, chains=chains, seed=DEFAULT_SEED if seed is None else seed
    )
    trials = load(data, min_trials=3)
    specs = parse_models(models, trials, nu=nu)
    for notice in trials.notices:
        render.note(notice)
    with render.progress(not as_json) as say:
        result = compare_models(
            trials, specs, priors=priors, settings=settings, k_threshold=k_threshold, progress=say
        )
    rows = result.rows()
    if as_json:
        for row in rows:
            render.print_json(row, indent=None)
    else:
        roles = ["mu", "tau", "baseline"] if trials.kind == "arm" else ["mu", "tau"]
        if any(s.covariates for s in specs.values()):
            roles.append("beta")
        shown = priors.to_dict()
        render.print_comparison(
            rows,
            title=f"{trials.name}: leave-one-trial-out ELPD ({trials.k} trials)",
            k=trials.k,
            priors="; ".join(f"{k} ~ {shown[k]}" for k in roles),
        )
    render.warn_comparison(rows)


def register(app: typer.Typer) -> None:
    """Add ``compare`` to the app."""
    app.command()(compare)
