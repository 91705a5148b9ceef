"""The normal-normal model given tau: closed-form pieces of the exact posterior.

Given the heterogeneity tau, the pooled effect mu has a conjugate normal posterior and the
marginal likelihood ``p(y | tau)`` is closed form; :class:`NormalNormalData` computes both,
vectorised over tau. The helpers read what the exact engine needs of a tau prior
(:class:`TauPrior`: its log density, median and support). numpy/scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
_LOG_2PI = math.log(2.0 * math.pi)


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


class NormalNormalData:
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

    def draw_effects(self, tau: FloatArray, gen: np.random.Generator) -> dict[str, FloatArray]:
        """Draws of ``mu`` (n,) and ``theta`` (n, k) given draws of ``tau`` (n,).

        ``mu | tau, y`` then ``theta_i | mu, tau, y`` from their normal conditionals (in this
        order from ``gen``: the exact engine's draws depend on it).
        """
        n = tau.size
        cond = self.conditionals(tau)
        mu = self.centre + cond["mc"] + gen.standard_normal(n) / np.sqrt(cond["prec"])
        t2 = tau[:, None] ** 2
        b = t2 / (t2 + self.se2)
        th_mean = mu[:, None] + b * (self.y - mu[:, None])
        theta = th_mean + np.sqrt(b * self.se2) * gen.standard_normal((n, self.k))
        return {"mu": mu, "theta": theta}

    def loglik_on(self, key: tuple[float, float], tau: FloatArray) -> FloatArray:
        """Log marginal likelihood on an exploration grid, cached (prior independent)."""
        hit = self._grid_cache.get(key)
        if hit is not None and hit[0].shape == tau.shape and np.array_equal(hit[0], tau):
            return hit[1]
        ll = self.conditionals(tau)["loglik"]
        self._grid_cache[key] = (tau.copy(), ll)
        return ll


def prior_logpdf(prior: TauPrior, tau: FloatArray, lower: float = 0.0) -> FloatArray:
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


def prior_median(prior: TauPrior) -> float:
    """The prior's median if ``ppf(0.5)`` gives one (improper priors may not), else nan."""
    try:
        with np.errstate(all="ignore"):
            med = float(np.asarray(prior.ppf(np.array([0.5])), dtype=float).ravel()[0])
    except (ValueError, TypeError, ArithmeticError):
        return math.nan
    return med if math.isfinite(med) else math.nan


def prior_support(prior: TauPrior) -> tuple[float, float]:
    """The support ``(a, b)`` of a tau prior, checking it is usable."""
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


class BiasedData(NormalNormalData):
    """The normal-normal model with an additive bias on the weaker trials (Welton et al. 2009).

    ``y_i ~ N(theta_i + w_i beta_i, se_i^2)``, ``theta_i ~ N(mu, tau^2)``,
    ``beta_i ~ N(b, kappa^2)`` with ``w_i`` 1 for a weaker trial and 0 otherwise, the mean
    bias ``b ~ N(m_b, s_b^2)`` and ``kappa`` fixed. Given tau the pair ``(mu, b)`` is the
    coefficient vector of a Gaussian linear model with design ``[1, w]`` and residual
    variances ``se_i^2 + w_i kappa^2 + tau^2``: conjugate, so ``p(y | tau)`` and the
    conditionals of ``mu`` and every ``theta_i`` stay closed form and only tau is integrated
    numerically (the exact engine's quadrature, unchanged). Integrating ``b`` out makes the
    weaker trials correlated (a rank-one term ``s_b^2 w w^T`` in the covariance of ``y``);
    the 2 x 2 conjugate form computes the same Gaussian without forming it.
    ``theta_i`` is the trial's unbiased effect.
    """

    def __init__(
        self,
        y: ArrayLike,
        se: ArrayLike,
        mu_prior: tuple[float, float] | None,
        labels: Sequence[str] | None,
        *,
        weight: ArrayLike,
        bias_prior: tuple[float, float],
        kappa: float,
    ) -> None:
        super().__init__(y, se, mu_prior, labels)
        w = np.asarray(weight, dtype=float)
        if w.shape != self.y.shape or not np.all((w == 0) | (w == 1)):
            raise ValueError(f"weight must be 0/1 of length {self.k}, got {w!r}")
        m_b, s_b = (float(v) for v in bias_prior)
        if not (math.isfinite(m_b) and math.isfinite(s_b) and s_b > 0):
            raise ValueError(f"bias_prior needs a finite mean and sd > 0, got {bias_prior}")
        if not (math.isfinite(kappa) and kappa >= 0):
            raise ValueError(f"kappa must be finite and >= 0, got {kappa}")
        self.w = w
        self.kappa = float(kappa)
        self.bias_prior = (m_b, s_b)
        self.s2 = self.se2 + w * self.kappa**2  # sampling variance plus the bias's spread
        self.mb = m_b
        self.pb = 1.0 / s_b**2
        self.log_sb = math.log(s_b)

    def conditionals(self, tau: FloatArray, *, thetas: bool = False) -> dict[str, FloatArray]:
        """As :meth:`NormalNormalData.conditionals`, with ``(mu, b)`` conjugate given tau.

        Also returns ``bc`` (mean of ``b | tau, y``), ``b_var`` and ``mb_cov`` (its variance and
        covariance with ``mu``); ``prec`` is the precision of the marginal of ``mu``.
        """
        t2 = tau * tau
        v = self.s2 + t2[:, None]
        iv = 1.0 / v
        a00 = iv.sum(axis=1) + self.prec0
        a01 = iv @ self.w
        a11 = a01 + self.pb
        det = a00 * a11 - a01 * a01
        r0 = iv @ self.yc + self.prec0 * self.m0c
        r1 = iv @ (self.w * self.yc) + self.pb * self.mb
        mc = (a11 * r0 - a01 * r1) / det
        bc = (a00 * r1 - a01 * r0) / det
        resid = self.yc - mc[:, None] - bc[:, None] * self.w
        quad = (
            np.einsum("ij,ij->i", iv, resid * resid)
            + self.prec0 * (mc - self.m0c) ** 2
            + self.pb * (bc - self.mb) ** 2
        )
        logdet = np.log(v).sum(axis=1) + np.log(det)
        const = 2.0 * self.log_sb
        if self.mu_prior is None:
            const += (self.k - 1) * _LOG_2PI
        else:
            const += self.k * _LOG_2PI + 2.0 * self.log_s0
        out = {
            "loglik": -0.5 * (const + logdet + quad),
            "mc": mc,
            "prec": det / a11,
            "bc": bc,
            "b_var": a00 / det,
            "mb_cov": -a01 / det,
        }
        if thetas:
            shrink = t2[:, None] * iv  # towards y_i - w_i b
            one = 1.0 - shrink
            bw = shrink * self.w
            out["th_mean"] = one * mc[:, None] - bw * bc[:, None] + shrink * self.yc
            quad_var = (
                one * one * a11[:, None] + 2.0 * one * bw * a01[:, None] + bw * bw * a00[:, None]
            )
            out["th_var"] = shrink * self.s2 + quad_var / det[:, None]
        return out

    def draw_effects(self, tau: FloatArray, gen: np.random.Generator) -> dict[str, FloatArray]:
        """Draws of ``b``, ``mu``, ``theta`` and each trial's bias ``beta_i`` given tau draws.

        ``b | tau, y``, ``mu | b, tau, y``, ``theta_i | mu, b, tau, y`` (the bias of a weaker
        trial integrated out), then ``beta_i | theta_i, b, y_i`` (0 for adequate trials).
        """
        n = tau.size
        cond = self.conditionals(tau)
        b = cond["bc"] + np.sqrt(cond["b_var"]) * gen.standard_normal(n)
        slope = cond["mb_cov"] / cond["b_var"]
        mu_var = 1.0 / cond["prec"] - cond["mb_cov"] ** 2 / cond["b_var"]
        mu_c = cond["mc"] + slope * (b - cond["bc"])
        mu_c = mu_c + np.sqrt(np.maximum(mu_var, 0.0)) * gen.standard_normal(n)
        mu = self.centre + mu_c
        t2 = tau[:, None] ** 2
        shrink = t2 / (t2 + self.s2)
        target = self.y - self.w * b[:, None]
        theta = mu[:, None] + shrink * (target - mu[:, None])
        theta = theta + np.sqrt(shrink * self.s2) * gen.standard_normal((n, self.k))
        if self.kappa > 0:
            prec = 1.0 / self.kappa**2 + 1.0 / self.se2
            mean = (b[:, None] / self.kappa**2 + (self.y - theta) / self.se2) / prec
            beta = mean + gen.standard_normal((n, self.k)) / np.sqrt(prec)
        else:
            beta = np.repeat(b[:, None], self.k, axis=1)
        return {"mu": mu, "theta": theta, "bias_mean": b, "bias": beta * self.w}
