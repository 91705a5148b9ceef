"""``trialsynth cumulative DATA|SPEC``: parse, call :mod:`trialsynth.analysis.cumulative`, render.

Registered on the app by :mod:`trialsynth.cli.app` (``app.command("cumulative")``); it never
imports the app. Bad input raises a :class:`~trialsynth.core.errors.TrialsynthError`, which
the entry point prints as one line with exit code 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from trialsynth.analysis.cumulative import Cumulative

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


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
    model: Annotated[
        str, typer.Option(help="binomial-normal | normal-normal | common-effect")
    ] = "binomial-normal",
    engine: Annotated[
        str, typer.Option(help="auto | mcmc | exact (auto: exact for normal-normal).")
    ] = "auto",
    likelihood: Annotated[
        str | None, typer.Option(help="binomial | normal (for common-effect)")
    ] = None,
    mu_prior: Annotated[str | None, typer.Option(help="Prior of the pooled log-OR.")] = None,
    tau_prior: Annotated[str | None, typer.Option(help="Heterogeneity prior.")] = None,
    baseline_prior: Annotated[
        str | None, typer.Option(help="Prior of control-arm log-odds.")
    ] = None,
    random_effects: Annotated[str, typer.Option(help="normal | student-t")] = "normal",
    nu: Annotated[float | None, typer.Option(help="Student-t degrees of freedom.")] = None,
    draws: Annotated[int, typer.Option(help="Posterior draws per chain (MCMC).")] = 2000,
    tune: Annotated[int, typer.Option(help="Tuning draws per chain (MCMC).")] = 1000,
    chains: Annotated[int, typer.Option(help="Number of chains (MCMC).")] = 4,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 20261125).")] = None,
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
    from trialsynth.analysis.cumulative import cumulative

    trials, spec, priors, settings, engine = _inputs(
        source,
        model=model,
        engine=engine,
        likelihood=likelihood,
        random_effects=random_effects,
        nu=nu,
        priors=(mu_prior, tau_prior, baseline_prior),
        sampler=(draws, tune, chains, seed),
    )
    with err.status("fitting the trials one by one") if not as_json else _quiet():
        res = cumulative(
            trials, spec=spec, priors=priors, settings=settings, order=order, engine=engine
        )
    if out_dir is not None:
        write_outputs(res, out_dir)
    if as_json:
        sys.stdout.write(json.dumps(res.to_json(), indent=2) + "\n")
        return
    print_cumulative(res)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _inputs(
    source: str,
    *,
    model: str,
    engine: str,
    likelihood: str | None,
    random_effects: str,
    nu: float | None,
    priors: tuple[str | None, str | None, str | None],
    sampler: tuple[int, int, int, int | None],
) -> tuple[Any, Any, Any, Any, str]:
    """Data, model, priors, sampler settings and engine from a spec or from the options."""
    from trialsynth.analysis.cumulative import CumulativeError
    from trialsynth.core.settings import DEFAULT_SEED, SamplerSettings
    from trialsynth.data import load
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorError, PriorSet, parse_prior

    draws, tune, chains, seed = sampler
    if source.endswith(".toml"):
        return _spec_inputs(source, seed)
    options = ("--mu-prior", "--tau-prior", "--baseline-prior")
    for option, role, text in zip(options, ("mu", "tau", "baseline"), priors, strict=True):
        try:
            if text:
                parse_prior(text, role)  # type: ignore[arg-type]
        except PriorError as e:
            raise CumulativeError(f"{option}: {e}") from None
    prior_set = PriorSet.from_strings(mu=priors[0], tau=priors[1], baseline=priors[2])
    trials = load(source, min_trials=1)
    spec = ModelSpec.from_options(
        model,
        data_kind=trials.kind,
        likelihood=likelihood,
        random_effects=random_effects,
        nu=4.0 if nu is None else nu,
    )
    settings = SamplerSettings(
        draws=draws, tune=tune, chains=chains, seed=DEFAULT_SEED if seed is None else seed
    )
    return trials, spec, prior_set, settings, engine


def _spec_inputs(path: str, seed: int | None) -> tuple[Any, Any, Any, Any, str]:
    from trialsynth.analysis.cumulative import CumulativeError
    from trialsynth.data import load
    from trialsynth.models.analysis import load_spec

    spec = load_spec(path)
    trials = load(
        spec.data_source(), min_trials=1, columns=spec.columns or None, outcome=spec.outcome
    )
    missing = [s for s in spec.exclude if s not in trials.study]
    if missing:
        raise CumulativeError(f"{path} [data] exclude: unknown study {missing[0]!r}")
    if spec.exclude:
        trials = trials.subset([s for s in trials.study if s not in spec.exclude])
    settings = spec.sampler if seed is None else replace(spec.sampler, seed=seed)
    return trials, spec.model_spec(trials.kind), spec.priors, settings, spec.engine


def write_outputs(res: Cumulative, folder: Path) -> None:
    """``cumulative.json`` and the two figures, written atomically into ``folder``."""
    import matplotlib.pyplot as plt

    from trialsynth.core.files import atomic_write_text, commit_files
    from trialsynth.report.figures_design import (
        cumulative_forest_plot,
        cumulative_probability_plot,
    )

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "cumulative.json", json.dumps(res.to_json(), indent=2) + "\n")
    figs = {
        "cumulative_forest.png": cumulative_forest_plot(res),
        "cumulative_years.png": cumulative_probability_plot(res),
    }
    commit_files(
        folder,
        {
            name: (lambda path, f=fig: f.savefig(path, dpi=200, format="png"))
            for name, fig in figs.items()
        },
    )
    for fig in figs.values():
        plt.close(fig)


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
