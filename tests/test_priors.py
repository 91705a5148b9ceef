"""Tests of the PRIOR grammar (INTERFACE.md) and of the tau-scale prior densities.

Densities are checked against scipy by a route independent of ``trialsynth.priors.prior``:
draw or transform the *stated* quantity (tau, tau^2 or the precision 1/tau^2) with scipy
and map it to tau ourselves.

Tolerances
----------
``RTOL`` (1e-8): deterministic transforms of scipy quantiles; the implementation may use
``isf(q)`` where we use ``ppf(1 - q)``, which differ in the last bits.
``QUAD_TOL`` (1e-6): ``scipy.integrate.quad`` of a density over its support.
``Z_MC`` (4): Monte-Carlo empirical CDFs are compared with the exact CDF within 4 binomial
standard errors, sqrt(p (1 - p) / n); with a fixed seed the test is deterministic, and
for a correct density a fresh seed would fail one comparison with probability ~6e-5.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from trialsynth.priors.prior import (
    DEFAULT_BASELINE,
    DEFAULT_MU,
    DEFAULT_TAU,
    Prior,
    PriorError,
    PriorSet,
    parse_prior,
    pymc_variable,
    turner_prior,
    turner_table,
)

RTOL = 1e-8
QUAD_TOL = 1e-6
Z_MC = 4.0
N_MC = 200_000
QS = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])

#: The valid-forms list of the error messages, exactly as a user sees it.
TAU_VALID = (
    "half-normal(sigma), half-cauchy(beta), half-t(nu, sigma), uniform(lower, upper), "
    "log-normal(mu, sigma), exponential(lam), gamma(alpha, beta), inverse-gamma(alpha, beta), "
    "uniform-shrinkage, "
    "dumouchel, turner(OUTCOME, COMPARISON), prefixes tau2: and precision: "
    "(e.g. tau2:uniform(0, 50), precision:gamma(0.001, 0.001))"
)
MU_VALID = (
    "normal(mu, sigma), logistic(mu, s), student-t(nu, mu, sigma), uniform(lower, upper), flat()"
)


def raises(message: str) -> pytest.RaisesContext[PriorError]:
    """Expect a PriorError whose message is exactly ``message``."""
    return pytest.raises(PriorError, match="^" + re.escape(message) + "$")


def binomial_tol(p: np.ndarray, n: int) -> np.ndarray:
    return Z_MC * np.sqrt(p * (1 - p) / n)


def assert_ecdf_matches(tau_draws: np.ndarray, points: np.ndarray, cdf: np.ndarray) -> None:
    """Empirical CDF of the draws at ``points`` equals ``cdf`` within Z_MC binomial SEs."""
    ecdf = np.mean(tau_draws[:, None] <= points[None, :], axis=0)
    tol = binomial_tol(np.asarray(cdf), tau_draws.size)
    assert np.all(np.abs(ecdf - cdf) <= tol), (ecdf, cdf, tol)


# ---------------------------------------------------------------------- grammar: every form


@pytest.mark.parametrize(
    ("text", "role", "family", "params", "scale"),
    [
        ("normal(0, 2.82)", "mu", "normal", (0.0, 2.82), "tau"),
        ("normal(-1.5, 0.5)", "baseline", "normal", (-1.5, 0.5), "tau"),
        ("half-normal(0.5)", "tau", "half-normal", (0.5,), "tau"),
        ("half-cauchy(1)", "tau", "half-cauchy", (1.0,), "tau"),
        ("half-t(3, 0.5)", "tau", "half-t", (3.0, 0.5), "tau"),
        ("uniform(0, 2)", "tau", "uniform", (0.0, 2.0), "tau"),
        ("uniform(-10, 10)", "mu", "uniform", (-10.0, 10.0), "tau"),
        ("log-normal(-1.76, 0.87)", "tau", "log-normal", (-1.76, 0.87), "tau"),
        ("logistic(0, 1)", "baseline", "logistic", (0.0, 1.0), "tau"),
        ("exponential(2)", "tau", "exponential", (2.0,), "tau"),
        ("gamma(2, 1)", "tau", "gamma", (2.0, 1.0), "tau"),
        ("tau2:uniform(0, 50)", "tau", "uniform", (0.0, 50.0), "tau2"),
        ("tau2:log-normal(-3.52, 1.74)", "tau", "log-normal", (-3.52, 1.74), "tau2"),
        ("precision:gamma(0.001, 0.001)", "tau", "gamma", (0.001, 0.001), "precision"),
        ("uniform-shrinkage", "tau", "uniform-shrinkage", (), "tau"),
        ("dumouchel", "tau", "dumouchel", (), "tau"),
        # spacing and case are not significant
        ("  Half-Normal( 0.5 ) ", "tau", "half-normal", (0.5,), "tau"),
        ("tau2 : uniform(0,50)", "tau", "uniform", (0.0, 50.0), "tau2"),
        ("normal(0, 1e-1)", "mu", "normal", (0.0, 0.1), "tau"),
    ],
)
def test_parse_every_form(text, role, family, params, scale) -> None:
    prior = parse_prior(text, role)
    assert prior == Prior(family, params, scale)
    assert (prior.family, prior.params, prior.scale) == (family, params, scale)


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("normal(0, 2.82)", "mu"),
        ("logistic(0, 1)", "baseline"),
        ("uniform(-10, 10)", "mu"),
        ("half-normal(0.5)", "tau"),
        ("half-cauchy(1)", "tau"),
        ("half-t(3, 0.5)", "tau"),
        ("uniform(0, 2)", "tau"),
        ("log-normal(-1.76, 0.87)", "tau"),
        ("exponential(2)", "tau"),
        ("gamma(2, 1)", "tau"),
        ("tau2:uniform(0, 50)", "tau"),
        ("tau2:log-normal(-3.52, 1.74)", "tau"),
        ("precision:gamma(0.001, 0.001)", "tau"),
        ("uniform-shrinkage", "tau"),
        ("dumouchel", "tau"),
        ("turner(obstetric, pharm-placebo)", "tau"),
    ],
)
def test_str_round_trip(text, role) -> None:
    prior = parse_prior(text, role)
    again = parse_prior(str(prior), role)
    assert again == prior
    assert str(again) == str(prior)
    # canonical text of everything but turner() is the input itself
    if not text.startswith("turner"):
        assert str(prior) == text


def test_turner_obstetric_pharm_placebo_is_the_table_row() -> None:
    prior = parse_prior("turner(obstetric, pharm-placebo)")
    assert prior == Prior("log-normal", (-3.52, 1.74), "tau2")
    assert str(prior) == "tau2:log-normal(-3.52, 1.74)"
    assert prior.label == (
        "Turner et al. 2015: obstetric outcomes, pharmacological vs. placebo / control"
    )
    assert prior.describe() == (
        "tau2:log-normal(-3.52, 1.74) "
        "[Turner et al. 2015: obstetric outcomes, pharmacological vs. placebo / control]"
    )
    # the table's own wording and the function give the same prior
    assert parse_prior("turner(obstetric outcomes, pharmacological vs. placebo / control)") == prior
    assert turner_prior("Obstetric", "pharm-placebo") == prior


def test_turner_table_rows_match_readme() -> None:
    # README (Turner et al. 2015, Table IV): 80 settings; obstetric/pharm-placebo is
    # N(-3.52, 1.74^2) for log(tau^2); every setting has a positive sd.
    table = turner_table()
    assert len(table) == 80
    assert ("obstetric outcomes", "pharmacological vs. placebo / control", -3.52, 1.74) in table
    assert all(sd > 0 for *_, sd in table)


def test_turner_on_tau_halves_both_parameters() -> None:
    # README: "For tau itself, halve both parameters": log(tau) ~ N(-1.76, 0.87^2).
    tau = parse_prior("turner(obstetric, pharm-placebo)").tau_dist()
    ref = stats.lognorm(s=0.87, scale=math.exp(-1.76))
    np.testing.assert_allclose(tau.ppf(QS), ref.ppf(QS), rtol=RTOL)
    grid = np.array([0.01, 0.1, 0.17, 0.5, 2.0])
    np.testing.assert_allclose(tau.pdf(grid), ref.pdf(grid), rtol=RTOL)


def test_to_dict_from_dict_round_trip() -> None:
    se = np.array([0.3, 0.5, 0.8])
    priors = [
        parse_prior("normal(0, 2.82)", "mu"),
        parse_prior("half-t(3, 0.5)"),
        parse_prior("precision:gamma(0.001, 0.001)"),
        parse_prior("turner(obstetric, pharm-placebo)"),
        parse_prior("uniform-shrinkage").resolve(se),
        parse_prior("dumouchel").resolve(se),
        Prior("half-normal", (0.123456789,)),
    ]
    for prior in priors:
        d = prior.to_dict()
        assert d["text"] == str(prior)
        back = Prior.from_dict(d)
        assert back == prior
        assert back.label == prior.label
        assert back.s0 == prior.s0


def test_prior_object_is_checked_against_role() -> None:
    prior = Prior("normal", (0.0, 1.0))
    assert parse_prior(prior, "mu") is prior
    with raises(f"'normal(0, 1)' is not a valid tau prior; valid: {TAU_VALID}"):
        parse_prior(prior, "tau")


def test_prior_set_defaults_and_roles() -> None:
    assert PriorSet.from_strings() == PriorSet(DEFAULT_MU, DEFAULT_TAU, DEFAULT_BASELINE)
    assert PriorSet().to_dict() == {
        "mu": "normal(0, 2.82)",
        "tau": "half-normal(0.5)",
        "baseline": "normal(0, 5)",
        "beta": "normal(0, 10)",
        "nu": "gamma(2, 0.1)",
    }
    ps = PriorSet.from_strings(tau="dumouchel", baseline="logistic(0, 1)")
    assert ps.mu == DEFAULT_MU
    assert ps.tau == Prior("dumouchel")
    assert ps.baseline == Prior("logistic", (0.0, 1.0))
    with raises(f"'half-normal(1)' is not a valid mu prior; valid: {MU_VALID}"):
        PriorSet.from_strings(mu="half-normal(1)")


# ---------------------------------------------------------------------- grammar: errors


@pytest.mark.parametrize(
    ("text", "role", "message"),
    [
        ("half-normal(-1)", "tau", "'half-normal(-1)': parameter sigma must be > 0, got -1"),
        ("half-normal(0)", "tau", "'half-normal(0)': parameter sigma must be > 0, got 0"),
        ("normal(0)", "mu", "'normal(0)': normal takes 2 parameter(s) (mu, sigma), got 1"),
        ("foo(1)", "tau", f"unknown prior 'foo' in 'foo(1)'; valid: {TAU_VALID}"),
        ("foo(1)", "mu", f"unknown prior 'foo' in 'foo(1)'; valid: {MU_VALID}"),
        ("normal(0, 1)", "tau", f"'normal(0, 1)' is not a valid tau prior; valid: {TAU_VALID}"),
        (
            "half-normal(1)",
            "baseline",
            f"'half-normal(1)' is not a valid baseline prior; valid: {MU_VALID}",
        ),
        (
            "tau2:normal(0, 1)",
            "mu",
            "'tau2:normal(0, 1)': the tau2: prefix applies to heterogeneity priors only",
        ),
        (
            "precision:normal(0, 1)",
            "mu",
            "'precision:normal(0, 1)': the precision: prefix applies to heterogeneity priors only",
        ),
        (
            "sd:half-normal(1)",
            "tau",
            "'sd:half-normal(1)': unknown scale prefix 'sd'; valid: tau2:, precision:",
        ),
        ("", "tau", f"empty tau prior; valid: {TAU_VALID}"),
        ("   ", "mu", f"empty mu prior; valid: {MU_VALID}"),
        ("uniform(2, 1)", "tau", "'uniform(2, 1)': uniform needs lower < upper"),
        ("uniform(1, 1)", "mu", "'uniform(1, 1)': uniform needs lower < upper"),
        ("uniform(-1, 1)", "tau", "'uniform(-1, 1)': a heterogeneity prior needs lower >= 0"),
        ("half-normal(abc)", "tau", "'half-normal(abc)': parameter sigma = 'abc' is not a number"),
        ("half-normal(inf)", "tau", "'half-normal(inf)': parameter sigma = 'inf' is not a number"),
        ("half-normal(1e400)", "tau", "'half-normal(1e400)': parameter sigma must be finite"),
        ("half-normal", "tau", "'half-normal': half-normal needs parameters: half-normal(sigma)"),
        (
            "half-normal()",
            "tau",
            "'half-normal()': half-normal takes 1 parameter(s) (sigma), got 0",
        ),
        ("((", "tau", f"cannot parse prior '(('; expected NAME(ARGS); valid: {TAU_VALID}"),
        (
            "uniform-shrinkage(1)",
            "tau",
            "'uniform-shrinkage(1)': uniform-shrinkage takes no parameters and is a tau prior only",
        ),
        ("dumouchel", "mu", "'dumouchel': dumouchel takes no parameters and is a tau prior only"),
        (
            "tau2:dumouchel",
            "tau",
            "'tau2:dumouchel': dumouchel takes no parameters and is a tau prior only",
        ),
        (
            "turner(obstetric, pharm-placebo)",
            "mu",
            "'turner(obstetric, pharm-placebo)': turner() is a heterogeneity (tau) prior, "
            "not a mu prior",
        ),
        (
            "turner(obstetric)",
            "tau",
            "'turner(obstetric)': expected turner(OUTCOME, COMPARISON), e.g. "
            "turner(obstetric outcomes, pharmacological vs. placebo / control)",
        ),
    ],
)
def test_bad_prior_messages(text, role, message) -> None:
    with raises(message):
        parse_prior(text, role)


def test_turner_unknown_outcome_lists_outcomes() -> None:
    outcomes = "; ".join(sorted({row[0] for row in turner_table()}))
    assert outcomes.startswith("adverse events; all-cause mortality; ")
    with raises(f"turner outcome 'xx' matches none of: {outcomes}"):
        parse_prior("turner(xx, pharm-placebo)")
    # "s" starts signs..., subjective..., surgical...: ambiguous, never a silent pick
    with raises(f"turner outcome 's' matches several of: {outcomes}"):
        parse_prior("turner(s, pharm-placebo)")


def test_turner_unknown_comparison_lists_comparisons_and_aliases() -> None:
    with raises(
        "turner comparison 'drug-placebo' is not one of: "
        "non-pharmacological vs. non-pharmacological; non-pharmacological vs. pharmacological; "
        "non-pharmacological vs. placebo / control; pharmacological vs. pharmacological; "
        "pharmacological vs. placebo / control "
        "(aliases: pharm-placebo, pharm-pharm, nonpharm-placebo, nonpharm-pharm, "
        "nonpharm-nonpharm)"
    ):
        parse_prior("turner(obstetric, drug-placebo)")


def test_named_prior_needs_resolve_before_density() -> None:
    with raises("uniform-shrinkage: s0 is unset; call resolve(se) with the data"):
        parse_prior("uniform-shrinkage").tau_dist()
    with raises("dumouchel: s0 is unset; call resolve(se) with the data"):
        parse_prior("dumouchel").tau_dist()


# ---------------------------------------------------------------------- densities on tau


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("half-normal(0.5)", stats.halfnorm(scale=0.5)),
        ("half-cauchy(0.3)", stats.halfcauchy(scale=0.3)),
        ("uniform(0, 2)", stats.uniform(0, 2)),
        ("log-normal(-1.76, 0.87)", stats.lognorm(s=0.87, scale=math.exp(-1.76))),
        # exponential(rate): mean 1/rate
        ("exponential(2)", stats.expon(scale=0.5)),
        # gamma(shape, rate) as in BUGS: mean shape/rate
        ("gamma(2, 4)", stats.gamma(2, scale=0.25)),
        # inverse-gamma(shape, scale), as RoBMA/JAGS: Bartos et al. 2023's Cochrane log-OR prior
        ("inverse-gamma(1.77, 0.55)", stats.invgamma(1.77, scale=0.55)),
    ],
)
def test_tau_scale_families_match_scipy(text, ref) -> None:
    tau = parse_prior(text).tau_dist()
    np.testing.assert_allclose(tau.ppf(QS), ref.ppf(QS), rtol=RTOL)
    grid = ref.ppf(QS)
    np.testing.assert_allclose(tau.cdf(grid), QS, rtol=RTOL)
    np.testing.assert_allclose(tau.pdf(grid), ref.pdf(grid), rtol=RTOL)
    assert np.all(tau.pdf(np.array([-1.0, -1e-9])) == 0)


def test_parameters_are_standard_deviations() -> None:
    # INTERFACE: "Parameters are standard deviations, not variances or precisions"
    assert parse_prior("normal(0, 2.82)", "mu").dist().std() == pytest.approx(2.82, rel=1e-12)
    # normal(0, 2.82): 95% prior OR within about 1/250..250 (models/ivig_rm.toml comment)
    assert math.exp(parse_prior("normal(0, 2.82)", "mu").dist().ppf(0.975)) == pytest.approx(
        250, rel=0.01
    )
    # half-normal(0.5): median 0.34, 95% quantile 0.98 (priors/README.md, Roever 2020)
    hn = parse_prior("half-normal(0.5)").tau_dist()
    assert hn.ppf(0.5) == pytest.approx(0.34, abs=0.005)
    assert hn.ppf(0.95) == pytest.approx(0.98, abs=0.005)


def test_logistic_0_1_is_uniform_on_control_probability() -> None:
    # INTERFACE: logistic(0, 1) on the control-arm log-odds = Uniform(0, 1) on probability
    dist = parse_prior("logistic(0, 1)", "baseline").dist()
    p = np.array([0.01, 0.2, 0.5, 0.7, 0.99])
    np.testing.assert_allclose(dist.cdf(np.log(p / (1 - p))), p, rtol=RTOL)


def _stated_quantile_to_tau(scale: str, ref, q: np.ndarray) -> np.ndarray:
    """Quantile of tau from scipy quantiles of the stated quantity (tau is increasing in
    tau^2 and decreasing in the precision)."""
    if scale == "tau2":
        return np.sqrt(ref.ppf(q))
    return 1 / np.sqrt(ref.ppf(1 - q))


def _stated_draws_to_tau(scale: str, draws: np.ndarray) -> np.ndarray:
    if scale == "tau2":
        return np.sqrt(draws)
    with np.errstate(divide="ignore"):  # gamma(0.001, .) draws underflow to 0: tau = inf
        return 1 / np.sqrt(draws)


RESCALED = [
    ("tau2:uniform(0, 50)", "tau2", stats.uniform(0, 50)),
    ("tau2:log-normal(-3.52, 1.74)", "tau2", stats.lognorm(s=1.74, scale=math.exp(-3.52))),
    ("precision:gamma(0.001, 0.001)", "precision", stats.gamma(0.001, scale=1000.0)),
    ("precision:gamma(2, 1)", "precision", stats.gamma(2, scale=1.0)),
]
RESCALED_IDS = [r[0] for r in RESCALED]


@pytest.mark.parametrize(("text", "scale", "ref"), RESCALED, ids=RESCALED_IDS)
def test_rescaled_prior_quantiles(text, scale, ref) -> None:
    prior = parse_prior(text)
    assert prior.scale == scale
    tau = prior.tau_dist()
    qs = QS
    if text == "precision:gamma(0.001, 0.001)":
        # precision quantiles below ~0.4 underflow to 0 (tau = inf); half its tau mass
        # lies beyond 1e149
        qs = np.array([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5])
    expected = _stated_quantile_to_tau(scale, ref, qs)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(tau.ppf(qs), expected, rtol=RTOL)
    np.testing.assert_allclose(tau.cdf(tau.ppf(qs)), qs, rtol=RTOL)
    np.testing.assert_allclose(tau.sf(tau.ppf(qs)), 1 - qs, rtol=RTOL)


@pytest.mark.parametrize(("text", "scale", "ref"), RESCALED, ids=RESCALED_IDS)
def test_rescaled_prior_matches_monte_carlo(text, scale, ref) -> None:
    tau = parse_prior(text).tau_dist()
    draws = _stated_draws_to_tau(scale, ref.rvs(size=N_MC, random_state=20261125))
    if text == "precision:gamma(0.001, 0.001)":
        # almost all the mass is at astronomically large tau; test where it is not
        points = np.array([0.1, 1.0, 10.0, 100.0])
    else:
        points = tau.ppf(np.array([0.05, 0.25, 0.5, 0.75, 0.95]))
    assert_ecdf_matches(draws, points, tau.cdf(points))


@pytest.mark.parametrize(
    ("text", "scale", "ref"),
    [r for r in RESCALED if r[0] != "precision:gamma(0.001, 0.001)"]
    + [("precision:gamma(0.5, 0.02)", "precision", stats.gamma(0.5, scale=50.0))],
)
def test_rescaled_prior_density(text, scale, ref) -> None:
    # precision:gamma(0.001, 0.001) puts its mass near tau ~ 1e150: no quadrature reaches
    # it, so the density is integrated for gamma priors of moderate shape instead.
    tau = parse_prior(text).tau_dist()
    lo, hi = tau.ppf(np.array([1e-12, 1 - 1e-12]))
    pieces = np.concatenate([[0.0], tau.ppf(np.linspace(0.1, 0.9, 9)), [np.inf]])
    total = sum(
        integrate.quad(tau.pdf, a, b, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
        for a, b in itertools.pairwise(pieces)
    )
    assert total == pytest.approx(1.0, abs=QUAD_TOL)
    # the density is the derivative of the CDF implied by scipy on the stated scale
    grid = tau.ppf(np.array([0.05, 0.3, 0.5, 0.7, 0.95]))
    assert np.all((grid > lo) & (grid < hi))
    h = grid * 1e-6
    if scale == "tau2":
        implied = (ref.cdf((grid + h) ** 2) - ref.cdf((grid - h) ** 2)) / (2 * h)
    else:
        implied = (ref.sf((grid + h) ** -2) - ref.sf((grid - h) ** -2)) / (2 * h)
    np.testing.assert_allclose(tau.pdf(grid), implied, rtol=1e-5)


# ---------------------------------------------------------------------- half-t


@pytest.mark.parametrize(("nu", "s"), [(3.0, 0.5), (1.0, 1.0), (7.0, 0.2)])
def test_half_t_matches_simulated_abs_t(nu, s) -> None:
    tau = parse_prior(f"half-t({nu:g}, {s:g})").tau_dist()
    draws = np.abs(stats.t(df=nu, scale=s).rvs(size=N_MC, random_state=7))
    qs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    assert_ecdf_matches(draws, tau.ppf(qs), qs)
    # the density integrates to 1 over tau >= 0
    total = integrate.quad(tau.pdf, 0, np.inf, epsabs=1e-12, limit=200)[0]
    assert total == pytest.approx(1.0, abs=QUAD_TOL)
    np.testing.assert_allclose(tau.cdf(tau.ppf(qs)), qs, rtol=RTOL)


def test_half_t_with_one_degree_of_freedom_is_half_cauchy() -> None:
    tau = parse_prior("half-t(1, 0.7)").tau_dist()
    ref = stats.halfcauchy(scale=0.7)
    grid = np.array([0.01, 0.3, 0.7, 2.0, 50.0])
    np.testing.assert_allclose(tau.pdf(grid), ref.pdf(grid), rtol=RTOL)
    np.testing.assert_allclose(tau.cdf(grid), ref.cdf(grid), rtol=RTOL)
    np.testing.assert_allclose(tau.ppf(QS), ref.ppf(QS), rtol=RTOL)


# ------------------------------------------------------- uniform shrinkage and DuMouchel

SE = np.array([0.21, 0.35, 0.5, 0.93, 1.4])


def _implied_b(family: str, s0: float, tau: np.ndarray) -> np.ndarray:
    if family == "uniform-shrinkage":
        return s0**2 / (s0**2 + tau**2)
    return s0 / (s0 + tau)


@pytest.mark.parametrize("family", ["uniform-shrinkage", "dumouchel"])
def test_named_prior_s0_is_harmonic_mean_of_variances(family) -> None:
    prior = parse_prior(family)
    assert prior.needs_data
    assert prior.s0 is None
    resolved = prior.resolve(SE)
    assert resolved.s0**2 == pytest.approx(stats.hmean(SE**2), rel=1e-12)
    assert resolved.describe() == f"{family} (s0 = {resolved.s0:.4g})"
    assert str(resolved) == family
    # priors that do not depend on the data are returned unchanged
    hn = parse_prior("half-normal(0.5)")
    assert hn.resolve(SE) is hn


@pytest.mark.parametrize("family", ["uniform-shrinkage", "dumouchel"])
def test_named_prior_implies_uniform_b(family) -> None:
    prior = parse_prior(family).resolve(SE)
    s0 = prior.s0
    tau = prior.tau_dist()
    # B is decreasing in tau: P(B <= 1 - q) = P(tau >= ppf(q)) = 1 - q, i.e. B ~ U(0, 1)
    b = _implied_b(family, s0, tau.ppf(QS))
    np.testing.assert_allclose(b, 1 - QS, rtol=RTOL)
    np.testing.assert_allclose(tau.cdf(tau.ppf(QS)), QS, rtol=RTOL)
    # Monte Carlo: B ~ U(0, 1), solved for tau independently of the module
    u = stats.uniform().rvs(size=N_MC, random_state=3)
    if family == "uniform-shrinkage":
        draws = s0 * np.sqrt((1 - u) / u)
    else:
        draws = s0 * (1 - u) / u
    points = s0 * np.array([0.1, 0.5, 1.0, 2.0, 10.0])
    assert_ecdf_matches(draws, points, tau.cdf(points))
    total = integrate.quad(tau.pdf, 0, np.inf, epsabs=1e-12, limit=200)[0]
    assert total == pytest.approx(1.0, abs=QUAD_TOL)


# ---------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e3, exclude_min=True, exclude_max=True))
def test_any_half_normal_parses_and_round_trips(s) -> None:
    prior = parse_prior(f"half-normal({s!r})")
    assert prior == Prior("half-normal", (s,))
    assert Prior.from_dict(prior.to_dict()) == prior
    # str() prints 6 significant digits: exact round trip for such values ...
    short = float(f"{s:.6g}")
    p6 = parse_prior(f"half-normal({short!r})")
    assert parse_prior(str(p6)) == p6
    # ... and within 6 significant digits for any value
    again = parse_prior(str(prior))
    assert again.family == "half-normal"
    assert again.params[0] == pytest.approx(s, rel=5e-6)


def test_str_round_trip_is_exact_for_any_float() -> None:
    p = parse_prior("half-normal(0.1234567)")
    assert parse_prior(str(p)) == p
    u = parse_prior("uniform(0.1234561, 0.1234564)", "mu")
    assert parse_prior(str(u), "mu") == u


@settings(max_examples=300, deadline=None)
@given(st.text(), st.sampled_from(["mu", "tau", "baseline"]))
def test_arbitrary_text_raises_only_prior_error(text, role) -> None:
    try:
        prior = parse_prior(text, role)
    except PriorError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(prior, Prior)


_FRAGMENT = st.sampled_from(["", "tau2:", "precision:", "sd:", "TAU2 :", "turner", "("])
_NAME = st.sampled_from(
    [
        "normal", "half-normal", "half-cauchy", "half-t", "uniform", "log-normal",
        "logistic", "exponential", "gamma", "inverse-gamma", "student-t", "flat",
        "uniform-shrinkage",
        "dumouchel", "turner", "foo", "", "half_normal",
    ]
)  # fmt: skip
_ARG = st.one_of(
    st.sampled_from(["0", "1", "-1", "0.5", "1e-3", "2.82", "50", "nan", "inf", "", "abc",
                     "obstetric", "pharm-placebo", "1e400", ".5", "-0"]),
    # decimal numbers of up to 5 significant digits
    st.integers(-99_999, 99_999).map(lambda i: repr(i / 1000)),
    st.text(max_size=5),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    _FRAGMENT,
    _NAME,
    st.lists(_ARG, max_size=4),
    st.booleans(),
    st.sampled_from(["mu", "tau", "baseline"]),
)
def test_grammar_like_text_raises_only_prior_error(prefix, name, args, parens, role) -> None:
    text = prefix + name + (f"({', '.join(args)})" if parens else "")
    try:
        prior = parse_prior(text, role)
    except PriorError:
        return
    # whatever parses prints back to something that parses to the same kind of prior
    again = parse_prior(str(prior), role)
    assert (again.family, again.scale, len(again.params)) == (
        prior.family,
        prior.scale,
        len(prior.params),
    )


@pytest.mark.mcmc
def test_inverse_gamma_pymc_density_matches_scipy() -> None:
    """The PyMC variable of inverse-gamma(alpha, beta) has scipy's invgamma(alpha, scale=beta)."""
    import pymc as pm

    prior = parse_prior("inverse-gamma(1.77, 0.55)")
    with pm.Model() as model:
        pymc_variable(prior, "tau")
    logp = model.compile_logp(jacobian=False)
    for tau in (0.05, 0.3, 2.0):
        value = {"tau_log__": np.log(tau)}
        # compiled float64 log density vs scipy: same formula, rounding only
        assert logp(value) == pytest.approx(float(prior.dist().logpdf(tau)), rel=RTOL)
