"""Report figures. One function per figure, keyword-only options, returning the figure.

The caller saves (:func:`~trialsynth.report.style.save_figure`: SVG, and PNG if asked).
Colours are from the Okabe-Ito palette (colour-blind safe) and every mark also differs in
shape, fill or line style, so figures stay readable in greyscale. Figures are drawn from a
:class:`~trialsynth.results.base.FitResult`, fresh or loaded from a FIT folder.

Figures: :func:`~trialsynth.report.forest.forest_plot` (the forest plot), :func:`posterior_plot`
(pooled OR and OR of a new trial, prior overlaid), :func:`tau_plot` (heterogeneity prior
vs posterior), :func:`benefit_plot` (P(OR > c)), :func:`subgroup_plot` (subgroup forest),
:func:`rank_plot` and :func:`trace_plot` (MCMC diagnostics of the hyperparameters, with
arviz-plots).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.core.density import kde
from trialsynth.models.likelihood import prior_effects
from trialsynth.report.style import (
    CHAIN_COLOURS,
    CHAIN_STYLES,
    OKABE_ITO,
    failed_banner,
    fmt_or,
    log_or_axis,
    pyplot,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from trialsynth.results.base import FitResult


def _prior_predictive(fit: FitResult, n: int, seed: int) -> np.ndarray | None:
    """Draws of theta_new under the prior alone (None when a prior is improper)."""
    if fit.priors.mu.family == "flat" or fit.spec.random_effects is None:
        return None
    mu, tau, eps = prior_effects(fit.spec, fit.priors, n, np.random.default_rng([seed, 7]))
    return mu + tau * eps


def posterior_plot(
    fit: FitResult,
    *,
    treatment: str = "treatment",
    control: str = "control",
    title: str | None = None,
    prior_draws: int = 40_000,
) -> Figure:
    """Posterior of the pooled OR and of the OR of a new trial, with the prior overlaid.

    Left panel: posterior density of ``mu`` (pooled log-OR) and its prior density.
    Posterior densities are :meth:`~trialsynth.results.base.FitResult.density` (exact
    marginals for the exact engine, kernel densities of the draws otherwise).
    Right panel: posterior predictive density of ``theta_new`` and its prior predictive
    density (``mu`` and ``tau`` drawn from their priors, ``prior_draws`` draws seeded
    from the fit's seed). Densities are per unit log-OR, drawn on a log OR axis; the
    shaded band is the 95% credible interval.

    Parameters
    ----------
    fit : FitResult
        A fitted meta-analysis.
    treatment, control : str
        Arm names for the "favours" labels.
    title : str, optional
        Figure title.
    prior_draws : int
        Monte Carlo draws for the prior predictive curve.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, titled ``pooled OR`` and ``OR of a new trial``.
    """
    plt = pyplot()
    summary = fit.summary()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    panels = [
        ("pooled OR", "mu", summary["or"], summary["p_mu_gt_0"], "OR"),
        (
            "OR of a new trial",
            "theta_new",
            summary["or_new"],
            summary["p_theta_new_gt_0"],
            "OR_new",
        ),
    ]
    prior_new = _prior_predictive(fit, prior_draws, int(summary["seed"]))
    for ax, (name, quantity, s, p_gt, sym) in zip(axes, panels, strict=True):
        x = np.asarray(fit.draws(quantity), float).ravel()
        lo, hi = np.quantile(x, [0.002, 0.998])
        pad = 0.25 * (hi - lo)
        grid = np.linspace(lo - pad, hi + pad, 400)
        dens = fit.density(quantity, grid)  # exact where the result has the marginal
        _posterior_line(ax, np.exp(grid), dens)
        band = (grid >= np.log(s["q025"])) & (grid <= np.log(s["q975"]))
        ax.fill_between(
            np.exp(grid[band]),
            dens[band],
            color=OKABE_ITO["sky"],
            alpha=0.35,
            lw=0,
            hatch="//",
            edgecolor=OKABE_ITO["blue"],
            label="95% credible interval",
        )
        prior_note = _effect_prior(ax, fit, sym, grid, prior_new)
        ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        log_or_axis(ax, float(np.exp(grid[0])), float(np.exp(grid[-1])))
        ax.set_ylim(bottom=0)
        ax.set_title(name)
        ax.set_xlabel(f"{sym} (log scale)\n\u2190 favours {control}    favours {treatment} \u2192")
        ax.set_ylabel("density (per unit log OR)")
        text = f"median {fmt_or(s)}\nP({sym} > 1) = {p_gt:.3f}"
        if prior_note:
            text += f"\n{prior_note}"
        ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", fontsize=8)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    fig.suptitle(title or "Pooled odds ratio and odds ratio of a new trial", fontsize=11)
    failed_banner(fig, fit)
    return fig


def _posterior_line(ax: Any, x: np.ndarray, dens: np.ndarray) -> None:
    """The posterior density curve every prior-vs-posterior panel draws (solid blue)."""
    ax.plot(x, dens, color=OKABE_ITO["blue"], lw=2, label="posterior")


def _prior_line(ax: Any, x: np.ndarray, dens: np.ndarray, label: str) -> None:
    """A prior (or prior predictive) density beside the posterior (dashed orange)."""
    ax.plot(x, dens, color=OKABE_ITO["orange"], lw=2, ls="--", label=label)


def _effect_prior(
    ax: Any, fit: FitResult, sym: str, grid: np.ndarray, prior_new: np.ndarray | None
) -> str:
    """Draw the prior of a :func:`posterior_plot` panel on the log-OR ``grid``, if it can be.

    ``sym`` is ``"OR"`` (the prior of mu) or ``"OR_new"`` (the prior predictive draws
    ``prior_new``). Returns the note saying why nothing was drawn, or ``""``.
    """
    has_structure = bool(fit.subgroups) or bool(fit.spec.covariates)
    if sym == "OR":
        if fit.priors.mu.family == "flat":
            return "prior of mu: flat (improper, not drawn)"
        if has_structure:
            return f"prior {fit.priors.mu} is on each subgroup mean (not drawn)"
        prior = np.asarray(fit.priors.mu.dist().pdf(grid), float)
        _prior_line(ax, np.exp(grid), prior, f"prior {fit.priors.mu}")
        return ""
    if prior_new is not None and not has_structure:
        _prior_line(ax, np.exp(grid), kde(prior_new, grid), "prior predictive")
        return ""
    return "prior predictive not drawn (improper prior or structured model)"


def tau_plot(fit: FitResult, *, title: str | None = None) -> Figure:
    """Heterogeneity tau: prior density against posterior density.

    The prior is :meth:`~trialsynth.priors.prior.Prior.tau_dist` of the fit's tau prior (with
    the Jacobian of a prior stated on tau^2 or the precision); the posterior is
    :meth:`~trialsynth.results.base.FitResult.density`: the exact marginal for the exact
    engine, else a kernel density of the draws reflected at zero.

    Parameters
    ----------
    fit : FitResult
        A fitted random-effects meta-analysis.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For a common-effect fit (tau is fixed at 0).
    """
    if fit.spec.random_effects is None:
        raise ValueError("tau_plot: a common-effect fit has no heterogeneity (tau = 0)")
    plt = pyplot()
    summary = fit.summary()
    tau = np.asarray(fit.draws("tau"), float).ravel()
    prior = fit.priors.tau
    upper = float(np.quantile(tau, 0.998)) * 1.2
    dist = None if prior.family == "flat" else prior.tau_dist()
    if dist is not None:
        upper = max(upper, float(np.minimum(dist.ppf(0.95), 5 * upper)))
    grid = np.linspace(0, upper, 500)
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    post = fit.density("tau", grid, lower=0.0)
    _posterior_line(ax, grid, post)
    if dist is not None:
        dens = np.asarray(dist.pdf(grid), float)
        dens[~np.isfinite(dens)] = np.nan
        _prior_line(ax, grid, dens, f"prior {prior.describe()}")
    s = summary["tau"]
    for q, ls in ((s["median"], "-"), (s["q025"], ":"), (s["q975"], ":")):
        ax.axvline(q, color=OKABE_ITO["blue"], lw=0.8, ls=ls)
    ax.set_xlim(0, upper)
    top = np.nanmax(post)
    ax.set_ylim(0, 1.25 * top)
    ax.set_xlabel("tau (between-trial SD of the log OR)")
    ax.set_ylabel("density")
    ax.text(
        0.98,
        0.6,
        f"posterior median {s['median']:.2f}\n95% CrI [{s['q025']:.2f}, {s['q975']:.2f}]"
        + ("" if dist is not None else "\nprior: flat (improper, not drawn)"),
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
    )
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_title(title or "Heterogeneity: prior and posterior of tau", fontsize=11)
    failed_banner(fig, fit)
    return fig


def benefit_plot(
    fit: FitResult,
    *,
    treatment: str = "treatment",
    thresholds: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """Probability-of-benefit curve: P(OR > c) and P(OR_new > c) over thresholds c.

    Drawn from :func:`trialsynth.results.queries.benefit_curve`; the bands are ±2 Monte Carlo
    standard errors.

    Parameters
    ----------
    fit : FitResult
        A fitted meta-analysis.
    treatment : str
        Treatment name for the axis label.
    thresholds : sequence of float, optional
        Values of c (default 61 points from 0.5 to 2, log-spaced, including 1).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from trialsynth.results.queries import benefit_curve

    plt = pyplot()
    c = np.geomspace(0.5, 2.0, 61) if thresholds is None else np.asarray(thresholds, float)
    curve = benefit_curve(fit, c)
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for col, label, colour, ls, marker in (
        ("p_or", "P(OR > c), pooled", OKABE_ITO["blue"], "-", None),
        ("p_or_new", "P(OR_new > c), a new trial", OKABE_ITO["vermillion"], "--", None),
    ):
        p = curve[col].to_numpy(float)
        se = curve[f"{col}_mcse"].to_numpy(float)
        ax.plot(curve["c"], p, color=colour, ls=ls, lw=2, marker=marker, label=label)
        ax.fill_between(
            curve["c"],
            np.clip(p - 2 * se, 0, 1),
            np.clip(p + 2 * se, 0, 1),
            color=colour,
            alpha=0.2,
            lw=0,
        )
    summary = fit.summary()
    for p, colour in (
        (summary["p_mu_gt_0"], OKABE_ITO["blue"]),
        (summary["p_theta_new_gt_0"], OKABE_ITO["vermillion"]),
    ):
        ax.plot([1.0], [p], marker="o", color=colour, ms=6, mfc="white")
        ax.annotate(f"{p:.2f}", (1.0, p), xytext=(6, 4), textcoords="offset points", fontsize=8)
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.axhline(0.5, color="grey", lw=0.5, ls=":")
    log_or_axis(ax, float(c.min()), float(c.max()))
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"threshold c for the odds ratio (log scale); OR > 1 favours {treatment}")
    ax.set_ylabel("posterior probability")
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    ax.set_title(title or "Probability of benefit: P(OR > c)", fontsize=11)
    ax.grid(color="0.92", lw=0.5)
    failed_banner(fig, fit)
    return fig


def subgroup_plot(
    fit: FitResult,
    *,
    treatment: str = "treatment",
    control: str = "control",
    title: str | None = None,
) -> Figure:
    """Subgroup forest plot: per subgroup the pooled OR (diamond) and new-trial OR (bar).

    Parameters
    ----------
    fit : FitResult
        A fit with subgroups (``summary()["subgroups"]``).
    treatment, control : str
        Arm names for the "favours" labels.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One y tick per subgroup (``level (k = n)``) and ``Overall (average of subgroups)``.

    Raises
    ------
    ValueError
        When the fit has no subgroups.
    """
    summary = fit.summary()
    groups = summary.get("subgroups") or {}
    if not groups:
        raise ValueError("subgroup_plot: this fit has no subgroups (fit with a subgroup column)")
    plt = pyplot()
    entries = [
        (f"{level} (k = {g['k']})", g["or"], g["or_new"], g["p_mu_gt_0"])
        for level, g in groups.items()
    ]
    entries.append(
        ("Overall (average of subgroups)", summary["or"], summary["or_new"], summary["p_mu_gt_0"])
    )
    n = len(entries)
    height = 0.55 * n + 2.2
    fig = plt.figure(figsize=(10, height))
    ax = fig.add_axes((0.3, 1.2 / height, 0.4, (height - 2.0) / height))
    rows = np.arange(n)[::-1].astype(float)
    _subgroup_marks(ax, rows, entries)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(rows, [e[0] for e in entries])
    ax.set_ylim(-0.7, n - 0.3)
    lo = min(min(e[1]["q025"], e[2]["q025"]) for e in entries)
    hi = max(max(e[1]["q975"], e[2]["q975"]) for e in entries)
    log_or_axis(ax, lo / 1.3, hi * 1.3)
    ax.set_xlabel(
        f"odds ratio (log scale)\n\u2190 favours {control}      favours {treatment} \u2192"
    )
    _subgroup_column(fig, ax, rows, entries)
    notes = [
        f"ratio of ORs {c['contrast']}: {fmt_or(c['ratio_of_or'])}, P(>1) = {c['p_greater']:.3f}"
        for c in summary.get("subgroup_contrasts", [])
    ]
    if notes:
        fig.text(0.02, 0.08 / height, "\n".join(notes), fontsize=8, va="bottom")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title or "Subgroups", x=0.02, y=1 - 0.1 / height, ha="left", va="top", fontsize=11)
    failed_banner(fig, fit)
    return fig


#: A row of :func:`subgroup_plot`: label, pooled OR summary, new-trial OR summary, P(OR > 1).
SubgroupRow = tuple[str, dict[str, float], dict[str, float], float]


def _subgroup_marks(ax: Any, rows: np.ndarray, entries: list[SubgroupRow]) -> None:
    """Per row the new trial's predictive bar (below) and the pooled OR's diamond (above)."""
    for r, (_label, o, new, _p) in zip(rows, entries, strict=True):
        ax.errorbar(
            [new["median"]],
            [r - 0.18],
            xerr=[[new["median"] - new["q025"]], [new["q975"] - new["median"]]],
            fmt="D",
            mfc="white",
            mec=OKABE_ITO["green"],
            ecolor=OKABE_ITO["green"],
            lw=2,
            capsize=3,
        )
        ax.fill(
            [o["q025"], o["median"], o["q975"], o["median"]],
            [r + 0.12, r + 0.36, r + 0.12, r - 0.12],
            color=OKABE_ITO["vermillion"],
        )
    ax.plot([], [], marker="D", color=OKABE_ITO["vermillion"], ls="", label="pooled OR (95% CrI)")
    ax.plot(
        [],
        [],
        marker="D",
        mfc="white",
        color=OKABE_ITO["green"],
        ls="-",
        label="new trial (95% predictive)",
    )


def _subgroup_column(fig: Any, ax: Any, rows: np.ndarray, entries: list[SubgroupRow]) -> None:
    """The text column right of the axes: pooled OR [95% CrI] and P(OR > 1) per row."""
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(fig.transFigure, ax.transData)
    fig.text(
        0.72,
        len(entries) - 0.4,
        "pooled OR [95% CrI]    P(OR > 1)",
        transform=trans,
        fontsize=8,
        weight="bold",
        va="bottom",
    )
    for r, (_label, o, _new, p) in zip(rows, entries, strict=True):
        fig.text(0.72, r, f"{fmt_or(o)}    {p:.3f}", transform=trans, va="center", fontsize=8)


def hyperparameters(fit: FitResult) -> list[str]:
    """The sampled hyperparameters shown in the diagnostics figures."""
    post = fit.tree["posterior"]
    if fit.subgroups:
        names = ["mu_subgroup", "tau" if fit.spec.subgroup_tau == "shared" else "tau_subgroup"]
    else:
        names = ["mu", "tau"]
    names.append("beta")
    return [v for v in names if v in post and (v != "tau" or fit.spec.random_effects)]


def _diagnostic_tree(fit: FitResult) -> Any:
    if not fit.has_chains:
        raise ValueError(
            f"diagnostics figures need MCMC chains; this fit's engine is {fit.engine!r} "
            "(exact results have no chains to compare)"
        )
    return fit.tree


def _chain_aes(n_chains: int) -> dict[str, Any]:
    return {
        "aes": {"color": ["chain"], "linestyle": ["chain"]},
        "color": [CHAIN_COLOURS[i % len(CHAIN_COLOURS)] for i in range(n_chains)],
        "linestyle": [CHAIN_STYLES[i % len(CHAIN_STYLES)] for i in range(n_chains)],
    }


def rank_plot(fit: FitResult, *, title: str | None = None) -> Figure:
    """Rank-ECDF plots of the hyperparameters, one line per chain (``arviz_plots.plot_rank``).

    Each panel shows the difference between the ECDF of a chain's fractional ranks and the
    uniform; with well-mixed chains the lines stay near zero. ArviZ's multi-chain test
    prints its p-value in each panel and marks suspicious points.

    Parameters
    ----------
    fit : FitResult
        An MCMC fit.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        For a fit without chains (exact engine).
    """
    import arviz_plots as azp

    return _chain_plot(fit, azp.plot_rank, title or "Rank plots (chains should overlap near zero)")


def trace_plot(fit: FitResult, *, title: str | None = None) -> Figure:
    """Trace and per-chain densities of the hyperparameters (``arviz_plots.plot_trace_dist``).

    Parameters, return value and errors as :func:`rank_plot` (an MCMC fit; a fit without
    chains raises ValueError).
    """
    import arviz_plots as azp

    return _chain_plot(fit, azp.plot_trace_dist, title or "Trace and density per chain")


def _chain_plot(fit: FitResult, plot: Any, title: str) -> Figure:
    """An arviz-plots per-chain figure of the hyperparameters, titled and marked if failed."""
    pyplot()
    tree = _diagnostic_tree(fit)
    pc = plot(
        tree,
        var_names=hyperparameters(fit),
        backend="matplotlib",
        **_chain_aes(tree["posterior"].sizes["chain"]),
    )
    fig = pc.get_viz("figure")
    fig.suptitle(title, fontsize=11)
    failed_banner(fig, fit)
    return fig


def assurance_plot(design: Any, *, title: str | None = None) -> Figure:
    """Assurance curve of a future trial against its size per arm.

    Draws the assurance with a band of +-2 Monte Carlo standard errors, the classical power
    at the pooled point estimate (dashed), the limit P(OR_new > 1) as N grows (dotted), the
    target (thin line) and the N that reaches it.

    Parameters
    ----------
    design : trialsynth.analysis.assurance.DesignResult
        Result of :func:`trialsynth.analysis.assurance.design_trial`.
    title : str, optional
        Figure title (default: the data and the criterion).

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled ``assurance``, ``classical power ...``, ``limit ...``, ``target ...``.
    """
    plt = pyplot()
    c = design.curve()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    n, a, se = c["n_per_arm"], c["assurance"], c["mcse"]
    ax.fill_between(n, a - 2 * se, a + 2 * se, color=OKABE_ITO["sky"], alpha=0.35, lw=0)
    ax.plot(n, a, "-o", color=OKABE_ITO["blue"], ms=3, label="assurance")
    ax.plot(
        n,
        c["classical_power"],
        "--s",
        color=OKABE_ITO["vermillion"],
        ms=3,
        label=f"classical power at OR {design.pooled_or:.2f}",
    )
    ax.axhline(
        design.assurance_limit,
        ls=":",
        color=OKABE_ITO["black"],
        label=f"limit P(OR_new > 1) = {design.assurance_limit:.2f}",
    )
    ax.axhline(design.target, lw=0.8, color="0.5", label=f"target {design.target:g}")
    if design.n_for_target is not None:
        ax.axvline(design.n_for_target, lw=0.8, color="0.5")
        ax.annotate(
            f"N = {design.n_for_target}",
            (design.n_for_target, 0.02),
            fontsize=8,
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.set_ylim(0, 1)
    ax.set_xlabel("participants per arm")
    ax.set_ylabel("probability of showing benefit")
    ax.set_title(
        title or f"{design.data_name}: {design.criterion.describe()}", fontsize=9, loc="left"
    )
    ax.legend(fontsize=8, loc="lower right", frameon=False)
    ax.grid(color="0.92", lw=0.5)
    fig.tight_layout()
    return fig


def sensitivity_plot(rows: list[dict[str, Any]], *, title: str | None = None) -> Figure:
    """Sensitivity figure: one line per scenario of :mod:`trialsynth.analysis.sensitivity`.

    Left panel: the pooled OR (median, filled circle) with its 95% credible interval
    (thick) and the 95% predictive interval of a new trial's OR (thin), on a log axis.
    Right panel: P(OR > 1) (filled square) and P(OR_new > 1) (open diamond). The main
    scenario is drawn in vermillion and named first; a failed scenario is marked
    "FAILED" (grey, with its numbers if it has any).

    Parameters
    ----------
    rows : list of dict
        Rows of a sensitivity run (``SensitivityResult.rows`` or ``sensitivity.json``).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    n = len(rows)
    if n == 0:
        raise ValueError("sensitivity_plot: no scenarios to draw")
    height = 0.32 * n + 1.8
    fig, (ax, axp) = plt.subplots(
        1,
        2,
        figsize=(11, height),
        sharey=True,
        gridspec_kw={"width_ratios": [3, 1.3], "wspace": 0.05},
    )
    ys = np.arange(n)[::-1]
    lows, highs = [], []
    for y, row in zip(ys, rows, strict=True):
        ok = row.get("status") == "ok"
        colour = OKABE_ITO["vermillion"] if row.get("main") else OKABE_ITO["blue"]
        colour = colour if ok else "0.6"
        pooled, new = row.get("or"), row.get("or_new")
        if pooled is None:
            ax.text(1.0, y, "FAILED (no estimate)", va="center", ha="center", fontsize=7)
            continue
        ax.plot([new["q025"], new["q975"]], [y, y], color=colour, lw=0.9)
        ax.plot([pooled["q025"], pooled["q975"]], [y, y], color=colour, lw=3.2)
        ax.plot(pooled["median"], y, "o", color=colour, ms=5, mec="white", mew=0.6)
        lows += [new["q025"], pooled["q025"]]
        highs += [new["q975"], pooled["q975"]]
        axp.plot(row["p_mu_gt_0"], y, "s", color=colour, ms=5)
        axp.plot(row["p_theta_new_gt_0"], y, "D", mfc="white", mec=colour, ms=5)
        if not ok:
            axp.text(1.02, y, "FAILED", va="center", fontsize=7, color="0.3")
    labels = [str(r.get("label", r.get("scenario"))) for r in rows]
    ax.set_yticks(ys, labels, fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xscale("log")
    if lows:
        ax.set_xlim(max(min(lows) / 1.2, 1e-3), min(max(highs) * 1.2, 1e3))
        ticks = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
        lo, hi = ax.get_xlim()
        ax.xaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("odds ratio (log scale)", fontsize=8)
    ax.set_title("pooled OR: 95% CrI (thick); new trial: 95% PI (thin)", fontsize=8)
    axp.set_xlim(0, 1)
    axp.axvline(0.5, color="grey", lw=0.6, ls=":")
    axp.set_xlabel("probability", fontsize=8)
    axp.set_title("P(OR > 1) \u25a0, P(OR_new > 1) \u25c7", fontsize=8)
    for a in (ax, axp):
        a.grid(axis="x", color="0.92", lw=0.5)
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    fig.subplots_adjust(left=0.42, right=0.97, bottom=0.6 / height, top=1 - 0.75 / height)
    return fig
