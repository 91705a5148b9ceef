"""The next trial judged by the meta-analysis it joins, and where it would change it.

A fitted random-effects meta-analysis gives the posterior of ``(mu, tau)``. A new trial
reporting a log odds ratio ``y`` with standard error ``se`` multiplies it by its likelihood
given ``(mu, tau)``, ``N(y; mu, tau^2 + se^2)`` (its own effect ``theta`` integrated out
against ``N(mu, tau^2)``). That is the normal-normal model's likelihood, and for a
binomial-normal fit the normal approximation of the new trial's log-OR likelihood (its
baseline and effect integrated out under a flat baseline): accurate for the arms of a trial
that is being planned (hundreds per arm), checked against binomial refits by MCMC
(:func:`refit_check`). Every posterior we meet is written as a mixture of **components**:
component ``s`` has weight ``w_s``, a fixed ``tau_s`` and ``mu | s ~ N(m_s, v_s)``:

* exact normal-normal fit: the tau quadrature nodes and weights of
  :class:`~trialsynth.core.exact.ExactPosterior`, with the conjugate ``mu | tau, y``;
* MCMC fit with normal random effects and a normal (or flat) prior on ``mu``: the draws,
  each with ``mu | theta_s, tau_s`` conjugate (Rao-Blackwellised: ``mu`` appears only in
  its prior and in ``theta_i ~ N(mu, tau^2)``, so this conditional is exact whatever the
  likelihood of the trials);
* any other MCMC fit (common effect, another mu prior): the draws with ``v_s = 0``
  (plain importance sampling).

Adding the trial is closed form per component (:func:`update`): the weight is multiplied
by ``N(y; m_s, v_s + tau_s^2 + se^2)`` and ``mu | s`` becomes the normal posterior with
one more observation of variance ``tau_s^2 + se^2``. For the exact engine this *is* the
exact posterior of the k + 1 trials on the old quadrature grid (the new factor is smooth
in tau; it agrees with a fresh quadrature to ~1e-11 for trials the predictive expects); for
draws it is importance sampling with the new trial's likelihood as the weight, whose
reliability is the Kish effective sample size ``(sum w)^2 / sum w^2``. Many simulated
trials against many draws are screened with a spline table and computed directly near
the threshold (:func:`updated_probability`), so no close call is decided by the table.

The classical counterpart (:func:`dl_update`) is the DerSimonian-Laird random-effects
meta-analysis of the old (y, se) plus the new one, vectorised over simulated trials.
:func:`design_updated` simulates the new trial as :mod:`~trialsynth.analysis.assurance`
does and reports, per size, the updated-meta assurance (Bayesian and classical) beside the
stand-alone one; :func:`crossings` gives the observed ORs at which the conclusion flips.

References: Sutton AJ et al. (2007), Evidence-based sample size calculations based upon
updated meta-analysis, Stat Med 26:2479-2500; Roloff V et al. (2013), Planning future
studies based on the conditional power of a meta-analysis, Stat Med 32:11-24; Langan D
et al. (2012), extfunnel: graphical augmentations to the funnel plot, Res Synth Methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import interpolate, optimize, special, stats

from trialsynth.analysis.assurance import (
    DEFAULT_SIMS,
    QUANTILES,
    AssuranceError,
    Criterion,
    check_sizes,
    control_logits,
    simulate_counts,
)
from trialsynth.core.effects import log_odds_ratios
from trialsynth.core.errors import TrialsynthError
from trialsynth.data import ArmData, ContrastData, TrialData
from trialsynth.engines.diagnostics import probability_mcse
from trialsynth.engines.exact import exact_for
from trialsynth.priors.prior import Prior
from trialsynth.results.fitting import fit as do_fit

if TYPE_CHECKING:
    from trialsynth.core.exact import ExactPosterior
    from trialsynth.results.base import FitResult

FloatArray = NDArray[np.float64]

#: Elements (simulated trials x components) handled per vectorised block.
BLOCK = 2_000_000
#: Direct evaluation (no table) when simulated trials x components is at most this.
DIRECT_BUDGET = 4_000_000
#: Table of the updated probability: nodes over log(se) and the step over y.
TABLE_SE_NODES = 13
TABLE_Y_STEP = 0.05
#: Simulated trials whose tabulated probability lies within this of the threshold (or
#: within 20 times the largest interpolation error seen at the check points) are
#: recomputed directly, so the table only screens and never decides a close call.
SCREEN_BAND = 1e-4
#: Check points at which the table is compared with direct evaluation.
TABLE_CHECKS = 200
#: Simulated trials beyond these quantiles of y or se are evaluated directly (the table
#: covers the bulk only, so a few outlying trials do not stretch it).
TABLE_TAIL = 0.002
Z975 = float(special.ndtri(0.975))
#: Grid of observed log-ORs scanned for the ORs where a conclusion flips.
CROSSING_GRID = 231


class UpdateError(AssuranceError, TrialsynthError):
    """A fit or request the updated meta-analysis cannot handle (one-line message)."""


@dataclass(frozen=True)
class Components:
    """A posterior of ``(mu, tau)`` as a mixture: weight, ``mu | s ~ N(m, v)``, ``tau``.

    Attributes
    ----------
    weight : ndarray
        Normalised weights (sum 1).
    m, v : ndarray
        Mean and variance of ``mu`` given the component (``v`` may be 0).
    tau : ndarray
        The component's heterogeneity standard deviation.
    source : str
        ``"exact"`` (quadrature nodes), ``"draws-rao-blackwell"`` or ``"draws"``.
    draw_ess : float or None
        Effective sample size of the draws behind the components (MCMC autocorrelation);
        inflates the importance-sampling MCSE by ``sqrt(n / draw_ess)``. None for exact.
    """

    weight: FloatArray
    m: FloatArray
    v: FloatArray
    tau: FloatArray
    source: str
    draw_ess: float | None = None

    @property
    def size(self) -> int:
        """Number of components."""
        return int(self.weight.size)

    @property
    def is_exact(self) -> bool:
        """True for quadrature components (no Monte Carlo error)."""
        return self.source == "exact"

    def prob_mu_gt(self, c: float = 0.0) -> float:
        """P(mu > c) before any new trial."""
        return float(self.weight @ _normal_sf(c, self.m, self.v))


def _normal_sf(c: float | FloatArray, m: FloatArray, v: FloatArray) -> FloatArray:
    """P(X > c) for X ~ N(m, v), with v = 0 read as a point mass (1/2 at c)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (m - c) / np.sqrt(v)
    if np.all(v > 0):
        return special.ndtr(z)
    z = np.where(v > 0, z, np.sign(m - c) * np.inf)
    return np.where(np.isnan(z), 0.5, special.ndtr(z))


def components_from_exact(post: ExactPosterior) -> Components:
    """Components of an exact posterior (its tau quadrature nodes and weights).

    Only public attributes are read: ``y``, ``se``, ``mu_prior``, ``tau_nodes`` and
    ``tau_weights``; ``mu | tau, y`` is the conjugate normal.
    """
    se2 = np.asarray(post.se, dtype=float) ** 2
    tau = np.asarray(post.tau_nodes, dtype=float)
    weight = np.asarray(post.tau_weights, dtype=float)
    var = se2[None, :] + tau[:, None] ** 2
    m, v = conjugate_mu(np.asarray(post.y, dtype=float)[None, :], var, post.mu_prior)
    return Components(weight / weight.sum(), m, v, tau, "exact")


def conjugate_mu(
    obs: FloatArray, var: FloatArray, mu_prior: tuple[float, float] | None
) -> tuple[FloatArray, FloatArray]:
    """Posterior mean and variance of mu from rows of observations ``obs ~ N(mu, var)``."""
    w = 1.0 / var
    prec = w.sum(axis=-1)
    num = (w * obs).sum(axis=-1)
    if mu_prior is not None:
        m0, s0 = mu_prior
        prec = prec + 1.0 / s0**2
        num = num + m0 / s0**2
    return num / prec, 1.0 / prec


def components_from_draws(
    mu: ArrayLike,
    tau: ArrayLike,
    theta: ArrayLike | None = None,
    *,
    mu_prior: tuple[float, float] | str | None = "unknown",
    draw_ess: float | None = None,
) -> Components:
    """Components of MCMC draws, Rao-Blackwellised over mu where that is exact.

    Parameters
    ----------
    mu, tau : array_like
        Draws (any shape, flattened in C order).
    theta : array_like, optional
        Trial effects, shape ``(*mu.shape, k)``. With ``theta`` and a ``mu_prior`` that is
        a ``(mean, sd)`` pair or None (flat), ``mu | theta, tau`` is the conjugate normal
        (normal random effects); otherwise the draws of mu are used as they are.
    mu_prior : (float, float), None or "unknown"
        Prior of mu; ``"unknown"`` (e.g. a non-normal prior) disables Rao-Blackwellisation.
    draw_ess : float, optional
        Effective sample size of the draws (e.g. the bulk ESS of mu).
    """
    mu_a = np.asarray(mu, dtype=float).ravel()
    tau_a = np.asarray(tau, dtype=float).ravel()
    if mu_a.shape != tau_a.shape or mu_a.size < 2:
        raise UpdateError("mu and tau draws must have the same shape (at least 2 draws)")
    weight = np.full(mu_a.size, 1.0 / mu_a.size)
    if theta is None or mu_prior == "unknown" or np.any(tau_a <= 0):
        return Components(weight, mu_a, np.zeros_like(mu_a), tau_a, "draws", draw_ess)
    th = np.asarray(theta, dtype=float).reshape(mu_a.size, -1)
    m, v = conjugate_mu(th, np.broadcast_to(tau_a[:, None] ** 2, th.shape), mu_prior)  # type: ignore[arg-type]
    return Components(weight, m, v, tau_a, "draws-rao-blackwell", draw_ess)


@dataclass(frozen=True)
class Update:
    """The posterior after one more trial, per simulated trial.

    Attributes
    ----------
    p : ndarray
        Updated P(mu > c).
    ess : ndarray or None
        Kish effective sample size of the importance weights (None for exact components).
    mcse : ndarray or None
        Importance-sampling Monte Carlo standard error of ``p`` (delta method, inflated
        for autocorrelated draws); None for exact components.
    """

    p: FloatArray
    ess: FloatArray | None
    mcse: FloatArray | None


def update(
    comp: Components, y: ArrayLike, se: ArrayLike, *, c: float = 0.0, block: int = BLOCK
) -> Update:
    """Updated P(mu > c) after a trial with log-OR ``y`` and SE ``se`` (vectorised).

    ``se = 0`` is allowed: the trial then reveals its own effect exactly (the large-N limit).
    Cost: ``y.size * comp.size`` elementwise operations, in blocks of ``block``; a scalar
    ``se`` computes its per-component terms once.
    """
    y_a, se_a = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(se, dtype=float))
    shape = y_a.shape
    y_a, se_a = y_a.ravel(), se_a.ravel()
    scalar_se = np.ndim(se) == 0
    p = np.empty(y_a.size)
    ess = None if comp.is_exact else np.empty(y_a.size)
    mcse = None if comp.is_exact else np.empty(y_a.size)
    inflate = 1.0 if comp.draw_ess is None else math.sqrt(comp.size / min(comp.draw_ess, comp.size))
    step = max(1, block // comp.size)
    terms = _terms(comp, se_a[:1, None]) if scalar_se else None
    for i in range(0, y_a.size, step):
        sl = slice(i, i + step)
        lw0, inv_tot, gain, sd = terms if terms is not None else _terms(comp, se_a[sl, None])
        d = y_a[sl, None] - comp.m
        lw = lw0 - 0.5 * d * d * inv_tot
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        sw = w.sum(axis=1)
        ps = _normal_sf(c, comp.m + gain * d, sd * sd)
        p[sl] = (w * ps).sum(axis=1) / sw
        if ess is not None and mcse is not None:
            ess[sl] = sw**2 / (w * w).sum(axis=1)
            wn = w / sw[:, None]
            mcse[sl] = inflate * np.sqrt((wn * wn * (ps - p[sl, None]) ** 2).sum(axis=1))
    return Update(
        p.reshape(shape),
        None if ess is None else ess.reshape(shape),
        None if mcse is None else mcse.reshape(shape),
    )


def _terms(
    comp: Components, se: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-component terms of :func:`update` that depend on se only.

    Log prior weight minus half the log predictive variance, the inverse predictive
    variance ``1 / (v + tau^2 + se^2)``, the gain ``v / (v + tau^2 + se^2)`` of mu's
    conditional mean and its updated conditional sd.
    """
    var_new = comp.tau**2 + se**2
    tot = comp.v + var_new
    inv_tot = 1.0 / tot
    return (
        np.log(comp.weight) - 0.5 * np.log(tot),
        inv_tot,
        comp.v * inv_tot,
        np.sqrt(comp.v * var_new * inv_tot),
    )


# --------------------------------------------------------------------------- fast screening


@dataclass(frozen=True)
class ProbabilityTable:
    """Cubic-spline tables over (log se, y) of the updated P(mu > c), log ESS and MCSE."""

    p: interpolate.RectBivariateSpline
    log_ess: interpolate.RectBivariateSpline | None
    mcse: interpolate.RectBivariateSpline | None

    def __call__(self, y: FloatArray, se: FloatArray) -> FloatArray:
        """Interpolated probability (clipped to [0, 1])."""
        return np.clip(self.p.ev(np.log(se), y), 0.0, 1.0)

    def ess(self, y: FloatArray, se: FloatArray) -> FloatArray | None:
        """Interpolated Kish ESS (None for exact components)."""
        return None if self.log_ess is None else np.exp(self.log_ess.ev(np.log(se), y))

    def mcse_at(self, y: FloatArray, se: FloatArray) -> FloatArray | None:
        """Interpolated importance-sampling MCSE (None for exact components)."""
        return None if self.mcse is None else np.maximum(self.mcse.ev(np.log(se), y), 0.0)


def probability_table(
    comp: Components, y_range: tuple[float, float], se_range: tuple[float, float], *, c: float = 0.0
) -> ProbabilityTable:
    """Tabulate :func:`update` on a grid covering ``y_range`` x ``se_range``.

    :data:`TABLE_SE_NODES` nodes over log(se) and a step of :data:`TABLE_Y_STEP` in y; one
    :func:`update` per se node, so the se-dependent terms are computed once per row.
    """
    lo, hi = math.log(se_range[0]), math.log(se_range[1])
    if hi - lo < 1e-6:
        lo, hi = lo - 1e-3, hi + 1e-3
    log_se = np.linspace(lo, hi, TABLE_SE_NODES)
    n_y = max(8, math.ceil((y_range[1] - y_range[0]) / TABLE_Y_STEP) + 1)
    y = np.linspace(y_range[0] - 1e-9, y_range[1] + 1e-9, n_y)
    rows = [update(comp, y, math.exp(s), c=c) for s in log_se]
    p = interpolate.RectBivariateSpline(log_se, y, np.stack([r.p for r in rows]))
    if comp.is_exact:
        return ProbabilityTable(p, None, None)
    ess = np.log(np.stack([r.ess for r in rows]))  # type: ignore[misc]
    mcse = np.stack([r.mcse for r in rows])  # type: ignore[misc]
    return ProbabilityTable(
        p,
        interpolate.RectBivariateSpline(log_se, y, ess),
        interpolate.RectBivariateSpline(log_se, y, mcse),
    )


@dataclass(frozen=True)
class Screened:
    """Updated probabilities of many simulated trials and how they were obtained.

    ``p`` is direct (exact w.r.t. the components) wherever ``direct`` is True, else the
    table value, which is then farther than ``band`` from the threshold; ``table_error``
    is the largest table error seen at the check points. ``ess`` and ``mcse`` are direct
    where ``direct``, interpolated elsewhere (None for exact components). ``table`` and
    ``box`` (its y and se ranges) can screen more trials (``reuse`` of
    :func:`updated_probability`).
    """

    p: FloatArray
    ess: FloatArray | None
    mcse: FloatArray | None
    direct: NDArray[np.bool_]
    band: float
    table_error: float
    table: ProbabilityTable | None = None
    box: tuple[float, float, float, float] | None = None


def _table_for(
    comp: Components, y: FloatArray, se: FloatArray, c: float, seed: int
) -> tuple[ProbabilityTable, tuple[float, float, float, float], float]:
    """A table over the bulk of (y, se), its box and its largest error at random checks."""
    y_lo, y_hi = np.quantile(y, [TABLE_TAIL, 1 - TABLE_TAIL])
    se_lo, se_hi = np.quantile(se, [TABLE_TAIL, 1 - TABLE_TAIL])
    box = (float(y_lo), float(y_hi), float(se_lo), float(se_hi))
    table = probability_table(comp, (box[0], box[1]), (box[2], box[3]), c=c)
    pool = np.flatnonzero(_inside(box, y, se))
    check = np.random.default_rng([seed, 41]).choice(
        pool, size=min(TABLE_CHECKS, pool.size), replace=False
    )
    err = float(
        np.max(np.abs(update(comp, y[check], se[check], c=c).p - table(y[check], se[check])))
    )
    return table, box, err


def _inside(
    box: tuple[float, float, float, float], y: FloatArray, se: FloatArray
) -> NDArray[np.bool_]:
    return (y >= box[0]) & (y <= box[1]) & (se >= box[2]) & (se <= box[3])


def updated_probability(
    comp: Components,
    y: ArrayLike,
    se: ArrayLike,
    threshold: float,
    *,
    c: float = 0.0,
    seed: int = 0,
    reuse: Screened | None = None,
) -> Screened:
    """Updated P(mu > c) of each simulated trial, exact wherever it is near ``threshold``.

    Small problems are evaluated directly. Large ones are screened with a
    :func:`probability_table` over the bulk of the trials (inside the :data:`TABLE_TAIL`
    quantiles of y and se; or the table of ``reuse``): trials whose tabulated probability
    is within ``max(SCREEN_BAND, 20 x table error)`` of the threshold, and those outside
    the table, are computed directly, so the success indicator ``p > threshold`` equals
    the direct one unless the table errs by more than 20 times the largest error seen at
    :data:`TABLE_CHECKS` random check points.
    """
    y_a = np.asarray(y, dtype=float).ravel()
    se_a = np.asarray(se, dtype=float).ravel()
    if y_a.size * comp.size <= DIRECT_BUDGET:
        up = update(comp, y_a, se_a, c=c)
        return Screened(up.p, up.ess, up.mcse, np.ones(y_a.size, bool), 0.0, 0.0)
    if reuse is not None and reuse.table is not None and reuse.box is not None:
        table, box, err = reuse.table, reuse.box, reuse.table_error
    else:
        table, box, err = _table_for(comp, y_a, se_a, c, seed)
    p, ess, mcse = table(y_a, se_a), table.ess(y_a, se_a), table.mcse_at(y_a, se_a)
    band = max(SCREEN_BAND, 20.0 * err)
    direct = (np.abs(p - threshold) <= band) | ~_inside(box, y_a, se_a)
    idx = np.flatnonzero(direct)
    up = update(comp, y_a[idx], se_a[idx], c=c)
    p[idx] = up.p
    if ess is not None and mcse is not None and up.ess is not None and up.mcse is not None:
        ess[idx], mcse[idx] = up.ess, up.mcse
    return Screened(p, ess, mcse, direct, band, err, table, box)


# --------------------------------------------------------------------------- classical


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

    The same formulas as :func:`trialsynth.frequentist.random_effects` (``method="DL"``,
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


# --------------------------------------------------------------------------- fits


def components_for(fit: FitResult) -> Components:
    """The (mu, tau) mixture of a fit, or an error naming what prevents the update.

    Raises
    ------
    UpdateError
        Subgroup or meta-regression fits (the new trial's place in them is undefined here)
        and Student-t random effects (the new trial's likelihood given mu and tau is then
        not normal).
    """
    spec = fit.spec
    if spec.subgroup or spec.covariates:
        raise UpdateError(
            "--criterion updated-meta needs a fit without --subgroup or --covariate "
            "(refit the trials as one meta-analysis)"
        )
    if spec.random_effects not in (None, "normal"):
        raise UpdateError(
            "--criterion updated-meta needs normal random effects, not "
            f"{spec.random_effects} (refit with --random-effects normal)"
        )
    post = getattr(fit, "posterior", None)
    if fit.engine == "exact" and post is not None:
        return components_from_exact(post)
    mu = fit.draws("mu")
    tau = fit.draws("tau") if spec.random_effects else np.zeros_like(mu)
    prior = fit.priors.mu
    mu_prior: tuple[float, float] | str | None = "unknown"
    if prior.family == "normal":
        mu_prior = (float(prior.params[0]), float(prior.params[1]))
    elif prior.family == "flat":
        mu_prior = None
    ess = fit.diagnostics.ess_bulk_min if fit.diagnostics is not None else None
    theta = fit.draws("theta") if spec.random_effects else None
    return components_from_draws(mu, tau, theta, mu_prior=mu_prior, draw_ess=ess)


def old_contrasts(fit: FitResult) -> tuple[FloatArray, FloatArray]:
    """The analysed trials' log-ORs and SEs (the fit's continuity correction for zero cells)."""
    obs = fit.tree["observed_data"]
    if "y" in obs:
        return np.asarray(obs["y"].values, float), np.asarray(obs["se"].values, float)
    lor = log_odds_ratios(
        obs["events_t"].values,
        obs["n_t"].values,
        obs["events_c"].values,
        obs["n_c"].values,
        correction=fit.spec.correction,
    )
    return lor.y, lor.se


# --------------------------------------------------------------------------- design

#: The criteria that judge the new trial by the updated meta-analysis.
UPDATED_CRITERIA = ("updated-meta", "updated-meta-classical")
#: Every curve of an updated design, all judged on the same simulated trials.
CURVES = ("two-sided-test", "posterior", "updated-meta", "updated-meta-classical")
#: Kish ESS below which a simulated trial's reweighted posterior is counted as weak.
ESS_WARN = 200.0
#: Simulated trials kept per size as candidates for a check by refitting (lowest ESS
#: among those whose updated P(OR > 1) is within :data:`CANDIDATE_BAND` of the threshold).
CANDIDATES = 5
CANDIDATE_BAND = 0.1


@dataclass(frozen=True)
class Curve:
    """One criterion at one size: assurance with its MCSE, power at the pooled estimate."""

    assurance: float
    mcse: float
    classical_power: float


@dataclass(frozen=True)
class UpdatedPoint:
    """Every curve at one size, with the importance-sampling record and the crossings.

    Attributes
    ----------
    n_per_arm : int
        Participants per arm.
    curves : dict of str to Curve
        Keyed by :data:`CURVES`.
    importance : dict or None
        Kish ESS of the reweighted posteriors over the simulated trials (``min``, ``q01``,
        ``median``, ``min_near_threshold``, ``n_below``: below :data:`ESS_WARN`), the
        assurance's MCSE part due to the draws (``criterion_mcse``) and how many trials
        were computed directly; None for an exact fit.
    crossing : Crossing
        Observed ORs at which the conclusions flip (at the median control rate).
    predictive : dict
        Predictive quantiles of the observed OR and of the events per arm.
    candidates : list of dict
        Simulated trials for a check by refitting (see :data:`CANDIDATES`).
    """

    n_per_arm: int
    curves: dict[str, Curve]
    importance: dict[str, float] | None
    crossing: Crossing
    predictive: dict[str, dict[str, float]]
    candidates: list[dict[str, float]]


def describe_criterion(kind: str, threshold: float, k: int) -> str:
    """One-line statement of an updated-meta criterion (printed and recorded)."""
    if kind == "updated-meta":
        return (
            f"posterior P(OR > 1) > {threshold:g} from the meta-analysis of the {k} trials plus "
            "the new one (same model and priors as the fit)"
        )
    return (
        f"DerSimonian-Laird random-effects 95% CI of the {k} trials plus the new one excludes "
        "OR 1 in favour of treatment"
    )


@dataclass(frozen=True)
class UpdatedDesign:
    """Assurance curves of a future trial judged alone and by the updated meta-analysis."""

    points: list[UpdatedPoint]
    criterion: str
    threshold: float
    alpha: float
    k: int
    control_rate: float
    control_rate_interval: tuple[float, float] | None
    control_source: str
    pooled_log_or: float
    limits: dict[str, tuple[float, float]]
    limit_boundary: float | None
    p_mu_gt_0: float
    components: str
    n_components: int
    target: float
    sims: int
    seed: int
    fit_priors: dict[str, str]
    fit_status: str
    data_name: str
    checks: tuple[dict[str, Any], ...] = ()

    @property
    def pooled_or(self) -> float:
        """Pooled posterior median OR (where the classical power is evaluated)."""
        return math.exp(self.pooled_log_or)

    @property
    def criterion_text(self) -> str:
        """The chosen criterion in words."""
        return describe_criterion(self.criterion, self.threshold, self.k)

    @property
    def assurance_limit(self) -> float:
        """Limit of the chosen criterion's assurance as N grows."""
        return self.limits[self.criterion][0]

    def n_for(self, curve: str, target: float | None = None) -> int | None:
        """Smallest evaluated N per arm whose ``curve`` assurance reaches the target."""
        goal = self.target if target is None else target
        hits = [p.n_per_arm for p in self.points if p.curves[curve].assurance >= goal]
        return min(hits) if hits else None

    def target_note(self, curve: str | None = None) -> str:
        """Where the target is reached for ``curve`` (default the chosen criterion), or why not."""
        curve = curve or self.criterion
        n = self.n_for(curve)
        limit = self.limits["stand-alone" if curve in ("two-sided-test", "posterior") else curve]
        if n is not None:
            return f"N per arm for assurance >= {self.target:g}: {n} (smallest evaluated size)"
        if limit[0] <= self.target:
            return (
                f"assurance {self.target:g} is unreachable at any N: the limit as N grows is "
                f"{limit[0]:.3f} ± {limit[1]:.3f}"
            )
        return (
            f"assurance {self.target:g} not reached up to N = {self.points[-1].n_per_arm} per "
            f"arm (limit as N grows: {limit[0]:.3f}); evaluate larger sizes"
        )

    def curve(self, name: str) -> dict[str, FloatArray]:
        """One curve as arrays (for a figure): N, assurance, MCSE, classical power."""
        return {
            "n_per_arm": np.array([p.n_per_arm for p in self.points], dtype=float),
            "assurance": np.array([p.curves[name].assurance for p in self.points]),
            "mcse": np.array([p.curves[name].mcse for p in self.points]),
            "classical_power": np.array([p.curves[name].classical_power for p in self.points]),
        }

    def to_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        """``design --json`` rows (INTERFACE.md keys first; a list for several sizes)."""
        rows = [self._row(p) for p in self.points]
        return rows[0] if len(rows) == 1 else rows

    def _row(self, p: UpdatedPoint) -> dict[str, Any]:
        main = p.curves[self.criterion]
        alone = p.curves["two-sided-test"]
        return {
            "n_per_arm": p.n_per_arm,
            "control_rate": self.control_rate,
            "criterion": self.criterion,
            "assurance": main.assurance,
            "mcse": main.mcse,
            "classical_power": main.classical_power,
            "criterion_text": self.criterion_text,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "standalone_assurance": alone.assurance,
            "standalone_mcse": alone.mcse,
            "standalone_classical_power": alone.classical_power,
            "curves": {name: vars(c) for name, c in p.curves.items()},
            "importance": p.importance,
            "conclusion_changes": {
                "control_rate": p.crossing.control_rate,
                "benefit_or": p.crossing.benefit,
                "harm_or": p.crossing.harm,
                "classical_or": p.crossing.classical,
            },
            "control_rate_source": self.control_source,
            "control_rate_interval": (
                list(self.control_rate_interval) if self.control_rate_interval else None
            ),
            "pooled_or": math.exp(self.pooled_log_or),
            "p_mu_gt_0_now": self.p_mu_gt_0,
            "assurance_limit": self.limits[self.criterion][0],
            "assurance_limit_mcse": self.limits[self.criterion][1],
            "limits": {k: {"value": v[0], "mcse": v[1]} for k, v in self.limits.items()},
            "target": self.target,
            "n_for_target": self.n_for(self.criterion),
            "standalone_n_for_target": self.n_for("two-sided-test"),
            "components": self.components,
            "n_components": self.n_components,
            "checks": list(self.checks),
            "sims": self.sims,
            "seed": self.seed,
            "fit_priors": self.fit_priors,
            "fit_status": self.fit_status,
            "data": self.data_name,
            "subgroup": None,
            "predictive": p.predictive,
        }


@dataclass(frozen=True)
class _Judges:
    """The four ways of judging a simulated trial, sharing the fit's components."""

    comp: Components
    y_old: FloatArray
    se_old: FloatArray
    threshold: float
    alpha: float
    seed: int

    def stand_alone(self, kind: str) -> Criterion:
        return Criterion(kind, alpha=self.alpha, threshold=self.threshold)

    def success(
        self, curve: str, y: FloatArray, se: FloatArray, reuse: Screened | None = None
    ) -> NDArray[np.bool_]:
        """Whether trials with these log-ORs and SEs succeed under ``curve``.

        ``reuse``: an earlier screening whose table judges these trials too.
        """
        if curve in ("two-sided-test", "posterior"):
            return self.stand_alone(curve).success(y, se)
        if curve == "updated-meta-classical":
            return dl_update(self.y_old, self.se_old, y, se).lower > 0
        scr = updated_probability(self.comp, y, se, self.threshold, seed=self.seed, reuse=reuse)
        return scr.p.reshape(np.shape(y)) > self.threshold


def _power(theta: float, control_rate: float, n: int, judge: Callable[..., Any]) -> float:
    """P(success) at one true log-OR and control rate, by enumerating the arm counts.

    Counts within 9 SD of their means; pairs of probability below 1e-12 are dropped (together
    less than 1e-7), which keeps the updated-meta judgement of the pairs cheap.
    """
    p_t = float(special.expit(special.logit(control_rate) + theta))

    def support(p: float) -> NDArray[np.int64]:
        sd = math.sqrt(n * p * (1 - p))
        lo, hi = max(0, math.floor(n * p - 9 * sd - 1)), min(n, math.ceil(n * p + 9 * sd + 1))
        return np.arange(lo, hi + 1)

    xc, xt = support(control_rate), support(p_t)
    w = np.outer(stats.binom.pmf(xc, n, control_rate), stats.binom.pmf(xt, n, p_t))
    keep = w > 1e-12
    a, c = np.broadcast_arrays(xt[None, :], xc[:, None])
    lor = log_odds_ratios(a[keep], np.full(keep.sum(), n), c[keep], np.full(keep.sum(), n))
    return float(np.sum(w[keep] * judge(lor.y, lor.se)))


def _importance(scr: Screened, p: FloatArray, threshold: float) -> dict[str, float]:
    """ESS summary of the reweighted posteriors and the MCSE due to the draws.

    ``criterion_mcse``: half the change in assurance when every simulated trial's updated
    probability moves by one importance-sampling MCSE up or down (all trials share the
    draws, so their errors move together: a conservative bound).
    """
    assert scr.ess is not None and scr.mcse is not None
    sig = scr.mcse.reshape(p.shape)
    shift = float(np.mean(p + sig > threshold) - np.mean(p - sig > threshold))
    near = np.abs(scr.p - threshold) < CANDIDATE_BAND
    return {
        "ess_min": float(scr.ess.min()),
        "ess_q01": float(np.quantile(scr.ess, 0.01)),
        "ess_median": float(np.median(scr.ess)),
        "ess_min_near_threshold": float(scr.ess[near].min()) if near.any() else math.nan,
        "n_below": int(np.sum(scr.ess < ESS_WARN)),
        "ess_warn": ESS_WARN,
        "criterion_mcse": 0.5 * abs(shift),
        "direct": int(scr.direct.sum()),
        "table_error": scr.table_error,
    }


def _candidates(
    scr: Screened,
    x_t: NDArray[np.int64],
    x_c: NDArray[np.int64],
    y: FloatArray,
    se: FloatArray,
    threshold: float,
) -> list[dict[str, float]]:
    """Simulated trials near the threshold with the lowest ESS (closest first if exact)."""
    near = np.flatnonzero(np.abs(scr.p - threshold) < CANDIDATE_BAND)
    key = np.abs(scr.p[near] - threshold) if scr.ess is None else scr.ess[near]
    order = near[np.argsort(key, kind="stable")]
    pairs = x_t.ravel()[order] * (x_c.max() + 1) + x_c.ravel()[order]
    _, first = np.unique(pairs, return_index=True)  # one simulated trial per pair of counts
    pick = order[np.sort(first)[:CANDIDATES]]
    out = []
    for i in pick:
        row = {"x_t": int(x_t.flat[i]), "x_c": int(x_c.flat[i]), "y": float(y.flat[i])}
        row |= {"se": float(se.flat[i]), "p_updated": float(scr.p[i])}
        if scr.ess is not None and scr.mcse is not None:
            row |= {"ess": float(scr.ess[i]), "mcse": float(scr.mcse[i])}
        out.append(row)
    return out


def _quantiles(x: ArrayLike) -> dict[str, float]:
    q = np.quantile(np.asarray(x, dtype=float).ravel(), list(QUANTILES.values()))
    return {k: float(v) for k, v in zip(QUANTILES, q, strict=True)}


def _point(
    judges: _Judges,
    n: int,
    x_t: NDArray[np.int64],
    x_c: NDArray[np.int64],
    pooled: float,
    rate: float,
) -> UpdatedPoint:
    """Every curve at one size from the simulated counts (shape (reps, chain, draw))."""
    full = np.full(x_t.shape, n)
    lor = log_odds_ratios(x_t, full, x_c, full)
    y, se = lor.y, lor.se
    g = judges.threshold
    scr = updated_probability(judges.comp, y, se, g, seed=judges.seed)
    p = scr.p.reshape(y.shape)
    ok = {c: (p > g) if c == "updated-meta" else judges.success(c, y, se) for c in CURVES}
    importance = None if scr.ess is None else _importance(scr, p, g)
    curves = {}
    for c in CURVES:
        mc = probability_mcse(ok[c].mean(axis=0))
        if c == "updated-meta" and importance is not None:
            mc = math.hypot(mc, importance["criterion_mcse"])
        power = _power(pooled, rate, n, lambda yy, ss, c=c: judges.success(c, yy, ss, scr))
        curves[c] = Curve(float(ok[c].mean()), mc, power)
    return UpdatedPoint(
        n_per_arm=n,
        curves=curves,
        importance=importance,
        crossing=crossings(judges.comp, judges.y_old, judges.se_old, n, rate, g),
        predictive={
            "or_observed": _quantiles(np.exp(y)),
            "events_t": _quantiles(x_t),
            "events_c": _quantiles(x_c),
        },
        candidates=_candidates(scr, x_t, x_c, y, se, g),
    )


def _check_request(criterion: str, threshold: float, target: float, sims: int) -> None:
    if criterion not in UPDATED_CRITERIA:
        raise UpdateError(
            f"unknown updated-meta criterion {criterion!r}; valid: {', '.join(UPDATED_CRITERIA)}"
        )
    if not 0.5 <= threshold < 1:
        raise UpdateError(f"--threshold must be in [0.5, 1), got {threshold}")
    if not 0 < target < 1:
        raise UpdateError(f"--target must be in (0, 1), got {target}")
    if isinstance(sims, bool) or not isinstance(sims, int) or sims < 1:
        raise UpdateError(f"--sims must be a positive integer, got {sims!r}")


def design_updated(
    fit: FitResult,
    n_per_arm: list[int],
    *,
    criterion: str = "updated-meta",
    threshold: float = 0.95,
    alpha: float = 0.05,
    control_rate: float | None = None,
    target: float = 0.8,
    sims: int = DEFAULT_SIMS,
    seed: int | None = None,
) -> UpdatedDesign:
    """Assurance of a future trial judged by the meta-analysis it joins.

    The new trial is simulated as :func:`~trialsynth.analysis.assurance.design_trial` does
    (``theta_new`` from the posterior predictive, the control rate given or drawn from the
    posterior of the control arms; same seed, same trials) and judged four ways (:data:`CURVES`):
    alone by the two-sided Wald test at ``alpha`` and by its own posterior P(OR > 1) >
    ``threshold``; with the analysed trials by the updated posterior P(OR > 1) > ``threshold``
    (same model and priors as ``fit``) and by the updated DerSimonian-Laird 95% CI.

    Returns
    -------
    UpdatedDesign
        Per size every curve's assurance (MCSE: simulation, plus for reweighted draws the
        part due to the draws) and classical power at the pooled posterior median and median
        control rate; the Kish ESS of the reweighting; the observed ORs at which the
        conclusions flip; the limits as N grows.
    """
    _check_request(criterion, threshold, target, sims)
    seed = int(fit.provenance["seed"]) if seed is None else seed
    if seed < 0:
        raise UpdateError(f"--seed must be a non-negative integer, got {seed}")
    sizes = check_sizes(n_per_arm)
    comp = components_for(fit)
    y_old, se_old = old_contrasts(fit)
    judges = _Judges(comp, y_old, se_old, threshold, alpha, seed)
    Criterion("two-sided-test", alpha=alpha)  # validates alpha
    theta = fit.draws("theta_new")
    logit_c, source = control_logits(fit, control_rate, seed=seed)
    rates = special.expit(np.asarray(logit_c, dtype=float))
    rate = float(np.median(rates))
    pooled = float(np.median(fit.draws("mu")))
    points = [
        _point(judges, n, x_t, x_c, pooled, rate)
        for n, x_t, x_c in simulate_counts(theta, logit_c, sizes, sims=sims, seed=seed)
    ]
    bl, cl = bayes_limit(comp, theta, threshold), classical_limit(y_old, se_old, theta)
    return UpdatedDesign(
        points=points,
        criterion=criterion,
        threshold=threshold,
        alpha=alpha,
        k=int(y_old.size),
        control_rate=rate,
        control_rate_interval=None
        if control_rate is not None
        else (float(np.quantile(rates, 0.025)), float(np.quantile(rates, 0.975))),
        control_source=source,
        pooled_log_or=pooled,
        limits={
            "stand-alone": (float(np.mean(theta > 0)), probability_mcse(theta > 0)),
            "updated-meta": (bl.value, probability_mcse(bl.indicator)),
            "updated-meta-classical": (cl.value, probability_mcse(cl.indicator)),
        },
        limit_boundary=bl.boundary,
        p_mu_gt_0=comp.prob_mu_gt(),
        components=comp.source,
        n_components=comp.size,
        target=target,
        sims=max(1, math.ceil(sims / theta.size)) * theta.size,
        seed=seed,
        fit_priors={
            role: Prior.from_dict(spec).describe()
            for role, spec in fit.provenance["priors"].items()
            if role in fit.prior_roles()
        },
        fit_status="ok" if fit.ok else "failed",
        data_name=str(fit.provenance.get("data_name", "")),
        checks=_exact_checks(fit, comp, points, threshold),
    )


#: Simulated trials whose exact update is checked against a fresh quadrature of k + 1 trials.
EXACT_CHECKS = 5


def _exact_checks(
    fit: FitResult, comp: Components, points: list[UpdatedPoint], threshold: float
) -> tuple[dict[str, Any], ...]:
    """For an exact fit: the update of the trials closest to the threshold, recomputed.

    Up to :data:`EXACT_CHECKS` simulated trials (at sizes spread over the evaluated ones, at
    each the one closest to the threshold) are each appended to the data and the exact
    posterior recomputed by a fresh adaptive quadrature; the difference from the reweighted
    old grid is recorded.
    """
    if not comp.is_exact:
        return ()
    y_old, se_old = old_contrasts(fit)
    firsts = [{"n_per_arm": p.n_per_arm, **p.candidates[0]} for p in points if p.candidates]
    spread = np.unique(np.linspace(0, len(firsts) - 1, EXACT_CHECKS).round().astype(int))
    out = []
    for c in [firsts[i] for i in spread] if firsts else []:
        post = exact_for(
            np.append(y_old, c["y"]),
            np.append(se_old, c["se"]),
            fit.priors,
            [*fit.studies, "simulated new trial"],
        )
        full = post.prob_mu_gt(0.0)
        out.append(c | {"p_recomputed": full, "abs_diff": abs(full - c["p_updated"])})
    return tuple(out)


def new_trial_data(fit: FitResult, x_t: int, x_c: int, n: int) -> TrialData:
    """The fit's trials plus a new one with ``x_t``/``n`` and ``x_c``/``n`` events."""
    obs = fit.tree["observed_data"]
    studies = [*fit.studies, "simulated new trial"]
    name = f"{fit.provenance.get('data_name', 'data')} + new trial"
    if "y" in obs:
        lor = log_odds_ratios([x_t], [n], [x_c], [n])
        return ContrastData(
            name,
            studies,
            log_or=np.append(obs["y"].values, lor.y),
            se=np.append(obs["se"].values, lor.se),
        )
    return ArmData(
        name,
        studies,
        events_t=np.append(obs["events_t"].values, x_t),
        n_t=np.append(obs["n_t"].values, n),
        events_c=np.append(obs["events_c"].values, x_c),
        n_c=np.append(obs["n_c"].values, n),
    )


def refit_check(
    fit: FitResult, design: UpdatedDesign, *, trials: int = CANDIDATES, settings: Any = None
) -> UpdatedDesign:
    """Refit a stated subset of simulated trials by MCMC and compare with the reweighting.

    The ``trials`` candidates with the lowest Kish ESS over all sizes (each within
    :data:`CANDIDATE_BAND` of the threshold) are appended to the data and the fit's model is
    refitted with its priors (one compiled model reused for all of them). Each check records
    the reweighted and the refitted P(OR > 1), their MCSEs and ``z`` = difference / combined
    MCSE (the reweighted estimates share the fit's draws, so their errors are correlated).
    """
    if design.components == "exact":
        return design
    cands = sorted(
        ({"n_per_arm": p.n_per_arm, **c} for p in design.points for c in p.candidates),
        key=lambda c: c["ess"],
    )[:trials]
    checks = []
    for c in cands:
        data = new_trial_data(fit, int(c["x_t"]), int(c["x_c"]), int(c["n_per_arm"]))
        refit = do_fit(data, spec=fit.spec, priors=fit.priors, settings=settings, engine="mcmc")
        mu = refit.draws("mu")
        p_refit, m_refit = float(np.mean(mu > 0)), probability_mcse(mu > 0)
        z = (c["p_updated"] - p_refit) / max(math.hypot(c["mcse"], m_refit), 1e-12)
        checks.append(c | {"p_refit": p_refit, "mcse_refit": m_refit, "z": z, "ok": refit.ok})
    return replace(design, checks=tuple(checks))


#: Which limit bounds each curve.
LIMIT_OF = {
    "two-sided-test": "stand-alone",
    "posterior": "stand-alone",
    "updated-meta": "updated-meta",
    "updated-meta-classical": "updated-meta-classical",
}


def _need(design: UpdatedDesign, curve: str, how: str) -> str:
    n = design.n_for(curve)
    limit = design.limits[LIMIT_OF[curve]][0]
    last = design.points[-1]
    if n is not None:
        return f"N = {n} per arm {how}"
    if limit < design.target:
        return f"no size {how} (its assurance cannot exceed {limit:.2f} however large the trial)"
    return (
        f"more than {last.n_per_arm} per arm {how} (assurance {last.curves[curve].assurance:.2f}"
        f" at {last.n_per_arm}, at most {limit:.2f} however large the trial)"
    )


def panel_summary(design: UpdatedDesign) -> str:
    """In plain words: the N the panel needs, and why the updated meta-analysis differs."""
    d, first = design, design.points[0]
    lim = {k: v[0] for k, v in d.limits.items()}
    up, alone = first.curves["updated-meta"].assurance, first.curves["two-sided-test"].assurance
    text = [
        f"For a probability of {d.target:.0%} of a conclusive result a guideline panel would need "
        + _need(
            d,
            "updated-meta",
            f"if the new trial is added to the meta-analysis (P(OR > 1) > {d.threshold:g})",
        )
        + ", "
        + _need(
            d, "updated-meta-classical", "if the updated DerSimonian-Laird 95% CI must exclude 1"
        )
        + ", and "
        + _need(d, "two-sided-test", "if the trial is read on its own (two-sided test at 5%)")
        + "."
    ]
    if up > alone:
        text.append(
            f"The updated meta-analysis starts from the evidence already there (P(OR > 1) = "
            f"{d.p_mu_gt_0:.3f} now), so a small trial that leans towards benefit can tip it: at "
            f"N = {first.n_per_arm} per arm its assurance is {up:.2f}, against {alone:.2f} for "
            "the trial alone."
        )
    else:
        text.append(
            f"The evidence already there (P(OR > 1) = {d.p_mu_gt_0:.3f} now) holds the updated "
            f"meta-analysis back: at N = {first.n_per_arm} per arm its assurance is {up:.2f}, "
            f"against {alone:.2f} for the trial alone."
        )
    if lim["updated-meta"] < lim["stand-alone"]:
        text.append(
            "However large the new trial, it adds one more trial effect from a distribution "
            "whose spread (tau) is uncertain, so the pooled P(OR > 1) can stay below "
            f"{d.threshold:g} even when the trial itself is clearly positive: the updated "
            f"assurance levels off at {lim['updated-meta']:.2f}, below the limit of the trial "
            f"alone, P(OR_new > 1) = {lim['stand-alone']:.2f}."
        )
    return " ".join(text)
