"""Classical small-study-effect tests: Egger's regression and Peters' test (numpy/scipy only).

* Egger et al. (1997, BMJ 315:629): ordinary least squares of the standard normal
  deviate ``y / se`` on the precision ``1 / se``; the intercept measures asymmetry,
  tested with a t statistic on k - 2 degrees of freedom.
* Peters et al. (2006, JAMA 295:676): weighted least squares of ``log OR`` on the inverse
  of the total sample size ``1 / n``, weights ``S F / n`` (S events and F non-events over
  both arms); the slope is tested with a t statistic on k - 2 degrees of freedom. Needs
  arm-level counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from trialsynth.core.errors import TrialsynthError

__all__ = ["RegressionTest", "SmallStudyError", "egger_test", "peters_test"]


class SmallStudyError(TrialsynthError):
    """Data a small-study test cannot use (one-line message)."""


@dataclass(frozen=True)
class RegressionTest:
    """Result of a small-study-effect regression test.

    Attributes
    ----------
    test : str
        ``"egger"`` or ``"peters"``.
    estimate, se : float
        The tested coefficient (Egger: intercept; Peters: slope on 1/n) and its SE.
    t, df, p : float
        t statistic, degrees of freedom (k - 2) and two-sided p-value.
    k : int
        Number of trials.
    """

    test: str
    estimate: float
    se: float
    t: float
    df: int
    p: float
    k: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def _wls(x: np.ndarray, z: np.ndarray, w: np.ndarray, coef: int, name: str) -> RegressionTest:
    k = z.size
    if k < 3:
        raise SmallStudyError(f"{name}'s test needs at least 3 trials, got {k}")
    X = np.column_stack([np.ones(k), x])
    sw = np.sqrt(w)
    Xw, zw = X * sw[:, None], z * sw
    beta, *_ = np.linalg.lstsq(Xw, zw, rcond=None)
    resid = zw - Xw @ beta
    df = k - 2
    sigma2 = float(resid @ resid) / df
    cov = sigma2 * np.linalg.inv(Xw.T @ Xw)
    est, se = float(beta[coef]), float(math.sqrt(cov[coef, coef]))
    t = est / se if se > 0 else math.inf
    p = float(2 * stats.t.sf(abs(t), df))
    return RegressionTest(name, est, se, float(t), df, p, k)


def egger_test(y: ArrayLike, se: ArrayLike) -> RegressionTest:
    """Egger's regression test for funnel-plot asymmetry.

    Parameters
    ----------
    y, se : array_like
        Trial log odds ratios and their standard errors.

    Returns
    -------
    RegressionTest
        ``estimate`` is the intercept of ``y/se ~ 1/se``.
    """
    y = np.asarray(y, dtype=float)
    se = np.asarray(se, dtype=float)
    if y.shape != se.shape or np.any(se <= 0) or not np.all(np.isfinite(y)):
        raise SmallStudyError(
            "Egger's test needs finite estimates and positive standard errors of equal length"
        )
    return _wls(1 / se, y / se, np.ones_like(y), 0, "egger")


def peters_test(
    events_t: ArrayLike,
    n_t: ArrayLike,
    events_c: ArrayLike,
    n_c: ArrayLike,
    *,
    correction: float = 0.5,
) -> RegressionTest:
    """Peters' test: weighted regression of log OR on 1 / total sample size.

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like
        Arm-level counts.
    correction : float
        Continuity correction added to the four cells of trials with a zero cell
        (for the log odds ratio only).

    Returns
    -------
    RegressionTest
        ``estimate`` is the slope on ``1 / n``.
    """
    a = np.asarray(events_t, dtype=float)
    b = np.asarray(n_t, dtype=float) - a
    c = np.asarray(events_c, dtype=float)
    d = np.asarray(n_c, dtype=float) - c
    n = a + b + c + d
    s_ev, f_non = a + c, b + d
    if np.any(s_ev == 0) or np.any(f_non == 0):
        raise SmallStudyError("Peters' test weights need events and non-events in every trial")
    zero = (np.stack([a, b, c, d]) == 0).any(axis=0)
    aa, bb, cc, dd = (v + correction * zero for v in (a, b, c, d))
    lor = np.log(aa * dd / (bb * cc))
    return _wls(1 / n, lor, s_ev * f_non / n, 1, "peters")
