"""The next trial judged by the meta-analysis it joins: assurance curves against N.

:func:`design_updated` simulates the new trial as :mod:`~trialsynth.analysis.assurance`
does and reports, per size, the updated-meta assurance (Bayesian, by the update of
:mod:`~trialsynth.analysis.mixture_update`, and classical, the updated DerSimonian-Laird of
:mod:`~trialsynth.analysis.updated_conclusion`) beside the stand-alone one, with the limits
as N grows and the observed ORs at which the conclusion flips; :func:`refit_check` checks
weak importance reweighting by MCMC refits, :func:`panel_summary` says it in plain words.

References: Sutton AJ et al. (2007), Evidence-based sample size calculations based upon
updated meta-analysis, Stat Med 26:2479-2500; Roloff V et al. (2013), Planning future
studies based on the conditional power of a meta-analysis, Stat Med 32:11-24.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from trialsynth.analysis.assurance import (
    DEFAULT_SIMS,
    QUANTILES,
    Criterion,
    check_request,
    check_sizes,
    control_logits,
    control_rate_summary,
    described_priors,
    simulate_counts,
)
from trialsynth.analysis.mixture_update import (
    Components,
    Screened,
    UpdateError,
    components_for,
    old_contrasts,
    updated_probability,
)
from trialsynth.analysis.updated_conclusion import (
    Crossing,
    bayes_limit,
    classical_limit,
    crossings,
    dl_update,
)
from trialsynth.core.effects import log_odds_ratios
from trialsynth.data import ArmData, ContrastData, TrialData
from trialsynth.engines.diagnostics import probability_mcse
from trialsynth.engines.exact import exact_for
from trialsynth.results.fitting import fit as do_fit

if TYPE_CHECKING:
    from trialsynth.results.base import FitResult

FloatArray = NDArray[np.float64]


#: The criteria that judge the new trial by the updated meta-analysis.
UPDATED_CRITERIA = ("updated-meta", "updated-meta-classical")
#: Every curve of an updated design, all judged on the same simulated trials.
CURVES = ("two-sided-test", "posterior", "updated-meta", "updated-meta-classical")
#: Kish ESS below which a simulated trial's reweighted posterior is counted as weak.
ESS_WARN = 200.0
#: Simulated trials kept per size as candidates for a check by refitting (lowest ESS
#: among those whose updated P(OR > 1) is within :data:`CANDIDATE_BAND` of the threshold).
CANDIDATES = 5
CANDIDATE_BAND = 0.1


@dataclass(frozen=True)
class Curve:
    """One criterion at one size: assurance with its MCSE, power at the pooled estimate."""

    assurance: float
    mcse: float
    classical_power: float


@dataclass(frozen=True)
class UpdatedPoint:
    """Every curve at one size, with the importance-sampling record and the crossings.

    Attributes
    ----------
    n_per_arm : int
        Participants per arm.
    curves : dict of str to Curve
        Keyed by :data:`CURVES`.
    importance : dict or None
        Kish ESS of the reweighted posteriors over the simulated trials (``min``, ``q01``,
        ``median``, ``min_near_threshold``, ``n_below``: below :data:`ESS_WARN`), the
        assurance's MCSE part due to the draws (``criterion_mcse``) and how many trials
        were computed directly; None for an exact fit.
    crossing : Crossing
        Observed ORs at which the conclusions flip (at the median control rate).
    predictive : dict
        Predictive quantiles of the observed OR and of the events per arm.
    candidates : list of dict
        Simulated trials for a check by refitting (see :data:`CANDIDATES`).
    """

    n_per_arm: int
    curves: dict[str, Curve]
    importance: dict[str, float] | None
    crossing: Crossing
    predictive: dict[str, dict[str, float]]
    candidates: list[dict[str, float]]


def describe_criterion(kind: str, threshold: float, k: int) -> str:
    """One-line statement of an updated-meta criterion (printed and recorded)."""
    if kind == "updated-meta":
        return (
            f"posterior P(OR > 1) > {threshold:g} from the meta-analysis of the {k} trials plus "
            "the new one (same model and priors as the fit)"
        )
    return (
        f"DerSimonian-Laird random-effects 95% CI of the {k} trials plus the new one excludes "
        "OR 1 in favour of treatment"
    )


@dataclass(frozen=True)
class UpdatedDesign:
    """Assurance curves of a future trial judged alone and by the updated meta-analysis."""

    points: list[UpdatedPoint]
    criterion: str
    threshold: float
    alpha: float
    k: int
    control_rate: float
    control_rate_interval: tuple[float, float] | None
    control_source: str
    pooled_log_or: float
    limits: dict[str, tuple[float, float]]
    limit_boundary: float | None
    p_mu_gt_0: float
    components: str
    n_components: int
    target: float
    sims: int
    seed: int
    fit_priors: dict[str, str]
    fit_status: str
    data_name: str
    checks: tuple[dict[str, Any], ...] = ()

    @property
    def pooled_or(self) -> float:
        """Pooled posterior median OR (where the classical power is evaluated)."""
        return math.exp(self.pooled_log_or)

    @property
    def criterion_text(self) -> str:
        """The chosen criterion in words."""
        return describe_criterion(self.criterion, self.threshold, self.k)

    @property
    def assurance_limit(self) -> float:
        """Limit of the chosen criterion's assurance as N grows."""
        return self.limits[self.criterion][0]

    def n_for(self, curve: str, target: float | None = None) -> int | None:
        """Smallest evaluated N per arm whose ``curve`` assurance reaches the target."""
        goal = self.target if target is None else target
        hits = [p.n_per_arm for p in self.points if p.curves[curve].assurance >= goal]
        return min(hits) if hits else None

    def target_note(self, curve: str | None = None) -> str:
        """Where the target is reached for ``curve`` (default the chosen criterion), or why not."""
        curve = curve or self.criterion
        n = self.n_for(curve)
        limit = self.limits["stand-alone" if curve in ("two-sided-test", "posterior") else curve]
        if n is not None:
            return f"N per arm for assurance >= {self.target:g}: {n} (smallest evaluated size)"
        if limit[0] <= self.target:
            return (
                f"assurance {self.target:g} is unreachable at any N: the limit as N grows is "
                f"{limit[0]:.3f} ± {limit[1]:.3f}"
            )
        return (
            f"assurance {self.target:g} not reached up to N = {self.points[-1].n_per_arm} per "
            f"arm (limit as N grows: {limit[0]:.3f}); evaluate larger sizes"
        )

    def curve(self, name: str) -> dict[str, FloatArray]:
        """One curve as arrays (for a figure): N, assurance, MCSE, classical power."""
        return {
            "n_per_arm": np.array([p.n_per_arm for p in self.points], dtype=float),
            "assurance": np.array([p.curves[name].assurance for p in self.points]),
            "mcse": np.array([p.curves[name].mcse for p in self.points]),
            "classical_power": np.array([p.curves[name].classical_power for p in self.points]),
        }

    def to_json(self) -> dict[str, Any] | list[dict[str, Any]]:
        """``design --json`` rows (INTERFACE.md keys first; a list for several sizes)."""
        rows = [self._row(p) for p in self.points]
        return rows[0] if len(rows) == 1 else rows

    def _row(self, p: UpdatedPoint) -> dict[str, Any]:
        main = p.curves[self.criterion]
        alone = p.curves["two-sided-test"]
        return {
            "n_per_arm": p.n_per_arm,
            "control_rate": self.control_rate,
            "criterion": self.criterion,
            "assurance": main.assurance,
            "mcse": main.mcse,
            "classical_power": main.classical_power,
            "criterion_text": self.criterion_text,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "standalone_assurance": alone.assurance,
            "standalone_mcse": alone.mcse,
            "standalone_classical_power": alone.classical_power,
            "curves": {name: vars(c) for name, c in p.curves.items()},
            "importance": p.importance,
            "conclusion_changes": {
                "control_rate": p.crossing.control_rate,
                "benefit_or": p.crossing.benefit,
                "harm_or": p.crossing.harm,
                "classical_or": p.crossing.classical,
            },
            "control_rate_source": self.control_source,
            "control_rate_interval": (
                list(self.control_rate_interval) if self.control_rate_interval else None
            ),
            "pooled_or": math.exp(self.pooled_log_or),
            "p_mu_gt_0_now": self.p_mu_gt_0,
            "assurance_limit": self.limits[self.criterion][0],
            "assurance_limit_mcse": self.limits[self.criterion][1],
            "limits": {k: {"value": v[0], "mcse": v[1]} for k, v in self.limits.items()},
            "target": self.target,
            "n_for_target": self.n_for(self.criterion),
            "standalone_n_for_target": self.n_for("two-sided-test"),
            "components": self.components,
            "n_components": self.n_components,
            "checks": list(self.checks),
            "sims": self.sims,
            "seed": self.seed,
            "fit_priors": self.fit_priors,
            "fit_status": self.fit_status,
            "data": self.data_name,
            "subgroup": None,
            "predictive": p.predictive,
        }


@dataclass(frozen=True)
class _Judges:
    """The four ways of judging a simulated trial, sharing the fit's components."""

    comp: Components
    y_old: FloatArray
    se_old: FloatArray
    threshold: float
    alpha: float
    seed: int

    def stand_alone(self, kind: str) -> Criterion:
        return Criterion(kind, alpha=self.alpha, threshold=self.threshold)

    def success(
        self, curve: str, y: FloatArray, se: FloatArray, reuse: Screened | None = None
    ) -> NDArray[np.bool_]:
        """Whether trials with these log-ORs and SEs succeed under ``curve``.

        ``reuse``: an earlier screening whose table judges these trials too.
        """
        if curve in ("two-sided-test", "posterior"):
            return self.stand_alone(curve).success(y, se)
        if curve == "updated-meta-classical":
            return dl_update(self.y_old, self.se_old, y, se).lower > 0
        scr = updated_probability(self.comp, y, se, self.threshold, seed=self.seed, reuse=reuse)
        return scr.p.reshape(np.shape(y)) > self.threshold


def _power(theta: float, control_rate: float, n: int, judge: Callable[..., Any]) -> float:
    """P(success) at one true log-OR and control rate, by enumerating the arm counts.

    Counts within 9 SD of their means; pairs of probability below 1e-12 are dropped (together
    less than 1e-7), which keeps the updated-meta judgement of the pairs cheap.
    """
    p_t = float(special.expit(special.logit(control_rate) + theta))

    def support(p: float) -> NDArray[np.int64]:
        sd = math.sqrt(n * p * (1 - p))
        lo, hi = max(0, math.floor(n * p - 9 * sd - 1)), min(n, math.ceil(n * p + 9 * sd + 1))
        return np.arange(lo, hi + 1)

    xc, xt = support(control_rate), support(p_t)
    w = np.outer(stats.binom.pmf(xc, n, control_rate), stats.binom.pmf(xt, n, p_t))
    keep = w > 1e-12
    a, c = np.broadcast_arrays(xt[None, :], xc[:, None])
    lor = log_odds_ratios(a[keep], np.full(keep.sum(), n), c[keep], np.full(keep.sum(), n))
    return float(np.sum(w[keep] * judge(lor.y, lor.se)))


def _importance(scr: Screened, p: FloatArray, threshold: float) -> dict[str, float]:
    """ESS summary of the reweighted posteriors and the MCSE due to the draws.

    ``criterion_mcse``: half the change in assurance when every simulated trial's updated
    probability moves by one importance-sampling MCSE up or down (all trials share the
    draws, so their errors move together: a conservative bound).
    """
    assert scr.ess is not None and scr.mcse is not None
    sig = scr.mcse.reshape(p.shape)
    shift = float(np.mean(p + sig > threshold) - np.mean(p - sig > threshold))
    near = np.abs(scr.p - threshold) < CANDIDATE_BAND
    return {
        "ess_min": float(scr.ess.min()),
        "ess_q01": float(np.quantile(scr.ess, 0.01)),
        "ess_median": float(np.median(scr.ess)),
        "ess_min_near_threshold": float(scr.ess[near].min()) if near.any() else math.nan,
        "n_below": int(np.sum(scr.ess < ESS_WARN)),
        "ess_warn": ESS_WARN,
        "criterion_mcse": 0.5 * abs(shift),
        "direct": int(scr.direct.sum()),
        "table_error": scr.table_error,
    }


def _candidates(
    scr: Screened,
    x_t: NDArray[np.int64],
    x_c: NDArray[np.int64],
    y: FloatArray,
    se: FloatArray,
    threshold: float,
) -> list[dict[str, float]]:
    """Simulated trials near the threshold with the lowest ESS (closest first if exact)."""
    near = np.flatnonzero(np.abs(scr.p - threshold) < CANDIDATE_BAND)
    key = np.abs(scr.p[near] - threshold) if scr.ess is None else scr.ess[near]
    order = near[np.argsort(key, kind="stable")]
    pairs = x_t.ravel()[order] * (x_c.max() + 1) + x_c.ravel()[order]
    _, first = np.unique(pairs, return_index=True)  # one simulated trial per pair of counts
    pick = order[np.sort(first)[:CANDIDATES]]
    out = []
    for i in pick:
        row = {"x_t": int(x_t.flat[i]), "x_c": int(x_c.flat[i]), "y": float(y.flat[i])}
        row |= {"se": float(se.flat[i]), "p_updated": float(scr.p[i])}
        if scr.ess is not None and scr.mcse is not None:
            row |= {"ess": float(scr.ess[i]), "mcse": float(scr.mcse[i])}
        out.append(row)
    return out


def _quantiles(x: ArrayLike) -> dict[str, float]:
    q = np.quantile(np.asarray(x, dtype=float).ravel(), list(QUANTILES.values()))
    return {k: float(v) for k, v in zip(QUANTILES, q, strict=True)}


def _point(
    judges: _Judges,
    n: int,
    x_t: NDArray[np.int64],
    x_c: NDArray[np.int64],
    pooled: float,
    rate: float,
) -> UpdatedPoint:
    """Every curve at one size from the simulated counts (shape (reps, chain, draw))."""
    full = np.full(x_t.shape, n)
    lor = log_odds_ratios(x_t, full, x_c, full)
    y, se = lor.y, lor.se
    g = judges.threshold
    scr = updated_probability(judges.comp, y, se, g, seed=judges.seed)
    p = scr.p.reshape(y.shape)
    ok = {c: (p > g) if c == "updated-meta" else judges.success(c, y, se) for c in CURVES}
    importance = None if scr.ess is None else _importance(scr, p, g)
    curves = {}
    for c in CURVES:
        mc = probability_mcse(ok[c].mean(axis=0))
        if c == "updated-meta" and importance is not None:
            mc = math.hypot(mc, importance["criterion_mcse"])
        power = _power(pooled, rate, n, lambda yy, ss, c=c: judges.success(c, yy, ss, scr))
        curves[c] = Curve(float(ok[c].mean()), mc, power)
    return UpdatedPoint(
        n_per_arm=n,
        curves=curves,
        importance=importance,
        crossing=crossings(judges.comp, judges.y_old, judges.se_old, n, rate, g),
        predictive={
            "or_observed": _quantiles(np.exp(y)),
            "events_t": _quantiles(x_t),
            "events_c": _quantiles(x_c),
        },
        candidates=_candidates(scr, x_t, x_c, y, se, g),
    )


#: Threads judging the sizes at once (each a pure function of its simulated counts).
POINT_THREADS = 2


def _in_threads(f: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[f(x) for x in items]``, on up to :data:`POINT_THREADS` threads (same results).

    The work is numpy's large array operations, which release the GIL, so a second core
    that is free (the report's figures done, the scenarios fitted) takes half of it.
    """
    workers = min(POINT_THREADS, len(items), os.cpu_count() or 1)
    if workers < 2:
        return [f(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="updated-meta") as pool:
        return list(pool.map(f, items))


def _check_criterion(criterion: str, threshold: float) -> None:
    if criterion not in UPDATED_CRITERIA:
        raise UpdateError(
            f"unknown updated-meta criterion {criterion!r}; valid: {', '.join(UPDATED_CRITERIA)}"
        )
    if not 0.5 <= threshold < 1:
        raise UpdateError(f"--threshold must be in [0.5, 1), got {threshold}")


def design_updated(
    fit: FitResult,
    n_per_arm: list[int],
    *,
    criterion: str = "updated-meta",
    threshold: float = 0.95,
    alpha: float = 0.05,
    control_rate: float | None = None,
    target: float = 0.8,
    sims: int = DEFAULT_SIMS,
    seed: int | None = None,
) -> UpdatedDesign:
    """Assurance of a future trial judged by the meta-analysis it joins.

    The new trial is simulated as :func:`~trialsynth.analysis.assurance.design_trial` does
    (``theta_new`` from the posterior predictive, the control rate given or drawn from the
    posterior of the control arms; same seed, same trials) and judged four ways (:data:`CURVES`):
    alone by the two-sided Wald test at ``alpha`` and by its own posterior P(OR > 1) >
    ``threshold``; with the analysed trials by the updated posterior P(OR > 1) > ``threshold``
    (same model and priors as ``fit``) and by the updated DerSimonian-Laird 95% CI.

    Returns
    -------
    UpdatedDesign
        Per size every curve's assurance (MCSE: simulation, plus for reweighted draws the
        part due to the draws) and classical power at the pooled posterior median and median
        control rate; the Kish ESS of the reweighting; the observed ORs at which the
        conclusions flip; the limits as N grows.
    """
    _check_criterion(criterion, threshold)
    seed = check_request(fit, target, sims, seed, UpdateError)
    sizes = check_sizes(n_per_arm)
    comp = components_for(fit)
    y_old, se_old = old_contrasts(fit)
    judges = _Judges(comp, y_old, se_old, threshold, alpha, seed)
    Criterion("two-sided-test", alpha=alpha)  # validates alpha
    theta = fit.draws("theta_new")
    logit_c, source = control_logits(fit, control_rate, seed=seed)
    rate, interval = control_rate_summary(logit_c, control_rate)
    pooled = float(np.median(fit.draws("mu")))
    # the counts grow in place from size to size: each size keeps its own copy
    counts = [
        (n, x_t.copy(), x_c.copy())
        for n, x_t, x_c in simulate_counts(theta, logit_c, sizes, sims=sims, seed=seed)
    ]
    points = _in_threads(lambda c: _point(judges, *c, pooled, rate), counts)
    bl, cl = bayes_limit(comp, theta, threshold), classical_limit(y_old, se_old, theta)
    return UpdatedDesign(
        points=points,
        criterion=criterion,
        threshold=threshold,
        alpha=alpha,
        k=int(y_old.size),
        control_rate=rate,
        control_rate_interval=interval,
        control_source=source,
        pooled_log_or=pooled,
        limits={
            "stand-alone": (float(np.mean(theta > 0)), probability_mcse(theta > 0)),
            "updated-meta": (bl.value, probability_mcse(bl.indicator)),
            "updated-meta-classical": (cl.value, probability_mcse(cl.indicator)),
        },
        limit_boundary=bl.boundary,
        p_mu_gt_0=comp.prob_mu_gt(),
        components=comp.source,
        n_components=comp.size,
        target=target,
        sims=max(1, math.ceil(sims / theta.size)) * theta.size,
        seed=seed,
        fit_priors=described_priors(fit),
        fit_status="ok" if fit.ok else "failed",
        data_name=str(fit.provenance.get("data_name", "")),
        checks=_exact_checks(fit, comp, points, threshold),
    )


#: Simulated trials whose exact update is checked against a fresh quadrature of k + 1 trials.
EXACT_CHECKS = 5


def _exact_checks(
    fit: FitResult, comp: Components, points: list[UpdatedPoint], threshold: float
) -> tuple[dict[str, Any], ...]:
    """For an exact fit: the update of the trials closest to the threshold, recomputed.

    Up to :data:`EXACT_CHECKS` simulated trials (at sizes spread over the evaluated ones, at
    each the one closest to the threshold) are each appended to the data and the exact
    posterior recomputed by a fresh adaptive quadrature; the difference from the reweighted
    old grid is recorded.
    """
    if not comp.is_exact:
        return ()
    y_old, se_old = old_contrasts(fit)
    firsts = [{"n_per_arm": p.n_per_arm, **p.candidates[0]} for p in points if p.candidates]
    spread = np.unique(np.linspace(0, len(firsts) - 1, EXACT_CHECKS).round().astype(int))
    out = []
    for c in [firsts[i] for i in spread] if firsts else []:
        post = exact_for(
            np.append(y_old, c["y"]),
            np.append(se_old, c["se"]),
            fit.priors,
            [*fit.studies, "simulated new trial"],
        )
        full = post.prob_mu_gt(0.0)
        out.append(c | {"p_recomputed": full, "abs_diff": abs(full - c["p_updated"])})
    return tuple(out)


def new_trial_data(fit: FitResult, x_t: int, x_c: int, n: int) -> TrialData:
    """The fit's trials plus a new one with ``x_t``/``n`` and ``x_c``/``n`` events."""
    obs = fit.tree["observed_data"]
    studies = [*fit.studies, "simulated new trial"]
    name = f"{fit.provenance.get('data_name', 'data')} + new trial"
    if "y" in obs:
        lor = log_odds_ratios([x_t], [n], [x_c], [n])
        return ContrastData(
            name,
            studies,
            log_or=np.append(obs["y"].values, lor.y),
            se=np.append(obs["se"].values, lor.se),
        )
    return ArmData(
        name,
        studies,
        events_t=np.append(obs["events_t"].values, x_t),
        n_t=np.append(obs["n_t"].values, n),
        events_c=np.append(obs["events_c"].values, x_c),
        n_c=np.append(obs["n_c"].values, n),
    )


def refit_check(
    fit: FitResult, design: UpdatedDesign, *, trials: int = CANDIDATES, settings: Any = None
) -> UpdatedDesign:
    """Refit a stated subset of simulated trials by MCMC and compare with the reweighting.

    The ``trials`` candidates with the lowest Kish ESS over all sizes (each within
    :data:`CANDIDATE_BAND` of the threshold) are appended to the data and the fit's model is
    refitted with its priors (one compiled model reused for all of them). Each check records
    the reweighted and the refitted P(OR > 1), their MCSEs and ``z`` = difference / combined
    MCSE (the reweighted estimates share the fit's draws, so their errors are correlated).
    """
    if design.components == "exact":
        return design
    cands = sorted(
        ({"n_per_arm": p.n_per_arm, **c} for p in design.points for c in p.candidates),
        key=lambda c: c["ess"],
    )[:trials]
    checks = []
    for c in cands:
        data = new_trial_data(fit, int(c["x_t"]), int(c["x_c"]), int(c["n_per_arm"]))
        refit = do_fit(data, spec=fit.spec, priors=fit.priors, settings=settings, engine="mcmc")
        mu = refit.draws("mu")
        p_refit, m_refit = float(np.mean(mu > 0)), probability_mcse(mu > 0)
        z = (c["p_updated"] - p_refit) / max(math.hypot(c["mcse"], m_refit), 1e-12)
        checks.append(c | {"p_refit": p_refit, "mcse_refit": m_refit, "z": z, "ok": refit.ok})
    return replace(design, checks=tuple(checks))


#: Which limit bounds each curve.
LIMIT_OF = {
    "two-sided-test": "stand-alone",
    "posterior": "stand-alone",
    "updated-meta": "updated-meta",
    "updated-meta-classical": "updated-meta-classical",
}


def _need(design: UpdatedDesign, curve: str, how: str) -> str:
    n = design.n_for(curve)
    limit = design.limits[LIMIT_OF[curve]][0]
    last = design.points[-1]
    if n is not None:
        return f"N = {n} per arm {how}"
    if limit < design.target:
        return f"no size {how} (its assurance cannot exceed {limit:.2f} however large the trial)"
    return (
        f"more than {last.n_per_arm} per arm {how} (assurance {last.curves[curve].assurance:.2f}"
        f" at {last.n_per_arm}, at most {limit:.2f} however large the trial)"
    )


def panel_summary(design: UpdatedDesign) -> str:
    """In plain words: the N the panel needs, and why the updated meta-analysis differs."""
    d, first = design, design.points[0]
    lim = {k: v[0] for k, v in d.limits.items()}
    up, alone = first.curves["updated-meta"].assurance, first.curves["two-sided-test"].assurance
    text = [
        f"For a probability of {d.target:.0%} of a conclusive result a guideline panel would need "
        + _need(
            d,
            "updated-meta",
            f"if the new trial is added to the meta-analysis (P(OR > 1) > {d.threshold:g})",
        )
        + ", "
        + _need(
            d, "updated-meta-classical", "if the updated DerSimonian-Laird 95% CI must exclude 1"
        )
        + ", and "
        + _need(d, "two-sided-test", "if the trial is read on its own (two-sided test at 5%)")
        + "."
    ]
    if up > alone:
        text.append(
            f"The updated meta-analysis starts from the evidence already there (P(OR > 1) = "
            f"{d.p_mu_gt_0:.3f} now), so a small trial that leans towards benefit can tip it: at "
            f"N = {first.n_per_arm} per arm its assurance is {up:.2f}, against {alone:.2f} for "
            "the trial alone."
        )
    else:
        text.append(
            f"The evidence already there (P(OR > 1) = {d.p_mu_gt_0:.3f} now) holds the updated "
            f"meta-analysis back: at N = {first.n_per_arm} per arm its assurance is {up:.2f}, "
            f"against {alone:.2f} for the trial alone."
        )
    if lim["updated-meta"] < lim["stand-alone"]:
        text.append(
            "However large the new trial, it adds one more trial effect from a distribution "
            "whose spread (tau) is uncertain, so the pooled P(OR > 1) can stay below "
            f"{d.threshold:g} even when the trial itself is clearly positive: the updated "
            f"assurance levels off at {lim['updated-meta']:.2f}, below the limit of the trial "
            f"alone, P(OR_new > 1) = {lim['stand-alone']:.2f}."
        )
    return " ".join(text)
