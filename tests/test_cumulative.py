"""Cumulative meta-analysis (`analysis.cumulative`, ``trialsynth cumulative``).

References: separate fits of the first k trials (the exact engine: identical numbers; MCMC:
within Monte Carlo error) and :func:`trialsynth.core.frequentist.random_effects` for the
classical cumulative DerSimonian-Laird estimate.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import run_cli
from trialsynth.analysis.cumulative import (
    CumulativeError,
    cumulative,
    reordered,
    trial_order,
)
from trialsynth.core.frequentist import random_effects
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.engines import mcmc
from trialsynth.engines.diagnostics import probability_mcse
from trialsynth.models.spec import ModelSpec
from trialsynth.results.fitting import fit

NORMAL = ModelSpec(likelihood="normal")
#: Agreement in Monte Carlo standard errors (a 4-MCSE miss has probability 6e-5).
N_MCSE = 4.0


@pytest.fixture(scope="module")
def ivig():
    return load("ivig_rm")


@pytest.fixture(scope="module")
def exact_cum(ivig):
    return cumulative(ivig, spec=NORMAL)


def test_order_is_by_year_with_ties_in_file_order(ivig):
    order = trial_order(ivig, "year")
    years = ivig.covariates["year"].to_numpy()[order]
    assert list(years) == sorted(years)
    # Christiansen 1995 and Coulam 1995 share a year: file order kept
    names = [ivig.study[i] for i in order]
    assert names.index("Christiansen 1995") < names.index("Coulam 1995")


def test_exact_rows_equal_separate_exact_fits(ivig, exact_cum):
    assert exact_cum.engine == "exact" and len(exact_cum.steps) == ivig.k
    data = reordered(ivig, trial_order(ivig, "year"))
    for step in exact_cum.steps:
        first = reordered(data, list(range(step.k)))
        s = fit(first, spec=NORMAL, engine="exact").summary()
        assert step.added == first.study[-1]
        assert step.p_mu_gt_0 == s["p_mu_gt_0"]
        assert step.p_theta_new_gt_0 == s["p_theta_new_gt_0"]
        assert step.odds_ratio["median"] == pytest.approx(s["or"]["median"], rel=1e-12)
        assert step.odds_ratio["q975"] == pytest.approx(s["or"]["q975"], rel=1e-12)
        assert step.tau["median"] == pytest.approx(s["tau"]["median"], rel=1e-12)


def test_classical_rows_equal_direct_dl(ivig, exact_cum):
    data = reordered(ivig, trial_order(ivig, "year"))
    lor = data.contrasts()
    for step in exact_cum.steps[1:]:
        r = random_effects(lor.y[: step.k], lor.se[: step.k], method="DL")
        assert step.classical["or"] == pytest.approx(math.exp(r.estimate), rel=1e-12)
        assert step.classical["lower"] == pytest.approx(math.exp(r.ci_lower), rel=1e-12)
    one = exact_cum.steps[0].classical  # one trial: its own Wald interval
    assert one["or"] == pytest.approx(math.exp(lor.y[0])) and one["tau"] == 0.0


def test_order_by_another_column_and_bad_orders(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "study,events_t,n_t,events_c,n_c,published\n"
        "a,5,20,3,20,2003-05\nb,6,20,4,20,2001-11\nc,7,20,5,20,2002-01\n"
    )
    data = load(str(csv))
    res = cumulative(data, spec=NORMAL, order="published")
    assert [s.added for s in res.steps] == ["b", "c", "a"]
    assert res.steps[0].year is None and res.steps[0].order_value == "2001-11"
    with pytest.raises(CumulativeError, match="no column 'date'; columns: published"):
        cumulative(data, spec=NORMAL, order="date")
    csv.write_text("study,events_t,n_t,events_c,n_c,year\na,5,20,3,20,2003\nb,6,20,4,20,\n")
    with pytest.raises(CumulativeError, match=r"--order 'year': row 2 \(b\) has no year"):
        cumulative(load(str(csv)), spec=NORMAL)


def test_cli_json_rows_and_outputs(tmp_path):
    code, out, err = run_cli(
        ["cumulative", "ivig_rm", "--model", "normal-normal", "--json", "--out", str(tmp_path)]
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [r["k"] for r in rows] == list(range(1, 9))
    for key in ("k", "added", "year", "or", "tau", "p_mu_gt_0", "p_theta_new_gt_0"):
        assert key in rows[0]
    assert rows[0]["year"] == 1994 and rows[-1]["year"] == 2015
    assert json.loads((tmp_path / "cumulative.json").read_text()) == rows
    assert (tmp_path / "cumulative_forest.png").stat().st_size > 0
    assert (tmp_path / "cumulative_years.png").stat().st_size > 0


def test_cli_bad_order_is_one_line():
    code, _, err = run_cli(["cumulative", "ivig_rm", "--model", "normal-normal", "--order", "x"])
    assert code == 2 and "no column 'x'" in err and len(err.strip().splitlines()) == 1


def test_cli_table_and_spec(tmp_path):
    spec = tmp_path / "a.toml"
    spec.write_text(
        '[data]\nsource = "ivig_rm"\nexclude = ["Perino 1997"]\n'
        '[model]\nmodel = "normal-normal"\n[priors]\ntau = "half-normal(0.3)"\n'
    )
    code, out, err = run_cli(["cumulative", str(spec)])
    assert code == 0, err
    assert "half-normal(0.3)" in out and "Perino" not in out and "exact computation" in out


def test_figures_structure(exact_cum):
    from trialsynth.report.figures_design import (
        cumulative_forest_plot,
        cumulative_probability_plot,
    )

    fig = cumulative_forest_plot(exact_cum)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "+ German RSA/IVIG Group 1994 (1994)" and len(labels) == 8
    fig = cumulative_probability_plot(exact_cum)
    assert len(fig.axes) == 2
    assert {"P(OR > 1)", "P(OR_new > 1)"} <= {ln.get_label() for ln in fig.axes[0].get_lines()}


@pytest.mark.mcmc
@pytest.mark.slow
def test_mcmc_rows_equal_separate_fits_within_mcse(ivig):
    """One compiled model for every step; steps 2 and 5 against separate fits."""
    settings = SamplerSettings(draws=1000, tune=500, seed=4)
    before = len(mcmc._COMPILED)
    res = cumulative(ivig, settings=settings)
    assert len(mcmc._COMPILED) <= before + 1  # every step reused one compiled model
    data = reordered(ivig, trial_order(ivig, "year"))
    for k in (2, 5):
        step = res.steps[k - 1]
        sep = fit(reordered(data, list(range(k))), settings=settings)
        mu = sep.draws("mu")
        p, m = float(np.mean(mu > 0)), probability_mcse(mu > 0)
        assert step.status == "ok" and sep.ok
        assert abs(step.p_mu_gt_0 - p) < N_MCSE * math.hypot(m, step.mcse["p_mu_gt_0"])
