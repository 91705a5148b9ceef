"""The future trial: predictive distribution, assurance and classical power (numpy only).

For a new two-arm trial with ``N`` participants per arm, each posterior draw ``s`` of a
fitted meta-analysis gives a future trial's true log odds ratio ``theta_new[s]`` (drawn from
the random-effects distribution, :mod:`trialsynth.engines.mcmc`) and a control-arm event rate
``p_c[s]`` (given, or drawn from the posterior of the analysed trials' control arms, see
:func:`control_logits`). The trial's arm counts are simulated,
``x_c ~ Bin(N, p_c)``, ``x_t ~ Bin(N, expit(logit(p_c) + theta_new))``, and a **criterion**
decides whether the trial "shows benefit":

``two-sided-test``
    the Wald test of the observed log odds ratio (0.5 added to every cell of a trial with a
    zero cell) is significant at two-sided level ``alpha`` in favour of treatment:
    ``lor / se > z_{1 - alpha/2}``.
``posterior``
    the posterior probability P(OR > 1) of the new trial analysed alone, under a stated
    normal analysis prior on its log odds ratio and the normal approximation to its
    likelihood (``lor ~ N(theta, se^2)``, conjugate), exceeds ``threshold``.

Both reduce to ``lor > boundary(se)`` (:meth:`Criterion.boundary`). The **assurance** is the
probability of success averaged over the posterior (O'Hagan, Stevens & Campbell 2005,
Pharm Stat 4:187); the **classical power** evaluates the same criterion at one point, the
pooled posterior median OR and the median control rate, and so ignores the uncertainty
about the effect and the heterogeneity between trials. As ``N`` grows the assurance tends
to P(theta_new > 0) (every trial with a true benefit eventually succeeds, no other does), so
a target above that limit is unreachable at any size.

Several sizes are simulated as one trial that grows: the counts at the next size add
independent binomial increments to the counts at the previous one. The curve over ``N`` is
then smooth (common random numbers), and a size's numbers depend on the seed and on the
list of sizes evaluated (within Monte Carlo error).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import expit

from trialsynth.core.errors import TrialsynthError
from trialsynth.engines.diagnostics import probability_mcse
from trialsynth.priors.prior import Prior, PriorError, parse_prior

if TYPE_CHECKING:
    from trialsynth.results.base import FitResult

CRITERIA = ("two-sided-test", "posterior")
#: Analysis prior of the ``posterior`` criterion unless stated: the default prior of the
#: pooled log-OR (95% prior OR within 1/250..250).
DEFAULT_ANALYSIS_PRIOR = Prior("normal", (0.0, 2.82))
#: Continuity correction of the simulated trial's log odds ratio (added to every cell of a
#: trial with a zero cell, as in :mod:`trialsynth.core.effects`).
CORRECTION = 0.5
#: Quantiles reported for the predictive distributions.
QUANTILES = {"q025": 0.025, "q25": 0.25, "median": 0.5, "q75": 0.75, "q975": 0.975}
#: Default number of simulated future trials (rounded up to a multiple of the draws).
DEFAULT_SIMS = 40_000
#: Largest sample size per arm accepted (the classical power enumerates the counts).
MAX_N = 100_000
CONTROL_FROM_POSTERIOR = (
    "posterior: per draw, the control-arm rate of one analysed trial chosen at random "
    "(its posterior alpha), so both estimation uncertainty and between-trial spread count"
)


class AssuranceError(TrialsynthError):
    """A design request that cannot be honoured (one line naming the problem)."""


@dataclass(frozen=True)
class Criterion:
    """When a simulated future trial counts as showing benefit.

    Attributes
    ----------
    kind : {"two-sided-test", "posterior"}
        See the module docstring.
    alpha : float
        Two-sided level of the Wald test (``two-sided-test``).
    threshold : float
        Required posterior P(OR > 1) of the new trial alone (``posterior``).
    analysis_prior : Prior
        Prior of the new trial's log-OR for the ``posterior`` criterion: ``normal(m, s)``
        or ``flat()``.
    """

    kind: str = "two-sided-test"
    alpha: float = 0.05
    threshold: float = 0.95
    analysis_prior: Prior = DEFAULT_ANALYSIS_PRIOR

    def __post_init__(self) -> None:
        if self.kind not in CRITERIA:
            raise AssuranceError(f"unknown criterion {self.kind!r}; valid: {', '.join(CRITERIA)}")
        if not 0 < self.alpha < 1:
            raise AssuranceError(f"--alpha must be in (0, 1), got {self.alpha}")
        if not 0.5 <= self.threshold < 1:
            raise AssuranceError(f"--threshold must be in [0.5, 1), got {self.threshold}")
        if self.analysis_prior.family not in ("normal", "flat"):
            raise AssuranceError(
                f"--analysis-prior {self.analysis_prior} is not supported (the criterion uses a "
                "conjugate normal analysis); valid: normal(m, s), flat()"
            )

    @classmethod
    def from_options(
        cls,
        kind: str = "two-sided-test",
        *,
        alpha: float = 0.05,
        threshold: float = 0.95,
        analysis_prior: str | None = None,
    ) -> Criterion:
        """Criterion from the CLI options (prior given in the PRIOR grammar)."""
        prior = DEFAULT_ANALYSIS_PRIOR
        if analysis_prior:
            try:
                prior = parse_prior(analysis_prior, "mu")
            except PriorError:
                raise AssuranceError(
                    f"--analysis-prior {analysis_prior!r} is not valid; valid: normal(m, s), flat()"
                ) from None
        return cls(kind=kind, alpha=alpha, threshold=threshold, analysis_prior=prior)

    def boundary(self, se: np.ndarray) -> np.ndarray:
        """Smallest observed log-OR that succeeds, given its standard error.

        Two-sided test: ``z_{1-alpha/2} se``. Posterior: with prior ``N(m0, s0^2)`` the new
        trial's posterior is normal with precision ``P = 1/se^2 + 1/s0^2`` and mean
        ``(lor/se^2 + m0/s0^2) / P``; P(theta > 0) > threshold iff
        ``lor > se^2 (z_threshold sqrt(P) - m0/s0^2)``.
        """
        se = np.asarray(se, dtype=float)
        if self.kind == "two-sided-test":
            return stats.norm.ppf(1 - self.alpha / 2) * se
        z = stats.norm.ppf(self.threshold)
        if self.analysis_prior.family == "flat":
            return z * se
        m0, s0 = self.analysis_prior.params
        precision = 1 / se**2 + 1 / s0**2
        return se**2 * (z * np.sqrt(precision) - m0 / s0**2)

    def success(self, lor: np.ndarray, se: np.ndarray) -> np.ndarray:
        """True where a trial with this observed log-OR and SE shows benefit."""
        return np.asarray(lor) > self.boundary(se)

    def describe(self) -> str:
        """One-line statement of the criterion (printed and recorded)."""
        if self.kind == "two-sided-test":
            return f"two-sided Wald test of the log-OR at level {self.alpha:g} favouring treatment"
        return (
            f"posterior P(OR > 1) > {self.threshold:g} from the new trial alone, analysis prior "
            f"log-OR ~ {self.analysis_prior} (normal approximation to its likelihood)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d: dict[str, Any] = {"criterion": self.kind, "criterion_text": self.describe()}
        if self.kind == "two-sided-test":
            d["alpha"] = self.alpha
        else:
            d["threshold"] = self.threshold
            d["analysis_prior"] = str(self.analysis_prior)
        return d


def observed_log_or(
    x_t: np.ndarray, x_c: np.ndarray, n: int | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log odds ratio and Woolf SE of trials with ``n`` per arm (0.5 added if a cell is 0)."""
    a = np.asarray(x_t, dtype=float)
    c = np.asarray(x_c, dtype=float)
    n = np.asarray(n, dtype=float)
    b, d = n - a, n - c
    fix = CORRECTION * ((a == 0) | (b == 0) | (c == 0) | (d == 0))
    a, b, c, d = a + fix, b + fix, c + fix, d + fix
    return np.log(a * d / (b * c)), np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)


def parse_n_range(text: str) -> list[int]:
    """``START:STOP:STEP`` (STOP included when on the grid) as a list of sizes per arm."""
    parts = text.split(":")
    try:
        start, stop, step = (int(p) for p in parts)
    except ValueError:
        raise AssuranceError(
            f"--n-range {text!r}: expected START:STOP:STEP of integers, e.g. 50:1000:50"
        ) from None
    if start < 1 or step < 1 or stop < start:
        raise AssuranceError(
            f"--n-range {text!r}: need 1 <= START <= STOP and STEP >= 1, e.g. 50:1000:50"
        )
    return list(range(start, stop + 1, step))


def check_sizes(n_per_arm: Sequence[int]) -> list[int]:
    """Sorted unique sizes per arm, each an integer in [1, MAX_N]."""
    if len(n_per_arm) == 0:
        raise AssuranceError("give the size per arm: --n-per-arm N (repeatable) or --n-range")
    out = []
    for n in n_per_arm:
        if isinstance(n, bool) or int(n) != n or not 1 <= n <= MAX_N:
            raise AssuranceError(f"--n-per-arm {n!r}: must be an integer in 1..{MAX_N}")
        out.append(int(n))
    return sorted(set(out))


def control_logits(
    fit: FitResult, control_rate: float | None, *, seed: int, trials: Sequence[int] | None = None
) -> tuple[np.ndarray | float, str]:
    """Control-arm log-odds of the future trial, per draw, and how it was chosen.

    A given ``control_rate`` is used for every draw. Otherwise, for each posterior draw one
    analysed trial (among ``trials``, positions in the fit; default all) is picked at random
    and its control-arm log-odds ``alpha`` in that draw is used: the future trial's control
    population is taken to be like one of the analysed ones (estimation uncertainty and the
    spread between trials both count).
    """
    if control_rate is not None:
        if not 0 < control_rate < 1:
            raise AssuranceError(f"--control-rate must be in (0, 1), got {control_rate}")
        return float(np.log(control_rate / (1 - control_rate))), "given"
    if "alpha" not in fit.tree["posterior"]:
        raise AssuranceError(
            f"this fit ({fit.provenance['model']['name']}, {fit.provenance['model']['likelihood']}"
            " likelihood) has no control-arm parameters: give --control-rate P"
        )
    alpha = fit.draws("alpha")  # (chain, draw, study)
    if trials is not None:
        alpha = alpha[..., list(trials)]
    rng = np.random.default_rng([seed, 2])
    pick = rng.integers(alpha.shape[-1], size=alpha.shape[:2])
    return np.take_along_axis(alpha, pick[..., None], -1)[..., 0], CONTROL_FROM_POSTERIOR


def _quantiles(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(np.asarray(x, dtype=float).ravel(), list(QUANTILES.values()))
    return {k: float(v) for k, v in zip(QUANTILES, q, strict=True)}


@dataclass(frozen=True)
class DesignPoint:
    """Assurance and predictive distributions of a future trial of one size."""

    n_per_arm: int
    assurance: float
    mcse: float
    classical_power: float | None
    predictive: dict[str, dict[str, float]] = field(default_factory=dict)


def simulate_counts(
    theta: np.ndarray,
    control_logit: np.ndarray | float,
    n_per_arm: Sequence[int],
    *,
    sims: int = DEFAULT_SIMS,
    seed: int = 0,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The simulated future trials' arm counts, size by size (ascending).

    Yields ``(n, x_t, x_c)`` with counts of shape ``(reps, chain, draw)``, ``reps`` the
    number of simulated trials per draw (``sims`` rounded up to a multiple of the draws).
    The counts at a size add independent binomial increments to those at the previous
    size (one trial that grows); the arrays are updated in place between sizes. Every
    criterion judged on the same seed and sizes sees the same trials.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 2:
        raise AssuranceError("theta must have dims (chain, draw)")
    sizes = check_sizes(n_per_arm)
    reps = max(1, math.ceil(sims / theta.size))
    shape = (reps, *theta.shape)
    a_c = np.broadcast_to(np.asarray(control_logit, dtype=float), theta.shape)
    p_c = np.broadcast_to(expit(a_c), shape)
    p_t = np.broadcast_to(expit(a_c + theta), shape)
    rng = np.random.default_rng([seed, 3])
    x_t = np.zeros(shape, dtype=np.int64)
    x_c = np.zeros(shape, dtype=np.int64)
    previous = 0
    for n in sizes:
        x_t += rng.binomial(n - previous, p_t)
        x_c += rng.binomial(n - previous, p_c)
        previous = n
        yield n, x_t, x_c


def simulate(
    theta: np.ndarray,
    control_logit: np.ndarray | float,
    n_per_arm: Sequence[int],
    criterion: Criterion,
    *,
    sims: int = DEFAULT_SIMS,
    seed: int = 0,
) -> tuple[list[DesignPoint], int]:
    """Assurance of future trials of each size, by simulation from posterior draws.

    Parameters
    ----------
    theta : ndarray, shape (chain, draw)
        Draws of the future trial's true log odds ratio.
    control_logit : ndarray of shape (chain, draw), or float
        Its control-arm log-odds, per draw or fixed.
    n_per_arm : sequence of int
        Sizes per arm to evaluate.
    criterion : Criterion
        When a trial shows benefit.
    sims : int
        Number of simulated trials, rounded up to a multiple of the number of draws so
        every draw is used equally often.
    seed : int
        Seed of the simulation (same seed, same numbers).

    Returns
    -------
    list of DesignPoint, int
        One point per size (ascending; ``classical_power`` unset) and the number of
        simulated trials. The MCSE uses the effective sample size of the per-draw success
        fractions, so the autocorrelation of the MCMC draws is accounted for.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 2:
        raise AssuranceError("theta must have dims (chain, draw)")
    points = []
    reps = max(1, math.ceil(sims / theta.size))
    for n, x_t, x_c in simulate_counts(theta, control_logit, n_per_arm, sims=sims, seed=seed):
        lor, se = observed_log_or(x_t, x_c, n)
        ok = criterion.success(lor, se)
        per_draw = ok.mean(axis=0)  # (chain, draw)
        points.append(
            DesignPoint(
                n_per_arm=n,
                assurance=float(ok.mean()),
                mcse=probability_mcse(per_draw),
                classical_power=None,
                predictive={
                    "or_observed": _quantiles(np.exp(lor)),
                    "live_births_t": _quantiles(x_t),
                    "live_births_c": _quantiles(x_c),
                },
            )
        )
    return points, reps * theta.size


def exact_power(theta: float, control_rate: float, n: int, criterion: Criterion) -> float:
    """Probability of success at one true log-OR and control rate (exact binomial sum).

    Enumerates the arm counts within 9 standard deviations of their means (the omitted
    probability is below 1e-17).
    """
    p_c = float(control_rate)
    p_t = float(expit(math.log(p_c / (1 - p_c)) + theta))

    def support(p: float) -> np.ndarray:
        sd = math.sqrt(n * p * (1 - p))
        lo, hi = max(0, math.floor(n * p - 9 * sd - 1)), min(n, math.ceil(n * p + 9 * sd + 1))
        return np.arange(lo, hi + 1)

    xc, xt = support(p_c), support(p_t)
    lor, se = observed_log_or(xt[None, :], xc[:, None], n)
    w = np.outer(stats.binom.pmf(xc, n, p_c), stats.binom.pmf(xt, n, p_t))
    return float(np.sum(w * criterion.success(lor, se)))


def normal_assurance(
    mean: float, sd: float, control_rate: float, n: int, criterion: Criterion
) -> float:
    """Closed-form normal approximation of the assurance (an independent check).

    The future log-OR ``theta ~ N(mean, sd^2)``; given ``theta`` the observed log-OR is
    approximately ``N(theta, v(theta)/n)`` with ``v = 1/(p_c q_c) + 1/(p_t q_t)``, and the
    trial succeeds when it exceeds the criterion's boundary at that SE. The power curve
    ``Phi((theta - boundary) / se)`` is integrated against the normal density of theta by
    Gauss-Hermite quadrature (200 nodes).
    """
    x, w = np.polynomial.hermite_e.hermegauss(200)
    th = mean + sd * x
    p_c = control_rate
    p_t = expit(math.log(p_c / (1 - p_c)) + th)
    se = np.sqrt((1 / (p_c * (1 - p_c)) + 1 / (p_t * (1 - p_t))) / n)
    power = stats.norm.cdf((th - criterion.boundary(se)) / se)
    return float(np.sum(w * power) / np.sum(w))


def n_for_target(points: Sequence[DesignPoint], target: float) -> int | None:
    """Smallest size per arm among ``points`` whose assurance estimate reaches ``target``."""
    for p in sorted(points, key=lambda p: p.n_per_arm):
        if p.assurance >= target:
            return p.n_per_arm
    return None


@dataclass(frozen=True)
class DesignResult:
    """Assurance curve of a future trial, with what it rests on."""

    points: list[DesignPoint]
    criterion: Criterion
    control_rate: float
    control_rate_interval: tuple[float, float] | None
    control_source: str
    pooled_log_or: float
    assurance_limit: float
    assurance_limit_mcse: float
    target: float
    sims: int
    seed: int
    fit_priors: dict[str, str]
    fit_status: str
    data_name: str
    subgroup: str | None = None

    @property
    def pooled_or(self) -> float:
        """Pooled posterior median OR (where the classical power is evaluated)."""
        return math.exp(self.pooled_log_or)

    @property
    def n_for_target(self) -> int | None:
        """Smallest evaluated size per arm whose assurance reaches the target (or None)."""
        return n_for_target(self.points, self.target)

    @property
    def target_note(self) -> str:
        """Why no size reached the target, or where the answer lies."""
        n = self.n_for_target
        if n is not None:
            return (
                f"N per arm for assurance >= {self.target:g}: {n} "
                "(smallest evaluated size; grid resolution applies)"
            )
        if self.assurance_limit <= self.target:
            return (
                f"assurance {self.target:g} is unreachable at any N: it cannot exceed "
                f"P(OR_new > 1) = {self.assurance_limit:.3f}"
            )
        return (
            f"assurance {self.target:g} not reached up to N = {self.points[-1].n_per_arm} per "
            f"arm (limit as N grows: {self.assurance_limit:.3f}); evaluate larger sizes"
        )

    def to_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        """The ``design --json`` object of INTERFACE.md (a list for several sizes)."""
        common = {
            "control_rate": self.control_rate,
            **self.criterion.to_dict(),
            "control_rate_source": self.control_source,
            "control_rate_interval": (
                list(self.control_rate_interval) if self.control_rate_interval else None
            ),
            "pooled_or": math.exp(self.pooled_log_or),
            "assurance_limit": self.assurance_limit,
            "assurance_limit_mcse": self.assurance_limit_mcse,
            "target": self.target,
            "n_for_target": self.n_for_target,
            "sims": self.sims,
            "seed": self.seed,
            "fit_priors": self.fit_priors,
            "fit_status": self.fit_status,
            "data": self.data_name,
            "subgroup": self.subgroup,
        }
        rows = [
            {
                "n_per_arm": p.n_per_arm,
                "control_rate": self.control_rate,
                "criterion": self.criterion.kind,
                "assurance": p.assurance,
                "mcse": p.mcse,
                "classical_power": p.classical_power,
                **{k: v for k, v in common.items() if k not in ("control_rate", "criterion")},
                "predictive": p.predictive,
            }
            for p in self.points
        ]
        return rows[0] if len(rows) == 1 else rows

    def curve(self) -> dict[str, np.ndarray]:
        """The assurance curve as arrays (for a figure): N, assurance, MCSE, power."""
        return {
            "n_per_arm": np.array([p.n_per_arm for p in self.points]),
            "assurance": np.array([p.assurance for p in self.points]),
            "mcse": np.array([p.mcse for p in self.points]),
            "classical_power": np.array(
                [np.nan if p.classical_power is None else p.classical_power for p in self.points]
            ),
        }


def check_request(
    fit: FitResult,
    target: float,
    sims: int,
    seed: int | None,
    error: type[AssuranceError] = AssuranceError,
) -> int:
    """Check a design's target and simulation count; the seed (default: the fit's)."""
    if not 0 < target < 1:
        raise error(f"--target must be in (0, 1), got {target}")
    if isinstance(sims, bool) or not isinstance(sims, int) or sims < 1:
        raise error(f"--sims must be a positive integer, got {sims!r}")
    seed = int(fit.provenance["seed"]) if seed is None else seed
    if seed < 0:
        raise error(f"--seed must be a non-negative integer, got {seed}")
    return seed


def control_rate_summary(
    logit_c: ArrayLike, control_rate: float | None
) -> tuple[float, tuple[float, float] | None]:
    """The median control rate of a design, and its 95% interval when drawn (not given)."""
    rates = expit(np.asarray(logit_c, dtype=float))
    interval = (
        None
        if control_rate is not None
        else (float(np.quantile(rates, 0.025)), float(np.quantile(rates, 0.975)))
    )
    return float(np.median(rates)), interval


def described_priors(fit: FitResult) -> dict[str, str]:
    """The fit's priors in the grammar, by role (what a design records of its fit)."""
    return {
        role: Prior.from_dict(spec).describe()
        for role, spec in fit.provenance["priors"].items()
        if role in fit.prior_roles()
    }


def design_trial(
    fit: FitResult,
    n_per_arm: Sequence[int],
    *,
    control_rate: float | None = None,
    criterion: Criterion | None = None,
    target: float = 0.8,
    sims: int = DEFAULT_SIMS,
    seed: int | None = None,
    subgroup: str | None = None,
) -> DesignResult:
    """Assurance of a future two-arm trial from a fitted meta-analysis.

    Parameters
    ----------
    fit : FitResult
        A fit (or :meth:`~trialsynth.results.base.FitResult.load`-ed folder) with ``theta_new``.
    n_per_arm : sequence of int
        Sizes per arm to evaluate.
    control_rate : float, optional
        Control-arm event (live-birth) rate; default drawn from the posterior
        (:func:`control_logits`, binomial-likelihood fits only).
    criterion : Criterion, optional
        Default: two-sided Wald test at level 0.05 favouring treatment.
    target : float
        Assurance wanted; the result reports the smallest evaluated N reaching it.
    sims : int
        Simulated trials (rounded up to a multiple of the number of draws).
    seed : int, optional
        Default: the fit's seed.
    subgroup : str, optional
        For a subgroup fit: a future trial in this subgroup (its ``theta_new_subgroup``,
        its pooled OR for the classical power, control rates of its trials only).

    Returns
    -------
    DesignResult
        Assurance with MCSE, predictive quantiles of the observed OR and of the live births
        per arm, and the classical power at the pooled posterior median, for each size.
    """
    criterion = criterion or Criterion()
    seed = check_request(fit, target, sims, seed)
    sizes = check_sizes(n_per_arm)
    theta, members = _future_effect(fit, subgroup)
    logit_c, source = control_logits(fit, control_rate, seed=seed, trials=members)
    if subgroup is not None and control_rate is None:
        source += f"; trials of subgroup {subgroup!r} only"
    points, total = simulate(theta, logit_c, sizes, criterion, sims=sims, seed=seed)
    rate, interval = control_rate_summary(logit_c, control_rate)
    pooled = float(
        np.median(
            fit.draws("mu")
            if subgroup is None
            else fit.draws("mu_subgroup")[..., fit.subgroups.index(subgroup)]
        )
    )
    points = [
        DesignPoint(
            n_per_arm=p.n_per_arm,
            assurance=p.assurance,
            mcse=p.mcse,
            classical_power=exact_power(pooled, rate, p.n_per_arm, criterion),
            predictive=p.predictive,
        )
        for p in points
    ]
    return DesignResult(
        points=points,
        criterion=criterion,
        control_rate=rate,
        control_rate_interval=interval,
        control_source=source,
        pooled_log_or=pooled,
        assurance_limit=float(np.mean(theta > 0)),
        assurance_limit_mcse=probability_mcse(theta > 0),
        target=target,
        sims=total,
        seed=seed,
        fit_priors=described_priors(fit),
        fit_status="ok" if fit.ok else "failed",
        data_name=str(fit.provenance.get("data_name", "")),
        subgroup=subgroup,
    )


def _future_effect(fit: FitResult, subgroup: str | None) -> tuple[np.ndarray, list[int] | None]:
    """Draws of the future trial's log-OR, and the trials whose control arms it resembles."""
    if subgroup is None:
        return fit.draws("theta_new"), None
    levels = fit.subgroups
    if not levels:
        raise AssuranceError(
            f"--subgroup {subgroup!r}: this fit has no subgroups (fit with --subgroup COLUMN)"
        )
    if subgroup not in levels:
        raise AssuranceError(f"--subgroup {subgroup!r} is not a level; valid: {', '.join(levels)}")
    column = fit.provenance["model"]["subgroup"]
    frame = fit.data_frame.set_index("study").loc[fit.studies]
    members = [i for i, v in enumerate(frame[column].astype(str)) if v == subgroup]
    theta = fit.draws("theta_new_subgroup")[..., levels.index(subgroup)]
    return theta, members
