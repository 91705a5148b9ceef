"""The bias ensemble's marginal likelihoods against independent calculations, and its behaviour.

References are computed here without the package's quadrature: the closed-form multivariate
normal, scipy ``quad`` in one dimension, and fixed tensor Gauss-Legendre grids on the natural
parameters (mu, tau, b, omega) in two dimensions, with the priors' scipy densities.

Tolerances
----------
``TOL`` (2e-3 on log Z): the quadrature's own tolerance (1e-3 between successive orders,
``DEFAULT_TOL``) plus a margin; the reference grids are far more accurate (doubling their nodes
moved every reference by < 2e-13 when these tests were written).
``EXACT_TOL`` (1e-7): closed form and the exact engine (its tau quadrature tolerance is 1e-9).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import integrate, special, stats

from trialsynth.analysis.bias import aghq_prob_mu_gt_0, bias_analysis, find_mode, log_evidence
from trialsynth.analysis.bias_models import (
    ROBMA_WEIGHT_FUNCTIONS,
    BiasError,
    BiasPriors,
    Component,
    WeightFunction,
    bias_priors,
    cochrane_priors,
    grid_log_post,
    log_post,
    parse_weightfunction,
    robma_components,
    robma_priors,
)
from trialsynth.priors.prior import Prior

# IVIg all trials: Woolf log ORs and SEs of the shipped ivig_rm (8 trials with counts)
Y = np.array([-0.3112, 0.9933, 1.1391, -0.5729, -0.098, 0.0, 0.3159, 0.1911])
SE = np.array([0.524, 0.7207, 0.5338, 0.6798, 0.7586, 0.5281, 0.619, 0.4428])
TOL = 2e-3
EXACT_TOL = 1e-7


def normal_mu(s: float = 0.7) -> BiasPriors:
    return bias_priors(f"normal(0, {s})")


def mvn_logml(y, se, m0, s, tau=0.0):
    cov = np.diag(se**2 + tau**2) + s**2
    return stats.multivariate_normal(np.full(y.size, m0), cov).logpdf(y)


def legendre(a: float, b: float, n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (b - a) * x + 0.5 * (a + b), 0.5 * (b - a) * w


def half_line(n: int, scale: float = 1.0):
    """Nodes and weights on (0, inf): x = scale t / (1 - t), t Gauss-Legendre on (0, 1)."""
    t, w = legendre(0.0, 1.0, n)
    return scale * t / (1 - t), w * scale / (1 - t) ** 2


def log_integral(logf: np.ndarray, w: np.ndarray) -> float:
    return float(special.logsumexp(logf, b=w))


# ------------------------------------------------------------------ closed forms


def test_common_effect_normal_prior_is_the_multivariate_normal() -> None:
    ev = log_evidence(Component(True, False), Y, SE, normal_mu())
    assert ev.method == "closed-form"
    ref = math.log(
        integrate.quad(
            lambda m: math.exp(np.sum(stats.norm.logpdf(Y, m, SE)) + stats.norm.logpdf(m, 0, 0.7)),
            -8,
            8,
            epsabs=0,
            epsrel=1e-12,
        )[0]
    )
    assert abs(ev.log_ml - ref) < EXACT_TOL


def test_random_effects_normal_prior_uses_the_exact_engine() -> None:
    pri = normal_mu()
    ev = log_evidence(Component(True, True), Y, SE, pri)
    assert ev.method == "exact"

    def f(t: float) -> float:
        return math.exp(mvn_logml(Y, SE, 0.0, 0.7, t) + pri.logpdf("tau", np.array(t)))

    ref = math.log(integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)[0])
    assert abs(ev.log_ml - ref) < EXACT_TOL


def test_no_parameter_model() -> None:
    ev = log_evidence(Component(False, False), Y, SE, cochrane_priors())
    assert ev.log_ml == pytest.approx(np.sum(stats.norm.logpdf(Y, 0, SE)), rel=1e-14)


# ------------------------------------------------------------------ AGHQ vs brute force


def test_student_t_common_effect_vs_quad() -> None:
    pri = cochrane_priors()
    ev = log_evidence(Component(True, False), Y, SE, pri)
    assert ev.method == "aghq" and ev.converged

    def f(m: float) -> float:
        return math.exp(np.sum(stats.norm.logpdf(Y, m, SE)) + stats.t.logpdf(m, 4, 0, 0.58))

    ref = math.log(integrate.quad(f, -np.inf, np.inf, epsabs=0, epsrel=1e-11)[0])
    assert abs(ev.log_ml - ref) < TOL
    assert ev.error < 1e-3


def test_student_t_random_effects_vs_grid() -> None:
    pri = cochrane_priors()
    ev = log_evidence(Component(True, True), Y, SE, pri)
    mu, wm = legendre(-6, 6, 300)
    tau, wt = half_line(300, 0.5)
    M, T = np.meshgrid(mu, tau, indexing="ij")
    s2 = SE[None, None, :] ** 2 + T[..., None] ** 2
    ll = -0.5 * np.sum(np.log(2 * np.pi * s2) + (Y - M[..., None]) ** 2 / s2, axis=-1)
    lp = stats.t.logpdf(M, 4, 0, 0.58) + stats.invgamma.logpdf(T, 1.77, scale=0.55)
    ref = log_integral(ll + lp, np.outer(wm, wt))
    assert abs(ev.log_ml - ref) < TOL


def test_probability_of_benefit_by_quadrature_vs_grid() -> None:
    """P(mu > 0) of the unadjusted random-effects model against a grid split at mu = 0."""
    pri = cochrane_priors()
    comp = Component(True, True)
    ev = log_evidence(comp, Y, SE, pri)
    p, err = aghq_prob_mu_gt_0(comp, Y, SE, pri, ev)
    tau, wt = half_line(300, 0.5)
    mass = []
    for lo, hi in ((-8.0, 0.0), (0.0, 8.0)):
        mu, wm = legendre(lo, hi, 300)
        M, T = np.meshgrid(mu, tau, indexing="ij")
        s2 = SE[None, None, :] ** 2 + T[..., None] ** 2
        ll = -0.5 * np.sum(np.log(2 * np.pi * s2) + (Y - M[..., None]) ** 2 / s2, axis=-1)
        lp = stats.t.logpdf(M, 4, 0, 0.58) + stats.invgamma.logpdf(T, 1.77, scale=0.55)
        mass.append(log_integral(ll + lp, np.outer(wm, wt)))
    ref = float(special.expit(mass[1] - mass[0]))
    # the quadrature's own error estimate (difference of two orders), with a floor of 1e-4
    assert abs(p - ref) < max(3 * err, 1e-4), (p, ref, err)


@pytest.mark.parametrize("kind", ["pet", "peese"])
def test_pet_peese_common_effect_vs_grid(kind: str) -> None:
    pri = cochrane_priors()
    ev = log_evidence(Component(True, False, kind), Y, SE, pri)
    x = SE if kind == "pet" else SE**2
    scale = 1.0 if kind == "pet" else 2.7566
    mu, wm = legendre(-10, 6, 300)
    b, wb = half_line(300, 1.0)
    M, B = np.meshgrid(mu, b, indexing="ij")
    r = (Y - M[..., None] - B[..., None] * x) / SE
    ll = -0.5 * np.sum(r**2, axis=-1) - np.sum(np.log(SE)) - 0.5 * Y.size * math.log(2 * math.pi)
    lp = stats.t.logpdf(M, 4, 0, 0.58) + stats.halfcauchy.logpdf(B, scale=scale)
    ref = log_integral(ll + lp, np.outer(wm, wb))
    assert abs(ev.log_ml - ref) < TOL


def test_pet_random_effects_normal_mu_vs_grid() -> None:
    # mu ~ N(0, 0.7) integrated in closed form, (tau, b) on a grid
    pri = normal_mu()
    ev = log_evidence(Component(True, True, "pet"), Y, SE, pri)
    tau, wt = half_line(250, 0.5)
    b, wb = half_line(250, 1.0)
    logf = np.empty((tau.size, b.size))
    for i, t in enumerate(tau):
        cov = np.diag(SE**2 + t**2) + 0.49
        inv = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        r = Y[None, :] - b[:, None] * SE[None, :]
        quad = np.einsum("bi,ij,bj->b", r, inv, r)
        logf[i] = -0.5 * (Y.size * math.log(2 * math.pi) + logdet + quad)
    lp = stats.invgamma.logpdf(tau, 1.77, scale=0.55)[:, None] + stats.halfcauchy.logpdf(b)[None]
    ref = log_integral(logf + lp, np.outer(wt, wb))
    assert abs(ev.log_ml - ref) < TOL


@pytest.mark.parametrize("side", ["one-sided", "two-sided"])
def test_selection_common_effect_vs_grid(side: str) -> None:
    pri = cochrane_priors()
    wf = WeightFunction(side, (0.05,))  # type: ignore[arg-type]
    ev = log_evidence(Component(True, False, "selection", wf), Y, SE, pri)
    z = Y / SE
    p = stats.norm.sf(z) if side == "one-sided" else 2 * stats.norm.sf(abs(z))
    sig = p < 0.05
    c = stats.norm.isf(0.05 if side == "one-sided" else 0.025) * SE
    mu, wm = legendre(-6, 6, 400)
    om, wo = legendre(0, 1, 200)  # omega_2 ~ Beta(1, 1)
    M, W = np.meshgrid(mu, om, indexing="ij")
    m = M[..., None]
    psig = special.ndtr((m - c) / SE)
    if side == "two-sided":
        psig = psig + special.ndtr((-c - m) / SE)
    ll = (
        np.sum(-0.5 * ((Y - m) / SE) ** 2 - np.log(SE) - 0.5 * math.log(2 * math.pi), axis=-1)
        + np.sum(np.where(sig, 0.0, np.log(W)[..., None]), axis=-1)
        - np.sum(np.log(psig + W[..., None] * (1 - psig)), axis=-1)
    )
    ref = log_integral(ll + stats.t.logpdf(M, 4, 0, 0.58), np.outer(wm, wo))
    assert abs(ev.log_ml - ref) < TOL


@pytest.mark.parametrize("wf", ROBMA_WEIGHT_FUNCTIONS, ids=lambda w: w.label)
@pytest.mark.parametrize("effect", [False, True])
def test_factorised_grid_equals_direct_log_posterior(wf: WeightFunction, effect: bool) -> None:
    """The fast tensor-grid evaluation gives the pointwise log posterior."""
    pri = cochrane_priors()
    comp = Component(effect, True, "selection", wf)
    mode, chol = find_mode(comp, Y, SE, pri)
    x = np.array([-1.7, -0.3, 0.4, 1.2])
    fast = grid_log_post(comp, mode, chol, [x] * comp.dim, Y, SE, pri)
    z = np.stack([g.ravel() for g in np.meshgrid(*([x] * comp.dim), indexing="ij")], axis=1)
    direct = log_post(comp, mode[None, :] + z @ chol.T, Y, SE, pri)
    np.testing.assert_allclose(fast, direct, rtol=1e-12, atol=1e-10)


def test_weight_prior_is_the_cumulative_dirichlet() -> None:
    """omega from the stick-breaking ratios has the BayesTools cumulative-Dirichlet law."""
    wf = WeightFunction("one-sided", (0.025, 0.05, 0.5), (1.0, 2.0, 1.5, 3.0))
    comp = Component(False, False, "selection", wf)
    z = np.random.default_rng(3).standard_normal((200_000, comp.dim))
    from trialsynth.analysis.bias_models import unpack

    omega = unpack(comp, z, cochrane_priors()).omega
    eta = np.random.default_rng(4).dirichlet(wf.alpha, size=200_000)
    ref = np.cumsum(eta[:, ::-1], axis=1)[:, ::-1]  # omega_j = sum_{i >= j} eta_i
    ref = ref / ref[:, :1]
    # two samples of 2e5: means agree within 4 standard errors of their difference
    diff = omega.mean(axis=0) - ref.mean(axis=0)
    sd = np.sqrt((omega.var(axis=0) + ref.var(axis=0)) / 2e5)
    assert np.all(np.abs(diff) <= 4 * sd + 1e-12)


# ------------------------------------------------------------------ the ensemble


@pytest.fixture(scope="module")
def ensemble():
    """The default ensemble of the eight trials (4000 draws), shared by the tests reading it."""
    return bias_analysis(Y, SE, n_draws=4000)


def test_probabilities_sum_to_one_and_zero_weight_removes(ensemble) -> None:
    res = ensemble
    assert len(res.models) == 36
    assert sum(r.posterior_prob for r in res.models) == pytest.approx(1.0, abs=1e-12)
    assert sum(r.prior_prob for r in res.models) == pytest.approx(1.0, abs=1e-12)
    inc = res.inclusion
    assert inc["bias"]["prior_prob"] == pytest.approx(0.5)
    comps = [
        Component(c.effect, c.heterogeneity, c.bias, c.weightfunction, 0.0)
        if c.bias == "pet"
        else c
        for c in robma_components()
    ]
    res2 = bias_analysis(Y, SE, components=comps, n_draws=4000)
    assert len(res2.models) == 32 and all(r.comp.bias != "pet" for r in res2.models)
    assert sum(r.posterior_prob for r in res2.models) == pytest.approx(1.0, abs=1e-12)


def test_inclusion_bf_is_the_posterior_over_prior_odds(ensemble) -> None:
    res = ensemble
    for key, v in res.inclusion.items():
        post_odds = v["posterior_prob"] / (1 - v["posterior_prob"])
        prior_odds = v["prior_prob"] / (1 - v["prior_prob"])
        assert v["bf"] == pytest.approx(post_odds / prior_odds, rel=1e-12), key


def simulate(seed: int, mu: float, tau: float, k: int = 30, select: bool = True):
    """A literature of k published trials, se ~ U(0.1, 0.8); with ``select`` only one-sided
    significant trials (p < 0.025) are always published, the others with probability 0.1."""
    rng = np.random.default_rng(seed)
    ys, ses = [], []
    while len(ys) < k:
        se = rng.uniform(0.1, 0.8)
        yi = rng.normal(mu, math.sqrt(se**2 + tau**2))
        if not select or stats.norm.sf(yi / se) < 0.025 or rng.random() < 0.1:
            ys.append(yi)
            ses.append(se)
    return np.array(ys), np.array(ses)


def test_null_effect_with_strong_selection_is_flagged() -> None:
    y, se = simulate(11, 0.0, 0.0)
    naive = float(np.sum(y / se**2) / np.sum(1 / se**2))
    res = bias_analysis(y, se, n_draws=10_000)
    assert res.inclusion["bias"]["posterior_prob"] > 0.5
    assert abs(res.averaged["mu"]["mean"]) < 0.5 * abs(naive)
    assert all(r.evidence.converged for r in res.models)


def test_true_effect_without_selection_is_not_flagged() -> None:
    y, se = simulate(12, 0.3, 0.1, select=False)
    res = bias_analysis(y, se, n_draws=10_000)
    assert res.inclusion["bias"]["posterior_prob"] < 0.5
    assert res.inclusion["effect"]["posterior_prob"] > 0.9


def test_robma_priors_move_the_effect_bf_as_expected(ensemble) -> None:
    # a wider normal mu prior spreads mass over effects the data rule out: lower BF (Lindley)
    a = ensemble.inclusion["effect"]["bf"]
    b = bias_analysis(Y, SE, priors=robma_priors(), n_draws=4000).inclusion["effect"]["bf"]
    assert b < a


def test_seed_fixes_the_draws_and_not_the_evidence() -> None:
    a = bias_analysis(Y, SE, n_draws=4000, seed=1).to_json()
    b = bias_analysis(Y, SE, n_draws=4000, seed=1).to_json()
    c = bias_analysis(Y, SE, n_draws=4000, seed=2).to_json()
    assert a["averaged"] == b["averaged"]
    assert a["averaged"] != c["averaged"]
    assert [m["log_ml"] for m in a["models"]] == [m["log_ml"] for m in c["models"]]


def test_json_has_the_interface_keys(ensemble) -> None:
    j = ensemble.to_json()
    assert {"effect", "heterogeneity", "bias", "prior_prob", "log_ml", "posterior_prob"} <= set(
        j["models"][0]
    )
    assert set(j["inclusion"]) == {"effect", "heterogeneity", "bias"}
    assert all({"posterior_prob", "bf"} <= set(v) for v in j["inclusion"].values())
    assert {"mu", "or", "tau", "p_mu_gt_0"} <= set(j["averaged"])
    assert {m["bias"] for m in j["models"]} == {
        "none",
        "pet",
        "peese",
        *(w.label for w in ROBMA_WEIGHT_FUNCTIONS),
    }


# ------------------------------------------------------------------ bad input


def test_fewer_than_three_trials() -> None:
    with pytest.raises(BiasError, match=r"^the bias analysis needs at least 3 trials, got 2$"):
        bias_analysis(Y[:2], SE[:2])


def test_bad_standard_error_names_the_trial() -> None:
    se = SE.copy()
    se[2] = 0.0
    with pytest.raises(BiasError, match=r"^Coulam 1995: the log OR must be finite"):
        bias_analysis(Y, se, labels=["a", "b", "Coulam 1995", "d", "e", "f", "g", "h"])


@pytest.mark.parametrize(
    ("mu", "tau", "message"),
    [
        ("flat()", None, "mu prior flat() is improper"),
        ("half-normal(1)", None, "is not a valid mu prior"),
        (None, "normal(0, 1)", "is not a valid tau prior"),
        (None, "inverse-gamma(0, 1)", "parameter alpha must be > 0"),
        ("normal(0)", None, "takes 2 parameter"),
    ],
)
def test_bad_prior(mu, tau, message) -> None:
    with pytest.raises(BiasError, match=re.escape(message)) as info:
        bias_priors(mu, tau)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("one-sided(0.05, 0.01)", "must increase"),
        ("one-sided(1.5)", "within \\(0, 1\\)"),
        ("one-sided()", "must increase"),
        ("three-sided(0.05)", "unknown weight function"),
        ("two-sided(a)", "must be numbers"),
    ],
)
def test_unknown_cut_points(text: str, message: str) -> None:
    with pytest.raises(BiasError, match=message) as info:
        parse_weightfunction(text)
    assert "\n" not in str(info.value)


def test_all_zero_prior_weights() -> None:
    comps = [
        Component(c.effect, c.heterogeneity, c.bias, c.weightfunction, 0.0)
        for c in robma_components()
    ]
    with pytest.raises(BiasError, match="every component has prior probability 0"):
        bias_analysis(Y, SE, components=comps)


def test_data_dependent_tau_prior_is_resolved() -> None:
    pri = bias_priors(tau="uniform-shrinkage", se=SE)
    assert pri.tau.s0 == pytest.approx(math.sqrt(SE.size / np.sum(1 / SE**2)))
    ev = log_evidence(Component(True, True), Y, SE, pri)
    assert math.isfinite(ev.log_ml)
    with pytest.raises(BiasError, match="needs the trials' standard errors"):
        bias_priors(tau="dumouchel")


def test_priors_print_in_the_grammar() -> None:
    assert cochrane_priors().text() == {
        "mu": "student-t(4, 0, 0.58)",
        "tau": "inverse-gamma(1.77, 0.55)",
        "pet": "half-cauchy(1)",
        "peese": "half-cauchy(2.7566)",
    }
    assert isinstance(cochrane_priors().mu, Prior)
