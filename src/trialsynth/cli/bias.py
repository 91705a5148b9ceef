"""``trialsynth bias DATA|FIT``: parse, call :mod:`trialsynth.workflow.bias`, render.

Registered on the app by :mod:`trialsynth.cli.app` (as ``data`` and ``explore`` are).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _ci(d: dict[str, Any] | None) -> str:
    return "" if not d else f"{d['median']:.2f} [{d['q025']:.2f}, {d['q975']:.2f}]"


def _p(d: dict[str, Any] | None) -> str:
    if not d or d.get("p_mu_gt_0") is None:
        return ""
    mcse = d.get("p_mu_gt_0_mcse")
    return f"{d['p_mu_gt_0']:.3f}" + (f" ± {mcse:.3f}" if mcse and mcse >= 5e-4 else "")


def print_bias(j: dict[str, Any], *, title: str) -> None:
    """The models, the inclusion Bayes factors and the averaged OR as rich tables."""
    models = Table(title=f"{title}: {len(j['models'])} models")
    for col in ("mu", "tau", "bias", "prior", "log ML", "±", "post."):
        models.add_column(col, justify="left" if col == "bias" else "right", no_wrap=True)
    for m in j["models"]:
        models.add_row(
            "yes" if m["effect"] else "no",
            "yes" if m["heterogeneity"] else "0",
            m["bias"].removeprefix("selection-"),
            f"{m['prior_prob']:.4f}",
            f"{m['log_ml']:.2f}",
            f"{m['log_ml_error']:.0e}" + ("" if m["converged"] else " (!)"),
            f"{m['posterior_prob']:.4f}",
        )
    out.print(models)
    inc = Table(title="inclusion")
    for col in ("component", "prior", "posterior", "Bayes factor"):
        inc.add_column(col, justify="right" if col != "component" else "left")
    for name, v in j["inclusion"].items():
        bf = "n/a" if v["bf"] is None else f"{v['bf']:.3g}"
        inc.add_row(name, f"{v['prior_prob']:.3f}", f"{v['posterior_prob']:.3f}", bf)
    out.print(inc)
    pooled = Table(title="pooled OR")
    for col in ("", "median [95% CrI]", "P(OR > 1)"):
        pooled.add_column(col, justify="left" if not col else "right")
    rows = [("model-averaged", j["averaged"]), ("averaged, given an effect", j["conditional"])]
    rows += [("random effects, no bias model", j.get("unadjusted"))]
    if j.get("fit"):
        rows.append((f"the fit ({j['fit']['model']})", j["fit"]))
    for label, d in rows:
        if d:
            pooled.add_row(label, _ci(d.get("or")), _p(d))
    out.print(pooled)
    out.print("priors: " + "; ".join(f"{k} ~ {v}" for k, v in j["priors"].items()))
    tests = j["small_study"]
    for key, name in (("egger", "Egger's"), ("peters", "Peters'")):
        t = tests.get(key, {})
        out.print(f"{name} test: " + (t["error"] if "error" in t else f"p = {t['p']:.3f}"))
    out.print(
        f"largest log ML error {j['max_log_ml_error']:.1e}; seed {j['seed']}; "
        f"time {j['wall_s']:.2f} s"
    )


def bias(
    source: Annotated[
        str, typer.Argument(metavar="DATA|FIT", help="CSV path, shipped dataset or FIT folder.")
    ],
    mu_prior: Annotated[
        str | None,
        typer.Option(help="Effect prior of every model (default 'student-t(4, 0, 0.58)')."),
    ] = None,
    tau_prior: Annotated[
        str | None,
        typer.Option(help="Heterogeneity prior (default 'inverse-gamma(1.77, 0.55)')."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the posterior draws.")] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write bias.json and the figures here (a FIT's bias.json goes into the FIT "
            "folder, where its report finds it).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Model-averaged robustness to small-study effects and publication bias (RoBMA-PSMA)."""
    from trialsynth.priors.prior import PriorError, parse_prior
    from trialsynth.workflow.bias import run_bias, save_bias, source_is_fit

    for option, role, text in (("--mu-prior", "mu", mu_prior), ("--tau-prior", "tau", tau_prior)):
        try:
            if text:
                parse_prior(text, role)  # type: ignore[arg-type]
        except PriorError as e:  # say which option held the bad prior
            raise PriorError(f"{option}: {e}") from None
    run = run_bias(source, mu_prior=mu_prior, tau_prior=tau_prior, seed=seed)
    j = run.to_json()
    folder = out_dir or (Path(source) if source_is_fit(source) else None)
    if folder is not None:
        path = save_bias(run, folder)
        if out_dir is not None:
            _save_figures(j, out_dir)
        err.print(f"[green]wrote[/green] {path}")
    if as_json:
        sys.stdout.write(json.dumps(j, indent=2) + "\n")
    else:
        print_bias(j, title=run.data_name)


def _save_figures(j: dict[str, Any], folder: Path) -> None:
    import matplotlib.pyplot as plt

    from trialsynth.report.figures_bias import bias_figures
    from trialsynth.report.style import save_figure

    for name, _title, _caption, fig in bias_figures(j):
        try:
            save_figure(fig, folder, name, png=True)  # stand-alone figures: PNG too
        finally:
            plt.close(fig)
