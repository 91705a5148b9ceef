"""Figures of the next trial and of the evidence over time (one function per figure).

* :func:`assurance_curves_plot`: the stand-alone and the two updated-meta assurance curves
  against the new trial's size, with their limits as N grows;
* :func:`conclusion_map_plot`: where a new trial would change the conclusion (a Bayesian
  extfunnel: the updated P(OR > 1) over the trial's observed OR and size, the classical
  DerSimonian-Laird verdict beside it);
* :func:`cumulative_forest_plot`: the pooled OR after each trial in publication order;
* :func:`cumulative_probability_plot`: P(OR > 1) over the years, with the classical
  cumulative DL estimate beside it.

Each returns a matplotlib figure; the caller saves it
(:func:`~trialsynth.report.style.save_figure`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trialsynth.report.style import OKABE_ITO, log_or_axis, pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from trialsynth.analysis.cumulative import Cumulative, Step
    from trialsynth.analysis.updated_conclusion import ConclusionMap
    from trialsynth.analysis.updated_meta import UpdatedDesign

#: Curves of :func:`assurance_curves_plot`: key, label, colour, marker.
CURVE_STYLES = (
    ("two-sided-test", "new trial alone (two-sided test)", OKABE_ITO["vermillion"], "s"),
    ("updated-meta", "updated meta-analysis, P(OR > 1) > G", OKABE_ITO["blue"], "o"),
    ("updated-meta-classical", "updated meta-analysis, DL 95% CI", OKABE_ITO["green"], "^"),
)
LIMIT_KEYS = {
    "two-sided-test": "stand-alone",
    "updated-meta": "updated-meta",
    "updated-meta-classical": "updated-meta-classical",
}


def assurance_curves_plot(design: UpdatedDesign, *, title: str | None = None) -> Figure:
    """The three assurance curves of a future trial against its size per arm.

    Each curve has a band of +-2 MCSE and its limit as N grows (dotted, same colour); the
    target is a thin grey line.

    Parameters
    ----------
    design : trialsynth.analysis.updated_meta.UpdatedDesign
        Result of :func:`~trialsynth.analysis.updated_meta.design_updated`.
    title : str, optional
        Figure title (default: the data, G and the control rate).

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled as in :data:`CURVE_STYLES`, ``limit ...`` and ``target ...``.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    for key, label, colour, marker in CURVE_STYLES:
        c = design.curve(key)
        n, a, se = c["n_per_arm"], c["assurance"], c["mcse"]
        ax.fill_between(n, a - 2 * se, a + 2 * se, color=colour, alpha=0.18, lw=0)
        ax.plot(n, a, "-", marker=marker, color=colour, ms=3, label=label)
        limit = design.limits[LIMIT_KEYS[key]][0]
        ax.axhline(limit, ls=":", lw=1, color=colour, label=f"limit as N grows: {limit:.2f}")
    ax.axhline(design.target, lw=0.8, color="0.5", label=f"target {design.target:g}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("participants per arm of the new trial")
    ax.set_ylabel("probability of showing benefit")
    ax.set_title(
        title
        or f"{design.data_name}: the new trial alone and in the updated meta-analysis\n"
        f"G = {design.threshold:g}; P(OR > 1) now {design.p_mu_gt_0:.3f}; control rate "
        f"{design.control_rate:.2f}",
        fontsize=9,
        loc="left",
    )
    ax.legend(fontsize=7, loc="lower right", frameon=False, ncol=2)
    ax.grid(color="0.92", lw=0.5)
    fig.tight_layout()
    return fig


def conclusion_map_plot(cmap: ConclusionMap, *, title: str | None = None) -> Figure:
    """Where a new trial would change the conclusion (a Bayesian extfunnel).

    Shades the new trial's (observed OR, size) plane by the updated P(OR > 1): above G the
    updated meta-analysis shows benefit, below 1 - G harm; the G contour is solid, the
    1 - G contour dashed. Hatching marks where the updated DerSimonian-Laird 95% CI
    excludes 1 in favour of treatment.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with a filled contour, its colour bar and the classical hatching.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    x, n, p = cmap.odds_ratio, cmap.n_per_arm, cmap.p
    g = cmap.threshold
    levels = [0.0, 1 - g, 0.5, g, 1.0]
    colours = [OKABE_ITO["vermillion"], "#f3c9b1", "#cfe3f2", OKABE_ITO["sky"]]
    filled = ax.contourf(x, n, p, levels=levels, colors=colours, alpha=0.85)
    ax.contour(x, n, p, levels=[g], colors=OKABE_ITO["blue"], linewidths=1.4)
    if np.any(p < 1 - g):
        ax.contour(x, n, p, levels=[1 - g], colors=OKABE_ITO["vermillion"], linestyles="--")
    ax.contourf(
        x, n, cmap.classical.astype(float), levels=[0.5, 1.5], colors="none", hatches=["///"]
    )
    ax.contour(x, n, cmap.classical.astype(float), levels=[0.5], colors="0.3", linewidths=0.8)
    bar = fig.colorbar(filled, ax=ax, ticks=levels)
    bar.set_label("updated P(OR > 1)")
    ax.axvline(1.0, color="0.4", lw=0.7)
    log_or_axis(ax, float(x.min()), float(x.max()))
    ax.set_xlabel("observed odds ratio of the new trial")
    ax.set_ylabel("participants per arm")
    ax.set_title(
        title
        or f"where the new trial changes the conclusion: now P(OR > 1) = {cmap.p_now:.3f}\n"
        f"solid line: updated P(OR > 1) = {g:g}; hatched: updated DL 95% CI excludes 1; "
        f"control rate {cmap.control_rate:.2f}",
        fontsize=8,
        loc="left",
    )
    fig.tight_layout()
    return fig


def _step_label(step: Step) -> str:
    when = f" ({step.order_value})" if step.order_value is not None else ""
    return f"+ {step.added}{when}"


def cumulative_forest_plot(cum: Cumulative, *, title: str | None = None) -> Figure:
    """Cumulative forest plot: the pooled OR with its 95% CrI after each trial is added.

    One row per step (top: the first trial), labelled with the trial added and its order
    value; the classical cumulative DL estimate is drawn beside each row (open marker, thin
    line). P(OR > 1) is printed on the right.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one row per step (y tick labels ``+ <study> (<order value>)``).
    """
    plt = pyplot()
    k = len(cum.steps)
    fig, ax = plt.subplots(figsize=(7.6, 1.2 + 0.42 * k))
    rows = np.arange(k)[::-1].astype(float)
    for y, s in zip(rows, cum.steps, strict=True):
        o, c = s.odds_ratio, s.classical
        ax.plot([o["q025"], o["q975"]], [y, y], color=OKABE_ITO["blue"], lw=2)
        ax.plot(o["median"], y, "D", color=OKABE_ITO["blue"], ms=5)
        ax.plot([c["lower"], c["upper"]], [y - 0.25] * 2, color="0.45", lw=0.9)
        ax.plot(c["or"], y - 0.25, "o", mfc="white", mec="0.45", ms=4)
        ax.annotate(
            f"{s.p_mu_gt_0:.3f}",
            (1.01, y),
            xycoords=("axes fraction", "data"),
            fontsize=8,
            va="center",
        )
    lo = min(min(s.odds_ratio["q025"], s.classical["lower"]) for s in cum.steps)
    hi = max(max(s.odds_ratio["q975"], s.classical["upper"]) for s in cum.steps)
    ax.axvline(1.0, color="0.4", lw=0.7)
    log_or_axis(ax, lo / 1.2, hi * 1.2)
    ax.set_yticks(rows, [_step_label(s) for s in cum.steps], fontsize=8)
    ax.set_ylim(-0.8, k - 0.4)
    ax.set_xlabel("pooled odds ratio after the trials so far (95% interval)")
    ax.annotate("P(OR > 1)", (1.01, k - 0.45), xycoords=("axes fraction", "data"), fontsize=8)
    ax.set_title(
        title
        or f"{cum.data_name}: cumulative meta-analysis ({cum.model}, {cum.engine})\n"
        "diamonds: posterior median and 95% CrI; circles: DerSimonian-Laird and 95% CI",
        fontsize=9,
        loc="left",
    )
    fig.tight_layout()
    return fig


def cumulative_probability_plot(cum: Cumulative, *, title: str | None = None) -> Figure:
    """P(OR > 1) over the order (years), with the classical cumulative estimate beside it.

    Left: the posterior P(OR > 1) and the predictive P(OR_new > 1) after each step (with
    +-2 MCSE bars for MCMC steps). Right: the classical cumulative DerSimonian-Laird OR with
    its 95% CI against the same axis.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes; the left one has lines labelled ``P(OR > 1)`` and ``P(OR_new > 1)``.
    """
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.6, 3.8), sharex=True)
    x = np.array([_order_number(s.order_value, s.k) for s in cum.steps], dtype=float)
    p = np.array([s.p_mu_gt_0 for s in cum.steps])
    q = np.array([s.p_theta_new_gt_0 for s in cum.steps])
    ax.step(x, p, where="post", color=OKABE_ITO["blue"], label="P(OR > 1)")
    ax.plot(x, p, "o", color=OKABE_ITO["blue"], ms=4)
    ax.step(x, q, where="post", color=OKABE_ITO["orange"], ls="--", label="P(OR_new > 1)")
    mc = [s.mcse for s in cum.steps]
    if all(m is not None for m in mc):
        err = 2 * np.array([m["p_mu_gt_0"] for m in mc])  # type: ignore[index]
        ax.errorbar(x, p, yerr=err, fmt="none", color=OKABE_ITO["blue"], lw=0.8)
    ax.axhline(0.5, color="0.6", lw=0.7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("posterior probability")
    ax.set_xlabel(cum.order)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.grid(color="0.92", lw=0.5)
    est = np.array([s.classical["or"] for s in cum.steps])
    lo = np.array([s.classical["lower"] for s in cum.steps])
    hi = np.array([s.classical["upper"] for s in cum.steps])
    bx.errorbar(x, est, yerr=[est - lo, hi - est], fmt="o", color="0.3", ms=4, capsize=2)
    bx.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    bx.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    bx.yaxis.set_minor_formatter(NullFormatter())
    bx.axhline(1.0, color="0.4", lw=0.7)
    bx.set_ylabel("cumulative DerSimonian-Laird OR (95% CI)")
    bx.set_xlabel(cum.order)
    bx.grid(color="0.92", lw=0.5)
    fig.suptitle(
        title or f"{cum.data_name}: the evidence over time ({cum.model}, {cum.engine})",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout()
    return fig


def _order_number(value: object, k: int) -> float:
    """The order value as a number for the x axis (the step number if it is not one)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float(k)
