"""The report's updated-meta future-trial text and its cumulative section (``[cumulative]``)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from trialsynth.analysis.cumulative import cumulative
from trialsynth.analysis.updated_meta import design_updated
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.models.spec import ModelSpec
from trialsynth.report import report as rep
from trialsynth.results.fitting import fit


def _spec(tmp_path, order="year"):
    path = tmp_path / "cum.toml"
    path.write_text(
        '[analysis]\nname = "cum"\n[data]\nsource = "ivig_rm"\n[model]\nmodel = "normal-normal"\n'
        f'[cumulative]\norder = "{order}"\n[output]\ndir = "{tmp_path / "out"}"\n'
    )
    return path


def test_spec_cumulative_section_in_the_report(tmp_path):
    code, _, err = run_cli(["run", str(_spec(tmp_path))])
    assert code == 0, err
    out = tmp_path / "out"
    md = (out / "report.md").read_text()
    section = md[md.index("## The evidence over time") : md.index("## Reproducibility")]
    cum = cumulative(load("ivig_rm"), spec=ModelSpec(likelihood="normal"))
    for s in cum.steps:
        assert f"| {s.k} | {s.order_value} | {s.added} |" in section
        assert f"| {s.p_mu_gt_0:.3f} | {s.p_theta_new_gt_0:.3f} |" in section
    assert "![Cumulative forest plot](figures/cumulative_forest.svg)" in section
    ctx = json.loads((out / "report.json").read_text())
    assert [s["id"] for s in ctx["sections"]][-2:] == ["cumulative", "reproducibility"]
    html = (out / "report.html").read_text()
    assert '<section id="cumulative">' in html and 'href="#cumulative"' in html
    # the report re-renders from its report.json
    assert rep.render_markdown(ctx) == md


def test_spec_bad_cumulative_order_is_one_line_before_fitting(tmp_path):
    code, _, err = run_cli(["run", str(_spec(tmp_path, order="date"))])
    *notes, line = err.strip().splitlines()
    assert code == 2 and all(n.startswith("note:") for n in notes)
    assert line.startswith("trialsynth: error: ") and "[cumulative] order 'date'" in line
    assert "the data have no column 'date'; columns: year," in line
    assert not (tmp_path / "out" / "posterior.nc").exists()


def test_spec_without_cumulative_has_no_section(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text('[data]\nsource = "ivig_rm"\n[model]\nmodel = "normal-normal"\n')
    from trialsynth.models.analysis import load_spec

    assert load_spec(path).cumulative is None
    assert load_spec(_spec(tmp_path)).cumulative == "year"


@pytest.mark.mcmc
def test_future_section_has_the_three_curves(tmp_path):
    res = fit(load("ivig_rm_secondary"), settings=SamplerSettings(draws=1000, tune=500, seed=3))
    files = rep.write_report(res, tmp_path)
    md = files.markdown.read_text()
    section = md[md.index("### The new trial in the updated meta-analysis") :]
    section = section[: section.index("## Reproducibility")]
    d = design_updated(res, list(rep.ASSURANCE_SIZES))  # same seed: same numbers
    assert "a guideline panel would need" in section
    for p in d.points:
        c = p.curves
        assert (
            f"| {p.n_per_arm} | {c['two-sided-test'].assurance:.3f} \u00b1 "
            f"{c['two-sided-test'].mcse:.3f} | {c['updated-meta'].assurance:.3f} \u00b1 "
            f"{c['updated-meta'].mcse:.3f} |"
        ) in section
    assert "figures/future_updated.svg" in section and "figures/conclusion_map.svg" in section
