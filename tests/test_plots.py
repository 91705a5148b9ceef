"""Report figures tested as structure (what was drawn, labels, rows, scales), not pixels."""

from __future__ import annotations

import json
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.patches import Polygon
from scipy import stats

from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.engines.diagnostics import Diagnostics
from trialsynth.models.spec import ModelSpec
from trialsynth.report import forest, plots, style
from trialsynth.results.exact import ExactFit
from trialsynth.results.fitting import fit
from trialsynth.results.queries import benefit_curve

SMALL = SamplerSettings(draws=1000, tune=500, seed=20261125)


@pytest.fixture(scope="module")
def ivig(ivig_bn):
    """ivig_rm, binomial-normal, default priors (the conftest catalogue's fit)."""
    return ivig_bn


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _failed(result):
    """The same fit marked as failing its convergence checks."""
    d = result.diagnostics
    bad = Diagnostics(
        r_hat_max=1.2,
        ess_bulk_min=d.ess_bulk_min,
        ess_tail_min=d.ess_tail_min,
        divergences=3,
        bfmi_min=d.bfmi_min,
        problems=("R-hat 1.200 > 1.01 (tau)", "3 divergent transition(s)"),
    )
    return replace(result, diagnostics=bad)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


# ------------------------------------------------------------------ forest plot


@pytest.mark.mcmc
def test_forest_rows_labels_and_log_axis(ivig) -> None:
    fig = forest.forest_plot(ivig, treatment="IVIg", control="placebo")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    k = len(ivig.studies)
    # one row per trial, then pooled and predictive rows, then MH / DL / REML
    assert len(labels) == k + 2 + 3
    assert [lab.rstrip(" *\u2020") for lab in labels[:k]] == ivig.studies
    assert labels[k : k + 2] == ["Pooled (random effects)", "Predicted for a new trial"]
    assert labels[k + 2 :] == [style.CLASSICAL_LABELS[m] for m in ("mh", "dl", "reml")]
    assert ax.get_xscale() == "log"
    assert "favours placebo" in ax.get_xlabel() and "favours IVIg" in ax.get_xlabel()
    # rows run top to bottom in data order
    ticks = ax.get_yticks()
    assert np.all(np.diff(ticks) < 0)


def test_forest_draws_the_summary_numbers(ivig) -> None:
    s = ivig.summary()
    fig = forest.forest_plot(ivig, treatment="IVIg", control="placebo")
    ax = fig.axes[0]
    k = len(ivig.studies)
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    # observed, shrunken, predictive, then one per classical estimator
    assert len(bars) == 3 + 3
    shrunken_x = bars[1].lines[0].get_xdata()
    np.testing.assert_allclose(shrunken_x, [t["or"]["median"] for t in s["theta"]], rtol=1e-12)
    assert bars[2].lines[0].get_xdata()[0] == pytest.approx(s["or_new"]["median"], rel=1e-12)
    for bar, m in zip(bars[3:], ("mh", "dl", "reml"), strict=True):
        assert bar.lines[0].get_xdata()[0] == pytest.approx(s["frequentist"][m]["or"], rel=1e-12)
    diamonds = [p for p in ax.patches if isinstance(p, Polygon)]
    assert len(diamonds) == 1
    xs = sorted(set(np.round(diamonds[0].get_xy()[:, 0], 12)))
    o = s["or"]
    np.testing.assert_allclose(xs, sorted({o["q025"], o["median"], o["q975"]}), rtol=1e-9)
    texts = _texts(fig)
    assert f"{o['median']:.2f} [{o['q025']:.2f}, {o['q975']:.2f}]" in texts
    assert "20/33" in texts and "21/31" in texts  # German RSA/IVIG Group 1994, events/total
    assert len(ax.get_yticklabels()) == k + 5


def test_forest_marks_data_confidence(ivig) -> None:
    frame = ivig.data_frame
    frame.loc[0, "confidence"] = "reconstructed"  # pretend the first row was reconstructed
    prov = dict(ivig.provenance, data_table=frame.to_json(orient="records"))
    fig = forest.forest_plot(replace(ivig, provenance=prov))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    conf = frame["confidence"].tolist()
    for label, c in zip(labels, conf, strict=False):
        assert label.endswith("\u2020") == (c == "reconstructed")
        assert label.endswith(" *") == (c == "medium")
    texts = _texts(fig)
    assert texts.count("reconstructed") == 1
    assert texts.count("from %") == conf.count("medium")
    assert texts.count("printed") == conf.count("high")
    # reconstructed rows are shaded as well as marked
    assert len([p for p in fig.axes[0].patches if not isinstance(p, Polygon)]) >= 1


def test_forest_classical_choice_and_bad_name(ivig) -> None:
    fig = forest.forest_plot(ivig, classical=())
    assert len(fig.axes[0].get_yticklabels()) == len(ivig.studies) + 2
    with pytest.raises(ValueError, match=r"unknown classical estimator 'bogus'; valid: mh, peto"):
        forest.forest_plot(ivig, classical=("mh", "bogus"))


def test_failed_fit_is_marked_on_every_figure(ivig) -> None:
    bad = _failed(ivig)
    for draw in (forest.forest_plot, plots.posterior_plot, plots.tau_plot, plots.benefit_plot):
        texts = " ".join(_texts(draw(bad)))
        assert "CONVERGENCE FAILED" in texts, draw.__name__
    assert "CONVERGENCE FAILED" not in " ".join(_texts(forest.forest_plot(ivig)))


# ------------------------------------------------------------------ densities and curves


def test_posterior_plot_overlays_the_mu_prior(ivig) -> None:
    fig = plots.posterior_plot(ivig, treatment="IVIg", control="placebo")
    left, right = fig.axes[:2]
    assert left.get_title() == "pooled OR" and right.get_title() == "OR of a new trial"
    assert left.get_xscale() == right.get_xscale() == "log"
    prior = [ln for ln in left.get_lines() if ln.get_label().startswith("prior normal(0, 2.82)")]
    assert len(prior) == 1
    x, y = prior[0].get_xdata(), prior[0].get_ydata()
    # the drawn prior is the N(0, 2.82) density of log OR (exact up to float rounding)
    np.testing.assert_allclose(y, stats.norm(0, 2.82).pdf(np.log(x)), rtol=1e-9)
    assert any(ln.get_label() == "prior predictive" for ln in right.get_lines())
    post = next(ln for ln in left.get_lines() if ln.get_label() == "posterior")
    # a density of log OR integrates to 1 over log x; the grid covers all but ~0.4% of the
    # draws, and the kernel smooths a little mass past the ends: tolerance 0.02
    assert np.trapezoid(post.get_ydata(), np.log(post.get_xdata())) == pytest.approx(1, abs=0.02)


def test_tau_plot_prior_and_posterior(ivig) -> None:
    fig = plots.tau_plot(ivig)
    ax = fig.axes[0]
    prior = next(ln for ln in ax.get_lines() if ln.get_label().startswith("prior"))
    np.testing.assert_allclose(
        prior.get_ydata(), stats.halfnorm(scale=0.5).pdf(prior.get_xdata()), rtol=1e-9
    )
    post = next(ln for ln in ax.get_lines() if ln.get_label() == "posterior")
    # reflected kernel density on [0, 1.2 * q99.8]: mass beyond the grid is < 0.5%
    assert np.trapezoid(post.get_ydata(), post.get_xdata()) == pytest.approx(1, abs=0.02)
    assert ax.get_xlim()[0] == 0


def test_exact_fit_figures_draw_the_exact_marginals(monkeypatch) -> None:
    """An exact fit's posterior and tau curves are its marginals' densities, not a KDE."""
    from trialsynth.core.density import kde

    res = fit(load("ivig_rm"), spec=ModelSpec(likelihood="normal"), engine="exact")
    left = plots.posterior_plot(res).axes[0]
    post = next(ln for ln in left.get_lines() if ln.get_label() == "posterior")
    log_x = np.log(post.get_xdata())
    np.testing.assert_allclose(post.get_ydata(), res.marginal("mu").pdf(log_x), rtol=1e-12)
    tau_ax = plots.tau_plot(res).axes[0]
    tau = next(ln for ln in tau_ax.get_lines() if ln.get_label() == "posterior")
    np.testing.assert_allclose(tau.get_ydata(), res.marginal("tau").pdf(tau.get_xdata()))
    # the kernel density of the same draws agrees up to its smoothing bias and noise
    # (8000 iid draws: about 3% of the peak here, so 0.06 of the peak is a loose bound)
    smooth = kde(res.draws("mu"), log_x)
    assert np.max(np.abs(smooth - post.get_ydata())) < 0.06 * post.get_ydata().max()
    # a result without exact marginals (MCMC) is drawn with that kernel density
    monkeypatch.setattr(type(res), "marginal", lambda self, name, label=None: None)
    np.testing.assert_array_equal(res.density("mu", log_x), smooth)


def test_tau_plot_refuses_common_effect(ivig) -> None:
    prov = json.loads(json.dumps(ivig.provenance))
    prov["model"]["random_effects"] = None
    with pytest.raises(ValueError, match="common-effect fit has no heterogeneity"):
        plots.tau_plot(replace(ivig, provenance=prov))


def test_benefit_plot_matches_benefit_curve(ivig) -> None:
    c = np.geomspace(0.5, 2, 13)
    fig = plots.benefit_plot(ivig, thresholds=c, treatment="IVIg")
    ax = fig.axes[0]
    curve = benefit_curve(ivig, c)
    pooled = next(ln for ln in ax.get_lines() if ln.get_label().startswith("P(OR > c)"))
    new = next(ln for ln in ax.get_lines() if ln.get_label().startswith("P(OR_new > c)"))
    np.testing.assert_array_equal(pooled.get_ydata(), curve["p_or"].to_numpy())
    np.testing.assert_array_equal(new.get_ydata(), curve["p_or_new"].to_numpy())
    assert np.all(np.diff(pooled.get_ydata()) <= 0)  # P(OR > c) falls as c grows
    assert ax.get_xscale() == "log"
    s = ivig.summary()
    assert f"{s['p_mu_gt_0']:.2f}" in _texts(fig)


# ------------------------------------------------------------------ subgroups and diagnostics


def test_subgroup_plot_requires_subgroups(ivig) -> None:
    with pytest.raises(ValueError, match="no subgroups"):
        plots.subgroup_plot(ivig)


@pytest.mark.mcmc
def test_subgroup_plot_rows() -> None:
    data = load("ivig_rm")
    spec = ModelSpec(subgroup="population")
    res = fit(data, spec=spec, settings=SMALL, reusable=True)
    fig = plots.subgroup_plot(res, treatment="IVIg", control="placebo")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    groups = res.summary()["subgroups"]
    assert labels == [f"{g} (k = {v['k']})" for g, v in groups.items()] + [
        "Overall (average of subgroups)"
    ]
    assert sum(v["k"] for v in groups.values()) == len(res.studies)
    assert fig.axes[0].get_xscale() == "log"
    # on the forest plot of a subgroup fit, mu is the average of the subgroup means
    forest_fig = forest.forest_plot(res)
    k = len(res.studies)
    assert forest_fig.axes[0].get_yticklabels()[k].get_text() == "Average of subgroups"
    assert plots.hyperparameters(res) == ["mu_subgroup", "tau"]


def test_rank_and_trace_plots(ivig) -> None:
    fig = plots.rank_plot(ivig)
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_title())
    assert titles == ["mu", "tau"]
    # one ECDF line per chain and parameter
    n_lines = sum(len(ax.get_lines()) for ax in fig.axes)
    assert n_lines >= 2 * SMALL.chains
    fig = plots.trace_plot(ivig)
    assert len(fig.axes) == 4  # density and trace for mu and tau
    ylabels = {ax.get_ylabel() for ax in fig.axes}
    assert {"mu", "tau"} <= ylabels


def test_diagnostics_figures_need_chains(ivig) -> None:
    with pytest.raises(ValueError, match="need MCMC chains"):
        plots.rank_plot(ExactFit(tree=ivig.tree, provenance=ivig.provenance))


def test_save_figure_png_300dpi_svg_reproducible(ivig, tmp_path) -> None:
    fig = plots.tau_plot(ivig)
    assert set(style.save_figure(fig, tmp_path / "c", "tau")) == {"svg"}  # the default
    a = style.save_figure(fig, tmp_path / "a", "tau", png=True)
    b = style.save_figure(fig, tmp_path / "b", "tau", png=True)
    from PIL import Image

    with Image.open(a["png"]) as im:
        w, h = im.size
        assert (w, h) == tuple(round(v * 300) for v in fig.get_size_inches())
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert a["svg"].read_text().lstrip().startswith("<?xml")
    assert a["png"].read_bytes() == b["png"].read_bytes()
    assert a["svg"].read_bytes() == b["svg"].read_bytes()
