"""The PyMC model of a spec, its ``pm.Data`` values and what a compiled model depends on.

:func:`build_model` turns spec + data + priors into a ``pm.Model`` whose observations and
prior hyperparameters are all ``pm.Data`` (:func:`model_values`); :func:`structure_key` says
which of those a compiled model does *not* depend on: two analyses with the same key can
share one compiled model (``nutpie``'s ``with_data``). PyMC is imported inside
:func:`build_model` only, so importing this module is cheap.

Parameterisation (non-centred, as recommended for few trials):
``theta_i = mu + tau * z_i``, ``z_i ~ Normal(0, 1)`` (or Student-t with ``nu`` degrees of
freedom for robust random effects); the common-effect model has ``theta_i = mu``. A
bias-adjusted model observes its weaker trials at ``theta_i + bias_mean + bias_sd * bias_z_j``
(:mod:`trialsynth.models.bias`). The same
model in numpy, for everything but sampling, is :mod:`trialsynth.models.likelihood`
(``tests/test_likelihood.py`` holds the two together).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.models.design import design, design_values, observations
from trialsynth.priors.prior import Prior, PriorSet, hyper_values, pymc_variable
from trialsynth.priors.prior import structure_key as prior_key

if TYPE_CHECKING:
    import pymc as pm

    from trialsynth.data.trials import TrialData
    from trialsynth.models.spec import ModelSpec


def model_values(spec: ModelSpec, data: TrialData, priors: PriorSet) -> dict[str, np.ndarray]:
    """Every ``pm.Data`` value of the model: observations and prior hyperparameters."""
    values = observations(spec, data) | design_values(spec, data)
    values |= hyper_values(priors.mu, spec.mu_name)
    if spec.random_effects is not None:
        values |= hyper_values(priors.tau, spec.tau_name)
    if spec.likelihood == "binomial":
        values |= hyper_values(priors.baseline, "alpha")
    if spec.covariates:
        values |= hyper_values(priors.beta, "beta")
    if spec.estimate_nu:
        values |= hyper_values(priors.nu, "nu")
    if spec.bias is not None:
        values |= hyper_values(_bias_prior(spec), "bias_mean")
        values["bias_sd"] = np.asarray(spec.bias.sd, dtype=float)
    return values


def _bias_prior(spec: ModelSpec) -> Prior:
    """The prior of the mean bias on the model's log-OR scale (sign of the benefit applied)."""
    assert spec.bias is not None
    return Prior("normal", spec.bias.model_prior)


def structure_key(spec: ModelSpec, data: TrialData, priors: PriorSet) -> tuple[Any, ...]:
    """What a compiled model depends on: spec, number of trials and prior families.

    A bias adjustment's prior and SD are ``pm.Data``: only the number of weaker trials counts.
    """
    d = design(spec, data)
    bias = None if spec.bias is None else ("bias", len(d.weaker))
    key: tuple[Any, ...] = (replace(spec, bias=None), bias, data.k, len(d.levels))
    key += (prior_key(priors.mu),)
    if spec.random_effects is not None:
        key += (prior_key(priors.tau),)
    if spec.likelihood == "binomial":
        key += (prior_key(priors.baseline),)
    if spec.covariates:
        key += (prior_key(priors.beta),)
    if spec.estimate_nu:
        key += (prior_key(priors.nu),)
    return key


def _observation(name: str, value: np.ndarray) -> Any:
    """A per-trial observation as a ``pm.Data`` of static length.

    A compiled model depends on the number of trials anyway (:func:`structure_key`), so the
    length can be static. Without it PyMC checks each observed vector's length at run time
    (``SpecifyShape``), whose numba code (an error message built from strings) took about
    a fifth of the model's first compile. Only the observations: a static covariate matrix
    let pytensor rewrite the meta-regression's product differently (other rounding, other
    draws).
    """
    import pymc as pm

    return pm.Data(name, value, dims="study", shape=np.shape(value))


def build_model(spec: ModelSpec, data: TrialData, priors: PriorSet) -> pm.Model:
    """Build the PyMC model.

    ``priors`` must already be resolved against the data
    (:func:`~trialsynth.models.spec.resolve_priors`). Posterior variables: ``mu``, ``tau``
    (absent for common effect) on the log odds ratio scale, ``alpha`` (control-arm
    log-odds, binomial likelihood) and the non-centred ``z``; the trial effects
    ``theta = mu + tau * z`` are added after sampling by
    :func:`trialsynth.models.likelihood.trial_effects`.
    """
    import pymc as pm

    obs = observations(spec, data)
    des = design(spec, data)
    coords: dict[str, list[str]] = {"study": list(data.study)}
    if des.levels:
        coords["subgroup"] = list(des.levels)
    if des.covariates:
        coords["covariate"] = list(des.covariates)
    if des.weaker:
        coords["weaker"] = list(des.weaker)
    with pm.Model(coords=coords) as model:
        d = {name: _observation(name, value) for name, value in obs.items()}
        # theta is not a Deterministic: nutpie would compile an extra expansion for it
        # (about 2 s); models.likelihood.trial_effects computes it from the draws exactly.
        if des.levels:
            group = pm.Data("group", des.group, dims="study")
            mu = pymc_variable(priors.mu, "mu_subgroup", dims="subgroup")[group]
        else:
            mu = pymc_variable(priors.mu, "mu")
        if des.covariates:
            x = pm.Data("x", des.x, dims=("study", "covariate"))
            beta = pymc_variable(priors.beta, "beta", dims="covariate")
            mu = mu + pm.math.dot(x, beta)
        if spec.random_effects is None:
            theta = mu
        else:
            if spec.separate_tau:
                tau = pymc_variable(priors.tau, "tau_subgroup", dims="subgroup")[group]
            else:
                tau = pymc_variable(priors.tau, "tau")
            if spec.random_effects == "normal":
                z = pm.Normal("z", 0.0, 1.0, dims="study")
            else:
                if spec.nu is None:
                    # estimated nu: t as a scale mixture of normals, z = e * sqrt(w) with
                    # e ~ N(0, 1), w ~ InvGamma(nu/2, nu/2): fewer divergences than a
                    # StudentT z whose shape moves with nu (trial_effects rebuilds z)
                    nu = pymc_variable(priors.nu, "nu")
                    e = pm.Normal("z_normal", 0.0, 1.0, dims="study")
                    w = pm.InverseGamma("z_scale2", alpha=nu / 2, beta=nu / 2, dims="study")
                    z = e * pm.math.sqrt(w)
                else:
                    z = pm.StudentT("z", nu=spec.nu, mu=0.0, sigma=1.0, dims="study")
            theta = mu + tau * z
        if spec.bias is not None:
            # Welton et al. 2009: beta_i = b + kappa u_i on the weaker trials (non-centred)
            b = pymc_variable(_bias_prior(spec), "bias_mean")
            kappa = pm.Data("bias_sd", spec.bias.sd)
            u = pm.Normal("bias_z", 0.0, 1.0, dims="weaker")
            bias_map = pm.Data("bias_map", des.bias_map, dims=("study", "weaker"))
            theta = theta + pm.math.dot(bias_map, b + kappa * u)
        if spec.likelihood == "binomial":
            alpha = pymc_variable(priors.baseline, "alpha", dims="study")
            pm.Binomial("obs_c", n=d["n_c"], logit_p=alpha, observed=d["events_c"], dims="study")
            pm.Binomial(
                "obs_t", n=d["n_t"], logit_p=alpha + theta, observed=d["events_t"], dims="study"
            )
        else:
            pm.Normal("obs_y", mu=theta, sigma=d["se"], observed=d["y"], dims="study")
    return model
