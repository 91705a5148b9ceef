"""``trialsynth bias DATA|FIT``: output, bias.json in a FIT folder, the report section, errors."""

from __future__ import annotations

import json
import math

import pytest

from conftest import run_cli
from trialsynth.report.bias_section import find_bias
from trialsynth.report.figures_bias import bias_figures


@pytest.fixture(scope="module")
def ivig_json() -> dict:
    code, out, err = run_cli(["bias", "ivig_rm", "--json"])
    assert code == 0, err
    return json.loads(out)  # strict JSON: no NaN or Infinity


def test_json_interface_keys(ivig_json: dict) -> None:
    j = ivig_json
    assert j["k"] == 8 and j["data"] == "ivig_rm" and len(j["models"]) == 36
    for m in j["models"]:
        assert {"effect", "heterogeneity", "bias", "prior_prob", "log_ml", "posterior_prob"} <= set(
            m
        )
        assert math.isfinite(m["log_ml"]) and m["converged"]
    for key in ("effect", "heterogeneity", "bias"):
        assert {"posterior_prob", "bf"} <= set(j["inclusion"][key])
    assert {"mu", "or", "tau", "p_mu_gt_0"} <= set(j["averaged"])
    assert j["priors"]["tau"] == "inverse-gamma(1.77, 0.55)"
    assert j["small_study"]["egger"]["k"] == 8 and "p" in j["small_study"]["peters"]


def test_ivig_numbers_are_the_ones_reported(ivig_json: dict) -> None:
    # notes/bias.md: BF effect 0.461, heterogeneity 0.596, bias 0.641 (quadrature, not
    # Monte Carlo: deterministic to the quadrature tolerance 1e-3 on each log ML)
    inc = ivig_json["inclusion"]
    assert inc["effect"]["bf"] == pytest.approx(0.461, abs=2e-3)
    assert inc["heterogeneity"]["bf"] == pytest.approx(0.596, abs=2e-3)
    assert inc["bias"]["bf"] == pytest.approx(0.641, abs=2e-3)
    # P(OR > 1) by quadrature: averaged 0.230, random effects without a bias model 0.796
    assert ivig_json["averaged"]["p_mu_gt_0"] == pytest.approx(0.230, abs=2e-3)
    assert ivig_json["unadjusted"]["p_mu_gt_0"] == pytest.approx(0.796, abs=2e-3)


def test_human_output(capsys) -> None:
    code, out, _ = run_cli(["bias", "ivig_rm_secondary", "--mu-prior", "normal(0, 1)"])
    assert code == 0
    assert "inclusion" in out and "model-averaged" in out and "Egger's test" in out
    assert "mu ~ normal(0, 1)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tau-prior", "normal(0, 1)"], "--tau-prior: 'normal(0, 1)' is not a valid tau prior"),
        (["--mu-prior", "flat()"], "mu prior flat() is improper"),
        (
            ["--tau-prior", "inverse-gamma(1)"],
            "--tau-prior: 'inverse-gamma(1)': inverse-gamma takes 2",
        ),
    ],
)
def test_bad_prior_is_one_line_exit_2(argv: list[str], message: str) -> None:
    code, out, err = run_cli(["bias", "ivig_rm", *argv])
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_fewer_than_three_trials(tmp_path) -> None:
    csv = tmp_path / "two.csv"
    csv.write_text("study,events_t,n_t,events_c,n_c\na,3,10,5,10\nb,4,12,6,11\n")
    code, _, err = run_cli(["bias", str(csv)])
    assert code == 2 and err.count("\n") == 1
    assert "2 trials left to analyse, at least 3 needed" in err


def test_fit_folder_gets_bias_json_and_a_report_section(tmp_path, ivig_json: dict) -> None:
    fit_dir = tmp_path / "fit"
    code, _, err = run_cli(
        ["fit", "ivig_rm", "--model", "normal-normal", "--engine", "exact", "--out", str(fit_dir)]
    )
    assert code == 0, err
    code, _, err = run_cli(["bias", str(fit_dir), "--json"])
    assert code == 0, err
    saved = json.loads((fit_dir / "bias.json").read_text())
    assert saved["fit"]["engine"] == "exact" and saved["fit"]["p_mu_gt_0"] > 0.5
    # the same trials as the dataset itself: the same evidence (deterministic quadrature)
    assert [m["log_ml"] for m in saved["models"]] == [m["log_ml"] for m in ivig_json["models"]]
    code, _, err = run_cli(["report", str(fit_dir)])
    assert code == 0, err
    ctx = json.loads((fit_dir / "report.json").read_text())
    ids = [s["id"] for s in ctx["sections"]]
    assert ids[ids.index("sensitivity") + 1] == "bias"
    assert ctx["bias"]["inclusion"][2]["component"] == "bias"
    assert {f["name"] for f in ctx["figures"] if f["section"] == "bias"} == {
        "bias_averaged",
        "bias_weights",
        "funnel",
    }
    assert "Small-study effects and publication bias" in (fit_dir / "report.md").read_text()
    # a bias.json of other data is not this fit's: ignored
    assert find_bias(fit_dir, "0" * 64) is None


def test_figures_are_drawn_from_the_json(ivig_json: dict) -> None:
    import matplotlib.pyplot as plt

    figs = bias_figures(ivig_json)
    try:
        assert [f[0] for f in figs] == ["bias_averaged", "bias_weights", "funnel"]
        averaged = figs[0][3].axes[0]
        assert len(averaged.get_lines()) == 2  # averaged and unadjusted densities
        weights = figs[1][3].axes[0]
        assert len(weights.get_lines()) == 6  # one step function per weight function
        funnel = figs[2][3].axes[0]
        assert funnel.collections[-1].get_offsets().shape == (8, 2)  # the 8 trials
    finally:
        for f in figs:
            plt.close(f[3])
