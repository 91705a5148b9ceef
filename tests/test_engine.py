"""The exact engine through fit(), results, queries and the CLI; MCMC vs exact agreement.

Golden numbers: crins2014 with mu ~ N(0, 4^2), tau ~ HN(0.5), high-accuracy bayesmeta values
(`/work/shared/data/validation/README.md`, bayesmeta 3.4 with delta=1e-5, epsilon=1e-8,
agreeing with an independent quadrature to better than 1e-5): see tests/REFERENCES.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from trialsynth.analysis.agreement import AGREEMENT_Z, engine_agreement
from trialsynth.cli.app import main
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import ArmData, load
from trialsynth.engines.notices import likelihood_notice
from trialsynth.engines.select import choose_engine
from trialsynth.models.spec import ModelError, ModelSpec
from trialsynth.priors.prior import PriorSet
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit

NN = ModelSpec(likelihood="normal")
CRINS_PRIORS = PriorSet.from_strings(mu="normal(0, 4)", tau="half-normal(0.5)")
# Stated accuracy of the high-accuracy table (it agrees with an independent quadrature to
# better than 1e-5); our engine's own error at its default delta is ~1e-9.
TOL = 1e-5


@pytest.fixture(scope="module")
def crins_exact() -> FitResult:
    return fit(
        load("crins2014"),
        spec=NN,
        priors=CRINS_PRIORS,
        settings=SamplerSettings(seed=5),
        engine="exact",
    )


def test_exact_fit_summary_matches_high_accuracy_values(crins_exact) -> None:
    s = crins_exact.summary()
    assert s["engine"] == "exact"
    assert s["mu"]["median"] == pytest.approx(-1.5734952, abs=TOL)
    assert s["mu"]["mean"] == pytest.approx(-1.5764253, abs=TOL)
    assert s["mu"]["sd"] == pytest.approx(0.3293681, abs=TOL)
    assert (s["mu"]["hdi_lower"], s["mu"]["hdi_upper"]) == pytest.approx(
        (-2.2307346, -0.9266288), abs=TOL
    )
    assert s["tau"]["median"] == pytest.approx(0.3445023, abs=TOL)
    assert s["tau"]["mean"] == pytest.approx(0.3810562, abs=TOL)
    assert s["theta_new"]["median"] == pytest.approx(-1.5702170, abs=TOL)
    assert s["theta_new"]["sd"] == pytest.approx(0.5665321, abs=TOL)
    assert s["p_mu_gt_0"] == pytest.approx(1 - 0.9999399, abs=TOL)
    assert s["p_theta_new_gt_0"] == pytest.approx(1 - 0.991329, abs=TOL)
    assert s["or"]["median"] == pytest.approx(np.exp(-1.5734952), rel=TOL)
    assert s["mcse"] == {}
    assert s["diagnostics"]["r_hat_max"] is None
    assert s["status"] == "ok"
    assert len(s["theta"]) == 6


def test_exact_fit_draws_follow_the_exact_marginals(crins_exact) -> None:
    mu = crins_exact.draws("mu")
    assert mu.shape == (4, 2000)
    # iid draws: the sample median is within 4 standard errors of the exact median
    # (se of a median ~ 1.2533 sd / sqrt(n)).
    se = 1.2533 * 0.3293681 / np.sqrt(mu.size)
    assert abs(np.median(mu) - (-1.5734952)) < 4 * se
    assert crins_exact.draws("theta").shape == (4, 2000, 6)


def test_same_seed_same_exact_draws() -> None:
    data = load("crins2014")
    a = fit(data, spec=NN, settings=SamplerSettings(draws=200, seed=3), engine="exact")
    b = fit(data, spec=NN, settings=SamplerSettings(draws=200, seed=3), engine="exact")
    np.testing.assert_array_equal(a.draws("theta_new"), b.draws("theta_new"))


def test_queries_on_exact_fit_are_exact(crins_exact) -> None:
    post = crins_exact.posterior
    a = crins_exact.ask("P(OR < 1)")
    assert a.mcse is None
    assert a.probability == pytest.approx(0.9999399, abs=TOL)
    r = crins_exact.ask("P(0.1 < OR < 0.3)")
    assert r.mcse is None
    assert r.probability == pytest.approx(
        float(post.mu.cdf(np.log(0.3)) - post.mu.cdf(np.log(0.1))), abs=1e-12
    )
    t = crins_exact.ask("P(OR[Gras (2008)] > 0.5)")
    assert t.probability == pytest.approx(float(post.theta("Gras (2008)").sf(np.log(0.5))))
    # a comparison of two targets has no exact marginal: from the draws, with an MCSE
    c = crins_exact.ask("P(OR[Gras (2008)] > OR[Heffron (2003)])")
    theta = crins_exact.draws("theta")
    assert c.probability == pytest.approx(float(np.mean(theta[..., 5] > theta[..., 0])))
    assert c.mcse is not None and c.mcse > 0


def test_exact_fit_roundtrips_through_save_and_load(crins_exact, tmp_path) -> None:
    crins_exact.save(tmp_path)
    back = FitResult.load(tmp_path)
    assert back.engine == "exact"
    assert back.summary()["mu"] == crins_exact.summary()["mu"]
    assert back.ask("P(OR_new < 1)").probability == pytest.approx(0.991329, abs=TOL)


def test_auto_engine_choice_and_errors() -> None:
    p = PriorSet()
    assert choose_engine("auto", NN, p) == "exact"
    assert choose_engine("auto", ModelSpec(), p) == "mcmc"
    assert choose_engine("auto", NN, PriorSet.from_strings(mu="flat()")) == "exact"
    assert choose_engine("auto", NN, PriorSet.from_strings(mu="logistic(0, 1)")) == "mcmc"
    assert choose_engine("auto", ModelSpec(likelihood="normal", subgroup="population"), p) == (
        "mcmc"
    )
    with pytest.raises(ModelError, match=r"needs the normal likelihood .*use --engine mcmc"):
        choose_engine("exact", ModelSpec(), p)
    with pytest.raises(ModelError, match="not student-t random effects"):
        choose_engine("exact", ModelSpec(likelihood="normal", random_effects="student-t"), p)
    with pytest.raises(ValueError, match="unknown engine 'fast'; valid: mcmc, exact, auto"):
        choose_engine("fast", NN, p)


def test_flat_mu_prior_exact_fit_equals_inverse_variance_as_tau_prior_shrinks() -> None:
    # tau ~ HN(1e-4): the posterior of mu is the inverse-variance normal under a flat prior
    data = load("crins2014")
    res = fit(
        data,
        spec=NN,
        priors=PriorSet.from_strings(mu="flat()", tau="half-normal(0.0001)"),
        engine="exact",
    )
    lor = data.contrasts()
    w = 1 / lor.se**2
    mean, sd = float(np.sum(w * lor.y) / w.sum()), float(np.sqrt(1 / w.sum()))
    s = res.summary()
    # tau's prior scale 1e-4 moves mu by O(1e-4 * sd-weights): 1e-3 is ample
    assert s["mu"]["mean"] == pytest.approx(mean, abs=1e-3)
    assert s["mu"]["sd"] == pytest.approx(sd, abs=1e-3)


@pytest.mark.mcmc
def test_mcmc_agrees_with_exact_within_monte_carlo_error(crins_mcmc, crins_exact) -> None:
    # Same model, data and priors (crins_mcmc: conftest, 4 x 5000 draws). Tolerance:
    # AGREEMENT_Z = 4 MCSE per quantity (ArviZ MCSE of means, sds, quantiles, probabilities).
    rows = engine_agreement(crins_exact, crins_mcmc)
    assert len(rows) == 17
    bad = [(r["quantity"], r["z"]) for r in rows if not r["ok"]]
    assert not bad, bad
    assert all(abs(r["z"]) <= AGREEMENT_Z for r in rows)


def test_agreement_flags_a_real_difference(crins_exact, crins_mcmc) -> None:
    # the same check against the exact posterior of other data must fail loudly
    other = fit(load("crins2014").drop("Gras (2008)"), spec=NN, priors=CRINS_PRIORS, engine="exact")
    with pytest.raises(ValueError, match="different data"):
        engine_agreement(other, crins_mcmc)


def test_likelihood_notice_thresholds() -> None:
    data = load("crins2014")
    exact = fit(data, spec=NN, priors=CRINS_PRIORS, engine="exact").summary()
    same = {"mu": {"median": exact["mu"]["median"], "sd": 0.33}, "p_mu_gt_0": 0.0}
    assert likelihood_notice(same, data, ModelSpec(), CRINS_PRIORS) is None
    moved = {"mu": {"median": exact["mu"]["median"] + 0.2, "sd": 0.33}, "p_mu_gt_0": 0.0}
    notice = likelihood_notice(moved, data, ModelSpec(), CRINS_PRIORS)
    assert notice is not None
    assert notice.startswith("binomial-normal and normal-normal answers differ materially")
    assert "1 trial(s) with a zero cell" in notice
    # not applicable to a normal-likelihood fit
    assert likelihood_notice(moved, data, NN, CRINS_PRIORS) is None


@pytest.mark.mcmc
def test_sparse_binomial_fit_says_the_likelihoods_differ() -> None:
    # rare events with zero cells: the 0.5 correction pulls the normal-normal log-ORs to 0
    data = ArmData(
        "sparse",
        ("a", "b", "c", "d", "e"),
        events_t=np.array([0, 0, 1, 0, 0]),
        n_t=np.array([100, 120, 90, 110, 100]),
        events_c=np.array([3, 4, 5, 2, 4]),
        n_c=np.array([100, 120, 90, 110, 100]),
    )
    res = fit(data, settings=SamplerSettings(draws=1000, tune=1000, seed=8))
    notes = [n for n in res.provenance["notices"] if "differ materially" in n]
    assert len(notes) == 1
    assert "trial(s) with a zero cell" in notes[0]


def test_cli_fit_exact_json(capsys) -> None:
    code = main(["fit", "crins2014", "--model", "normal-normal", "--mu-prior", "normal(0, 4)",
                 "--engine", "exact", "--json"])  # fmt: skip
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert s["engine"] == "exact"
    assert s["diagnostics"] == {
        "r_hat_max": None,
        "ess_bulk_min": None,
        "ess_tail_min": None,
        "divergences": None,
    }
    assert s["mu"]["median"] == pytest.approx(-1.5734952, abs=TOL)
    assert any("0.5 added to every cell of 1 trial(s)" in n for n in s["notices"])


def test_cli_default_engine_for_normal_normal_is_exact(capsys) -> None:
    assert main(["fit", "crins2014", "--model", "normal-normal", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "exact"


@pytest.mark.mcmc
def test_cli_engine_both_shows_agreement(capsys) -> None:
    code = main(["fit", "crins2014", "--model", "normal-normal", "--engine", "both",
                 "--draws", "1000", "--seed", "4"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "exact vs MCMC" in text
    assert "P(theta_new > 0)" in text


def test_cli_engine_errors(capsys) -> None:
    assert main(["fit", "crins2014", "--engine", "exact"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "trialsynth: error: the exact engine needs the normal likelihood "
        "(--model normal-normal); use --engine mcmc"
    )
    assert main(["fit", "crins2014", "--engine", "quick"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "trialsynth: error: Invalid value for '--engine': 'quick' is not one of 'auto', 'mcmc', "
        "'exact', 'both'. (see 'trialsynth fit --help')"
    )


def test_spec_engine_key(tmp_path) -> None:
    from trialsynth.models.analysis import SpecError, load_spec

    p = tmp_path / "a.toml"
    p.write_text('[data]\nsource = "crins2014"\n[model]\nmodel = "normal-normal"\nengine = "x"\n')
    with pytest.raises(SpecError, match=r"\[model\] engine: unknown engine 'x'; valid: mcmc"):
        load_spec(p)
    p.write_text('[data]\nsource = "crins2014"\n[model]\nengine = "mcmc"\n')
    assert load_spec(p).engine == "mcmc"


# ---------------------------------------------------------------- subgroups, exactly

SUB = ModelSpec(likelihood="normal", subgroup="population", subgroup_tau="separate")


@pytest.fixture(scope="module")
def ivig_sub_exact() -> FitResult:
    return fit(load("ivig_rm"), spec=SUB, settings=SamplerSettings(seed=6), engine="exact")


def test_exact_subgroup_fit_is_one_exact_model_per_subgroup(ivig_sub_exact) -> None:
    data = load("ivig_rm")
    s = ivig_sub_exact.summary()
    assert s["engine"] == "exact"
    assert set(s["subgroups"]) == {"mixed", "primary", "secondary"}
    secondary = data.filter("population", ["secondary"])
    alone = fit(secondary, spec=NN, engine="exact").summary()  # same priors, that subset only
    for key in ("mu", "tau"):
        assert s["subgroups"]["secondary"][key] == alone[key]
    assert s["subgroups"]["secondary"]["p_mu_gt_0"] == alone["p_mu_gt_0"]
    assert s["subgroups"]["secondary"]["mcse"] == {}
    a = ivig_sub_exact.ask("P(OR_new[secondary] > 1)")
    assert a.mcse is None and a.probability == pytest.approx(alone["p_theta_new_gt_0"])
    # contrasts between subgroups come from the iid draws, with an MCSE
    c = ivig_sub_exact.ask("P(OR[secondary] > OR[primary])")
    mu_g = ivig_sub_exact.draws("mu_subgroup")
    levels = ivig_sub_exact.subgroups
    direct = np.mean(mu_g[..., levels.index("secondary")] > mu_g[..., levels.index("primary")])
    assert c.probability == pytest.approx(float(direct)) and c.mcse > 0


@pytest.mark.mcmc
def test_exact_subgroup_fit_agrees_with_mcmc(ivig_sub_exact) -> None:
    mcmc = fit(load("ivig_rm"), spec=SUB, settings=SamplerSettings(seed=6), engine="mcmc")
    assert mcmc.ok
    ex, mc = ivig_sub_exact.summary()["subgroups"], mcmc.summary()["subgroups"]
    for level in ex:
        # 4 MCSE (ArviZ MCSE of the MCMC probability)
        p_ex, p_mc = ex[level]["p_mu_gt_0"], mc[level]["p_mu_gt_0"]
        assert abs(p_ex - p_mc) <= 4 * mc[level]["mcse"]["p_mu_gt_0"], (level, p_ex, p_mc)


def test_exact_subgroups_need_separate_tau() -> None:
    shared = ModelSpec(likelihood="normal", subgroup="population")
    with pytest.raises(ModelError, match=r"only with one tau per subgroup"):
        choose_engine("exact", shared, PriorSet())
    assert choose_engine("auto", shared, PriorSet()) == "mcmc"
    assert choose_engine("auto", SUB, PriorSet()) == "exact"


def test_cli_exact_subgroup_fit(capsys) -> None:
    code = main(["fit", "ivig_rm", "--model", "normal-normal", "--subgroup", "population",
                 "--subgroup-tau", "separate", "--json"])  # fmt: skip
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert s["engine"] == "exact"
    assert s["subgroups"]["secondary"]["k"] == 2


def test_import_on_fresh_stack_imports_or_leaves_the_error_to_the_callers_import(capsys):
    import importlib
    import sys

    from trialsynth.engines.mcmc import import_on_fresh_stack

    sys.modules.pop("colorsys", None)
    import_on_fresh_stack("colorsys")  # a small stdlib module: imported by the thread
    assert "colorsys" in sys.modules
    import_on_fresh_stack("trialsynth_no_such_module")  # fails quietly on the thread ...
    assert "trialsynth_no_such_module" not in sys.modules
    assert capsys.readouterr().err == ""
    with pytest.raises(ModuleNotFoundError, match="trialsynth_no_such_module"):
        importlib.import_module("trialsynth_no_such_module")  # ... and loudly here
