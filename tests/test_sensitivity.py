"""Tests of sensitivity runs (``trialsynth.analysis.sensitivity``, ``trialsynth sensitivity``).

Numbers: crins2014 under HalfNormal(0.5) through the grid path against the bayesmeta
high-accuracy values (``/work/shared/data/validation/README.md``); tau^2 and precision
priors of the grid against scipy by their implied prior quantiles. Plumbing: resume after
an interruption, failed scenarios, Dask LocalCluster vs local, CLI in-process. MCMC fits
share one compiled structure (crins2014, normal-normal, half-normal tau) so the module
compiles it once; references are in tests/REFERENCES.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import run_cli
from trialsynth.analysis import sensitivity as sens
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.models.analysis import AnalysisSpec, load_spec

#: crins2014 high-accuracy posterior (bayesmeta 3.4, delta=1e-5, epsilon=1e-8; Roever 2020
#: J Stat Softw 93(6) setting: mu ~ N(0, 4^2), tau ~ HN(0.5)), validation README.
CRINS_MU_MEDIAN = -1.5734952
CRINS_TAU_MEDIAN = 0.3445023
CRINS_MU_SD = 0.3293681
#: The exact engine agrees with bayesmeta's high-accuracy values to about 1e-5 (their
#: stated agreement with an independent quadrature is better than 1e-5).
EXACT_ATOL = 2e-5
#: Small MCMC fits for plumbing tests: convergence is still checked (4 x 1000 draws give
#: bulk ESS well above 400 for this model).
SMALL = SamplerSettings(draws=1000, tune=500, seed=7)


def crins_spec(sensitivity: dict, **kw) -> AnalysisSpec:
    from trialsynth.priors.prior import PriorSet

    return AnalysisSpec(
        name="crins",
        source="crins2014",
        model="normal-normal",
        priors=PriorSet.from_strings(mu="normal(0, 4)", tau="half-normal(0.5)"),
        sampler=kw.pop("sampler", SMALL),
        sensitivity=sensitivity,
        **kw,
    )


@pytest.fixture(scope="module")
def crins():
    return load("crins2014")


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"tua": ["half-normal(1)"]}, "unknown key 'tua'; valid: tau, mu, baseline, model"),
        ({"tau": ["half-normall(1)"]}, "[sensitivity] tau: unknown prior 'half-normall'"),
        ({"mu": "half-normal(1)"}, "is not a valid mu prior; valid: normal(mu, sigma)"),
        ({"model": ["binomial"]}, "model: 'binomial'; valid: binomial-normal, normal-normal"),
        ({"random_effects": "t"}, "random_effects: 't'; valid: normal, student-t"),
        ({"data": ["secondary"]}, "data: unknown choice 'secondary'; valid: all, leave-one-out"),
        ({"data": "confidence:hi"}, "unknown confidence level 'hi' in 'confidence:hi'; valid:"),
        ({"data": "filter:population"}, "must be filter:COLUMN=VALUE[,VALUE]"),
        ({"combine": "cross"}, "combine: 'cross'; valid: grid, list"),
        (
            {"combine": "list", "tau": ["half-normal(1)", "half-normal(2)"], "mu": ["a", "b", "c"]},
            "mu: unknown prior 'a'",
        ),
        (
            {"combine": "list", "tau": ["half-normal(1)", "half-normal(2)"], "model": ["a"] * 0},
            "model: empty list",
        ),
        ({"workers": 0}, "workers: expected a positive integer, got 0"),
        ({"engine": "fast"}, "engine: 'fast'; valid: mcmc, exact, auto"),
        ({"also": [{"workers": 2}]}, "also #1: unknown key 'workers'; valid: tau, mu"),
        ({"tau": [1.0]}, "tau: expected a string or a list of strings, got 1.0"),
    ],
)
def test_section_errors_name_key_and_valid_choices(table, message) -> None:
    with pytest.raises(sens.SensitivityError) as info:
        sens.parse_section(table)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_list_needs_matching_lengths() -> None:
    table = {
        "combine": "list",
        "tau": ["half-normal(1)", "half-normal(2)"],
        "mu": ["normal(0, 1)", "normal(0, 2)", "normal(0, 3)"],
    }
    with pytest.raises(sens.SensitivityError, match=r"same length .* tau: 2, mu: 3"):
        sens.parse_section(table)


def test_every_bad_key_is_reported_at_once() -> None:
    table = {"tua": "half-normal(1)", "model": "binomial", "workers": 0, "also": [{"x": 1}]}
    with pytest.raises(sens.SensitivityError) as info:
        sens.parse_section(table, where="s.toml [sensitivity]")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("s.toml [sensitivity]: 4 problems: ")
    parts = set(message.removeprefix("s.toml [sensitivity]: 4 problems: ").split(" | "))
    assert parts == {
        "unknown key 'tua'; valid: tau, mu, baseline, model, random_effects, data, combine, "
        "nu, engine, workers, also",
        "model: 'binomial'; valid: binomial-normal, normal-normal, common-effect",
        "workers: expected a positive integer, got 0",
        "also #1: unknown key 'x'; valid: tau, mu, baseline, model, random_effects, data, combine",
    }


def test_grid_list_leave_one_out_and_merging(crins) -> None:
    taus = ["half-normal(0.25)", "half-normal(0.5)", "half-normal(1)"]
    grid = sens.plan(crins_spec({"tau": taus, "mu": ["normal(0, 4)", "normal(0, 10)"]}), crins)
    assert len(grid) == 6  # 3 x 2, the main scenario among them
    assert sum(s.main for s in grid) == 1
    main = next(s for s in grid if s.main)
    assert main.settings["tau"] == "half-normal(0.5)" and main.settings["mu"] == "normal(0, 4)"
    assert [s.index for s in grid] == list(range(6))

    matched = sens.plan(
        crins_spec({"combine": "list", "tau": taus, "mu": ["normal(0, 1)"] * 3}), crins
    )
    # main (tau HN(0.5), mu N(0, 4)) is not in the list: it is added first
    assert [s.settings["tau"] for s in matched] == ["half-normal(0.5)", *taus]
    assert matched[0].main and matched[0].settings["mu"] == "normal(0, 4)"

    loo = sens.plan(crins_spec({"data": ["all", "leave-one-out"]}), crins)
    assert len(loo) == 1 + crins.k
    assert {s.data.k for s in loo[1:]} == {crins.k - 1}
    assert {s.settings["data"] for s in loo[1:]} == {f"drop:{s}" for s in crins.study}

    # the baseline prior does not enter the normal-normal model: 2 baselines, 1 scenario
    merged = sens.plan(crins_spec({"baseline": ["normal(0, 5)", "logistic(0, 1)"]}), crins)
    assert len(merged) == 1 and merged[0].settings["baseline"] is None


def test_keys_follow_data_model_priors_and_seed(crins) -> None:
    spec = crins_spec({"tau": ["half-normal(0.5)", "half-normal(1)"]})
    a = sens.plan(spec, crins)
    assert [s.key for s in a] == [s.key for s in sens.plan(spec, crins)]
    other_seed = sens.plan(spec, crins, sampler=replace(SMALL, seed=8))
    assert not {s.key for s in a} & {s.key for s in other_seed}
    assert len({s.key for s in a}) == 2


def test_engine_follows_the_section_then_the_spec(crins) -> None:
    table = {"model": ["normal-normal", "binomial-normal"]}
    auto = sens.plan(crins_spec(table), crins)
    assert [s.engine for s in auto] == ["exact", "mcmc"]
    spec_mcmc = sens.plan(crins_spec(table, engine="mcmc"), crins)
    assert [s.engine for s in spec_mcmc] == ["mcmc", "mcmc"]
    # a spec asking for "exact" (its normal-normal main fit) still fits binomial scenarios
    assert [s.engine for s in sens.plan(crins_spec(table, engine="exact"), crins)] == [
        "exact",
        "mcmc",
    ]
    section = sens.plan(crins_spec({**table, "engine": "auto"}, engine="mcmc"), crins)
    assert [s.engine for s in section] == ["exact", "mcmc"]
    with pytest.raises(sens.SensitivityError, match="exact engine needs the normal likelihood"):
        sens.plan(crins_spec({**table, "engine": "exact"}), crins)
    assert len({s.key for s in auto} | {s.key for s in spec_mcmc}) == 3  # engine in the key


def test_data_choices_on_ivig() -> None:
    spec = load_spec(Path(__file__).resolve().parents[1] / "models" / "ivig_rm.toml")
    data = sens.spec_data(spec)
    table = {
        "model": "normal-normal",
        "data": [
            "all",
            "confidence:high",
            "confidence:high,medium",
            "filter:population=secondary",
            "dataset:ivig_rm_secondary",
            "drop:Coulam 1995",
        ],
    }
    scenarios = sens.plan(replace(spec, sensitivity=table), data)
    by_data = {s.settings["data"]: s.data for s in scenarios}
    assert list(by_data["confidence:high"].study) == [
        "German RSA/IVIG Group 1994",
        "Coulam 1995",
        "Stephenson 2010",
        "Christiansen 2015",
    ]
    # every analysed IVIg row is high or medium: same data as all, merged with it
    assert "confidence:high,medium" not in by_data
    assert by_data["all"].k == 8
    assert list(by_data["filter:population=secondary"].study) == [
        "Stephenson 2010",
        "Christiansen 2015",
    ]
    assert by_data["dataset:ivig_rm_secondary"].name == "ivig_rm_secondary"
    assert "Coulam 1995" not in by_data["drop:Coulam 1995"].study
    with pytest.raises(sens.SensitivityError, match="unknown study 'Nobody'"):
        sens.plan(replace(spec, sensitivity={"data": "drop:Nobody"}), data)


# ---------------------------------------------------------------------- numbers


def test_crins_exact_numbers_through_the_grid(crins, tmp_path) -> None:
    spec = crins_spec({"tau": ["half-normal(0.5)", "half-normal(1)"]})
    result = sens.run(sens.plan(spec, crins), tmp_path)
    row = result.main
    assert row["engine"] == "exact" and row["status"] == "ok"
    assert row["settings"]["tau"] == "half-normal(0.5)"
    assert row["mu"]["median"] == pytest.approx(CRINS_MU_MEDIAN, abs=EXACT_ATOL)
    assert row["tau"]["median"] == pytest.approx(CRINS_TAU_MEDIAN, abs=EXACT_ATOL)
    assert row["or"]["median"] == pytest.approx(math.exp(CRINS_MU_MEDIAN), rel=EXACT_ATOL)
    # P(mu < 0) = 0.9999399 (same source)
    assert 1 - row["p_mu_gt_0"] == pytest.approx(0.9999399, abs=EXACT_ATOL)
    # the wider prior gives more heterogeneity: a real change, not a copy
    wide = next(r for r in result.rows if r["settings"]["tau"] == "half-normal(1)")
    assert wide["tau"]["median"] > row["tau"]["median"] + 0.02


@pytest.mark.mcmc
def test_crins_mcmc_through_the_grid_matches_within_mcse(crins, tmp_path) -> None:
    spec = crins_spec({"engine": "mcmc"}, sampler=SamplerSettings(draws=2000, tune=1000, seed=3))
    (row,) = sens.run(sens.plan(spec, crins, sens.parse_section(spec.sensitivity)), tmp_path).rows
    assert row["engine"] == "mcmc" and row["status"] == "ok", row.get("error")
    # 8000 draws, ESS >= 400: the MCSE of a median is below sd / sqrt(400) = 0.0165 for
    # mu; 4 such errors is the tolerance (the test fails if the grid path used other priors)
    assert abs(row["mu"]["median"] - CRINS_MU_MEDIAN) < 4 * CRINS_MU_SD / math.sqrt(400)
    assert abs(row["tau"]["median"] - CRINS_TAU_MEDIAN) < 4 * 0.2593672 / math.sqrt(400)
    assert row["diagnostics"]["r_hat_max"] <= 1.01
    assert row["psense"] and {p["variable"] for p in row["psense"]} == {"mu", "tau"}


@pytest.mark.mcmc  # builds the PyMC model and compiles pm.draw
@pytest.mark.parametrize(
    ("prior", "scipy_tau_cdf"),
    [
        ("tau2:uniform(0, 4)", lambda t: stats.uniform(0, 4).cdf(t**2)),
        (
            "tau2:log-normal(-3.52, 1.74)",
            lambda t: stats.lognorm(1.74, scale=np.exp(-3.52)).cdf(t**2),
        ),
        ("precision:gamma(2, 0.5)", lambda t: stats.gamma(2, scale=2).sf(1 / t**2)),
        # (gamma(0.001, 0.001) puts nearly all its tau quantiles beyond the float range)
        ("precision:gamma(0.5, 0.05)", lambda t: stats.gamma(0.5, scale=20).sf(1 / t**2)),
    ],
)
def test_tau2_and_precision_priors_of_the_grid_match_scipy(crins, prior, scipy_tau_cdf) -> None:
    """The PyMC model a scenario fits has the stated prior on tau (prior draws vs scipy)."""
    import pymc as pm

    from trialsynth.models.pymc import build_model
    from trialsynth.models.spec import resolve_priors

    (scenario,) = [
        s for s in sens.plan(crins_spec({"tau": prior, "engine": "mcmc"}), crins) if not s.main
    ]
    priors = resolve_priors(scenario.spec, scenario.data, scenario.priors)
    model = build_model(scenario.spec, scenario.data, priors)
    n = 20000
    tau = np.asarray(pm.draw(model["tau"], draws=n, random_seed=5))
    # The empirical cdf at the scipy quantiles q: binomial error sqrt(q(1-q)/n) <= 0.0035;
    # 4.5 of those is a false-alarm rate below 1e-4 per point.
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        t_q = scenario.priors.tau.tau_dist().ppf(q)
        assert scipy_tau_cdf(np.asarray(t_q)) == pytest.approx(q, abs=1e-9)
        assert abs(np.mean(tau <= t_q) - q) < 4.5 * math.sqrt(q * (1 - q) / n)


def test_psense_flags_an_informative_mu_prior(crins, tmp_path) -> None:
    # mu ~ N(0, 0.2) against crins2014's mu near -1.6 (sd 0.33): the prior dominates
    from trialsynth.priors.prior import parse_prior

    spec = crins_spec({"tau": "half-normal(0.5)"})
    spec = replace(spec, priors=replace(spec.priors, mu=parse_prior("normal(0, 0.2)", "mu")))
    (row,) = sens.run(sens.plan(spec, crins), tmp_path).rows
    mu = next(p for p in row["psense"] if p["variable"] == "mu")
    # psense_summary: prior sensitivity > 0.05 is "strong prior / weak likelihood", with
    # likelihood sensitivity > 0.05 too "prior-data conflict"; either flags this prior
    assert mu["prior"] > 0.05 and mu["diagnosis"].startswith("potential"), row["psense"]
    (vague,) = sens.run(sens.plan(crins_spec({}), crins), tmp_path / "v").rows
    mu_vague = next(p for p in vague["psense"] if p["variable"] == "mu")
    assert mu_vague["diagnosis"] == "ok" and mu_vague["prior"] < 0.05


# ---------------------------------------------------------------------- resume, failures


@pytest.fixture(scope="module")
def mcmc_plan(crins):
    """Three MCMC scenarios of one structure (one compile), main first."""
    taus = ["half-normal(0.5)", "half-normal(0.25)", "half-normal(1)"]
    return sens.plan(crins_spec({"tau": taus, "engine": "mcmc"}), crins)


@pytest.fixture(scope="module")
def uninterrupted(mcmc_plan, tmp_path_factory):
    return sens.run(mcmc_plan, tmp_path_factory.mktemp("full"))


class Interrupt(Exception):
    pass


@pytest.mark.mcmc
def test_resume_after_interruption_runs_only_the_rest(mcmc_plan, uninterrupted, tmp_path) -> None:
    assert [r["status"] for r in uninterrupted.rows] == ["ok"] * 3
    seen = []

    def stop_after_one(scenario, record) -> None:
        seen.append(scenario.key)
        raise Interrupt

    with pytest.raises(Interrupt):
        sens.run(mcmc_plan, tmp_path, on_record=stop_after_one)
    stored = sorted(p.stem for p in (tmp_path / "scenarios").glob("*.json"))
    assert stored == seen  # written at once, before the interruption
    assert not (tmp_path / "sensitivity.json").exists()

    again = sens.run(mcmc_plan, tmp_path)
    assert again.reused == seen
    assert sorted(again.ran) == sorted(s.key for s in mcmc_plan if s.key not in seen)
    assert sens.comparable(again.rows) == sens.comparable(uninterrupted.rows)
    assert json.loads((tmp_path / "sensitivity.json").read_text()) == again.rows

    third = sens.run(mcmc_plan, tmp_path)
    assert third.ran == [] and len(third.reused) == 3


def test_failed_scenario_is_reported_and_retried(crins, tmp_path, monkeypatch) -> None:
    import trialsynth.results.fitting

    real = trialsynth.results.fitting.fit

    def flaky(data, **kw):
        if str(kw["priors"].tau) == "half-normal(1)":
            raise RuntimeError("solver exploded")
        return real(data, **kw)

    plan = sens.plan(crins_spec({"tau": ["half-normal(0.5)", "half-normal(1)"]}), crins)
    monkeypatch.setattr(trialsynth.results.fitting, "fit", flaky)
    first = sens.run(plan, tmp_path)
    failed = [r for r in first.rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["settings"]["tau"] == "half-normal(1)"
    assert failed[0]["failure"] == "error"
    assert failed[0]["error"].startswith("RuntimeError: solver exploded")
    assert "or" not in failed[0]
    assert [r["status"] for r in first.rows if r is not failed[0]] == ["ok"]
    frame = first.frame()
    assert frame.loc[frame["status"] == "failed", "error"].str.contains("solver exploded").all()

    monkeypatch.setattr(trialsynth.results.fitting, "fit", real)
    second = sens.run(plan, tmp_path)
    assert second.ran == [failed[0]["key"]]  # only the failed one is attempted again
    assert all(r["status"] == "ok" for r in second.rows)


def test_scenarios_fitted_elsewhere_are_taken_from_the_store(crins, tmp_path, monkeypatch) -> None:
    """`run(elsewhere=...)` leaves those scenarios to the other process, waits, reads them.

    A thread stands in for `run`'s second process: it stores two of the three scenarios
    (the third it "dies" before). The table equals a plain run's; this process fits only
    the main scenario and the one the other left undone.
    """
    import threading

    taus = ["half-normal(0.5)", "half-normal(1)", "half-normal(2)"]
    plan = sens.plan(crins_spec({"tau": taus}), crins)
    plain = sens.run(plan, tmp_path / "plain")
    theirs = [s for s in plan if not s.main]
    store = sens.ScenarioStore(tmp_path / "beside" / "scenarios")
    real = sens.fit_scenario
    other = threading.Thread(target=lambda: store.put(real(theirs[0].task())))
    other.start()
    fitted_here = []
    monkeypatch.setattr(sens, "fit_scenario", lambda t: fitted_here.append(t["key"]) or real(t))
    elsewhere = sens.Elsewhere(frozenset(s.key for s in theirs), other.join)
    result = sens.run(plan, tmp_path / "beside", elsewhere=elsewhere)
    assert sens.comparable(result.rows) == sens.comparable(plain.rows)
    main = next(s for s in plan if s.main)
    assert fitted_here == [main.key, theirs[1].key]
    assert result.beside == [theirs[0].key]
    assert sorted(result.ran) == sorted(s.key for s in plan) and result.reused == []


def test_a_given_fit_of_a_scenarios_analysis_makes_its_record(crins, tmp_path, monkeypatch) -> None:
    """`run(fitted={key: fit})` makes that scenario's record from the fit, fitting it not again."""
    import trialsynth.results.fitting as fitting

    plan = sens.plan(crins_spec({"tau": ["half-normal(0.5)", "half-normal(1)"]}), crins)
    plain = sens.run(plan, tmp_path / "plain")
    main = next(s for s in plan if s.main)
    t = main.task()
    made = fitting.fit(
        t["data"], spec=t["spec"], priors=t["priors"], settings=t["sampler"], engine=t["engine"]
    )
    calls = []
    real = fitting.fit
    monkeypatch.setattr(fitting, "fit", lambda *a, **k: calls.append(k["priors"]) or real(*a, **k))
    result = sens.run(plan, tmp_path / "given", fitted={main.key: made})
    assert sens.comparable(result.rows) == sens.comparable(plain.rows)
    assert result.given == [main.key] and len(calls) == 1
    assert str(calls[0].tau) == "half-normal(1)"


def test_the_shipped_specs_main_fit_is_its_main_scenario(tmp_path) -> None:
    """`run` gives the main scenario the main fit: their keys agree (same analysis)."""
    from trialsynth.workflow.run import plan_run
    from trialsynth.workflow.sensitivity import plan_sensitivity

    spec = Path(__file__).parents[1] / "models" / "ivig_rm.toml"
    plan = plan_run(spec, out_dir=tmp_path / "out")
    scenarios = plan_sensitivity(plan.spec, plan.data, tmp_path, settings=plan.settings)
    main = next(s for s in scenarios.scenarios if s.main)
    key = sens.scenario_key(plan.data, plan.model, plan.spec.priors, plan.settings, plan.engine)
    assert key == main.key


@pytest.mark.mcmc
def test_convergence_failure_is_a_failed_row(crins, tmp_path) -> None:
    tiny = SamplerSettings(draws=30, tune=30, chains=2, seed=7)
    (row,) = sens.run(sens.plan(crins_spec({"engine": "mcmc"}, sampler=tiny), crins), tmp_path).rows
    # 60 draws cannot reach ESS 400: the row keeps its numbers but is marked failed
    assert row["status"] == "failed" and row["failure"] == "convergence"
    assert "ESS" in row["error"]
    assert row["or"]["median"] > 0


# ---------------------------------------------------------------------- parallel paths


@pytest.mark.mcmc
def test_dask_local_cluster_gives_the_local_table(mcmc_plan, uninterrupted, tmp_path) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        result = sens.run(mcmc_plan, tmp_path, scheduler=cluster.scheduler_address)
    assert sorted(result.ran) == sorted(s.key for s in mcmc_plan)
    assert sens.comparable(result.rows) == sens.comparable(uninterrupted.rows)


@pytest.mark.parametrize("model", ["binomial-normal", "normal-normal"])
@pytest.mark.mcmc
def test_log_prior_and_likelihood_for_psense_match_scipy(crins, model) -> None:
    """The numpy log likelihood and log prior given to psense, against scipy per draw."""
    from trialsynth.results.fitting import fit

    (s,) = sens.plan(replace(crins_spec({"engine": "mcmc"}), model=model), crins)
    res = fit(s.data, spec=s.spec, priors=s.priors, settings=SMALL, reusable=True)
    log_prior, loglik = sens._log_prior_and_likelihood(res)
    theta = res.draws("theta")[0, :50]
    ll = loglik["y"][1][0, :50]
    if model == "binomial-normal":
        alpha = res.draws("alpha")[0, :50]
        p_c, p_t = 1 / (1 + np.exp(-alpha)), 1 / (1 + np.exp(-(alpha + theta)))
        ref = stats.binom.logpmf(crins.events_c, crins.n_c, p_c) + stats.binom.logpmf(
            crins.events_t, crins.n_t, p_t
        )
        base = stats.norm(0, 5).logpdf(alpha).sum(axis=-1)
        np.testing.assert_allclose(log_prior["baseline"][1][0, :50], base, rtol=1e-10)
    else:
        lor = crins.contrasts(correction=0.5)
        ref = stats.norm.logpdf(lor.y, theta, lor.se)
    # float rounding only (two formulas of the same log density)
    np.testing.assert_allclose(ll, ref, rtol=1e-9, atol=1e-9)
    mu, tau = res.draws("mu")[0, :50], res.draws("tau")[0, :50]
    np.testing.assert_allclose(log_prior["mu"][1][0, :50], stats.norm(0, 4).logpdf(mu))
    np.testing.assert_allclose(log_prior["tau"][1][0, :50], stats.halfnorm(0, 0.5).logpdf(tau))


@pytest.mark.slow
def test_dask_worker_processes_give_the_local_table(mcmc_plan, uninterrupted, tmp_path) -> None:
    """Two Dask worker processes (scenarios pickled, compiled in each worker)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = sens.run(mcmc_plan, tmp_path, scheduler=cluster.scheduler_address)
    assert sens.comparable(result.rows) == sens.comparable(uninterrupted.rows)


@pytest.mark.slow
def test_two_worker_processes_give_the_same_table(mcmc_plan, uninterrupted, tmp_path) -> None:
    result = sens.run(mcmc_plan, tmp_path, workers=2)
    assert sens.comparable(result.rows) == sens.comparable(uninterrupted.rows)


def test_groups_keep_one_structure_per_worker(mcmc_plan, crins) -> None:
    exact = sens.plan(crins_spec({"tau": ["half-cauchy(0.5)", "uniform(0, 4)"]}), crins)
    bins = sens._groups([*mcmc_plan, *exact], 2)
    assert len(bins) == 2
    engines = [{s.engine for s in b} for b in bins]
    assert {"exact"} in engines and {"mcmc"} in engines
    # one structure, two workers: split in two
    split = sens._groups(list(mcmc_plan), 2)
    assert sorted(len(b) for b in split) == [1, 2]


def test_bad_scheduler_address_is_one_line(mcmc_plan, tmp_path) -> None:
    with pytest.raises(sens.SensitivityError, match="expected an address like tcp://HOST:PORT"):
        sens.run(mcmc_plan, tmp_path, scheduler="localhost:1")


# ---------------------------------------------------------------------- CLI and figure


SPEC_TOML = """
[analysis]
name = "crins"
[data]
source = "crins2014"
[model]
model = "normal-normal"
[priors]
mu = "normal(0, 4)"
tau = "half-normal(0.5)"
[sampler]
draws = 1000
tune = 500
seed = 7
[output]
dir = "{out}"
[sensitivity]
tau = ["half-normal(0.5)", "half-normal(1)", "uniform-shrinkage"]
{extra}
"""


def write_spec(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "crins.toml"
    path.write_text(SPEC_TOML.format(out=tmp_path / "out", extra=extra), encoding="utf-8")
    return path


def test_cli_sensitivity_json_and_files(tmp_path) -> None:
    code, out, err = run_cli(["sensitivity", str(write_spec(tmp_path)), "--json"])
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 3
    keys = {"settings", "or", "or_new", "tau", "p_mu_gt_0", "p_theta_new_gt_0", "diagnostics"}
    for r in rows:
        assert keys <= set(r) and r["status"] == "ok" and r["wall_s"] >= 0
    folder = tmp_path / "out" / "sensitivity"
    for name in ("sensitivity.csv", "sensitivity.json", "sensitivity.png", "sensitivity.svg"):
        assert (folder / name).is_file(), name
    assert len(list((folder / "scenarios").glob("*.json"))) == 3
    csv = (folder / "sensitivity.csv").read_text().splitlines()
    assert len(csv) == 4 and "p_or_gt_1" in csv[0]

    code, out, _ = run_cli(["sensitivity", str(write_spec(tmp_path))])
    assert code == 0
    assert "0 scenario(s) fitted, 3 reused" in out
    assert "uniform-shrinkage" in out and "power-scaling" in out


def test_cli_run_also_runs_the_sensitivity(tmp_path) -> None:
    code, out, err = run_cli(["run", str(write_spec(tmp_path)), "--json"])
    assert code == 0, err
    assert json.loads(out)["engine"] == "exact"  # stdout stays the one summary object
    rows = json.loads((tmp_path / "out" / "sensitivity" / "sensitivity.json").read_text())
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("extra", "args", "message"),
    [
        ("workerz = 2", [], "[sensitivity]: unknown key 'workerz'; valid: tau, mu, baseline"),
        ('data = "drop:Nobody"', [], "data 'drop:Nobody': "),
        ("", ["--workers", "0"], "--workers must be >= 1, got 0"),
        ("", ["--scheduler", "nowhere"], "expected an address like tcp://HOST:PORT"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, extra, args, message) -> None:
    code, _, err = run_cli(["sensitivity", str(write_spec(tmp_path, extra)), *args])
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("trialsynth: error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


@pytest.mark.mcmc
def test_cli_strict_exits_3_when_a_scenario_failed(tmp_path) -> None:
    path = write_spec(tmp_path, 'engine = "mcmc"')
    text = path.read_text().replace("draws = 1000", "draws = 30").replace("tune = 500", "tune = 30")
    # one compiled structure (half-normal tau), shared with the other MCMC tests
    path.write_text(text.replace('"uniform-shrinkage"', '"half-normal(2)"'))
    code, out, err = run_cli(["sensitivity", str(path), "--strict"])
    # 4 x 30 draws cannot reach ESS 400: every scenario fails its convergence checks
    assert code == 3
    assert out.count("FAILED") >= 3
    assert err.count("warning: scenario") == 3 and "ESS" in err
    code, _, _ = run_cli(["sensitivity", str(path)])
    assert code == 0  # reported, not an error, without --strict


def test_cli_spec_without_section(tmp_path) -> None:
    text = write_spec(tmp_path).read_text().split("[sensitivity]")[0]
    path = tmp_path / "plain.toml"
    path.write_text(text)
    code, _, err = run_cli(["sensitivity", str(path)])
    assert code == 2 and "no [sensitivity] section; valid keys there: tau" in err


def test_sensitivity_plot_structure(uninterrupted) -> None:
    from trialsynth.report.plots import sensitivity_plot

    rows = [*uninterrupted.rows, {"scenario": 3, "label": "broken", "status": "failed"}]
    fig = sensitivity_plot(rows, title="t")
    ax, axp = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [r["label"] for r in rows]
    assert any("FAILED" in t.get_text() for t in ax.texts)
    assert ax.get_xscale() == "log"
    assert len(axp.lines) == 2 * 3 + 1  # two probability marks per fitted row, the 0.5 line
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---------------------------------------------------------------------- last: these clear
# the compile cache (so they run after the tests that reuse compiled models)


def test_numbers_do_not_depend_on_which_scenario_compiled(mcmc_plan, uninterrupted) -> None:
    """A worker compiling on another scenario of the structure gives identical numbers."""
    from trialsynth.engines.mcmc import clear_cache

    clear_cache()
    last_first = [sens.fit_scenario(s.task()) for s in reversed(mcmc_plan)][::-1]
    for record, row in zip(last_first, uninterrupted.rows, strict=True):
        assert record["mu"] == row["mu"] and record["tau"] == row["tau"]
        assert record["or_new"] == row["or_new"]


@pytest.mark.mcmc
def test_binomial_scenarios_reuse_the_compiled_model_exactly(crins) -> None:
    """Binomial-normal (integer pm.Data, baseline prior, psense with alpha) in any order."""
    from trialsynth.engines.mcmc import clear_cache

    spec = replace(
        crins_spec({"tau": ["half-normal(0.5)", "half-normal(1)"], "engine": "mcmc"}),
        model="binomial-normal",
    )
    plan = sens.plan(spec, crins)
    assert [s.spec.likelihood for s in plan] == ["binomial", "binomial"]
    forward = [sens.fit_scenario(s.task()) for s in plan]
    clear_cache()
    backward = [sens.fit_scenario(s.task()) for s in reversed(plan)][::-1]
    for a, b in zip(forward, backward, strict=True):
        assert a["failure"] != "error" and b["failure"] != "error", (a["error"], b["error"])
        assert a["mu"] == b["mu"] and a["tau"] == b["tau"] and a["or_new"] == b["or_new"]
    assert forward[0]["psense"] and {p["variable"] for p in forward[0]["psense"]} == {"mu", "tau"}
    assert forward[0]["priors"]["baseline"] == "normal(0, 5)"
