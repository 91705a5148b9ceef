"""Exact posterior of the normal-normal random-effects model (numpy/scipy only, no MCMC).

Model::

    y_i     ~ Normal(theta_i, se_i^2)          (se_i known)
    theta_i ~ Normal(mu, tau^2)
    mu      ~ Normal(m0, s0^2)  or flat (improper uniform)
    tau     ~ any prior with ``logpdf`` and ``ppf`` (support within [0, inf))

In the spirit of Roever & Friede's DIRECT algorithm (R package ``bayesmeta``):
given tau, mu is conjugate normal and the marginal likelihood ``p(y | tau)`` is closed
form, so the only numerical integral is one-dimensional, over tau. It is done with
adaptive composite Gauss-Legendre quadrature on the axis ``u = asinh((tau - a) / c)``
(linear near the lower support bound ``a``, logarithmic in the tail), truncated at the
posterior ``1 - epsilon / 10`` quantile. Each panel is bisected until the estimated
quadrature error (panel rule against the rule on its two halves) of every normalised
posterior functional watched (normalising constant, means and second moments of tau,
mu, theta_new and every theta_i, and their cdfs at probe points) sums to at most
``delta``. The result is a discrete mixture over the tau nodes:

* tau: density exact up to the normalising constant; cdf by Gauss-Legendre on the
  partial panel; quantiles by safeguarded Newton.
* mu, theta_new, theta_i: mixtures of normals (weights = quadrature weights times the
  posterior density of tau); cdf exact as weighted sums of normal cdfs; quantiles by
  vectorised safeguarded Newton on the mixture cdf.

Pure functions and classes: nothing here knows of PyMC, files or the CLI.

References
----------
Roever C, Friede T (2017). Discrete approximation of a mixture distribution via
restricted divergence. J Comput Graph Stat 26(1), 217-222.
Roever C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
J Stat Softw 93(6).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, Literal, Protocol, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_EPSILON",
    "DEFAULT_MU_PRIOR",
    "ExactPosterior",
    "Marginal",
    "TauMarginal",
    "TauPrior",
    "exact_posterior",
    "exact_posterior_sweep",
]

FloatArray = NDArray[np.float64]

#: Default quadrature tolerance: bound on the estimated quadrature error of posterior
#: probabilities and of means/sds in posterior-sd units (see :func:`exact_posterior`).
DEFAULT_DELTA = 1e-9
#: Default tail cut: posterior probability of tau left out above the upper grid end.
DEFAULT_EPSILON = 1e-10
#: Default prior on mu: Normal(0, 4^2) (a vague prior on the log odds ratio scale,
#: the one of Roever 2020, section 3.3). Pass ``mu_prior=None`` for a flat prior.
DEFAULT_MU_PRIOR: tuple[float, float] = (0.0, 4.0)

_GL_N = 8  # Gauss-Legendre nodes per panel
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_N)
_LEG_VANDER = np.polynomial.legendre.legvander(_GL_X, _GL_N - 1)  # P_l(x_j)
_LOG_2PI = math.log(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# cdf probes (mean + z sd) watched by the error control
_PROBE_Z = np.array([-2.0, 0.0, 2.0])
_MAX_PANELS = 4000
_TAU_MIN, _TAU_MAX = 1e-150, 1e150  # range of tau - a explored (tau^2, 1/tau^2 finite)
_ALPHA_TOL = 1e-6  # tolerance on the tail exponent when deciding that a moment is infinite
# crude posterior quantiles of tau at which the first quadrature panels are cut
_INIT_LEVELS = np.array([0.02, 0.15, 0.5, 0.85, 0.98, 0.999, 1 - 1e-5, 1 - 1e-7, 1 - 1e-9])
_INTERVAL_KINDS = ("shortest", "central")


class TauPrior(Protocol):
    """What a prior on the heterogeneity standard deviation tau must provide.

    A scipy frozen distribution (``scipy.stats.halfnorm(scale=0.5)``) satisfies it.
    ``logpdf`` is vectorised on the tau scale; ``ppf`` is only called at 0 and 1 to
    read the support (``ppf(1) = inf`` for an unbounded one; an improper prior may
    return ``inf`` there too). The density need not be normalised, but the evidence
    (:attr:`ExactPosterior.log_marginal_likelihood`) is only meaningful if it is.
    """

    def logpdf(self, x: Any) -> Any:
        """Log density at ``x`` (vectorised)."""
        ...

    def ppf(self, q: Any) -> Any:
        """Quantile function (only ``ppf(0)`` and ``ppf(1)`` are used)."""
        ...


# --------------------------------------------------------------------------------------
# Data and the closed-form pieces given tau
# --------------------------------------------------------------------------------------


class _Data:
    """Validated data, centred for numerical stability, and the mu prior."""

    def __init__(
        self,
        y: ArrayLike,
        se: ArrayLike,
        mu_prior: tuple[float, float] | None,
        labels: Sequence[str] | None,
    ) -> None:
        y_arr = np.asarray(y, dtype=float)
        se_arr = np.asarray(se, dtype=float)
        if y_arr.ndim != 1 or se_arr.ndim != 1:
            raise ValueError(
                f"y and se must be 1-D arrays, got shapes {y_arr.shape} and {se_arr.shape}"
            )
        if y_arr.shape != se_arr.shape:
            raise ValueError(
                f"y and se must have the same length, got {y_arr.size} and {se_arr.size}"
            )
        if y_arr.size < 1:
            raise ValueError("need at least one trial (k >= 1), got k = 0")
        if not np.all(np.isfinite(y_arr)):
            raise ValueError("y must be finite")
        if not np.all(np.isfinite(se_arr)) or np.any(se_arr <= 0):
            bad = np.flatnonzero(~(np.isfinite(se_arr) & (se_arr > 0)))
            raise ValueError(f"se must be finite and > 0; bad entries at positions {bad.tolist()}")
        self.k = int(y_arr.size)
        self.y = y_arr
        self.se = se_arr
        self.se2 = se_arr**2
        if labels is None:
            self.labels = [f"trial_{i + 1}" for i in range(self.k)]
        else:
            self.labels = [str(lab) for lab in labels]
            if len(self.labels) != self.k:
                raise ValueError(f"got {len(self.labels)} labels for {self.k} trials")
            if len(set(self.labels)) != self.k:
                raise ValueError("labels must be unique")
        # centre at the common-effect estimate: all quadratic forms are shift invariant
        w0 = 1.0 / self.se2
        self.centre = float(w0 @ y_arr / w0.sum())
        self.yc = y_arr - self.centre
        if mu_prior is None:
            self.mu_prior: tuple[float, float] | None = None
            self.prec0 = 0.0
            self.m0c = 0.0
            self.log_s0 = 0.0
        else:
            try:
                m0, s0 = (float(v) for v in mu_prior)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"mu_prior must be a (mean, sd) pair or None (flat), got {mu_prior!r}"
                ) from exc
            if not (math.isfinite(m0) and math.isfinite(s0) and s0 > 0):
                raise ValueError(
                    f"mu_prior needs a finite mean and a finite sd > 0, got {mu_prior}"
                )
            self.mu_prior = (m0, s0)
            self.prec0 = 1.0 / s0**2
            self.m0c = m0 - self.centre
            self.log_s0 = math.log(s0)
        self.scale = float(np.median(se_arr))
        self._grid_cache: dict[tuple[float, float], tuple[FloatArray, FloatArray]] = {}

    def conditionals(self, tau: FloatArray, *, thetas: bool = False) -> dict[str, FloatArray]:
        """Log marginal likelihood and conditional posteriors given each tau (1-D array).

        Returns ``loglik``, ``mc`` (centred mean of mu | tau, y), ``prec`` (its precision)
        and, if ``thetas``, ``th_mean`` (centred) and ``th_var`` of theta_i | tau, y.
        """
        t2 = tau * tau
        v = self.se2 + t2[:, None]
        w = 1.0 / v
        prec = w.sum(axis=1) + self.prec0
        mc = (w @ self.yc + self.prec0 * self.m0c) / prec
        resid = self.yc - mc[:, None]
        quad = np.einsum("ij,ij->i", w, resid * resid) + self.prec0 * (mc - self.m0c) ** 2
        logdet = np.log(v).sum(axis=1) + np.log(prec)
        if self.mu_prior is None:
            loglik = -0.5 * ((self.k - 1) * _LOG_2PI + logdet + quad)
        else:
            loglik = -0.5 * (self.k * _LOG_2PI + logdet + 2.0 * self.log_s0 + quad)
        out = {"loglik": loglik, "mc": mc, "prec": prec}
        if thetas:
            b = t2[:, None] * w  # shrinkage towards y_i
            out["th_mean"] = mc[:, None] + b * resid
            out["th_var"] = b * self.se2 + (self.se2 * w) ** 2 / prec[:, None]
        return out

    def loglik_on(self, key: tuple[float, float], tau: FloatArray) -> FloatArray:
        """Log marginal likelihood on an exploration grid, cached (prior independent)."""
        hit = self._grid_cache.get(key)
        if hit is not None and hit[0].shape == tau.shape and np.array_equal(hit[0], tau):
            return hit[1]
        ll = self.conditionals(tau)["loglik"]
        self._grid_cache[key] = (tau.copy(), ll)
        return ll


def _prior_logpdf(prior: TauPrior, tau: FloatArray, lower: float = 0.0) -> FloatArray:
    """Log density of the tau prior, checked.

    NaN exactly at the lower bound (a 0/0 limit such as ``1 / tau^2`` at 0) is read as
    -inf; NaN anywhere else is an error.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        lp = np.array(np.broadcast_to(prior.logpdf(tau), np.shape(tau)), dtype=float)
    nan = np.isnan(lp)
    if np.any(nan):
        at_bound = nan & (np.asarray(tau) <= lower)
        if np.any(nan & ~at_bound):
            bad = np.asarray(tau)[nan & ~at_bound].ravel()[:3]
            raise ValueError(f"tau prior logpdf returned NaN at tau = {bad.tolist()}")
        lp[at_bound] = -np.inf
    return lp


def _prior_median(prior: TauPrior) -> float:
    """The prior's median if ``ppf(0.5)`` gives one (improper priors may not), else nan."""
    try:
        with np.errstate(all="ignore"):
            med = float(np.asarray(prior.ppf(np.array([0.5])), dtype=float).ravel()[0])
    except (ValueError, TypeError, ArithmeticError):
        return math.nan
    return med if math.isfinite(med) else math.nan


def _prior_support(prior: TauPrior) -> tuple[float, float]:
    if not (callable(getattr(prior, "logpdf", None)) and callable(getattr(prior, "ppf", None))):
        raise TypeError(
            "tau_prior must provide vectorised logpdf(tau) and ppf(q) "
            f"(e.g. scipy.stats.halfnorm(scale=0.5)); got {type(prior).__name__}"
        )
    with np.errstate(all="ignore"):
        lo, hi = (float(v) for v in np.asarray(prior.ppf(np.array([0.0, 1.0])), dtype=float))
    if math.isnan(lo) or lo == math.inf:
        raise ValueError(f"tau prior: ppf(0) = {lo} is not a valid lower support bound")
    lo = max(lo, 0.0)  # tau >= 0: a prior with mass below 0 is truncated there
    if math.isnan(hi):
        hi = math.inf
    if not hi > lo:
        raise ValueError(f"tau prior support [{lo}, {hi}] is empty")
    return lo, hi


# --------------------------------------------------------------------------------------
# Normal mixtures (batch of K marginals sharing the tau weights)
# --------------------------------------------------------------------------------------


class _MixtureBatch:
    """K normal mixtures with shared weights ``w`` (N,), means/sds of shape (K, N)."""

    def __init__(self, w: FloatArray, means: FloatArray, sds: FloatArray) -> None:
        self.w = w
        self.means = means
        self.sds = sds
        self.mean = means @ w
        self.sd = np.sqrt(((means - self.mean[:, None]) ** 2 + sds**2) @ w)
        # brackets for quantiles: F(x) <= q below min_j(m_j + s_j z_q), >= q above max_j
        self._mlo = means.min(axis=1)
        self._mhi = means.max(axis=1)
        self._smax = sds.max(axis=1)

    def _z(self, x: FloatArray) -> FloatArray:
        # x: (K, Q) -> (K, Q, N)
        return (x[..., None] - self.means[:, None, :]) / self.sds[:, None, :]

    def cdf(self, x: FloatArray) -> FloatArray:
        return special.ndtr(self._z(x)) @ self.w

    def sf(self, x: FloatArray) -> FloatArray:
        return special.ndtr(-self._z(x)) @ self.w

    def pdf(self, x: FloatArray) -> FloatArray:
        z = self._z(x)
        return (np.exp(-0.5 * z * z) / self.sds[:, None, :]) @ self.w * _INV_SQRT_2PI

    def _cdf_pdf_dpdf(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        z = self._z(x)
        phi = np.exp(-0.5 * z * z) / self.sds[:, None, :]
        f = phi @ self.w * _INV_SQRT_2PI
        df = -((phi * z) / self.sds[:, None, :]) @ self.w * _INV_SQRT_2PI
        return special.ndtr(z) @ self.w, f, df

    def ppf(self, q: FloatArray, x0: FloatArray | None = None) -> FloatArray:
        """Quantiles ``q`` of shape (K, Q) by safeguarded Halley steps on the mixture cdf."""
        q = np.asarray(q, dtype=float)
        zq = special.ndtri(np.clip(q, 1e-300, 1.0 - 1e-16))
        lo = np.minimum(self._mlo[:, None] + self._smax[:, None] * zq, self._mlo[:, None])
        hi = np.maximum(self._mhi[:, None] + self._smax[:, None] * zq, self._mhi[:, None])
        lo = lo - 1e-12 * (np.abs(lo) + 1.0)
        hi = hi + 1e-12 * (np.abs(hi) + 1.0)
        x = self.mean[:, None] + self.sd[:, None] * zq if x0 is None else np.array(x0, dtype=float)
        x = np.clip(x, lo, hi)
        tol = 1e-14 * (np.abs(self.mean) + self.sd)[:, None]
        for it in range(200):
            cdf, f, df = self._cdf_pdf_dpdf(x)
            r = cdf - q
            lo = np.where(r < 0, x, lo)
            hi = np.where(r > 0, x, hi)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                newton = r / f
                dx = newton / (1.0 - 0.5 * newton * df / f)  # Halley
            dx = np.where(np.isfinite(dx), dx, newton)
            small = np.abs(newton) <= tol  # converged: accept the last step
            xn = x - dx
            bad = ~(small | ((xn > lo) & (xn < hi))) | (it >= 40)  # then pure bisection
            xn = np.where(bad, 0.5 * (lo + hi), xn)
            x = np.where(r == 0, x, xn)
            if np.all(small | (r == 0) | (hi - lo <= tol)):
                break
        else:  # pragma: no cover - safeguarded iteration always converges
            raise RuntimeError("mixture quantile did not converge")
        return np.where(q <= 0, -np.inf, np.where(q >= 1, np.inf, x))

    def shortest(
        self, prob: float, a0: FloatArray | None = None, b0: FloatArray | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Shortest intervals of mass ``prob`` for all K mixtures.

        Newton on the pair of conditions ``F(b) - F(a) = prob``, ``f(a) = f(b)`` from the
        central interval; rows that do not converge fast fall back to the safeguarded
        one-dimensional search of :func:`_shortest_newton`.
        """
        if a0 is None or b0 is None:
            qq = self.ppf(np.tile(np.array([(1 - prob) / 2, (1 + prob) / 2]), (self.mean.size, 1)))
            a0, b0 = qq[:, 0], qq[:, 1]
        a, b = np.array(a0, dtype=float), np.array(b0, dtype=float)
        tol = 1e-13 * (np.abs(self.mean) + self.sd)
        conv = np.zeros(a.size, dtype=bool)
        for _ in range(12):
            cdf, f, df = self._cdf_pdf_dpdf(np.stack([a, b], axis=1))
            g1 = cdf[:, 1] - cdf[:, 0] - prob
            with np.errstate(divide="ignore", invalid="ignore"):
                g2 = np.log(f[:, 1]) - np.log(f[:, 0])
                la, lb = df[:, 0] / f[:, 0], df[:, 1] / f[:, 1]
                det = f[:, 1] * la - f[:, 0] * lb
                da = (f[:, 1] * g2 - lb * g1) / det
                db = (f[:, 0] * g2 - la * g1) / det
            ok = np.isfinite(da) & np.isfinite(db) & (det > 0)
            step = np.maximum(np.abs(da), np.abs(db))
            damp = np.minimum(1.0, 0.5 * self.sd / np.where(ok & (step > 0), step, 1.0))
            a = np.where(ok, a + damp * da, a)
            b = np.where(ok, b + damp * db, b)
            conv = ok & (step <= tol)
            if np.all(conv):
                break
        if not np.all(conv):
            rows = np.flatnonzero(~conv)
            sub = _MixtureBatch(self.w, self.means[rows], self.sds[rows])
            lo, hi = sub._shortest_1d(prob)
            a[rows], b[rows] = lo, hi
        return a, b

    def _shortest_1d(self, prob: float) -> tuple[FloatArray, FloatArray]:
        def ppf2(p: FloatArray, x0: FloatArray | None) -> FloatArray:
            return self.ppf(np.stack([p, p + prob], axis=1), x0)

        def dens(x: FloatArray) -> tuple[FloatArray, FloatArray]:
            _, f, df = self._cdf_pdf_dpdf(x)
            return f, df / f

        return _shortest_newton(ppf2, dens, prob, self.mean.size, None, support=None)


def _shortest_newton(
    ppf2: Callable[[FloatArray, FloatArray | None], FloatArray],
    dens: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
    prob: float,
    k: int,
    x0: FloatArray | None,
    support: tuple[float, float] | None,
) -> tuple[FloatArray, FloatArray]:
    """Shortest interval ``[Q(p), Q(p + prob)]``: solve ``f(Q(p)) = f(Q(p + prob))`` in p.

    ``h(p) = log f(b) - log f(a)`` decreases in p for a unimodal density; Newton steps use
    ``h'(p) = (log f)'(b) / f(b) - (log f)'(a) / f(a)``, safeguarded by bisection on
    ``[0, 1 - prob]``. With a bounded ``support`` the boundary solutions are taken when
    the width grows away from a bound: ``p = 0`` if ``h(0) <= 0``, ``p = 1 - prob`` if
    ``h(1 - prob) >= 0`` (the narrower one if both).
    """
    pmax = 1.0 - prob
    edge = np.zeros(k, dtype=bool)
    x_edge = np.empty((k, 2))
    if support is not None:
        x_lo = ppf2(np.zeros(k), None)
        x_lo[:, 0] = support[0]
        x_hi = ppf2(np.full(k, pmax), None)
        x_hi[:, 1] = support[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            f_lo, f_hi = dens(x_lo)[0], dens(x_hi)[0]
            at_lo = np.log(f_lo[:, 1]) - np.log(f_lo[:, 0]) <= 0
            at_hi = np.log(f_hi[:, 1]) - np.log(f_hi[:, 0]) >= 0
        use_hi = at_hi & ~(at_lo & (np.diff(x_lo, axis=1) <= np.diff(x_hi, axis=1))[:, 0])
        x_edge = np.where(use_hi[:, None], x_hi, x_lo)
        edge = at_lo | at_hi
        if np.all(edge):
            return x_edge[:, 0], x_edge[:, 1]
    plo = np.zeros(k)
    phi = np.full(k, pmax)
    p = np.full(k, 0.5 * pmax)
    x = ppf2(p, x0)
    done = edge.copy()
    for _ in range(100):
        f, dlog = dens(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.log(f[:, 1]) - np.log(f[:, 0])
            dh = dlog[:, 1] / f[:, 1] - dlog[:, 0] / f[:, 0]
            pn = p - h / dh
        plo = np.where(h > 0, p, plo)
        phi = np.where(h < 0, p, phi)
        bad = ~((pn > plo) & (pn < phi) & (dh < 0))
        pn = np.where(bad, 0.5 * (plo + phi), pn)
        pn = np.where(done | (h == 0), p, pn)
        conv = done | (np.abs(pn - p) <= 1e-13) | (phi - plo <= 1e-13) | (h == 0)
        if np.all(conv):
            break
        # first-order prediction of the new endpoints as the warm start
        with np.errstate(divide="ignore", invalid="ignore"):
            warm = x + (pn - p)[:, None] / f
        x = ppf2(pn, np.where(np.isfinite(warm), warm, x))
        p = pn
    x = np.where(edge[:, None], x_edge, x)
    return x[:, 0], x[:, 1]


# --------------------------------------------------------------------------------------
# Marginals
# --------------------------------------------------------------------------------------


def _as_out(x: ArrayLike, values: FloatArray) -> float | FloatArray:
    return float(values.reshape(())) if np.ndim(x) == 0 else values.reshape(np.shape(x))


class Marginal:
    """A one-dimensional posterior marginal.

    Methods accept scalars or arrays and return floats or arrays of the same shape.

    Attributes
    ----------
    mean, sd : float
        Posterior mean and standard deviation.
    median : float
        Posterior median.
    """

    mean: float
    sd: float

    def cdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(X <= x)``."""
        raise NotImplementedError

    def sf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(X > x)`` (computed without cancellation)."""
        raise NotImplementedError

    def pdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior density at ``x``."""
        raise NotImplementedError

    def ppf(self, q: ArrayLike) -> float | FloatArray:
        """Posterior quantile function (inverse of :meth:`cdf`)."""
        raise NotImplementedError

    def _shortest(self, prob: float) -> tuple[float, float]:
        raise NotImplementedError

    @cached_property
    def median(self) -> float:
        """Posterior median."""
        return float(self.ppf(0.5))

    @property
    def var(self) -> float:
        """Posterior variance."""
        return self.sd**2

    def interval(
        self, prob: float = 0.95, kind: Literal["shortest", "central"] = "shortest"
    ) -> tuple[float, float]:
        """Credible interval of posterior mass ``prob``.

        Parameters
        ----------
        prob : float
            Posterior probability inside the interval, in (0, 1).
        kind : {"shortest", "central"}
            ``"shortest"``: the narrowest interval (highest density for a unimodal
            marginal; starts at the support bound when the density is highest there).
            ``"central"``: equal tail probabilities ``(1 - prob) / 2``.

        Returns
        -------
        tuple of float
            Lower and upper ends.
        """
        if not 0.0 < prob < 1.0:
            raise ValueError(f"prob must be in (0, 1), got {prob}")
        if kind == "central":
            lo, hi = np.asarray(self.ppf(np.array([(1 - prob) / 2, (1 + prob) / 2])))
            return float(lo), float(hi)
        if kind == "shortest":
            return self._shortest(prob)
        raise ValueError(f"unknown interval kind {kind!r}; valid kinds: {list(_INTERVAL_KINDS)}")


class _NormalMixtureMarginal(Marginal):
    """Marginal that is a finite mixture of normals (mu, theta_new, theta_i)."""

    def __init__(
        self, w: FloatArray, means: FloatArray, sds: FloatArray, *, finite_sd: bool = True
    ) -> None:
        self._b = _MixtureBatch(w, means[None, :], sds[None, :])
        self.mean = float(self._b.mean[0])
        self.sd = float(self._b.sd[0]) if finite_sd else math.inf

    def _row(self, x: ArrayLike) -> FloatArray:
        return np.asarray(x, dtype=float).reshape(1, -1)

    def cdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(X <= x)`` (weighted sum of normal cdfs)."""
        return _as_out(x, self._b.cdf(self._row(x)))

    def sf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(X > x)`` (weighted sum of normal survival functions)."""
        return _as_out(x, self._b.sf(self._row(x)))

    def pdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior density (weighted sum of normal densities)."""
        return _as_out(x, self._b.pdf(self._row(x)))

    def ppf(self, q: ArrayLike) -> float | FloatArray:
        """Posterior quantiles by safeguarded Newton (Halley) steps on the mixture cdf."""
        qa = self._row(q)
        if np.any((qa < 0) | (qa > 1) | np.isnan(qa)):
            raise ValueError("probabilities must be in [0, 1]")
        return _as_out(q, self._b.ppf(qa))

    def _shortest(self, prob: float) -> tuple[float, float]:
        lo, hi = self._b.shortest(prob)
        return float(lo[0]), float(hi[0])

    def __repr__(self) -> str:
        return f"<normal-mixture marginal: mean {self.mean:.6g}, sd {self.sd:.6g}>"


class TauMarginal(Marginal):
    """Posterior marginal of tau: exact density, cdf by Gauss-Legendre quadrature.

    The posterior is truncated at :attr:`upper` (its estimated ``1 - epsilon / 10``
    quantile) and renormalised there: ``cdf(upper) = 1``, ``pdf = 0`` above it.
    """

    def __init__(self, post: ExactPosterior) -> None:
        self._p = post
        mean = float(post.tau_weights @ post.tau_nodes)
        sd = float(np.sqrt(post.tau_weights @ (post.tau_nodes - mean) ** 2))
        # moments that do not exist (power-law tail) are reported as inf, not truncated
        self.mean = mean if post._tail_alpha > 2.0 + _ALPHA_TOL else math.inf
        self.sd = sd if post._tail_alpha > 3.0 + _ALPHA_TOL else math.inf
        self.lower = post._a
        self.upper = post.tau_upper

    def pdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior density of tau (zero outside ``[lower, upper]``)."""
        xa = np.asarray(x, dtype=float).ravel()
        inside = (xa >= self.lower) & (xa <= self.upper)
        out = np.zeros_like(xa)
        if np.any(inside):
            out[inside] = np.exp(self._p._logpost(xa[inside]) - self._p._ell_ref) / self._p._zu
        return _as_out(x, out)

    def cdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(tau <= x)``."""
        xa = np.asarray(x, dtype=float).ravel()
        u = np.arcsinh((np.clip(xa, self.lower, self.upper) - self.lower) / self._p._c)
        return _as_out(x, self._p._cdf_u(u))

    def sf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(tau > x)`` (upper-tail quadrature, no cancellation)."""
        xa = np.asarray(x, dtype=float).ravel()
        u = np.arcsinh((np.clip(xa, self.lower, self.upper) - self.lower) / self._p._c)
        return _as_out(x, self._p._sf_u(u))

    def ppf(self, q: ArrayLike) -> float | FloatArray:
        """Posterior quantiles of tau (safeguarded Newton within a quadrature panel)."""
        qa = np.asarray(q, dtype=float).ravel()
        return _as_out(q, self._p._ppf_tau(qa))

    def _pdf_dlogpdf(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Density and (central-difference) derivative of the log density, one evaluation."""
        h = 1e-6 * np.maximum(x - self.lower, 1e-3 * self._p._c)
        lo = np.maximum(x - h, self.lower)
        hi = np.minimum(x + h, self.upper)
        ell = self._p._logpost(np.concatenate([x, lo, hi]))
        n = x.size
        inside = (x >= self.lower) & (x <= self.upper)
        f = np.where(inside, np.exp(ell[:n] - self._p._ell_ref) / self._p._zu, 0.0)
        with np.errstate(invalid="ignore"):
            return f, (ell[2 * n :] - ell[n : 2 * n]) / (hi - lo)

    def _shortest(self, prob: float) -> tuple[float, float]:
        def ppf2(p: FloatArray, x0: FloatArray | None) -> FloatArray:
            return self._p._ppf_tau(np.array([p[0], p[0] + prob])).reshape(1, 2)

        def dens(x: FloatArray) -> tuple[FloatArray, FloatArray]:
            f, dlog = self._pdf_dlogpdf(x.ravel())
            return f.reshape(x.shape), dlog.reshape(x.shape)

        lo, hi = _shortest_newton(ppf2, dens, prob, 1, None, support=(self.lower, self.upper))
        return float(lo[0]), float(hi[0])

    def __repr__(self) -> str:
        return f"<tau marginal: mean {self.mean:.6g}, sd {self.sd:.6g}, upper {self.upper:.6g}>"


# --------------------------------------------------------------------------------------
# The posterior
# --------------------------------------------------------------------------------------


class ExactPosterior:
    """Exact posterior of the normal-normal random-effects model (see :func:`exact_posterior`).

    Attributes
    ----------
    y, se : ndarray
        The data.
    labels : list of str
        Trial labels (``theta(label)`` looks them up).
    tau_prior : TauPrior
        The tau prior used.
    mu_prior : tuple of float or None
        ``(mean, sd)`` of the normal prior on mu, or None for a flat prior.
    delta, epsilon : float
        Accuracy settings used.
    error_estimate : float
        Final estimated quadrature error (<= ``delta``).
    tau_upper : float
        Upper end of the tau grid (the posterior beyond it, about ``epsilon / 10``, is cut).
    tau_nodes, tau_weights : ndarray
        Quadrature nodes over tau and their normalised posterior weights (sum 1): the
        discrete mixture behind every marginal.
    """

    def __init__(
        self,
        data: _Data,
        tau_prior: TauPrior,
        *,
        delta: float = DEFAULT_DELTA,
        epsilon: float = DEFAULT_EPSILON,
    ) -> None:
        if not 0.0 < delta <= 0.1:
            raise ValueError(f"delta must be in (0, 0.1], got {delta}")
        if not 0.0 < epsilon <= 0.1:
            raise ValueError(f"epsilon must be in (0, 0.1], got {epsilon}")
        self._data = data
        self.tau_prior = tau_prior
        self.mu_prior = data.mu_prior
        self.delta = float(delta)
        self.epsilon = float(epsilon)
        self.y = data.y
        self.se = data.se
        self.labels = list(data.labels)
        self.k = data.k
        self._a, self._b = _prior_support(tau_prior)
        edges = self._explore()
        self._adapt(edges)

    def _tau_of_u(self, u: FloatArray) -> FloatArray:
        return np.minimum(self._a + self._c * np.sinh(u), self._b)

    # -- log posterior of tau (unnormalised, full normalised likelihood + prior) --------
    def _logpost(self, tau: FloatArray) -> FloatArray:
        tau = np.asarray(tau, dtype=float)
        ll = self._data.conditionals(tau.ravel())["loglik"].reshape(tau.shape)
        return _prior_logpdf(self.tau_prior, tau, self._a) + ll

    def _explore(self) -> FloatArray:
        """Locate the posterior of tau on a log grid; set scale, tail cut and first panels."""
        a, b = self._a, self._b
        s = self._data.scale
        width = b - a
        if math.isfinite(width):
            s = min(s, width)
        # log grid in r = tau - a around the data scale s, widened to the prior's median
        # when it has one, then extended downwards while the mass piles at its first point
        t_lo, t_hi = -35.0, 30.0
        r_med = _prior_median(self.tau_prior) - a
        if math.isfinite(r_med) and r_med > 0:
            t_lo = min(t_lo, math.log(r_med / s) - 35.0)
            t_hi = max(t_hi, math.log(r_med / s) + 30.0)
        t_floor = math.log(_TAU_MIN / s)  # tau^2 (and 1 / tau^2) must stay finite
        t_ceil = math.log(_TAU_MAX / s)
        t = np.arange(max(t_lo, t_floor), min(t_hi, t_ceil) + 1e-9, 0.5)
        if math.isfinite(width):
            t_end = math.log(width / s)
            t = np.append(t[t < t_end - 1e-9], t_end)
        r = s * np.exp(t)
        if math.isfinite(width):
            r[-1] = width  # exactly: a + s * exp(log(width / s)) may round past the bound
        e = _prior_logpdf(self.tau_prior, a + r) + self._data.loglik_on((a, s), a + r) + np.log(r)
        while int(np.argmax(e)) == 0 and t[0] > t_floor + 1e-9 and np.isfinite(e[0]):
            t_new = np.arange(max(t[0] - 60.0, t_floor), t[0] - 0.25, 0.5)
            r_new = s * np.exp(t_new)
            e_new = (
                _prior_logpdf(self.tau_prior, a + r_new)
                + self._data.conditionals(a + r_new)["loglik"]
                + np.log(r_new)
            )
            t, r, e = (
                np.concatenate([t_new, t]),
                np.concatenate([r_new, r]),
                np.concatenate([e_new, e]),
            )
        if not np.any(np.isfinite(e)):
            raise ValueError(
                "posterior density of tau is zero (or not finite) everywhere on "
                f"[{a:g} + {r[0]:.3g}, {a + r[-1]:.3g}]: check the tau prior"
            )
        if np.any(e == np.inf):
            raise ValueError("posterior density of tau is infinite on the exploration grid")
        # zoom in on where the mass is (log density within 45 of its maximum)
        keep = np.flatnonzero(e >= e.max() - 45.0)
        t2 = np.linspace(max(t[keep[0]] - 0.5, t[0]), min(t[keep[-1]] + 0.5, t[-1]), 241)
        r2 = np.minimum(s * np.exp(t2), width)
        e2 = _prior_logpdf(self.tau_prior, a + r2) + self._data.conditionals(a + r2)["loglik"]
        t = np.concatenate([t, t2])
        e = np.concatenate([e, e2 + np.log(r2)])
        order = np.argsort(t, kind="stable")
        t, e = t[order], e[order]
        uniq = np.concatenate([[True], np.diff(t) > 1e-12])
        t, e = t[uniq], e[uniq]
        emax = float(e.max())
        d = np.exp(e - emax)  # mass density on the t = log((tau - a) / s) axis
        # tails beyond the grid: power laws in tau - a, exponentials in t
        tail_lo = 0.0
        if np.isfinite(e[0]) and d[0] > 0:
            slope = (e[1] - e[0]) / (t[1] - t[0])
            if not slope > 1e-6:
                raise ValueError(
                    "posterior of tau is improper: its density is not integrable at the "
                    f"lower support bound tau = {a:g} (the tau prior's density is too "
                    "singular there); the posterior normalising constant is infinite"
                    + (
                        f" (or all its mass lies below tau = {a:g} + {r[0]:.3g})"
                        if t[0] <= t_floor + 1e-9
                        else ""
                    )
                )
            tail_lo = d[0] / slope
        tail_up = 0.0
        slope_up = -math.inf
        if not math.isfinite(width) and np.isfinite(e[-1]) and d[-1] > 0:
            slope_up = (e[-1] - e[-2]) / (t[-1] - t[-2])
            if not slope_up < -1e-6:
                raise ValueError(
                    "posterior of tau is improper: its density decays no faster than 1/tau "
                    "as tau -> inf, so the posterior normalising constant is infinite "
                    "(typical with an improper tau prior and a flat mu prior or few trials; "
                    "use a proper prior on tau or on mu)"
                )
            tail_up = d[-1] / -slope_up
        # posterior density of tau ~ tau^-alpha far out: E[tau] needs alpha > 2, E[tau^2] > 3
        self._tail_alpha = 1.0 - slope_up
        seg = 0.5 * (d[1:] + d[:-1]) * np.diff(t)
        cum_lo = tail_lo + np.concatenate([[0.0], np.cumsum(seg)])
        total = cum_lo[-1] + tail_up
        above = total - cum_lo  # mass above each grid point
        target = self.epsilon / 10.0 * total
        if tail_up > target:
            t_cut = t[-1] + math.log(tail_up / target) / -slope_up
            if t_cut > t_ceil:
                raise ValueError(
                    "posterior of tau is too heavy-tailed to integrate: its "
                    f"1 - {self.epsilon:g}/10 quantile is beyond {_TAU_MAX:g} (is the "
                    "posterior proper? use a proper prior on tau)"
                )
        elif not np.any(above > target):  # (almost) all mass below the grid's first point
            t_cut = t[0]
        else:
            j = int(np.flatnonzero(above > target)[-1])  # last point with enough mass above
            if j + 1 >= t.size - (1 if math.isfinite(width) else 0):
                t_cut = t[-1]  # the cut would fall in the last step: take the support bound
            else:  # log-linear interpolation of the upper mass
                la, lb = math.log(above[j]), math.log(max(above[j + 1], 1e-300))
                frac = (la - math.log(target)) / (la - lb) if la > lb else 1.0
                t_cut = t[j] + min(max(frac, 0.0), 1.0) * (t[j + 1] - t[j])
        frac_mass = cum_lo / total
        t_med = float(np.interp(0.5, frac_mass, t))
        self._c = float(s * math.exp(t_med))
        r_cut = s * math.exp(t_cut)
        if math.isfinite(width):
            r_cut = min(r_cut, width)
        self.tau_upper = float(a + r_cut)
        u_max = math.asinh(r_cut / self._c)
        # first panels: edges at crude posterior quantiles
        levels = _INIT_LEVELS[_INIT_LEVELS < 1.0 - self.epsilon / 10.0]
        t_q = np.interp(levels, frac_mass, t)
        u_q = np.arcsinh(s * np.exp(t_q) / self._c)
        edges = np.unique(np.concatenate([[0.0], u_q[(u_q > 0) & (u_q < u_max)], [u_max]]))
        keep_e = np.concatenate([[True], np.diff(edges) > 1e-3 * u_max])
        keep_e[-1] = True
        edges = edges[keep_e]
        if edges.size > 2 and edges[-1] - edges[-2] <= 1e-3 * u_max:
            edges = np.delete(edges, -2)
        return edges

    def _node_values(self, u: FloatArray) -> tuple[FloatArray, FloatArray, dict[str, FloatArray]]:
        tau = self._tau_of_u(u)
        cond = self._data.conditionals(tau, thetas=True)
        ell = _prior_logpdf(self.tau_prior, tau) + cond["loglik"]
        top = float(ell.max())
        if not math.isfinite(top):
            raise ValueError(
                "posterior density of tau is zero (or infinite) at every quadrature node: "
                "degenerate posterior"
            )
        self._ell_ref = top  # reference for exp(): the largest log density at the nodes
        dens = np.exp(ell - top) * self._c * np.cosh(u)
        return tau, dens, cond

    def _stack_conditionals(
        self, tau: FloatArray, cond: dict[str, FloatArray]
    ) -> tuple[FloatArray, FloatArray]:
        """Conditional means and variances (N, K) of mu, theta_new, theta_1..k (centred)."""
        vmu = 1.0 / cond["prec"]
        cm = np.column_stack([cond["mc"], cond["mc"], cond["th_mean"]])
        cv = np.column_stack([vmu, vmu + tau * tau, cond["th_var"]])
        return cm, cv

    def _adapt(self, edges: FloatArray) -> None:
        """Bisect panels until the summed estimated quadrature error is <= delta."""
        n = _GL_N
        err_total = math.inf
        for _ in range(60):
            lo, hi = edges[:-1], edges[1:]
            npan = lo.size
            half = 0.5 * (hi - lo)
            mid = 0.5 * (hi + lo)
            # rule A: n nodes per panel; rule B: n nodes on each half
            ua = mid[:, None] + half[:, None] * _GL_X
            wa = half[:, None] * _GL_W
            qlo = np.concatenate([lo, mid])
            qh = np.concatenate([half, half]) * 0.5
            ub = (qlo + qh)[:, None] + qh[:, None] * _GL_X
            wb = qh[:, None] * _GL_W
            u_all = np.concatenate([ua.ravel(), ub.ravel()])
            w_all = np.concatenate([wa.ravel(), wb.ravel()])
            tau, dens, cond = self._node_values(u_all)
            cm, cv = self._stack_conditionals(tau, cond)
            if not np.all(np.isfinite(dens)):
                raise ValueError("posterior density of tau is not finite at a quadrature node")
            wd = w_all * dens
            na = npan * n
            # moments: mass, tau, tau^2, E[X], E[X^2] for the K mixtures
            mom = np.column_stack([np.ones_like(tau), tau, tau * tau, cm, cm * cm + cv])
            ia = (wd[:na, None] * mom[:na]).reshape(npan, n, -1).sum(axis=1)
            ib_h = (wd[na:, None] * mom[na:]).reshape(2 * npan, n, -1).sum(axis=1)
            ib = ib_h[:npan] + ib_h[npan:]
            tot = ib.sum(axis=0)
            z = tot[0]
            if not (z > 0 and math.isfinite(z)):
                raise ValueError(
                    "posterior normalising constant of tau is not finite and positive "
                    f"(got {z!r} relative to the reference): improper or degenerate posterior"
                )
            ex = tot / z
            kk = cm.shape[1]
            mean_t, mean_x = ex[1], ex[3 : 3 + kk]
            sd_t = math.sqrt(max(ex[2] - mean_t**2, 0.0)) + 1e-300
            sd_x = np.sqrt(np.maximum(ex[3 + kk :] - mean_x**2, 0.0)) + 1e-300
            # cdf probes at mean + {-2, 0, 2} sd for each mixture
            xp = mean_x[None, :] + _PROBE_Z[:, None] * sd_x[None, :]  # (3, K)
            sdn = np.sqrt(cv)
            pr = special.ndtr((xp[None, :, :] - cm[:, None, :]) / sdn[:, None, :]).reshape(
                tau.size, -1
            )
            pa = (wd[:na, None] * pr[:na]).reshape(npan, n, -1).sum(axis=1)
            pb_h = (wd[na:, None] * pr[na:]).reshape(2 * npan, n, -1).sum(axis=1)
            pb = pb_h[:npan] + pb_h[npan:]
            ep = pb.sum(axis=0) / z
            # errors of normalised functionals, per panel
            d_mom = ia - ib
            d_pr = pa - pb
            d0 = d_mom[:, [0]]
            # errors in posterior-sd units; the floor 1e-6 |mean| keeps the target above
            # rounding for marginals far narrower than their location
            st_ = sd_t + 1e-6 * abs(mean_t)
            sx_ = sd_x + 1e-6 * np.abs(mean_x)
            scale = np.concatenate(
                [[st_, 2.0 * st_ * (st_ + abs(mean_t))], sx_, 2.0 * sx_ * (sx_ + np.abs(mean_x))]
            )
            e_mom = np.abs(d_mom[:, 1:] - ex[None, 1:] * d0) / (z * scale)
            e_pr = np.abs(d_pr - ep[None, :] * d0) / z
            err = np.maximum(np.abs(d0[:, 0]) / z, np.maximum(e_mom.max(axis=1), e_pr.max(axis=1)))
            err_total = float(err.sum())
            if err_total <= self.delta:
                break
            if npan >= _MAX_PANELS:
                raise RuntimeError(
                    f"tau quadrature did not reach delta={self.delta:g} with {npan} panels "
                    f"(estimated error {err_total:.3g}); the posterior of tau (mean "
                    f"{mean_t:.6g}, sd {max(sd_t - 1e-300, 0.0):.3g}) may be too narrow for "
                    "double precision (e.g. piled against the upper bound of a uniform "
                    "prior): pass a larger delta or revise the prior"
                )
            order = np.argsort(-err)
            remaining = err_total - np.cumsum(err[order])
            nsplit = int(np.argmax(remaining <= 0.25 * self.delta)) + 1
            split = order[:nsplit]
            edges = np.sort(np.concatenate([edges, mid[split]]))
        else:  # pragma: no cover
            raise RuntimeError("tau quadrature did not converge in 60 rounds")
        # final rule: A (n nodes per panel), whose error the estimate bounds
        za = ia[:, 0].sum()
        wn = (wd[:na] / za).astype(float)
        self._edges = edges
        self._cum = np.concatenate([[0.0], np.cumsum(ia[:, 0])]) / za
        self._cum[-1] = 1.0
        self._tail = np.concatenate([np.cumsum(ia[::-1, 0])[::-1], [0.0]]) / za  # mass above
        self._zu = float(za)
        self.error_estimate = err_total
        # Legendre series of tau's density (u axis) on each panel, for cheap cdf inversion
        dens_a = (dens[:na] / za).reshape(-1, n)
        self._leg = ((dens_a * _GL_W) @ _LEG_VANDER) * (np.arange(n) + 0.5)
        keepn = wn > 1e-300
        self.tau_nodes = tau[:na][keepn]
        self.tau_weights = wn[keepn]
        self._cm = cm[:na][keepn] + self._data.centre
        self._csd = np.sqrt(cv[:na][keepn])

    # -- tau cdf/ppf on the u axis ----------------------------------------------------
    def _cdf_pdf_exact(self, j: NDArray[np.intp], u: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Cdf (Gauss-Legendre on the partial panel j) and density at u, on the u axis."""
        lo = self._edges[j]
        half = 0.5 * (u - lo)
        uu = np.concatenate([lo[:, None] + half[:, None] * (_GL_X + 1.0), u[:, None]], axis=1)
        ell = self._logpost(self._tau_of_u(uu))
        val = np.exp(ell - self._ell_ref) * self._c * np.cosh(uu) / self._zu
        return self._cum[j] + (val[:, :-1] @ _GL_W) * half, val[:, -1]

    def _sf_u(self, u: FloatArray) -> FloatArray:
        """Upper-tail probability: Gauss-Legendre on [u, end of panel j] plus the panels above."""
        npan = self._edges.size - 1
        j = np.clip(np.searchsorted(self._edges, u, side="right") - 1, 0, npan - 1)
        hi = self._edges[j + 1]
        half = 0.5 * (hi - u)
        uu = u[:, None] + half[:, None] * (_GL_X + 1.0)
        ell = self._logpost(self._tau_of_u(uu))
        val = np.exp(ell - self._ell_ref) * self._c * np.cosh(uu) / self._zu
        return np.clip(self._tail[j + 1] + (val @ _GL_W) * half, 0.0, 1.0)

    def _cdf_u(self, u: FloatArray) -> FloatArray:
        npan = self._edges.size - 1
        j = np.clip(np.searchsorted(self._edges, u, side="right") - 1, 0, npan - 1)
        return np.clip(self._cdf_pdf_exact(j, u)[0], 0.0, 1.0)

    def _cdf_pdf_approx(self, j: NDArray[np.intp], s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Cdf and density (u axis) from the panel's Legendre interpolant, local s in [-1, 1]."""
        n = _GL_N
        v = np.polynomial.legendre.legvander(s, n)  # P_0..P_n at s
        integ = np.empty((s.size, n))
        integ[:, 0] = s + 1.0
        integ[:, 1:] = (v[:, 2:] - v[:, : n - 1]) / (2.0 * np.arange(1, n) + 1.0)
        c = self._leg[j]
        half = 0.5 * (self._edges[j + 1] - self._edges[j])
        return (
            self._cum[j] + half * np.einsum("ql,ql->q", c, integ),
            np.einsum("ql,ql->q", c, v[:, :n]),
        )

    def _ppf_tau(self, q: FloatArray) -> FloatArray:
        if np.any((q < 0) | (q > 1) | np.isnan(q)):
            raise ValueError("probabilities must be in [0, 1]")
        npan = self._edges.size - 1
        j = np.clip(np.searchsorted(self._cum, q, side="right") - 1, 0, npan - 1)
        ulo = self._edges[j].copy()
        uhi = self._edges[j + 1].copy()
        cdf_tab, u_tab = self._tau_table
        u = np.clip(np.interp(q, cdf_tab, u_tab), ulo, uhi)
        # a few Newton steps on the interpolant (cheap), then exact safeguarded Newton
        mid, half = 0.5 * (ulo + uhi), 0.5 * (uhi - ulo)
        sl = (u - mid) / half
        for _ in range(3):
            ca, fa = self._cdf_pdf_approx(j, sl)
            with np.errstate(divide="ignore", invalid="ignore"):
                sn = sl - (ca - q) / (fa * half)
            sl = np.where(np.isfinite(sn), np.clip(sn, -1.0, 1.0), sl)
        u = np.clip(mid + half * sl, ulo, uhi)
        tol = 1e-15 * (self._edges[-1] + 1.0)
        ends = (q <= 0) | (q >= 1)
        for it in range(200):
            cdf, f = self._cdf_pdf_exact(j, u)
            r = np.where(ends, 0.0, cdf - q)
            ulo = np.where(r < 0, u, ulo)
            uhi = np.where(r > 0, u, uhi)
            with np.errstate(divide="ignore", invalid="ignore"):
                du = r / f
            small = np.abs(du) <= tol  # converged: accept the last Newton step
            un = u - du
            bad = ~(small | ((un > ulo) & (un < uhi))) | (it >= 40)  # then pure bisection
            un = np.where(bad, 0.5 * (ulo + uhi), un)
            u = np.where(r == 0, u, un)
            if np.all(small | (r == 0) | (uhi - ulo <= tol)):
                break
        else:  # pragma: no cover
            raise RuntimeError("tau quantile did not converge")
        out = self._tau_of_u(u)
        out = np.where(q <= 0, self._a, out)
        return np.where(q >= 1, self.tau_upper, out)

    # -- marginals ----------------------------------------------------------------------
    @cached_property
    def _batch(self) -> _MixtureBatch:
        """All K = k + 2 normal-mixture marginals: mu, theta_new, theta_1..k."""
        return _MixtureBatch(self.tau_weights, self._cm.T.copy(), self._csd.T.copy())

    def _mixture(self, col: int) -> _NormalMixtureMarginal:
        return _NormalMixtureMarginal(
            self.tau_weights, self._cm[:, col], self._csd[:, col], finite_sd=self._finite_sd[col]
        )

    @cached_property
    def _finite_sd(self) -> NDArray[np.bool_]:
        """Whether the posterior sd of mu, theta_new, theta_i exists (tail of tau).

        Var(theta_new) contains E[tau^2]; with a flat mu prior Var(mu | tau) grows like
        tau^2 / k. Both need tau's posterior tail ~ tau^-alpha with alpha > 3.
        """
        second = self._tail_alpha > 3.0 + _ALPHA_TOL
        out = np.ones(self.k + 2, dtype=bool)
        out[1] = second
        if self.mu_prior is None:
            out[0] = second
        return out

    @cached_property
    def tau(self) -> TauMarginal:
        """Posterior marginal of the heterogeneity standard deviation tau."""
        return TauMarginal(self)

    @cached_property
    def mu(self) -> Marginal:
        """Posterior marginal of the overall mean effect mu."""
        return self._mixture(0)

    @cached_property
    def theta_new(self) -> Marginal:
        """Posterior predictive marginal of a new trial's effect theta_new ~ N(mu, tau^2)."""
        return self._mixture(1)

    def _theta_index(self, i: int | str) -> int:
        if isinstance(i, str):
            try:
                return self.labels.index(i)
            except ValueError:
                raise KeyError(f"unknown trial label {i!r}; valid labels: {self.labels}") from None
        idx = int(i)
        if not -self.k <= idx < self.k:
            raise IndexError(f"trial index {i} out of range for k = {self.k}")
        return idx % self.k

    def theta(self, i: int | str) -> Marginal:
        """Posterior marginal of trial ``i``'s effect (shrinkage estimate).

        Parameters
        ----------
        i : int or str
            Position (0-based, negative allowed) or label.
        """
        return self._mixture(2 + self._theta_index(i))

    def prob_mu_gt(self, c: float = 0.0) -> float:
        """Posterior probability ``P(mu > c)``."""
        return float(self.mu.sf(c))

    def prob_theta_new_gt(self, c: float = 0.0) -> float:
        """Posterior predictive probability ``P(theta_new > c)``."""
        return float(self.theta_new.sf(c))

    @property
    def log_marginal_likelihood(self) -> float:
        """Log evidence ``log p(y)`` (needs a proper mu prior and a normalised tau prior).

        Raises
        ------
        ValueError
            With a flat mu prior (the evidence is then defined only up to a constant).
        """
        if self.mu_prior is None:
            raise ValueError(
                "log marginal likelihood undefined with a flat (improper) mu prior; "
                "pass mu_prior=(mean, sd)"
            )
        return float(self._ell_ref + math.log(self._zu))

    # -- summaries and draws ------------------------------------------------------------
    def summary(self) -> dict[str, dict[str, float]]:
        """Posterior summaries of mu, tau, theta_new and every theta_i.

        Returns
        -------
        dict
            Keys ``"mu"``, ``"tau"``, ``"theta_new"`` and ``"theta[<label>]"``; each a
            dict with ``mean``, ``sd``, ``median``, ``q025``, ``q975`` (central 95%
            interval) and ``shortest_lower``, ``shortest_upper`` (shortest 95% interval).
        """
        b = self._batch
        kk = b.mean.size
        q = b.ppf(np.tile(np.array([0.5, 0.025, 0.975]), (kk, 1)))
        slo, shi = b.shortest(0.95, q[:, 1], q[:, 2])
        tq = np.asarray(self.tau.ppf(np.array([0.5, 0.025, 0.975])))
        tlo, thi = self.tau.interval(0.95)

        def entry(mean: float, sd: float, qq: FloatArray, lo: float, hi: float) -> dict[str, float]:
            return {
                "mean": float(mean),
                "sd": float(sd),
                "median": float(qq[0]),
                "q025": float(qq[1]),
                "q975": float(qq[2]),
                "shortest_lower": float(lo),
                "shortest_upper": float(hi),
            }

        out = {
            "mu": entry(b.mean[0], self.mu.sd, q[0], slo[0], shi[0]),
            "tau": entry(self.tau.mean, self.tau.sd, tq, tlo, thi),
            "theta_new": entry(b.mean[1], self.theta_new.sd, q[1], slo[1], shi[1]),
        }
        for i, lab in enumerate(self.labels, start=2):
            out[f"theta[{lab}]"] = entry(b.mean[i], b.sd[i], q[i], slo[i], shi[i])
        return out

    @cached_property
    def _tau_table(self) -> tuple[FloatArray, FloatArray]:
        """Discretised tau marginal: cdf on 32 sub-intervals of every panel (u axis).

        From the Legendre interpolant of the density on each panel (no new evaluations).
        """
        npan = self._edges.size - 1
        sub = np.linspace(-1.0, 1.0, 33)[:-1]
        j = np.repeat(np.arange(npan), sub.size)
        sl = np.tile(sub, npan)
        mid = 0.5 * (self._edges[:-1] + self._edges[1:])
        half = 0.5 * (self._edges[1:] - self._edges[:-1])
        u = np.concatenate([mid[j] + half[j] * sl, [self._edges[-1]]])
        cdf = np.concatenate([np.clip(self._cdf_pdf_approx(j, sl)[0], 0.0, 1.0), [1.0]])
        return np.maximum.accumulate(cdf), u

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> dict[str, FloatArray]:
        """Independent joint posterior draws.

        tau by inverse cdf of its discretised marginal (cdf tabulated on a fine grid,
        linearly interpolated), then ``mu | tau``, ``theta_i | mu, tau`` and
        ``theta_new | mu, tau`` from their normal conditionals.

        Parameters
        ----------
        n : int
            Number of draws.
        rng : numpy Generator, int or None
            Random generator or seed.

        Returns
        -------
        dict
            ``tau``, ``mu``, ``theta_new`` of shape (n,) and ``theta`` of shape (n, k).
        """
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        gen = np.random.default_rng(rng)
        cdf, u_grid = self._tau_table
        tau = self._tau_of_u(np.interp(gen.random(n), cdf, u_grid))
        cond = self._data.conditionals(tau)
        mu = self._data.centre + cond["mc"] + gen.standard_normal(n) / np.sqrt(cond["prec"])
        t2 = tau[:, None] ** 2
        b = t2 / (t2 + self._data.se2)
        th_mean = mu[:, None] + b * (self.y - mu[:, None])
        theta = th_mean + np.sqrt(b * self._data.se2) * gen.standard_normal((n, self.k))
        theta_new = mu + tau * gen.standard_normal(n)
        return {"tau": tau, "mu": mu, "theta": theta, "theta_new": theta_new}

    @property
    def n_nodes(self) -> int:
        """Number of quadrature nodes over tau (mixture components)."""
        return int(self.tau_nodes.size)

    def __repr__(self) -> str:
        mu = "flat" if self.mu_prior is None else f"N({self.mu_prior[0]:g}, {self.mu_prior[1]:g}^2)"
        return (
            f"<ExactPosterior k={self.k}, mu prior {mu}, tau prior {self.tau_prior!r}, "
            f"{self.n_nodes} nodes, error estimate {self.error_estimate:.2g}>"
        )


# --------------------------------------------------------------------------------------
# Public constructors
# --------------------------------------------------------------------------------------


def exact_posterior(
    y: ArrayLike,
    se: ArrayLike,
    tau_prior: TauPrior,
    mu_prior: tuple[float, float] | None = DEFAULT_MU_PRIOR,
    *,
    labels: Sequence[str] | None = None,
    delta: float = DEFAULT_DELTA,
    epsilon: float = DEFAULT_EPSILON,
) -> ExactPosterior:
    """Exact posterior of the normal-normal random-effects meta-analysis model.

    Parameters
    ----------
    y : array_like
        Per-trial effect estimates (e.g. log odds ratios), length k >= 1.
    se : array_like
        Their standard errors (> 0), treated as known.
    tau_prior : TauPrior
        Prior on tau with vectorised ``logpdf(tau)`` and ``ppf(q)``, e.g.
        ``scipy.stats.halfnorm(scale=0.5)``; support ``[ppf(0), ppf(1)]`` intersected with
        ``[0, inf)``. Heavy-tailed and improper priors are accepted as long as the
        posterior is proper.
    mu_prior : (float, float) or None
        ``(mean, sd)`` of a normal prior on mu, or None for a flat (improper) prior.
        The default ``(0, 4)`` is vague on the log odds ratio scale; choose it for other
        effect measures.
    labels : sequence of str, optional
        Unique trial labels (default ``trial_1`` ... ``trial_k``).
    delta : float
        Quadrature tolerance. Panels over tau are bisected until the summed estimated
        error (each panel's Gauss-Legendre rule against the rule on its halves) of the
        normalising constant (relative), of every posterior mean and sd (in posterior-sd
        units; tau, mu, theta_new, each theta_i) and of their cdfs at the mean and
        mean +- 2 sd is at most ``delta``. Quantiles then err by about
        ``delta / density``. The default 1e-9 gives about 1e-9 on the crins2014 numbers.
    epsilon : float
        Tail cut: tau's grid ends at its estimated posterior ``1 - epsilon / 10``
        quantile and the posterior is renormalised below it, which changes any posterior
        probability by less than about ``epsilon / 10`` (total variation); means of
        heavy-tailed marginals can move by more.

    Returns
    -------
    ExactPosterior
        With marginals ``.mu``, ``.tau``, ``.theta_new``, ``.theta(i)``, ``.summary()``,
        ``.sample(n, rng)`` and ``.log_marginal_likelihood``.

    Raises
    ------
    ValueError
        For se <= 0, mismatched lengths, k < 1, a bad mu prior or accuracy setting, and an
        improper posterior (normalising constant not finite).
    TypeError
        If ``tau_prior`` lacks ``logpdf`` or ``ppf``.

    Notes
    -----
    The accuracy is an estimate (standard adaptive-quadrature error control) plus the
    ``epsilon`` truncation, not a proof: a pathological prior (say with a jump inside
    the support) may need a smaller ``delta``.
    """
    return ExactPosterior(_Data(y, se, mu_prior, labels), tau_prior, delta=delta, epsilon=epsilon)


@overload
def exact_posterior_sweep(
    y: ArrayLike,
    se: ArrayLike,
    tau_priors: Mapping[str, TauPrior],
    mu_prior: tuple[float, float] | None = ...,
    *,
    labels: Sequence[str] | None = ...,
    delta: float = ...,
    epsilon: float = ...,
) -> dict[str, ExactPosterior]: ...


@overload
def exact_posterior_sweep(
    y: ArrayLike,
    se: ArrayLike,
    tau_priors: Sequence[TauPrior],
    mu_prior: tuple[float, float] | None = ...,
    *,
    labels: Sequence[str] | None = ...,
    delta: float = ...,
    epsilon: float = ...,
) -> list[ExactPosterior]: ...


def exact_posterior_sweep(
    y: ArrayLike,
    se: ArrayLike,
    tau_priors: Mapping[str, TauPrior] | Sequence[TauPrior],
    mu_prior: tuple[float, float] | None = DEFAULT_MU_PRIOR,
    *,
    labels: Sequence[str] | None = None,
    delta: float = DEFAULT_DELTA,
    epsilon: float = DEFAULT_EPSILON,
) -> dict[str, ExactPosterior] | list[ExactPosterior]:
    """Exact posteriors of the same data under several tau priors (prior sensitivity).

    The data are validated and centred once, and the log marginal likelihood on the
    exploration grid (prior independent) is shared; each prior then gets its own
    adaptive quadrature, so every fit has the accuracy of :func:`exact_posterior`.

    Parameters
    ----------
    y, se, mu_prior, labels, delta, epsilon
        As in :func:`exact_posterior`.
    tau_priors : mapping of str to TauPrior, or sequence of TauPrior
        The priors to sweep.

    Returns
    -------
    dict or list of ExactPosterior
        Keyed like ``tau_priors`` (a dict for a mapping, a list for a sequence).
    """
    data = _Data(y, se, mu_prior, labels)
    if isinstance(tau_priors, Mapping):
        return {
            name: ExactPosterior(data, prior, delta=delta, epsilon=epsilon)
            for name, prior in tau_priors.items()
        }
    return [ExactPosterior(data, prior, delta=delta, epsilon=epsilon) for prior in tau_priors]
