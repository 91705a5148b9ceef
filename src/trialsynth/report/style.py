"""What the report's figures share: palette, row labels, the OR axis, saving, banners."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.core.effects import log_odds_ratios

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from trialsynth.results.base import FitResult

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
#: Chain colours and line styles of the diagnostics figures (distinct in greyscale too).
CHAIN_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
CHAIN_STYLES = ("-", "--", ":", "-.")
#: Classical estimators shown on the forest plot by default, and their row labels.
CLASSICAL_LABELS = {
    "mh": "Mantel-Haenszel (common effect)",
    "peto": "Peto (common effect)",
    "iv": "Inverse variance (common effect)",
    "dl": "DerSimonian-Laird (random effects)",
    "reml": "REML (random effects)",
    "pm": "Paule-Mandel (random effects)",
    "dl_hk": "DL + Hartung-Knapp (random effects)",
}
#: How the data confidence of a row is printed and marked on the forest plot.
CONFIDENCE_MARKS = {
    "high": ("printed", ""),
    "medium": ("from %", " *"),
    "reconstructed": ("reconstructed", " \u2020"),
}


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(
    fig: Figure, folder: str | Path, stem: str, *, png: bool = False
) -> dict[str, Path]:
    """Save ``fig`` as ``<stem>.svg`` in ``folder``, and as ``<stem>.png`` (300 dpi) if ``png``.

    The SVG is what the report shows (embedded in report.html, linked from report.md); a
    300-dpi PNG costs more than the SVG and the drawing together, so it is written only on
    request (``--figure-format png``). Both are reproducible byte for byte (no timestamps,
    fixed SVG ids).

    Returns
    -------
    dict
        ``{"svg": path}``, plus ``"png": path`` if ``png``.
    """
    import matplotlib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"svg": folder / f"{stem}.svg"}
    with matplotlib.rc_context({"svg.hashsalt": "trialsynth", "svg.fonttype": "path"}):
        if png:
            paths["png"] = folder / f"{stem}.png"
            fig.savefig(paths["png"], dpi=300, metadata={"Software": None})
        fig.savefig(paths["svg"], metadata={"Date": None, "Creator": None})
    return paths


def log_or_axis(ax: Axes, lo: float, hi: float) -> None:
    """Log-scale odds-ratio axis with plain tick labels between ``lo`` and ``hi``."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(max(lo, 1e-3), min(hi, 1e3))
    ticks = [
        t
        for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
        if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]
    ]
    if len(ticks) < 4:  # a narrow range: finer ticks
        fine = (0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4)
        ticks = [t for t in fine if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def fmt_or(d: dict[str, float]) -> str:
    """``median [q025, q975]`` to two decimals."""
    return f"{d['median']:.2f} [{d['q025']:.2f}, {d['q975']:.2f}]"


def observed_effects(fit: FitResult) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Observed log-ORs, their 95% CI half-widths, and (treatment, control) count labels."""
    frame = fit.data_frame.set_index("study").loc[fit.studies]
    if {"events_t", "n_t", "events_c", "n_c"} <= set(frame.columns):
        lor = log_odds_ratios(frame["events_t"], frame["n_t"], frame["events_c"], frame["n_c"])
        y, se = lor.y, lor.se
        counts = [
            (f"{int(r.events_t)}/{int(r.n_t)}", f"{int(r.events_c)}/{int(r.n_c)}")
            for r in frame.itertuples()
        ]
    else:
        y, se = frame["log_or"].to_numpy(float), frame["se"].to_numpy(float)
        counts = [("", "") for _ in range(len(frame))]
    return np.asarray(y, float), 1.959964 * np.asarray(se, float), counts


def failed_banner(fig: Figure, fit: FitResult) -> None:
    """A red banner across the top of a figure of a fit that failed its checks."""
    if fit.ok:
        return
    fig.text(
        0.99,
        0.995,
        "CONVERGENCE FAILED: do not report these numbers",
        ha="right",
        va="top",
        color="white",
        fontsize=9,
        weight="bold",
        bbox={"facecolor": OKABE_ITO["vermillion"], "edgecolor": "none", "pad": 3},
    )
