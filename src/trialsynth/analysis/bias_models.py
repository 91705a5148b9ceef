"""The component models of the bias ensemble (RoBMA-PSMA): definitions, priors, likelihood.

Each component is effect (mu = 0 or mu free) x heterogeneity (tau = 0 or tau free) x bias:
none; a step-function selection model on the trials' one- or two-sided p-values (the
Vevea-Hedges weight function with a cumulative-Dirichlet prior); PET, mean mu + b se;
PEESE, mean mu + b se^2. The likelihood is RoBMA's: random effects marginalised,
y_i ~ N(m_i, se_i^2 + tau^2), and for selection models the weighted normal

    p(y_i) = N(y_i; m_i, s_i) omega_{j(i)} / sum_j omega_j P_j(m_i, s_i),

where j(i) is the p-value bin of trial i (bins ordered by increasing p, bin 1 the most
significant with omega_1 = 1) and P_j the probability of bin j under N(m_i, s_i^2).

Parameters live on standard normal integration coordinates z: each parameter is its prior's
quantile at Phi(z), so the prior becomes N(0, I) exactly and the integrand has Gaussian
tails whatever the prior's (Cauchy, inverse gamma, beta). A weight function with J bins has
J - 1 coordinates, one for each ratio r_k = omega_{k+1} / omega_k: with eta ~ Dirichlet(alpha)
and omega_j = sum_{i >= j} eta_i (BayesTools' cumulative weights) the r_k are independent
Beta(sum_{i > k} alpha_i, alpha_k) (the stick-breaking form of the Dirichlet).

Sources of every default number: notes/bias.md (RoBMA R/RoBMA.R and
R/check-priors-and-models.R; BayesTools R/priors-informed.R).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import interpolate, special, stats

from trialsynth.core.errors import TrialsynthError
from trialsynth.priors.prior import Prior, PriorError, parse_prior

FloatArray = NDArray[np.float64]
Side = Literal["one-sided", "two-sided"]
BiasKind = Literal["none", "selection", "pet", "peese"]

_LOG_2PI = math.log(2.0 * math.pi)
#: Cohen's d to log OR (RoBMA .get_scale_b "d2logOR" = pi / sqrt(3), the linear
#: approximation RoBMA uses to carry its d-scale defaults to the log OR scale).
D_TO_LOGOR = math.pi / math.sqrt(3.0)


class BiasError(TrialsynthError):
    """Bad input to the bias analysis (one-line message)."""


@dataclass(frozen=True)
class WeightFunction:
    """A step weight function on p-values with a cumulative Dirichlet prior.

    Parameters
    ----------
    side : {"one-sided", "two-sided"}
        One-sided p = 1 - Phi(y / se) (positive direction); two-sided
        p = 2 (1 - Phi(|y| / se)).
    steps : tuple of float
        Increasing cut points in (0, 1).
    alpha : tuple of float
        Dirichlet concentrations, one more than ``steps`` (default all ones).
    """

    side: Side
    steps: tuple[float, ...]
    alpha: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.side not in ("one-sided", "two-sided"):
            raise BiasError(f"weight function side must be one-sided or two-sided: {self.side!r}")
        st = tuple(float(s) for s in self.steps)
        if not st or any(not 0.0 < s < 1.0 for s in st) or any(b <= a for a, b in pairwise(st)):
            raise BiasError(
                f"weight function cut points must increase within (0, 1), got {self.steps}"
            )
        al = tuple(float(a) for a in self.alpha) or (1.0,) * (len(st) + 1)
        if len(al) != len(st) + 1 or any(not a > 0 for a in al):
            raise BiasError(
                f"weight function needs {len(st) + 1} positive alpha values, got {self.alpha}"
            )
        object.__setattr__(self, "steps", st)
        object.__setattr__(self, "alpha", al)

    @property
    def n_bins(self) -> int:
        """Number of p-value bins (len(steps) + 1)."""
        return len(self.steps) + 1

    @property
    def label(self) -> str:
        """Name in tables and JSON, e.g. ``selection-one-sided(0.025, 0.05)``."""
        return f"selection-{self.side}({', '.join(f'{s:g}' for s in self.steps)})"

    def ratio_params(self) -> list[tuple[float, float]]:
        """Beta(a, b) of each r_k = omega_{k+1} / omega_k."""
        a = np.asarray(self.alpha)
        return [(float(a[k + 1 :].sum()), float(a[k])) for k in range(self.n_bins - 1)]

    def pvalues(self, y: FloatArray, se: FloatArray) -> FloatArray:
        """The p-values the weights act on."""
        z = np.asarray(y) / np.asarray(se)
        return special.ndtr(-z) if self.side == "one-sided" else 2.0 * special.ndtr(-np.abs(z))

    def bin_index(self, y: FloatArray, se: FloatArray) -> NDArray[np.intp]:
        """Bin (0 = most significant) of each trial's p-value."""
        p = self.pvalues(y, se)
        return np.searchsorted(np.asarray(self.steps), p, side="right").astype(np.intp)

    def crit(self, se: FloatArray) -> FloatArray:
        """Critical y values (k x len(steps)), decreasing along the steps."""
        q = np.asarray(self.steps) / (1.0 if self.side == "one-sided" else 2.0)
        return np.asarray(se)[:, None] * -special.ndtri(q)[None, :]


#: RoBMA-PSMA's six weight functions (RoBMA R/RoBMA.R, priors_bias), alpha all ones.
ROBMA_WEIGHT_FUNCTIONS: tuple[WeightFunction, ...] = (
    WeightFunction("two-sided", (0.05,)),
    WeightFunction("two-sided", (0.05, 0.10)),
    WeightFunction("one-sided", (0.05,)),
    WeightFunction("one-sided", (0.025, 0.05)),
    WeightFunction("one-sided", (0.05, 0.5)),
    WeightFunction("one-sided", (0.025, 0.05, 0.5)),
)


def parse_weightfunction(text: str) -> WeightFunction:
    """``one-sided(0.025, 0.05)`` or ``two-sided(0.05)`` as a :class:`WeightFunction`."""
    t = text.strip().lower().replace(" ", "")
    for side in ("one-sided", "two-sided"):
        if t.startswith(side + "(") and t.endswith(")"):
            try:
                steps = tuple(float(v) for v in t[len(side) + 1 : -1].split(",") if v)
            except ValueError:
                raise BiasError(f"weight function {text!r}: cut points must be numbers") from None
            try:
                return WeightFunction(side, steps)  # type: ignore[arg-type]
            except BiasError as err:
                raise BiasError(f"weight function {text!r}: {err}") from None
    raise BiasError(
        f"unknown weight function {text!r}; valid: one-sided(P1, P2, ...) or two-sided(P1, ...)"
    )


@dataclass(frozen=True)
class Component:
    """One model of the ensemble.

    Parameters
    ----------
    effect, heterogeneity : bool
        Whether mu and tau are free (else fixed at 0).
    bias : {"none", "selection", "pet", "peese"}
        The bias component.
    weightfunction : WeightFunction or None
        For ``bias == "selection"``.
    prior_weight : float
        Unnormalised prior model weight (RoBMA: product of the components' weights).
    """

    effect: bool
    heterogeneity: bool
    bias: BiasKind = "none"
    weightfunction: WeightFunction | None = None
    prior_weight: float = 1.0

    def __post_init__(self) -> None:
        if (self.bias == "selection") != (self.weightfunction is not None):
            raise BiasError("a selection component needs a weight function (and only it)")

    @property
    def bias_label(self) -> str:
        """``none``, ``pet``, ``peese`` or the weight function's label."""
        return self.weightfunction.label if self.weightfunction is not None else self.bias

    @property
    def names(self) -> list[str]:
        """Integration coordinates, in order (location first: see ``grid_log_post``)."""
        out = ["mu"] * self.effect + ["tau"] * self.heterogeneity
        if self.bias in ("pet", "peese"):
            out.append("b")
        if self.weightfunction is not None:
            out += [f"r{k + 1}" for k in range(self.weightfunction.n_bins - 1)]
        return out

    @property
    def dim(self) -> int:
        """Number of free parameters."""
        return len(self.names)


def robma_components(
    weightfunctions: Sequence[WeightFunction] = ROBMA_WEIGHT_FUNCTIONS,
) -> list[Component]:
    """The RoBMA-PSMA ensemble: 2 x 2 x (1 + selection + PET + PEESE) components.

    Prior weights as RoBMA's .make_models (the product of the components' weights): effect
    and heterogeneity 1/2 each way; bias none 1/2, the weight functions share 1/4, PET 1/8,
    PEESE 1/8 (RoBMA: 1/12 for each of six weight functions, 1/4 PET, 1/4 PEESE against
    prior_none() at 1).
    """
    wfs = list(weightfunctions)
    bias: list[tuple[BiasKind, WeightFunction | None, float]] = [("none", None, 0.5)]
    bias += [("selection", wf, 0.25 / len(wfs)) for wf in wfs]
    bias += [("pet", None, 0.125), ("peese", None, 0.125)]
    return [
        Component(effect, het, kind, wf, 0.25 * w)
        for effect in (False, True)
        for het in (False, True)
        for kind, wf, w in bias
    ]


# --------------------------------------------------------------------------- priors


#: PET ~ Cauchy+(0, 1): RoBMA-PSMA's default (scale free, so the same on log OR).
PET_PRIOR = Prior("half-cauchy", (1.0,))
#: PEESE ~ Cauchy+(0, 5) on Cohen's d is Cauchy+(0, 5 / (pi / sqrt 3)) on log OR (RoBMA scales
#: the PEESE coefficient inversely: "the transformation is inverse for PEESE").
PEESE_PRIOR = Prior("half-cauchy", (round(5.0 / D_TO_LOGOR, 4),))


class _Quantile:
    """The quantile of a distribution at Phi(z), accurate in both tails, tabulated.

    Tabulated on z in [-12, 12] (spacing 0.01; cubic interpolation error ~1e-10; log scale
    for a positive variable) and interpolated; points outside the table are exact.
    """

    _Z = np.linspace(-12.0, 12.0, 2401)

    def __init__(self, ppf: Any, isf: Any) -> None:
        self.ppf, self.isf = ppf, isf
        vals = self.exact(self._Z)
        if not np.all(np.isfinite(vals)):
            raise BiasError("a prior's quantile function is not finite on (0, 1)")
        self.positive = bool(np.all(vals > 0))
        self.spline = interpolate.CubicSpline(self._Z, np.log(vals) if self.positive else vals)

    def exact(self, z: FloatArray) -> FloatArray:
        lo = z <= 0
        out = np.empty_like(z)
        out[lo] = self.ppf(special.ndtr(z[lo]))
        out[~lo] = self.isf(special.ndtr(-z[~lo]))
        return out

    def __call__(self, z: FloatArray) -> FloatArray:
        out = self.spline(z)
        if self.positive:
            out = np.exp(out)
        outside = np.abs(z) > self._Z[-1]
        if outside.any():
            out[outside] = self.exact(z[outside])
        return out


def _tau_isf(prior: Prior) -> Any:
    """Upper-tail quantile of tau (the grammar's tau, tau2 and precision scales)."""
    if prior.needs_data:  # uniform-shrinkage and DuMouchel: closed forms in s0
        s0 = float(prior.s0)  # type: ignore[arg-type]
        if prior.family == "uniform-shrinkage":
            return lambda u: s0 * np.sqrt((1 - u) / u)
        return lambda u: s0 * (1 - u) / u
    base = prior.dist()
    if prior.scale == "tau":
        return base.isf
    if prior.scale == "tau2":
        return lambda u: np.sqrt(base.isf(u))
    return lambda u: 1 / np.sqrt(base.ppf(u))


@dataclass(frozen=True)
class BiasPriors:
    """The priors of every component (mu, tau, PET and PEESE coefficients).

    ``mu`` and ``tau`` are grammar priors (``--mu-prior``, ``--tau-prior``), used by
    every component that has the parameter. ``pet`` and ``peese`` are on b >= 0.
    """

    mu: Prior
    tau: Prior
    pet: Prior = PET_PRIOR
    peese: Prior = PEESE_PRIOR
    name: str = "custom"
    _q: dict[str, _Quantile] = field(default_factory=dict, compare=False, repr=False)

    def text(self) -> dict[str, str]:
        """The grammar string of each prior (what the JSON records)."""
        return {r: getattr(self, r).describe() for r in ("mu", "tau", "pet", "peese")}

    def logpdf(self, role: str, x: FloatArray) -> FloatArray:
        """Prior log density of a parameter (mu, tau, pet or peese) on its natural scale."""
        prior = getattr(self, role)
        return prior.tau_dist().logpdf(x) if role != "mu" else prior.dist().logpdf(x)

    def quantile(self, role: str) -> _Quantile:
        """The tabulated quantile map z -> parameter of a role."""
        if role not in self._q:
            prior = getattr(self, role)
            if role == "mu":
                d = prior.dist()
                self._q[role] = _Quantile(d.ppf, d.isf)
            else:
                self._q[role] = _Quantile(prior.tau_dist().ppf, _tau_isf(prior))
        return self._q[role]


def cochrane_priors() -> BiasPriors:
    """Default priors: Bartos et al. 2023 Cochrane log OR priors + RoBMA-PSMA's bias priors.

    mu ~ Student-t(df 4, 0, 0.58), tau ~ InvGamma(1.77, 0.55) (BayesTools
    R/priors-informed.R, ``type == "logor"``, "Cochrane": the whole database); PET ~
    Cauchy+(0, 1) and PEESE ~ Cauchy+(0, 5 / (pi / sqrt 3)) (RoBMA's d-scale defaults on the
    log OR scale: PET is scale free, PEESE scales inversely).
    """
    return BiasPriors(
        Prior("student-t", (4.0, 0.0, 0.58)), Prior("inverse-gamma", (1.77, 0.55)), name="cochrane"
    )


def robma_priors() -> BiasPriors:
    """RoBMA-PSMA's defaults (Cohen's d scale) carried to log OR by pi / sqrt(3).

    mu ~ N(0, 1 x 1.8138), tau ~ InvGamma(1, 0.15 x 1.8138) (RoBMA R/RoBMA.R defaults,
    .get_scale_b); PET and PEESE as :func:`cochrane_priors`.
    """
    c = D_TO_LOGOR
    return BiasPriors(
        Prior("normal", (0.0, round(c, 4))),
        Prior("inverse-gamma", (1.0, round(0.15 * c, 4))),
        name="robma",
    )


def bias_priors(
    mu: str | Prior | None = None,
    tau: str | Prior | None = None,
    *,
    base: BiasPriors | None = None,
    se: FloatArray | None = None,
) -> BiasPriors:
    """The default priors with ``mu``/``tau`` overridden (grammar strings allowed).

    An improper mu prior (``flat``) is an error: it leaves the Bayes factor of the effect
    undefined. Data-dependent tau priors (uniform-shrinkage, DuMouchel) need ``se``.
    """
    pri = base or cochrane_priors()
    try:
        mu_p = parse_prior(mu, "mu") if mu is not None else pri.mu
        tau_p = parse_prior(tau, "tau") if tau is not None else pri.tau
    except PriorError as err:
        raise BiasError(str(err)) from None
    if mu_p.family == "flat":
        raise BiasError("mu prior flat() is improper: the Bayes factor of the effect is undefined")
    if tau_p.needs_data:
        if se is None:
            raise BiasError(f"tau prior {tau_p.family} needs the trials' standard errors")
        tau_p = tau_p.resolve(np.asarray(se, dtype=float))
    name = pri.name if mu is None and tau is None else "custom"
    return BiasPriors(mu_p, tau_p, pri.pet, pri.peese, name=name)


# --------------------------------------------------------------------------- likelihood


@dataclass(frozen=True)
class Natural:
    """Natural parameters of a batch of n points (each of shape (n,); omega (n, J))."""

    mu: FloatArray
    tau: FloatArray
    b: FloatArray
    omega: FloatArray | None


def _log_ratio(a: float, b: float, z: FloatArray) -> FloatArray:
    """Log r for r ~ Beta(a, b) at the quantile Phi(z) (closed forms for a or b = 1)."""
    if b == 1.0:  # cdf r^a
        return special.log_ndtr(z) / a
    if a == 1.0:  # cdf 1 - (1 - r)^b
        return np.log(-np.expm1(special.log_ndtr(-z) / b))
    return np.log(_beta_quantile(a, b)(z))


@cache
def _beta_quantile(a: float, b: float) -> _Quantile:
    beta = stats.beta(a, b)
    return _Quantile(beta.ppf, beta.isf)


def unpack(comp: Component, theta: FloatArray, priors: BiasPriors) -> Natural:
    """Map integration coordinates (n, dim) to natural parameters."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    n = theta.shape[0]
    zeros = np.zeros(n)
    mu = tau = b = zeros
    omega = None
    col = 0
    if comp.effect:
        mu, col = priors.quantile("mu")(theta[:, col]), col + 1
    if comp.heterogeneity:
        tau, col = priors.quantile("tau")(theta[:, col]), col + 1
    if comp.bias in ("pet", "peese"):
        b, col = priors.quantile(comp.bias)(theta[:, col]), col + 1
    if comp.weightfunction is not None:
        logs = [
            _log_ratio(a, bb, theta[:, col + k])
            for k, (a, bb) in enumerate(comp.weightfunction.ratio_params())
        ]
        cum = np.cumsum(np.stack(logs, axis=1), axis=1)
        omega = np.exp(np.concatenate([np.zeros((n, 1)), cum], axis=1))
    return Natural(mu, tau, b, omega)


def _normal_part(comp: Component, nat: Natural, y: FloatArray, se: FloatArray) -> tuple:
    """Mean, variance and normal log density of every point and trial (n, k)."""
    m = nat.mu[:, None] + np.zeros(y.size)[None, :]
    if comp.bias == "pet":
        m = m + nat.b[:, None] * se[None, :]
    elif comp.bias == "peese":
        m = m + nat.b[:, None] * se[None, :] ** 2
    s2 = se[None, :] ** 2 + nat.tau[:, None] ** 2
    ll = -0.5 * (_LOG_2PI + np.log(s2) + (y[None, :] - m) ** 2 / s2)
    return m, s2, ll


def bin_probs(wf: WeightFunction, m: FloatArray, s: FloatArray, crit: FloatArray) -> FloatArray:
    """P(trial's p-value in bin j) under N(m, s^2): shape (n, k, J)."""
    c = crit[None, :, :]
    mm, ss = m[:, :, None], s[:, :, None]
    q = special.ndtr((mm - c) / ss)  # P(y > c_j), increasing along j
    if wf.side == "two-sided":
        q = q + special.ndtr((-c - mm) / ss)
    return np.clip(np.diff(q, axis=2, prepend=0.0, append=1.0), 0.0, 1.0)


def loglik(
    comp: Component, nat: Natural, y: FloatArray, se: FloatArray, *, chunk: int = 4096
) -> FloatArray:
    """Log likelihood of the data at each point of a batch (shape (n,))."""
    n = nat.mu.shape[0]
    out = np.empty(n)
    wf = comp.weightfunction
    if wf is not None:
        bins, crit = wf.bin_index(y, se), wf.crit(se)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        part = Natural(nat.mu[sl], nat.tau[sl], nat.b[sl], None)
        m, s2, ll = _normal_part(comp, part, y, se)
        total = ll.sum(axis=1)
        if wf is not None:
            assert nat.omega is not None
            om = nat.omega[sl]
            denom = np.einsum("nkj,nj->nk", bin_probs(wf, m, np.sqrt(s2), crit), om)
            total += np.log(om)[:, bins].sum(axis=1) - np.log(np.maximum(denom, 1e-300)).sum(1)
        out[sl] = total
    return out


def log_post(
    comp: Component, theta: FloatArray, y: FloatArray, se: FloatArray, priors: BiasPriors
) -> FloatArray:
    """Unnormalised log posterior in the integration coordinates (log lik + log N(z; 0, I))."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    out = loglik(comp, unpack(comp, theta, priors), y, se)
    out += -0.5 * np.sum(theta**2, axis=1) - 0.5 * comp.dim * _LOG_2PI
    return np.where(np.isfinite(out), out, -np.inf)


def grid_log_post(
    comp: Component,
    mode: FloatArray,
    chol: FloatArray,
    nodes: Sequence[FloatArray],
    y: FloatArray,
    se: FloatArray,
    priors: BiasPriors,
) -> FloatArray:
    """``log_post`` on the tensor grid ``mode + chol z``, z in the product of ``nodes``.

    ``nodes`` holds one array per coordinate; the grid is flattened in C order. For
    selection components the work factorises: ``chol`` is lower triangular and the location
    coordinates (mu, tau) come first, so the normal density and the bin probabilities
    depend on the outer (location) nodes only and the weights enter through one batched
    matrix product per outer node: k x n^dim logarithms instead of k x J x n^dim normal cdfs.
    """
    d = mode.size
    z = np.stack([g.ravel() for g in np.meshgrid(*nodes, indexing="ij")], axis=1)
    theta = mode[None, :] + z @ chol.T
    if comp.weightfunction is None or d < 2:
        return log_post(comp, theta, y, se, priors)
    wf = comp.weightfunction
    p = int(comp.effect) + int(comp.heterogeneity)  # location coordinates
    n_outer = math.prod(len(x) for x in nodes[:p])
    n_inner = math.prod(len(x) for x in nodes[p:])
    nat = unpack(comp, theta, priors)
    assert nat.omega is not None
    outer = slice(None, None, n_inner)  # the first point of each outer node
    m, s2, ll = _normal_part(
        comp, Natural(nat.mu[outer], nat.tau[outer], nat.b[outer], None), y, se
    )
    probs = bin_probs(wf, m, np.sqrt(s2), wf.crit(se))  # (n_outer, k, J)
    counts = np.bincount(wf.bin_index(y, se), minlength=wf.n_bins)
    om = nat.omega.reshape(n_outer, n_inner, wf.n_bins)
    denom = np.matmul(om, probs.transpose(0, 2, 1))  # (n_outer, n_inner, k)
    out = (
        ll.sum(axis=1)[:, None]
        + np.log(om) @ counts
        - np.log(np.maximum(denom, 1e-300)).sum(axis=2)
    ).ravel()
    out += -0.5 * np.sum(theta**2, axis=1) - 0.5 * d * _LOG_2PI
    return np.where(np.isfinite(out), out, -np.inf)
