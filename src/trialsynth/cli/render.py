"""Everything the command line prints: rich tables on stdout, notes and warnings on stderr.

Commands call these with the objects the workflow returns; nothing here computes a number.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

out = Console(soft_wrap=True)
# soft_wrap: a note or warning is one line however narrow the terminal or pipe.
err = Console(stderr=True, soft_wrap=True)


def note(text: str) -> None:
    """A note on stderr (the text is printed as written, never read as markup)."""
    err.print(f"[yellow]note[/yellow]: {escape(text)}")


def report_failed(summary: dict[str, Any]) -> bool:
    """Warn about a fit that failed its checks; True when it did."""
    if summary.get("status") != "failed":
        return False
    err.print(
        "[bold red]warning[/bold red]: the fit failed its convergence checks "
        f"({'; '.join(summary['diagnostics'].get('problems', []))}); "
        "its numbers are marked failed in every output"
    )
    return True


def fmt_interval(d: dict[str, float], key: str = "median") -> str:
    """``median [q025, q975]`` with two decimals."""
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
    table.add_row(pooled_label, fmt_interval(summary["or"]), p_mu)
    table.add_row("heterogeneity tau (log-OR)", fmt_interval(summary["tau"]), "")
    table.add_row("OR of a new trial", fmt_interval(summary["or_new"]), p_new)
    for t in summary.get("theta", []):
        table.add_row(f"  shrunken OR: {t['study']}", fmt_interval(t["or"]), "")
    out.print(table)
    print_absolute(summary.get("absolute"))
    print_subgroups(summary)
    out.print("priors: " + "; ".join(f"{k} ~ {v}" for k, v in summary["priors"].items()))
    if "bias_adjustment" in summary:
        print_bias_adjustment(summary)
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


def print_agreement(
    rows: list[dict[str, Any]], diagnostics: dict[str, Any], *, limit: float
) -> None:
    """Exact and MCMC answers side by side, with the MCMC error in MCSE units (|z| <= limit)."""
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
            f"[bold red]DISAGREEMENT[/bold red] beyond {limit:g} MCSE: {', '.join(bad)} "
            f"(MCMC convergence checks {status})"
        )
    else:
        out.print(
            f"[green]agreement[/green]: every MCMC value within {limit:g} MCSE of the "
            f"exact one (MCMC convergence checks {status})"
        )


def print_subgroups(summary: dict[str, Any]) -> None:
    """Subgroup, meta-regression and Student-t sections of a fit (when it has them)."""
    subgroups = summary.get("subgroups") or {}
    if subgroups:
        column = summary.get("model_spec", {}).get("subgroup", "subgroup")
        tau_kind = summary.get("model_spec", {}).get("subgroup_tau", "shared")

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
                fmt_interval(g["or"]),
                prob(g["p_mu_gt_0"], mc.get("p_mu_gt_0")),
            )
            table.add_row("  heterogeneity tau (log-OR)", fmt_interval(g["tau"]), "")
            table.add_row(
                "  OR of a new trial",
                fmt_interval(g["or_new"]),
                prob(g["p_theta_new_gt_0"], mc.get("p_theta_new_gt_0")),
            )
        for c in summary.get("subgroup_contrasts", []):
            a, b = c.get("a"), c.get("b")
            label = f"OR[{a}] / OR[{b}]" if a is not None else c["contrast"]
            table.add_row(
                escape(label),
                fmt_interval(c["ratio_of_or"]),
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


#: What the status line says in each phase of a fit.
PHASES = {
    "compile": "compiling the model (numba; reused within a process)",
    "exact": "computing the exact posterior (numerical integration over tau)",
    "sample": "sampling 4 chains with nutpie",
    "refit": "divergences: refitting at target_accept 0.99",
    "diagnostics": "checking convergence (R-hat, ESS, divergences, E-BFMI)",
    "plots": "drawing figures",
    "save": "writing results",
    "report": "drawing the report figures, writing report.html and report.md",
}


@contextmanager
def progress(enabled: bool, first: str = "loading") -> Iterator[Callable[[str], None]]:
    """A rich status line on stderr naming the current phase; yields ``say(phase)``."""
    if not enabled:
        yield lambda _phase: None
        return
    with err.status(first) as status:
        yield lambda phase: status.update(PHASES.get(phase, phase))


@contextmanager
def scenario_bar(total: int) -> Iterator[Callable[[Any, dict[str, Any]], None]]:
    """A rich progress bar of sensitivity scenarios on stderr; yields ``tick(scenario, record)``."""
    with Progress(
        TextColumn("scenarios"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as prog:
        task = prog.add_task("", total=total)

        def tick(s: Any, record: dict[str, Any]) -> None:
            prog.update(task, advance=1, description=f"{s.label[:60]} ({record['status']})")

        yield tick


def print_sensitivity(result: Any, *, title: str, axes: tuple[str, ...]) -> None:
    """The rich table of a sensitivity run and the power-scaling check of the main fit.

    ``axes``: the axes a scenario can vary (a column for each that varies here).
    """
    table = Table(title=title, title_justify="left", show_header=True)
    varying = [a for a in axes if len({r["settings"][a] for r in result.rows}) > 1]
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
            fmt_interval(r["or"]) if has else "",
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


def print_redo(identical: bool, same_versions: bool, *, of: Any) -> None:
    """Whether ``fit --from`` reproduced the saved summary (on stderr)."""
    if identical:
        err.print(f"[green]reproduced[/green]: summary identical to the one saved in {of}")
    elif same_versions:
        err.print(
            "[bold red]warning[/bold red]: NOT reproduced: same inputs and package versions, "
            f"but the summary differs from the one saved in {of}"
        )
    else:
        err.print(
            "[yellow]note[/yellow]: package versions or the CPU target differ from the saved "
            "fit's, so the numbers may differ within Monte Carlo error"
        )


def print_answers(answers: list[Any]) -> None:
    """The table of ``query`` answers (probability, MCSE or ``exact``)."""
    table = Table(show_header=True)
    table.add_column("query")
    table.add_column("probability", justify="right")
    table.add_column("MCSE", justify="right")
    for a in answers:
        table.add_row(  # escape: OR[secondary] is not rich markup
            escape(a.query),
            f"{a.probability:.4f}",
            "exact" if a.mcse is None else f"{a.mcse:.4f}",
        )
    out.print(table)


def print_design(res: Any, *, subgroup: str | None, criterion: str) -> None:
    """The table of a future trial's assurance per size, and what it rests on."""
    table = Table(
        title=f"future trial from {res.data_name}"
        + (f", subgroup {subgroup}" if subgroup else "")
        + f": {criterion}",
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


def print_bias_adjustment(summary: dict[str, Any]) -> None:
    """The weaker trials, the bias prior, the mean bias, and P(OR > 1) before and after."""
    b = summary["bias_adjustment"]
    over = b["overstatement"]
    out.print(
        escape(
            f"bias adjustment: {len(b['weaker'])} weaker trial(s) ({b['column']} not "
            f"{', '.join(b['adequate'])}): {', '.join(b['weaker'])}"
        )
    )
    out.print(
        f"  mean bias ~ {escape(b['prior'])} (log ratio of ORs, positive = overstated benefit; "
        f"{b['benefit'].replace('-', ' ')} are a benefit), between-trial SD {b['sd']:g}; "
        f"posterior overstatement {over['median']:.2f} [{over['q025']:.2f}, {over['q975']:.2f}]"
    )
    before = b.get("unadjusted")
    if before is not None:
        out.print(
            f"  P(OR > 1): unadjusted {before['p_mu_gt_0']:.3f} -> adjusted "
            f"{summary['p_mu_gt_0']:.3f}; pooled OR {before['or']['median']:.2f} -> "
            f"{summary['or']['median']:.2f}"
        )
    else:
        out.print(
            f"  P(OR > 1) adjusted {summary['p_mu_gt_0']:.3f} (unadjusted: not refitted by "
            "MCMC; scripts/bias_steps.py compares)"
        )


def print_comparison(rows: list[dict[str, Any]], *, title: str, k: int, priors: str) -> None:
    """The table of leave-one-trial-out ELPD per model, and what its columns mean."""
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False
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
            f"{len(r['refit'])}/{k}",
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
    out.print(f"priors: {priors}")


def warn_comparison(rows: list[dict[str, Any]]) -> None:
    """Warnings on stderr about models whose fit or refits failed their checks."""
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


def print_json(obj: Any, *, indent: int | None = 2) -> None:
    """``obj`` as JSON on stdout (not through rich: no wrapping, no markup)."""
    sys.stdout.write(json.dumps(obj, indent=indent) + "\n")
