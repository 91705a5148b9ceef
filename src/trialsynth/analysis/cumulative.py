"""Cumulative meta-analysis: the evidence after each trial, in publication order.

The trials are sorted by a column (``year`` by default; ties keep the file order) and the
meta-analysis of the first k trials is computed for k = 1..K with the model and priors of a
fit. Normal-normal steps use the exact engine (each step is exactly the exact fit of those
k trials). MCMC steps reuse **one** compiled model of all K trials: at step k the arms of
trials k+1..K are emptied (``n = 0`` events of ``0``: a binomial likelihood of 1), so their
parameters are drawn from their priors and the posterior of ``mu`` and ``tau`` is exactly
that of the first k trials (:func:`~trialsynth.engines.mcmc.sample_values`); a normal
likelihood is emptied by a standard error of :data:`EMPTY_SE` (its log-likelihood then moves
by less than 1e-12 over any plausible effect). Data-dependent prior constants (the s0 of
uniform-shrinkage or DuMouchel priors) are resolved on the first k trials, as a separate fit
of them would. Each step also gets the classical cumulative DerSimonian-Laird estimate
(the trial's own Wald interval at k = 1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from trialsynth.core.errors import TrialsynthError
from trialsynth.core.frequentist import random_effects
from trialsynth.core.settings import RETRY_TARGET_ACCEPT, SamplerSettings
from trialsynth.data import TrialData
from trialsynth.engines.diagnostics import check, probability_mcse
from trialsynth.engines.exact import exact_for
from trialsynth.engines.mcmc import sample_values
from trialsynth.engines.select import choose_engine
from trialsynth.models.pymc import model_values
from trialsynth.models.spec import ModelSpec, resolve_priors
from trialsynth.priors.prior import PriorSet

#: Standard error that empties a trial of a normal likelihood in a masked MCMC step.
EMPTY_SE = 1e6
Z975 = 1.959963984540054


class CumulativeError(TrialsynthError):
    """A cumulative analysis that cannot be run (one line naming the problem)."""


def trial_order(data: TrialData, column: str, *, option: str = "--order") -> list[int]:
    """Positions of the trials sorted by ``column`` (stable: ties keep the file order).

    ``option`` names where the column came from in error messages.

    Raises
    ------
    CumulativeError
        The column does not exist (the message lists the columns there are) or a trial has
        no value in it (the message names the row and the study).
    """
    cov = data.covariates
    if column not in cov.columns:
        have = ", ".join(map(str, cov.columns)) or "none besides the counts"
        raise CumulativeError(
            f"{option} {column!r}: the data have no column {column!r}; columns: {have}"
        )
    values = cov[column]
    for i, (study, v) in enumerate(values.items(), start=1):
        if pd.isna(v) or (isinstance(v, str) and not v.strip()):
            raise CumulativeError(f"{option} {column!r}: row {i} ({study}) has no {column} value")
    key = values.to_numpy()
    if not pd.api.types.is_numeric_dtype(values):
        key = values.astype(str).to_numpy()
    return [int(i) for i in np.argsort(key, kind="stable")]


@dataclass(frozen=True)
class Step:
    """The meta-analysis of the first ``k`` trials.

    ``odds_ratio`` and ``tau`` hold ``median``, ``q025``, ``q975``; ``mcse`` the Monte Carlo
    errors of the two probabilities (None for exact steps); ``classical`` the cumulative
    DerSimonian-Laird ``or``, ``lower``, ``upper`` and ``tau``. An MCMC step with divergent
    transitions is sampled once more at ``target_accept`` 0.99 (``refit``); ``status`` and
    ``problems`` are its convergence checks (on mu, tau).
    """

    k: int
    added: str
    year: Any
    order_value: Any
    odds_ratio: dict[str, float]
    tau: dict[str, float]
    p_mu_gt_0: float
    p_theta_new_gt_0: float
    mcse: dict[str, float] | None
    classical: dict[str, float]
    status: str = "ok"
    problems: list[str] = field(default_factory=list)
    refit: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``cumulative --json`` row (INTERFACE.md keys first)."""
        return {
            "k": self.k,
            "added": self.added,
            "year": self.year,
            "or": self.odds_ratio,
            "tau": self.tau,
            "p_mu_gt_0": self.p_mu_gt_0,
            "p_theta_new_gt_0": self.p_theta_new_gt_0,
            "order_value": self.order_value,
            "mcse": self.mcse,
            "classical": self.classical,
            "status": self.status,
            "problems": self.problems,
            "refit": self.refit,
        }


@dataclass(frozen=True)
class Cumulative:
    """A cumulative meta-analysis: one :class:`Step` per trial added."""

    steps: list[Step]
    order: str
    engine: str
    model: str
    priors: dict[str, str]
    data_name: str
    timings: dict[str, float]

    def to_json(self) -> list[dict[str, Any]]:
        """``cumulative --json``: a list of rows, one per trial added."""
        return [s.to_json() for s in self.steps]


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _classical(y: np.ndarray, se: np.ndarray) -> dict[str, float]:
    """Cumulative DerSimonian-Laird estimate (one trial: its own Wald interval)."""
    if y.size == 1:
        est, s, tau2 = float(y[0]), float(se[0]), 0.0
    else:
        r = random_effects(y, se, method="DL")
        est, s, tau2 = r.estimate, r.se, r.tau2
    return {
        "or": math.exp(est),
        "lower": math.exp(est - Z975 * s),
        "upper": math.exp(est + Z975 * s),
        "tau": math.sqrt(tau2),
    }


def _quantiles(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [0.5, 0.025, 0.975])
    return {"median": float(q[0]), "q025": float(q[1]), "q975": float(q[2])}


def reordered(data: TrialData, order: list[int]) -> TrialData:
    """The same trials in the given order (positions)."""
    return data.take(order)


def _exact_step(data_k: TrialData, spec: ModelSpec, priors: PriorSet) -> dict[str, Any]:
    """The exact posterior of these trials: pooled OR, tau, the two probabilities."""
    lor = data_k.contrasts(correction=spec.correction)
    post = exact_for(lor.y, lor.se, resolve_priors(spec, data_k, priors), data_k.study)
    q = np.exp(np.asarray(post.mu.ppf(np.array([0.5, 0.025, 0.975]))))
    t = np.asarray(post.tau.ppf(np.array([0.5, 0.025, 0.975])))
    return {
        "odds_ratio": {"median": float(q[0]), "q025": float(q[1]), "q975": float(q[2])},
        "tau": {"median": float(t[0]), "q025": float(t[1]), "q975": float(t[2])},
        "p_mu_gt_0": post.prob_mu_gt(0.0),
        "p_theta_new_gt_0": post.prob_theta_new_gt(0.0),
        "mcse": None,
        "status": "ok",
        "problems": [],
        "refit": False,
    }


def masked_values(
    spec: ModelSpec, data: TrialData, priors_k: PriorSet, k: int
) -> dict[str, np.ndarray]:
    """Model values of all trials with trials k+1.. emptied (see the module docstring)."""
    values = {
        name: np.array(v, copy=True) for name, v in model_values(spec, data, priors_k).items()
    }
    if spec.likelihood == "binomial":
        for name in ("events_t", "n_t", "events_c", "n_c"):
            values[name][k:] = 0
    else:
        values["y"][k:] = 0.0
        values["se"][k:] = EMPTY_SE
    return values


def _mcmc_step(
    data: TrialData, k: int, spec: ModelSpec, priors: PriorSet, settings: SamplerSettings
) -> tuple[dict[str, Any], bool]:
    """The first k trials by MCMC on the one compiled model of all trials."""
    data_k = reordered(data, list(range(k)))
    values = masked_values(spec, data, resolve_priors(spec, data_k, priors), k)
    full = resolve_priors(spec, data, priors)
    names = ["mu"] + (["tau"] if spec.random_effects else []) + (["nu"] if spec.estimate_nu else [])
    raw, fresh = sample_values(spec, data, full, settings, values)
    diag = check(raw, names)
    refit = bool(diag.divergences) and settings.target_accept < RETRY_TARGET_ACCEPT
    if refit:  # as the MCMC engine does: once more at target_accept 0.99, same seed
        again = replace(settings, target_accept=RETRY_TARGET_ACCEPT)
        raw, _ = sample_values(spec, data, full, again, values)
        diag = check(raw, names)
    post = raw["posterior"]
    mu, new = np.asarray(post["mu"].values), np.asarray(post["theta_new"].values)
    tau = np.asarray(post["tau"].values)
    q = _quantiles(np.exp(mu))
    return {
        "odds_ratio": q,
        "tau": _quantiles(tau),
        "p_mu_gt_0": float(np.mean(mu > 0)),
        "p_theta_new_gt_0": float(np.mean(new > 0)),
        "mcse": {
            "p_mu_gt_0": probability_mcse(mu > 0),
            "p_theta_new_gt_0": probability_mcse(new > 0),
        },
        "status": "ok" if diag.ok else "failed",
        "problems": list(diag.problems),
        "refit": refit,
    }, fresh


def cumulative(
    data: TrialData,
    *,
    spec: ModelSpec | None = None,
    priors: PriorSet | None = None,
    settings: SamplerSettings | None = None,
    order: str = "year",
    engine: str = "auto",
) -> Cumulative:
    """Cumulative meta-analysis of ``data`` in the order of column ``order``.

    Parameters
    ----------
    data : TrialData
        The trials (any order; sorted here by ``order``, ties in file order).
    spec, priors, settings, engine
        As for :func:`~trialsynth.results.fitting.fit` (``auto``: exact for normal-normal
        where the priors allow, else MCMC on one reusable compiled model).
    order : str
        Column to sort by (``year`` or any covariate column of the data).

    Returns
    -------
    Cumulative
        One step per trial added, with the pooled OR and its 95% CrI, tau, P(OR > 1),
        P(OR_new > 1) and the classical cumulative DerSimonian-Laird estimate.
    """
    spec = spec or ModelSpec()
    priors = priors or PriorSet()
    settings = settings or SamplerSettings()
    if spec.subgroup or spec.covariates:
        raise CumulativeError("cumulative does not take --subgroup or --covariate")
    sorted_data = reordered(data, trial_order(data, order))
    name = choose_engine(engine, spec, resolve_priors(spec, sorted_data, priors))
    cov = sorted_data.covariates
    lor = sorted_data.contrasts(correction=spec.correction)
    steps, timings = [], {"first_step_s": 0.0, "total_s": 0.0}
    for k in range(1, sorted_data.k + 1):
        t0 = time.perf_counter()
        if name == "exact":
            row = _exact_step(reordered(sorted_data, list(range(k))), spec, priors)
        else:
            row, _ = _mcmc_step(sorted_data, k, spec, priors, settings)
        timings["total_s"] += time.perf_counter() - t0
        if k == 1:  # an MCMC first step includes compiling the one model of all trials
            timings["first_step_s"] = timings["total_s"]
        steps.append(
            Step(
                k=k,
                added=sorted_data.study[k - 1],
                year=_json_value(cov["year"].iloc[k - 1]) if "year" in cov.columns else None,
                order_value=_json_value(cov[order].iloc[k - 1]),
                classical=_classical(lor.y[:k], lor.se[:k]),
                **row,
            )
        )
    return Cumulative(
        steps=steps,
        order=order,
        engine=name,
        model=spec.name,
        priors={
            r: getattr(resolve_priors(spec, sorted_data, priors), r).describe()
            for r in ("mu", "tau", "baseline")
            if r != "tau" or spec.random_effects
            if r != "baseline" or spec.likelihood == "binomial"
        },
        data_name=data.name,
        timings=timings,
    )
