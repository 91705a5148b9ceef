"""Absolute effects: every number equals the one computed from the posterior draws directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit

from conftest import run_cli
from trialsynth.analysis.absolute import (
    AbsoluteError,
    absolute_effects,
    attach_absolute,
    baseline_draws,
    check_options,
    control_risk_from_alpha,
)
from trialsynth.data import load
from trialsynth.models.spec import ModelSpec
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit

RNG = np.random.default_rng(1)
MU = RNG.normal(0.3, 0.2, size=(4, 1000))
NEW = MU + RNG.normal(0, 0.4, size=MU.shape)
ALPHA = RNG.normal(0.4, 0.3, size=(4, 1000, 6))


def q(x):
    values = np.quantile(x, [0.025, 0.5, 0.975])
    return {k: float(v) for k, v in zip(("q025", "median", "q975"), values, strict=True)}


def test_given_control_risk_equals_direct_computation():
    out = absolute_effects(MU, 0.5, theta_new=NEW, mcid=50)
    pt = expit(logit(0.5) + MU.ravel())
    d = 1000 * (pt - 0.5)
    for key, x in (("per_1000_treatment", 1000 * pt), ("difference_per_1000", d)):
        for k, v in q(x).items():
            assert out[key][k] == pytest.approx(v, abs=1e-12)
    assert out["control_risk"] == 0.5 and out["per_1000_control"]["q025"] == 500
    assert out["p_difference_gt_mcid"] == np.mean(d > 50)
    assert out["p_benefit"] == np.mean(d > 0)
    dn = 1000 * (expit(logit(0.5) + NEW.ravel()) - 0.5)
    assert out["new_trial"]["difference_per_1000"]["median"] == pytest.approx(np.median(dn))
    assert out["new_trial"]["p_difference_gt_mcid"] == np.mean(dn > 50)


def test_posterior_control_risk_pairs_draws():
    pc = control_risk_from_alpha(ALPHA)
    assert pc.shape == MU.shape
    assert pc[1, 7] == pytest.approx(expit(ALPHA[1, 7].mean()))
    out = absolute_effects(MU, pc, source="posterior")
    d = 1000 * (expit(logit(pc) + MU) - pc)
    assert out["difference_per_1000"]["median"] == pytest.approx(np.median(d), abs=1e-12)
    assert out["control_risk"] == pytest.approx(np.median(pc))
    assert out["per_1000_control"]["q975"] == pytest.approx(np.quantile(1000 * pc, 0.975))


def test_nnt_defined_and_not():
    out = absolute_effects(MU + 0.3, 0.3)
    d = out["difference_per_1000"]
    assert d["q025"] > 0  # this posterior excludes 0
    nnt = out["nnt"]
    assert nnt["defined"] and nnt["kind"] == "NNTB"
    assert nnt["median"] == pytest.approx(1000 / d["median"])
    assert nnt["q025"] == pytest.approx(1000 / d["q975"])
    assert nnt["q975"] == pytest.approx(1000 / d["q025"])
    wide = absolute_effects(RNG.normal(0.1, 0.5, 4000), 0.3)
    n2 = wide["nnt"]
    assert not n2["defined"] and n2["q025"] is None and "unbounded" in n2["note"]


def test_lower_is_better_direction():
    out = absolute_effects(-MU, 0.3, mcid=20, direction="lower")
    d = 1000 * (expit(logit(0.3) - MU.ravel()) - 0.3)
    assert out["p_difference_gt_mcid"] == np.mean(d < -20)
    assert out["nnt"]["kind"] == "NNTB"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"control": 1.2}, "strictly between 0 and 1"),
        ({"control": 0.2, "mcid": -5}, "MCID must be a positive"),
        ({"control": 0.2, "direction": "up"}, "direction must be one of higher, lower"),
        ({"control": np.full(3, 0.2)}, "differ in number"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(AbsoluteError, match=message):
        absolute_effects(MU, **kwargs)


def test_baseline_draws_match_the_conjugate_beta_posterior():
    # logistic(0, 1) on the log-odds is a uniform prior on p: posterior Beta(e + 1, n - e + 1)
    e, n = np.array([0, 3, 20]), np.array([10, 12, 31])
    draws = baseline_draws(e, n, stats.logistic(0, 1).logpdf, 40_000, np.random.default_rng(3))
    p = expit(draws)
    for i in range(3):
        beta = stats.beta(e[i] + 1, n[i] - e[i] + 1)
        # Monte Carlo error of a mean from 40000 iid draws: 4 SE
        assert abs(p[:, i].mean() - beta.mean()) < 4 * beta.std() / 200
        assert stats.kstest(p[:, i], beta.cdf).pvalue > 1e-3


@pytest.fixture(scope="module")
def ivig_exact():
    data = load("ivig_rm")
    return fit(data, spec=ModelSpec.from_options("normal-normal", data_kind="arm"), engine="exact")


def test_attach_given_risk_and_save_round_trip(ivig_exact, tmp_path):
    out = attach_absolute(ivig_exact, control_risk=0.5, mcid=50)
    mu = ivig_exact.draws("mu")
    d = 1000 * (expit(logit(0.5) + mu) - 0.5)
    assert out["difference_per_1000"]["median"] == pytest.approx(np.median(d), abs=1e-12)
    assert out["p_difference_gt_mcid"] == np.mean(d > 50)
    s = ivig_exact.summary()
    assert s["absolute"] == out
    ivig_exact.save(tmp_path)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["absolute"]["control_risk"] == 0.5
    assert FitResult.load(tmp_path).summary()["absolute"] == saved["absolute"]


def test_attach_baseline_model_without_alpha(ivig_exact):
    out = attach_absolute(ivig_exact)
    assert out["control_risk_source"].startswith("baseline model")
    frame = ivig_exact.data_frame
    naive = expit(np.mean(logit((frame["events_c"] + 0.5) / (frame["n_c"] + 1))))
    # the posterior median of the pooled control risk sits near the plug-in (k = 8 arms)
    assert abs(out["control_risk"] - naive) < 0.02


def test_check_options_before_sampling():
    with pytest.raises(AbsoluteError, match=r"spec\.toml \[analysis\]: control risk"):
        check_options(0.0, None, None, "spec.toml [analysis]")
    with pytest.raises(AbsoluteError, match="benefit must be one of more-events, fewer-events"):
        check_options(None, None, "up")


@pytest.mark.mcmc
def test_posterior_control_risk_from_alpha_draws(bcg_mcmc):
    out = attach_absolute(bcg_mcmc, mcid=5)
    alpha, mu = bcg_mcmc.draws("alpha"), bcg_mcmc.draws("mu")
    pc = expit(alpha.mean(axis=-1))
    d = 1000 * (expit(logit(pc) + mu) - pc)
    assert out["control_risk_source"].startswith("posterior")
    assert out["control_risk"] == pytest.approx(np.median(pc), abs=1e-12)
    assert out["difference_per_1000"]["q025"] == pytest.approx(np.quantile(d, 0.025), abs=1e-12)
    assert out["p_difference_gt_mcid"] == np.mean(d > 5)
    new = bcg_mcmc.draws("theta_new")
    dn = 1000 * (expit(logit(pc) + new) - pc)
    assert out["new_trial"]["difference_per_1000"]["median"] == pytest.approx(np.median(dn))


def test_cli_prints_one_line_per_absolute_quantity_and_writes_json(tmp_path):
    args = ["fit", "ivig_rm", "--model", "normal-normal", "--control-risk", "0.5", "--mcid", "50"]
    code, text, err = run_cli([*args, "--out", tmp_path / "f"])
    assert code == 0, err
    for line in (
        "risk with control",
        "risk with treatment",
        "difference",
        "number needed",
        "P(benefit)",
        "P(difference > 50)",
        "new trial: difference",
    ):
        assert line in text
    saved = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert set(saved["absolute"]) >= {
        "control_risk",
        "per_1000_control",
        "per_1000_treatment",
        "difference_per_1000",
        "nnt",
        "p_difference_gt_mcid",
    }


def test_spec_control_risk_is_checked_before_sampling(tmp_path):
    import contextlib
    import io

    from trialsynth.cli import main

    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nsource = "ivig_rm"\n[analysis]\ncontrol_risk = 1.5\n')
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(spec), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "[analysis]: control risk must lie strictly between 0 and 1" in err.getvalue()


def test_notebook_display_and_tidy_frame(ivig_exact):
    attach_absolute(ivig_exact, control_risk=0.5, mcid=50)
    s = ivig_exact.summary()
    frame = ivig_exact.to_dataframe()
    row = frame.set_index("quantity").loc["or"]
    assert (row["median"], row["q025"], row["q975"]) == (
        s["or"]["median"],
        s["or"]["q025"],
        s["or"]["q975"],
    )
    diff = frame.set_index("quantity").loc["difference_per_1000"]
    assert diff["median"] == s["absolute"]["difference_per_1000"]["median"]
    assert len(frame) == 5 + s["k"] + 2 + 3 + 2
    html = ivig_exact._repr_html_()
    assert "<table>" in html and "pooled OR" in html and "exact computation" in html
    assert f"{s['or']['median']:.2f}" in html and "difference per 1000" in html
