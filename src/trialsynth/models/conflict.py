"""Prior-data conflict: a Box (1980) prior predictive check of the observed log odds ratios.

The rule (documented in the README, reliability section): draw ``mu`` and ``tau`` from
their priors, trial effects ``theta_i = mu + tau * e_i`` (normal or Student-t, with an
estimated ``nu`` drawn from its prior), and replicated estimates ``y_i = theta_i + se_i * z_i``
with each trial's own standard error (the normal approximation, with 0.5 added to the cells
of zero-cell trials, as in :meth:`trialsynth.data.TrialData.contrasts`); the draws are
:func:`trialsynth.models.likelihood.prior_predictive`. Two statistics of the observed log-ORs are
compared with their prior predictive distribution:

* location: the inverse-variance weighted mean ``ybar``; two-sided tail probability
  ``p_location = 2 min(P(ybar_rep <= ybar), P(ybar_rep >= ybar))``;
* heterogeneity: Cochran's ``Q = sum w_i (y_i - ybar)^2``; one-sided
  ``p_heterogeneity = P(Q_rep >= Q)`` (more spread than the tau prior allows).

A p-value below :data:`CONFLICT_LEVEL` (0.01) is reported as a prior-data conflict in the
fit's ``notices`` (and printed under the table). The check is skipped (and says so in its
result, not in the notices) for an improper mu prior (``flat()``, no prior predictive
distribution), for subgroup and meta-regression models, and for fewer than 2 trials'
heterogeneity. Monte Carlo: :data:`N_DRAWS` prior draws from a seed derived from the fit's,
so the same seed gives the same p-values; the MCSE of a p-value near 0.01 is 0.0007.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trialsynth.models.likelihood import prior_predictive

if TYPE_CHECKING:
    from trialsynth.data import TrialData
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorSet

#: Prior predictive tail probability below which a conflict is reported.
CONFLICT_LEVEL = 0.01
#: Prior predictive draws per check.
N_DRAWS = 20_000

__all__ = [
    "CONFLICT_LEVEL",
    "N_DRAWS",
    "ConflictCheck",
    "conflict_notices",
    "prior_predictive_check",
]


@dataclass(frozen=True)
class ConflictCheck:
    """Result of the prior predictive check.

    Attributes
    ----------
    p_location, p_heterogeneity : float or None
        Prior predictive tail probabilities (None when not computed).
    ybar, q : float
        Observed inverse-variance weighted mean log-OR and Cochran's Q.
    skipped : str
        Why the check was not done ("" when it was).
    """

    p_location: float | None
    p_heterogeneity: float | None
    ybar: float
    q: float
    skipped: str = ""

    def notices(self, priors: PriorSet) -> list[str]:
        """One line per detected conflict (empty when none)."""
        out = []
        if self.p_location is not None and self.p_location < CONFLICT_LEVEL:
            out.append(
                f"prior-data conflict (location): the observed pooled log-OR {self.ybar:.2f} "
                f"is in the tail of its prior predictive distribution under mu ~ {priors.mu} "
                f"(Box p {_fmt_p(self.p_location)} < {CONFLICT_LEVEL}); the posterior of mu is "
                "a compromise between prior and data: report both, or justify the prior"
            )
        if self.p_heterogeneity is not None and self.p_heterogeneity < CONFLICT_LEVEL:
            out.append(
                f"prior-data conflict (heterogeneity): Cochran's Q = {self.q:.1f} is larger "
                f"than the tau prior {priors.tau} allows (Box p {_fmt_p(self.p_heterogeneity)} "
                f"< {CONFLICT_LEVEL}); the posterior of tau is held down by its prior"
            )
        return out


def _fmt_p(p: float) -> str:
    """``= 0.0042``, or ``< 5e-05`` when no prior predictive draw was as extreme."""
    return f"< {1 / N_DRAWS:.0e}" if p == 0 else f"= {p:.4f}"


def _stats(y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and Cochran's Q along the last axis."""
    ybar = (y * w).sum(axis=-1) / w.sum()
    q = (w * (y - ybar[..., None]) ** 2).sum(axis=-1)
    return ybar, q


def prior_predictive_check(
    data: TrialData, spec: ModelSpec, priors: PriorSet, seed: int
) -> ConflictCheck:
    """Box's prior predictive check of the observed log-ORs (see the module docstring).

    Parameters
    ----------
    data : TrialData
        The analysed trials.
    spec : ModelSpec
        The model (random-effects distribution; subgroup/regression models are skipped).
    priors : PriorSet
        The priors, with data-dependent constants resolved.
    seed : int
        The fit's seed (the check uses its own stream derived from it).

    Returns
    -------
    ConflictCheck
    """
    lor = data.contrasts(correction=spec.correction)
    y, se = np.asarray(lor.y, dtype=float), np.asarray(lor.se, dtype=float)
    w = 1.0 / se**2
    ybar_obs, q_obs = (float(v) for v in _stats(y, w))
    if spec.subgroup or spec.covariates:
        return ConflictCheck(None, None, ybar_obs, q_obs, "subgroup or regression model")
    if priors.mu.family == "flat":
        return ConflictCheck(None, None, ybar_obs, q_obs, "improper mu prior")
    rng = np.random.default_rng([seed, 7])
    y_rep = prior_predictive(spec, priors, se, N_DRAWS, rng)
    k = len(y)
    with np.errstate(invalid="ignore", over="ignore"):
        ybar_rep, q_rep = _stats(y_rep, w)
    ok = np.isfinite(ybar_rep) & np.isfinite(q_rep)
    ybar_rep, q_rep = ybar_rep[ok], q_rep[ok]
    lower = float(np.mean(ybar_rep <= ybar_obs))
    upper = float(np.mean(ybar_rep >= ybar_obs))
    p_loc = min(1.0, 2.0 * min(lower, upper))
    p_het = float(np.mean(q_rep >= q_obs)) if k >= 2 else None
    return ConflictCheck(p_loc, p_het, ybar_obs, q_obs)


def conflict_notices(data: TrialData, spec: ModelSpec, priors: PriorSet, seed: int) -> list[str]:
    """The notices of :func:`prior_predictive_check` (empty when there is no conflict)."""
    return prior_predictive_check(data, spec, priors, seed).notices(priors)
