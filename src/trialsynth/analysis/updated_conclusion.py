"""Where the updated conclusion lies: classical update, limits as N grows, flipping ORs.

The classical counterpart of the updated posterior (:func:`dl_update`) is the
DerSimonian-Laird random-effects meta-analysis of the old (y, se) plus the new one,
vectorised over simulated trials. :func:`bayes_limit` and :func:`classical_limit` give the
updated-meta assurance of an infinitely large new trial; :func:`crossings` and
:func:`conclusion_map` the observed ORs of a new trial at which the conclusion flips.

References: Roloff V et al. (2013), Planning future studies based on the conditional power
of a meta-analysis, Stat Med 32:11-24; Langan D et al. (2012), extfunnel: graphical
augmentations to the funnel plot, Res Synth Methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from trialsynth.analysis.mixture_update import Components, update

FloatArray = NDArray[np.float64]

Z975 = float(special.ndtri(0.975))
#: Grid of observed log-ORs scanned for the ORs where a conclusion flips.
CROSSING_GRID = 231


@dataclass(frozen=True)
class DLUpdate:
    """DerSimonian-Laird random-effects estimate of old + new trials (arrays per trial)."""

    estimate: FloatArray
    se: FloatArray
    tau2: FloatArray

    @property
    def lower(self) -> FloatArray:
        """Lower end of the 95% confidence interval."""
        return self.estimate - Z975 * self.se

    @property
    def upper(self) -> FloatArray:
        """Upper end of the 95% confidence interval."""
        return self.estimate + Z975 * self.se


def dl_update(y_old: ArrayLike, se_old: ArrayLike, y: ArrayLike, se: ArrayLike) -> DLUpdate:
    """DerSimonian-Laird meta-analysis of the old trials plus each new ``(y, se)``.

    The same formulas as :func:`trialsynth.core.frequentist.random_effects` (``method="DL"``,
    tau^2 truncated at 0, Wald interval with normal quantiles), vectorised over new trials.
    ``se = 0`` gives the limit of an infinitely large new trial.
    """
    yo = np.asarray(y_old, dtype=float)
    vo = np.asarray(se_old, dtype=float) ** 2
    y_a, se_a = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(se, dtype=float))
    shape = y_a.shape
    yn, vn = y_a.ravel()[:, None], se_a.ravel()[:, None] ** 2
    k = yo.size + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        wn = 1.0 / vn
        w0 = 1.0 / vo
        sw = w0.sum() + wn
        mu_fe = np.where(np.isinf(wn), yn, (w0 @ yo + wn * yn) / sw)
        q = (w0 * (yo - mu_fe) ** 2).sum(axis=1, keepdims=True) + np.where(
            np.isinf(wn), 0.0, wn * (yn - mu_fe) ** 2
        )
        # c = sum(w) - sum(w^2) / sum(w), written without cancellation as
        # (B^2 - A + 2 B wn) / (B + wn) with B = sum(w0), A = sum(w0^2); 2 B as wn -> inf
        b0, a0 = w0.sum(), (w0**2).sum()
        c = np.where(np.isinf(wn), 2.0 * b0, (b0 * b0 - a0 + 2.0 * b0 * wn) / sw)
        tau2 = np.maximum(0.0, (q - (k - 1)) / c)
        wr_old = 1.0 / (vo + tau2)
        wr_new = 1.0 / (vn + tau2)
        swr = wr_old.sum(axis=1, keepdims=True) + wr_new
        est = np.where(
            np.isinf(wr_new), yn, ((wr_old * yo).sum(axis=1, keepdims=True) + wr_new * yn) / swr
        )
        se_re = np.where(np.isinf(wr_new), 0.0, 1.0 / np.sqrt(swr))
    return DLUpdate(est.reshape(shape), se_re.reshape(shape), tau2.reshape(shape))


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limit:
    """Assurance of an infinitely large new trial (it reveals its own effect exactly)."""

    value: float
    indicator: NDArray[np.bool_]
    boundary: float | None


def bayes_limit(comp: Components, theta_new: ArrayLike, threshold: float) -> Limit:
    """Limit of the updated-meta assurance: P over theta_new of P(mu > 0 | old, theta_new) > G.

    As N grows the trial's log-OR tends to its true ``theta_new`` (se -> 0), so the limit is
    the predictive probability of the set of ``theta_new`` for which the meta-analysis,
    told ``theta_new`` exactly, reaches ``threshold``. The set is found on a grid of 801
    points spanning the draws (roots refined by Brent's method) and may be a union of
    intervals (a very discrepant trial raises tau); ``boundary`` is its lower end when it
    is a half-line.
    """
    th = np.asarray(theta_new, dtype=float)
    grid = np.linspace(np.min(th) - 0.5, np.max(th) + 0.5, 801)

    def excess(t: FloatArray) -> FloatArray:
        return update(comp, t, 0.0).p - threshold

    pg = excess(grid)
    roots = np.array(_roots(excess, grid, pg))
    edges = np.concatenate([[grid[0]], roots, [grid[-1]]])
    inside = excess(0.5 * (edges[:-1] + edges[1:])) > 0  # success on each interval
    ok = inside[np.clip(np.searchsorted(roots, th), 0, inside.size - 1)]
    boundary = float(roots[0]) if roots.size == 1 and inside[-1] else None
    return Limit(float(ok.mean()), ok, boundary)


def classical_limit(y_old: ArrayLike, se_old: ArrayLike, theta_new: ArrayLike) -> Limit:
    """Limit of the updated-meta classical criterion as the new trial grows (se -> 0)."""
    th = np.asarray(theta_new, dtype=float)
    dl = dl_update(y_old, se_old, th, 0.0)
    ok = dl.lower > 0
    return Limit(float(ok.mean()), ok, None)


def _roots(
    f: Callable[[FloatArray], FloatArray], grid: FloatArray, values: FloatArray
) -> list[float]:
    """Roots of ``f`` at the sign changes of ``values`` on ``grid`` (Brent's method)."""
    out = []
    sign = np.sign(values)
    for j in np.flatnonzero(sign[:-1] * sign[1:] < 0):
        out.append(
            optimize.brentq(lambda t: float(f(np.array([t]))[0]), grid[j], grid[j + 1], xtol=1e-10)
        )
    return out


# --------------------------------------------------------------------------- where it changes


def se_of_observed(
    log_or: FloatArray, control_rate: float, n_per_arm: int | FloatArray
) -> FloatArray:
    """SE of the log-OR of a trial with ``n_per_arm`` per arm observing these rates."""
    p_c = control_rate
    p_t = special.expit(special.logit(p_c) + log_or)
    return np.sqrt((1.0 / (p_c * (1 - p_c)) + 1.0 / (p_t * (1 - p_t))) / n_per_arm)


@dataclass(frozen=True)
class Crossing:
    """Observed ORs of a new trial of one size at which an updated conclusion flips.

    ``benefit``: ORs where the updated P(OR > 1) crosses the threshold G (above the largest
    one it is > G when ``benefit_above``); ``harm``: where it crosses 1 - G;
    ``classical``: where the updated DL 95% CI's lower end crosses OR 1.
    """

    n_per_arm: int
    control_rate: float
    benefit: list[float]
    harm: list[float]
    classical: list[float]


def crossings(
    comp: Components,
    y_old: ArrayLike,
    se_old: ArrayLike,
    n_per_arm: int,
    control_rate: float,
    threshold: float,
    *,
    or_range: tuple[float, float] = (0.1, 10.0),
) -> Crossing:
    """Where a new trial of ``n_per_arm`` per arm would change the conclusion.

    The trial is taken to observe the control rate ``control_rate`` and an odds ratio OR;
    its SE follows (:func:`se_of_observed`). Roots at the sign changes on a grid of
    :data:`CROSSING_GRID` log-ORs over ``or_range``, refined by Brent's method (two roots
    closer than one grid step, 0.02 on the log scale, would be missed).
    """
    grid = np.linspace(math.log(or_range[0]), math.log(or_range[1]), CROSSING_GRID)

    def p_up(t: FloatArray) -> FloatArray:
        return update(comp, t, se_of_observed(t, control_rate, n_per_arm)).p

    def lower(t: FloatArray) -> FloatArray:
        return dl_update(y_old, se_old, t, se_of_observed(t, control_rate, n_per_arm)).lower

    pg = p_up(grid)
    benefit = _roots(lambda t: p_up(t) - threshold, grid, pg - threshold)
    harm = _roots(lambda t: p_up(t) - (1 - threshold), grid, pg - (1 - threshold))
    classical = _roots(lower, grid, lower(grid))
    return Crossing(
        n_per_arm,
        control_rate,
        [math.exp(b) for b in benefit],
        [math.exp(h) for h in harm],
        [math.exp(x) for x in classical],
    )


@dataclass(frozen=True)
class ConclusionMap:
    """Updated conclusions over a grid of the new trial's observed OR and size.

    Attributes
    ----------
    odds_ratio : ndarray
        Observed ORs of the new trial (columns).
    n_per_arm : ndarray
        Sizes per arm (rows).
    p : ndarray
        Updated P(OR > 1), shape (sizes, ORs).
    classical : ndarray of bool
        Whether the updated DL 95% CI excludes 1 in favour of treatment.
    control_rate, threshold, p_now : float
        The observed control rate assumed, G, and P(OR > 1) before the new trial.
    """

    odds_ratio: FloatArray
    n_per_arm: FloatArray
    p: FloatArray
    classical: NDArray[np.bool_]
    control_rate: float
    threshold: float
    p_now: float


def conclusion_map(
    comp: Components,
    y_old: ArrayLike,
    se_old: ArrayLike,
    control_rate: float,
    threshold: float,
    sizes: ArrayLike,
    *,
    or_range: tuple[float, float] = (0.2, 8.0),
    n_or: int = 161,
) -> ConclusionMap:
    """Updated P(OR > 1) and the classical verdict for new trials of each size and OR.

    The new trial observes ``control_rate`` and an OR on a log grid over ``or_range``; its
    SE follows from the size (:func:`se_of_observed`).
    """
    t = np.linspace(math.log(or_range[0]), math.log(or_range[1]), n_or)
    n = np.asarray(sizes, dtype=float)
    se = se_of_observed(t[None, :], control_rate, n[:, None])
    y = np.broadcast_to(t[None, :], se.shape)
    p = update(comp, y, se).p
    classical = dl_update(y_old, se_old, y, se).lower > 0
    return ConclusionMap(np.exp(t), n, p, classical, control_rate, threshold, comp.prob_mu_gt())
