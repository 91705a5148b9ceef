"""RevMan 5's own pooling of dichotomous outcomes, reproduced (numpy and scipy only).

Used to check that a review was read right: the estimate recomputed from the arm counts
must equal the one RevMan stored. The rules are RevMan 5's (Deeks & Higgins, *Statistical
algorithms in Review Manager 5*, 2010; the same as R meta's ``settings.meta("RevMan5")``,
``MH.exact = FALSE``, ``RR.Cochrane = TRUE``, ``Q.Cochrane = TRUE``):

* a study with no events in both arms (for the odds ratio also: only events in both arms)
  is not estimable and left out;
* a study with a zero cell gets 0.5 added to each of its four cells, both for its own
  estimate and inside the Mantel-Haenszel sums (for the risk ratio 0.5 to the events and
  1 to the arm size);
* random effects: DerSimonian-Laird, with Cochran's Q computed around the fixed-effect
  (Mantel-Haenszel) estimate for MH analyses, then inverse-variance weights
  ``1 / (se_i^2 + tau^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

from trialsynth.core.frequentist import mantel_haenszel

FloatArray = NDArray[np.float64]
#: RevMan's continuity correction for studies with a zero cell.
REVMAN_CORRECTION = 0.5


@dataclass(frozen=True)
class RevManPooled:
    """A pooled estimate computed the way RevMan 5 does, on the log scale (OR, RR).

    ``k`` counts the estimable studies used; ``tau2`` is 0 for a fixed-effect analysis.
    """

    measure: str
    method: str
    model: str
    log_estimate: float
    se: float
    k: int
    tau2: float
    q: float

    @property
    def estimate(self) -> float:
        """The pooled ratio."""
        return math.exp(self.log_estimate)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Wald interval on the ratio scale."""
        z = float(ndtri(0.5 + level / 2))
        return (
            math.exp(self.log_estimate - z * self.se),
            math.exp(self.log_estimate + z * self.se),
        )


def _cells(
    events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike, measure: str
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Corrected ``a, n1, c, n2`` of the estimable studies, and the correction per study."""
    a = np.asarray(events_t, dtype=float)
    n1 = np.asarray(n_t, dtype=float)
    c = np.asarray(events_c, dtype=float)
    n2 = np.asarray(n_c, dtype=float)
    if measure == "OR":
        keep = ~(((a == 0) & (c == 0)) | ((a == n1) & (c == n2)))
    else:
        keep = ~((a == 0) & (c == 0))
    a, n1, c, n2 = a[keep], n1[keep], c[keep], n2[keep]
    if a.size == 0:
        raise ValueError("no estimable study: every study has no events in both arms")
    zero = (a == 0) | (a == n1) | (c == 0) | (c == n2)
    inc = REVMAN_CORRECTION * zero
    return a + inc, n1 + 2 * inc, c + inc, n2 + 2 * inc, inc


def study_effects(
    events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike, measure: str = "OR"
) -> tuple[FloatArray, FloatArray]:
    """Per-study log OR or log RR and standard error (estimable studies only)."""
    a, n1, c, n2, _ = _cells(events_t, n_t, events_c, n_c, measure)
    if measure == "OR":
        b, d = n1 - a, n2 - c
        return np.log(a * d / (b * c)), np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    if measure == "RR":
        return np.log((a / n1) / (c / n2)), np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    raise ValueError(f"measure must be 'OR' or 'RR', not {measure!r}")


def _mh_or(a: FloatArray, n1: FloatArray, c: FloatArray, n2: FloatArray) -> tuple[float, float]:
    """Mantel-Haenszel log OR and its Robins-Breslow-Greenland standard error.

    :func:`trialsynth.core.frequentist.mantel_haenszel` on the corrected cells.
    """
    res = mantel_haenszel(a, n1, c, n2)
    return res.estimate, res.se


def _mh_rr(a: FloatArray, n1: FloatArray, c: FloatArray, n2: FloatArray) -> tuple[float, float]:
    """Mantel-Haenszel log RR and its Greenland-Robins standard error."""
    n = n1 + n2
    r = a * n2 / n
    s = c * n1 / n
    p = (n1 * n2 * (a + c) - a * c * n) / n**2
    return math.log(r.sum() / s.sum()), math.sqrt(p.sum() / (r.sum() * s.sum()))


def revman_pool(
    events_t: ArrayLike,
    n_t: ArrayLike,
    events_c: ArrayLike,
    n_c: ArrayLike,
    *,
    measure: str = "OR",
    method: str = "MH",
    model: str = "fixed",
) -> RevManPooled:
    """Pool a dichotomous outcome as RevMan 5 does.

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like
        Events and totals per study, experimental (RevMan group 1) and control.
    measure : {"OR", "RR"}
    method : {"MH", "IV"}
        Mantel-Haenszel or inverse-variance fixed-effect estimate.
    model : {"fixed", "random"}
        ``random``: DerSimonian-Laird around the fixed-effect estimate of ``method``.

    Returns
    -------
    RevManPooled
    """
    if method not in ("MH", "IV"):
        raise ValueError(f"method must be 'MH' or 'IV', not {method!r}")
    a, n1, c, n2, _ = _cells(events_t, n_t, events_c, n_c, measure)
    y, se = study_effects(events_t, n_t, events_c, n_c, measure)
    w = 1 / se**2
    if method == "MH":
        est, est_se = (_mh_or if measure == "OR" else _mh_rr)(a, n1, c, n2)
    else:
        est, est_se = float((w * y).sum() / w.sum()), float(math.sqrt(1 / w.sum()))
    q = float((w * (y - est) ** 2).sum())
    k = int(y.size)
    if model == "fixed":
        return RevManPooled(measure, method, model, est, est_se, k, 0.0, q)
    if model != "random":
        raise ValueError(f"model must be 'fixed' or 'random', not {model!r}")
    denom = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, (q - (k - 1)) / denom) if k > 1 else 0.0
    wr = 1 / (se**2 + tau2)
    return RevManPooled(
        measure,
        method,
        model,
        float((wr * y).sum() / wr.sum()),
        float(math.sqrt(1 / wr.sum())),
        k,
        float(tau2),
        q,
    )
