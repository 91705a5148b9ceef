"""Bias adjustment by trial quality (models/bias.py; Welton et al. 2009) against references.

* the exact engine's bias-adjusted posterior against brute force: for each tau the joint
  Gaussian of ``(mu, b, theta, y)`` written from the model definition (dense covariance,
  generic conditioning, no 2 x 2 algebra) and ``scipy.integrate.quad`` over tau;
* the sign convention (benefit direction) and the conversion of a published ROR;
* a simulation: weaker trials shifted by a known bias, the adjustment moves mu towards the
  adequate trials' estimate;
* MCMC against exact for the adjusted normal-normal model (in MCSE units);
* every bad input through the CLI (one line, exit 2).

The numpy-vs-PyMC log density of the adjusted models is in tests/test_likelihood.py.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import integrate, stats

from conftest import run_cli
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.engines.exact import exact_for
from trialsynth.models.bias import (
    BRANDO_OBJECTIVE,
    DEFAULT_BIAS_PRIOR,
    BiasAdjustment,
    prior_from_ror,
    weaker_trials,
)
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import PriorSet, parse_prior
from trialsynth.results.fitting import fit

# quad's relative tolerance is set to 1e-10 and the exact engine's delta is 1e-9, so the two
# agree to about 1e-8; 1e-7 leaves room for the quadrature error of both
QUAD_TOL = 1e-7


def _brute_force(y, se, w, mu_prior, tau_prior, bias_prior, kappa):
    """P(mu > 0), E[mu], E[b] and E[theta_1] by quad over tau of Gaussian conditionals.

    Given tau, ``x = (mu, b, theta_1..k)`` is Gaussian under the prior and
    ``y = theta + w * (b + kappa * u) + e``; the joint covariance of ``(x, y)`` is built
    entry by entry and conditioned on ``y`` with a dense solve.
    """
    k = len(y)
    m0, s0 = mu_prior
    mb, sb = bias_prior

    def gauss(tau):
        mean_x = np.concatenate([[m0, mb], np.full(k, m0)])
        cov_x = np.zeros((k + 2, k + 2))
        cov_x[0, 0] = s0**2
        cov_x[1, 1] = sb**2
        cov_x[0, 2:] = cov_x[2:, 0] = s0**2  # theta_i = mu + tau z_i
        cov_x[2:, 2:] = s0**2 + tau**2 * np.eye(k)
        # y = theta + w b + noise(se^2 + w kappa^2): loadings of y on x
        load_ = np.zeros((k, k + 2))
        load_[:, 2:] = np.eye(k)
        load_[:, 1] = w
        mean_y = load_ @ mean_x
        cov_y = load_ @ cov_x @ load_.T + np.diag(se**2 + w * kappa**2)
        cross = cov_x @ load_.T
        gain = np.linalg.solve(cov_y, cross.T).T
        post_mean = mean_x + gain @ (y - mean_y)
        post_cov = cov_x - gain @ cross.T
        like = stats.multivariate_normal(mean_y, cov_y).pdf(y)
        return like * tau_prior.pdf(tau), post_mean, post_cov

    def integral(f):
        return integrate.quad(lambda t: f(*gauss(t)), 0, np.inf, epsabs=0, epsrel=1e-10)[0]

    z = integral(lambda d, m, c: d)
    p = integral(lambda d, m, c: d * stats.norm.sf(0, m[0], math.sqrt(c[0, 0]))) / z
    e_mu = integral(lambda d, m, c: d * m[0]) / z
    e_b = integral(lambda d, m, c: d * m[1]) / z
    e_th = integral(lambda d, m, c: d * m[2]) / z
    return p, e_mu, e_b, e_th


@pytest.mark.parametrize(
    ("dataset", "adequate", "prior", "kappa"),
    [
        ("ivig_rm", ("high",), "normal(0.0834, 0.1157)", 0.06),
        ("ivig_rm_secondary", ("high", "medium"), "normal(0, 0.5)", 0.3),
        ("ivig_rm_secondary", ("high",), "normal(0.4, 0.2)", 0.0),
    ],
)
def test_exact_bias_adjusted_posterior_equals_brute_force(dataset, adequate, prior, kappa) -> None:
    data = load(dataset)
    adj = BiasAdjustment.from_options("confidence", adequate, prior=prior, sd=kappa)
    lor = data.contrasts(correction=0.5)
    w = weaker_trials(adj, data)
    priors = PriorSet(mu=parse_prior("normal(0, 2.82)", "mu"))
    post = exact_for(lor.y, lor.se, priors, data.study, bias=adj, weight=w)
    p, e_mu, e_b, e_th = _brute_force(
        np.asarray(lor.y),
        np.asarray(lor.se),
        w,
        (0.0, 2.82),
        stats.halfnorm(scale=0.5),
        adj.model_prior,
        kappa,
    )
    assert post.prob_mu_gt(0.0) == pytest.approx(p, abs=QUAD_TOL)
    assert post.mu.mean == pytest.approx(e_mu, abs=QUAD_TOL)
    assert post.theta(0).mean == pytest.approx(e_th, abs=QUAD_TOL)
    # the mean bias from the exact engine's iid draws: within 4 Monte Carlo SEs
    d = post.sample(40_000, rng=np.random.default_rng(5))
    se_b = d["bias_mean"].std() / math.sqrt(d["bias_mean"].size)
    assert abs(d["bias_mean"].mean() - e_b) < 4 * se_b
    # and the draws of mu agree with the exact marginal (iid draws: 4 SEs)
    assert abs(d["mu"].mean() - e_mu) < 4 * d["mu"].std() / math.sqrt(d["mu"].size)


def test_published_ror_converts_to_the_benefit_direction() -> None:
    # ROR 0.92 (95% CrI 0.76 to 1.12), phi 0.06: exaggeration of benefit is -log(ROR) > 0
    prior, kappa = prior_from_ror(BRANDO_OBJECTIVE)
    sd = math.hypot((math.log(1.12) - math.log(0.76)) / (2 * 1.959963984540054), 0.06)
    assert prior.params == (round(-math.log(0.92), 4), round(sd, 4))
    assert prior == DEFAULT_BIAS_PRIOR and kappa == 0.06
    more = BiasAdjustment("confidence", ("high",), prior, kappa, "more-events")
    fewer = replace(more, benefit="fewer-events")
    assert more.model_prior == (prior.params[0], prior.params[1])  # raises the log OR
    assert fewer.model_prior == (-prior.params[0], prior.params[1])  # lowers it


def test_adjustment_removes_the_benefit_the_weaker_trials_overstate() -> None:
    # every trial shows log OR 0.3 with se 0.2; the bias prior says weaker trials overstate
    # the benefit by 0.3: more events a benefit -> adjusted mu below 0.3, fewer -> above
    y, se = np.full(6, 0.3), np.full(6, 0.2)
    w = np.array([0, 0, 0, 1, 1, 1.0])
    priors = PriorSet(mu=parse_prior("normal(0, 10)", "mu"))
    labels = [f"t{i}" for i in range(6)]
    base = BiasAdjustment("q", ("ok",), parse_prior("normal(0.3, 0.05)", "mu"), 0.0)
    plain = exact_for(y, se, priors, labels).mu.mean
    up = exact_for(y, se, priors, labels, bias=base, weight=w).mu.mean
    down = exact_for(
        y, se, priors, labels, bias=replace(base, benefit="fewer-events"), weight=w
    ).mu.mean
    assert plain == pytest.approx(0.3, abs=1e-3)
    assert up < plain - 0.05 and down > plain + 0.05
    # mirrored data, mirrored benefit: the mirrored posterior
    mirrored = exact_for(
        -y, se, priors, labels, bias=replace(base, benefit="fewer-events"), weight=w
    ).mu.mean
    assert mirrored == pytest.approx(-up, abs=1e-9)


def test_simulated_bias_is_removed_towards_the_adequate_trials() -> None:
    # 15 adequate trials around mu = 0.2 (tau 0.1), 15 weaker ones shifted by +0.6 (fixed
    # seed): with a bias prior centred near the planted shift, mu moves from the naive
    # pooled value to within 1.5 posterior sds of the adequate-only estimate
    rng = np.random.default_rng(2026)
    k = 30
    se = rng.uniform(0.1, 0.25, size=k)
    w = np.repeat([0.0, 1.0], k // 2)
    y = 0.2 + 0.1 * rng.standard_normal(k) + 0.6 * w + se * rng.standard_normal(k)
    labels = [f"t{i}" for i in range(k)]
    priors = PriorSet(mu=parse_prior("normal(0, 10)", "mu"))
    naive = exact_for(y, se, priors, labels).mu
    good = exact_for(y[w == 0], se[w == 0], priors, labels[: k // 2]).mu
    adj = BiasAdjustment("q", ("ok",), parse_prior("normal(0.6, 0.2)", "mu"), 0.1)
    adjusted = exact_for(y, se, priors, labels, bias=adj, weight=w).mu
    assert naive.mean - good.mean > 0.3  # the planted bias shows in the naive estimate
    assert abs(adjusted.mean - good.mean) < 0.25 * abs(naive.mean - good.mean)
    assert abs(adjusted.mean - good.mean) < 1.5 * adjusted.sd
    # no adjustment at all when the weaker trials' bias is pinned at 0 (tiny prior sd, no
    # spread): the naive answer back, up to the prior's 1e-4 sd
    none = BiasAdjustment("q", ("ok",), parse_prior("normal(0, 0.0001)", "mu"), 0.0)
    pinned = exact_for(y, se, priors, labels, bias=none, weight=w).mu
    assert pinned.mean == pytest.approx(naive.mean, abs=1e-3)


def test_fit_records_the_weaker_trials_and_the_unadjusted_probability() -> None:
    code, out, err = run_cli(
        [
            "fit",
            "ivig_rm",
            "--model",
            "normal-normal",
            "--bias-column",
            "confidence",
            "--bias-adequate",
            "high",
            "--json",
        ]
    )
    assert code == 0, err
    import json

    s = json.loads(out)
    b = s["bias_adjustment"]
    assert b["weaker"] == [
        "Christiansen 1995",
        "Perino 1997",
        "Jablonowska 1999",
        "Christiansen 2002",
    ]
    assert b["prior"].startswith(str(DEFAULT_BIAS_PRIOR)) and b["sd"] == 0.06
    assert s["model_spec"]["bias"]["column"] == "confidence"
    # the unadjusted P(OR > 1) is the plain normal-normal fit's
    plain = fit(load("ivig_rm"), spec=ModelSpec(likelihood="normal"), engine="exact")
    assert b["unadjusted"]["p_mu_gt_0"] == plain.summary()["p_mu_gt_0"]
    assert s["p_mu_gt_0"] < b["unadjusted"]["p_mu_gt_0"]  # the overstated benefit removed


def _csv(tmp_path, rows: list[str]) -> str:
    path = tmp_path / "trials.csv"
    head = "study,events_t,n_t,events_c,n_c,quality"
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("extra", "rows", "message"),
    [
        (["--bias-column", "qual", "--bias-adequate", "low"], None, "bias column 'qual' is not in"),
        (["--bias-column", "quality", "--bias-adequate", "low,lo"], None, "has no value 'lo'"),
        (
            ["--bias-column", "quality", "--bias-adequate", "low,high"],
            None,
            "no trial is marked weaker",
        ),
        (
            ["--bias-column", "quality", "--bias-adequate", "low"],
            ["A,5,20,3,20,high", "B,6,20,4,20,high", "C,7,20,5,20,high"],
            "every trial is marked weaker",
        ),
        (
            ["--bias-column", "quality", "--bias-adequate", "low"],
            ["A,5,20,3,20,low", "B,6,20,4,20,", "C,7,20,5,20,high"],
            "has no value for study 'B'",
        ),
        (
            ["--bias-column", "quality", "--bias-adequate", "low", "--bias-prior", "normal(0)"],
            None,
            "bias prior: 'normal(0)': normal takes 2",
        ),
        (
            ["--bias-column", "quality", "--bias-adequate", "low", "--bias-prior", "cauchy(0,1)"],
            None,
            "needs a normal(mean, sd) prior",
        ),
        (
            ["--bias-column", "quality", "--bias-adequate", "low", "--model", "common-effect"],
            None,
            "not common-effect",
        ),
        (
            ["--bias-column", "quality", "--bias-adequate", "low", "--random-effects", "student-t"],
            None,
            "not binomial-student-t",
        ),
        (
            ["--bias-column", "quality", "--bias-adequate", "low", "--subgroup", "quality"],
            None,
            "not combined with subgroups",
        ),
        (["--bias-column", "quality", "--bias-adequate", "low", "--bias-sd", "-1"], None, ">= 0"),
        (["--bias-column", "quality"], None, "--bias-adequate"),
        (["--bias-prior", "normal(0, 1)"], None, "--bias-prior needs --bias-column"),
    ],
)
def test_bad_bias_input_is_one_line_exit_2(tmp_path, extra, rows, message) -> None:
    rows = rows or ["A,5,20,3,20,low", "B,6,20,4,20,high", "C,7,20,5,20,low"]
    code, out, err = run_cli(["fit", _csv(tmp_path, rows), *extra])
    assert code == 2, (out, err)
    lines = [line for line in err.strip().splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_without_the_option_nothing_changes() -> None:
    # the spec, its key and the exact posterior of a plain fit do not see the new field
    data = load("ivig_rm")
    spec = ModelSpec.from_options("normal-normal")
    assert "bias" not in spec.to_dict()
    r = fit(data, spec=spec, engine="exact")
    assert "bias_adjustment" not in r.summary() and "bias_mean" not in r.tree["posterior"]


@pytest.mark.mcmc
def test_mcmc_agrees_with_exact_for_the_adjusted_normal_normal_model() -> None:
    from trialsynth.analysis.agreement import AGREEMENT_Z, engine_agreement

    data = load("ivig_rm_secondary")
    adj = BiasAdjustment.from_options("confidence", "high", prior="normal(0.1, 0.2)", sd=0.2)
    spec = ModelSpec.from_options("normal-normal", bias=adj)
    settings = SamplerSettings(draws=4000, tune=1000, seed=13)
    exact = fit(data, spec=spec, settings=settings, engine="exact")
    mcmc = fit(data, spec=spec, settings=settings, engine="mcmc")
    assert mcmc.ok
    rows = engine_agreement(exact, mcmc)
    # every quantity within AGREEMENT_Z (4) Monte Carlo SEs of the exact value
    bad = [(r["quantity"], r["z"]) for r in rows if not r["ok"]]
    assert not bad, bad
    assert len(rows) >= 10 and AGREEMENT_Z == 4.0
    # the mean bias: MCMC against the exact engine's iid draws (two-sample z, 4 SEs)
    b_m, b_e = mcmc.draws("bias_mean").ravel(), exact.draws("bias_mean").ravel()
    import arviz as az

    from trialsynth.engines.diagnostics import probability_mcse  # noqa: F401  (ESS below)

    ess = float(az.ess(mcmc.draws("bias_mean")))
    se = math.hypot(b_m.std() / math.sqrt(ess), b_e.std() / math.sqrt(b_e.size))
    assert abs(b_m.mean() - b_e.mean()) < 4 * se


def test_saved_bias_fit_is_redone_identically(tmp_path) -> None:
    # the adjustment round-trips through provenance: fit --from rebuilds it and the
    # summary (with the unadjusted probability) is identical
    out = tmp_path / "fit"
    args = ["fit", "ivig_rm_secondary", "--model", "normal-normal", "--bias-column"]
    code, _, err = run_cli([*args, "confidence", "--bias-adequate", "high", "--out", out])
    assert code == 0, err
    code, text, err = run_cli(["fit", "--from", out, "--json"])
    assert code == 0, err
    import json

    redo = json.loads(text)
    assert redo["redo"]["identical"] is True
    before = redo["bias_adjustment"]["unadjusted"]["p_mu_gt_0"]
    assert before > redo["p_mu_gt_0"]
    # the report's methods say which trials were adjusted, and the two probabilities
    code, _, err = run_cli(["report", out, "--format", "md"])
    assert code == 0, err
    report = (out / "report.md").read_text(encoding="utf-8")
    weaker = ", ".join(redo["bias_adjustment"]["weaker"])
    assert f"Trials whose confidence was not high ({weaker})" in report
    assert f"Without the adjustment P(OR > 1) was {before:.3f}" in report


def test_summary_of_findings_reports_how_far_the_adjustment_moves_the_or(tmp_path) -> None:
    from trialsynth.report.sof import risk_of_bias

    bias = ["--bias-column", "confidence", "--bias-adequate", "high"]
    code, text, err = run_cli(["fit", "ivig_rm", "--model", "normal-normal", *bias, "--json"])
    assert code == 0, err
    import json

    s = json.loads(text)
    rob = risk_of_bias(s, None)
    want = math.log(s["or"]["median"]) - math.log(
        s["bias_adjustment"]["unadjusted"]["or"]["median"]
    )
    assert rob["adjustment"] == pytest.approx(want, rel=1e-12) and want < 0
    assert "4 weaker trial(s)" in rob["text"]


def _spec(tmp_path, section: str) -> str:
    path = tmp_path / "spec.toml"
    path.write_text(
        '[analysis]\nname = "b"\n[data]\nsource = "ivig_rm_secondary"\n'
        f'[model]\nmodel = "normal-normal"\n[output]\ndir = "{tmp_path / "out"}"\n'
        f"[bias_adjustment]\n{section}\n",
        encoding="utf-8",
    )
    return str(path)


def test_spec_bias_adjustment_section_builds_the_same_model(tmp_path) -> None:
    from trialsynth.models.analysis import load_spec

    path = _spec(tmp_path, 'column = "confidence"\nadequate = ["high", "medium"]\nsd = 0.1')
    spec = load_spec(path)
    model = spec.model_spec("arm")
    assert model.bias == BiasAdjustment("confidence", ("high", "medium"), DEFAULT_BIAS_PRIOR, 0.1)
    # the same adjustment as the fit options give
    cli = BiasAdjustment.from_options("confidence", "high,medium", sd=0.1)
    assert cli == model.bias


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('column = "confidence"\nadequate = "high"\nkappa = 1', "unknown key 'kappa'"),
        ('column = "confidence"\nadequate = "hi"', "[bias_adjustment]: every trial is marked"),
        ('column = "conf"\nadequate = "high"', "[bias_adjustment]: bias column 'conf' is not"),
        ('column = "confidence"\nadequate = "high"\nprior = "normal(0)"', "bias prior"),
        ('adequate = "high"', "column"),
    ],
)
def test_bad_spec_bias_adjustment_is_one_line_exit_2(tmp_path, section, message) -> None:
    code, out, err = run_cli(["run", _spec(tmp_path, section)])
    assert code == 2, (out, err)
    lines = [line for line in err.strip().splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "out").exists()  # refused before anything was fitted or written


def test_analyses_that_would_drop_the_adjustment_refuse_it(tmp_path) -> None:
    # the updated meta-analysis of a future trial and the cumulative steps are unadjusted:
    # they say so (one line, exit 2) instead of silently dropping the adjustment
    out = tmp_path / "fit"
    args = ["fit", "ivig_rm", "--model", "normal-normal", "--bias-column", "confidence"]
    code, _, err = run_cli([*args, "--bias-adequate", "high", "--out", out])
    assert code == 0, err
    design = ["design", out, "--n-per-arm", "100", "--criterion", "updated-meta"]
    code, _, err = run_cli([*design, "--control-rate", "0.5"])
    assert code == 2 and "does not apply the fit's bias adjustment" in err
    spec = _spec(tmp_path, 'column = "confidence"\nadequate = "high"')
    code, _, err = run_cli(["cumulative", spec])
    assert code == 2 and "[bias_adjustment]: the cumulative meta-analysis" in err
    assert len(err.strip().splitlines()) == 1


def test_run_refuses_sensitivity_scenarios_beside_a_bias_adjustment(tmp_path) -> None:
    spec = _spec(tmp_path, 'column = "confidence"\nadequate = "high"')
    with open(spec, "a", encoding="utf-8") as fh:
        fh.write('[sensitivity]\ntau = ["half-normal(0.5)", "half-normal(1)"]\n')
    for command in ("run", "sensitivity"):
        code, _, err = run_cli([command, spec])
        assert code == 2 and "do not apply the [bias_adjustment]" in err, (command, err)
        assert len(err.strip().splitlines()) == 1


def test_compiled_model_depends_on_the_number_of_weaker_trials_only() -> None:
    # the bias prior and kappa are pm.Data (one compile serves the step table's priors);
    # the number of weaker trials is a shape, so another set of a different size recompiles
    from trialsynth.models.pymc import model_values, structure_key
    from trialsynth.models.spec import resolve_priors

    data = load("ivig_rm_secondary")

    def spec_of(adequate, prior="normal(0.1, 0.2)", sd=0.06):
        adj = BiasAdjustment.from_options("confidence", adequate, prior=prior, sd=sd)
        return ModelSpec.from_options("binomial-normal", bias=adj)

    def key(spec):
        return structure_key(spec, data, resolve_priors(spec, data, PriorSet()))

    a, b = spec_of("high"), spec_of("high", prior="normal(0, 0.5)", sd=0.3)
    assert key(a) == key(b)
    assert key(spec_of("high,medium")) != key(a)  # 2 weaker trials instead of 3
    assert key(a) != key(ModelSpec())
    values = model_values(b, data, PriorSet())
    assert values["bias_mean_mu"] == 0.0 and values["bias_mean_sigma"] == 0.5
    assert values["bias_sd"] == 0.3 and values["bias_map"].shape == (data.k, 3)


def test_pointwise_log_likelihood_observes_weaker_trials_with_their_bias() -> None:
    # LOO and psense use the per-trial likelihood: a weaker trial is observed at
    # theta_i + beta_i (the exact engine's draws of both), an adequate one at theta_i
    from trialsynth.analysis.loo import pointwise_log_lik

    data = load("ivig_rm_secondary")
    adj = BiasAdjustment.from_options("confidence", "high", prior="normal(0.3, 0.2)", sd=0.2)
    res = fit(data, spec=ModelSpec.from_options("normal-normal", bias=adj), engine="exact")
    lor = data.contrasts(correction=0.5)
    theta, bias = res.draws("theta"), res.draws("bias")
    want = stats.norm.logpdf(np.asarray(lor.y), theta + bias, np.asarray(lor.se))
    np.testing.assert_allclose(pointwise_log_lik(res, data), want, rtol=1e-12)
    w = weaker_trials(adj, data).astype(bool)
    assert np.all(bias[..., ~w] == 0) and np.all(bias[..., w] != 0)
