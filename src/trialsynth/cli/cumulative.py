"""``trialsynth cumulative DATA|SPEC``: parse, call :mod:`trialsynth.workflow.cumulative`, render.

Registered on the app by :mod:`trialsynth.cli.app`; it never imports the app. Bad input raises
a :class:`~trialsynth.core.errors.TrialsynthError`, which the entry point prints as one line
with exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from trialsynth.cli import render
from trialsynth.cli.fit import priors_from_options
from trialsynth.cli.options import Engine, Likelihood, Model, RandomEffects, Seed
from trialsynth.cli.render import err, out
from trialsynth.core.settings import DEFAULT_SEED, SamplerSettings

if TYPE_CHECKING:
    from trialsynth.analysis.cumulative import Cumulative


def cumulative_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="DATA|SPEC",
            help="CSV path, shipped dataset or analysis spec (.toml: its data, model, priors).",
        ),
    ],
    order: Annotated[
        str, typer.Option(help="Column giving the publication order (ties keep file order).")
    ] = "year",
    model: Annotated[Model, typer.Option(help="The model of the trials' effects.")] = (
        Model.BINOMIAL_NORMAL
    ),
    engine: Annotated[Engine, typer.Option(help="auto: exact for normal-normal.")] = Engine.AUTO,
    likelihood: Annotated[Likelihood | None, typer.Option(help="For common-effect.")] = None,
    mu_prior: Annotated[str | None, typer.Option(help="Prior of the pooled log-OR.")] = None,
    tau_prior: Annotated[str | None, typer.Option(help="Heterogeneity prior.")] = None,
    baseline_prior: Annotated[
        str | None, typer.Option(help="Prior of control-arm log-odds.")
    ] = None,
    random_effects: Annotated[
        RandomEffects, typer.Option(help="Distribution of the trial effects around mu.")
    ] = RandomEffects.NORMAL,
    nu: Annotated[float | None, typer.Option(help="Student-t degrees of freedom.")] = None,
    draws: Annotated[int, typer.Option(help="Posterior draws per chain (MCMC).")] = 2000,
    tune: Annotated[int, typer.Option(help="Tuning draws per chain (MCMC).")] = 1000,
    chains: Annotated[int, typer.Option(help="Number of chains (MCMC).")] = 4,
    seed: Seed = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write cumulative.json, cumulative_forest.png and cumulative_years.png here.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Cumulative meta-analysis: refit after each trial in publication order."""
    from trialsynth.workflow import cumulative as workflow

    if source.endswith(".toml"):
        inputs = workflow.inputs_from_spec(source, seed)
    else:
        inputs = workflow.inputs_from_options(
            source,
            model=model.value,
            engine=engine.value,
            likelihood=likelihood.value if likelihood else None,
            random_effects=random_effects.value,
            nu=nu,
            priors=priors_from_options(mu=mu_prior, tau=tau_prior, baseline=baseline_prior),
            settings=SamplerSettings(
                draws=draws, tune=tune, chains=chains, seed=DEFAULT_SEED if seed is None else seed
            ),
        )
    with render.progress(not as_json, "fitting the trials one by one"):
        res = inputs.run(order)
    if out_dir is not None:
        workflow.write_cumulative(res, out_dir)
    if as_json:
        render.print_json(res.to_json())
        return
    print_cumulative(res)


def print_cumulative(res: Cumulative) -> None:
    """The rich table of a cumulative meta-analysis."""
    table = Table(
        title=f"cumulative meta-analysis of {res.data_name} ({res.model}, {res.engine}; "
        f"order: {res.order})",
        title_justify="left",
    )
    for col in ("k", res.order, "added", "OR [95% CrI]", "tau", "P(OR>1)", "P(OR_new>1)", "DL OR"):
        table.add_column(col, justify="left" if col == "added" else "right", no_wrap=col != "added")
    for s in res.steps:
        o, c = s.odds_ratio, s.classical
        flag = "" if s.status == "ok" else " [red]*[/red]"
        table.add_row(
            str(s.k),
            str(s.order_value),
            s.added + flag,
            f"{o['median']:.2f} [{o['q025']:.2f}, {o['q975']:.2f}]",
            f"{s.tau['median']:.2f}",
            f"{s.p_mu_gt_0:.3f}",
            f"{s.p_theta_new_gt_0:.3f}",
            f"{c['or']:.2f} [{c['lower']:.2f}, {c['upper']:.2f}]",
        )
    out.print(table)
    out.print("priors: " + "; ".join(f"{k} ~ {v}" for k, v in res.priors.items()))
    mcse = [s.mcse["p_mu_gt_0"] for s in res.steps if s.mcse]
    out.print(
        "exact computation (no Monte Carlo error)"
        if not mcse
        else f"MCMC on one compiled model; MCSE of P(OR>1) up to {max(mcse):.3f}"
    )
    for s in res.steps:
        if s.status != "ok":
            err.print(
                f"[bold red]warning[/bold red]: step {s.k} ({s.added}) FAILED its convergence "
                f"checks: {'; '.join(s.problems)}"
            )


def register(app: typer.Typer) -> None:
    """Add ``cumulative`` to the app."""
    app.command(name="cumulative")(cumulative_command)
