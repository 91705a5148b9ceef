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
