"""The self-contained report: sections, embedding, no network, currency of the committed
reports, the ``report`` command, and a real headless browser (Debian's chromium)."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import headless_chromium
from trialsynth.cli.app import main
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.engines.diagnostics import Diagnostics
from trialsynth.models.spec import ModelSpec
from trialsynth.report import context as ctxmod
from trialsynth.report import report as rep
from trialsynth.results.fitting import fit

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SMALL = SamplerSettings(draws=1000, tune=500, seed=20261125)
META = rep.analysis_meta(
    name="ivig_rm",
    title="IVIg vs placebo (test)",
    question="Does IVIg increase the odds of live birth?",
    treatment="IVIg",
    control="placebo",
    spec="models/ivig_rm.toml",
)
IMG_SRC = re.compile(r'<img src="([^"]*)"')


@pytest.fixture(scope="module")
def ivig(ivig_bn):
    """ivig_rm, binomial-normal, default priors (the conftest catalogue's fit)."""
    return ivig_bn


@pytest.fixture(scope="module")
def written(ivig, tmp_path_factory):
    """A report written once for the module's checks."""
    folder = tmp_path_factory.mktemp("report")
    return rep.write_report(ivig, folder, analysis=META)


def _failed(result):
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


# ------------------------------------------------------------------ content


def test_every_section_present_in_order(written) -> None:
    html = written.html.read_text()
    md = written.markdown.read_text()
    positions_html = [html.index(f'<section id="{sid}">') for sid, _ in ctxmod.SECTIONS]
    assert positions_html == sorted(positions_html)
    positions_md = [md.index(f"\n## {heading}\n") for _, heading in ctxmod.SECTIONS]
    assert positions_md == sorted(positions_md)
    stamp = f'<meta name="trialsynth-report-format" content="{ctxmod.REPORT_FORMAT}">'
    assert stamp in html
    assert md.startswith(f"<!-- trialsynth-report-format: {ctxmod.REPORT_FORMAT} -->")


def test_html_is_self_contained(written) -> None:
    html = written.html.read_text()
    ctx = json.loads(written.context.read_text())
    assert "http://" not in html and "https://" not in html  # no external URL at all
    assert "<link" not in html and "<script" not in html
    srcs = IMG_SRC.findall(html)
    assert len(srcs) == len(ctx["figures"]) >= 6
    for src, figure in zip(srcs, [f for s, _ in ctxmod.SECTIONS for f in ctx["figures"]
                                  if f["section"] == s], strict=True):  # fmt: skip
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1])
        assert svg == (written.folder / figure["svg"]).read_bytes()


def test_markdown_figures_are_files(written) -> None:
    md = written.markdown.read_text()
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert refs and all(r.endswith(".svg") for r in refs)  # PNG only when asked for
    for r in refs:
        path = written.folder / r
        assert path.read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_numbers_and_text_come_from_the_fit(ivig, written) -> None:
    s = ivig.summary()
    md = written.markdown.read_text()
    html = written.html.read_text()
    o = s["or"]
    pooled = f"Pooled OR {o['median']:.2f} [{o['q025']:.2f}, {o['q975']:.2f}]"
    assert pooled in md and pooled in html
    assert f"P(OR > 1) = {s['p_mu_gt_0']:.3f}" in md
    assert META["question"] in md and META["question"] in html
    # methods generated from the model, priors and sampler actually used
    methods = md[md.index("## Methods") : md.index("## Results")]
    for needle in (
        "binomial",
        "normal(0, 2.82)",
        "half-normal(0.5)",
        "normal(0, 5)",
        f"{SMALL.chains} chains of {SMALL.tune} tuning and {SMALL.draws} retained draws",
        f"seed {SMALL.seed}",
        "R-hat \u2264 1.01",
    ):
        assert needle in methods, needle
    # data table with provenance columns, and the excluded trial's notice
    assert "| confidence |" in md and "| source |" in md
    assert "excluded Stephenson 1998" in md
    # versions, seed, data hash
    assert s["data_sha256"] in md and s["versions"]["pymc"] in md


def test_future_trial_section(ivig, written) -> None:
    from trialsynth.analysis.assurance import design_trial

    md = written.markdown.read_text()
    section = md[md.index("## A future trial") : md.index("## Reproducibility")]
    design = design_trial(ivig, list(ctxmod.ASSURANCE_SIZES))  # same seed: same numbers
    for p in design.points:
        assert f"| {p.n_per_arm} | {p.assurance:.3f} \u00b1 {p.mcse:.3f} |" in section
    assert "![Assurance of a future trial](figures/assurance.svg)" in section
    assert design.criterion.describe() in section


def test_published_results_beside_ours(written) -> None:
    md = written.markdown.read_text()
    section = md[md.index("## Published results") : md.index("## Classical references")]
    assert "1.69 [0.72, 3.96]" in section  # the review's secondary-RM pooled OR
    assert "this analysis (Bayesian)" in section and "this analysis (classical)" in section


def test_shipped_published_copy_matches_shared() -> None:
    shared = ROOT.parent / "shared" / "data" / "ivig_rm" / "published.csv"
    if not shared.is_file():
        pytest.skip(f"{shared} not present on this machine (outside the repo)")
    rows = ctxmod.published_results("ivig_rm")
    import csv

    assert rows == list(csv.DictReader(shared.read_text(encoding="utf-8").splitlines()))
    assert ctxmod.published_results("ivig_rm_secondary") == rows
    assert ctxmod.published_results("bcg") == []


def test_failed_fit_is_loud(ivig, written, tmp_path) -> None:
    files = rep.write_report(_failed(ivig), tmp_path, analysis=META)
    md = files.markdown.read_text()
    html = files.html.read_text()
    assert md.index("CONVERGENCE FAILED") < md.index("## Question")
    assert html.index('id="convergence-failed"') < html.index('<section id="question">')
    assert "**FAIL**" in md and "3 divergent transition(s)" in md
    assert "CONVERGENCE FAILED" not in written.markdown.read_text()


def test_quadrature_error_is_shown_as_its_order() -> None:
    # the estimate near machine precision is rounding noise: 3.2e-14 on one CPU kind and
    # 3.3e-14 on another must print the same report
    assert ctxmod._order_bound(3.2e-14) == ctxmod._order_bound(3.3e-14) == "below 1e-13"
    assert ctxmod._order_bound(2.0e-5) == "below 1e-4"
    assert ctxmod._order_bound(0.0) == "0"


def test_exact_fit_report(tmp_path) -> None:
    data = load("crins2014")
    res = fit(
        data, spec=ModelSpec.from_options("normal-normal", data_kind=data.kind), engine="exact"
    )
    meta = rep.analysis_meta(name="crins2014")
    files = rep.write_report(res, tmp_path, analysis=meta, figure_formats=("svg", "png"))
    md = files.markdown.read_text()
    ctx = json.loads(files.context.read_text())
    # no chains: no rank/trace figures, no MCSE, and the report says why
    assert [f["name"] for f in ctx["figures"]] == ["forest", "posterior", "tau", "benefit"]
    assert "Exact computation: no Markov chains" in md
    assert "No-U-Turn" not in md and "computed exactly" in md
    tables = [ln for ln in md[md.index("## Results") :].splitlines() if ln.startswith("|")]
    assert tables and not any("\u00b1" in ln for ln in tables)
    assert "No question was stated" in md
    assert "normal-likelihood fit carries no control-arm rate" in md
    assert "No published results are shipped for `crins2014`" in md
    # PNGs asked for: report.md shows them (300 dpi) and links the SVGs
    assert "![Forest plot](figures/forest.png)" in md and "[SVG](figures/forest.svg)" in md
    from PIL import Image

    with Image.open(tmp_path / "figures" / "tau.png") as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert sorted(p.name for p in files.figures if p.suffix == ".png") == [
        "benefit.png", "forest.png", "posterior.png", "tau.png"
    ]  # fmt: skip
    # the default: SVG only, and the PNGs of the report before are gone, not stale
    files = rep.write_report(res, tmp_path, analysis=meta)
    assert {p.suffix for p in files.figures} == {".svg"}
    assert not list((tmp_path / "figures").glob("*.png"))
    md = files.markdown.read_text()
    assert "![Forest plot](figures/forest.svg)" in md and "Also as [SVG]" not in md


def test_report_command_says_which_figure_formats_the_report_holds() -> None:
    from trialsynth.cli.report import figures_text

    names = ["figures/forest.svg", "figures/forest.png", "figures/tau.png", "figures/tau.svg"]
    assert figures_text([Path(n) for n in names]) == "2 figures as SVG and PNG"
    assert figures_text([Path("figures/forest.svg")]) == "1 figures as SVG"


def test_is_current_asks_for_every_figure_format(tmp_path) -> None:
    from trialsynth import __version__

    figures = [{"name": "tau", "svg": "figures/tau.svg"}]
    ctx = {"format": ctxmod.REPORT_FORMAT, "trialsynth": __version__, "figures": figures}
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "tau.svg").write_text("<svg/>")
    (tmp_path / "report.html").write_text("<html></html>")
    (tmp_path / "report.json").write_text(json.dumps(ctx))
    assert rep.is_current(tmp_path) and rep.is_current(tmp_path, None, ("svg",))
    assert not rep.is_current(tmp_path, None, ("svg", "png"))  # no PNG: draw again
    figures[0]["png"] = "figures/tau.png"
    (tmp_path / "report.json").write_text(json.dumps(ctx))
    assert not rep.is_current(tmp_path, None, ("png",))  # listed, but the file is missing
    (tmp_path / "figures" / "tau.png").write_bytes(b"\x89PNG")
    assert rep.is_current(tmp_path, None, ("png",))


def test_sensitivity_section(ivig, tmp_path) -> None:
    s = ivig.summary()
    keys = ("or", "or_new", "tau", "p_mu_gt_0", "p_theta_new_gt_0", "diagnostics", "mcse")
    main_row = {
        "scenario": 0,
        "label": "main: tau half-normal(0.5)",
        "main": True,
        "settings": {"tau": "half-normal(0.5)"},
        "status": "ok",
        "psense": [
            {"variable": "mu", "prior": 0.013, "likelihood": 0.056, "diagnosis": "ok"},
            {
                "variable": "tau",
                "prior": 0.12,
                "likelihood": 0.083,
                "diagnosis": "potential prior-data conflict",
            },
        ],
        **{k: s[k] for k in keys},
    }
    failed_row = {
        "scenario": 1,
        "label": "tau half-cauchy(5)",
        "main": False,
        "settings": {"tau": "half-cauchy(5)"},
        "status": "failed",
        "error": "2 divergent transition(s)",
    }
    folder = tmp_path / "fit"
    (folder / "sensitivity").mkdir(parents=True)
    (folder / "sensitivity" / "sensitivity.json").write_text(json.dumps([main_row, failed_row]))
    rows = ctxmod.find_sensitivity(folder)
    files = rep.write_report(ivig, folder, analysis=META, sensitivity=rows)
    md = files.markdown.read_text()
    section = md[md.index("## Sensitivity analyses") : md.index("## Reproducibility")]
    o = s["or"]
    assert f"| **main: tau half-normal(0.5)** | **{o['median']:.2f} [" in section
    assert "| tau half-cauchy(5) |" in section and "failed: 2 divergent transition(s)" in section
    assert "| tau | 0.120 | 0.083 | **potential prior-data conflict** |" in section
    assert "![Sensitivity](figures/sensitivity.svg)" in section
    assert 'data-figure="sensitivity"' in files.html.read_text()
    bad = tmp_path / "bad"
    (bad / "sensitivity").mkdir(parents=True)
    (bad / "sensitivity" / "sensitivity.json").write_text("{not json")
    with pytest.raises(ctxmod.ReportError, match=r"sensitivity\.json: not valid JSON"):
        ctxmod.find_sensitivity(bad)


def test_render_is_a_pure_function_of_report_json(written) -> None:
    ctx = json.loads(written.context.read_text())
    assert rep.render_markdown(ctx) == written.markdown.read_text()
    assert rep.render_html(ctx, written.folder) == written.html.read_text()


# ------------------------------------------------------------------ committed reports


@pytest.mark.parametrize("name", ["ivig_rm", "ivig_rm_secondary"])
def test_committed_report_is_current(name) -> None:
    """reports/<name>/ re-renders byte for byte from its report.json with today's code.

    A template or section change without regenerating the committed report fails here:
    regenerate with `.venv/bin/trialsynth run models/<name>.toml`.
    """
    folder = ROOT / "reports" / name
    ctx = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert ctx["format"] == ctxmod.REPORT_FORMAT
    assert [(s["id"], s["heading"]) for s in ctx["sections"]] == list(ctxmod.SECTIONS)
    assert rep.render_markdown(ctx) == (folder / "report.md").read_text(encoding="utf-8")
    assert rep.render_html(ctx, folder) == (folder / "report.html").read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert ctx["summary"] == summary
    for f in ctx["figures"]:
        assert all((folder / f[k]).is_file() for k in ("svg", "png", "pdf") if k in f)


def _report_files(folder: Path) -> dict[str, bytes]:
    names = ["report.json", "report.md", "report.html", "figures"]
    paths = [p for n in names for p in ([folder / n] if n != "figures" else (folder / n).iterdir())]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(paths)}


def test_report_of_an_unchanged_fit_is_reused(tmp_path) -> None:
    """A second ``report FIT`` of the same inputs re-renders the stored report: same bytes."""
    from trialsynth.report.stamp import STAMP_FILE, input_stamp, reusable

    data = load("crins2014")
    res = fit(
        data, spec=ModelSpec.from_options("normal-normal", data_kind=data.kind), engine="exact"
    )
    fit_dir = tmp_path / "fit"
    res.save(fit_dir)
    rep.write_analysis_meta(fit_dir, rep.analysis_meta(name="crins2014", question="Q1?"))
    first = rep.report_from_folder(fit_dir)
    assert "figures_s" in first.timings and (fit_dir / STAMP_FILE).is_file()
    stale = tmp_path / "copy" / "figures" / "old.png"  # listed by an older report there
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    (tmp_path / "copy" / "report.json").write_text(
        json.dumps({"figures": [{"name": "old", "png": "figures/old.png"}]})
    )
    reused = rep.report_from_folder(fit_dir, tmp_path / "copy")
    assert "reused_s" in reused.timings and "figures_s" not in reused.timings
    assert not stale.exists()
    # an edited copy is not reused: the intact report of the FIT folder is copied again
    edited = tmp_path / "copy" / "report.json"
    edited.write_text(edited.read_text().replace("crins2014", "edited"))
    assert "reused_s" in rep.report_from_folder(fit_dir, tmp_path / "copy").timings
    assert edited.read_bytes() == (fit_dir / "report.json").read_bytes()
    # the reused copy is byte for byte what a full redraw writes
    (fit_dir / STAMP_FILE).unlink()
    redrawn = rep.report_from_folder(fit_dir, tmp_path / "redrawn")
    assert "figures_s" in redrawn.timings
    assert _report_files(tmp_path / "copy") == _report_files(tmp_path / "redrawn")
    # the check report_from_folder asks (above: reused, redrawn): a changed input (the
    # question in analysis.json) is not reused from either folder
    current = input_stamp(fit_dir, ())
    assert reusable(tmp_path / "redrawn", current) is not None
    rep.write_analysis_meta(fit_dir, rep.analysis_meta(name="crins2014", question="Q2?"))
    changed = input_stamp(fit_dir, ())
    assert reusable(tmp_path / "redrawn", changed) is None and reusable(fit_dir, changed) is None
    # nor is a report missing one of its figures
    (tmp_path / "redrawn" / "figures" / "tau.svg").unlink()
    assert reusable(tmp_path / "redrawn", current) is None


# ------------------------------------------------------------------ command line


def test_report_command_from_saved_fit(ivig, tmp_path, capsys) -> None:
    fit_dir = tmp_path / "fit"
    ivig.save(fit_dir)
    rep.write_analysis_meta(fit_dir, META)
    # without --out the report goes into the FIT folder itself
    assert main(["report", str(fit_dir)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert META["question"] in (fit_dir / "report.md").read_text()  # from analysis.json
    # with --out it goes there (the FIT folder's report is current: copied and re-rendered)
    code = main(["report", str(fit_dir), "--out", str(tmp_path / "out")])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    md = (tmp_path / "out" / "report.md").read_text()
    assert META["question"] in md
    assert (tmp_path / "out" / "report.html").is_file()


SPEC = """
[analysis]
name = "ivig_small"
title = "IVIg (small run)"
question = "{question}"
treatment = "IVIg"
control = "placebo"

[data]
source = "ivig_rm"

[sampler]
draws = 300
tune = 300
seed = 3
"""


@pytest.mark.mcmc
def test_run_writes_the_report_and_refreshes_it(tmp_path, capsys) -> None:
    spec = tmp_path / "small.toml"
    out = tmp_path / "out"
    spec.write_text(SPEC.format(question="First question?"))
    assert main(["run", str(spec), "--out", str(out)]) == 0
    assert "First question?" in (out / "report.md").read_text()
    assert json.loads((out / "analysis.json").read_text())["question"] == "First question?"
    assert rep.is_current(out)
    # `report FIT` of the unchanged folder reuses the report `run` wrote (fit in memory);
    # that it equals a redraw from the saved fit is the slow test below
    reused = rep.report_from_folder(out, tmp_path / "copy")
    assert "reused_s" in reused.timings
    # an edited question: the saved fit is reused, the report is written again
    spec.write_text(SPEC.format(question="Second question?"))
    assert main(["run", str(spec), "--out", str(out)]) == 0
    assert "reusing the identical fit" in capsys.readouterr().err
    assert "Second question?" in (out / "report.md").read_text()
    # a report of another format is stale
    ctx = json.loads((out / "report.json").read_text())
    (out / "report.json").write_text(json.dumps(ctx | {"format": ctxmod.REPORT_FORMAT - 1}))
    assert not rep.is_current(out)
    assert not rep.is_current(tmp_path)  # no report at all


SENSITIVITY = """
[sensitivity]
model = ["normal-normal"]
tau = ["half-normal(0.5)", "half-normal(1)"]
"""


@pytest.mark.slow
@pytest.mark.mcmc
def test_report_run_wrote_equals_a_redraw_from_the_saved_fit(tmp_path) -> None:
    """The report `run` writes from the fit in memory is byte for byte a redraw's.

    Slow (two full reports of an MCMC fit, about 45 s); the default suite checks the same
    reuse-equals-redraw property on an exact fit (test_report_of_an_unchanged_fit_is_reused).
    """
    spec = tmp_path / "small.toml"
    out = tmp_path / "out"
    # with a [sensitivity] section `run` starts the future-trial analyses before the
    # scenarios (start_future_analyses); the redraw computes them inside write_report
    spec.write_text(SPEC.format(question="First question?") + SENSITIVITY)
    assert main(["run", str(spec), "--out", str(out)]) == 0
    assert "reused_s" in rep.report_from_folder(out, tmp_path / "copy").timings
    redraw = tmp_path / "redraw"
    redraw.mkdir()
    for name in ("posterior.nc", "summary.json", "summary.csv", "analysis.json"):
        shutil.copyfile(out / name, redraw / name)
    shutil.copytree(out / "sensitivity", redraw / "sensitivity")
    assert "figures_s" in rep.report_from_folder(redraw).timings
    assert _report_files(redraw) == _report_files(tmp_path / "copy")


def test_report_command_bad_folder(tmp_path, capsys) -> None:
    code = main(["report", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no posterior.nc" in err and "Traceback" not in err


# ------------------------------------------------------------------ headless browser

#: Counts the page's images and those that did not load (run once the load event fired).
PROBE = """() => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter((i) => !(i.complete && i.naturalWidth > 0));
  return 'images=' + imgs.length + ' broken=' + bad.length;
}"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless chromium for this module's checks; each opens its page in a fresh
    context, so one launch serves them all instead of a browser process per check."""
    with headless_chromium() as browser:
        yield browser


@contextlib.contextmanager
def _opened(chromium: Any, html: Path, **context: Any) -> Iterator[tuple[Any, list[str]]]:
    """``html`` loaded in a fresh context: the page, and every console message and error."""
    ctx = chromium.new_context(**context)
    try:
        page = ctx.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(html.as_uri(), wait_until="load")
        yield page, console
    finally:
        ctx.close()


def _browser_check(chromium: Any, html: Path) -> tuple[str, list[str]]:
    """Load ``html`` in chromium: the probe's result, the console messages and page errors."""
    with _opened(chromium, html) as (page, console):
        return page.evaluate(PROBE), console


def test_browser_check_detects_breakage(tmp_path, chromium) -> None:
    """The check below can fail: a broken image and a console error are both caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><img src="data:image/png;base64,AAAA">'
        "<script>console.error('boom');</script></body></html>"
    )
    probe, console = _browser_check(chromium, bad)
    assert probe == "images=1 broken=1"
    assert any("boom" in ln for ln in console)
    thrown = tmp_path / "thrown.html"
    thrown.write_text("<html><body><script>null.x;</script></body></html>")
    assert any(ln.startswith("pageerror: ") for ln in _browser_check(chromium, thrown)[1])


@pytest.mark.parametrize("name", ["ivig_rm", "ivig_rm_secondary"])
def test_committed_report_renders_in_headless_chromium(name, tmp_path, chromium) -> None:
    folder = ROOT / "reports" / name
    html = tmp_path / "report.html"  # a copy alone: nothing beside it to load from disk
    shutil.copy(folder / "report.html", html)
    ctx = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    probe, console = _browser_check(chromium, html)
    assert probe == f"images={len(ctx['figures'])} broken=0"
    assert console == []


def test_report_renders_in_headless_chromium(ivig, written, chromium) -> None:
    ctx = json.loads(written.context.read_text())
    probe, console = _browser_check(chromium, written.html)
    assert probe == f"images={len(ctx['figures'])} broken=0"
    assert console == []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    with _opened(chromium, written.html, viewport={"width": 1200, "height": 4000}) as (page, _):
        # the pooled OR text is in the rendered DOM
        o = ivig.summary()["or"]
        assert f"Pooled OR {o['median']:.2f} [{o['q025']:.2f}, {o['q975']:.2f}]" in page.content()
        page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
