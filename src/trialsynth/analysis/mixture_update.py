"""The posterior of ``(mu, tau)`` as a mixture of components, updated by one more trial.

A fitted random-effects meta-analysis gives the posterior of ``(mu, tau)``. A new trial
reporting a log odds ratio ``y`` with standard error ``se`` multiplies it by its likelihood
given ``(mu, tau)``, ``N(y; mu, tau^2 + se^2)`` (its own effect ``theta`` integrated out
against ``N(mu, tau^2)``). That is the normal-normal model's likelihood, and for a
binomial-normal fit the normal approximation of the new trial's log-OR likelihood (its
baseline and effect integrated out under a flat baseline): accurate for the arms of a trial
that is being planned (hundreds per arm), checked against binomial refits by MCMC
(:func:`~trialsynth.analysis.updated_meta.refit_check`). Every posterior we meet is written
as a mixture of **components**: component ``s`` has weight ``w_s``, a fixed ``tau_s`` and
``mu | s ~ N(m_s, v_s)``:

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

References: Sutton AJ et al. (2007), Evidence-based sample size calculations based upon
updated meta-analysis, Stat Med 26:2479-2500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import interpolate, special

from trialsynth.analysis.assurance import AssuranceError
from trialsynth.core.effects import log_odds_ratios
from trialsynth.core.errors import TrialsynthError

if TYPE_CHECKING:
    from trialsynth.core.exact import ExactPosterior
    from trialsynth.results.base import FitResult

FloatArray = NDArray[np.float64]

#: Elements (simulated trials x components) handled per vectorised block. Small enough that
#: the three block-sized buffers of :func:`_block` stay in a core's cache (1.5 MB): the
#: report's updated-meta design took 2.5 s at this size against 3.9 s at 2 000 000 (Xeon,
#: 4 MB L2; 16 000: 2.8 s). Rows are computed independently, so any size gives the same bits.
BLOCK = 65_536
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


def _normal_sf(
    c: float | FloatArray, m: FloatArray, v: FloatArray, *, overwrite: bool = False
) -> FloatArray:
    """P(X > c) for X ~ N(m, v), with v = 0 read as a point mass (1/2 at c).

    ``overwrite``: where every v > 0, the result is written into ``m`` (the block-sized
    buffers of :func:`_block`), with the same numbers: x - 0.0 is x, to the bit.
    """
    if np.all(v > 0):
        if not overwrite:
            return special.ndtr((m - c) / np.sqrt(v))
        if np.any(c != 0.0):
            m -= c
        m /= np.sqrt(v)
        return special.ndtr(m, out=m)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (m - c) / np.sqrt(v)
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
        here = terms if terms is not None else _terms(comp, se_a[sl, None])
        out = _block(comp, y_a[sl], here, c, ess is not None)
        p[sl] = out[0]
        if ess is not None and mcse is not None:
            ess[sl], mcse[sl] = out[1], inflate * out[2]
    return Update(
        p.reshape(shape),
        None if ess is None else ess.reshape(shape),
        None if mcse is None else mcse.reshape(shape),
    )


def _block(
    comp: Components,
    y: FloatArray,
    terms: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    c: float,
    weights: bool,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Updated probability, Kish ESS and (uninflated) MCSE of one block of trials.

    The arithmetic is the plain formula's, operation for operation (so the numbers are
    the same to the bit), but done in place in three block-sized buffers: allocating a
    fresh buffer for every step was a third of the time.
    """
    lw0, inv_tot, gain, sd = terms
    d = np.subtract(y[:, None], comp.m)
    w = np.multiply(0.5, d)
    w *= d
    w *= inv_tot
    np.subtract(lw0, w, out=w)  # log weight
    w -= w.max(axis=1, keepdims=True)
    np.exp(w, out=w)
    sw = w.sum(axis=1)
    d *= gain
    d += comp.m  # mu's updated conditional mean
    ps = _normal_sf(c, d, sd * sd, overwrite=True)
    tmp = np.multiply(w, ps)
    p = tmp.sum(axis=1) / sw
    if not weights:
        return p, p, p
    np.multiply(w, w, out=tmp)
    ess = sw**2 / tmp.sum(axis=1)
    w /= sw[:, None]  # normalised weights
    ps -= p[:, None]
    np.square(ps, out=ps)
    np.multiply(w, w, out=tmp)
    tmp *= ps
    return p, ess, np.sqrt(tmp.sum(axis=1))


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
    lw0 = np.log(tot, out=tot)  # in place (same numbers): these are block-sized for vector se
    lw0 *= 0.5
    np.subtract(np.log(comp.weight), lw0, out=lw0)
    var_new *= comp.v
    var_new *= inv_tot
    return lw0, inv_tot, comp.v * inv_tot, np.sqrt(var_new, out=var_new)


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
