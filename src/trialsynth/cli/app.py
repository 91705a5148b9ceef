"""The ``trialsynth`` command line (typer + rich). It only parses and calls.

Exit codes (INTERFACE.md): 0 success; 2 bad input or arguments (one line on stderr, no
traceback unless ``--debug``); 3 a fit that failed its convergence checks under
``--strict``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trialsynth.cli.cache import cache_app
from trialsynth.cli.cumulative import cumulative_command
from trialsynth.cli.explore import explore as _explore

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Bayesian random-effects meta-analysis of randomised trials.",
)
app.add_typer(cache_app, name="cache")
out = Console(soft_wrap=True)
# soft_wrap: a note or warning is one line however narrow the terminal or pipe.
err = Console(stderr=True, soft_wrap=True)
app.command("cumulative")(cumulative_command)

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
_DEBUG = False


class CLIError(Exception):
    """An error reported as one line with an exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    global _DEBUG
    _DEBUG = debug


def _fmt_interval(d: dict[str, float], key: str = "median") -> str:
    return f"{d[key]:.2f} [{d['q025']:.2f}, {d['q975']:.2f}]"


def _per_1000(d: dict[str, float]) -> str:
    return f"{d['median']:.0f} [{d['q025']:.0f}, {d['q975']:.0f}]"


def _nnt_text(nnt: dict[str, Any]) -> str:
    if nnt.get("defined"):
        return f"{nnt['kind']} {nnt['median']:.0f} [{nnt['q025']:.0f}, {nnt['q975']:.0f}]"
    return f"{nnt['kind']} {nnt['median']:.0f} (no finite interval: the CrI includes 0)"


def print_absolute(absolute: dict[str, Any] | None) -> None:
    """One line per absolute quantity (per 1000), for the pooled effect and a new trial."""
    if not absolute:
        return
    mcid = absolute.get("mcid")
    gt = f"P(difference > {mcid:g})" if mcid is not None else "P(difference > MCID)"
    from rich.markup import escape

    table = Table(
        title=escape(
            f"absolute effects per 1000 (control risk {absolute['control_risk']:.3f}: "
            f"{absolute['control_risk_source']}; {absolute['benefit']})"
        ),
        title_justify="left",
    )
    table.add_column("quantity")
    table.add_column("median [95% CrI]", justify="right")
    new = absolute.get("new_trial") or {}
    rows = [
        ("risk with control", _per_1000(absolute["per_1000_control"])),
        ("risk with treatment", _per_1000(absolute["per_1000_treatment"])),
        ("difference", _per_1000(absolute["difference_per_1000"])),
        ("number needed to treat", _nnt_text(absolute["nnt"])),
        ("P(benefit)", f"{absolute['p_benefit']:.3f}"),
        (
            gt,
            "MCID not given (--mcid)"
            if mcid is None
            else f"{absolute['p_difference_gt_mcid']:.3f}",
        ),
    ]
    if new:
        rows += [
            ("new trial: risk with treatment", _per_1000(new["per_1000_treatment"])),
            ("new trial: difference", _per_1000(new["difference_per_1000"])),
            (f"new trial: {gt}", "" if mcid is None else f"{new['p_difference_gt_mcid']:.3f}"),
        ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)


def print_summary(
    summary: dict[str, Any],
    *,
    title: str,
    timings: dict[str, float] | None = None,
    shown_notices: tuple[str, ...] = (),
) -> None:
    """The rich table of a fit: pooled OR, tau, predictive OR, probabilities, diagnostics."""
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("quantity")
    table.add_column("median [95% CrI]", justify="right")
    table.add_column("P(> 1)", justify="right")
    mcse = summary.get("mcse", {})
    p_mu = f"{summary['p_mu_gt_0']:.3f}" + (
        f" ± {mcse['p_mu_gt_0']:.3f}" if "p_mu_gt_0" in mcse else ""
    )
    p_new = f"{summary['p_theta_new_gt_0']:.3f}" + (
        f" ± {mcse['p_theta_new_gt_0']:.3f}" if "p_theta_new_gt_0" in mcse else ""
    )
    pooled_label = "pooled OR, exp(mu)"
    if summary.get("subgroups"):  # mu is the unweighted mean of the subgroup log-ORs
        pooled_label = "mean of subgroup ORs, exp(mean mu)"
    elif summary.get("beta"):
        pooled_label = "pooled OR at mean covariates"
    table.add_row(pooled_label, _fmt_interval(summary["or"]), p_mu)
    table.add_row("heterogeneity tau (log-OR)", _fmt_interval(summary["tau"]), "")
    table.add_row("OR of a new trial", _fmt_interval(summary["or_new"]), p_new)
    for t in summary.get("theta", []):
        table.add_row(f"  shrunken OR: {t['study']}", _fmt_interval(t["or"]), "")
    out.print(table)
    print_absolute(summary.get("absolute"))
    print_subgroups(summary)
    out.print("priors: " + "; ".join(f"{k} ~ {v}" for k, v in summary["priors"].items()))
    shown = set(shown_notices)
    for notice in summary.get("notices", []):
        if notice not in shown:  # model notices (data notices were printed before the fit)
            conflict = notice.startswith("prior-data conflict")
            tag = "[bold yellow]warning[/bold yellow]" if conflict else "[yellow]note[/yellow]"
            out.print(f"{tag}: {notice}")
    freq = summary.get("frequentist") or {}
    if freq:
        parts = [
            f"{name.upper()} {v['or']:.2f} [{v['lower']:.2f}, {v['upper']:.2f}]"
            for name, v in freq.items()
            if isinstance(v, dict) and "or" in v and name in ("mh", "dl", "reml")
        ]
        if parts:
            out.print("classical pooled OR: " + "; ".join(parts))
    ref = summary.get("published_reference") or {}
    if ref.get("describe"):
        rep = ref.get("reproduced")
        check = ""
        if rep is not None:
            check = (
                " (reproduced from the counts)"
                if rep["matches"]
                else f" (NOT reproduced from the counts: {rep['estimate']:.3f})"
            )
        from rich.markup import escape

        out.print(
            escape(f"RevMan's own result (analysis {ref['analysis']}): {ref['describe']}{check}")
        )
    d = summary["diagnostics"]
    if d.get("r_hat_max") is None:
        out.print("diagnostics: exact computation (no Monte Carlo error)")
    else:
        line = (
            f"R-hat max {d['r_hat_max']:.3f}, ESS bulk min {d['ess_bulk_min']:.0f}, "
            f"tail min {d['ess_tail_min']:.0f}, divergences {d['divergences']}, "
            f"E-BFMI min {d['bfmi_min']:.2f}"
            if d.get("bfmi_min") is not None
            else f"R-hat max {d['r_hat_max']:.3f}, ESS bulk min {d['ess_bulk_min']:.0f}, "
            f"tail min {d['ess_tail_min']:.0f}, divergences {d['divergences']}"
        )
        if d.get("ok", True):
            out.print(f"[green]convergence OK[/green]: {line}")
        else:
            out.print(f"[bold red]CONVERGENCE FAILED[/bold red]: {'; '.join(d['problems'])}")
            out.print(f"[red]{line}[/red]")
    for r in summary.get("refits", []):
        out.print(
            f"[yellow]note[/yellow]: refitted at target_accept {r['target_accept']} after "
            f"{r['reason']} ({r['divergences_after']} after refit)"
        )
    if timings:
        out.print(
            "time: " + ", ".join(f"{k.removesuffix('_s')} {v:.2f}s" for k, v in timings.items())
        )


def print_agreement(rows: list[dict[str, Any]], diagnostics: dict[str, Any]) -> None:
    """Exact and MCMC answers side by side, with the MCMC error in MCSE units."""
    from trialsynth.analysis.agreement import AGREEMENT_Z

    table = Table(title="exact vs MCMC (same model, data and priors)", title_justify="left")
    for col in ("quantity", "exact", "MCMC", "MCSE", "z"):
        table.add_column(col, justify="left" if col == "quantity" else "right")
    for r in rows:
        z = f"{r['z']:.1f}" if r["ok"] else f"[bold red]{r['z']:.1f}[/bold red]"
        table.add_row(r["quantity"], f"{r['exact']:.4f}", f"{r['mcmc']:.4f}", f"{r['mcse']:.4f}", z)
    out.print(table)
    bad = [r["quantity"] for r in rows if not r["ok"]]
    status = "passed" if diagnostics.get("ok", True) else "[bold red]FAILED[/bold red]"
    if bad:
        out.print(
            f"[bold red]DISAGREEMENT[/bold red] beyond {AGREEMENT_Z:g} MCSE: {', '.join(bad)} "
            f"(MCMC convergence checks {status})"
        )
    else:
        out.print(
            f"[green]agreement[/green]: every MCMC value within {AGREEMENT_Z:g} MCSE of the "
            f"exact one (MCMC convergence checks {status})"
        )


def print_subgroups(summary: dict[str, Any]) -> None:
    """Subgroup, meta-regression and Student-t sections of a fit (when it has them)."""
    subgroups = summary.get("subgroups") or {}
    if subgroups:
        column = summary.get("model_spec", {}).get("subgroup", "subgroup")
        tau_kind = summary.get("model_spec", {}).get("subgroup_tau", "shared")
        from rich.markup import escape

        def prob(p: float, mcse: float | None) -> str:
            return f"{p:.3f}" + (f" ± {mcse:.3f}" if mcse is not None else "")

        table = Table(
            title=f"subgroups by {escape(column)} ({tau_kind} tau)",
            title_justify="left",
            show_header=True,
        )
        table.add_column("quantity")
        table.add_column("median [95% CrI]", justify="right")
        table.add_column("P(> 1)", justify="right")
        for level, g in subgroups.items():
            mc = g.get("mcse", {})
            name = escape(f"{level} (k = {g['k']})")
            table.add_row(
                f"{name}: pooled OR",
                _fmt_interval(g["or"]),
                prob(g["p_mu_gt_0"], mc.get("p_mu_gt_0")),
            )
            table.add_row("  heterogeneity tau (log-OR)", _fmt_interval(g["tau"]), "")
            table.add_row(
                "  OR of a new trial",
                _fmt_interval(g["or_new"]),
                prob(g["p_theta_new_gt_0"], mc.get("p_theta_new_gt_0")),
            )
        for c in summary.get("subgroup_contrasts", []):
            a, b = c.get("a"), c.get("b")
            label = f"OR[{a}] / OR[{b}]" if a is not None else c["contrast"]
            table.add_row(
                escape(label),
                _fmt_interval(c["ratio_of_or"]),
                prob(c["p_greater"], c.get("p_greater_mcse")),
            )
        out.print(table)
        out.print(
            "P(> 1) of a ratio OR[a] / OR[b] is P(OR[a] > OR[b]). The pooled OR of the main "
            "table is the unweighted average of the subgroups' log-ORs, its new trial is in a "
            "subgroup drawn with equal probability.",
            markup=False,
        )
    betas = summary.get("beta") or {}
    if betas:
        table = Table(
            title="meta-regression (log-OR per unit of each covariate)",
            title_justify="left",
            show_header=True,
        )
        for col in ("covariate", "slope [95% CrI]", "sd", "P(> 0)", "centred at"):
            table.add_column(col, justify="left" if col == "covariate" else "right")
        for name, b in betas.items():
            table.add_row(
                name,
                f"{b['median']:.4f} [{b['q025']:.4f}, {b['q975']:.4f}]",
                f"{b['sd']:.4f}",
                f"{b['p_gt_0']:.3f}",
                f"{b['centre']:.4g}" if "centre" in b else "",
            )
        out.print(table)
        out.print("pooled OR in the main table: at the covariates' mean values (centred)")
    spec = summary.get("model_spec", {})
    if spec.get("random_effects") == "student-t":
        if "nu" in summary:
            nu = summary["nu"]
            out.print(
                "student-t random effects: degrees of freedom estimated, "
                f"nu {nu['median']:.1f} [{nu['q025']:.1f}, {nu['q975']:.1f}] "
                f"(prior {summary['priors'].get('nu', '?')})"
            )
        else:
            out.print(f"student-t random effects: degrees of freedom fixed at nu = {spec['nu']:g}")


def _progress(enabled: bool) -> Any:
    """A rich status line naming the current phase (on stderr)."""
    from contextlib import nullcontext

    if not enabled:
        return nullcontext(lambda _phase: None)

    class _Status:
        def __enter__(self) -> Any:
            self.status = err.status("loading")
            self.status.__enter__()
            labels = {
                "compile": "compiling the model (numba; reused within a process)",
                "exact": "computing the exact posterior (numerical integration over tau)",
                "sample": "sampling 4 chains with nutpie",
                "refit": "divergences: refitting at target_accept 0.99",
                "diagnostics": "checking convergence (R-hat, ESS, divergences, E-BFMI)",
                "plots": "drawing figures",
                "save": "writing results",
                "report": "drawing the report figures, writing report.html and report.md",
            }
            return lambda phase: self.status.update(labels.get(phase, phase))

        def __exit__(self, *exc: object) -> None:
            self.status.__exit__(*exc)

    return _Status()


def _load_data(
    source: str,
    *,
    min_trials: int,
    columns: dict[str, str] | None = None,
    outcome: str | None = None,
) -> Any:
    from trialsynth.data import load

    data = load(source, columns=columns or None, min_trials=min_trials, outcome=outcome)
    return data


def _attach_absolute(
    result: Any, *, control_risk: float | None, mcid: float | None, benefit: str | None
) -> None:
    """The absolute effects of a fit (``summary.json`` ``absolute``), or a note why not."""
    from trialsynth.analysis.absolute import attach_absolute

    if attach_absolute(result, control_risk=control_risk, mcid=mcid, benefit=benefit) is None:
        err.print(
            "[yellow]note[/yellow]: no absolute effects: contrast-level data have no control "
            "arms; give --control-risk P ([analysis] control_risk)"
        )


def _report_failed(summary: dict[str, Any], strict: bool) -> None:
    """Warn about a fit that failed its checks; under ``--strict`` exit with code 3."""
    if summary.get("status") == "failed":
        err.print(
            "[bold red]warning[/bold red]: the fit failed its convergence checks "
            f"({'; '.join(summary['diagnostics'].get('problems', []))}); "
            "its numbers are marked failed in every output"
        )
        if strict:
            raise typer.Exit(EXIT_NOT_CONVERGED)


def _write_outputs(
    result: Any,
    folder: Path,
    *,
    say: Any = None,
    title: str | None = None,
    treatment: str = "treatment",
    control: str = "control",
    analysis: dict[str, Any] | None = None,
    report: bool = False,
    formats: tuple[tuple[str, ...], tuple[str, ...]] = (("html", "md"), ("png", "svg")),
) -> dict[str, float]:
    timings = {}
    t0 = time.perf_counter()
    if say:
        say("save")
    result.save(folder)
    timings["save_s"] = time.perf_counter() - t0
    if say:
        say("plots")
    t0 = time.perf_counter()
    from trialsynth.report.forest import forest_plot

    fig = forest_plot(
        result,
        title=title or f"{result.provenance['data_name']}: {result.summary()['model']}",
        treatment=treatment,
        control=control,
    )
    from trialsynth.core.files import commit_files  # never a half-written figure

    commit_files(folder, {"forest.png": lambda path: fig.savefig(path, dpi=300, format="png")})
    import matplotlib.pyplot as plt

    plt.close(fig)
    timings["plots_s"] = time.perf_counter() - t0
    if report:
        timings |= _write_report(result, folder, analysis=analysis, say=say, formats=formats)
    return timings


def _write_report(
    result: Any,
    folder: Path,
    *,
    analysis: dict[str, Any] | None = None,
    say: Any = None,
    formats: tuple[tuple[str, ...], tuple[str, ...]] = (("html", "md"), ("png", "svg")),
) -> dict[str, float]:
    """Write analysis.json, the figures, report.html and report.md into a FIT folder."""
    from trialsynth.report.report import (
        analysis_meta,
        find_sensitivity,
        write_analysis_meta,
        write_report,
    )

    if say:
        say("report")
    meta = analysis or analysis_meta(name=str(result.provenance["data_name"]))
    write_analysis_meta(folder, meta)
    files = write_report(
        result,
        folder,
        analysis=meta,
        sensitivity=find_sensitivity(folder),
        formats=formats[0],
        figure_formats=formats[1],
    )
    return files.timings


@app.command()
def fit(
    ctx: typer.Context,
    data: Annotated[
        str | None,
        typer.Argument(
            help="CSV path, RevMan 5 file (.rm5 or analysis export) or shipped dataset "
            "(ivig_rm, ivig_rm_secondary, crins2014, bcg)."
        ),
    ] = None,
    outcome: Annotated[
        str | None,
        typer.Option(help="RevMan outcome: C.O (comparison.outcome, e.g. 1.1) or its name."),
    ] = None,
    model: Annotated[
        str, typer.Option(help="binomial-normal | normal-normal | common-effect")
    ] = "binomial-normal",
    engine: Annotated[
        str,
        typer.Option(
            help="auto | mcmc | exact | both. auto: exact for normal-normal where the priors "
            "allow, else MCMC; both: exact and MCMC side by side with their agreement."
        ),
    ] = "auto",
    likelihood: Annotated[
        str | None, typer.Option(help="binomial | normal (for common-effect)")
    ] = None,
    mu_prior: Annotated[
        str | None, typer.Option(help="Prior of the pooled log-OR, e.g. 'normal(0, 2.82)'.")
    ] = None,
    tau_prior: Annotated[
        str | None, typer.Option(help="Heterogeneity prior, e.g. 'half-normal(0.5)'.")
    ] = None,
    baseline_prior: Annotated[
        str | None, typer.Option(help="Prior of control-arm log-odds, e.g. 'logistic(0, 1)'.")
    ] = None,
    random_effects: Annotated[str, typer.Option(help="normal | student-t")] = "normal",
    nu: Annotated[
        float | None,
        typer.Option(help="Fixed degrees of freedom of student-t random effects (default 4)."),
    ] = None,
    nu_prior: Annotated[
        str | None,
        typer.Option(
            help="Estimate the student-t degrees of freedom under this prior, e.g. "
            "'gamma(2, 0.1)' (Juarez & Steel 2010)."
        ),
    ] = None,
    subgroup: Annotated[
        str | None,
        typer.Option(help="Covariate column with one pooled effect per level, e.g. population."),
    ] = None,
    subgroup_tau: Annotated[
        str, typer.Option(help="shared | separate heterogeneity SD across subgroups.")
    ] = "shared",
    covariate: Annotated[
        list[str] | None,
        typer.Option(help="Numeric covariate of a meta-regression (repeat for several)."),
    ] = None,
    beta_prior: Annotated[
        str | None,
        typer.Option(help="Prior of the meta-regression slopes, e.g. 'normal(0, 1)'."),
    ] = None,
    draws: Annotated[int, typer.Option(help="Posterior draws per chain.")] = 2000,
    tune: Annotated[int, typer.Option(help="Tuning draws per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Number of chains.")] = 4,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 20261125).")] = None,
    target_accept: Annotated[float, typer.Option(help="NUTS target acceptance.")] = 0.9,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write posterior.nc, summary.json, summary.csv, forest.png here."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Exit 3 when the fit fails its convergence checks.")
    ] = False,
    from_fit: Annotated[
        Path | None,
        typer.Option(
            "--from",
            metavar="FIT",
            help="Redo a saved fit from its recorded provenance (data, model, priors, "
            "sampler settings, seed) and say whether the numbers are identical.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Overwrite an --out folder that holds a different analysis.")
    ] = False,
    control_risk: Annotated[
        float | None,
        typer.Option(
            help="Assumed control risk for the absolute effects (default: the control "
            "arms' pooled risk from the posterior)."
        ),
    ] = None,
    mcid: Annotated[
        float | None,
        typer.Option(help="Minimal important difference, events per 1000 (beneficial way)."),
    ] = None,
    benefit: Annotated[
        str | None,
        typer.Option(
            help="more-events | fewer-events: which way is a benefit (default: "
            "RevMan's forest-plot labels, else more-events)."
        ),
    ] = None,
) -> None:
    """Fit a random-effects meta-analysis (MCMC or exact) and print its summary."""
    if from_fit is not None:
        _redo_fit(ctx, from_fit, data, out_dir=out_dir, as_json=as_json, strict=strict, force=force)
        return
    if data is None:
        raise CLIError("give DATA (a CSV path or a shipped dataset name) or --from FIT")
    from trialsynth.core.settings import DEFAULT_SEED, SamplerSettings
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorError, PriorSet, parse_prior
    from trialsynth.results.fitting import fit as do_fit

    for option, role, text in (
        ("--mu-prior", "mu", mu_prior),
        ("--tau-prior", "tau", tau_prior),
        ("--baseline-prior", "baseline", baseline_prior),
        ("--beta-prior", "beta", beta_prior),
        ("--nu-prior", "nu", nu_prior),
    ):
        try:
            if text:
                parse_prior(text, role)  # type: ignore[arg-type]
        except PriorError as e:  # say which option held the bad prior
            raise CLIError(f"{option}: {e}") from None
    priors = PriorSet.from_strings(
        mu=mu_prior, tau=tau_prior, baseline=baseline_prior, beta=beta_prior, nu=nu_prior
    )
    if nu is not None and nu_prior is not None:
        raise CLIError("give either --nu (fixed degrees of freedom) or --nu-prior, not both")
    if beta_prior is not None and not covariate:
        raise CLIError("--beta-prior needs a meta-regression: add --covariate NAME")
    settings = SamplerSettings(
        draws=draws,
        tune=tune,
        chains=chains,
        seed=DEFAULT_SEED if seed is None else seed,
        target_accept=target_accept,
    )
    from trialsynth.analysis.absolute import check_options

    check_options(control_risk, mcid, benefit)  # before any sampling
    trials = _load_data(data, min_trials=1 if model == "common-effect" else 2, outcome=outcome)
    spec = ModelSpec.from_options(
        model,
        data_kind=trials.kind,
        likelihood=likelihood,
        random_effects=random_effects,
        nu=None if nu_prior is not None else (4.0 if nu is None else nu),
        subgroup=subgroup,
        subgroup_tau=subgroup_tau,
        covariates=tuple(covariate or ()),
    )
    from trialsynth.models.design import design as check_design

    check_design(spec, trials)  # unknown subgroup/covariate columns: one-line error now
    for notice in trials.notices:
        err.print(f"[yellow]note[/yellow]: {notice}")
    from trialsynth.core.settings import ENGINES

    if engine not in (*ENGINES, "both"):
        raise CLIError(f"unknown engine {engine!r}; valid: {', '.join((*ENGINES, 'both'))}")
    both = engine == "both"
    if out_dir is not None:  # before sampling: writable, and no other analysis overwritten
        _prepare_out(out_dir, trials, spec, priors, settings, "exact" if both else engine, force)
    with _progress(not as_json) as say:
        result = do_fit(
            trials,
            spec=spec,
            priors=priors,
            settings=settings,
            reusable=False,
            progress=say,
            engine="exact" if both else engine,
        )
        if both:
            mcmc = do_fit(
                trials,
                spec=spec,
                priors=priors,
                settings=settings,
                reusable=False,
                progress=say,
                engine="mcmc",
            )
        _attach_absolute(result, control_risk=control_risk, mcid=mcid, benefit=benefit)
        if out_dir is not None:
            result.timings |= _write_outputs(result, out_dir, say=say)
    summary = result.summary()
    if both:
        from trialsynth.analysis.agreement import engine_agreement

        summary["agreement"] = engine_agreement(result, mcmc)
        summary["mcmc"] = {
            k: v for k, v in mcmc.summary().items() if k in ("diagnostics", "status", "mcse")
        }
        if not as_json:
            print_agreement(summary["agreement"], mcmc.summary()["diagnostics"])
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(
            summary,
            title=f"{trials.name}: {spec.name}",
            timings=result.timings,
            shown_notices=trials.notices,
        )
    _report_failed(summary, strict)


@app.command()
def run(
    spec_path: Annotated[
        Path, typer.Argument(metavar="SPEC.toml", help="Analysis spec (see models/).")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default from the spec: reports/NAME)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the spec's seed.")] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 3 when the fit fails its convergence checks.")
    ] = False,
    refit: Annotated[
        bool,
        typer.Option(help="Sample again even if an identical fit is saved in the output folder."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    force: Annotated[
        bool, typer.Option(help="Overwrite an output folder that holds a different analysis.")
    ] = False,
    formats: Annotated[
        str, typer.Option("--format", help="Report formats: html, md, pdf (comma-separated).")
    ] = "html,md",
    figure_formats: Annotated[
        str,
        typer.Option("--figure-format", help="Figure formats: png, svg, pdf (comma-separated)."),
    ] = "png,svg",
) -> None:
    """Run an analysis spec: fit, check, print, and write summary, posterior and forest plot."""
    from dataclasses import replace

    from trialsynth.models.analysis import load_spec

    t_start = time.perf_counter()
    from trialsynth.report.pdf import FIGURE_FORMATS, REPORT_FORMATS, parse_formats

    kinds = (
        parse_formats(formats, REPORT_FORMATS, "--format"),
        parse_formats(figure_formats, FIGURE_FORMATS, "--figure-format"),
    )
    spec = load_spec(spec_path)
    from trialsynth.analysis.absolute import check_options

    check_options(spec.control_risk, spec.mcid, spec.benefit, f"{spec_path} [analysis]")
    settings = spec.sampler if seed is None else replace(spec.sampler, seed=seed)
    folder = out_dir or spec.output_dir()
    from trialsynth.data import SHIPPED_DATASETS

    if not Path(spec.data_source()).is_file() and spec.data_source() not in SHIPPED_DATASETS:
        raise CLIError(
            f"{spec_path} [data] source: {spec.source!r} is neither a file nor a shipped dataset"
            f" (shipped datasets: {', '.join(sorted(SHIPPED_DATASETS))})"
        )
    trials = _load_data(
        spec.data_source(),
        min_trials=1 if spec.model == "common-effect" else 2,
        columns=spec.columns,
        outcome=spec.outcome,
    )
    if spec.exclude:
        missing = [s for s in spec.exclude if s not in trials.study]
        if missing:
            raise CLIError(
                f"{spec_path} [data] exclude: unknown study {missing[0]!r}; "
                f"valid: {', '.join(trials.study)}"
            )
        trials = trials.subset([s for s in trials.study if s not in spec.exclude])
    from trialsynth.models.spec import ModelError

    try:
        model = spec.model_spec(trials.kind)
    except ModelError as e:
        raise CLIError(f"{spec_path} [model]: {e}") from None
    for notice in trials.notices:
        err.print(f"[yellow]note[/yellow]: {notice}")
    for s in spec.exclude:
        err.print(f"[yellow]note[/yellow]: excluded {s} (spec [data] exclude)")
    if spec.cumulative:  # an unknown [cumulative] order column: one line now, not after fitting
        from trialsynth.analysis.cumulative import trial_order

        trial_order(trials, spec.cumulative, option=f"{spec_path} [cumulative] order")

    from trialsynth.engines.select import choose_engine
    from trialsynth.models.spec import resolve_priors
    from trialsynth.results.base import FitResult
    from trialsynth.results.provenance import fit_key, provenance_key_fields

    result = None
    engine = choose_engine(spec.engine, model, resolve_priors(model, trials, spec.priors))
    key = fit_key(provenance_key_fields(trials, model, spec.priors, settings, engine=engine))
    from trialsynth.workflow.safety import prepare_output

    prepare_output(  # before sampling: writable, and no other analysis overwritten
        folder,
        provenance_key_fields(trials, model, spec.priors, settings, engine=engine),
        force=force,
        option="--out" if out_dir is not None else f"{spec_path} [output] dir",
    )
    if not refit and (folder / "posterior.nc").exists():
        try:
            previous = FitResult.load(folder)
        except ValueError:
            previous = None
        if previous is not None and previous.provenance.get("fit_key") == key:
            result = previous
            err.print(
                f"[yellow]note[/yellow]: reusing the identical fit saved in {folder} (same data, "
                "model, priors, sampler settings, seed and versions); --refit samples again"
            )
    with _progress(not as_json) as say:
        if result is None:
            from trialsynth.results.fitting import fit as do_fit

            result = do_fit(
                trials,
                spec=model,
                priors=spec.priors,
                settings=settings,
                # with a [sensitivity] section the in-process scenarios of the same
                # structure reuse this compiled model (one compile instead of two, and
                # the main scenario's numbers are the main fit's)
                reusable=bool(spec.sensitivity),
                progress=say,
                engine=engine,
            )
        from trialsynth.report.report import analysis_meta, is_current

        meta = analysis_meta(
            name=spec.name,
            title=spec.title,
            question=spec.question,
            treatment=spec.treatment,
            control=spec.control,
            spec=str(spec_path),
            cumulative=spec.cumulative,
        )
        saved_absolute = result.extras.get("absolute")
        _attach_absolute(
            result, control_risk=spec.control_risk, mcid=spec.mcid, benefit=spec.benefit
        )
        fresh = bool(
            result.timings
            or not (folder / "forest.png").exists()
            or not is_current(folder, meta)  # missing, other format, or other question
            or result.extras.get("absolute") != saved_absolute  # other control risk or MCID
            or ("pdf" in kinds[0] and not (folder / "report.pdf").exists())
        )
        if fresh:
            result.timings |= _write_outputs(
                result,
                folder,
                say=say,
                title=spec.title or None,
                treatment=spec.treatment,
                control=spec.control,
                analysis=meta,
                report=not spec.sensitivity,  # written after the sensitivity runs below
                formats=kinds,
            )
    summary = result.summary()
    result.timings["total_s"] = time.perf_counter() - t_start
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(
            summary,
            title=spec.title or spec.name,
            timings=result.timings,
            shown_notices=trials.notices,
        )
        out.print(
            f"wrote {folder}/ (summary.json, summary.csv, posterior.nc, forest.png, "
            "report.html, report.md, figures/)"
        )
    if spec.sensitivity:  # the spec's [sensitivity] scenarios (resumable), see `sensitivity`
        sens = _run_sensitivity(
            spec,
            trials,
            folder / "sensitivity",
            settings=settings,
            workers=None,
            scheduler=None,
            quiet=as_json,
        )
        # the report with the sensitivity table, unless nothing it shows has changed
        if fresh or sens.changed or not is_current(folder, meta):
            _write_report(result, folder, analysis=meta, formats=kinds)
    _report_failed(summary, strict)


@app.command()
def query(
    fit_dir: Annotated[Path, typer.Argument(metavar="FIT", help="Output folder of fit/run.")],
    expressions: Annotated[
        list[str], typer.Argument(metavar="EXPR...", help="e.g. 'P(OR > 1)' 'P(OR_new > 1)'")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per expression.")
    ] = False,
) -> None:
    """Posterior probabilities from a saved fit, without refitting."""
    from trialsynth.results.base import FitResult

    result = FitResult.load(fit_dir)
    answers = [result.ask(e) for e in expressions]
    if as_json:
        for a in answers:
            sys.stdout.write(json.dumps(a.to_json()) + "\n")
        return
    table = Table(show_header=True)
    table.add_column("query")
    table.add_column("probability", justify="right")
    table.add_column("MCSE", justify="right")
    from rich.markup import escape

    for a in answers:
        table.add_row(  # escape: OR[secondary] is not rich markup
            escape(a.query),
            f"{a.probability:.4f}",
            "exact" if a.mcse is None else f"{a.mcse:.4f}",
        )
    out.print(table)
    if not result.ok:
        err.print("[bold red]warning[/bold red]: this fit FAILED its convergence checks")


@app.command()
def design(
    fit_dir: Annotated[Path, typer.Argument(metavar="FIT", help="Output folder of fit/run.")],
    n_per_arm: Annotated[
        list[int] | None,
        typer.Option("--n-per-arm", help="Participants per arm (repeat for several sizes)."),
    ] = None,
    n_range: Annotated[
        str | None, typer.Option("--n-range", help="Sizes per arm START:STOP:STEP, e.g. 50:1000:50")
    ] = None,
    control_rate: Annotated[
        float | None,
        typer.Option(help="Control-arm event rate (default: drawn from the fit's control arms)."),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Two-sided level of the Wald test.")] = 0.05,
    criterion: Annotated[
        str,
        typer.Option(
            help="two-sided-test | posterior (P(OR > 1) > --threshold) | updated-meta (the "
            "meta-analysis with the new trial has P(OR > 1) > --threshold) | "
            "updated-meta-classical (its DerSimonian-Laird 95% CI excludes 1)"
        ),
    ] = "two-sided-test",
    threshold: Annotated[
        float,
        typer.Option(help="Posterior P(OR > 1) needed (criteria posterior, updated-meta)."),
    ] = 0.95,
    analysis_prior: Annotated[
        str,
        typer.Option(help="Prior of the new trial's log-OR (criterion posterior): normal(m, s)."),
    ] = "normal(0, 2.82)",
    target: Annotated[float, typer.Option(help="Assurance wanted (reports the N).")] = 0.8,
    sims: Annotated[int, typer.Option(help="Simulated future trials.")] = 40_000,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the fit's seed).")] = None,
    subgroup: Annotated[
        str | None, typer.Option(help="A future trial in this subgroup (subgroup fits).")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the assurance curve figure (PNG).")
    ] = None,
    refit_check: Annotated[
        int,
        typer.Option(
            help="updated-meta on an MCMC fit: where the Kish ESS near the threshold is below "
            "200, refit this many simulated trials by MCMC to check the reweighting (0: never)."
        ),
    ] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the design object(s) as JSON.")
    ] = False,
) -> None:
    """Assurance of a future trial (probability it shows benefit) from a saved fit."""
    from trialsynth.analysis.assurance import Criterion, design_trial, parse_n_range
    from trialsynth.analysis.updated_meta import UPDATED_CRITERIA
    from trialsynth.results.base import FitResult

    sizes = list(n_per_arm or []) + (parse_n_range(n_range) if n_range else [])
    if criterion in UPDATED_CRITERIA:
        if subgroup is not None:
            raise CLIError(f"--criterion {criterion} does not take --subgroup")
        from trialsynth.cli.updated_meta import run_updated_design

        result = FitResult.load(fit_dir)
        run_updated_design(
            result,
            sizes,
            criterion=criterion,
            threshold=threshold,
            alpha=alpha,
            control_rate=control_rate,
            target=target,
            sims=sims,
            seed=seed,
            refit_check=refit_check,
            plot=plot,
            as_json=as_json,
            out=out,
            err=err,
        )
        if not result.ok:
            err.print("[bold red]warning[/bold red]: this fit FAILED its convergence checks")
        return
    crit = Criterion.from_options(
        criterion, alpha=alpha, threshold=threshold, analysis_prior=analysis_prior
    )
    result = FitResult.load(fit_dir)
    res = design_trial(
        result,
        sizes,
        control_rate=control_rate,
        criterion=crit,
        target=target,
        sims=sims,
        seed=seed,
        subgroup=subgroup,
    )
    if plot is not None:
        import matplotlib.pyplot as plt

        from trialsynth.report.plots import assurance_plot

        fig = assurance_plot(res)
        fig.savefig(plot, dpi=200)
        plt.close(fig)
    if not result.ok:
        err.print(
            "[bold red]warning[/bold red]: this fit FAILED its convergence checks; "
            'its design numbers are marked "fit_status": "failed"'
        )
    if as_json:
        sys.stdout.write(json.dumps(res.to_json(), indent=2) + "\n")
        return
    from rich import box

    table = Table(
        title=f"future trial from {res.data_name}"
        + (f", subgroup {subgroup}" if subgroup else "")
        + f": {crit.describe()}",
        title_justify="left",
        show_header=True,
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    for col in ("N/arm", "assurance", "power", "obs. OR", "births T", "births C"):
        table.add_column(col, justify="right", no_wrap=True)
    for p in res.points:
        o, t, c = (p.predictive[k] for k in ("or_observed", "live_births_t", "live_births_c"))
        table.add_row(
            str(p.n_per_arm),
            f"{p.assurance:.3f}±{p.mcse:.3f}",
            f"{p.classical_power:.3f}",
            f"{o['median']:.2f} [{o['q025']:.2f}-{o['q975']:.2f}]",
            f"{t['median']:.0f} [{t['q025']:.0f}-{t['q975']:.0f}]",
            f"{c['median']:.0f} [{c['q025']:.0f}-{c['q975']:.0f}]",
        )
    out.print(table)
    out.print(
        "assurance ± MCSE; power: classical power at the pooled estimate; obs. OR and live "
        "births per arm (treatment, control): predictive median [95% interval]"
    )
    rate = f"control rate {res.control_rate:.3f}"
    if res.control_rate_interval:
        lo, hi = res.control_rate_interval
        rate += f" (median; 95% {lo:.3f}-{hi:.3f}; {res.control_source})"
    out.print(rate)
    out.print("fit priors: " + "; ".join(f"{k} ~ {v}" for k, v in res.fit_priors.items()))
    out.print(
        f"classical power: at the pooled posterior median OR {res.pooled_or:.2f} "
        "and the median control rate (ignores uncertainty and heterogeneity)"
    )
    out.print(
        f"limit as N grows: P(OR_new > 1) = {res.assurance_limit:.3f} "
        f"± {res.assurance_limit_mcse:.3f}; {res.target_note}"
    )
    out.print(f"{res.sims} simulated trials, seed {res.seed}")


def print_sensitivity(result: Any, *, title: str) -> None:
    """The rich table of a sensitivity run and the power-scaling check of the main fit."""
    from trialsynth.analysis.sensitivity import AXES

    table = Table(title=title, title_justify="left", show_header=True)
    varying = [a for a in AXES if len({r["settings"][a] for r in result.rows}) > 1]
    for name, justify in (
        ("#", "right"),
        *((a, "left") for a in varying),
        ("k", "right"),
        ("OR [95% CrI]", "right"),
        ("tau", "right"),
        ("OR_new 95% PI", "right"),
        ("P(OR>1)", "right"),
        ("P(OR_new>1)", "right"),
        ("status", "left"),
        ("s", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in result.rows:
        has = r.get("or") is not None
        status = (
            "[green]ok[/green]"
            if r["status"] == "ok"
            else f"[bold red]FAILED[/bold red] {r.get('failure') or ''}"
        )
        table.add_row(
            f"{r['scenario']}{' main' if r['main'] else ''}",
            *(str(r["settings"][a] or "-") for a in varying),
            str(r.get("k", "")),
            _fmt_interval(r["or"]) if has else "",
            f"{r['tau']['median']:.2f}" if has else "",
            f"[{r['or_new']['q025']:.2f}, {r['or_new']['q975']:.2f}]" if has else "",
            f"{r['p_mu_gt_0']:.3f}" if has else "",
            f"{r['p_theta_new_gt_0']:.3f}" if has else "",
            status,
            f"{r.get('wall_s', 0):.1f}",
        )
    # a pipe or file gets the whole table; a terminal its own width
    wide = out if out.is_terminal else Console(width=200, soft_wrap=True)
    wide.print(table)
    main_row = result.main
    if main_row.get("psense"):
        out.print(
            "power-scaling sensitivity of the main fit (psense; > 0.05 is sensitive): "
            + "; ".join(
                f"{p['variable']}: prior {p['prior']:.3f}, likelihood {p['likelihood']:.3f}"
                + (
                    " ok"
                    if p["diagnosis"] == "ok"
                    else f" [bold yellow]{p['diagnosis']}[/bold yellow]"
                )
                for p in main_row["psense"]
            )
        )
    for r in result.failed:
        err.print(
            f"[bold red]warning[/bold red]: scenario {r['scenario']} ({r['label']}) failed: "
            f"{r.get('error')}"
        )


def _run_sensitivity(
    spec: Any,
    trials: Any,
    folder: Path,
    *,
    settings: Any,
    workers: int | None,
    scheduler: str | None,
    quiet: bool,
) -> Any:
    """Plan, run and report the ``[sensitivity]`` section of a spec (shared by commands)."""
    from trialsynth.analysis import sensitivity as sens
    from trialsynth.report.plots import sensitivity_plot
    from trialsynth.report.style import save_figure

    config = sens.parse_section(spec.sensitivity, where=f"{spec.path} [sensitivity]")
    scenarios = sens.plan(spec, trials, config, sampler=settings)
    n_workers = workers if workers is not None else config.workers
    if quiet:
        result = sens.run(scenarios, folder, workers=n_workers, scheduler=scheduler)
    else:
        with sens.rich_progress(len(scenarios)) as tick:
            result = sens.run(
                scenarios, folder, workers=n_workers, scheduler=scheduler, progress=tick
            )
    if result.changed or not (folder / "sensitivity.svg").exists():  # else it is current
        fig = sensitivity_plot(result.rows, title=f"{spec.title or spec.name}: sensitivity")
        save_figure(fig, folder, "sensitivity")
        import matplotlib.pyplot as plt

        plt.close(fig)
    if not quiet:
        print_sensitivity(result, title=f"{spec.title or spec.name}: sensitivity")
        out.print(
            f"{len(result.ran)} scenario(s) fitted, {len(result.reused)} reused from "
            f"{folder}/scenarios in {result.wall_s:.1f}s; wrote {folder}/ "
            "(sensitivity.csv, sensitivity.json, sensitivity.png, sensitivity.svg)"
        )
    elif result.failed:
        for r in result.failed:
            err.print(f"warning: scenario {r['scenario']} ({r['label']}) failed: {r['error']}")
    return result


@app.command()
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
    from dataclasses import replace

    from trialsynth.analysis import sensitivity as sens
    from trialsynth.models.analysis import load_spec
    from trialsynth.models.schema import KEYS

    spec = load_spec(spec_path)
    if not spec.sensitivity:
        raise CLIError(
            f"{spec_path}: no [sensitivity] section; valid keys there: {', '.join(KEYS)}"
        )
    if workers is not None and workers < 1:
        raise CLIError(f"--workers must be >= 1, got {workers}")
    sens.parse_section(spec.sensitivity, where=f"{spec.path} [sensitivity]")  # errors first
    settings = spec.sampler if seed is None else replace(spec.sampler, seed=seed)
    trials = sens.spec_data(spec)
    if not as_json:
        for notice in trials.notices:
            err.print(f"[yellow]note[/yellow]: {notice}")
    folder = out_dir or spec.output_dir() / "sensitivity"
    result = _run_sensitivity(
        spec,
        trials,
        folder,
        settings=settings,
        workers=workers,
        scheduler=scheduler,
        quiet=as_json,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.rows, indent=2) + "\n")
    if strict and result.failed:
        raise typer.Exit(EXIT_NOT_CONVERGED)


def _prepare_out(
    out_dir: Path, trials: Any, spec: Any, priors: Any, settings: Any, engine: str, force: bool
) -> None:
    """Before sampling: ``out_dir`` is writable and holds no other analysis (see safety)."""
    from trialsynth.engines.select import choose_engine
    from trialsynth.models.spec import resolve_priors
    from trialsynth.results.provenance import provenance_key_fields
    from trialsynth.workflow.safety import prepare_output

    chosen = choose_engine(engine, spec, resolve_priors(spec, trials, priors))
    fields = provenance_key_fields(trials, spec, priors, settings, engine=chosen)
    prepare_output(out_dir, fields, force=force)


#: Options of ``fit`` that may be combined with ``--from`` (the rest define the analysis).
_REDO_OPTIONS = ("from_fit", "out_dir", "as_json", "strict", "force")


def _redo_fit(
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
    from trialsynth.results.fitting import fit as do_fit
    from trialsynth.workflow.safety import redo_inputs

    if data is not None:
        raise CLIError(f"--from {from_fit} redoes the saved analysis: give no DATA ({data!r})")
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if param.name not in _REDO_OPTIONS and source is not None:
            if source.name in ("COMMANDLINE", "ENVIRONMENT"):
                raise CLIError(
                    f"--from redoes the saved analysis exactly; {param.opts[0]} cannot be "
                    "combined with it (allowed: --out, --json, --strict, --force)"
                )
    inputs = redo_inputs(from_fit)
    if out_dir is not None:
        _prepare_out(
            out_dir,
            inputs.data,
            inputs.spec,
            inputs.priors,
            inputs.settings,
            inputs.engine,
            force,
        )
    for notice in inputs.data.notices:
        err.print(f"[yellow]note[/yellow]: {notice}")
    with _progress(not as_json) as say:
        result = do_fit(
            inputs.data,
            spec=inputs.spec,
            priors=inputs.priors,
            settings=inputs.settings,
            reusable=False,
            progress=say,
            engine=inputs.engine,
        )
        folder = from_fit if from_fit.is_dir() else from_fit.parent
        saved = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        if "absolute" in saved:  # the same absolute effects as the saved fit
            _attach_absolute(result, **(saved["absolute"].get("options") or {}))
        if out_dir is not None:
            result.timings |= _write_outputs(result, out_dir, say=say)
    summary = result.summary()
    same_versions = saved.get("versions") == summary["versions"] and saved.get(
        "numerics"
    ) == summary.get("numerics")  # compile form, numba, CPU target (MCMC)
    identical = {k: v for k, v in saved.items() if k != "redo"} == summary
    summary["redo"] = {
        "of": str(from_fit),
        "fit_key": saved.get("fit_key"),
        "same_versions": same_versions,
        "identical": identical,
    }
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(
            summary,
            title=f"redo of {from_fit}: {result.spec.name}",
            timings=result.timings,
            shown_notices=inputs.data.notices,
        )
    if identical:
        err.print(f"[green]reproduced[/green]: summary identical to the one saved in {from_fit}")
    elif same_versions:
        err.print(
            "[bold red]warning[/bold red]: NOT reproduced: same inputs and package versions, "
            f"but the summary differs from the one saved in {from_fit}"
        )
    else:
        err.print(
            "[yellow]note[/yellow]: package versions or the CPU target differ from the saved "
            "fit's, so the numbers may differ within Monte Carlo error"
        )
    _report_failed(summary, strict)


@app.command()
def report(
    fit_dir: Annotated[Path, typer.Argument(metavar="FIT", help="Output folder of fit/run.")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write the report here (default: the FIT folder)."),
    ] = None,
    formats: Annotated[
        str,
        typer.Option(
            "--format",
            help="Comma-separated: html, md, pdf (pdf: report.html printed to paginated "
            "A4 by headless Chromium; html and md are always written).",
        ),
    ] = "html,md",
    figure_formats: Annotated[
        str,
        typer.Option(
            "--figure-format",
            help="Comma-separated: png, svg, pdf (vector, fonts embedded); png and svg are "
            "always written.",
        ),
    ] = "png,svg",
) -> None:
    """Write report.html (self-contained), report.md and the figures of a saved fit."""
    from trialsynth.report.pdf import FIGURE_FORMATS, REPORT_FORMATS, parse_formats
    from trialsynth.report.report import report_from_folder

    kinds = parse_formats(formats, REPORT_FORMATS, "--format")
    fig_kinds = parse_formats(figure_formats, FIGURE_FORMATS, "--figure-format")
    t0 = time.perf_counter()
    files = report_from_folder(fit_dir, out_dir, formats=kinds, figure_formats=fig_kinds)
    n_fig = len(files.figures) // 2
    written = ", ".join(
        ["report.html", "report.md", "report.json"]
        + (["report.pdf"] if "pdf" in kinds else [])
        + (["sof.csv"] if (files.folder / "sof.csv").is_file() else [])
    )
    fig_text = " and ".join(
        k.upper() for k in ("png", "svg", "pdf") if k in {"png", "svg", *fig_kinds}
    )
    out.print(
        f"wrote {files.folder}/ ({written}, figures/: {n_fig} figures as {fig_text}) "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    summary = json.loads(files.context.read_text(encoding="utf-8"))
    if summary.get("failed"):
        err.print(
            "[bold red]warning[/bold red]: this fit FAILED its convergence checks; "
            "the report says so at the top"
        )


@app.command()
def compare(
    data: Annotated[
        str,
        typer.Argument(
            help="CSV path or shipped dataset (ivig_rm, ivig_rm_secondary, crins2014, bcg)."
        ),
    ],
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
    draws: Annotated[int, typer.Option(help="Posterior draws per chain.")] = 2000,
    tune: Annotated[int, typer.Option(help="Tuning draws per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Number of chains.")] = 4,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 20261125).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """Compare models by leave-one-trial-out ELPD (exact refits where PSIS is unreliable)."""
    from rich import box

    from trialsynth.analysis.loo import compare_models, parse_models
    from trialsynth.core.settings import DEFAULT_SEED, SamplerSettings
    from trialsynth.priors.prior import PriorSet

    priors = PriorSet.from_strings(mu=mu_prior, tau=tau_prior, baseline=baseline_prior)
    settings = SamplerSettings(
        draws=draws, tune=tune, chains=chains, seed=DEFAULT_SEED if seed is None else seed
    )
    trials = _load_data(data, min_trials=3)
    specs = parse_models(models, trials, nu=nu)
    for notice in trials.notices:
        err.print(f"[yellow]note[/yellow]: {notice}")
    with _progress(not as_json) as say:
        result = compare_models(
            trials,
            specs,
            priors=priors,
            settings=settings,
            k_threshold=k_threshold,
            progress=say,
        )
    rows = result.rows()
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
    else:
        table = Table(
            title=f"{trials.name}: leave-one-trial-out ELPD ({trials.k} trials)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            padding=(0, 1, 0, 0),
            pad_edge=False,
        )
        for col in ("model", "elpd_loo", "se", "p_loo", "diff", "dse", "weight", "refit", "k>0.7"):
            table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
        for r in rows:
            table.add_row(
                r["model"] if r["status"] == "ok" else f"[red]{r['model']}*[/red]",
                f"{r['elpd_loo']:.2f}",
                f"{r['se']:.2f}",
                f"{r['p_loo']:.2f}",
                f"{r['elpd_diff']:.2f}",
                f"{r['dse']:.2f}",
                f"{r['weight']:.2f}",
                f"{len(r['refit'])}/{trials.k}",
                str(len(r["psis_k_above_threshold"])),
            )
        out.print(table)
        out.print(
            "diff: ELPD difference from the best model, dse its SE; refit: trials whose ELPD "
            "comes from an exact refit without them; k>0.7: trials where PSIS importance "
            "sampling alone would be unreliable"
            + (
                "; [red]* FAILED convergence checks (fit or refit)[/red]"
                if any(r["status"] != "ok" for r in rows)
                else ""
            )
        )
        roles = ["mu", "tau", "baseline"] if trials.kind == "arm" else ["mu", "tau"]
        if any(s.covariates for s in specs.values()):
            roles.append("beta")
        shown = priors.to_dict()
        out.print("priors: " + "; ".join(f"{k} ~ {shown[k]}" for k in roles))
    for r in rows:
        if r["failed_refits"]:
            err.print(
                f"[bold red]warning[/bold red]: {r['model']}: refits without "
                f"{', '.join(r['failed_refits'])} FAILED their convergence checks"
            )
        if r["status"] == "failed" and not r["failed_refits"]:
            err.print(
                f"[bold red]warning[/bold red]: {r['model']}: the fit FAILED its convergence checks"
            )


from trialsynth.cli.data import data as _data_command  # noqa: E402 (after app exists)

app.command(name="data")(_data_command)

from trialsynth.cli.bias import bias as _bias_command  # noqa: E402 (after app exists)

app.command(name="bias")(_bias_command)

app.command(name="explore")(_explore)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn known errors into one line and an exit code."""
    try:  # typer >= 0.20 vendors click as a private module
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:  # pragma: no cover - older typer with click installed
        from click.exceptions import ClickException, UsageError

    from trialsynth.analysis.assurance import AssuranceError
    from trialsynth.analysis.loo import CompareError
    from trialsynth.analysis.sensitivity import SensitivityError
    from trialsynth.data import DataError
    from trialsynth.models.analysis import SpecError
    from trialsynth.models.spec import ModelError
    from trialsynth.priors.prior import PriorError
    from trialsynth.report.context import ReportError
    from trialsynth.results.provenance import ResultError

    known = (
        CLIError,
        DataError,
        PriorError,
        ModelError,
        SpecError,
        ResultError,
        AssuranceError,
        CompareError,
        SensitivityError,
        ReportError,
        ValueError,
        OSError,
    )
    try:
        rv = app(args=argv, prog_name="trialsynth", standalone_mode=False)
    except typer.Exit as e:
        return int(e.exit_code)
    except UsageError as e:
        if not e.format_message():  # no arguments: help was printed
            return EXIT_BAD_INPUT
        hint = f" (see '{e.ctx.command_path if e.ctx else 'trialsynth'} --help')"
        print(f"trialsynth: error: {e.format_message()}{hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ClickException as e:
        print(f"trialsynth: error: {e.format_message()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except typer.Abort:
        print("trialsynth: aborted", file=sys.stderr)
        return 130
    except known as e:
        if _DEBUG:
            raise
        code = e.code if isinstance(e, CLIError) else EXIT_BAD_INPUT
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and not isinstance(e, CLIError):
            message = f"{e.strerror or e}: {e.filename}" if getattr(e, "filename", None) else str(e)
        print(f"trialsynth: error: {message}", file=sys.stderr)
        return code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
