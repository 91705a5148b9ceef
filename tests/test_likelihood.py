"""The one numpy definition of the model (models/likelihood.py) against independent references.

* hand cases against scipy's binomial and normal densities;
* the PyMC model's own log density at a random point (``model.compile_logp``, per trial and
  per prior), for every model form: the numpy and PyMC definitions cannot drift apart
  without one of these failing;
* the prior predictive and the predictive ``theta_new`` in distribution, against PyMC's
  ``sample_prior_predictive`` and scipy's t.

Tolerances: the PyMC and numpy formulae are different exact expressions evaluated in float64,
so they agree to rounding; ``REL`` = 1e-9 relative (observed differences are below 1e-13)
leaves room for log-densities of hundreds of units. Distribution checks are two-sample
Kolmogorov-Smirnov tests at fixed seeds, failing below p = 1e-3.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from trialsynth.data import load
from trialsynth.models.bias import DEFAULT_BIAS_PRIOR, BiasAdjustment
from trialsynth.models.design import design, observations
from trialsynth.models.likelihood import (
    log_binomial,
    log_likelihood,
    log_prior,
    pool_subgroups,
    prior_effects,
    prior_predictive,
    trial_effects,
)
from trialsynth.models.spec import ModelSpec, resolve_priors
from trialsynth.priors.prior import Prior, PriorSet

REL = 1e-9
KS_P = 1e-3


def test_log_binomial_matches_scipy_by_hand() -> None:
    # 3 events of 10 at p = 0.2, and the extremes 0 of 50 and 50 of 50 at p = 0.9
    events, n, p = np.array([3, 0, 50]), np.array([10, 50, 50]), np.array([0.2, 0.9, 0.9])
    got = log_binomial(events, n, special.logit(p))
    np.testing.assert_allclose(got, stats.binom.logpmf(events, n, p), rtol=1e-13)
    # stable far in the tails, where expit(l) rounds to 1: log Bin(0 | 100, expit(40)) = -4000
    assert log_binomial(0, 100, 40.0) == pytest.approx(-100 * np.logaddexp(0, 40.0), rel=1e-15)


def test_log_likelihood_sums_both_arms_and_normal_matches_scipy() -> None:
    obs = {"events_c": [2, 5], "n_c": [20, 30], "events_t": [4, 1], "n_t": [21, 29]}
    alpha, theta = np.array([-2.0, -1.5]), np.array([0.3, -0.8])
    got = log_likelihood(ModelSpec(), obs, theta, alpha)
    p_c, p_t = special.expit(alpha), special.expit(alpha + theta)
    want = stats.binom.logpmf([2, 5], [20, 30], p_c) + stats.binom.logpmf([4, 1], [21, 29], p_t)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    normal = log_likelihood(ModelSpec(likelihood="normal"), {"y": [0.1], "se": [0.4]}, theta[:1])
    np.testing.assert_allclose(normal, stats.norm(0.3, 0.4).logpdf(0.1), rtol=1e-15)


def test_pool_subgroups_by_hand() -> None:
    mu_g, tau_g = np.array([[[1.0, 3.0]]]), np.array([[[0.3, 0.4]]])
    new_g = np.array([[[10.0, 20.0]]])
    mu, tau, new = pool_subgroups(mu_g, tau_g, new_g, np.array([[1]]))
    assert (mu[0, 0], new[0, 0]) == (2.0, 20.0)
    assert tau[0, 0] == pytest.approx(math.sqrt((0.09 + 0.16) / 2), rel=1e-15)


# --------------------------------------------------------------- against the PyMC model's logp

# (dataset, spec, priors): every likelihood, random-effects form, subgroup and regression
# model, and the tau, tau^2 and precision scales of the heterogeneity prior
CASES = {
    "binomial-normal": ("ivig_rm", ModelSpec(), {}),
    "binomial-t-estimated-nu": (
        "ivig_rm",
        ModelSpec(random_effects="student-t", nu=None),
        {"tau": "tau2:uniform(0, 4)", "baseline": "logistic(0, 1)", "nu": "gamma(2, 0.1)"},
    ),
    "normal-t": (
        "crins2014",
        ModelSpec(likelihood="normal", random_effects="student-t", nu=3.0),
        {"tau": "precision:gamma(2, 0.5)", "mu": "student-t(3, 0, 2)"},
    ),
    "common-effect": ("bcg", ModelSpec(random_effects=None), {}),
    "subgroup-shared": ("ivig_rm", ModelSpec(subgroup="population"), {}),
    "subgroup-separate": (
        "ivig_rm",
        ModelSpec(likelihood="normal", subgroup="population", subgroup_tau="separate"),
        {"tau": "tau2:uniform(0, 2)"},
    ),
    "regression": ("bcg", ModelSpec(likelihood="normal", covariates=("ablat",)), {}),
    # bias adjustment of the weaker trials (models/bias.py): both models it works in, both
    # benefit directions (the sign of the mean bias)
    "bias-binomial": (
        "ivig_rm",
        ModelSpec(bias=BiasAdjustment("confidence", ("high",), DEFAULT_BIAS_PRIOR, 0.06)),
        {},
    ),
    "bias-normal-fewer-events": (
        "ivig_rm_secondary",
        ModelSpec(
            likelihood="normal",
            bias=BiasAdjustment(
                "confidence", ("high",), Prior("normal", (0.2, 0.3)), 0.4, "fewer-events"
            ),
        ),
        {},
    ),
}


def _pymc_point(model, seed: int) -> tuple[dict, dict]:
    """A random point in the sampler's (transformed) space and every variable's value there."""
    rng = np.random.default_rng(seed)
    point = {k: v + rng.normal(0, 0.7, size=np.shape(v)) for k, v in model.initial_point().items()}
    outs = model.unobserved_value_vars
    fn = model.compile_fn(outs, inputs=model.value_vars, point_fn=False, mode="FAST_COMPILE")
    return point, {o.name: np.asarray(v) for o, v in zip(outs, fn(**point), strict=True)}


def _pymc_logp(model, point: dict, names: list[str]) -> list[np.ndarray]:
    """Elementwise log density of the named variables (no transform Jacobians)."""
    f = model.compile_logp(
        [model[n] for n in names], jacobian=False, sum=False, mode="FAST_COMPILE"
    )
    return [np.asarray(v) for v in f(point)]


def _tau_on_its_scale(model, priors: PriorSet, name: str, values: dict) -> float:
    """The PyMC log prior of tau moved to the tau scale (change of variables by hand)."""
    scale = priors.tau.scale
    stated = name if scale == "tau" else (scale if name == "tau" else f"{name}_{scale}")
    (lp,) = _pymc_logp(model, values["_point"], [stated])
    tau = values[name]
    jac = {"tau": 0.0, "tau2": np.log(2 * tau), "precision": np.log(2.0) - 3 * np.log(tau)}
    return float(np.sum(lp + jac[scale]))


@pytest.mark.mcmc
@pytest.mark.parametrize("case", list(CASES))
def test_numpy_model_equals_the_pymc_model_at_a_point(case) -> None:
    from trialsynth.models.pymc import build_model

    name, spec, prior_text = CASES[case]
    data = load(name)
    priors = resolve_priors(spec, data, PriorSet.from_strings(**prior_text))
    model = build_model(spec, data, priors)
    point, values = _pymc_point(model, seed=3)
    values["_point"] = point
    draws = {k: v[None, None] for k, v in values.items() if k != "_point"}  # (chain, draw)

    # per-trial log likelihood, theta rebuilt from the draws by trial_effects
    theta = trial_effects(spec, design(spec, data), draws, np.random.default_rng(0), k=data.k)
    alpha = draws.get("alpha")
    obs = observations(spec, data)
    ours = log_likelihood(spec, obs, theta["theta"], alpha, theta.get("bias"))[0, 0]
    arms = ["obs_c", "obs_t"] if spec.likelihood == "binomial" else ["obs_y"]
    theirs = np.sum(_pymc_logp(model, point, arms), axis=0)
    np.testing.assert_allclose(ours, theirs, rtol=REL)

    # log prior per role, each summed over its elements
    ours_prior = {role: float(v[0, 0]) for role, v in log_prior(spec, priors, draws).items()}
    names = {
        "mu": "mu_subgroup" if spec.subgroup else "mu",
        "beta": "beta",
        "baseline": "alpha",
        "nu": "nu",
        "bias": "bias_mean",
    }
    for role, value in ours_prior.items():
        if role == "tau":
            want = _tau_on_its_scale(
                model, priors, "tau_subgroup" if spec.separate_tau else "tau", values
            )
        else:
            want = float(np.sum(_pymc_logp(model, point, [names[role]])[0]))
        assert value == pytest.approx(want, rel=REL), role
    expected_roles = {
        "mu": True,
        "tau": spec.random_effects is not None,
        "baseline": spec.likelihood == "binomial",
        "beta": bool(spec.covariates),
        "nu": spec.estimate_nu,
        "bias": spec.bias is not None,
    }
    assert list(ours_prior) == [role for role, present in expected_roles.items() if present]


# --------------------------------------------------------------- in distribution


@pytest.mark.mcmc
@pytest.mark.parametrize(
    ("spec", "prior_text"),
    [
        (ModelSpec(likelihood="normal"), {"mu": "normal(0, 1)", "tau": "half-normal(0.5)"}),
        (
            ModelSpec(likelihood="normal", random_effects="student-t", nu=None),
            # tau near 1 and small nu: the t shape, not tau's spread, makes the tails
            # (with normal effects instead, KS p < 1e-11 on both trials)
            {"mu": "normal(0, 0.1)", "tau": "uniform(0.9, 1)", "nu": "gamma(2, 1)"},
        ),
        (ModelSpec(likelihood="normal", random_effects=None), {"mu": "normal(0.5, 0.5)"}),
    ],
    ids=["normal", "t-estimated-nu", "common-effect"],
)
def test_prior_predictive_matches_pymc(spec, prior_text) -> None:
    import pymc as pm

    from trialsynth.models.pymc import build_model

    data = load("crins2014")
    priors = resolve_priors(spec, data, PriorSet.from_strings(**prior_text))
    n = 4000
    se = observations(spec, data)["se"]
    ours = prior_predictive(spec, priors, se, n, np.random.default_rng(1))
    model = build_model(spec, data, priors)
    theirs = pm.sample_prior_predictive(
        n, model=model, var_names=["obs_y"], random_seed=2, compile_kwargs={"mode": "FAST_COMPILE"}
    )["prior_predictive"]["obs_y"].values.reshape(n, -1)
    for i in (0, data.k - 1):  # the first and last trials (different standard errors)
        assert stats.ks_2samp(ours[:, i], theirs[:, i]).pvalue > KS_P, i


def test_predictive_effect_is_student_t() -> None:
    """theta_new = mu + tau * t_nu: with mu = 0 and tau = 1 its draws are t_4."""
    spec = ModelSpec(likelihood="normal", random_effects="student-t", nu=4.0)
    shape, k = (2, 5000), 3
    draws = {"mu": np.zeros(shape), "tau": np.ones(shape), "z": np.zeros((*shape, k))}
    des = design(spec, load("crins2014"))
    new = trial_effects(spec, des, draws, np.random.default_rng(4), k=k)["theta_new"]
    assert stats.kstest(new.ravel(), stats.t(4).cdf).pvalue > KS_P
    assert stats.kstest(new.ravel(), stats.norm.cdf).pvalue < KS_P  # the test can tell


def test_prior_effects_follow_the_priors() -> None:
    spec = ModelSpec(likelihood="normal", random_effects="student-t", nu=None)
    priors = PriorSet.from_strings(mu="normal(1, 2)", tau="half-normal(0.5)", nu="gamma(2, 0.5)")
    mu, tau, eps = prior_effects(spec, priors, 5000, np.random.default_rng(6))
    assert stats.kstest(mu, stats.norm(1, 2).cdf).pvalue > KS_P
    assert stats.kstest(tau, stats.halfnorm(scale=0.5).cdf).pvalue > KS_P
    # eps is a t with df from the nu prior: heavier tails than a normal
    assert np.mean(np.abs(eps) > 3) > 2 * 2 * stats.norm.sf(3)
    common = prior_effects(ModelSpec(random_effects=None), priors, 10, np.random.default_rng(6))
    assert not common[1].any()  # tau = 0
