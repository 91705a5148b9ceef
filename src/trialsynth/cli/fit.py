"""``trialsynth fit DATA`` and ``fit --from FIT``: parse the options, call the workflow, render.

The workflow (:mod:`trialsynth.workflow.fit`) is imported when a command runs, not when the
CLI starts: it pulls in scipy and xarray, and ``--help`` should not wait for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trialsynth.cli import render
from trialsynth.cli.options import (
    EXIT_NOT_CONVERGED,
    FIT_DATA_HELP,
    AsJson,
    Benefit,
    Chains,
    CLIError,
    Draws,
    FitEngine,
    Likelihood,
    Model,
    RandomEffects,
    Seed,
    Strict,
    SubgroupTau,
    Tune,
)
from trialsynth.core.settings import DEFAULT_SEED, SamplerSettings

if TYPE_CHECKING:
    from trialsynth.priors.prior import PriorSet
    from trialsynth.workflow.fit import FitOutcome

#: Options of ``fit`` that may be combined with ``--from`` (the rest define the analysis).
REDO_OPTIONS = ("from_fit", "out_dir", "as_json", "strict", "force")


def priors_from_options(**options: str | None) -> PriorSet:
    """The priors of ``--mu-prior`` etc. (keyword: role); a bad one names its option."""
    from trialsynth.priors.prior import PriorError, PriorSet, parse_prior

    for role, text in options.items():
        try:
            if text:
                parse_prior(text, role)  # type: ignore[arg-type]
        except PriorError as e:  # say which option held the bad prior
            raise CLIError(f"--{role}-prior: {e}") from None
    return PriorSet.from_strings(**options)


def show(done: FitOutcome, *, title: str, as_json: bool, notices: tuple[str, ...]) -> None:
    """The summary of a fit as JSON, or as its table (data ``notices`` already printed)."""
    if as_json:
        render.print_json(done.summary)
    else:
        render.print_summary(
            done.summary, title=title, timings=done.result.timings, shown_notices=notices
        )


def finish(summary: dict[str, Any], strict: bool) -> None:
    """Warn about a fit that failed its checks; under ``--strict`` exit with code 3."""
    if render.report_failed(summary) and strict:
        raise typer.Exit(EXIT_NOT_CONVERGED)


# The options of ``fit``, declared once here so that its signature stays readable.
_Data = Annotated[str | None, typer.Argument(help=FIT_DATA_HELP)]
_Outcome = Annotated[
    str | None,
    typer.Option(help="RevMan outcome: C.O (comparison.outcome, e.g. 1.1) or its name."),
]
_Model = Annotated[Model, typer.Option(help="The model of the trials' effects.")]
_Engine = Annotated[
    FitEngine,
    typer.Option(
        help="auto: exact for normal-normal where the priors allow, else MCMC; both: exact "
        "and MCMC side by side with their agreement."
    ),
]
_Likelihood = Annotated[Likelihood | None, typer.Option(help="For common-effect.")]
_MuPrior = Annotated[
    str | None, typer.Option(help="Prior of the pooled log-OR, e.g. 'normal(0, 2.82)'.")
]
_TauPrior = Annotated[
    str | None, typer.Option(help="Heterogeneity prior, e.g. 'half-normal(0.5)'.")
]
_BaselinePrior = Annotated[
    str | None, typer.Option(help="Prior of control-arm log-odds, e.g. 'logistic(0, 1)'.")
]
_RandomEffects = Annotated[
    RandomEffects, typer.Option(help="Distribution of the trial effects around mu.")
]
_Nu = Annotated[
    float | None,
    typer.Option(help="Fixed degrees of freedom of student-t random effects (default 4)."),
]
_NuPrior = Annotated[
    str | None,
    typer.Option(
        help="Estimate the student-t degrees of freedom under this prior, e.g. "
        "'gamma(2, 0.1)' (Juarez & Steel 2010)."
    ),
]
_Subgroup = Annotated[
    str | None,
    typer.Option(help="Covariate column with one pooled effect per level, e.g. population."),
]
_SubgroupTau = Annotated[
    SubgroupTau, typer.Option(help="One heterogeneity SD for all subgroups, or one each.")
]
_Covariate = Annotated[
    list[str] | None,
    typer.Option(help="Numeric covariate of a meta-regression (repeat for several)."),
]
_BetaPrior = Annotated[
    str | None, typer.Option(help="Prior of the meta-regression slopes, e.g. 'normal(0, 1)'.")
]
_TargetAccept = Annotated[float, typer.Option(help="NUTS target acceptance.")]
_Out = Annotated[
    Path | None,
    typer.Option("--out", help="Write posterior.nc, summary.json, summary.csv, forest.png here."),
]
_From = Annotated[
    Path | None,
    typer.Option(
        "--from",
        metavar="FIT",
        help="Redo a saved fit from its recorded provenance (data, model, priors, "
        "sampler settings, seed) and say whether the numbers are identical.",
    ),
]
_Force = Annotated[
    bool, typer.Option(help="Overwrite an --out folder that holds a different analysis.")
]
_ControlRisk = Annotated[
    float | None,
    typer.Option(
        help="Assumed control risk for the absolute effects (default: the control "
        "arms' pooled risk from the posterior)."
    ),
]
_Mcid = Annotated[
    float | None,
    typer.Option(help="Minimal important difference, events per 1000 (beneficial way)."),
]
_Benefit = Annotated[
    Benefit | None,
    typer.Option(
        help="Which way is a benefit (default: RevMan's forest-plot labels, else more-events)."
    ),
]

_BiasColumn = Annotated[
    str | None,
    typer.Option(
        help="Bias adjustment (Welton et al. 2009): the column that marks trial quality, "
        "e.g. confidence; trials whose value is not --bias-adequate get an additive bias."
    ),
]
_BiasAdequate = Annotated[
    list[str] | None,
    typer.Option(help="A value of --bias-column of the adequate trials (repeat, or a,b)."),
]
_BiasPrior = Annotated[
    str | None,
    typer.Option(
        help="Prior of the mean bias, normal(mean, sd), as a log ratio of ORs in the benefit "
        "direction (positive: weaker trials overstate benefit; default BRANDO, objective "
        "outcomes)."
    ),
]
_BiasSd = Annotated[
    float | None,
    typer.Option(help="Fixed between-trial SD of the bias of weaker trials (default 0.06)."),
]


def bias_options(
    column: str | None, adequate: list[str] | None, prior: str | None, sd: float | None
) -> dict[str, Any] | None:
    """The bias-adjustment options for the workflow, or None; other options need a column."""
    if column is None:
        given = [
            name
            for name, value in (
                ("--bias-adequate", adequate),
                ("--bias-prior", prior),
                ("--bias-sd", sd),
            )
            if value is not None
        ]
        if given:
            raise CLIError(f"{given[0]} needs --bias-column (the column that marks weaker trials)")
        return None
    if not adequate:
        raise CLIError(
            f"--bias-column {column}: say which values mark adequate trials with "
            "--bias-adequate (e.g. --bias-adequate high)"
        )
    return {"column": column, "adequate": tuple(adequate), "prior": prior, "sd": sd}


def fit(
    ctx: typer.Context,
    data: _Data = None,
    outcome: _Outcome = None,
    model: _Model = Model.BINOMIAL_NORMAL,
    engine: _Engine = FitEngine.AUTO,
    likelihood: _Likelihood = None,
    mu_prior: _MuPrior = None,
    tau_prior: _TauPrior = None,
    baseline_prior: _BaselinePrior = None,
    random_effects: _RandomEffects = RandomEffects.NORMAL,
    nu: _Nu = None,
    nu_prior: _NuPrior = None,
    subgroup: _Subgroup = None,
    subgroup_tau: _SubgroupTau = SubgroupTau.SHARED,
    covariate: _Covariate = None,
    beta_prior: _BetaPrior = None,
    draws: Draws = 2000,
    tune: Tune = 1000,
    chains: Chains = 4,
    seed: Seed = None,
    target_accept: _TargetAccept = 0.9,
    out_dir: _Out = None,
    as_json: AsJson = False,
    strict: Strict = False,
    from_fit: _From = None,
    force: _Force = False,
    control_risk: _ControlRisk = None,
    mcid: _Mcid = None,
    benefit: _Benefit = None,
    bias_column: _BiasColumn = None,
    bias_adequate: _BiasAdequate = None,
    bias_prior: _BiasPrior = None,
    bias_sd: _BiasSd = None,
) -> None:
    """Fit a random-effects meta-analysis (MCMC or exact) and print its summary."""
    if from_fit is not None:
        redo(ctx, from_fit, data, out_dir=out_dir, as_json=as_json, strict=strict, force=force)
        return
    if data is None:
        raise CLIError("give DATA (a CSV path or a shipped dataset name) or --from FIT")
    priors = priors_from_options(
        mu=mu_prior, tau=tau_prior, baseline=baseline_prior, beta=beta_prior, nu=nu_prior
    )
    if nu is not None and nu_prior is not None:
        raise CLIError("give either --nu (fixed degrees of freedom) or --nu-prior, not both")
    if beta_prior is not None and not covariate:
        raise CLIError("--beta-prior needs a meta-regression: add --covariate NAME")
    bias = bias_options(bias_column, bias_adequate, bias_prior, bias_sd)
    settings = SamplerSettings(
        draws=draws,
        tune=tune,
        chains=chains,
        seed=DEFAULT_SEED if seed is None else seed,
        target_accept=target_accept,
    )
    from trialsynth.workflow import fit as workflow

    plan = workflow.plan_fit(
        data,
        outcome=outcome,
        model=model.value,
        model_options={
            "likelihood": likelihood.value if likelihood else None,
            "random_effects": random_effects.value,
            "nu": None if nu_prior is not None else (4.0 if nu is None else nu),
            "subgroup": subgroup,
            "subgroup_tau": subgroup_tau.value,
            "covariates": tuple(covariate or ()),
        },
        priors=priors,
        settings=settings,
        engine=engine.value,
        out_dir=out_dir,
        absolute={
            "control_risk": control_risk,
            "mcid": mcid,
            "benefit": benefit.value if benefit else None,
        },
        bias=bias,
        notify=render.note,
    )
    with render.progress(not as_json) as say:
        done = workflow.run_fit(plan, force=force, progress=say, notify=render.note)
    if done.mcmc is not None and not as_json:
        render.print_agreement(
            done.summary["agreement"],
            done.mcmc.summary()["diagnostics"],
            limit=done.agreement_limit,
        )
    show(done, title=f"{plan.data.name}: {plan.spec.name}", as_json=as_json, notices=plan.notices)
    finish(done.summary, strict)


def redo(
    ctx: typer.Context,
    from_fit: Path,
    data: str | None,
    *,
    out_dir: Path | None,
    as_json: bool,
    strict: bool,
    force: bool,
) -> None:
    """``fit --from FIT``: refit a saved analysis from its provenance and compare numbers."""
    if data is not None:
        raise CLIError(f"--from {from_fit} redoes the saved analysis: give no DATA ({data!r})")
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if param.name not in REDO_OPTIONS and source is not None:
            if source.name in ("COMMANDLINE", "ENVIRONMENT"):
                raise CLIError(
                    f"--from redoes the saved analysis exactly; {param.opts[0]} cannot be "
                    "combined with it (allowed: --out, --json, --strict, --force)"
                )
    from trialsynth.workflow import fit as workflow

    inputs = workflow.redo_inputs(from_fit)
    for notice in inputs.data.notices:
        render.note(notice)
    with render.progress(not as_json) as say:
        done = workflow.run_redo(
            from_fit, inputs, out_dir=out_dir, force=force, progress=say, notify=render.note
        )
    title = f"redo of {from_fit}: {done.result.spec.name}"
    show(done, title=title, as_json=as_json, notices=inputs.data.notices)
    render.print_redo(done.identical, done.same_versions, of=from_fit)
    finish(done.summary, strict)


def register(app: typer.Typer) -> None:
    """Add ``fit`` to the app."""
    app.command()(fit)
