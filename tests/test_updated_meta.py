"""The next trial judged by the updated meta-analysis (`analysis.updated_meta`).

Independent references: a fresh adaptive quadrature of the k + 1 trials
(:func:`trialsynth.core.exact.exact_posterior`) for the exact update, metafor-checked
:func:`trialsynth.core.frequentist.random_effects` (``method="DL"``) for the classical
criterion, and MCMC refits of the binomial-normal model with the new trial appended for the
importance reweighting.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from conftest import run_cli
from trialsynth.analysis import mixture_update as mix
from trialsynth.analysis import updated_conclusion as conc
from trialsynth.analysis import updated_meta as um
from trialsynth.analysis.assurance import simulate_counts
from trialsynth.core.effects import log_odds_ratios
from trialsynth.core.exact import exact_posterior
from trialsynth.core.frequentist import random_effects
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.models.spec import ModelSpec
from trialsynth.results.fitting import fit

# ivig_rm_secondary (no zero cells): events_t, n_t, events_c, n_c
COUNTS = np.array(
    [[15, 26, 6, 25], [7, 10, 6, 11], [8, 11, 7, 10], [16, 23, 15, 24], [23, 42, 20, 40]]
)
LOR = log_odds_ratios(*COUNTS.T)
Y, SE = LOR.y, LOR.se
TAU = stats.halfnorm(scale=0.5)
MU = (0.0, 2.82)
#: Reweighting the old tau nodes against a fresh adaptive quadrature of the k + 1 trials:
#: both are accurate to ~1e-9 (exact.DEFAULT_DELTA); measured differences are ~1e-12.
QUAD_TOL = 5e-8
#: Agreement in Monte Carlo standard errors (a 4-MCSE miss has probability 6e-5).
N_MCSE = 4.0


@pytest.fixture(scope="module")
def post():
    return exact_posterior(Y, SE, TAU, MU)


@pytest.fixture(scope="module")
def nn_fit():
    """ivig_rm_secondary, normal-normal, default priors, exact engine (8000 iid draws)."""
    return fit(load("ivig_rm_secondary"), spec=ModelSpec(likelihood="normal"), engine="exact")


# ------------------------------------------------------------------ the update itself


def test_exact_update_equals_full_recomputation(post):
    comp = mix.components_from_exact(post)
    rng = np.random.default_rng(1)
    draws = post.sample(40, rng)
    se_new = rng.uniform(0.06, 0.5, 40)
    y_new = draws["theta_new"] + se_new * rng.standard_normal(40)
    got = mix.update(comp, y_new, se_new).p
    for y, s, p in zip(y_new, se_new, got, strict=True):
        full = exact_posterior(np.append(Y, y), np.append(SE, s), TAU, MU)
        assert p == pytest.approx(full.prob_mu_gt(0.0), abs=QUAD_TOL)


def test_no_information_leaves_the_posterior_unchanged(post):
    comp = mix.components_from_exact(post)
    assert float(mix.update(comp, 0.3, 1e6).p) == pytest.approx(post.prob_mu_gt(0.0), abs=1e-10)


def test_rao_blackwell_and_plain_reweighting_agree_with_exact(post):
    """Both importance estimates from iid draws agree with the exact update within MCSE."""
    d = post.sample(20_000, np.random.default_rng(2))
    rb = mix.components_from_draws(d["mu"], d["tau"], d["theta"], mu_prior=MU)
    plain = mix.components_from_draws(d["mu"], d["tau"])
    y, se = np.array([-0.5, 0.2, 0.8, 2.0]), np.array([0.1, 0.2, 0.15, 0.3])
    exact = mix.update(mix.components_from_exact(post), y, se).p
    for c in (rb, plain):
        up = mix.update(c, y, se)
        assert np.all(np.abs(up.p - exact) < N_MCSE * up.mcse + 1e-4)
        assert np.all(up.ess > 100)
    assert rb.source == "draws-rao-blackwell" and plain.source == "draws"


def test_screened_classification_equals_direct(monkeypatch):
    rng = np.random.default_rng(4)
    n = 4000
    mu, tau = rng.normal(0.4, 0.3, n), np.abs(rng.normal(0, 0.4, n))
    theta = mu[:, None] + tau[:, None] * rng.standard_normal((n, 5))
    comp = mix.components_from_draws(mu, tau, theta, mu_prior=MU)
    y, se = rng.normal(0.4, 0.6, 3000), rng.uniform(0.1, 0.2, 3000)
    direct = mix.update(comp, y, se).p
    monkeypatch.setattr(mix, "DIRECT_BUDGET", 0)
    scr = mix.updated_probability(comp, y, se, 0.9)
    assert not scr.direct.all()  # the table was used
    np.testing.assert_array_equal(scr.p > 0.9, direct > 0.9)
    assert np.max(np.abs(scr.p - direct)) < 1e-3


def _plain_update(comp, y, se, c):
    """The update formula written plainly (one expression a step, whole arrays)."""
    var_new = comp.tau**2 + se[:, None] ** 2
    tot = comp.v + var_new
    d = y[:, None] - comp.m
    lw = np.log(comp.weight) - 0.5 * np.log(tot) - 0.5 * d * d * (1.0 / tot)
    w = np.exp(lw - lw.max(axis=1, keepdims=True))
    sw = w.sum(axis=1)
    m_new = comp.m + comp.v * (1.0 / tot) * d
    sd = np.sqrt(comp.v * var_new * (1.0 / tot))
    ps = mix._normal_sf(c, m_new, sd * sd)
    p = (w * ps).sum(axis=1) / sw
    wn = w / sw[:, None]
    mcse = np.sqrt((wn * wn * (ps - p[:, None]) ** 2).sum(axis=1))
    return p, sw**2 / (w * w).sum(axis=1), mcse


@pytest.mark.parametrize("v_zero", [False, True])
@pytest.mark.parametrize("c", [0.0, 0.3])
def test_in_place_update_gives_the_plain_formulas_numbers_to_the_bit(v_zero, c):
    # update() works in place in blocks for speed; its numbers must be the plain formula's
    # exactly (no tolerance: the same operations in the same order), for vector and scalar
    # se, across block boundaries, with Rao-Blackwellised (v > 0) and plain (v = 0) draws
    rng = np.random.default_rng(11)
    n = 3000
    mu, tau = rng.normal(0.2, 0.3, n), np.abs(rng.normal(0, 0.4, n))
    theta = None if v_zero else mu[:, None] + tau[:, None] * rng.standard_normal((n, 6))
    comp = mix.components_from_draws(mu, tau, theta, mu_prior=MU, draw_ess=1000.0)
    y, se = rng.normal(0.3, 0.8, 500), rng.uniform(0.05, 0.6, 500)
    inflate = math.sqrt(n / 1000.0)
    for se_arg, se_vec in ((se, se), (0.25, np.full(y.size, 0.25))):
        up = mix.update(comp, y, se_arg, c=c, block=7 * n + 5)  # blocks of 7 trials
        p, ess, mcse = _plain_update(comp, y, se_vec, c)
        np.testing.assert_array_equal(up.p, p)
        np.testing.assert_array_equal(up.ess, ess)
        np.testing.assert_array_equal(up.mcse, inflate * mcse)


def test_dl_update_equals_random_effects():
    rng = np.random.default_rng(3)
    y_new, se_new = rng.normal(0.3, 1.0, 25), rng.uniform(0.05, 0.6, 25)
    dl = conc.dl_update(Y, SE, y_new, se_new)
    for i in range(25):
        r = random_effects(np.append(Y, y_new[i]), np.append(SE, se_new[i]), method="DL")
        assert dl.estimate[i] == pytest.approx(r.estimate, abs=1e-12)
        assert dl.lower[i] == pytest.approx(r.ci_lower, abs=1e-12)
        assert dl.tau2[i] == pytest.approx(r.tau2, abs=1e-12)


def test_limits_are_the_limits_of_a_vanishing_se(post):
    comp = mix.components_from_exact(post)
    t = np.array([-1.0, 0.2, 0.5, 3.0])
    np.testing.assert_allclose(mix.update(comp, t, 1e-5).p, mix.update(comp, t, 0.0).p, atol=1e-8)
    # the DL limit (se = 0 handled in closed form) against a tiny se: where the DL tau^2 is
    # 0 the new trial dominates and its half-width 1.96 se remains (O(se)), else O(se^2)
    np.testing.assert_allclose(
        conc.dl_update(Y, SE, t, 1e-4).lower, conc.dl_update(Y, SE, t, 0.0).lower, atol=2e-4
    )


def test_crossings_are_roots(post):
    comp = mix.components_from_exact(post)
    c = conc.crossings(comp, Y, SE, 300, 0.5, 0.95)
    (b,) = c.benefit
    se_b = conc.se_of_observed(np.log(b), 0.5, 300)
    assert float(mix.update(comp, np.log(b), se_b).p) == pytest.approx(0.95, abs=1e-8)
    for x in c.classical:
        lo = conc.dl_update(Y, SE, np.log(x), conc.se_of_observed(np.log(x), 0.5, 300)).lower
        assert float(lo) == pytest.approx(0.0, abs=1e-8)
    # a very favourable trial raises the DL tau^2 until the CI includes 1 again
    assert len(c.classical) == 2 and c.classical[1] > 5


# ------------------------------------------------------------------ the design


def test_normal_normal_assurance_equals_independent_quadrature(nn_fit):
    """design_updated vs trials simulated independently and refitted by fresh quadrature."""
    n, rate = 200, 0.5
    d = um.design_updated(nn_fit, [n], control_rate=rate, sims=8000, seed=5)
    rng = np.random.default_rng(99)
    theta = nn_fit.posterior.sample(600, rng)["theta_new"]
    x_c = rng.binomial(n, rate, 600)
    x_t = rng.binomial(n, stats.logistic.cdf(math.log(rate / (1 - rate)) + theta))
    lor = log_odds_ratios(x_t, np.full(600, n), x_c, np.full(600, n))
    ok = [
        exact_posterior(np.append(Y, y), np.append(SE, s), TAU, MU).prob_mu_gt(0.0) > 0.95
        for y, s in zip(lor.y, lor.se, strict=True)
    ]
    got = d.points[0].curves["updated-meta"]
    ref, ref_se = np.mean(ok), np.std(ok) / math.sqrt(len(ok))
    assert abs(got.assurance - ref) < N_MCSE * math.hypot(got.mcse, ref_se)
    assert d.components == "exact" and d.checks  # the exact checks ran
    assert max(c["abs_diff"] for c in d.checks) < QUAD_TOL


def test_same_trials_same_verdicts_as_recomputation(nn_fit):
    """On the design's own simulated trials the verdicts equal a fresh quadrature's."""
    comp = mix.components_for(nn_fit)
    theta = nn_fit.draws("theta_new")
    (n, x_t, x_c), *_ = simulate_counts(theta, math.log(0.5 / 0.5), [300], sims=8000, seed=7)
    lor = log_odds_ratios(x_t.ravel()[:150], np.full(150, n), x_c.ravel()[:150], np.full(150, n))
    p = mix.update(comp, lor.y, lor.se).p
    for y, s, pi in zip(lor.y, lor.se, p, strict=True):
        full = exact_posterior(np.append(Y, y), np.append(SE, s), TAU, MU).prob_mu_gt(0.0)
        assert pi == pytest.approx(full, abs=QUAD_TOL)


def test_classical_criterion_equals_direct_dl(nn_fit):
    n, rate, seed = 250, 0.45, 11
    d = um.design_updated(nn_fit, [n], control_rate=rate, sims=8000, seed=seed)
    theta = nn_fit.draws("theta_new")
    (_, x_t, x_c), *_ = simulate_counts(
        theta, math.log(rate / (1 - rate)), [n], sims=8000, seed=seed
    )
    lor = log_odds_ratios(x_t.ravel(), np.full(x_t.size, n), x_c.ravel(), np.full(x_t.size, n))
    idx = np.arange(0, x_t.size, 16)  # every 16th trial: 500 direct DL fits
    ok = np.array(
        [
            random_effects(np.append(Y, lor.y[i]), np.append(SE, lor.se[i]), method="DL").ci_lower
            > 0
            for i in idx
        ]
    )
    vec = conc.dl_update(Y, SE, lor.y, lor.se).lower > 0
    np.testing.assert_array_equal(vec[idx], ok)
    assert d.points[0].curves["updated-meta-classical"].assurance == pytest.approx(vec.mean())


def test_assurances_approach_their_limits(nn_fit):
    d = um.design_updated(nn_fit, [100, 20_000], control_rate=0.5, sims=8000, seed=2)
    big = d.points[-1].curves
    for curve, limit in (
        ("updated-meta", "updated-meta"),
        ("updated-meta-classical", "updated-meta-classical"),
        ("two-sided-test", "stand-alone"),
    ):
        value, mcse = d.limits[limit]
        # at 20000 per arm the SE is ~0.014: the verdicts differ from the limit's only for
        # trials that close to a boundary (about 1% of them)
        assert abs(big[curve].assurance - value) < N_MCSE * math.hypot(big[curve].mcse, mcse) + 0.01
    # the updated meta-analysis cannot do better than the new trial's own predictive
    assert d.limits["updated-meta"][0] < d.limits["stand-alone"][0]
    assert d.limit_boundary is not None and d.limit_boundary > 0


def test_design_json_has_the_interface_keys(nn_fit):
    d = um.design_updated(nn_fit, [100, 200], control_rate=0.5, sims=8000)
    rows = d.to_json()
    assert isinstance(rows, list) and len(rows) == 2
    for key in ("n_per_arm", "control_rate", "criterion", "assurance", "mcse", "classical_power"):
        assert key in rows[0]
    assert rows[0]["criterion"] == "updated-meta"
    assert set(rows[0]["curves"]) == set(um.CURVES)
    assert rows[0]["importance"] is None  # exact: no importance sampling


def test_sizes_judged_on_threads_give_the_sequential_numbers(nn_fit, monkeypatch):
    """design_updated's sizes run on two threads; every number is the one-thread run's."""
    import json
    import threading

    names: set[str] = set()
    point = um._point

    def recorded(*args, **kwargs):
        names.add(threading.current_thread().name)
        return point(*args, **kwargs)

    monkeypatch.setattr(um, "_point", recorded)
    sizes = [50, 100, 200, 400]
    threaded = um.design_updated(nn_fit, sizes, control_rate=0.5, sims=8000, seed=3)
    assert len(names) == 2 and all(n.startswith("updated-meta") for n in names)
    monkeypatch.setattr(um, "POINT_THREADS", 1)
    names.clear()
    sequential = um.design_updated(nn_fit, sizes, control_rate=0.5, sims=8000, seed=3)
    assert names == {threading.current_thread().name}
    assert json.dumps(threaded.to_json()) == json.dumps(sequential.to_json())


def test_bad_requests_are_one_line(nn_fit):
    with pytest.raises(mix.UpdateError, match="unknown updated-meta criterion"):
        um.design_updated(nn_fit, [100], criterion="updated", control_rate=0.5)
    with pytest.raises(mix.UpdateError, match="--threshold"):
        um.design_updated(nn_fit, [100], threshold=1.5, control_rate=0.5)
    sub = fit(
        load("ivig_rm"),
        spec=ModelSpec(likelihood="normal", subgroup="population", subgroup_tau="separate"),
        engine="exact",
    )
    with pytest.raises(mix.UpdateError, match="without --subgroup") as e:
        mix.components_for(sub)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ binomial-normal


@pytest.fixture(scope="module")
def bn_fit():
    """ivig_rm_secondary, binomial-normal, default priors, 4 x 1000 draws."""
    res = fit(load("ivig_rm_secondary"), settings=SamplerSettings(draws=1000, tune=500, seed=3))
    assert res.ok
    return res


@pytest.mark.mcmc
def test_binomial_reweighting_is_rao_blackwellised(bn_fit):
    comp = mix.components_for(bn_fit)
    assert comp.source == "draws-rao-blackwell" and comp.size == 4000
    mu = bn_fit.draws("mu")
    from trialsynth.engines.diagnostics import probability_mcse

    assert abs(comp.prob_mu_gt() - np.mean(mu > 0)) < N_MCSE * probability_mcse(mu > 0)
    d = um.design_updated(bn_fit, [150], sims=4000)
    imp = d.points[0].importance
    assert imp is not None and imp["ess_min"] > 0 and imp["criterion_mcse"] >= 0
    assert d.points[0].curves["updated-meta"].mcse >= imp["criterion_mcse"]


@pytest.mark.mcmc
@pytest.mark.slow
def test_binomial_reweighting_agrees_with_refits():
    """Reweighted P(OR > 1) of the lowest-ESS simulated trials vs MCMC refits.

    The base fit has 4 x 5000 draws so that its own Monte Carlo error (shared by every
    reweighted estimate) is small; each refit has 4 x 2000 draws.
    """
    base = fit(load("ivig_rm_secondary"), settings=SamplerSettings(draws=5000, seed=8))
    d = um.design_updated(base, [100, 400], sims=20_000)
    checked = um.refit_check(base, d, trials=4, settings=SamplerSettings(seed=9))
    assert len(checked.checks) == 4
    for c in checked.checks:
        assert c["ok"] and abs(c["z"]) < N_MCSE, c


# ------------------------------------------------------------------ CLI and figures


@pytest.fixture(scope="module")
def nn_folder(nn_fit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nn")
    nn_fit.save(folder)
    return folder


def test_cli_design_updated_meta_json_and_plot(nn_folder, tmp_path):
    import json

    png = tmp_path / "curves.png"
    code, out, err = run_cli(
        ["design", str(nn_folder), "--criterion", "updated-meta", "--n-per-arm", "100",
         "--n-per-arm", "300", "--control-rate", "0.5", "--sims", "8000", "--json",
         "--plot", str(png)]
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)
    assert [r["n_per_arm"] for r in rows] == [100, 300]
    assert rows[0]["criterion"] == "updated-meta" and 0 < rows[0]["assurance"] < 1
    assert png.stat().st_size > 0
    code, out, err = run_cli(
        ["design", str(nn_folder), "--criterion", "updated-meta-classical", "--n-per-arm",
         "200", "--control-rate", "0.5", "--sims", "8000"]
    )  # fmt: skip
    assert code == 0, err
    assert "DerSimonian-Laird" in out and "limits as N grows" in out


def test_cli_design_updated_meta_bad_input_one_line(nn_folder):
    code, _, err = run_cli(
        ["design", str(nn_folder), "--criterion", "updated-meta", "--n-per-arm", "100"]
    )
    assert code == 2 and "--control-rate" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(
        ["design", str(nn_folder), "--criterion", "updated-meta", "--n-per-arm", "100",
         "--control-rate", "0.5", "--threshold", "1.2"]
    )  # fmt: skip
    assert code == 2 and "--threshold" in err and len(err.strip().splitlines()) == 1


def test_figures_structure(nn_fit):
    from trialsynth.report.figures_design import assurance_curves_plot, conclusion_map_plot

    d = um.design_updated(nn_fit, [100, 300], control_rate=0.5, sims=8000)
    fig = assurance_curves_plot(d)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert sum(lab.startswith("limit as N grows") for lab in labels) == 3
    assert "updated meta-analysis, P(OR > 1) > G" in labels
    comp = mix.components_for(nn_fit)
    y_old, se_old = mix.old_contrasts(nn_fit)
    cmap = conc.conclusion_map(comp, y_old, se_old, 0.5, 0.95, [50, 200, 800], n_or=41)
    assert cmap.p.shape == (3, 41) and cmap.classical.shape == (3, 41)
    fig = conclusion_map_plot(cmap)
    assert fig.axes[0].get_xlabel() == "observed odds ratio of the new trial"
