"""Figures of the bias analysis, drawn from its ``bias.json`` object (no refit, no draws).

One function per figure, keyword-only options, each returning the matplotlib figure (the
caller saves with :func:`trialsynth.report.style.save_figure`). Okabe-Ito colours, and marks
that also differ in line style or shade, as in :mod:`trialsynth.report.style`.

* :func:`averaged_posterior_plot`: the model-averaged posterior of the pooled OR (its
  point mass at OR = 1 from the null models as a bar) beside the unadjusted random-effects one;
* :func:`weightfunction_plot`: posterior publication weights of each weight function;
* :func:`funnel_plot`: contour-enhanced funnel plot (Peters et al. 2008) with the
  classical Egger and Peters p-values in the legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from trialsynth.report.style import OKABE_ITO, log_or_axis, pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1)))
_COLOURS = tuple(OKABE_ITO[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky"))
#: Shades of the funnel plot's significance regions (two-sided p of a z test against OR = 1).
_REGIONS = ((0.01, "#c6c6c6", "p < 0.01"), (0.05, "#e0e0e0", "0.01 < p < 0.05"))


def averaged_posterior_plot(bias: Mapping[str, Any], *, title: str | None = None) -> Figure:
    """The model-averaged posterior of the pooled OR beside the unadjusted one.

    Parameters
    ----------
    bias : mapping
        The ``bias.json`` object (its ``density``, ``inclusion`` and ``averaged`` keys).
    title : str, optional
        Figure title.
    """
    plt = pyplot()
    dens = bias["density"]
    grid = np.exp(np.asarray(dens["log_or"]))
    fig, ax = plt.subplots(figsize=(7, 4.8))
    if dens.get("unadjusted") is not None:
        p_un = bias["unadjusted"]["p_mu_gt_0"]
        ax.plot(
            grid,
            dens["unadjusted"],
            color=OKABE_ITO["orange"],
            ls="--",
            lw=2,
            label=f"unadjusted random effects, no bias model: P(OR > 1) = {p_un:.2f}",
        )
    p_eff = bias["inclusion"]["effect"]["posterior_prob"]
    ax.plot(
        grid,
        dens["averaged"],
        color=OKABE_ITO["blue"],
        lw=2,
        label=f"model-averaged, models with an effect (P = {p_eff:.2f}): "
        f"P(OR > 1) = {bias['averaged']['p_mu_gt_0']:.2f}",
    )
    top = ax.get_ylim()[1]
    height = top * min(1.0, dens["p_null"])  # a probability, not a density: labelled
    ax.vlines(
        1.0,
        0,
        height,
        color=OKABE_ITO["black"],
        lw=5,
        alpha=0.35,
        label="point mass at OR = 1 of the models without an effect",
    )
    ax.annotate(
        f"P(OR = 1) = {dens['p_null']:.2f}",
        (1.0, height),
        xytext=(4, 2),
        textcoords="offset points",
        fontsize=7,
    )
    log_or_axis(ax, float(grid[0]), float(grid[-1]))
    ax.set_xlabel("pooled odds ratio")
    ax.set_ylabel("posterior density (per unit log OR)")
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax.set_title(title or "Pooled OR averaged over effect, heterogeneity and bias models")
    fig.tight_layout()
    return fig


def weightfunction_plot(bias: Mapping[str, Any], *, title: str | None = None) -> Figure:
    """Posterior median and 95% interval of the relative publication weight per p-value bin."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (label, s) in enumerate(bias["weightfunctions"].items()):
        edges = np.concatenate([[1e-3], s["steps"], [1.0]])
        xs = np.repeat(edges, 2)[1:-1]
        colour, style = _COLOURS[i % len(_COLOURS)], _STYLES[i % len(_STYLES)]
        ax.plot(
            xs,
            np.repeat(s["median"], 2),
            color=colour,
            ls=style,
            lw=2,
            label=f"{label.removeprefix('selection-')} (posterior prob. {s['posterior_prob']:.3f})",
        )
        ax.fill_between(
            xs, np.repeat(s["q025"], 2), np.repeat(s["q975"], 2), color=colour, alpha=0.08
        )
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("p-value of the trial (one- or two-sided, as the weight function says)")
    ax.set_ylabel("relative publication probability \u03c9")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    ax.set_title(title or "Weight functions: posterior median and 95% interval")
    fig.tight_layout()
    return fig


def funnel_plot(
    y: Sequence[float],
    se: Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    centre: float | None = None,
    small_study: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Contour-enhanced funnel plot: significance regions of each trial's test of OR = 1.

    Shaded: two-sided p < 0.01 (darkest), 0.01-0.05 and 0.05-0.10 (lightest) of a z test.
    ``centre`` (log OR) draws the pseudo 95% funnel around a pooled estimate;
    ``small_study`` (the ``small_study`` key of ``bias.json``) adds the Egger and Peters
    p-values to the legend.
    """
    plt = pyplot()
    y_arr, se_arr = np.asarray(y, dtype=float), np.asarray(se, dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    top = float(se_arr.max()) * 1.15
    s = np.linspace(0, top, 200)
    z = {p: -special.ndtri(p / 2) for p in (0.01, 0.05, 0.10)}
    xmax = max(float(np.max(np.abs(y_arr))) * 1.1, z[0.01] * top * 1.05)
    ax.fill_betweenx(s, -xmax, xmax, color=_REGIONS[0][1], label=_REGIONS[0][2])
    ax.fill_betweenx(s, -z[0.01] * s, z[0.01] * s, color=_REGIONS[1][1], label=_REGIONS[1][2])
    ax.fill_betweenx(s, -z[0.05] * s, z[0.05] * s, color="#f0f0f0", label="0.05 < p < 0.10")
    ax.fill_betweenx(s, -z[0.10] * s, z[0.10] * s, color="white", ec="#c6c6c6", lw=0.5,
                     label="p > 0.10")  # fmt: skip
    if centre is not None:
        for sign in (-1, 1):
            ax.plot(centre + sign * 1.96 * s, s, color=OKABE_ITO["blue"], ls="--", lw=1)
        ax.axvline(centre, color=OKABE_ITO["blue"], lw=1, label="pooled log OR (random effects)")
    ax.axvline(0.0, color="black", lw=0.8)
    note = _tests_note(small_study)
    ax.scatter(y_arr, se_arr, color=OKABE_ITO["vermillion"], edgecolor="black", zorder=3,
               label="trials" + (f" ({note})" if note else ""))  # fmt: skip
    for xi, si, lab in zip(y_arr, se_arr, labels or (), strict=False):
        ax.annotate(lab, (xi, si), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_ylim(top, 0)
    ax.set_xlim(-xmax, xmax)
    ax.set_xlabel("log odds ratio")
    ax.set_ylabel("standard error")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    ax.set_title(title or "Contour-enhanced funnel plot")
    fig.tight_layout()
    return fig


def _tests_note(small_study: Mapping[str, Any] | None) -> str:
    if not small_study:
        return ""
    parts = [
        f"{name.capitalize()} p = {small_study[name]['p']:.2f}"
        for name in ("egger", "peters")
        if name in small_study and "p" in small_study[name]
    ]
    return "; ".join(parts)


def bias_figures(bias: Mapping[str, Any]) -> list[tuple[str, str, str, Figure]]:
    """Every bias figure of a ``bias.json`` object: (name, title, caption, figure)."""
    trials = bias["trials"]
    return [
        (
            "bias_averaged",
            "Pooled OR robust to publication bias",
            "Model-averaged posterior of the pooled OR over the 36 models (solid; the bar is the "
            "point mass at OR = 1 of the models without an effect) beside the random-effects "
            "model without a bias component under the same priors (dashed).",
            averaged_posterior_plot(bias),
        ),
        (
            "bias_weights",
            "Publication weights",
            "Posterior median (line) and 95% interval (band) of the relative probability that a "
            "trial with a p-value in each interval is published, per weight function.",
            weightfunction_plot(bias),
        ),
        (
            "funnel",
            "Contour-enhanced funnel plot",
            "Trials' log OR against their standard error; shading: significance of each trial's "
            "own test of OR = 1; dashed: pseudo 95% limits around the random-effects pooled log "
            "OR without a bias model. Egger's and Peters' tests are classical references.",
            funnel_plot(
                trials["y"],
                trials["se"],
                labels=trials.get("study"),
                centre=(bias.get("unadjusted") or bias["averaged"])["mu"]["median"],
                small_study=bias.get("small_study"),
            ),
        ),
    ]
