"""The marginals of the exact posterior: mixtures of normals, and the marginal of tau.

Given tau, mu (and each theta_i, and theta_new) is normal, so integrating tau out by
quadrature leaves a finite mixture of normals: cdf exact as weighted sums of normal cdfs,
quantiles by vectorised safeguarded Newton on the mixture cdf, shortest intervals by Newton
on the density-equality condition. The marginal of tau (:class:`TauMarginal`) reads the
quadrature of its :class:`~trialsynth.core.exact.ExactPosterior`. numpy/scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

if TYPE_CHECKING:
    from trialsynth.core.exact import ExactPosterior

FloatArray = NDArray[np.float64]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INTERVAL_KINDS = ("shortest", "central")
#: Tolerance on the tail exponent when deciding that a moment is infinite.
ALPHA_TOL = 1e-6


class MixtureBatch:
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
        """Cdf of each mixture at its row of ``x`` (K, Q)."""
        return special.ndtr(self._z(x)) @ self.w

    def sf(self, x: FloatArray) -> FloatArray:
        """Survival function (no cancellation in the upper tail)."""
        return special.ndtr(-self._z(x)) @ self.w

    def pdf(self, x: FloatArray) -> FloatArray:
        """Density of each mixture at its row of ``x``."""
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
        one-dimensional search of :func:`shortest_newton`.
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
            sub = MixtureBatch(self.w, self.means[rows], self.sds[rows])
            lo, hi = sub._shortest_1d(prob)
            a[rows], b[rows] = lo, hi
        return a, b

    def _shortest_1d(self, prob: float) -> tuple[FloatArray, FloatArray]:
        def ppf2(p: FloatArray, x0: FloatArray | None) -> FloatArray:
            return self.ppf(np.stack([p, p + prob], axis=1), x0)

        def dens(x: FloatArray) -> tuple[FloatArray, FloatArray]:
            _, f, df = self._cdf_pdf_dpdf(x)
            return f, df / f

        return shortest_newton(ppf2, dens, prob, self.mean.size, None, support=None)


def shortest_newton(
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


def as_out(x: ArrayLike, values: FloatArray) -> float | FloatArray:
    """``values`` shaped like the argument ``x`` (a float for a scalar)."""
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


class NormalMixtureMarginal(Marginal):
    """Marginal that is a finite mixture of normals (mu, theta_new, theta_i)."""

    def __init__(
        self, w: FloatArray, means: FloatArray, sds: FloatArray, *, finite_sd: bool = True
    ) -> None:
        self._b = MixtureBatch(w, means[None, :], sds[None, :])
        self.mean = float(self._b.mean[0])
        self.sd = float(self._b.sd[0]) if finite_sd else math.inf

    def _row(self, x: ArrayLike) -> FloatArray:
        return np.asarray(x, dtype=float).reshape(1, -1)

    def cdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(X <= x)`` (weighted sum of normal cdfs)."""
        return as_out(x, self._b.cdf(self._row(x)))

    def sf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(X > x)`` (weighted sum of normal survival functions)."""
        return as_out(x, self._b.sf(self._row(x)))

    def pdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior density (weighted sum of normal densities)."""
        return as_out(x, self._b.pdf(self._row(x)))

    def ppf(self, q: ArrayLike) -> float | FloatArray:
        """Posterior quantiles by safeguarded Newton (Halley) steps on the mixture cdf."""
        qa = self._row(q)
        if np.any((qa < 0) | (qa > 1) | np.isnan(qa)):
            raise ValueError("probabilities must be in [0, 1]")
        return as_out(q, self._b.ppf(qa))

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
        self.mean = mean if post._tail_alpha > 2.0 + ALPHA_TOL else math.inf
        self.sd = sd if post._tail_alpha > 3.0 + ALPHA_TOL else math.inf
        self.lower = post._a
        self.upper = post.tau_upper

    def pdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior density of tau (zero outside ``[lower, upper]``)."""
        xa = np.asarray(x, dtype=float).ravel()
        inside = (xa >= self.lower) & (xa <= self.upper)
        out = np.zeros_like(xa)
        if np.any(inside):
            out[inside] = np.exp(self._p._logpost(xa[inside]) - self._p._ell_ref) / self._p._zu
        return as_out(x, out)

    def cdf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(tau <= x)``."""
        xa = np.asarray(x, dtype=float).ravel()
        u = np.arcsinh((np.clip(xa, self.lower, self.upper) - self.lower) / self._p._c)
        return as_out(x, self._p._cdf_u(u))

    def sf(self, x: ArrayLike) -> float | FloatArray:
        """Posterior probability ``P(tau > x)`` (upper-tail quadrature, no cancellation)."""
        xa = np.asarray(x, dtype=float).ravel()
        u = np.arcsinh((np.clip(xa, self.lower, self.upper) - self.lower) / self._p._c)
        return as_out(x, self._p._sf_u(u))

    def ppf(self, q: ArrayLike) -> float | FloatArray:
        """Posterior quantiles of tau (safeguarded Newton within a quadrature panel)."""
        qa = np.asarray(q, dtype=float).ravel()
        return as_out(q, self._p._ppf_tau(qa))

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

        lo, hi = shortest_newton(ppf2, dens, prob, 1, None, support=(self.lower, self.upper))
        return float(lo[0]), float(hi[0])

    def __repr__(self) -> str:
        return f"<tau marginal: mean {self.mean:.6g}, sd {self.sd:.6g}, upper {self.upper:.6g}>"
