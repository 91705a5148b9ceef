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
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trialsynth.core.marginals import (
    ALPHA_TOL,
    Marginal,
    MixtureBatch,
    NormalMixtureMarginal,
    TauMarginal,
)
from trialsynth.core.normal_normal import (
    NormalNormalData,
    TauPrior,
    prior_logpdf,
    prior_median,
    prior_support,
)
from trialsynth.core.panel_rules import GL_N, GL_W, GL_X, LEG_VANDER, panel_errors, two_rules

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

_LOG_2PI = math.log(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MAX_PANELS = 4000
_TAU_MIN, _TAU_MAX = 1e-150, 1e150  # range of tau - a explored (tau^2, 1/tau^2 finite)
# crude posterior quantiles of tau at which the first quadrature panels are cut
_INIT_LEVELS = np.array([0.02, 0.15, 0.5, 0.85, 0.98, 0.999, 1 - 1e-5, 1 - 1e-7, 1 - 1e-9])
_INTERVAL_KINDS = ("shortest", "central")


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
        data: NormalNormalData,
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
        self._a, self._b = prior_support(tau_prior)
        edges = self._explore()
        self._adapt(edges)

    def _tau_of_u(self, u: FloatArray) -> FloatArray:
        return np.minimum(self._a + self._c * np.sinh(u), self._b)

    # -- log posterior of tau (unnormalised, full normalised likelihood + prior) --------
    def _logpost(self, tau: FloatArray) -> FloatArray:
        tau = np.asarray(tau, dtype=float)
        ll = self._data.conditionals(tau.ravel())["loglik"].reshape(tau.shape)
        return prior_logpdf(self.tau_prior, tau, self._a) + ll

    def _explore(self) -> FloatArray:
        """Locate the posterior of tau on a log grid; set scale, tail cut and first panels."""
        s, width, t, e, r0, (t_floor, t_ceil) = self._log_grid()
        d = np.exp(e - float(e.max()))  # mass density on the t = log((tau - a) / s) axis
        tail_lo, tail_up, slope_up = self._grid_tails(t, e, d, width, t_floor, r0)
        # posterior density of tau ~ tau^-alpha far out: E[tau] needs alpha > 2, E[tau^2] > 3
        self._tail_alpha = 1.0 - slope_up
        seg = 0.5 * (d[1:] + d[:-1]) * np.diff(t)
        cum_lo = tail_lo + np.concatenate([[0.0], np.cumsum(seg)])
        total = cum_lo[-1] + tail_up
        t_cut = self._tail_cut(t, total - cum_lo, total, tail_up, slope_up, width, t_ceil)
        return self._first_panels(t, cum_lo / total, t_cut, s, width)

    def _log_grid(
        self,
    ) -> tuple[float, float, FloatArray, FloatArray, float, tuple[float, float]]:
        """The log posterior mass density of tau on a log grid around where its mass is.

        Returns the scale s, the support width, the grid t = log((tau - a) / s), the log
        density e on it, the first grid point's tau - a, and the grid's floor and ceiling.
        """
        a, b = self._a, self._b
        s = self._data.scale
        width = b - a
        if math.isfinite(width):
            s = min(s, width)
        # log grid in r = tau - a around the data scale s, widened to the prior's median
        # when it has one, then extended downwards while the mass piles at its first point
        t_lo, t_hi = -35.0, 30.0
        r_med = prior_median(self.tau_prior) - a
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
        e = prior_logpdf(self.tau_prior, a + r) + self._data.loglik_on((a, s), a + r) + np.log(r)
        while int(np.argmax(e)) == 0 and t[0] > t_floor + 1e-9 and np.isfinite(e[0]):
            t_new = np.arange(max(t[0] - 60.0, t_floor), t[0] - 0.25, 0.5)
            r_new = s * np.exp(t_new)
            e_new = (
                prior_logpdf(self.tau_prior, a + r_new)
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
        e2 = prior_logpdf(self.tau_prior, a + r2) + self._data.conditionals(a + r2)["loglik"]
        t = np.concatenate([t, t2])
        e = np.concatenate([e, e2 + np.log(r2)])
        order = np.argsort(t, kind="stable")
        t, e = t[order], e[order]
        uniq = np.concatenate([[True], np.diff(t) > 1e-12])
        return s, width, t[uniq], e[uniq], float(r[0]), (t_floor, t_ceil)

    def _grid_tails(
        self,
        t: FloatArray,
        e: FloatArray,
        d: FloatArray,
        width: float,
        t_floor: float,
        r0: float,
    ) -> tuple[float, float, float]:
        """Mass beyond the grid and the upper log slope; an improper posterior is an error.

        Beyond the grid the density is a power law in tau - a, an exponential in t.
        """
        a = self._a
        tail_lo = 0.0
        if np.isfinite(e[0]) and d[0] > 0:
            slope = (e[1] - e[0]) / (t[1] - t[0])
            if not slope > 1e-6:
                raise ValueError(
                    "posterior of tau is improper: its density is not integrable at the "
                    f"lower support bound tau = {a:g} (the tau prior's density is too "
                    "singular there); the posterior normalising constant is infinite"
                    + (
                        f" (or all its mass lies below tau = {a:g} + {r0:.3g})"
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
        return tail_lo, tail_up, slope_up

    def _tail_cut(
        self,
        t: FloatArray,
        above: FloatArray,
        total: float,
        tail_up: float,
        slope_up: float,
        width: float,
        t_ceil: float,
    ) -> float:
        """Where on the t grid the mass above falls to epsilon / 10 of the total."""
        target = self.epsilon / 10.0 * total
        if tail_up > target:
            t_cut = t[-1] + math.log(tail_up / target) / -slope_up
            if t_cut > t_ceil:
                raise ValueError(
                    "posterior of tau is too heavy-tailed to integrate: its "
                    f"1 - {self.epsilon:g}/10 quantile is beyond {_TAU_MAX:g} (is the "
                    "posterior proper? use a proper prior on tau)"
                )
            return t_cut
        if not np.any(above > target):  # (almost) all mass below the grid's first point
            return t[0]
        j = int(np.flatnonzero(above > target)[-1])  # last point with enough mass above
        if j + 1 >= t.size - (1 if math.isfinite(width) else 0):
            return t[-1]  # the cut would fall in the last step: take the support bound
        la, lb = math.log(above[j]), math.log(max(above[j + 1], 1e-300))  # log-linear
        frac = (la - math.log(target)) / (la - lb) if la > lb else 1.0
        return t[j] + min(max(frac, 0.0), 1.0) * (t[j + 1] - t[j])

    def _first_panels(
        self, t: FloatArray, frac_mass: FloatArray, t_cut: float, s: float, width: float
    ) -> FloatArray:
        """Set the scale and the upper cut; the first panel edges at crude quantiles."""
        t_med = float(np.interp(0.5, frac_mass, t))
        self._c = float(s * math.exp(t_med))
        r_cut = s * math.exp(t_cut)
        if math.isfinite(width):
            r_cut = min(r_cut, width)
        self.tau_upper = float(self._a + r_cut)
        u_max = math.asinh(r_cut / self._c)
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
        ell = prior_logpdf(self.tau_prior, tau) + cond["loglik"]
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
        err_total = math.inf
        for _ in range(60):
            u_all, w_all, mid = two_rules(edges)
            npan = mid.size
            tau, dens, cond = self._node_values(u_all)
            cm, cv = self._stack_conditionals(tau, cond)
            if not np.all(np.isfinite(dens)):
                raise ValueError("posterior density of tau is not finite at a quadrature node")
            wd = w_all * dens
            err, ia, mean_t, sd_t = panel_errors(wd, tau, cm, cv, npan)
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
        self._keep_rule_a(edges, ia, wd, dens, tau, cm, cv)
        self.error_estimate = err_total

    def _keep_rule_a(
        self,
        edges: FloatArray,
        ia: FloatArray,
        wd: FloatArray,
        dens: FloatArray,
        tau: FloatArray,
        cm: FloatArray,
        cv: FloatArray,
    ) -> None:
        """Keep the final rule A (n nodes per panel), whose error the estimate bounds."""
        n = GL_N
        na = ia.shape[0] * n
        za = ia[:, 0].sum()
        wn = (wd[:na] / za).astype(float)
        self._edges = edges
        self._cum = np.concatenate([[0.0], np.cumsum(ia[:, 0])]) / za
        self._cum[-1] = 1.0
        self._tail = np.concatenate([np.cumsum(ia[::-1, 0])[::-1], [0.0]]) / za  # mass above
        self._zu = float(za)
        # Legendre series of tau's density (u axis) on each panel, for cheap cdf inversion
        dens_a = (dens[:na] / za).reshape(-1, n)
        self._leg = ((dens_a * GL_W) @ LEG_VANDER) * (np.arange(n) + 0.5)
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
        uu = np.concatenate([lo[:, None] + half[:, None] * (GL_X + 1.0), u[:, None]], axis=1)
        ell = self._logpost(self._tau_of_u(uu))
        val = np.exp(ell - self._ell_ref) * self._c * np.cosh(uu) / self._zu
        return self._cum[j] + (val[:, :-1] @ GL_W) * half, val[:, -1]

    def _sf_u(self, u: FloatArray) -> FloatArray:
        """Upper-tail probability: Gauss-Legendre on [u, end of panel j] plus the panels above."""
        npan = self._edges.size - 1
        j = np.clip(np.searchsorted(self._edges, u, side="right") - 1, 0, npan - 1)
        hi = self._edges[j + 1]
        half = 0.5 * (hi - u)
        uu = u[:, None] + half[:, None] * (GL_X + 1.0)
        ell = self._logpost(self._tau_of_u(uu))
        val = np.exp(ell - self._ell_ref) * self._c * np.cosh(uu) / self._zu
        return np.clip(self._tail[j + 1] + (val @ GL_W) * half, 0.0, 1.0)

    def _cdf_u(self, u: FloatArray) -> FloatArray:
        npan = self._edges.size - 1
        j = np.clip(np.searchsorted(self._edges, u, side="right") - 1, 0, npan - 1)
        return np.clip(self._cdf_pdf_exact(j, u)[0], 0.0, 1.0)

    def _cdf_pdf_approx(self, j: NDArray[np.intp], s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Cdf and density (u axis) from the panel's Legendre interpolant, local s in [-1, 1]."""
        n = GL_N
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
    def _batch(self) -> MixtureBatch:
        """All K = k + 2 normal-mixture marginals: mu, theta_new, theta_1..k."""
        return MixtureBatch(self.tau_weights, self._cm.T.copy(), self._csd.T.copy())

    def _mixture(self, col: int) -> NormalMixtureMarginal:
        return NormalMixtureMarginal(
            self.tau_weights, self._cm[:, col], self._csd[:, col], finite_sd=self._finite_sd[col]
        )

    @cached_property
    def _finite_sd(self) -> NDArray[np.bool_]:
        """Whether the posterior sd of mu, theta_new, theta_i exists (tail of tau).

        Var(theta_new) contains E[tau^2]; with a flat mu prior Var(mu | tau) grows like
        tau^2 / k. Both need tau's posterior tail ~ tau^-alpha with alpha > 3.
        """
        second = self._tail_alpha > 3.0 + ALPHA_TOL
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
            ``tau``, ``mu``, ``theta_new`` of shape (n,) and ``theta`` of shape (n, k); a
            bias-adjusted model (:class:`~trialsynth.core.normal_normal.BiasedData`) adds
            ``bias_mean`` (n,) and each trial's ``bias`` (n, k).
        """
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        gen = np.random.default_rng(rng)
        cdf, u_grid = self._tau_table
        tau = self._tau_of_u(np.interp(gen.random(n), cdf, u_grid))
        out = self._data.draw_effects(tau, gen)
        out["theta_new"] = out["mu"] + tau * gen.standard_normal(n)
        return {"tau": tau, **out}

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
    return ExactPosterior(
        NormalNormalData(y, se, mu_prior, labels), tau_prior, delta=delta, epsilon=epsilon
    )


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
    data = NormalNormalData(y, se, mu_prior, labels)
    if isinstance(tau_priors, Mapping):
        return {
            name: ExactPosterior(data, prior, delta=delta, epsilon=epsilon)
            for name, prior in tau_priors.items()
        }
    return [ExactPosterior(data, prior, delta=delta, epsilon=epsilon) for prior in tau_priors]
