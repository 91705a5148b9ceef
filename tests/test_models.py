"""Numbers tests of the PyMC models against references nobody here wrote.

Tolerances are in Monte Carlo standard errors (MCSE, from ArviZ, which accounts for
autocorrelation): |estimate - reference| <= Z_TOL * MCSE (+ the reference's own stated
accuracy). With Z_TOL = 4 a correct sampler fails one comparison with probability
~6e-5, so a failure means a real disagreement, not bad luck.
"""

from __future__ import annotations

import numpy as np
import pytest
from arviz_stats.base import array_stats
from scipy import stats

from trialsynth.core.effects import log_odds_ratios
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import ArmData, TrialData, load
from trialsynth.models.spec import ModelError, ModelSpec
from trialsynth.priors.prior import PriorSet, parse_prior
from trialsynth.results.fitting import fit

Z_TOL = 4.0


def mcse(draws: np.ndarray, method: str, **kw) -> float:
    return float(
        array_stats.mcse(np.asarray(draws), chain_axis=-2, draw_axis=-1, method=method, **kw)
    )


def assert_mc_close(draws: np.ndarray, stat: str, reference: float, ref_accuracy: float = 0.0):
    x = np.asarray(draws)
    if stat == "mean":
        est, err = x.mean(), mcse(x, "mean")
    elif stat == "median":
        est, err = np.median(x), mcse(x, "median")
    elif stat == "sd":
        est, err = x.std(ddof=1), mcse(x, "sd")
    elif stat.startswith("q"):
        p = float(stat[1:]) / 1000
        est, err = np.quantile(x, p), mcse(x, "quantile", prob=p)
    else:
        raise ValueError(stat)
    tol = Z_TOL * err + ref_accuracy
    assert abs(est - reference) <= tol, f"{stat}: {est:.5f} vs {reference} (tol {tol:.5f})"


# --- crins2014: Roever (2020) J Stat Softw 93(6) s3.3, high-accuracy bayesmeta values
# (shared/data/validation/README.md); those carry ~1e-5 error, negligible against MCSE.


def test_crins_mu_matches_exact_posterior(crins_mcmc):
    mu = crins_mcmc.draws("mu")
    assert_mc_close(mu, "median", -1.5734952)
    assert_mc_close(mu, "mean", -1.5764253)
    assert_mc_close(mu, "sd", 0.3293681)


def test_crins_tau_matches_exact_posterior(crins_mcmc):
    tau = crins_mcmc.draws("tau")
    assert_mc_close(tau, "median", 0.3445023)
    assert_mc_close(tau, "mean", 0.3810562)
    assert_mc_close(tau, "sd", 0.2593672)


def test_crins_theta_new_matches_exact_posterior(crins_mcmc):
    new = crins_mcmc.draws("theta_new")
    assert_mc_close(new, "median", -1.5702170)
    assert_mc_close(new, "mean", -1.5764253)
    assert_mc_close(new, "sd", 0.5665321)


def test_crins_tail_probability(crins_mcmc):
    # P(theta_new < 0) = 0.991329 exactly; MCSE of an indicator mean via ArviZ.
    new = crins_mcmc.draws("theta_new")
    ind = (new < 0).astype(float)
    assert abs(ind.mean() - 0.991329) <= Z_TOL * mcse(ind, "mean")


def test_crins_fit_converged(crins_mcmc):
    assert crins_mcmc.ok, crins_mcmc.diagnostics.problems


# --- bcg: MetaStan vignette (binomial-normal, tau ~ HN(0.5), mu ~ N(0, 2.82^2)),
# published to two decimals, stated MCMC accuracy about +-0.02: tolerance 0.02 + 4 MCSE.


@pytest.mark.mcmc
def test_bcg_binomial_normal_matches_metastan(bcg_mcmc):
    mu, tau = bcg_mcmc.draws("mu"), bcg_mcmc.draws("tau")
    assert_mc_close(mu, "mean", -0.74, 0.02)
    assert_mc_close(mu, "q025", -1.15, 0.02)
    assert_mc_close(mu, "q975", -0.37, 0.02)
    assert_mc_close(tau, "mean", 0.60, 0.02)
    assert_mc_close(tau, "median", 0.58, 0.02)
    assert_mc_close(tau, "q025", 0.36, 0.02)
    assert_mc_close(tau, "q975", 0.94, 0.02)
    assert bcg_mcmc.ok, bcg_mcmc.diagnostics.problems


# --- common effect, normal likelihood, flat prior: the posterior of mu is exactly
# N(inverse-variance estimate, its squared standard error) (a closed form).


@pytest.mark.mcmc
def test_common_effect_flat_prior_equals_inverse_variance():
    data = load("ivig_rm")
    lor = log_odds_ratios(data.events_t, data.n_t, data.events_c, data.n_c)
    w = 1 / lor.se**2
    iv, iv_se = np.sum(w * lor.y) / w.sum(), np.sqrt(1 / w.sum())
    res = fit(
        data,
        spec=ModelSpec.from_options("common-effect", likelihood="normal"),
        priors=PriorSet(mu=parse_prior("flat()", "mu")),
        settings=SamplerSettings(draws=3000, seed=5),
    )
    mu = res.draws("mu")
    assert_mc_close(mu, "mean", iv)
    assert_mc_close(mu, "sd", iv_se)
    assert_mc_close(mu, "q975", iv + stats.norm.ppf(0.975) * iv_se)
    np.testing.assert_array_equal(res.draws("tau"), 0.0)
    np.testing.assert_array_equal(res.draws("theta_new"), mu)


# --- recovery on simulated data with planted mu and tau


def _simulate(k: int, mu: float, tau: float, n: int, seed: int) -> TrialData:
    rng = np.random.default_rng(seed)
    alpha = rng.normal(-0.3, 0.5, size=k)
    theta = rng.normal(mu, tau, size=k)
    p_c, p_t = 1 / (1 + np.exp(-alpha)), 1 / (1 + np.exp(-(alpha + theta)))
    return ArmData(
        "simulated",
        tuple(f"trial {i + 1}" for i in range(k)),
        events_t=rng.binomial(n, p_t),
        n_t=np.full(k, n),
        events_c=rng.binomial(n, p_c),
        n_c=np.full(k, n),
    )


@pytest.mark.parametrize("model", ["binomial-normal", "normal-normal"])
@pytest.mark.mcmc
def test_recovery_of_planted_mu_and_tau(model):
    mu_true, tau_true = 0.5, 0.4
    data = _simulate(25, mu_true, tau_true, n=300, seed=2026)
    res = fit(
        data, spec=ModelSpec.from_options(model), settings=SamplerSettings(seed=3), engine="mcmc"
    )
    s = res.summary()
    assert s["mu"]["q025"] < mu_true < s["mu"]["q975"]
    assert s["tau"]["q025"] < tau_true < s["tau"]["q975"]
    # informative data: the interval is narrow enough to mean something
    assert s["mu"]["q975"] - s["mu"]["q025"] < 0.6
    assert res.ok


@pytest.mark.mcmc
def test_zero_event_arms_and_double_zero_trials_fit():
    data = ArmData(
        "zeros",
        ("a", "b", "c", "d"),
        events_t=np.array([0, 0, 3, 1]),
        n_t=np.array([20, 15, 30, 25]),
        events_c=np.array([0, 2, 5, 0]),
        n_c=np.array([20, 15, 30, 25]),
    )
    res = fit(data, spec=ModelSpec(), settings=SamplerSettings(draws=1000, seed=4))
    assert np.isfinite(res.draws("theta")).all()
    assert res.summary()["k"] == 4


@pytest.mark.mcmc
def test_same_seed_same_draws_different_seed_different_draws():
    data = load("ivig_rm_secondary")
    a = fit(data, settings=SamplerSettings(draws=300, seed=9))
    b = fit(data, settings=SamplerSettings(draws=300, seed=9))
    c = fit(data, settings=SamplerSettings(draws=300, seed=10))
    np.testing.assert_array_equal(a.draws("mu"), b.draws("mu"))
    np.testing.assert_array_equal(a.draws("theta_new"), b.draws("theta_new"))
    assert not np.array_equal(a.draws("mu"), c.draws("mu"))


@pytest.mark.mcmc
def test_refit_with_new_hyperparameters_changes_posterior_not_structure():
    data = load("ivig_rm_secondary")
    narrow = fit(
        data,
        priors=PriorSet(tau=parse_prior("half-normal(0.1)")),
        settings=SamplerSettings(draws=500, seed=1),
    )
    wide = fit(
        data,
        priors=PriorSet(tau=parse_prior("half-normal(2)")),
        settings=SamplerSettings(draws=500, seed=1),
    )
    assert "reuse_compiled_s" in wide.timings  # the compiled model was reused
    assert np.median(wide.draws("tau")) > 2 * np.median(narrow.draws("tau"))


def test_binomial_likelihood_needs_arm_data():
    with pytest.raises(ModelError, match="needs arm-level counts"):
        ModelSpec.from_options("binomial-normal", data_kind="contrast")
    with pytest.raises(
        ModelError,
        match=r"unknown model 'foo'; valid: binomial-normal, normal-normal, common-effect",
    ):
        ModelSpec.from_options("foo")


@pytest.mark.mcmc  # pm.draw compiles the prior's PyTensor graph
@pytest.mark.parametrize(
    "text",
    [
        "tau2:uniform(0, 2)",
        "precision:gamma(2, 1)",
        "tau2:log-normal(-3.52, 1.74)",
        "half-t(3, 0.5)",
        "uniform-shrinkage",
        "dumouchel",
    ],
)
def test_pymc_prior_matches_its_tau_distribution(text):
    """Draws of tau from the PyMC construction follow Prior.tau_dist() (KS test).

    A KS p-value below 1e-3 with 4000 independent draws means a wrong transform.
    """
    import pymc as pm

    from trialsynth.priors.prior import pymc_variable

    prior = parse_prior(text).resolve(np.array([0.3, 0.5, 0.4]))
    with pm.Model():
        tau = pymc_variable(prior, "tau")
    draws = pm.draw(tau, draws=4000, random_seed=1)
    p = stats.kstest(draws, prior.tau_dist().cdf).pvalue
    assert p > 1e-3, p
