"""Tests of the future-trial design (assurance), `analysis.assurance` and ``design``.

The simulation is checked against two independent calculations: the exact binomial power at a
fixed effect (:func:`exact_power`, an enumeration of the arm counts) and a closed-form normal
approximation integrated over a normal predictive distribution (:func:`normal_assurance`).
One real fit of ``ivig_rm_secondary`` (module-scoped, seeded) feeds the plumbing and CLI tests.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from conftest import run_cli
from trialsynth.analysis.assurance import (
    AssuranceError,
    Criterion,
    design_trial,
    exact_power,
    n_for_target,
    normal_assurance,
    parse_n_range,
    simulate,
)
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit

#: Agreement in Monte Carlo standard errors: a 4-MCSE miss has probability 6e-5 per check.
N_MCSE = 4.0
LOGIT_04 = math.log(0.4 / 0.6)


@pytest.fixture(scope="module")
def secondary(tmp_path_factory):
    """ivig_rm_secondary, default priors, saved to a FIT folder (1000 draws x 4 chains)."""
    data = load("ivig_rm_secondary")
    res = fit(data, settings=SamplerSettings(draws=1000, tune=500, seed=3), reusable=True)
    assert res.ok, res.diagnostics.problems
    folder = tmp_path_factory.mktemp("secondary")
    res.save(folder)
    return folder


# ------------------------------------------------------------------ criteria


@pytest.mark.parametrize(
    "crit",
    [
        Criterion("posterior", threshold=0.95),
        Criterion.from_options("posterior", threshold=0.9, analysis_prior="normal(0.3, 0.5)"),
        Criterion.from_options("posterior", threshold=0.975, analysis_prior="flat()"),
    ],
)
def test_posterior_boundary_matches_conjugate_posterior(crit):
    rng = np.random.default_rng(0)
    lor, se = rng.normal(0.3, 0.5, 2000), rng.uniform(0.05, 1.0, 2000)
    if crit.analysis_prior.family == "flat":
        mean, sd = lor, se
    else:
        m0, s0 = crit.analysis_prior.params
        prec = 1 / se**2 + 1 / s0**2
        mean, sd = (lor / se**2 + m0 / s0**2) / prec, 1 / np.sqrt(prec)
    p_benefit = stats.norm.cdf(mean / sd)
    np.testing.assert_array_equal(crit.success(lor, se), p_benefit > crit.threshold)


def test_two_sided_test_boundary():
    crit = Criterion(alpha=0.05)
    assert crit.success(np.array([1.97, 1.95]), np.array([1.0, 1.0])).tolist() == [True, False]
    # favouring treatment only: a significant harm is not a success
    assert not crit.success(np.array([-3.0]), np.array([1.0]))[0]


# ------------------------------------------------------------------ simulation vs exact


@pytest.mark.parametrize("crit", [Criterion(), Criterion("posterior", threshold=0.975)])
def test_simulation_at_a_fixed_effect_equals_exact_binomial_power(crit):
    theta = np.full((4, 50_000), 0.25)
    (point,), _ = simulate(theta, LOGIT_04, [300], crit, sims=theta.size, seed=1)
    # Monte Carlo only: both are the same probability, the enumeration is exact.
    exact = exact_power(0.25, 0.4, 300, crit)
    assert abs(point.assurance - exact) < N_MCSE * point.mcse


@pytest.mark.parametrize("crit", [Criterion(), Criterion("posterior", threshold=0.9)])
def test_assurance_agrees_with_closed_form_normal_approximation(crit):
    mean, sd, n = 0.25, 0.3, 1500
    theta = np.random.default_rng(7).normal(mean, sd, size=(4, 50_000))
    (point,), sims = simulate(theta, LOGIT_04, [n], crit, sims=theta.size, seed=2)
    closed = normal_assurance(mean, sd, 0.4, n, crit)
    # The closed form differs from the simulated model by Monte Carlo error and by the normal
    # approximation of the binomial test; the latter is bounded by the largest gap between
    # the exact power and the approximate power over the bulk of theta (computed, not tuned).
    grid = mean + sd * np.linspace(-4, 4, 33)
    approx_err = max(
        abs(exact_power(t, 0.4, n, crit) - normal_assurance(t, 0.0, 0.4, n, crit)) for t in grid
    )
    assert sims == theta.size
    assert approx_err < 0.005  # the normal approximation is good at this size
    assert abs(point.assurance - closed) < N_MCSE * point.mcse + approx_err


def test_mcse_matches_binomial_standard_error_for_independent_draws():
    theta = np.random.default_rng(3).normal(0.2, 0.4, size=(4, 25_000))
    (point,), _ = simulate(theta, LOGIT_04, [400], Criterion(), sims=theta.size, seed=4)
    binomial = math.sqrt(point.assurance * (1 - point.assurance) / theta.size)
    # independent draws: ESS ~ number of draws, so the MCSE is the binomial SE (+-10% for
    # the Monte Carlo error of the ESS estimate itself)
    assert point.mcse == pytest.approx(binomial, rel=0.1)


def test_same_seed_same_numbers_other_seed_other_numbers():
    theta = np.random.default_rng(3).normal(0.2, 0.4, size=(2, 1000))
    a, _ = simulate(theta, LOGIT_04, [100, 200], Criterion(), sims=4000, seed=9)
    b, _ = simulate(theta, LOGIT_04, [100, 200], Criterion(), sims=4000, seed=9)
    c, _ = simulate(theta, LOGIT_04, [100, 200], Criterion(), sims=4000, seed=10)
    assert [p.assurance for p in a] == [p.assurance for p in b]
    assert [p.assurance for p in a] != [p.assurance for p in c]


# ------------------------------------------------------------------ the curve and N for target


def test_assurance_below_classical_power_when_uncertainty_is_large():
    mean, sd, n = 0.4, 0.6, 800
    theta = np.random.default_rng(11).normal(mean, sd, size=(4, 10_000))
    (point,), _ = simulate(theta, LOGIT_04, [n], Criterion(), sims=theta.size, seed=5)
    power = exact_power(mean, 0.4, n, Criterion())
    limit = float(np.mean(theta > 0))
    assert power > 0.95
    # assurance can never exceed P(theta > 0) by more than the chance of a false positive
    assert point.assurance < limit + 0.025
    assert point.assurance + N_MCSE * point.mcse < power


def test_n_for_target_grows_with_uncertainty_and_with_target():
    sizes = list(range(50, 3001, 50))
    needed = []
    for sd in (0.05, 0.2, 0.35):
        theta = np.random.default_rng(12).normal(0.4, sd, size=(4, 5000))
        points, _ = simulate(theta, LOGIT_04, sizes, Criterion(), sims=theta.size, seed=6)
        curve = np.array([p.assurance for p in points])
        # nested simulation (a growing trial): the curve rises except for Monte Carlo wiggles
        assert np.all(np.diff(curve) > -0.01)
        by_target = [n_for_target(points, t) for t in (0.5, 0.6, 0.7, 0.75)]
        assert all(n is not None for n in by_target)
        assert by_target == sorted(by_target)
        needed.append(n_for_target(points, 0.7))
    assert needed[0] < needed[1] < needed[2]


# ------------------------------------------------------------------ from a fit


@pytest.mark.mcmc
def test_design_trial_on_a_fit(secondary):
    res = FitResult.load(secondary)
    out = design_trial(res, [100, 400, 1600], seed=5)
    limit = float(np.mean(res.draws("theta_new") > 0))
    assert out.assurance_limit == pytest.approx(limit)
    assert [p.n_per_arm for p in out.points] == [100, 400, 1600]
    assert all(p.assurance < p.classical_power for p in out.points[1:])
    assert out.points[-1].assurance < limit + 0.025
    assert out.control_source.startswith("posterior")
    lo, hi = out.control_rate_interval
    assert 0 < lo < out.control_rate < hi < 1
    assert out.fit_status == "ok"
    pred = out.points[0].predictive
    assert set(pred) == {"or_observed", "live_births_t", "live_births_c"}
    assert 0 <= pred["live_births_t"]["q025"] <= pred["live_births_t"]["q975"] <= 100
    unreachable = design_trial(res, [100, 200], target=0.99, seed=5)
    assert unreachable.n_for_target is None
    assert "unreachable" in unreachable.target_note


@pytest.mark.mcmc
def test_design_for_a_subgroup(tmp_path):
    from trialsynth.models.spec import ModelSpec

    data = load("ivig_rm")
    spec = ModelSpec.from_options("binomial-normal", data_kind="arm", subgroup="population")
    res = fit(data, spec=spec, settings=SamplerSettings(draws=1000, tune=500, seed=4))
    out = design_trial(res, [200, 2000], subgroup="secondary", seed=2)
    j = res.subgroups.index("secondary")
    theta = res.draws("theta_new_subgroup")[..., j]
    assert out.assurance_limit == pytest.approx(float(np.mean(theta > 0)))
    assert out.pooled_log_or == pytest.approx(float(np.median(res.draws("mu_subgroup")[..., j])))
    assert "subgroup 'secondary'" in out.control_source
    # the two secondary trials' control rates: 15/24 and 20/40 live births
    assert 0.3 < out.control_rate < 0.75
    assert out.to_json()[0]["subgroup"] == "secondary"
    with pytest.raises(AssuranceError, match="valid: mixed, primary, secondary"):
        design_trial(res, [200], subgroup="tertiary")
    whole = design_trial(res, [200], seed=2)
    assert whole.assurance_limit == pytest.approx(float(np.mean(res.draws("theta_new") > 0)))


def test_design_subgroup_needs_a_subgroup_fit(secondary):
    code, _, stderr = run_cli(
        ["design", str(secondary), "--n-per-arm", "100", "--subgroup", "secondary"]
    )
    assert code == 2 and "this fit has no subgroups" in stderr


def test_assurance_plot_structure(secondary):
    import matplotlib.pyplot as plt

    from trialsynth.report.plots import assurance_plot

    out = design_trial(FitResult.load(secondary), [50, 100, 2000], target=0.5, seed=5)
    fig = assurance_plot(out)
    ax = fig.axes[0]
    _, labels = ax.get_legend_handles_labels()
    assert labels[0] == "assurance"
    assert labels[1].startswith("classical power at OR")
    assert labels[2].startswith("limit P(OR_new > 1)") and labels[3] == "target 0.5"
    assert list(ax.lines[0].get_xdata()) == [50, 100, 2000]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [p.assurance for p in out.points])
    plt.close(fig)


def test_fit_without_control_arms_needs_control_rate(secondary):
    res = FitResult.load(secondary)
    res.tree["posterior"] = res.tree["posterior"].to_dataset().drop_vars("alpha")
    with pytest.raises(AssuranceError, match="give --control-rate"):
        design_trial(res, [100])
    assert design_trial(res, [100], control_rate=0.5).control_source == "given"


# ------------------------------------------------------------------ CLI


def test_cli_design_json_single_and_range(secondary, tmp_path):
    code, stdout, stderr = run_cli(
        ["design", str(secondary), "--n-per-arm", "200", "--control-rate", "0.5", "--json"]
    )
    assert code == 0, stderr
    obj = json.loads(stdout)
    assert {
        "n_per_arm",
        "control_rate",
        "criterion",
        "assurance",
        "mcse",
        "classical_power",
    } <= set(obj)
    assert obj["n_per_arm"] == 200 and obj["control_rate"] == 0.5
    assert obj["criterion"] == "two-sided-test"
    png = tmp_path / "curve.png"
    code, stdout, stderr = run_cli(
        [
            "design",
            str(secondary),
            "--n-range",
            "100:300:100",
            "--criterion",
            "posterior",
            "--threshold",
            "0.9",
            "--json",
            "--plot",
            str(png),
        ]
    )
    assert code == 0, stderr
    rows = json.loads(stdout)
    assert [r["n_per_arm"] for r in rows] == [100, 200, 300]
    assert {r["criterion"] for r in rows} == {"posterior"}
    assert png.stat().st_size > 0


def test_cli_design_table(secondary):
    code, stdout, _ = run_cli(["design", str(secondary), "--n-per-arm", "300", "--sims", "8000"])
    assert code == 0
    assert "assurance" in stdout and "classical power" in stdout and "fit priors" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the size per arm"),
        (["--n-per-arm", "0"], "--n-per-arm 0"),
        (["--n-range", "10:5"], "--n-range '10:5'"),
        (["--n-range", "a:b"], "START:STOP:STEP"),
        (
            ["--n-per-arm", "100", "--criterion", "bayes"],
            "'bayes' is not one of 'two-sided-test', 'posterior', 'updated-meta', "
            "'updated-meta-classical'",
        ),
        (["--n-per-arm", "100", "--alpha", "1.5"], "--alpha must be in (0, 1)"),
        (["--n-per-arm", "100", "--control-rate", "1"], "--control-rate must be in (0, 1)"),
        (["--n-per-arm", "100", "--target", "0"], "--target must be in (0, 1)"),
        (["--n-per-arm", "100", "--sims", "0"], "--sims must be a positive integer"),
        (
            ["--n-per-arm", "100", "--criterion", "posterior", "--analysis-prior", "cauchy(0)"],
            "valid: normal(m, s), flat()",
        ),
    ],
)
def test_cli_design_bad_arguments_one_line(secondary, args, message):
    code, stdout, stderr = run_cli(["design", str(secondary), *args])
    assert code == 2
    assert stdout == ""
    assert stderr.count("\n") == 1 and message in stderr, stderr


def test_cli_design_missing_fit(tmp_path):
    code, _, stderr = run_cli(["design", str(tmp_path), "--n-per-arm", "100"])
    assert code == 2 and "no posterior.nc" in stderr


def test_parse_n_range():
    assert parse_n_range("50:200:50") == [50, 100, 150, 200]
    assert parse_n_range("50:190:50") == [50, 100, 150]
