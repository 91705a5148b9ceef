"""Fit a problem with the engine it asks for and return the result of that engine.

The engines (:mod:`trialsynth.engines`) turn a problem into draws; :func:`fit` adds the
checks every fit gets beyond convergence (the binomial-vs-normal likelihood notice and the
prior-data conflict check) and packages the draws as the result type of the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from trialsynth.core.settings import SamplerSettings
from trialsynth.engines.base import Progress, _quiet
from trialsynth.engines.notices import likelihood_notice
from trialsynth.engines.select import choose_engine, engine_named
from trialsynth.models.conflict import conflict_notices
from trialsynth.models.problem import Problem
from trialsynth.results.base import FitResult

if TYPE_CHECKING:
    from trialsynth.data import TrialData
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorSet


def fit(
    data: TrialData,
    *,
    spec: ModelSpec | None = None,
    priors: PriorSet | None = None,
    settings: SamplerSettings | None = None,
    retry_divergences: bool = True,
    reusable: bool = True,
    progress: Progress | None = None,
    engine: str = "auto",
) -> FitResult:
    """Fit a random-effects meta-analysis by MCMC (NUTS via nutpie) or exactly.

    Parameters
    ----------
    data : TrialData
        Validated trials (:func:`trialsynth.data.load`).
    spec : ModelSpec, optional
        The model; default binomial-normal.
    priors : PriorSet, optional
        The priors; default :class:`~trialsynth.priors.prior.PriorSet` (documented defaults).
    settings : SamplerSettings, optional
        Draws, tuning, chains, seed, target acceptance.
    retry_divergences : bool
        After divergent transitions, refit once at ``target_accept=0.99`` (same seed)
        and record that the refit happened (``provenance["refits"]``; the recorded
        ``settings`` stay those requested, so the fit's key does not change).
    reusable : bool
        Keep the compiled model reusable for later fits with other values in this
        process (see :func:`trialsynth.engines.mcmc.compiled_model`).
    progress : callable, optional
        Called with the name of each phase as it starts.
    engine : {"mcmc", "exact", "auto"}
        ``"exact"``: the normal-normal model by numerical integration
        (:mod:`trialsynth.engines.exact`; no Monte Carlo error in its summaries, and
        ``settings.draws * settings.chains`` independent draws from ``settings.seed`` for
        anything else); an error names what prevents it. ``"auto"``: exact wherever
        :func:`~trialsynth.engines.exact.exact_unavailable` allows, MCMC otherwise.

    Returns
    -------
    FitResult
        The result type of the engine (:class:`~trialsynth.results.mcmc.McmcFit` or
        :class:`~trialsynth.results.exact.ExactFit`); ``ok`` says whether it passed the
        convergence checks.
    """
    return fit_problem(
        Problem.build(data, spec, priors),
        settings=settings,
        retry_divergences=retry_divergences,
        reusable=reusable,
        progress=progress,
        engine=engine,
    )


def fit_problem(
    problem: Problem,
    *,
    settings: SamplerSettings | None = None,
    retry_divergences: bool = True,
    reusable: bool = True,
    progress: Progress | None = None,
    engine: str = "auto",
) -> FitResult:
    """:func:`fit` of a :class:`~trialsynth.models.problem.Problem` (priors resolved)."""
    settings = settings or SamplerSettings()
    name = choose_engine(engine, problem.spec, problem.priors)
    runner = engine_named(name, retry_divergences=retry_divergences, reusable=reusable)
    out = runner.fit(problem, settings, progress=progress or _quiet)
    mu = np.asarray(out.tree["posterior"]["mu"].values)
    notice = likelihood_notice(
        {
            "mu": {"median": float(np.median(mu)), "sd": float(mu.std())},
            "p_mu_gt_0": float((mu > 0).mean()),
        },
        problem.data,
        problem.spec,
        problem.priors,
    )
    notices = (
        out.notices
        + ((notice,) if notice else ())
        + tuple(conflict_notices(problem.data, problem.spec, problem.priors, settings.seed))
    )
    kind = FitResult._types[name]
    return kind.from_engine(out, problem, settings=settings, notices=notices)
