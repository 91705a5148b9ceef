"""``trialsynth design FIT --criterion updated-meta|updated-meta-classical``: rendering.

The ``design`` command (:mod:`trialsynth.cli.design`) parses and calls
:func:`trialsynth.workflow.design.updated_design_from_folder`; this prints its result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from trialsynth.analysis.updated_meta import UpdatedDesign


def print_updated_design(res: UpdatedDesign, out: Console) -> None:
    """The rich table of an updated-meta design and the lines that explain it."""
    table = Table(
        title=f"future trial from {res.data_name}: {res.criterion_text}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    cols = ("N/arm", "alone", "updated P>G", "updated DL", "power*", "benefit if OR >", "ESS min")
    for col in cols:
        table.add_column(col, justify="right", no_wrap=True)
    for p in res.points:
        c = p.curves
        benefit = ", ".join(f"{x:.2f}" for x in p.crossing.benefit) or "never"
        table.add_row(
            str(p.n_per_arm),
            f"{c['two-sided-test'].assurance:.3f}±{c['two-sided-test'].mcse:.3f}",
            f"{c['updated-meta'].assurance:.3f}±{c['updated-meta'].mcse:.3f}",
            f"{c['updated-meta-classical'].assurance:.3f}±{c['updated-meta-classical'].mcse:.3f}",
            f"{c[res.criterion].classical_power:.3f}",
            benefit,
            "exact" if p.importance is None else f"{p.importance['ess_min_near_threshold']:.0f}",
        )
    out.print(table)
    out.print(
        "assurance ± MCSE of: the new trial alone (two-sided test at "
        f"{res.alpha:g}), the updated meta-analysis with P(OR > 1) > {res.threshold:g}, and "
        "with a DerSimonian-Laird 95% CI excluding 1; *power: the chosen criterion at the "
        f"pooled OR {res.pooled_or:.2f} and the median control rate; benefit if OR >: "
        "observed OR above which the updated P(OR > 1) exceeds G (at that control rate); "
        "ESS min: smallest Kish ESS of the reweighted draws near the threshold"
    )
    _print_footer(res, out)


def _print_footer(res: UpdatedDesign, out: Console) -> None:
    rate = f"control rate {res.control_rate:.3f}"
    if res.control_rate_interval:
        lo, hi = res.control_rate_interval
        rate += f" (median; 95% {lo:.3f}-{hi:.3f}; {res.control_source})"
    out.print(rate)
    out.print(
        f"P(OR > 1) now: {res.p_mu_gt_0:.3f} ({res.components}, {res.n_components} components)"
    )
    lim = res.limits
    out.print(
        "limits as N grows: alone {:.3f}, updated P > G {:.3f}, updated DL {:.3f}".format(
            lim["stand-alone"][0], lim["updated-meta"][0], lim["updated-meta-classical"][0]
        )
    )
    out.print(f"{res.criterion}: {res.target_note()}; alone: {res.target_note('two-sided-test')}")
    for c in res.checks:
        if "p_refit" in c:
            out.print(
                f"refit check N={c['n_per_arm']} ({c['x_t']}/{c['n_per_arm']} vs {c['x_c']}/"
                f"{c['n_per_arm']}): reweighted {c['p_updated']:.4f}±{c['mcse']:.4f}, refit "
                f"{c['p_refit']:.4f}±{c['mcse_refit']:.4f} (z = {c['z']:.2f}, ESS {c['ess']:.0f})"
            )
        else:
            out.print(
                f"exact check N={c['n_per_arm']}: reweighted {c['p_updated']:.10f}, "
                f"recomputed {c['p_recomputed']:.10f}"
            )
    out.print("fit priors: " + "; ".join(f"{k} ~ {v}" for k, v in res.fit_priors.items()))
    out.print(f"{res.sims} simulated trials, seed {res.seed}")
