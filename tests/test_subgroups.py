"""Subgroups, meta-regression and Student-t random effects, end to end.

Golden numbers (tests/REFERENCES.md, "Subgroups, meta-regression, robust random effects"):
metafor 3.8 ``rma(yi, vi, mods = ~ ablat)`` on the BCG trials (``escalc("OR", ...)``):
slope -0.03153 (se 0.00628) per degree latitude on the log odds ratio; with
``escalc("RR", ...)``: slope -0.02910 (se 0.0072), QE 30.7331 (metafor's documentation).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trialsynth.cli.app import main
from trialsynth.core.meta_regression import meta_regression
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import TrialData, load
from trialsynth.engines.diagnostics import probability_mcse
from trialsynth.engines.mcmc import parameter_names
from trialsynth.models.analysis import SpecError, load_spec
from trialsynth.models.spec import ModelError, ModelSpec
from trialsynth.priors.prior import PriorError, PriorSet, parse_prior
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit
from trialsynth.results.queries import QueryError

MODELS = Path(__file__).resolve().parents[1] / "models"
SMALL = SamplerSettings(draws=1000, tune=500, seed=41)

#: metafor 3.8, rma(yi, vi, mods = ~ ablat), bcg, log odds ratio (printed digits)
METAFOR_OR_SLOPE, METAFOR_OR_SE = -0.03153, 0.00628


def _ablat(data: TrialData) -> np.ndarray:
    return data.covariates["ablat"].loc[list(data.study)].to_numpy(dtype=float)


def _write_arms(path: Path, rows: list[tuple[str, int, int, int, int, str]]) -> TrialData:
    lines = ["study,events_t,n_t,events_c,n_c,group"]
    lines += [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load(str(path))


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trialsynth: error: ")
    return lines[0].removeprefix("trialsynth: error: ")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ivig_sub() -> FitResult:
    """ivig_rm with one mean per population (mixed, primary, secondary), shared tau."""
    return fit(load("ivig_rm"), spec=ModelSpec(subgroup="population"), settings=SMALL)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> TrialData:
    """Arm-level trials with a planted subgroup difference: log-OR 0 in A, 0.7 in B."""
    rng = np.random.default_rng(20261125)
    rows = []
    for g, mu in (("A", 0.0), ("B", 0.7)):
        for i in range(8):
            n = int(rng.integers(120, 200))
            base = rng.normal(-0.6, 0.3)  # control log-odds (control risk about 0.35)
            theta = mu + 0.15 * rng.standard_normal()  # tau = 0.15
            p_c, p_t = 1 / (1 + np.exp(-base)), 1 / (1 + np.exp(-(base + theta)))
            rows.append(
                (f"{g}{i + 1}", int(rng.binomial(n, p_t)), n, int(rng.binomial(n, p_c)), n, g)
            )
    return _write_arms(tmp_path_factory.mktemp("planted") / "planted.csv", rows)


# --------------------------------------------------------------------------- REML meta-regression


def test_reml_meta_regression_reproduces_metafor_bcg() -> None:
    bcg = load("bcg")
    lor = bcg.contrasts()
    res = meta_regression(lor.y, lor.se, _ablat(bcg), names=["ablat"])
    assert res.names == ("intercept", "ablat")
    # metafor prints 5 significant digits: agreement to the printed digits
    assert round(res.coef[1], 5) == METAFOR_OR_SLOPE
    assert round(res.se[1], 5) == METAFOR_OR_SE
    d = res.to_dict()
    assert d["coefficients"]["ablat"]["estimate"] == res.coef[1]
    assert d["qm_df"] == 1 and d["qe_df"] == 11


def test_reml_meta_regression_reproduces_metafor_log_rr() -> None:
    # the metafor documentation's example: rma(yi, vi, mods = ~ ablat) with measure "RR":
    # slope -0.02910 (issue 4), se 0.0072 and QE(df = 11) = 30.7331 (metafor's printout).
    # tau^2 is not compared: metafor stops Fisher scoring at a change below 1e-5, we iterate
    # to the optimum (0.076348), so its 4th decimal may differ.
    bcg = load("bcg")
    a, n1 = np.asarray(bcg.events_t, float), np.asarray(bcg.n_t, float)
    c, n2 = np.asarray(bcg.events_c, float), np.asarray(bcg.n_c, float)
    y = np.log(a / n1) - np.log(c / n2)
    se = np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    res = meta_regression(y, se, _ablat(bcg))
    assert (round(res.coef[1], 5), round(res.se[1], 4)) == (-0.02910, 0.0072)
    assert round(res.qe, 4) == 30.7331


def test_meta_regression_input_errors() -> None:
    y, se = np.array([0.1, 0.2, 0.3, 0.4]), np.full(4, 0.2)
    with pytest.raises(ValueError, match="constant or collinear"):
        meta_regression(y, se, np.ones(4))
    with pytest.raises(ValueError, match="one row per trial"):
        meta_regression(y, se, np.arange(3.0))
    with pytest.raises(ValueError, match="needs at least 3 trials"):
        meta_regression(y[:2], se[:2], np.arange(2.0))


# --------------------------------------------------------------------------- Bayesian fits


@pytest.mark.mcmc
def test_bcg_slope_agrees_with_reml_within_one_posterior_sd() -> None:
    res = fit(load("bcg"), spec=ModelSpec(covariates=("ablat",)), settings=SMALL)
    assert res.ok, res.diagnostics
    beta = res.summary()["beta"]["ablat"]
    # binomial-normal (exact likelihood) vs REML normal-normal: the criterion is one
    # posterior sd (0.0074 here; the MCSE of the mean is about 0.0003)
    assert abs(beta["mean"] - METAFOR_OR_SLOPE) < beta["sd"]
    assert beta["p_gt_0"] < 0.01
    slope = res.tree["posterior"]["beta"].sel(covariate="ablat").values
    assert res.prob("P(beta[ablat] < 0)") == np.mean(slope < 0) == 1 - beta["p_gt_0"]
    assert res.prob("beta[ablat] > -0.03") == np.mean(slope > -0.03)
    with pytest.raises(QueryError, match=r"unknown target 'beta\[year\]'; valid: .*beta\[ablat\]"):
        res.prob("beta[year] > 0")
    assert beta["centre"] == pytest.approx(np.mean(_ablat(load("bcg"))))
    assert res.summary()["priors"]["beta"] == "normal(0, 10)"
    assert "beta[ablat]" in set(res.summary_frame()["quantity"])


@pytest.mark.parametrize("tau_kind", ["shared", "separate"])
@pytest.mark.mcmc
def test_planted_subgroup_difference_is_recovered(planted, tau_kind) -> None:
    # default draws: with tau near 0 (0.15 planted), R-hat of tau needs more than 1000 draws
    settings = SamplerSettings(seed=42)
    res = fit(planted, spec=ModelSpec(subgroup="group", subgroup_tau=tau_kind), settings=settings)
    assert res.ok, res.diagnostics
    assert res.subgroups == ["A", "B"]
    s = res.summary()
    (contrast,) = s["subgroup_contrasts"]
    assert (contrast["a"], contrast["b"]) == ("A", "B")
    # planted log(OR[A]/OR[B]) = -0.7: inside the 95% interval, direction right with P > 0.95
    assert contrast["log_ratio_of_or"]["q025"] < -0.7 < contrast["log_ratio_of_or"]["q975"]
    assert res.prob("OR[B] > OR[A]") > 0.95
    assert s["subgroups"]["A"]["k"] == s["subgroups"]["B"]["k"] == 8
    for level, mu in (("A", 0.0), ("B", 0.7)):
        g = s["subgroups"][level]["mu"]
        assert g["q025"] < mu < g["q975"]
    taus = s["subgroups"]
    if tau_kind == "shared":
        assert taus["A"]["tau"] == taus["B"]["tau"]
    else:
        assert taus["A"]["tau"] != taus["B"]["tau"]


def test_subgroup_queries_are_draw_fractions(ivig_sub) -> None:
    assert ivig_sub.ok, ivig_sub.diagnostics
    assert ivig_sub.subgroups == ["mixed", "primary", "secondary"]
    post = ivig_sub.tree["posterior"]
    mu_g, new_g = post["mu_subgroup"], post["theta_new_subgroup"]
    sec, pri = mu_g.sel(subgroup="secondary").values, mu_g.sel(subgroup="primary").values
    new_sec = new_g.sel(subgroup="secondary").values
    assert ivig_sub.prob("P(OR[secondary] > OR[primary])") == np.mean(sec > pri)
    assert ivig_sub.prob("OR_new[secondary] > 1") == np.mean(new_sec > 0)
    assert ivig_sub.prob("OR[secondary] > 1") == np.mean(sec > 0)
    tau_sec = post["tau_subgroup"].sel(subgroup="secondary").values
    assert ivig_sub.prob("tau[secondary] > 0.5") == np.mean(tau_sec > 0.5)
    ans = ivig_sub.ask("OR[secondary] > OR[primary]")
    assert ans.mcse == probability_mcse(sec > pri) > 0
    s = ivig_sub.summary()
    assert s["subgroups"]["secondary"]["p_theta_new_gt_0"] == np.mean(new_sec > 0)
    by_name = {c["contrast"]: c for c in s["subgroup_contrasts"]}
    assert by_name["primary vs secondary"]["p_greater"] == np.mean(pri > sec)
    # the theta of each trial is its subgroup mean plus its own deviation: a secondary trial's
    # shrunken effect is not the subgroup mean
    assert not np.allclose(post["theta"].sel(study="Stephenson 2010").values, sec)


def test_unknown_subgroup_level_lists_valid_targets(ivig_sub) -> None:
    with pytest.raises(QueryError) as info:
        ivig_sub.prob("OR[tertiary] > 1")
    msg = str(info.value)
    assert msg.startswith("unknown target 'OR[tertiary]'; valid: ")
    assert "OR[secondary], OR_new[secondary]" in msg and "\n" not in msg


def test_subgroup_design_errors() -> None:
    data = load("ivig_rm")
    with pytest.raises(ModelError, match="subgroup column 'populaton' is not in the data; valid: "):
        fit(data, spec=ModelSpec(subgroup="populaton"), settings=SMALL)
    with pytest.raises(ModelError, match="covariate 'population' is not numeric"):
        fit(data, spec=ModelSpec(covariates=("population",)), settings=SMALL)
    with pytest.raises(ModelError, match="unknown subgroup_tau 'own'; valid: shared, separate"):
        ModelSpec.from_options(subgroup="population", subgroup_tau="own")
    with pytest.raises(ModelError, match="needs student-t random effects"):
        ModelSpec.from_options(nu=None)


def test_nu_prior_role() -> None:
    assert PriorSet().nu == parse_prior("gamma(2, 0.1)", "nu")
    assert str(PriorSet.from_strings(nu="exponential(0.1)").nu) == "exponential(0.1)"
    with pytest.raises(PriorError, match="is not a valid nu prior; valid: gamma"):
        parse_prior("normal(0, 1)", "nu")


def _outlier_data(tmp_path: Path, outlier: float) -> TrialData:
    """11 trials, 100 per arm, effects around 0.4; the last one at ``outlier``.

    Counts are the expected counts at the planted effects (no sampling noise), so the only
    difference between the two data sets is the outlier.
    """
    rng = np.random.default_rng(5)
    theta = 0.4 + 0.2 * rng.standard_normal(11)
    theta[-1] = outlier
    base = np.log(0.3 / 0.7)
    rows = [
        (f"trial {i + 1}", round(100 / (1 + np.exp(-(base + t)))), 100, 30, 100, "x")
        for i, t in enumerate(theta)
    ]
    return _write_arms(tmp_path / f"outlier_{outlier:g}.csv", rows)


@pytest.mark.mcmc
def test_student_t_moves_mu_less_than_normal_after_an_outlier(tmp_path) -> None:
    clean = _outlier_data(tmp_path, 0.4)
    dirty = _outlier_data(tmp_path, -1.6)
    settings = SamplerSettings(draws=2000, tune=1000, seed=43)
    shift, mcse = {}, {}
    for name, spec in (
        ("normal", ModelSpec()),
        ("t", ModelSpec(random_effects="student-t", nu=4.0)),
    ):
        fits = [fit(d, spec=spec, settings=settings) for d in (clean, dirty)]
        for f in fits:
            assert f.ok, (name, f.diagnostics)
        mus = [f.draws("mu") for f in fits]
        shift[name] = float(mus[1].mean() - mus[0].mean())
        mcse[name] = float(np.hypot(*(probability_mcse(m) for m in mus)))
    # the outlier pulls mu down in both models; the t model moves it less, by more than
    # 4 Monte Carlo standard errors of the difference of the two shifts
    assert shift["normal"] < 0 and shift["t"] < 0
    margin = abs(shift["normal"]) - abs(shift["t"])
    assert margin > 4 * np.hypot(mcse["normal"], mcse["t"])


def test_estimated_nu_draws_are_used_per_draw(tmp_path) -> None:
    """fit.derive rebuilds theta from the scale mixture and draws theta_new with each nu."""
    import xarray as xr

    from trialsynth.engines.mcmc import derive

    data = _outlier_data(tmp_path, 0.4)
    spec = ModelSpec(random_effects="student-t", nu=None)
    rng = np.random.default_rng(1)
    shape = (2, 20_000)
    nu = np.where(np.arange(shape[1]) < shape[1] // 2, 3.0, 300.0)[None, :].repeat(2, 0)
    post = {
        "mu": (("chain", "draw"), np.zeros(shape)),
        "tau": (("chain", "draw"), np.ones(shape)),
        "nu": (("chain", "draw"), nu),
        "z_normal": (("chain", "draw", "study"), rng.standard_normal((*shape, data.k))),
        "z_scale2": (("chain", "draw", "study"), rng.gamma(2.0, 1.0, (*shape, data.k))),
        "alpha": (("chain", "draw", "study"), np.zeros((*shape, data.k))),
    }
    raw = xr.DataTree.from_dict({"posterior": xr.Dataset(post)})
    out = derive(raw, spec, data, seed=3)["posterior"]
    expected = post["z_normal"][1] * np.sqrt(post["z_scale2"][1])
    np.testing.assert_allclose(out["theta"].values, expected)
    new = out["theta_new"].values
    heavy, light = np.abs(new[:, : shape[1] // 2]), np.abs(new[:, shape[1] // 2 :])
    # P(|t_3| > 4) = 0.028 vs P(|t_300| > 4) = 8e-5: with 20000 draws each, the counts
    # (about 560 vs 2) cannot overlap by chance
    assert (heavy > 4).mean() > 0.02 > 0.001 > (light > 4).mean()
    assert np.array_equal(out["nu"].values, nu)


@pytest.mark.mcmc
def test_estimated_nu_fit_records_its_prior() -> None:
    res = fit(
        load("ivig_rm"),
        spec=ModelSpec(random_effects="student-t", nu=None),
        priors=PriorSet.from_strings(nu="gamma(2, 0.1)"),
        settings=SamplerSettings(seed=44),  # default draws: nu mixes slowly
    )
    assert res.ok, res.diagnostics
    s = res.summary()
    assert s["priors"]["nu"] == "gamma(2, 0.1)"
    assert s["model_spec"]["nu"] is None
    assert "nu" in parameter_names(res.spec, res.tree)  # its convergence is checked
    assert res.spec.estimate_nu and "nu" in set(res.summary_frame()["quantity"])
    assert res.prob("nu < 10") == np.mean(res.draws("nu") < 10)
    # the report's posterior figure draws the prior predictive with nu from its prior
    import matplotlib.pyplot as plt

    from trialsynth.report.plots import posterior_plot

    fig = posterior_plot(res, prior_draws=2000)
    assert fig.axes
    plt.close(fig)


# --------------------------------------------------------------------------- specs


def test_shipped_subgroup_spec() -> None:
    spec = load_spec(MODELS / "ivig_rm_subgroups.toml")
    assert spec.source == "ivig_rm" and spec.exclude == ()
    model = spec.model_spec("arm")
    assert model.subgroup == "population" and model.subgroup_tau == "shared"
    assert spec.priors == PriorSet()


def test_spec_nu_prior(tmp_path) -> None:
    base = '[data]\nsource = "ivig_rm"\n[model]\nrandom_effects = "student-t"\n'
    path = tmp_path / "t.toml"
    path.write_text(base + '[priors]\nnu = "gamma(2, 0.1)"\n', encoding="utf-8")
    spec = load_spec(path)
    assert spec.nu is None and spec.model_spec("arm").estimate_nu
    path.write_text(base + 'nu = 4\n[priors]\nnu = "gamma(2, 0.1)"\n', encoding="utf-8")
    with pytest.raises(SpecError, match=r"give either \[model\] nu .* or \[priors\] nu"):
        load_spec(path)
    path.write_text(base + '[priors]\nnu = "half-cauchy(1)"\n', encoding="utf-8")
    with pytest.raises(SpecError, match="is not a valid nu prior; valid: "):
        load_spec(path)


# --------------------------------------------------------------------------- CLI


@pytest.mark.mcmc
def test_cli_subgroup_fit_json_and_query(tmp_path, capsys) -> None:
    out = tmp_path / "fit"
    args = ["fit", "ivig_rm", "--subgroup", "population", "--subgroup-tau", "separate"]
    args += ["--draws", "1000", "--tune", "500", "--seed", "7", "--out", str(out), "--json"]
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["model_spec"]["subgroup"] == "population"
    assert s["model_spec"]["subgroup_tau"] == "separate"
    assert set(s["subgroups"]) == {"mixed", "primary", "secondary"}
    assert s["diagnostics"]["ok"] is True
    queries = ["P(OR[secondary] > OR[primary])", "P(OR_new[secondary] > 1)"]
    assert main(["query", str(out), *queries, "--json"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    saved = FitResult.load(out)
    post = saved.tree["posterior"]
    sec = post["mu_subgroup"].sel(subgroup="secondary").values
    pri = post["mu_subgroup"].sel(subgroup="primary").values
    new = post["theta_new_subgroup"].sel(subgroup="secondary").values
    assert [a["probability"] for a in answers] == [np.mean(sec > pri), np.mean(new > 0)]
    assert s["subgroups"]["secondary"]["p_theta_new_gt_0"] == answers[1]["probability"]
    assert main(["query", str(out), queries[0]]) == 0  # the table shows the brackets
    assert "P(OR[secondary] > OR[primary])" in capsys.readouterr().out
    assert main(["query", str(out), "P(OR_new[tertiary] > 1)"]) == 2
    assert "unknown target 'OR_new[tertiary]'; valid: " in _one_line_error(capsys.readouterr().err)


@pytest.mark.mcmc
def test_cli_meta_regression_and_student_t_table(capsys) -> None:
    args = ["fit", "bcg", "--covariate", "ablat", "--beta-prior", "normal(0, 1)"]
    args += ["--random-effects", "student-t", "--nu-prior", "gamma(2, 0.1)"]
    args += ["--draws", "1000", "--tune", "500", "--seed", "8"]
    main(args)  # exit code: 0, or 0 with a failed-convergence warning (not --strict)
    text = capsys.readouterr().out
    assert "meta-regression (log-OR per unit of each covariate)" in text
    assert "pooled OR at mean covariates" in text
    assert "ablat" in text
    assert "degrees of freedom estimated, nu " in text and "(prior gamma(2, 0.1))" in text
    assert "beta ~ normal(0, 1)" in text and "nu ~ gamma(2, 0.1)" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--subgroup", "populaton"],
            "subgroup column 'populaton' is not in the data; valid: year, population, ",
        ),
        (
            ["--subgroup", "population", "--subgroup-tau", "own"],
            "Invalid value for '--subgroup-tau': 'own' is not one of 'shared', 'separate'.",
        ),
        (["--covariate", "region"], "covariate 'region' is not in the data; valid: year, "),
        (["--covariate", "population"], "covariate 'population' is not numeric"),
        (["--beta-prior", "normal(0, 1)"], "--beta-prior needs a meta-regression"),
        (
            ["--covariate", "year", "--beta-prior", "half-normal(1)"],
            "'half-normal(1)' is not a valid beta prior; valid: normal(mu, sigma)",
        ),
        (["--nu-prior", "gamma(2, 0.1)"], "a prior on the degrees of freedom (nu) needs"),
        (
            ["--random-effects", "student-t", "--nu", "4", "--nu-prior", "gamma(2, 0.1)"],
            "give either --nu (fixed degrees of freedom) or --nu-prior, not both",
        ),
        (
            ["--random-effects", "student-t", "--nu-prior", "normal(0, 1)"],
            "'normal(0, 1)' is not a valid nu prior; valid: gamma(alpha, beta), ",
        ),
        (
            ["--random-effects", "student-t", "--nu", "-1"],
            "Student-t degrees of freedom must be > 0, got -1.0",
        ),
    ],
)
def test_cli_errors_are_one_line(capsys, extra, message) -> None:
    assert main(["fit", "ivig_rm", *extra]) == 2
    captured = capsys.readouterr()
    assert message in _one_line_error(captured.err)
    assert captured.out == ""


def test_common_effect_subgroups_check_no_zero_tau() -> None:
    """tau = 0 in a common-effect subgroup fit: no R-hat of a constant (a NaN warning)."""
    import xarray as xr

    names = ("mu", "theta", "mu_subgroup", "tau_subgroup", "tau", "alpha")
    tree = xr.DataTree.from_dict(
        {"posterior": xr.Dataset({n: (("chain", "draw"), np.zeros((2, 3))) for n in names})}
    )
    common = ModelSpec(random_effects=None, subgroup="population")
    assert parameter_names(common, tree) == ["mu", "theta", "mu_subgroup", "alpha"]
    shared = ModelSpec(subgroup="population")
    assert {"tau", "tau_subgroup"} <= set(parameter_names(shared, tree))
