"""The meta-analysis forest plot: its table (what is shown) and its drawing (how).

:func:`forest_table` collects every number and label of the plot from a result, so the
content can be checked without drawing; :func:`forest_plot` draws that table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.report.style import (
    CLASSICAL_LABELS,
    CONFIDENCE_MARKS,
    OKABE_ITO,
    failed_banner,
    fmt_or,
    log_or_axis,
    observed_effects,
    pyplot,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from trialsynth.results.base import FitResult


@dataclass(frozen=True)
class ForestTable:
    """What the forest plot shows, top to bottom."""

    studies: list[str]
    confidence: list[str]
    y: np.ndarray  # observed log-ORs
    half: np.ndarray  # their 95% CI half-widths
    counts: list[tuple[str, str]]  # (treatment, control) "events/total"
    theta: list[dict[str, Any]]  # summary()["theta"]: the shrunken ORs
    pooled: dict[str, float]
    new: dict[str, float]
    classical: list[tuple[str, dict[str, Any]]]  # (key, estimate) with an "or"
    summary: dict[str, Any]
    pooled_label: str

    @property
    def n_rows(self) -> int:
        """Trials, pooled, predicted, then the classical estimators."""
        return len(self.studies) + 2 + len(self.classical)

    @property
    def labels(self) -> list[str]:
        """The y tick labels, top to bottom."""
        marks = [CONFIDENCE_MARKS.get(c, ("", ""))[1] for c in self.confidence]
        return (
            [f"{s}{m}" for s, m in zip(self.studies, marks, strict=True)]
            + [self.pooled_label, "Predicted for a new trial"]
            + [CLASSICAL_LABELS[m] for m, _ in self.classical]
        )


def forest_table(fit: FitResult, classical: Sequence[str] = ("mh", "dl", "reml")) -> ForestTable:
    """The content of the forest plot of ``fit`` (see :func:`forest_plot`)."""
    unknown = [m for m in classical if m not in CLASSICAL_LABELS]
    if unknown:
        raise ValueError(
            f"forest_plot: unknown classical estimator {unknown[0]!r}; "
            f"valid: {', '.join(CLASSICAL_LABELS)}"
        )
    summary = fit.summary()
    studies = fit.studies
    y, half, counts = observed_effects(fit)
    frame = fit.data_frame.set_index("study").loc[studies]
    confidence = (
        [str(c) for c in frame["confidence"]]
        if "confidence" in frame.columns
        else [""] * len(studies)
    )
    freq = summary.get("frequentist") or {}
    return ForestTable(
        studies=studies,
        confidence=confidence,
        y=y,
        half=half,
        counts=counts,
        theta=summary["theta"],
        pooled=summary["or"],
        new=summary["or_new"],
        classical=[
            (m, freq[m]) for m in classical if isinstance(freq.get(m), dict) and "or" in freq[m]
        ],
        summary=summary,
        pooled_label="Average of subgroups" if fit.subgroups else "Pooled (random effects)",
    )


def forest_plot(
    fit: FitResult,
    *,
    treatment: str = "treatment",
    control: str = "control",
    title: str | None = None,
    classical: Sequence[str] = ("mh", "dl", "reml"),
) -> Figure:
    """Meta-analysis forest plot on the odds-ratio scale.

    One row per trial: the observed OR with its 95% CI (open square), the shrunken
    posterior OR with its 95% credible interval (filled circle), events/total per arm,
    both intervals printed, and the data confidence of the row (printed counts; ``*``
    counts from printed percentages; ``†`` counts reconstructed from pooled totals, also
    shaded). Below: the pooled OR (diamond), the 95% predictive interval of a new trial,
    and the classical pooled ORs of ``summary()["frequentist"]`` (triangles).

    Parameters
    ----------
    fit : FitResult
        A fitted meta-analysis.
    treatment, control : str
        Arm names for the "favours" labels and the counts header.
    title : str, optional
        Figure title.
    classical : sequence of str
        Keys of ``summary()["frequentist"]`` to show (``mh``, ``peto``, ``iv``, ``dl``,
        ``reml``, ``pm``, ``dl_hk``); estimators missing from the fit are skipped.

    Returns
    -------
    matplotlib.figure.Figure
        Its axes has one y tick per row, top to bottom: the trials, ``Pooled (random
        effects)``, ``Predicted for a new trial``, then the classical estimators.
    """
    table = forest_table(fit, classical)
    plt = pyplot()
    height = 0.36 * table.n_rows + 2.6
    fig = plt.figure(figsize=(13, height))
    # Left margin from the longest row label (about 0.085 in per character at 10 pt).
    names = [*table.studies, *(CLASSICAL_LABELS[m] for m, _ in table.classical)]
    left = min(max(0.24, (0.085 * max(len(s) + 2 for s in names) + 0.3) / 13), 0.36)
    ax = fig.add_axes((left, 1.35 / height, 0.55 - left, (height - 2.5) / height))
    ax.set_axisbelow(True)
    rows = np.arange(table.n_rows)[::-1].astype(float)  # top row first
    _draw_marks(ax, table, rows)
    _draw_axes(ax, table, rows, treatment, control)
    _draw_columns(fig, ax, table, rows, treatment, control)
    fig.suptitle(
        title or f"{table.summary['model']} random-effects meta-analysis",
        x=0.02,
        y=1 - 0.1 / height,
        ha="left",
        va="top",
        fontsize=11,
    )
    fig.text(0.02, 0.08 / height, _note(table, fit.ok), fontsize=8, va="bottom")
    fig.legend(
        loc="upper left",
        bbox_to_anchor=(0.015, 1 - 0.4 / height),
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    failed_banner(fig, fit)
    return fig


def _draw_marks(ax: Axes, t: ForestTable, rows: np.ndarray) -> None:
    """Observed and shrunken ORs, the pooled diamond, the predictive and classical rows."""
    k = len(t.studies)
    trial_rows = rows[:k]
    for r, c in zip(trial_rows, t.confidence, strict=True):
        if c == "reconstructed":
            ax.axhspan(r - 0.5, r + 0.5, color="0.9", zorder=0, lw=0)
    obs = np.exp(t.y)
    ax.errorbar(
        obs,
        trial_rows + 0.16,
        xerr=[obs - np.exp(t.y - t.half), np.exp(t.y + t.half) - obs],
        fmt="s",
        mfc="white",
        mec=OKABE_ITO["black"],
        ecolor=OKABE_ITO["black"],
        ms=5,
        capsize=0,
        lw=1,
        label="observed OR (95% CI)",
    )
    shr = _shrunken(t)
    ax.errorbar(
        shr[:, 0],
        trial_rows - 0.16,
        xerr=[shr[:, 0] - shr[:, 1], shr[:, 2] - shr[:, 0]],
        fmt="o",
        color=OKABE_ITO["blue"],
        ms=5,
        capsize=0,
        lw=1.5,
        label="shrunken OR (95% CrI)",
    )
    p, r_pool = t.pooled, rows[k]
    ax.fill(
        [p["q025"], p["median"], p["q975"], p["median"]],
        [r_pool, r_pool + 0.32, r_pool, r_pool - 0.32],
        color=OKABE_ITO["vermillion"],
        label="pooled OR (95% CrI)",
    )
    new = t.new
    ax.errorbar(
        [new["median"]],
        [rows[k + 1]],
        xerr=[[new["median"] - new["q025"]], [new["q975"] - new["median"]]],
        fmt="D",
        mfc="white",
        mec=OKABE_ITO["green"],
        ecolor=OKABE_ITO["green"],
        lw=3,
        capsize=4,
        label="new trial (95% predictive)",
    )
    for j, (m, est) in enumerate(t.classical):
        ax.errorbar(
            [est["or"]],
            [rows[k + 2 + j]],
            xerr=[[est["or"] - est["lower"]], [est["upper"] - est["or"]]],
            fmt="^",
            mfc="white" if m == "mh" else OKABE_ITO["purple"],
            mec=OKABE_ITO["purple"],
            ecolor=OKABE_ITO["purple"],
            lw=1.2,
            capsize=3,
            label="classical pooled OR (95% CI)" if j == 0 else None,
        )


def _shrunken(t: ForestTable) -> np.ndarray:
    return np.array([[th["or"]["median"], th["or"]["q025"], th["or"]["q975"]] for th in t.theta])


def _draw_axes(ax: Axes, t: ForestTable, rows: np.ndarray, treatment: str, control: str) -> None:
    """Separators, the y labels (reconstructed rows italic), the OR axis and its limits."""
    k = len(t.studies)
    if t.classical:
        ax.axhline(rows[k + 1] - 0.5, color="0.7", lw=0.6)
    ax.axhline(rows[k - 1] - 0.5, color="0.7", lw=0.6)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(rows, t.labels)
    for tick, c in zip(ax.get_yticklabels()[:k], t.confidence, strict=True):
        if c == "reconstructed":
            tick.set_style("italic")
    ax.get_yticklabels()[k].set_weight("bold")
    ax.set_ylim(-0.7, t.n_rows - 0.3)
    shr = _shrunken(t)
    lows = [np.exp(t.y - t.half).min(), shr[:, 1].min(), t.new["q025"]]
    highs = [np.exp(t.y + t.half).max(), shr[:, 2].max(), t.new["q975"]]
    lows += [e["lower"] for _, e in t.classical]
    highs += [e["upper"] for _, e in t.classical]
    log_or_axis(ax, np.nanmin(lows) / 1.3, np.nanmax(highs) * 1.3)
    ax.set_xlabel(
        f"odds ratio (log scale)\n\u2190 favours {control}      favours {treatment} \u2192"
    )
    ax.grid(axis="x", which="major", color="0.92", lw=0.5)


def _draw_columns(
    fig: Figure, ax: Axes, t: ForestTable, rows: np.ndarray, treatment: str, control: str
) -> None:
    """Text columns at fixed figure x positions, aligned with the rows."""
    from matplotlib.transforms import blended_transform_factory

    k = len(t.studies)
    trans = blended_transform_factory(fig.transFigure, ax.transData)
    columns = {
        "t": (0.565, f"{treatment}\nn/N"),
        "c": (0.625, f"{control}\nn/N"),
        "obs": (0.685, "observed OR\n[95% CI]"),
        "shr": (0.795, "posterior OR\n[95% CrI]"),
        "conf": (0.905, "data\nconfidence" if any(t.confidence) else ""),
    }
    for x, head in columns.values():
        fig.text(x, t.n_rows - 0.45, head, transform=trans, fontsize=8, weight="bold", va="bottom")
    for i, r in enumerate(rows[:k]):
        y, h = t.y[i], t.half[i]
        cells = {
            "t": t.counts[i][0],
            "c": t.counts[i][1],
            "obs": f"{np.exp(y):.2f} [{np.exp(y - h):.2f}, {np.exp(y + h):.2f}]",
            "shr": fmt_or(t.theta[i]["or"]),
            "conf": CONFIDENCE_MARKS.get(t.confidence[i], (t.confidence[i], ""))[0],
        }
        for key, text in cells.items():
            fig.text(
                columns[key][0],
                r,
                text,
                transform=trans,
                va="center",
                fontsize=8,
                family="monospace" if key in ("t", "c") else None,
                style="italic" if t.confidence[i] == "reconstructed" else "normal",
            )
    shr_x = columns["shr"][0]
    fig.text(
        shr_x, rows[k], fmt_or(t.pooled), transform=trans, va="center", fontsize=8, weight="bold"
    )
    fig.text(shr_x, rows[k + 1], fmt_or(t.new), transform=trans, va="center", fontsize=8)
    for j, (_m, est) in enumerate(t.classical):
        fig.text(
            columns["obs"][0],
            rows[k + 2 + j],
            f"{est['or']:.2f} [{est['lower']:.2f}, {est['upper']:.2f}]",
            transform=trans,
            va="center",
            fontsize=8,
        )


def _note(t: ForestTable, ok: bool) -> str:
    """The footnote: tau, the probabilities of benefit, the priors, the data marks."""
    s, tau = t.summary, t.summary["tau"]
    note = (
        f"tau median {tau['median']:.2f} [{tau['q025']:.2f}, {tau['q975']:.2f}];  "
        f"P(OR > 1) = {s['p_mu_gt_0']:.3f};  "
        f"P(OR_new > 1) = {s['p_theta_new_gt_0']:.3f};  "
        f"priors: " + "; ".join(f"{r} ~ {p}" for r, p in s["priors"].items())
    )
    if any(c in ("reconstructed", "medium") for c in t.confidence):
        note += (
            "\n* counts derived from printed percentages;  "
            "\u2020 (shaded, italic) counts reconstructed from pooled totals"
        )
    if not ok:
        note += "\nWARNING: this fit FAILED its convergence checks; do not report these numbers."
    return note
