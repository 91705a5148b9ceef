"""Priors as data: the ``PRIOR`` grammar, tau-scale densities and PyMC construction.

A prior is a small immutable object (:class:`Prior`): a family, its parameters and the
scale of heterogeneity it is stated on (``tau``, ``tau2`` or ``precision``). It can be
parsed from and printed back to the grammar of ``INTERFACE.md``, hashed, compared and
swept. Three consumers use it:

* the exact engine asks for :meth:`Prior.tau_dist` (``logpdf``/``cdf``/``ppf`` on tau);
* the PyMC builders call :func:`pymc_variable`, which puts every numeric parameter in a
  ``pm.Data`` container so a compiled model can be refitted with new hyperparameters;
* reports print :meth:`Prior.describe`.

This module imports scipy only; PyMC is imported inside :func:`pymc_variable`.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np
from scipy import stats

from trialsynth.core.errors import TrialsynthError

Role = Literal["mu", "tau", "baseline", "beta", "nu"]
Scale = Literal["tau", "tau2", "precision"]


class PriorError(TrialsynthError):
    """A prior string or object that cannot be used (one-line message)."""


@dataclass(frozen=True)
class _Family:
    params: tuple[str, ...]
    positive: tuple[str, ...]  # parameters that must be > 0
    support: Literal["real", "positive", "interval"]
    pymc: str


FAMILIES: dict[str, _Family] = {
    "normal": _Family(("mu", "sigma"), ("sigma",), "real", "Normal"),
    "logistic": _Family(("mu", "s"), ("s",), "real", "Logistic"),
    "student-t": _Family(("nu", "mu", "sigma"), ("nu", "sigma"), "real", "StudentT"),
    "flat": _Family((), (), "real", "Flat"),
    "uniform": _Family(("lower", "upper"), (), "interval", "Uniform"),
    "half-normal": _Family(("sigma",), ("sigma",), "positive", "HalfNormal"),
    "half-cauchy": _Family(("beta",), ("beta",), "positive", "HalfCauchy"),
    "half-t": _Family(("nu", "sigma"), ("nu", "sigma"), "positive", "HalfStudentT"),
    "log-normal": _Family(("mu", "sigma"), ("sigma",), "positive", "LogNormal"),
    "exponential": _Family(("lam",), ("lam",), "positive", "Exponential"),
    "gamma": _Family(("alpha", "beta"), ("alpha", "beta"), "positive", "Gamma"),
    # shape alpha, scale beta: density beta^alpha / Gamma(alpha) x^(-alpha-1) exp(-beta/x)
    # (scipy invgamma(a=alpha, scale=beta), PyMC InverseGamma(alpha, beta), JAGS/RoBMA invgamma)
    "inverse-gamma": _Family(("alpha", "beta"), ("alpha", "beta"), "positive", "InverseGamma"),
}
#: Named heterogeneity priors that depend on the data through s0 (Spiegelhalter et al.
#: 2004, section 5.7): s0^2 is the harmonic mean of the trials' sampling variances.
NAMED_TAU = ("uniform-shrinkage", "dumouchel")
SCALES: tuple[Scale, ...] = ("tau", "tau2", "precision")

_ROLE_FAMILIES: dict[Role, tuple[str, ...]] = {
    "mu": ("normal", "logistic", "student-t", "uniform", "flat"),
    "baseline": ("normal", "logistic", "student-t", "uniform", "flat"),
    "beta": ("normal", "logistic", "student-t", "uniform", "flat"),
    # degrees of freedom of Student-t random effects (positive)
    "nu": ("gamma", "exponential", "uniform", "half-normal", "log-normal"),
    "tau": (
        "half-normal",
        "half-cauchy",
        "half-t",
        "uniform",
        "log-normal",
        "exponential",
        "gamma",
        "inverse-gamma",
    ),
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CALL = re.compile(
    r"^\s*(?:(?P<scale>[a-z0-9]+)\s*:\s*)?(?P<name>[a-z][a-z0-9-]*)\s*(?:\((?P<args>.*)\))?\s*$"
)


def _fmt(x: float) -> str:
    """Shortest text that parses back to exactly ``x`` (``2.82``, ``50``, ``1e-05``)."""
    text = repr(float(x))
    return text.removesuffix(".0")


@dataclass(frozen=True)
class Prior:
    """A prior distribution, immutable and hashable.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES`, one of :data:`NAMED_TAU`, or ``"turner"``.
    params : tuple of float
        The family's parameters, in the order of the grammar (standard deviations, not
        variances or precisions).
    scale : {"tau", "tau2", "precision"}
        For heterogeneity priors: the quantity the distribution is stated on.
    label : str
        Extra description, e.g. the Turner et al. (2015) setting a preset came from.
    s0 : float or None
        For ``uniform-shrinkage`` and ``dumouchel``: the typical within-trial standard
        error, set from the data by :meth:`resolve`.
    """

    family: str
    params: tuple[float, ...] = ()
    scale: Scale = "tau"
    label: str = field(default="", compare=False)
    s0: float | None = None

    def __str__(self) -> str:
        if self.family in NAMED_TAU:
            return self.family
        args = ", ".join(_fmt(p) for p in self.params)
        prefix = "" if self.scale == "tau" else f"{self.scale}:"
        return f"{prefix}{self.family}({args})"

    def describe(self) -> str:
        """Grammar string plus any preset label or data-derived constant."""
        text = str(self)
        if self.family in NAMED_TAU and self.s0 is not None:
            text += f" (s0 = {self.s0:.4g})"
        if self.label:
            text += f" [{self.label}]"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (round-trips through :meth:`from_dict`)."""
        return {
            "text": str(self),
            "family": self.family,
            "params": list(self.params),
            "scale": self.scale,
            "label": self.label,
            "s0": self.s0,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prior:
        """Inverse of :meth:`to_dict`."""
        return cls(d["family"], tuple(d["params"]), d["scale"], d.get("label", ""), d.get("s0"))

    @property
    def needs_data(self) -> bool:
        """True for priors defined through the trials' standard errors."""
        return self.family in NAMED_TAU

    def resolve(self, se: np.ndarray) -> Prior:
        """Fix data-dependent constants (s0 of uniform-shrinkage and DuMouchel).

        s0^2 is the harmonic mean of the sampling variances ``se**2``.
        """
        if not self.needs_data:
            return self
        se = np.asarray(se, dtype=float)
        s0 = float(math.sqrt(len(se) / np.sum(1.0 / se**2)))
        return replace(self, s0=s0)

    # -- densities on the tau scale (used by the exact engine and by reports) --

    def dist(self) -> Any:
        """Frozen scipy distribution of the stated quantity (not for named forms)."""
        return _scipy_dist(self.family, tuple(float(v) for v in self.params))

    def tau_dist(self) -> TauDistribution:
        """The prior as a distribution of tau (with the Jacobian of any rescaling)."""
        if self.family in NAMED_TAU:
            if self.s0 is None:
                raise PriorError(f"{self.family}: s0 is unset; call resolve(se) with the data")
            return _NamedTau(self.family, self.s0)
        return TauDistribution(self.dist(), self.scale)


class TauDistribution:
    """A distribution on tau from one stated on tau, tau^2 or the precision 1/tau^2.

    Exposes vectorised ``logpdf``, ``pdf``, ``cdf``, ``sf`` and ``ppf`` on tau.
    """

    def __init__(self, base: Any, scale: Scale) -> None:
        self.base = base
        self.scale = scale

    def logpdf(self, tau: np.ndarray) -> np.ndarray:
        """Log density of tau (``-inf`` outside the support)."""
        t = np.asarray(tau, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.scale == "tau":
                out = self.base.logpdf(t)
            elif self.scale == "tau2":
                out = self.base.logpdf(t**2) + np.log(2 * t)
            else:
                out = self.base.logpdf(1 / t**2) + np.log(2.0) - 3 * np.log(t)
        return np.where(t >= 0, out, -np.inf)

    def pdf(self, tau: np.ndarray) -> np.ndarray:
        """Density of tau."""
        return np.exp(self.logpdf(tau))

    def cdf(self, tau: np.ndarray) -> np.ndarray:
        """P(tau <= t)."""
        t = np.maximum(np.asarray(tau, dtype=float), 0)
        if self.scale == "tau":
            return self.base.cdf(t)
        if self.scale == "tau2":
            return self.base.cdf(t**2)
        with np.errstate(divide="ignore"):
            return self.base.sf(1 / t**2)

    def sf(self, tau: np.ndarray) -> np.ndarray:
        """P(tau > t)."""
        return 1 - self.cdf(tau)

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """Quantile function of tau."""
        q = np.asarray(q, dtype=float)
        if self.scale == "tau":
            return self.base.ppf(q)
        if self.scale == "tau2":
            return np.sqrt(self.base.ppf(q))
        with np.errstate(divide="ignore"):
            return 1 / np.sqrt(self.base.isf(q))


class _NamedTau(TauDistribution):
    """Uniform shrinkage and DuMouchel priors on tau, given s0."""

    def __init__(self, family: str, s0: float) -> None:
        self.family = family
        self.s0 = s0

    def logpdf(self, tau: np.ndarray) -> np.ndarray:
        t = np.asarray(tau, dtype=float)
        s0 = self.s0
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.family == "uniform-shrinkage":
                # B = s0^2/(s0^2+tau^2) ~ U(0,1)  =>  p(tau) = 2 s0^2 tau / (s0^2+tau^2)^2
                out = np.log(2 * s0**2 * t) - 2 * np.log(s0**2 + t**2)
            else:  # dumouchel: s0/(s0+tau) ~ U(0,1)  =>  p(tau) = s0 / (s0+tau)^2
                out = np.log(s0) - 2 * np.log(s0 + t)
        return np.where(t >= 0, out, -np.inf)

    def cdf(self, tau: np.ndarray) -> np.ndarray:
        t = np.maximum(np.asarray(tau, dtype=float), 0)
        if self.family == "uniform-shrinkage":
            return t**2 / (self.s0**2 + t**2)
        return t / (self.s0 + t)

    def ppf(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        with np.errstate(divide="ignore"):
            if self.family == "uniform-shrinkage":
                return self.s0 * np.sqrt(q / (1 - q))
            return self.s0 * q / (1 - q)


class _HalfT:
    """Half Student-t (scipy has none): |X| with X ~ t(nu, 0, sigma)."""

    def __init__(self, nu: float, sigma: float) -> None:
        self.t = stats.t(df=nu, scale=sigma)

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.where(x >= 0, np.log(2) + self.t.logpdf(x), -np.inf)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.clip(2 * self.t.cdf(np.maximum(x, 0)) - 1, 0, 1)

    def sf(self, x: np.ndarray) -> np.ndarray:
        return 2 * self.t.sf(np.maximum(x, 0))

    def ppf(self, q: np.ndarray) -> np.ndarray:
        return self.t.ppf((1 + np.asarray(q)) / 2)

    def isf(self, q: np.ndarray) -> np.ndarray:
        return self.t.isf(np.asarray(q) / 2)


class _Flat:
    """Improper uniform density on the real line (log density 0)."""

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return np.zeros_like(np.asarray(x, dtype=float))


@lru_cache(maxsize=256)
def _scipy_dist(family: str, p: tuple[float, ...]) -> Any:
    """The frozen scipy distribution of ``family`` with parameters ``p``, made once.

    Freezing costs about 1 ms (scipy's argument parsing); every caller draws with an
    explicit ``random_state``, so one shared object is safe. Bounded: the explorer asks for
    a new prior with every move of a control.
    """
    match family:
        case "normal":
            return stats.norm(loc=p[0], scale=p[1])
        case "logistic":
            return stats.logistic(loc=p[0], scale=p[1])
        case "student-t":
            return stats.t(df=p[0], loc=p[1], scale=p[2])
        case "uniform":
            return stats.uniform(loc=p[0], scale=p[1] - p[0])
        case "half-normal":
            return stats.halfnorm(scale=p[0])
        case "half-cauchy":
            return stats.halfcauchy(scale=p[0])
        case "half-t":
            return _HalfT(p[0], p[1])
        case "log-normal":
            return stats.lognorm(s=p[1], scale=math.exp(p[0]))
        case "exponential":
            return stats.expon(scale=1 / p[0])
        case "gamma":
            return stats.gamma(a=p[0], scale=1 / p[1])
        case "inverse-gamma":
            return stats.invgamma(a=p[0], scale=p[1])
        case "flat":
            return _Flat()
    raise PriorError(f"no density for prior family {family!r}")


# --------------------------------------------------------------------------- grammar


def grammar_help(role: Role | None = None) -> str:
    """The valid prior forms (for error messages and ``--help``)."""
    names = _ROLE_FAMILIES[role] if role else tuple(FAMILIES)
    forms = [f"{n}({', '.join(FAMILIES[n].params)})" for n in names]
    if role in (None, "tau"):
        forms += [*NAMED_TAU, "turner(OUTCOME, COMPARISON)"]
        forms.append(
            "prefixes tau2: and precision: "
            "(e.g. tau2:uniform(0, 50), precision:gamma(0.001, 0.001))"
        )
    return ", ".join(forms)


def parse_prior(text: str | Prior, role: Role = "tau") -> Prior:
    """Parse a prior in the ``PRIOR`` grammar of INTERFACE.md.

    Parameters
    ----------
    text : str or Prior
        E.g. ``"half-normal(0.5)"``, ``"tau2:log-normal(-3.52, 1.74)"``,
        ``"precision:gamma(0.001, 0.001)"``, ``"uniform-shrinkage"``,
        ``"turner(obstetric, pharmacological vs placebo)"``.
    role : {"tau", "mu", "baseline", "beta", "nu"}
        Which parameter the prior is for; families that cannot serve it are errors.

    Returns
    -------
    Prior

    Raises
    ------
    PriorError
        One line naming what is wrong and listing the valid forms.
    """
    if isinstance(text, Prior):
        _check_role(text, role, str(text))
        return text
    if not isinstance(text, str) or not text.strip():
        raise PriorError(f"empty {role} prior; valid: {grammar_help(role)}")
    raw = text.strip()
    low = raw.lower()
    if low.startswith("turner"):
        if role != "tau":
            raise PriorError(
                f"{raw!r}: turner() is a heterogeneity (tau) prior, not a {role} prior"
            )
        return turner_prior(*_turner_args(raw))
    m = _CALL.match(low)
    if not m:
        raise PriorError(
            f"cannot parse prior {raw!r}; expected NAME(ARGS); valid: {grammar_help(role)}"
        )
    name, args, scale = m["name"], m["args"], m["scale"] or "tau"
    if scale not in SCALES:
        raise PriorError(f"{raw!r}: unknown scale prefix {scale!r}; valid: tau2:, precision:")
    if scale != "tau" and role != "tau":
        raise PriorError(f"{raw!r}: the {scale}: prefix applies to heterogeneity priors only")
    if name in NAMED_TAU:
        if role != "tau" or scale != "tau" or (args or "").strip():
            raise PriorError(f"{raw!r}: {name} takes no parameters and is a tau prior only")
        return Prior(name)
    if name not in FAMILIES:
        raise PriorError(f"unknown prior {name!r} in {raw!r}; valid: {grammar_help(role)}")
    fam = FAMILIES[name]
    if args is None:
        raise PriorError(f"{raw!r}: {name} needs parameters: {name}({', '.join(fam.params)})")
    parts = [a.strip() for a in args.split(",")] if args.strip() else []
    if len(parts) != len(fam.params):
        raise PriorError(
            f"{raw!r}: {name} takes {len(fam.params)} parameter(s) "
            f"({', '.join(fam.params) or 'none'}), got {len(parts)}"
        )
    values = []
    for pname, part in zip(fam.params, parts, strict=True):
        if not re.fullmatch(_NUMBER, part):
            raise PriorError(f"{raw!r}: parameter {pname} = {part!r} is not a number")
        values.append(float(part))
    prior = Prior(name, tuple(values), scale)  # type: ignore[arg-type]
    _check_params(prior, raw)
    _check_role(prior, role, raw)
    return prior


def _check_params(prior: Prior, raw: str) -> None:
    fam = FAMILIES[prior.family]
    named = dict(zip(fam.params, prior.params, strict=True))
    for pname, value in named.items():
        if not math.isfinite(value):
            raise PriorError(f"{raw!r}: parameter {pname} must be finite")
    for pname in fam.positive:
        if named[pname] <= 0:
            raise PriorError(f"{raw!r}: parameter {pname} must be > 0, got {_fmt(named[pname])}")
    if prior.family == "uniform" and not named["lower"] < named["upper"]:
        raise PriorError(f"{raw!r}: uniform needs lower < upper")


def _check_role(prior: Prior, role: Role, raw: str) -> None:
    if prior.family in NAMED_TAU or prior.family == "turner":
        ok = role == "tau"
    else:
        ok = prior.family in _ROLE_FAMILIES[role]
    if not ok:
        raise PriorError(f"{raw!r} is not a valid {role} prior; valid: {grammar_help(role)}")
    if role == "tau" and prior.family == "uniform" and prior.params[0] < 0:
        raise PriorError(f"{raw!r}: a heterogeneity prior needs lower >= 0")


# --------------------------------------------------------------------------- Turner


@cache
def turner_table() -> tuple[tuple[str, str, float, float], ...]:
    """Turner et al. (2015) Table IV: (outcome, comparison, mean, sd) of log(tau^2)."""
    path = resources.files("trialsynth.data") / "datasets" / "turner2015_log_or.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return tuple(
        (r["outcome"], r["comparison"], float(r["log_tau2_mean"]), float(r["log_tau2_sd"]))
        for r in rows
    )


def _norm_words(s: str) -> str:
    return re.sub(r"[^a-z]+", " ", s.lower()).strip()


_COMPARISON_ALIASES = {
    "pharm-placebo": "pharmacological vs. placebo / control",
    "pharm-pharm": "pharmacological vs. pharmacological",
    "nonpharm-placebo": "non-pharmacological vs. placebo / control",
    "nonpharm-pharm": "non-pharmacological vs. pharmacological",
    "nonpharm-nonpharm": "non-pharmacological vs. non-pharmacological",
}


def _turner_args(raw: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*turner\s*\((.*)\)\s*", raw, flags=re.IGNORECASE | re.DOTALL)
    parts = [p.strip().strip("'\"") for p in m[1].split(",")] if m else []
    if len(parts) != 2 or not all(parts):
        raise PriorError(
            f"{raw!r}: expected turner(OUTCOME, COMPARISON), e.g. "
            "turner(obstetric outcomes, pharmacological vs. placebo / control)"
        )
    return parts[0], parts[1]


def turner_prior(outcome: str, comparison: str) -> Prior:
    """The Turner et al. (2015) log-normal predictive prior for tau^2.

    ``outcome`` may be any unambiguous prefix of an outcome type (``"obstetric"``);
    ``comparison`` the table's wording (dots and slashes optional) or an alias
    (``pharm-placebo``, ``pharm-pharm``, ``nonpharm-placebo``, ``nonpharm-pharm``,
    ``nonpharm-nonpharm``).
    """
    table = turner_table()
    outcomes = sorted({r[0] for r in table})
    comparisons = sorted({r[1] for r in table})
    want_o = _norm_words(outcome)
    match_o = [o for o in outcomes if _norm_words(o).startswith(want_o)] if want_o else []
    if len(match_o) != 1:
        what = "matches several" if match_o else "matches none"
        raise PriorError(f"turner outcome {outcome!r} {what} of: {'; '.join(outcomes)}")
    comp = _COMPARISON_ALIASES.get(comparison.strip().lower(), comparison)
    match_c = [c for c in comparisons if _norm_words(c) == _norm_words(comp)]
    if not match_c:
        raise PriorError(
            f"turner comparison {comparison!r} is not one of: {'; '.join(comparisons)} "
            f"(aliases: {', '.join(_COMPARISON_ALIASES)})"
        )
    row = next(r for r in table if r[0] == match_o[0] and r[1] == match_c[0])
    return Prior(
        "log-normal",
        (row[2], row[3]),
        "tau2",
        label=f"Turner et al. 2015: {row[0]}, {row[1]}",
    )


# --------------------------------------------------------------------------- priors set


DEFAULT_MU = Prior("normal", (0.0, 2.82))
DEFAULT_TAU = Prior("half-normal", (0.5,))
#: Weakly informative on the control-arm log-odds: 95% of prior mass on control
#: probabilities between 5e-5 and 0.99995, so rare-event and zero-event arms are not
#: pulled towards 50%, while the sampler is kept away from +-infinity.
DEFAULT_BASELINE = Prior("normal", (0.0, 5.0))
#: Meta-regression slopes, per unit of the (centred) covariate: diffuse on purpose; set a
#: scale that suits the covariate's units (recorded and printed like every prior).
DEFAULT_BETA = Prior("normal", (0.0, 10.0))
#: Degrees of freedom of Student-t random effects when they are estimated: Juarez & Steel
#: (2010, J Bus Econ Stat 28:52-66) gamma(2, 0.1) (rate 0.1; mean 20, median 16.8, 5% below
#: 3.6), which keeps mass on heavy tails without ruling out near-normal effects.
DEFAULT_NU = Prior("gamma", (2.0, 0.1))
ROLES: tuple[Role, ...] = ("mu", "tau", "baseline", "beta", "nu")


@dataclass(frozen=True)
class PriorSet:
    """The priors of one analysis.

    Pooled effect ``mu``, heterogeneity ``tau``, control-arm log-odds ``baseline``,
    meta-regression slopes ``beta`` and the degrees of freedom ``nu`` of Student-t random
    effects (used only when they are estimated rather than fixed).
    """

    mu: Prior = DEFAULT_MU
    tau: Prior = DEFAULT_TAU
    baseline: Prior = DEFAULT_BASELINE
    beta: Prior = DEFAULT_BETA
    nu: Prior = DEFAULT_NU

    @classmethod
    def from_strings(
        cls,
        mu: str | None = None,
        tau: str | None = None,
        baseline: str | None = None,
        beta: str | None = None,
        nu: str | None = None,
    ) -> PriorSet:
        """Parse each given string with its role; keep the defaults for the others."""
        return cls(
            mu=parse_prior(mu, "mu") if mu else DEFAULT_MU,
            tau=parse_prior(tau, "tau") if tau else DEFAULT_TAU,
            baseline=parse_prior(baseline, "baseline") if baseline else DEFAULT_BASELINE,
            beta=parse_prior(beta, "beta") if beta else DEFAULT_BETA,
            nu=parse_prior(nu, "nu") if nu else DEFAULT_NU,
        )

    def to_dict(self) -> dict[str, str]:
        """Grammar strings (what ``summary.json`` records under ``priors``)."""
        return {role: getattr(self, role).describe() for role in ROLES}


# --------------------------------------------------------------------------- PyMC


def structure_key(prior: Prior) -> tuple[str, str]:
    """What a compiled model depends on: the family and scale, not the numbers."""
    return (prior.family, prior.scale)


def hyper_values(prior: Prior, name: str) -> dict[str, np.ndarray]:
    """The ``pm.Data`` values that carry a prior's parameters (for ``with_data``)."""
    if prior.family in NAMED_TAU:
        return {f"{name}_s0": np.asarray(prior.s0, dtype=float)}
    fam = FAMILIES[prior.family]
    return {
        f"{name}_{p}": np.asarray(v, dtype=float)
        for p, v in zip(fam.params, prior.params, strict=True)
    }


def pymc_variable(prior: Prior, name: str, *, dims: str | None = None) -> Any:
    """Create the random variable ``name`` with this prior in the current PyMC model.

    Numeric parameters become ``pm.Data`` named ``{name}_{param}`` so that a compiled
    model can be refitted under other hyperparameters of the same family. For a
    heterogeneity prior stated on ``tau2`` or ``precision`` the sampled variable is
    ``tau2``/``precision`` and ``tau`` is a deterministic transform of it.

    Returns
    -------
    TensorVariable
        The variable on the scale of ``name`` (tau for heterogeneity priors).
    """
    import pymc as pm
    import pytensor.tensor as pt

    data = {k: pm.Data(k, v) for k, v in hyper_values(prior, name).items()}
    if prior.family in NAMED_TAU:
        s0 = data[f"{name}_s0"]
        if prior.family == "uniform-shrinkage":
            b = pm.Uniform(f"{name}_shrinkage", 0.0, 1.0, dims=dims)
            return pm.Deterministic(name, s0 * pt.sqrt((1 - b) / b), dims=dims)
        u = pm.Uniform(f"{name}_dumouchel", 0.0, 1.0, dims=dims)
        return pm.Deterministic(name, s0 * (1 - u) / u, dims=dims)
    fam = FAMILIES[prior.family]
    kwargs = {p: data[f"{name}_{p}"] for p in fam.params}
    dist = getattr(pm, fam.pymc)
    if prior.scale == "tau":
        return dist(name, **kwargs, dims=dims)
    inner = dist(f"{name}_{prior.scale}" if name != "tau" else prior.scale, **kwargs, dims=dims)
    if prior.scale == "tau2":
        return pm.Deterministic(name, pt.sqrt(inner), dims=dims)
    return pm.Deterministic(name, 1 / pt.sqrt(inner), dims=dims)
