"""Report figures. One function per figure, keyword-only options, returning the figure.

The caller saves (``fig.savefig(path, dpi=300)``). Colours are from the Okabe-Ito
palette (colour-blind safe) and every mark also differs in shape or fill, so figures
stay readable in greyscale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.effects import log_odds_ratios

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from trialsynth.results import FitResult

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}


def _observed(fit: FitResult) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Observed log-ORs, their 95% CI half-widths, and count labels per trial."""
    frame = fit.data_frame.set_index("study").loc[fit.studies]
    if {"events_t", "n_t", "events_c", "n_c"} <= set(frame.columns):
        lor = log_odds_ratios(frame["events_t"], frame["n_t"], frame["events_c"], frame["n_c"])
        y, se = lor.y, lor.se
        counts = [
            f"{int(r.events_t)}/{int(r.n_t)}   {int(r.events_c)}/{int(r.n_c)}"
            for r in frame.itertuples()
        ]
    else:
        y, se = frame["log_or"].to_numpy(float), frame["se"].to_numpy(float)
        counts = ["" for _ in range(len(frame))]
    return y, 1.959964 * se, counts


def forest_plot(
    fit: FitResult,
    *,
    treatment: str = "treatment",
    control: str = "control",
    title: str | None = None,
    classical: dict[str, Any] | None = None,
) -> Figure:
    """Meta-analysis forest plot on the odds-ratio scale.

    Per trial: the observed OR with its 95% CI (open square) and the shrunken posterior
    OR with its 95% credible interval (filled circle), events/total per arm, and the data
    confidence where the data carry it (reconstructed counts are marked with a dagger).
    Below: the pooled OR (diamond), the predictive OR for a new trial (bar), and, when
    given, the classical pooled OR (``classical = {"label":..., "or":..., "lower":...,
    "upper":...}``).

    Parameters
    ----------
    fit : FitResult
        A fitted meta-analysis.
    treatment, control : str
        Arm names for the "favours" labels and the counts header.
    title : str, optional
        Figure title.
    classical : dict, optional
        A classical pooled estimate to show for comparison.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = fit.summary()
    studies = fit.studies
    k = len(studies)
    y, half, counts = _observed(fit)
    frame = fit.data_frame.set_index("study").loc[studies]
    confidence = frame["confidence"].tolist() if "confidence" in frame.columns else [""] * k
    theta = summary["theta"]

    n_rows = k + 2 + (classical is not None)
    # Fixed margins in inches: label column left, count/estimate columns right,
    # legend above and notes below the axis.
    height = 0.42 * n_rows + 2.6
    fig = plt.figure(figsize=(12, height))
    ax = fig.add_axes((0.25, 1.55 / height, 0.42, (height - 2.45) / height))
    rows = np.arange(n_rows)[::-1]  # top row first
    trial_rows = rows[:k]

    ax.errorbar(
        np.exp(y),
        trial_rows + 0.15,
        xerr=[np.exp(y) - np.exp(y - half), np.exp(y + half) - np.exp(y)],
        fmt="s",
        mfc="white",
        mec=OKABE_ITO["black"],
        ecolor=OKABE_ITO["black"],
        ms=6,
        capsize=0,
        lw=1,
        label="observed OR (95% CI)",
    )
    shr = np.array([[t["or"]["median"], t["or"]["q025"], t["or"]["q975"]] for t in theta])
    ax.errorbar(
        shr[:, 0],
        trial_rows - 0.15,
        xerr=[shr[:, 0] - shr[:, 1], shr[:, 2] - shr[:, 0]],
        fmt="o",
        color=OKABE_ITO["blue"],
        ms=5,
        capsize=0,
        lw=1.5,
        label="shrunken OR (95% CrI)",
    )

    pooled = summary["or"]
    r_pool = rows[k]
    diamond_x = [pooled["q025"], pooled["median"], pooled["q975"], pooled["median"]]
    diamond_y = [r_pool, r_pool + 0.3, r_pool, r_pool - 0.3]
    ax.fill(diamond_x, diamond_y, color=OKABE_ITO["vermillion"], label="pooled OR (95% CrI)")
    new = summary["or_new"]
    r_new = rows[k + 1]
    ax.errorbar(
        [new["median"]],
        [r_new],
        xerr=[[new["median"] - new["q025"]], [new["q975"] - new["median"]]],
        fmt="D",
        mfc="white",
        mec=OKABE_ITO["green"],
        ecolor=OKABE_ITO["green"],
        lw=3,
        capsize=4,
        label="new trial (95% predictive)",
    )
    labels = []
    for s, c in zip(studies, confidence, strict=True):
        mark = " \u2020" if str(c) == "reconstructed" else (" *" if str(c) == "medium" else "")
        labels.append(f"{s}{mark}")
    labels += ["Pooled (random effects)", "Predicted for a new trial"]
    if classical is not None:
        r_cl = rows[k + 2]
        ax.errorbar(
            [classical["or"]],
            [r_cl],
            xerr=[[classical["or"] - classical["lower"]], [classical["upper"] - classical["or"]]],
            fmt="^",
            color=OKABE_ITO["purple"],
            lw=1.5,
            capsize=3,
            label=f"{classical.get('label', 'classical')} (95% CI)",
        )
        labels.append(str(classical.get("label", "Classical pooled OR")))

    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(rows[: len(labels)], labels)
    ax.set_ylim(-0.8, n_rows - 0.2)
    lo = np.nanmin([np.exp(y - half).min(), shr[:, 1].min(), new["q025"]])
    hi = np.nanmax([np.exp(y + half).max(), shr[:, 2].max(), new["q975"]])
    ax.set_xlim(max(lo / 1.3, 1e-3), min(hi * 1.3, 1e3))
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = [
        t
        for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
        if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]
    ]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(
        f"odds ratio (log scale)\n\u2190 favours {control}      favours {treatment} \u2192"
    )

    # Counts column and posterior summaries at the right edge, in axes coordinates.
    trans = ax.get_yaxis_transform()
    ax.text(
        1.02,
        n_rows - 0.45,
        f"{treatment}\n{control}".replace("\n", "   "),
        transform=trans,
        fontsize=8,
        weight="bold",
        va="bottom",
    )
    ax.text(
        1.28, n_rows - 0.45, "OR [95% CrI]", transform=trans, fontsize=8, weight="bold", va="bottom"
    )
    for r, c, t in zip(trial_rows, counts, theta, strict=True):
        ax.text(1.02, r, c, transform=trans, va="center", fontsize=8, family="monospace")
        o = t["or"]
        ax.text(
            1.28,
            r,
            f"{o['median']:.2f} [{o['q025']:.2f}, {o['q975']:.2f}]",
            transform=trans,
            va="center",
            fontsize=8,
        )
    ax.text(
        1.28,
        r_pool,
        f"{pooled['median']:.2f} [{pooled['q025']:.2f}, {pooled['q975']:.2f}]",
        transform=trans,
        va="center",
        fontsize=8,
        weight="bold",
    )
    ax.text(
        1.28,
        r_new,
        f"{new['median']:.2f} [{new['q025']:.2f}, {new['q975']:.2f}]",
        transform=trans,
        va="center",
        fontsize=8,
    )
    tau = summary["tau"]
    note = (
        f"tau median {tau['median']:.2f} [{tau['q025']:.2f}, {tau['q975']:.2f}];  "
        f"P(OR > 1) = {summary['p_mu_gt_0']:.2f};  "
        f"P(OR_new > 1) = {summary['p_theta_new_gt_0']:.2f}"
    )
    if any(str(c) in ("reconstructed", "medium") for c in confidence):
        note += (
            "\n* counts derived from printed percentages;  "
            "\u2020 counts reconstructed from pooled totals"
        )
    if not fit.ok:
        note += "\nWARNING: this fit FAILED its convergence checks; do not report these numbers."
    fig.suptitle(
        title or f"{summary['model']} random-effects meta-analysis",
        x=0.02,
        y=1 - 0.12 / height,
        ha="left",
        va="top",
        fontsize=11,
    )
    fig.text(0.02, 0.1 / height, note, fontsize=8, va="bottom")
    ax.legend(loc="lower left", bbox_to_anchor=(-0.55, 1.01), ncol=4, fontsize=8, frameon=False)
    ax.grid(axis="x", which="both", color="0.92", lw=0.5)
    return fig


def assurance_plot(design: Any, *, title: str | None = None) -> Figure:
    """Assurance curve of a future trial against its size per arm.

    Draws the assurance with a band of +-2 Monte Carlo standard errors, the classical power
    at the pooled point estimate (dashed), the limit P(OR_new > 1) as N grows (dotted), the
    target (thin line) and the N that reaches it.

    Parameters
    ----------
    design : trialsynth.assurance.DesignResult
        Result of :func:`trialsynth.assurance.design_trial`.
    title : str, optional
        Figure title (default: the data and the criterion).

    Returns
    -------
    matplotlib.figure.Figure
        Lines labelled ``assurance``, ``classical power ...``, ``limit ...``, ``target ...``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    """Sensitivity figure: one line per scenario of :mod:`trialsynth.sensitivity`.

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
