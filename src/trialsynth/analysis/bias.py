"""Robust Bayesian model averaging over effect x heterogeneity x publication-bias models.

The ensemble and its likelihood are in :mod:`trialsynth.analysis.bias_models`. Each
component's marginal likelihood is computed as exactly as its form allows:

* common effect, no bias, normal mu prior: closed form (a multivariate normal);
* random effects, no bias, normal mu prior: mu in closed form, tau by the exact engine's
  quadrature (:func:`trialsynth.core.exact.exact_posterior`), error ~1e-9;
* everything else (Student-t mu priors, selection, PET, PEESE): adaptive Gauss-Hermite
  quadrature (AGHQ) on the prior-Gaussianised coordinates, centred and scaled by the
  posterior mode and the Cholesky factor of the inverse Hessian; the order rises until two
  successive orders agree within ``tol`` on log Z, and that difference is the reported
  error (``log_ml_error``).

Posterior summaries pool the components' draws weighted by posterior model probability:
iid draws for the closed-form and exact components, self-normalised importance sampling
(a multivariate t at the AGHQ mode and scale) for the others, with Monte Carlo errors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, optimize, special, stats

from trialsynth.analysis.bias_models import (
    ROBMA_WEIGHT_FUNCTIONS,
    BiasError,
    BiasPriors,
    Component,
    FloatArray,
    WeightFunction,
    cochrane_priors,
    grid_log_post,
    log_post,
    robma_components,
    unpack,
)
from trialsynth.core.exact import exact_posterior
from trialsynth.core.settings import DEFAULT_SEED

__all__ = ["BiasError", "BiasResult", "Evidence", "bias_analysis", "log_evidence"]

#: Tolerance on |log Z_n - log Z_n'| of successive AGHQ orders: 1e-3 moves a posterior
#: model probability by 0.1% of itself, far below any difference a reader acts on.
DEFAULT_TOL = 1e-3
#: Gauss-Hermite orders tried per dimension (each order's grid is n^dim points).
_ORDERS = {
    1: (9, 15, 21, 31, 41, 61),
    2: (7, 11, 15, 21, 31, 41, 61),
    3: (5, 7, 9, 11, 15, 21, 31),
}
_ORDERS_HIGH = (5, 7, 9, 11, 13)
_MAX_POINTS = 2_500_000
#: Draws shared out over the components by posterior probability (at least _MIN_DRAWS each).
DEFAULT_DRAWS = 40_000
_MIN_DRAWS = 2000
#: Components above this posterior probability get P(mu > 0) by quadrature (below it, from
#: their draws: the Monte Carlo error they add to an averaged probability is < 1e-3 x MCSE).
_QUAD_PROB = 1e-3


@dataclass
class Evidence:
    """Log marginal likelihood of one component, its numerical error and how it was found."""

    log_ml: float
    error: float
    method: str  # "closed-form", "exact", "aghq" or "none" (no free parameter)
    order: int = 0
    n_points: int = 1
    converged: bool = True
    mode: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)
    chol: FloatArray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    exact: Any = field(default=None, repr=False)  # ExactPosterior or (mean, sd) of mu


# --------------------------------------------------------------------------- evidence


def _hessian(f: Callable[[FloatArray], FloatArray], x: FloatArray, h: float = 1e-4) -> FloatArray:
    """Central-difference Hessian, every point in one vectorised call."""
    d = x.size
    e = np.eye(d) * h
    pts = [x] + [x + s * e[i] for i in range(d) for s in (1, -1)]
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
    pts += [
        x + a * e[i] + b * e[j] for i, j in pairs for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))
    ]
    v = f(np.asarray(pts))
    hess = np.empty((d, d))
    for i in range(d):
        hess[i, i] = (v[1 + 2 * i] - 2 * v[0] + v[2 + 2 * i]) / h**2
    for n, (i, j) in enumerate(pairs):
        a, b, c, dd = v[1 + 2 * d + 4 * n : 5 + 2 * d + 4 * n]
        hess[i, j] = hess[j, i] = (a - b - c + dd) / (4 * h**2)
    return hess


def find_mode(
    comp: Component, y: FloatArray, se: FloatArray, priors: BiasPriors
) -> tuple[FloatArray, FloatArray]:
    """Posterior mode in the integration coordinates and the Cholesky factor of the covariance."""
    d, h = comp.dim, 1e-6
    steps = np.vstack([np.zeros(d), np.eye(d) * h, -np.eye(d) * h])

    def fg(x: FloatArray) -> tuple[float, FloatArray]:
        v = log_post(comp, x[None, :] + steps, y, se, priors)
        if not np.all(np.isfinite(v)):
            return 1e300, np.zeros(d)
        return -float(v[0]), -(v[1 : d + 1] - v[d + 1 :]) / (2 * h)

    starts = [np.zeros(d)] + ([np.full(d, -1.0)] if comp.weightfunction is not None else [])
    runs = [
        optimize.minimize(fg, x0, jac=True, method="BFGS", options={"gtol": 1e-6}) for x0 in starts
    ]
    mode = min(runs, key=lambda r: r.fun).x
    hess = -_hessian(lambda t: log_post(comp, t, y, se, priors), mode)
    try:
        cov = linalg.inv(hess)
        chol = linalg.cholesky(0.5 * (cov + cov.T), lower=True)
    except (linalg.LinAlgError, ValueError):  # not positive definite: regularise
        w, v = linalg.eigh(hess)
        chol = linalg.cholesky((v / np.maximum(w, 1e-6)) @ v.T, lower=True)
    return mode, chol


@cache
def _gauss_hermite(n: int) -> tuple[FloatArray, FloatArray]:
    """Probabilists' Gauss-Hermite nodes and log weights (weights summing to 1)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, np.log(w / w.sum())


def _log_integral(
    comp: Component,
    y: FloatArray,
    se: FloatArray,
    priors: BiasPriors,
    ev: Evidence,
    rules: Sequence[tuple[FloatArray, FloatArray]],
) -> float:
    """Log of the integral of exp(log_post) over u (theta = mode + chol u), on a tensor rule.

    Each rule is (nodes, log weights) for the standard normal measure of one coordinate.
    """
    d = ev.mode.size
    nodes = [r[0] for r in rules]
    f = grid_log_post(comp, ev.mode, ev.chol, nodes, y, se, priors)
    lws = sum(np.meshgrid(*[r[1] for r in rules], indexing="ij")).ravel()
    z2 = sum(np.meshgrid(*[x**2 for x in nodes], indexing="ij")).ravel()
    terms = f + lws + 0.5 * z2 + 0.5 * d * math.log(2 * math.pi)
    return float(special.logsumexp(terms) + np.sum(np.log(np.diag(ev.chol))))


def aghq_log_evidence(
    comp: Component,
    y: FloatArray,
    se: FloatArray,
    priors: BiasPriors,
    mode: FloatArray,
    chol: FloatArray,
    n: int,
) -> float:
    """AGHQ estimate of log Z with n nodes per dimension."""
    ev = Evidence(math.nan, math.nan, "aghq", mode=mode, chol=chol)
    return _log_integral(comp, y, se, priors, ev, [_gauss_hermite(n)] * mode.size)


def _half_rule(lo: float, hi: float, n: int) -> tuple[FloatArray, FloatArray]:
    """Nodes and log weights for the standard normal measure on (ndtri(lo), ndtri(hi)).

    Gauss-Legendre in t = Phi(u): the integral of h(u) phi(u) over the interval is that of
    h(ndtri(t)) dt over (lo, hi), smooth where the AGHQ integrand h is.
    """
    x, w = np.polynomial.legendre.leggauss(n)
    t = lo + (hi - lo) * (x + 1) / 2
    return special.ndtri(t), np.log(w * (hi - lo) / 2)


def aghq_prob_mu_gt_0(
    comp: Component, y: FloatArray, se: FloatArray, priors: BiasPriors, ev: Evidence
) -> tuple[float, float]:
    """P(mu > 0 | y, component) by quadrature on the AGHQ grid split at mu = 0, and its error.

    mu is the prior quantile at Phi(z_1) and z_1 = mode_1 + chol_11 u_1 (chol is lower
    triangular, mu the first coordinate), so mu > 0 is the half-line u_1 > c; both halves
    are integrated with :func:`_half_rule` in u_1 and Gauss-Hermite in the others, at the
    evidence's order and the one before it (their difference is the error).
    """
    zstar = float(special.ndtri(float(priors.mu.dist().cdf(0.0))))
    pc = float(special.ndtr((zstar - ev.mode[0]) / ev.chol[0, 0]))
    if pc <= 0.0 or pc >= 1.0:
        return (1.0 if pc <= 0.0 else 0.0), 0.0
    orders = _ORDERS.get(comp.dim, _ORDERS_HIGH)
    i = orders.index(ev.order) if ev.order in orders else len(orders) - 1
    values = []
    for n in orders[max(i - 1, 0) : i + 1]:
        rest = [_gauss_hermite(n)] * (comp.dim - 1)
        upper = _log_integral(comp, y, se, priors, ev, [_half_rule(pc, 1.0, n), *rest])
        lower = _log_integral(comp, y, se, priors, ev, [_half_rule(0.0, pc, n), *rest])
        values.append(float(special.expit(upper - lower)))
    return values[-1], abs(values[-1] - values[0])


def _normal_mu(priors: BiasPriors) -> tuple[float, float] | None:
    p = priors.mu
    return (p.params[0], p.params[1]) if p.family == "normal" and p.scale == "tau" else None


def log_evidence(
    comp: Component, y: FloatArray, se: FloatArray, priors: BiasPriors, tol: float = DEFAULT_TOL
) -> Evidence:
    """Log marginal likelihood of one component, with its error (see the module docstring)."""
    if comp.dim == 0:
        ll = float(np.sum(stats.norm.logpdf(y, 0.0, se)))
        return Evidence(ll, 0.0, "none", n_points=1)
    normal = _normal_mu(priors)
    if comp.bias == "none" and comp.effect and normal is not None:
        if not comp.heterogeneity:  # y ~ MVN(m 1, diag(se^2) + s^2 1 1')
            m, s = normal
            cov = np.diag(se**2) + s**2
            ll = float(stats.multivariate_normal(np.full(y.size, m), cov).logpdf(y))
            return Evidence(ll, 0.0, "closed-form", exact=normal)
        post = exact_posterior(y, se, priors.tau.tau_dist(), normal)
        return Evidence(post.log_marginal_likelihood, 1e-9, "exact", post.n_nodes, exact=post)
    mode, chol = find_mode(comp, y, se, priors)
    prev, err, total, last = None, math.inf, 0, (math.nan, 0)
    for n in _ORDERS.get(comp.dim, _ORDERS_HIGH):
        if n**comp.dim > _MAX_POINTS:
            break
        lz = aghq_log_evidence(comp, y, se, priors, mode, chol, n)
        total += n**comp.dim
        if prev is not None:
            err = abs(lz - prev)
            if err < tol:
                return Evidence(lz, err, "aghq", n, total, True, mode, chol)
        prev, last = lz, (lz, n)
    return Evidence(last[0], err, "aghq", last[1], total, False, mode, chol)


# --------------------------------------------------------------------------- draws


@dataclass
class Draws:
    """Weighted posterior draws of one component (natural scale)."""

    mu: FloatArray
    tau: FloatArray
    b: FloatArray
    omega: FloatArray | None
    weights: FloatArray  # normalised
    ess: float
    p_mu_gt_0: float  # exact where the component has an exact posterior
    p_mu_gt_0_var: float  # Monte Carlo variance of it (0 when exact)


def component_draws(
    comp: Component,
    y: FloatArray,
    se: FloatArray,
    priors: BiasPriors,
    ev: Evidence,
    n: int,
    rng: np.random.Generator,
) -> Draws:
    """Posterior draws of a component: iid where exact, else importance sampling."""
    zeros = np.zeros(n)
    flat = np.full(n, 1.0 / n)
    if comp.dim == 0:
        return Draws(zeros, zeros, zeros, None, flat, float(n), 0.0, 0.0)
    if ev.method == "exact":
        s = ev.exact.sample(n, rng)
        return Draws(s["mu"], s["tau"], zeros, None, flat, float(n), ev.exact.prob_mu_gt(0.0), 0.0)
    if ev.method == "closed-form":  # conjugate normal posterior of mu
        m0, s0 = ev.exact
        prec = 1 / s0**2 + np.sum(1 / se**2)
        mean = (m0 / s0**2 + np.sum(y / se**2)) / prec
        mu = mean + rng.standard_normal(n) / math.sqrt(prec)
        p = float(stats.norm.sf(0.0, mean, 1 / math.sqrt(prec)))
        return Draws(mu, zeros, zeros, None, flat, float(n), p, 0.0)
    return _importance_draws(comp, y, se, priors, ev, n, rng)


def _importance_draws(
    comp: Component,
    y: FloatArray,
    se: FloatArray,
    priors: BiasPriors,
    ev: Evidence,
    n: int,
    rng: np.random.Generator,
    df: float = 5.0,
) -> Draws:
    """Self-normalised importance sampling from a multivariate t (df 5, scale 1.2 x AGHQ)."""
    scale = 1.2 * ev.chol
    prop = stats.multivariate_t(loc=ev.mode, shape=scale @ scale.T, df=df)
    theta = np.asarray(prop.rvs(size=n, random_state=rng), dtype=float).reshape(n, comp.dim)
    lw = log_post(comp, theta, y, se, priors) - prop.logpdf(theta)
    w = np.exp(lw - special.logsumexp(lw))
    nat = unpack(comp, theta, priors)
    ess = float(1.0 / np.sum(w**2))
    p = float(np.sum(w * (nat.mu > 0)))
    var = p * (1 - p) / max(ess, 1.0) if comp.effect else 0.0
    return Draws(nat.mu, nat.tau, nat.b, nat.omega, w, ess, p, var)


# --------------------------------------------------------------------------- ensemble


@dataclass
class ModelResult:
    """One component's numbers."""

    comp: Component
    prior_prob: float
    evidence: Evidence
    posterior_prob: float = math.nan
    draws: Draws | None = None
    wall_s: float = 0.0
    p_mu_gt_0_error: float = 0.0  # quadrature error of draws.p_mu_gt_0 (0: exact or sampled)


def weighted_quantiles(x: FloatArray, w: FloatArray, qs: FloatArray) -> FloatArray:
    """Quantiles of weighted draws (midpoint interpolation of the weighted cdf)."""
    o = np.argsort(x, kind="stable")
    xs, ws = x[o], w[o] / w.sum()
    return np.interp(qs, np.cumsum(ws) - 0.5 * ws, xs)


def _summary(x: FloatArray, w: FloatArray) -> dict[str, float]:
    w = w / w.sum()
    m = float(np.sum(w * x))
    sd = float(np.sqrt(max(float(np.sum(w * (x - m) ** 2)), 0.0)))
    q = weighted_quantiles(x, w, np.array([0.025, 0.5, 0.975]))
    return {"mean": m, "sd": sd, "median": float(q[1]), "q025": float(q[0]), "q975": float(q[2])}


def pooled(models: Sequence[ModelResult], pick: Callable[[Draws], FloatArray]) -> tuple:
    """Draws of a quantity pooled over models, weighted by posterior model probability."""
    keep = [r for r in models if r.draws is not None and r.posterior_prob > 0]
    x = np.concatenate([pick(r.draws) for r in keep])  # type: ignore[arg-type]
    w = np.concatenate([r.posterior_prob * r.draws.weights for r in keep])  # type: ignore[union-attr]
    return x, w / w.sum()


def averages(models: Sequence[ModelResult]) -> dict[str, Any]:
    """Model-averaged mu, OR, tau and P(mu > 0) (with its Monte Carlo SE) over ``models``."""
    keep = [r for r in models if r.draws is not None and r.posterior_prob > 0]
    tot = sum(r.posterior_prob for r in keep)
    mu = _summary(*pooled(keep, lambda d: d.mu))
    p = sum(r.posterior_prob / tot * r.draws.p_mu_gt_0 for r in keep)  # type: ignore[union-attr]
    var = sum((r.posterior_prob / tot) ** 2 * r.draws.p_mu_gt_0_var for r in keep)  # type: ignore[union-attr]
    err = sum(r.posterior_prob / tot * r.p_mu_gt_0_error for r in keep)
    return {
        "mu": mu,
        "or": {k: math.exp(mu[k]) for k in ("median", "q025", "q975")},
        "tau": _summary(*pooled(keep, lambda d: d.tau)),
        "p_mu_gt_0": float(p),
        "p_mu_gt_0_mcse": math.sqrt(var),
        "p_mu_gt_0_quadrature_error": float(err),
    }


def inclusion(models: Sequence[ModelResult]) -> dict[str, dict[str, float]]:
    """Prior and posterior inclusion probabilities and inclusion Bayes factors."""
    tests: dict[str, Callable[[Component], bool]] = {
        "effect": lambda c: c.effect,
        "heterogeneity": lambda c: c.heterogeneity,
        "bias": lambda c: c.bias != "none",
    }
    out = {}
    for key, test in tests.items():
        pin = sum(r.prior_prob for r in models if test(r.comp))
        pon = sum(r.posterior_prob for r in models if test(r.comp))
        if 0 < pin < 1:
            bf = math.inf if pon >= 1 else (pon / (1 - pon)) / (pin / (1 - pin))
        else:
            bf = math.nan  # the ensemble cannot compare with and without it
        out[key] = {"prior_prob": pin, "posterior_prob": pon, "bf": bf}
    return out


def fit_ensemble(
    y: FloatArray,
    se: FloatArray,
    components: Sequence[Component],
    priors: BiasPriors,
    *,
    n_draws: int = DEFAULT_DRAWS,
    seed: int | None = DEFAULT_SEED,
    tol: float = DEFAULT_TOL,
) -> list[ModelResult]:
    """Evidence, posterior probability and draws of every component with prior weight > 0."""
    wsum = sum(c.prior_weight for c in components)
    results = []
    for c in components:
        if c.prior_weight <= 0:
            continue
        t0 = time.perf_counter()
        ev = log_evidence(c, y, se, priors, tol)
        results.append(ModelResult(c, c.prior_weight / wsum, ev, wall_s=time.perf_counter() - t0))
    lp = np.array([math.log(r.prior_prob) + r.evidence.log_ml for r in results])
    post = np.exp(lp - special.logsumexp(lp))
    rng = np.random.default_rng(seed)
    for r, p in zip(results, post, strict=True):
        r.posterior_prob = float(p)
        if p > 1e-6:  # below that a component cannot move any reported digit
            t0 = time.perf_counter()
            nd = max(_MIN_DRAWS, round(n_draws * p))
            if (r.comp.effect, r.comp.heterogeneity, r.comp.bias) == (True, True, "none"):
                nd = max(nd, n_draws // 2)  # the unadjusted model is reported on its own
            r.draws = component_draws(r.comp, y, se, priors, r.evidence, nd, rng)
            if r.comp.effect and r.evidence.method == "aghq" and p > _QUAD_PROB:
                pq, err = aghq_prob_mu_gt_0(r.comp, y, se, priors, r.evidence)
                r.draws.p_mu_gt_0, r.draws.p_mu_gt_0_var, r.p_mu_gt_0_error = pq, 0.0, err
            r.wall_s += time.perf_counter() - t0
    return results


# --------------------------------------------------------------------------- result


@dataclass
class BiasResult:
    """The model-averaged bias analysis of one data set."""

    models: list[ModelResult]
    priors: BiasPriors
    y: FloatArray
    se: FloatArray
    seed: int | None
    wall_s: float
    labels: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        """Number of trials."""
        return int(self.y.size)

    @property
    def inclusion(self) -> dict[str, dict[str, float]]:
        """Inclusion prior/posterior probabilities and Bayes factors."""
        return inclusion(self.models)

    @property
    def averaged(self) -> dict[str, Any]:
        """Model-averaged posterior over all components."""
        return averages(self.models)

    @property
    def conditional(self) -> dict[str, Any]:
        """Model-averaged posterior over the components with an effect."""
        return averages([r for r in self.models if r.comp.effect])

    def find(self, effect: bool, heterogeneity: bool, bias: str = "none") -> ModelResult | None:
        """The component with these settings (``bias`` a label such as ``pet``)."""
        for r in self.models:
            c = r.comp
            if (c.effect, c.heterogeneity, c.bias_label) == (effect, heterogeneity, bias):
                return r
        return None

    def unadjusted(self) -> dict[str, Any]:
        """The random-effects model without a bias component, under the same priors."""
        r = self.find(True, True)
        if r is None or r.draws is None:
            raise BiasError("the unadjusted random-effects model is not in the ensemble")
        d = r.draws
        mu = _summary(d.mu, d.weights)
        return {
            "mu": mu,
            "or": {k: math.exp(mu[k]) for k in ("median", "q025", "q975")},
            "tau": _summary(d.tau, d.weights),
            "p_mu_gt_0": d.p_mu_gt_0,
            "p_mu_gt_0_mcse": math.sqrt(d.p_mu_gt_0_var),
            "p_mu_gt_0_quadrature_error": r.p_mu_gt_0_error,
        }

    def weightfunctions(self) -> dict[str, dict[str, Any]]:
        """Per weight function: steps, posterior probability, omega median and 95% interval."""
        out: dict[str, dict[str, Any]] = {}
        groups: dict[str, list[ModelResult]] = {}
        for r in self.models:
            if r.comp.weightfunction is not None and r.draws is not None:
                groups.setdefault(r.comp.bias_label, []).append(r)
        for label, rs in groups.items():
            om, w = pooled(rs, lambda d: d.omega)
            qs = np.array(
                [weighted_quantiles(col, w, np.array([0.025, 0.5, 0.975])) for col in om.T]
            )
            out[label] = {
                "steps": list(rs[0].comp.weightfunction.steps),  # type: ignore[union-attr]
                "side": rs[0].comp.weightfunction.side,  # type: ignore[union-attr]
                "posterior_prob": float(sum(r.posterior_prob for r in rs)),
                "q025": qs[:, 0].tolist(),
                "median": qs[:, 1].tolist(),
                "q975": qs[:, 2].tolist(),
            }
        return out

    def density(self, n: int = 241) -> dict[str, Any]:
        """Posterior densities of mu on a grid (weighted Gaussian KDE of the draws).

        ``averaged`` is the density of the models with an effect times P(effect) (the rest of
        the mass sits at mu = 0: ``p_null``); ``unadjusted`` the random-effects model's.
        """
        cond = pooled([r for r in self.models if r.comp.effect], lambda d: d.mu)
        unadj = self.find(True, True)
        lo, hi = weighted_quantiles(*cond, np.array([0.001, 0.999]))
        span = max(hi - lo, 0.5)
        grid = np.linspace(lo - 0.25 * span, hi + 0.25 * span, n)
        p_effect = self.inclusion["effect"]["posterior_prob"]
        out = {"log_or": grid.tolist(), "averaged": (p_effect * _kde(*cond, grid)).tolist()}
        out["p_null"] = 1.0 - p_effect
        if unadj is not None and unadj.draws is not None:
            out["unadjusted"] = _kde(unadj.draws.mu, unadj.draws.weights, grid).tolist()
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``bias --json`` object (INTERFACE.md keys, documented extras beside them)."""
        models = [
            {
                "effect": r.comp.effect,
                "heterogeneity": r.comp.heterogeneity,
                "bias": r.comp.bias_label,
                "prior_prob": r.prior_prob,
                "log_ml": r.evidence.log_ml,
                "posterior_prob": r.posterior_prob,
                "log_ml_error": r.evidence.error,
                "method": r.evidence.method,
                "quadrature_order": r.evidence.order,
                "converged": r.evidence.converged,
            }
            for r in self.models
        ]
        return {
            "k": self.k,
            "priors": self.priors.text(),
            "models": models,
            "inclusion": self.inclusion,
            "averaged": self.averaged,
            "conditional": self.conditional,
            "unadjusted": self.unadjusted() if self.find(True, True) else None,
            "weightfunctions": self.weightfunctions(),
            "density": self.density(),
            "trials": {"study": list(self.labels), "y": self.y.tolist(), "se": self.se.tolist()},
            "max_log_ml_error": max(r.evidence.error for r in self.models),
            "seed": self.seed,
            "wall_s": self.wall_s,
        }


def _kde(x: FloatArray, w: FloatArray, grid: FloatArray) -> FloatArray:
    """Weighted Gaussian kernel density (Silverman's bandwidth with the effective size)."""
    w = w / w.sum()
    m = float(np.sum(w * x))
    sd = float(np.sqrt(np.sum(w * (x - m) ** 2)))
    h = 1.06 * max(sd, 1e-6) * (1.0 / float(np.sum(w**2))) ** -0.2
    out = np.zeros(grid.size)
    for lo in range(0, x.size, 8192):  # bounded memory for many draws
        z = (grid[:, None] - x[None, lo : lo + 8192]) / h
        out += np.exp(-0.5 * z**2) @ w[lo : lo + 8192]
    return out / (h * math.sqrt(2 * math.pi))


def _check_inputs(y: FloatArray, se: FloatArray, labels: Sequence[str] | None) -> None:
    if y.ndim != 1 or y.shape != se.shape:
        raise BiasError("log ORs and standard errors must be 1-D arrays of equal length")
    if y.size < 3:
        raise BiasError(f"the bias analysis needs at least 3 trials, got {y.size}")
    bad = ~np.isfinite(y) | ~np.isfinite(se) | ~(se > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        name = labels[i] if labels is not None else f"trial {i + 1}"
        raise BiasError(f"{name}: the log OR must be finite and its standard error positive")


def bias_analysis(
    y: ArrayLike,
    se: ArrayLike,
    *,
    priors: BiasPriors | None = None,
    weightfunctions: Sequence[WeightFunction] = ROBMA_WEIGHT_FUNCTIONS,
    components: Sequence[Component] | None = None,
    labels: Sequence[str] | None = None,
    seed: int | None = DEFAULT_SEED,
    n_draws: int = DEFAULT_DRAWS,
    tol: float = DEFAULT_TOL,
) -> BiasResult:
    """Robust Bayesian model averaging over effect x heterogeneity x bias components.

    Parameters
    ----------
    y, se : array_like
        Trial log odds ratios and their standard errors (at least 3 trials).
    priors : BiasPriors, optional
        Default :func:`~trialsynth.analysis.bias_models.cochrane_priors`.
    weightfunctions : sequence of WeightFunction
        The selection models (default RoBMA-PSMA's six).
    components : sequence of Component, optional
        The ensemble with its prior weights (default
        :func:`~trialsynth.analysis.bias_models.robma_components`); weight 0 removes one.
    labels : sequence of str, optional
        Trial names (for messages and figures).
    seed : int or None
        Seed of the posterior draws (the evidence is deterministic).
    n_draws : int
        Draws shared out over the components by posterior probability.
    tol : float
        Quadrature tolerance on each log marginal likelihood.

    Returns
    -------
    BiasResult
    """
    t0 = time.perf_counter()
    y_arr = np.asarray(y, dtype=float)
    se_arr = np.asarray(se, dtype=float)
    _check_inputs(y_arr, se_arr, labels)
    pri = priors or cochrane_priors()
    comps = list(components) if components is not None else robma_components(weightfunctions)
    if not any(c.prior_weight > 0 for c in comps):
        raise BiasError("every component has prior probability 0")
    if any(c.prior_weight < 0 or not math.isfinite(c.prior_weight) for c in comps):
        raise BiasError("prior model weights must be finite and >= 0")
    models = fit_ensemble(y_arr, se_arr, comps, pri, n_draws=n_draws, seed=seed, tol=tol)
    return BiasResult(
        models, pri, y_arr, se_arr, seed, time.perf_counter() - t0, list(labels or [])
    )
