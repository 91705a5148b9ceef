"""The model in numpy: the one definition every consumer of the model's densities calls.

:func:`trialsynth.models.pymc.build_model` writes the model for the sampler (PyMC). Everything
else that needs the model's arithmetic takes it from here, so the two definitions are the only
ones and ``tests/test_likelihood.py`` holds them together (PyMC's own ``logp`` at a point):

* :func:`log_likelihood` -- per-trial log likelihood of posterior draws (leave-one-trial-out
  ELPD, psense); :func:`log_binomial` is the binomial term (also the LOO quadrature's);
  a bias-adjusted model's weaker trials are observed at ``theta_i + beta_i``
  (:func:`bias_shift`, :mod:`trialsynth.models.bias`);
* :func:`log_prior` -- log prior density of the sampled parameters, per prior role (psense);
* :func:`trial_effects` -- ``theta`` and the predictive ``theta_new`` from the sampled
  parameters, with the Student-t scale mixture (the MCMC engine's ``derive``);
  :func:`pool_subgroups` -- the pooled summaries of a subgroup fit (both engines);
* :func:`prior_effects` and :func:`prior_predictive` -- draws under the prior alone of a new
  trial's effect and of the observed log odds ratios (prior-data conflict, the posterior plot).

Model (non-centred): ``theta_i = mu_i + tau_i z_i`` with ``mu_i`` the trial's (subgroup) mean
plus ``x_i beta``, ``z_i ~ N(0, 1)`` or ``t_nu`` (for an estimated ``nu`` the t is the scale
mixture ``z = e sqrt(w)``, ``e ~ N(0, 1)``, ``w ~ InvGamma(nu/2, nu/2)``); the common-effect
model has ``theta_i = mu_i``. With a bias adjustment the weaker trials (``w_i = 1``) are
observed at ``theta_i + w_i beta_i``, ``beta_i = b + kappa u_i``, ``u_i ~ N(0, 1)``, ``b`` the
mean bias (``bias_mean``, log-OR scale) and ``kappa`` fixed. Likelihood: binomial arms
``y_c ~ Bin(n_c, expit(alpha_i))``, ``y_t ~ Bin(n_t, expit(alpha_i + theta_i))``, or normal
``y_i ~ N(theta_i, se_i)``.

Arrays of draws have the sample axes first (``(chain, draw)`` for posteriors) and the trial
axis last. numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special, stats

if TYPE_CHECKING:
    from trialsynth.models.design import Design
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorSet

__all__ = [
    "bias_shift",
    "log_binomial",
    "log_likelihood",
    "log_prior",
    "pool_subgroups",
    "prior_effects",
    "prior_predictive",
    "trial_effects",
]


# --------------------------------------------------------------------------- likelihood


def log_binomial(events: Any, n: Any, logit_p: Any) -> np.ndarray:
    """Binomial log-pmf with the success probability on the logit scale (stable).

    ``log C(n, y) + y l - n log(1 + e^l)``, which is finite for any finite ``l``.
    """
    const = special.gammaln(n + 1) - special.gammaln(events + 1) - special.gammaln(n - events + 1)
    return const + events * logit_p - n * np.logaddexp(0.0, logit_p)


def log_likelihood(
    spec: ModelSpec,
    obs: Mapping[str, Any],
    theta: np.ndarray,
    alpha: np.ndarray | None = None,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Per-trial log likelihood of every draw (the trial is the unit: both arms summed).

    Parameters
    ----------
    spec : ModelSpec
        Says which likelihood.
    obs : mapping
        The observations as the model holds them (:func:`trialsynth.models.design.observations`,
        or a result's ``observed_data``): ``events_t, n_t, events_c, n_c`` or ``y, se``.
    theta : ndarray, shape (..., k)
        Trial effects (log odds ratios).
    alpha : ndarray, shape (..., k), optional
        Control-arm log-odds (binomial likelihood only).
    bias : ndarray, shape (..., k), optional
        Additive bias of each trial (a bias-adjusted model's :func:`bias_shift`; 0 for the
        adequate trials): the trial is observed at ``theta + bias``.

    Returns
    -------
    ndarray, shape (..., k)
        ``log Bin(y_c | alpha) + log Bin(y_t | alpha + theta)``, or ``log N(y | theta, se)``.
    """
    if bias is not None:
        theta = theta + np.asarray(bias)
    if spec.likelihood == "binomial":
        if alpha is None:
            raise ValueError("the binomial likelihood needs draws of alpha")
        e_c, n_c = np.asarray(obs["events_c"]), np.asarray(obs["n_c"])
        e_t, n_t = np.asarray(obs["events_t"]), np.asarray(obs["n_t"])
        return log_binomial(e_c, n_c, alpha) + log_binomial(e_t, n_t, alpha + theta)
    return stats.norm.logpdf(np.asarray(obs["y"]), theta, np.asarray(obs["se"]))


# --------------------------------------------------------------------------- prior


def log_prior(spec: ModelSpec, priors: PriorSet, draws: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Log prior density of every draw of the sampled parameters, one entry per prior role.

    Parameters
    ----------
    spec : ModelSpec
        Which parameters the model has.
    priors : PriorSet
        The priors, resolved against the data (s0 of the named tau priors set).
    draws : mapping
        Arrays (or DataArrays) of draws with two sample axes first: ``mu`` or ``mu_subgroup``,
        ``tau`` or ``tau_subgroup``, ``beta``, ``alpha``, ``nu`` as the model has them.

    Returns
    -------
    dict of str to ndarray, shape (chain, draw)
        Keys among ``mu, tau, beta, baseline, nu, bias`` (in that order; ``bias`` is the
        prior of the mean bias ``bias_mean`` on the log-OR scale), each summed over the
        variable's own axes (subgroups, covariates, trials). Heterogeneity priors are densities
        of tau (with the Jacobian of a ``tau2`` or ``precision`` statement); the sampler's
        transforms (log, shrinkage) carry no Jacobian here.
    """

    def total(logpdf: Any, name: str) -> np.ndarray:
        values = np.asarray(logpdf(np.asarray(draws[name])), dtype=float)
        return values.reshape(*values.shape[:2], -1).sum(axis=-1)

    out = {"mu": total(priors.mu.dist().logpdf, spec.mu_name)}
    if spec.random_effects is not None:
        out["tau"] = total(priors.tau.tau_dist().logpdf, spec.tau_name)
    if spec.covariates:
        out["beta"] = total(priors.beta.dist().logpdf, "beta")
    if spec.likelihood == "binomial":
        out["baseline"] = total(priors.baseline.dist().logpdf, "alpha")
    if spec.estimate_nu:
        out["nu"] = total(priors.nu.dist().logpdf, "nu")
    if spec.bias is not None:
        m, s = spec.bias.model_prior
        out["bias"] = total(stats.norm(m, s).logpdf, "bias_mean")
    return out


def bias_shift(spec: ModelSpec, design: Design, draws: Mapping[str, Any]) -> np.ndarray | None:
    """The additive bias ``w_i (b + kappa u_i)`` of every trial and draw, (chain, draw, k).

    None without a bias adjustment. ``draws`` has ``bias_mean`` (chain, draw) and
    ``bias_z`` (chain, draw, weaker trial), as the PyMC model samples them.
    """
    if spec.bias is None:
        return None
    assert design.bias_map is not None  # a bias spec always has a design with its map
    b = np.asarray(draws["bias_mean"])
    beta = b[..., None] + spec.bias.sd * np.asarray(draws["bias_z"])
    return np.einsum("...j,kj->...k", beta, design.bias_map)


# --------------------------------------------------------------------------- trial effects


def _effect_noise(
    spec: ModelSpec, shape: tuple[int, ...], rng: np.random.Generator, nu: Any = None
) -> np.ndarray:
    """Standardised random-effects draws: normal, t_nu, or t with one ``nu`` per sample."""
    if spec.random_effects == "student-t":
        if spec.nu is None:  # estimated: one t draw per draw of nu (sample axes first)
            nu = np.asarray(nu)
            nu = nu.reshape(nu.shape + (1,) * (len(shape) - nu.ndim))
            return rng.standard_t(np.broadcast_to(nu, shape))
        return rng.standard_t(spec.nu, size=shape)
    return rng.standard_normal(size=shape)


def pool_subgroups(
    mu_g: np.ndarray, tau_g: np.ndarray, new_g: np.ndarray, pick: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled ``mu``, ``tau`` and ``theta_new`` of a subgroup fit (subgroup axis last).

    ``mu`` is the unweighted mean of the subgroup means, ``tau`` the root mean square of the
    subgroup SDs, ``theta_new`` a future trial in subgroup ``pick`` (drawn with equal
    probability by the caller).
    """
    mu = mu_g.mean(axis=-1)
    tau = np.sqrt((tau_g**2).mean(axis=-1))
    new = np.take_along_axis(new_g, pick[..., None], -1)[..., 0]
    return mu, tau, new


def trial_effects(
    spec: ModelSpec,
    design: Design,
    draws: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    k: int,
) -> dict[str, np.ndarray]:
    """``theta`` and ``theta_new`` (and the pooled summaries) from draws of the sampled parameters.

    Parameters
    ----------
    spec, design : ModelSpec, Design
        The model and its subgroups / centred covariates.
    draws : mapping
        The sampler's draws, (chain, draw) first: ``mu`` or ``mu_subgroup``, ``tau`` or
        ``tau_subgroup``, ``z`` (or ``z_normal`` and ``z_scale2``), ``beta``, ``nu``.
    rng : numpy Generator
        Source of the new trial's random effect (and, for subgroups, of its subgroup).
    k : int
        Number of trials.

    Returns
    -------
    dict of str to ndarray
        ``mu``, ``tau``, ``theta_new`` (chain, draw) and ``theta`` (chain, draw, k); for
        subgroup fits first ``mu_subgroup``, ``tau_subgroup``, ``theta_new_subgroup``
        (chain, draw, subgroup) and the pooled values of :func:`pool_subgroups`; with a bias
        adjustment ``bias_mean`` (chain, draw) and each trial's ``bias`` (chain, draw, k).
        ``theta`` is the trial's unbiased effect.
    """
    out: dict[str, np.ndarray] = {}
    nu = np.asarray(draws["nu"]) if spec.estimate_nu else None
    if design.levels:
        assert design.group is not None  # a design with levels has its group index
        mu_g = np.asarray(draws["mu_subgroup"])
        if spec.random_effects is None:
            tau_g = np.zeros_like(mu_g)
        elif spec.separate_tau:
            tau_g = np.asarray(draws["tau_subgroup"])
        else:
            tau_g = np.repeat(np.asarray(draws["tau"])[..., None], len(design.levels), axis=-1)
        mu_i, tau_i = mu_g[..., design.group], tau_g[..., design.group]
        if spec.random_effects is None:
            new_g = mu_g.copy()
        else:
            new_g = mu_g + tau_g * _effect_noise(spec, mu_g.shape, rng, nu)
        pick = rng.integers(len(design.levels), size=mu_g.shape[:2])
        out |= {"mu_subgroup": mu_g, "tau_subgroup": tau_g, "theta_new_subgroup": new_g}
        out["mu"], out["tau"], out["theta_new"] = pool_subgroups(mu_g, tau_g, new_g, pick)
    else:
        mu = np.asarray(draws["mu"])
        tau = np.asarray(draws["tau"]) if spec.random_effects is not None else np.zeros_like(mu)
        mu_i = np.repeat(mu[..., None], k, axis=-1)
        tau_i = np.repeat(tau[..., None], k, axis=-1)
        if spec.random_effects is None:
            new = mu.copy()
        else:
            new = mu + tau * _effect_noise(spec, mu.shape, rng, nu)
        out |= {"mu": mu, "tau": tau, "theta_new": new}
    if design.covariates:
        mu_i = mu_i + np.einsum("cdp,kp->cdk", np.asarray(draws["beta"]), design.x)
    shift = bias_shift(spec, design, draws)
    if shift is not None:
        out["bias_mean"] = np.asarray(draws["bias_mean"])
        out["bias"] = shift
    if spec.random_effects is None:
        out["theta"] = mu_i
        return out
    if spec.estimate_nu:  # the scale-mixture form of the t (build_model)
        z = np.asarray(draws["z_normal"]) * np.sqrt(np.asarray(draws["z_scale2"]))
    else:
        z = np.asarray(draws["z"])
    out["theta"] = mu_i + tau_i * z
    return out


# --------------------------------------------------------------------------- prior predictive


def prior_effects(
    spec: ModelSpec, priors: PriorSet, n: int, rng: np.random.Generator, *, k: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws of ``mu``, ``tau`` and standardised random effects under the prior alone.

    A new trial's effect under the prior is ``mu + tau * eps``; with ``k`` given, ``eps`` has
    one column per trial. The draws come in this order from ``rng``: ``mu``, ``tau`` (by
    inversion; none for the common-effect model, whose ``tau`` is 0), an estimated ``nu``,
    ``eps``. The priors must be proper for ``mu`` (``flat()`` has no draws).

    Returns
    -------
    mu, tau : ndarray, shape (n,)
    eps : ndarray, shape (n,) or (n, k)
    """
    mu = np.asarray(priors.mu.dist().rvs(size=n, random_state=rng), dtype=float)
    if spec.random_effects is None:
        tau = np.zeros(n)
    else:
        tau = np.asarray(priors.tau.tau_dist().ppf(rng.uniform(size=n)), dtype=float)
    nu = None
    if spec.estimate_nu:
        nu = np.asarray(priors.nu.dist().rvs(size=n, random_state=rng), dtype=float)
    eps = _effect_noise(spec, (n,) if k is None else (n, k), rng, nu)
    return mu, tau, eps


def prior_predictive(
    spec: ModelSpec, priors: PriorSet, se: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Prior predictive draws of the observed log odds ratios, shape (n, k).

    ``y_i = mu + tau * eps_i + se_i * e_i`` with each trial's own standard error (the normal
    approximation of the binomial arms); ``mu``, ``tau`` and ``eps`` from :func:`prior_effects`.
    Subgroup and regression models have no single prior predictive here (no design is used).
    """
    se = np.asarray(se, dtype=float)
    mu, tau, eps = prior_effects(spec, priors, n, rng, k=len(se))
    return mu[:, None] + tau[:, None] * eps + se * rng.standard_normal(size=(n, len(se)))
