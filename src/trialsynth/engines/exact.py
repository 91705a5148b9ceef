"""The exact engine: the normal-normal model by numerical integration, plus iid draws.

The posterior is conjugate in mu given tau and integrated over tau by quadrature
(:mod:`trialsynth.core.exact`); ``settings.draws * settings.chains`` independent draws from
``settings.seed`` serve comparisons between quantities and the figures. Subgroups with one
tau each are independent normal-normal models, one exact posterior each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from trialsynth.core.exact import ExactPosterior, exact_posterior
from trialsynth.core.normal_normal import BiasedData
from trialsynth.engines.base import EngineFit, Progress, _quiet
from trialsynth.models.likelihood import pool_subgroups
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import PriorSet

if TYPE_CHECKING:
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.models.bias import BiasAdjustment
    from trialsynth.models.problem import Problem


def exact_unavailable(spec: ModelSpec, priors: PriorSet) -> str | None:
    """Why the exact engine cannot fit this model, or None when it can.

    The exact engine covers the normal-normal random-effects model with a normal or flat
    prior on mu and any heterogeneity prior, without covariates; subgroups when each has
    its own tau (the subgroups are then independent normal-normal models).
    """
    if spec.likelihood != "normal":
        return "the exact engine needs the normal likelihood (--model normal-normal)"
    if spec.random_effects != "normal":
        kind = "common-effect" if spec.random_effects is None else "student-t random effects"
        return f"the exact engine needs normal random effects, not {kind}"
    if spec.covariates:
        return "the exact engine does not fit covariates (meta-regression)"
    if spec.subgroup and not spec.separate_tau:
        return (
            "the exact engine fits subgroups only with one tau per subgroup "
            "(--subgroup-tau separate); a shared tau couples them"
        )
    if priors.mu.family not in ("normal", "flat"):
        return f"the exact engine needs a normal or flat mu prior, not {priors.mu.family}"
    return None


def exact_for(
    y: np.ndarray,
    se: np.ndarray,
    priors: PriorSet,
    labels: list[str] | tuple[str, ...],
    *,
    bias: BiasAdjustment | None = None,
    weight: np.ndarray | None = None,
) -> ExactPosterior:
    """The :class:`~trialsynth.core.exact.ExactPosterior` of contrasts under these priors.

    With ``bias`` (and the weaker trials' 0/1 ``weight``) the bias-adjusted model
    (:class:`~trialsynth.core.normal_normal.BiasedData`), still exact.
    """
    mu = None if priors.mu.family == "flat" else (priors.mu.params[0], priors.mu.params[1])
    if bias is None:
        return exact_posterior(y, se, priors.tau.tau_dist(), mu, labels=list(labels))
    data = BiasedData(
        y, se, mu, list(labels), weight=weight, bias_prior=bias.model_prior, kappa=bias.sd
    )
    return ExactPosterior(data, priors.tau.tau_dist())


def exact_subgroup_posteriors(
    y: np.ndarray,
    se: np.ndarray,
    priors: PriorSet,
    studies: list[str],
    group: np.ndarray,
    levels: tuple[str, ...],
) -> dict[str, ExactPosterior]:
    """One exact posterior per subgroup (separate mu and tau: independent models)."""
    names = np.asarray(studies, dtype=object)
    return {
        level: exact_for(y[group == j], se[group == j], priors, list(names[group == j]))
        for j, level in enumerate(levels)
    }


def _draws_tree(variables: dict[str, Any], coords: dict[str, Any]) -> xr.DataTree:
    return xr.DataTree.from_dict({"posterior": xr.Dataset(variables, coords=coords)})


@dataclass(frozen=True)
class ExactEngine:
    """The exact normal-normal posterior (see :func:`exact_unavailable` for what it covers)."""

    name: str = "exact"

    def fit(
        self, problem: Problem, settings: SamplerSettings, *, progress: Progress = _quiet
    ) -> EngineFit:
        """The exact posterior(s) of ``problem`` and iid draws from them."""
        progress("exact")
        t0 = time.perf_counter()
        lor = problem.contrasts
        if problem.spec.subgroup:
            tree, posts = self._subgroups(problem, settings, lor)
            return EngineFit(
                tree=tree,
                settings=settings,
                timings={"exact_s": time.perf_counter() - t0},
                subgroup_posteriors=posts,
            )
        data, shape = problem.data, (settings.chains, settings.draws)
        post = exact_for(
            lor.y,
            lor.se,
            problem.priors,
            data.study,
            bias=problem.spec.bias,
            weight=problem.design.bias_weight,
        )
        d = post.sample(shape[0] * shape[1], rng=np.random.default_rng([settings.seed, 2]))
        variables = {
            "mu": (("chain", "draw"), d["mu"].reshape(shape)),
            "tau": (("chain", "draw"), d["tau"].reshape(shape)),
            "theta_new": (("chain", "draw"), d["theta_new"].reshape(shape)),
            "theta": (("chain", "draw", "study"), d["theta"].reshape(*shape, data.k)),
        }
        if "bias" in d:  # a bias adjustment: the mean bias and each trial's bias
            variables["bias_mean"] = (("chain", "draw"), d["bias_mean"].reshape(shape))
            variables["bias"] = (("chain", "draw", "study"), d["bias"].reshape(*shape, data.k))
        tree = _draws_tree(
            variables,
            {"chain": np.arange(shape[0]), "draw": np.arange(shape[1]), "study": list(data.study)},
        )
        return EngineFit(
            tree=tree,
            settings=settings,
            timings={"exact_s": time.perf_counter() - t0},
            posterior=post,
        )

    @staticmethod
    def _subgroups(
        problem: Problem, settings: SamplerSettings, lor: Any
    ) -> tuple[xr.DataTree, dict[str, ExactPosterior]]:
        """Exact subgroup fit: the same derived quantities as the MCMC engine's ``derive``."""
        des, data = problem.design, problem.data
        assert des.group is not None  # a subgroup spec always has a design with groups
        posts = exact_subgroup_posteriors(
            np.asarray(lor.y),
            np.asarray(lor.se),
            problem.priors,
            list(data.study),
            des.group,
            des.levels,
        )
        shape = (settings.chains, settings.draws)
        n = shape[0] * shape[1]
        mu_g = np.empty((n, len(des.levels)))
        tau_g, new_g = np.empty_like(mu_g), np.empty_like(mu_g)
        theta = np.empty((n, data.k))
        for j, post in enumerate(posts.values()):
            d = post.sample(n, rng=np.random.default_rng([settings.seed, 2, j]))
            mu_g[:, j], tau_g[:, j], new_g[:, j] = d["mu"], d["tau"], d["theta_new"]
            theta[:, des.group == j] = d["theta"]
        # pooled summaries as in the MCMC engine: mean of subgroup means, rms tau, a random subgroup
        pick = np.random.default_rng([settings.seed, 3]).integers(len(des.levels), size=n)
        mu, tau, new = pool_subgroups(mu_g, tau_g, new_g, pick)
        dims = ("chain", "draw", "subgroup")
        tree = _draws_tree(
            {
                "mu": (("chain", "draw"), mu.reshape(shape)),
                "tau": (("chain", "draw"), tau.reshape(shape)),
                "theta_new": (("chain", "draw"), new.reshape(shape)),
                "theta": (("chain", "draw", "study"), theta.reshape(*shape, data.k)),
                "mu_subgroup": (dims, mu_g.reshape(*shape, -1)),
                "tau_subgroup": (dims, tau_g.reshape(*shape, -1)),
                "theta_new_subgroup": (dims, new_g.reshape(*shape, -1)),
            },
            {
                "chain": np.arange(shape[0]),
                "draw": np.arange(shape[1]),
                "study": list(data.study),
                "subgroup": list(des.levels),
            },
        )
        return tree, posts
