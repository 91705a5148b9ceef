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

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Bayesian random-effects meta-analysis of randomised trials.",
)
out = Console(soft_wrap=True)
# soft_wrap: a note or warning is one line however narrow the terminal or pipe.
err = Console(stderr=True, soft_wrap=True)

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


def print_summary(
    summary: dict[str, Any], *, title: str, timings: dict[str, float] | None = None
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
    table.add_row("pooled OR, exp(mu)", _fmt_interval(summary["or"]), p_mu)
    table.add_row("heterogeneity tau (log-OR)", _fmt_interval(summary["tau"]), "")
    table.add_row("OR of a new trial", _fmt_interval(summary["or_new"]), p_new)
    for t in summary.get("theta", []):
        table.add_row(f"  shrunken OR: {t['study']}", _fmt_interval(t["or"]), "")
    out.print(table)
    out.print("priors: " + "; ".join(f"{k} ~ {v}" for k, v in summary["priors"].items()))
    freq = summary.get("frequentist") or {}
    if freq:
        parts = [
            f"{name.upper()} {v['or']:.2f} [{v['lower']:.2f}, {v['upper']:.2f}]"
            for name, v in freq.items()
            if isinstance(v, dict) and "or" in v and name in ("mh", "dl", "reml")
        ]
        if parts:
            out.print("classical pooled OR: " + "; ".join(parts))
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
                "sample": "sampling 4 chains with nutpie",
                "refit": "divergences: refitting at target_accept 0.99",
                "diagnostics": "checking convergence (R-hat, ESS, divergences, E-BFMI)",
                "plots": "drawing figures",
                "save": "writing results",
            }
            return lambda phase: self.status.update(labels.get(phase, phase))

        def __exit__(self, *exc: object) -> None:
            self.status.__exit__(*exc)

    return _Status()


def _load_data(source: str, *, min_trials: int, columns: dict[str, str] | None = None) -> Any:
    from trialsynth.data import load

    data = load(source, columns=columns or None, min_trials=min_trials)
    return data


def _report_failed(summary: dict[str, Any], strict: bool) -> int:
    if summary.get("status") == "failed":
        err.print(
            "[bold red]warning[/bold red]: the fit failed its convergence checks "
            f"({'; '.join(summary['diagnostics'].get('problems', []))}); "
            "its numbers are marked failed in every output"
        )
        if strict:
            return EXIT_NOT_CONVERGED
    return 0


def _write_outputs(
    result: Any,
    folder: Path,
    *,
    say: Any = None,
    title: str | None = None,
    treatment: str = "treatment",
    control: str = "control",
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
    from trialsynth.plots import forest_plot

    fig = forest_plot(
        result,
        title=title or f"{result.provenance['data_name']}: {result.summary()['model']}",
        treatment=treatment,
        control=control,
    )
    fig.savefig(folder / "forest.png", dpi=300)
    import matplotlib.pyplot as plt

    plt.close(fig)
    timings["plots_s"] = time.perf_counter() - t0
    return timings


@app.command()
def fit(
    data: Annotated[
        str,
        typer.Argument(
            help="CSV path or shipped dataset (ivig_rm, ivig_rm_secondary, crins2014, bcg)."
        ),
    ],
    model: Annotated[
        str, typer.Option(help="binomial-normal | normal-normal | common-effect")
    ] = "binomial-normal",
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
        float, typer.Option(help="Degrees of freedom of student-t random effects.")
    ] = 4.0,
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
) -> None:
    """Fit a random-effects meta-analysis by MCMC and print its summary."""
    from trialsynth.fit import DEFAULT_SEED, SamplerSettings
    from trialsynth.fit import fit as do_fit
    from trialsynth.models import ModelSpec
    from trialsynth.priors import PriorSet

    priors = PriorSet.from_strings(mu=mu_prior, tau=tau_prior, baseline=baseline_prior)
    settings = SamplerSettings(
        draws=draws,
        tune=tune,
        chains=chains,
        seed=DEFAULT_SEED if seed is None else seed,
        target_accept=target_accept,
    )
    trials = _load_data(data, min_trials=1 if model == "common-effect" else 2)
    spec = ModelSpec.from_options(
        model, data_kind=trials.kind, likelihood=likelihood, random_effects=random_effects, nu=nu
    )
    for notice in trials.notices:
        err.print(f"[yellow]note[/yellow]: {notice}")
    with _progress(not as_json) as say:
        result = do_fit(
            trials, spec=spec, priors=priors, settings=settings, reusable=False, progress=say
        )
        if out_dir is not None:
            result.timings |= _write_outputs(result, out_dir, say=say)
    summary = result.summary()
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(summary, title=f"{trials.name}: {spec.name}", timings=result.timings)
    code = _report_failed(summary, strict)
    if code:
        raise typer.Exit(code)


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
) -> None:
    """Run an analysis spec: fit, check, print, and write summary, posterior and forest plot."""
    from dataclasses import replace

    from trialsynth.spec import load_spec

    t_start = time.perf_counter()
    spec = load_spec(spec_path)
    settings = spec.sampler if seed is None else replace(spec.sampler, seed=seed)
    folder = out_dir or spec.output_dir()
    trials = _load_data(
        spec.data_source(),
        min_trials=1 if spec.model == "common-effect" else 2,
        columns=spec.columns,
    )
    if spec.exclude:
        missing = [s for s in spec.exclude if s not in trials.study]
        if missing:
            raise CLIError(
                f"{spec_path} [data] exclude: unknown study {missing[0]!r}; "
                f"valid: {', '.join(trials.study)}"
            )
        trials = trials.subset([s for s in trials.study if s not in spec.exclude])
    model = spec.model_spec(trials.kind)
    for notice in trials.notices:
        err.print(f"[yellow]note[/yellow]: {notice}")
    for s in spec.exclude:
        err.print(f"[yellow]note[/yellow]: excluded {s} (spec [data] exclude)")

    from trialsynth.fit import SamplerSettings  # noqa: F401 - settings type for readers
    from trialsynth.results import FitResult, fit_key, provenance_key_fields

    result = None
    key = fit_key(provenance_key_fields(trials, model, spec.priors, settings))
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
            from trialsynth.fit import fit as do_fit

            result = do_fit(
                trials,
                spec=model,
                priors=spec.priors,
                settings=settings,
                reusable=False,
                progress=say,
            )
        if result.timings or not (folder / "forest.png").exists():
            result.timings |= _write_outputs(
                result,
                folder,
                say=say,
                title=spec.title or None,
                treatment=spec.treatment,
                control=spec.control,
            )
    summary = result.summary()
    result.timings["total_s"] = time.perf_counter() - t_start
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(summary, title=spec.title or spec.name, timings=result.timings)
        out.print(f"wrote {folder}/ (summary.json, summary.csv, posterior.nc, forest.png)")
    code = _report_failed(summary, strict)
    if code:
        raise typer.Exit(code)


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
    from trialsynth.results import FitResult

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
    for a in answers:
        table.add_row(
            a.query, f"{a.probability:.4f}", "exact" if a.mcse is None else f"{a.mcse:.4f}"
        )
    out.print(table)
    if not result.ok:
        err.print("[bold red]warning[/bold red]: this fit FAILED its convergence checks")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn known errors into one line and an exit code."""
    try:  # typer >= 0.20 vendors click as a private module
        from typer._click.exceptions import ClickException, UsageError
    except ImportError:  # pragma: no cover - older typer with click installed
        from click.exceptions import ClickException, UsageError

    from trialsynth.data import DataError
    from trialsynth.models import ModelError
    from trialsynth.priors import PriorError
    from trialsynth.results import ResultError
    from trialsynth.spec import SpecError

    known = (
        CLIError,
        DataError,
        PriorError,
        ModelError,
        SpecError,
        ResultError,
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
