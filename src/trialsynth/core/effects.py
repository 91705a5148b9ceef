"""Effect sizes from arm-level binary counts (numpy only).

Pure functions: they know nothing of files, PyMC or the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Added to every cell of a trial with a zero cell (the classical Haldane-Anscombe
#: correction, as in metafor's ``escalc(measure="OR")`` and the Cochrane handbook).
DEFAULT_CORRECTION = 0.5


@dataclass(frozen=True)
class LogOddsRatios:
    """Per-trial log odds ratios and their standard errors.

    Attributes
    ----------
    y : ndarray
        Log odds ratio (treatment vs control) per trial.
    se : ndarray
        Woolf standard error per trial.
    corrected : ndarray of bool
        True where ``correction`` was added to every cell because a cell was zero.
    correction : float
        The amount added to the cells of corrected trials.
    """

    y: NDArray[np.float64]
    se: NDArray[np.float64]
    corrected: NDArray[np.bool_]
    correction: float


def log_odds_ratios(
    events_t: ArrayLike,
    n_t: ArrayLike,
    events_c: ArrayLike,
    n_c: ArrayLike,
    *,
    correction: float = DEFAULT_CORRECTION,
) -> LogOddsRatios:
    """Log odds ratios with a continuity correction only for trials with a zero cell.

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like
        Events and totals in the treatment and control arms.
    correction : float
        Added to all four cells of each trial that has a zero cell.

    Returns
    -------
    LogOddsRatios
        A double-zero trial (no events, or only events, in both arms) gets a finite
        corrected estimate, as metafor's ``escalc`` does by default (``drop00=FALSE``).
    """
    a = np.asarray(events_t, dtype=float)
    b = np.asarray(n_t, dtype=float) - a
    c = np.asarray(events_c, dtype=float)
    d = np.asarray(n_c, dtype=float) - c
    cells = np.stack([a, b, c, d])
    corrected = (cells == 0).any(axis=0)
    cells = cells + correction * corrected
    a, b, c, d = cells
    y = np.log(a * d / (b * c))
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return LogOddsRatios(y=y, se=se, corrected=corrected, correction=correction)


def log_or_from_interval(
    odds_ratio: ArrayLike, lower: ArrayLike, upper: ArrayLike, *, level: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Log odds ratio and standard error recovered from a published OR and its interval.

    The standard error is the interval's width on the log scale divided by
    ``2 * z_{(1+level)/2}`` (symmetric Wald interval assumed).
    """
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    y = np.log(np.asarray(odds_ratio, dtype=float))
    se = (np.log(np.asarray(upper, dtype=float)) - np.log(np.asarray(lower, dtype=float))) / (2 * z)
    return y, se
