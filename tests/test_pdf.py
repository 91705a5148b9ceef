"""report.pdf (headless Chromium's print of report.html) and figures as vector PDF.

Checked by rendering every page with pdftoppm (poppler-utils): each page must carry ink, and
the text layer must hold every section heading of report.html (the same content). Skipped,
saying why, where chromium or poppler-utils is missing (.ci/run installs both).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from trialsynth.report.context import SECTIONS
from trialsynth.report.pdf import PdfError, browser, parse_formats

TOOLS = ("pdftoppm", "pdftotext", "pdffonts", "pdfimages")
have_tools = all(shutil.which(t) for t in TOOLS)
try:
    browser()
    have_browser = True
except PdfError:
    have_browser = False
needs_pdf = pytest.mark.skipif(
    not (have_tools and have_browser), reason="needs chromium and poppler-utils (see .ci/run)"
)
#: A page counts as non-blank when more than this share of its pixels is not white (a page
#: holding a single short line of text has about 0.3% at 50 dpi).
INK_MIN = 0.001


@pytest.fixture(scope="module")
def run_out(tmp_path_factory) -> tuple[Path, str]:
    """``run`` of an exact IVIg spec with absolute effects into ``--format html,md,pdf``.

    Returns the output folder and what ``run`` printed.
    """
    tmp = tmp_path_factory.mktemp("pdf")
    spec = tmp / "s.toml"
    spec.write_text(
        '[data]\nsource = "ivig_rm"\n[model]\nmodel = "normal-normal"\n'
        "[analysis]\ncontrol_risk = 0.5\nmcid = 50\n"
    )
    folder = tmp / "o"
    args = ["run", spec, "--out", folder, "--format", "html,md,pdf", "--figure-format", "pdf"]
    code, out, err = run_cli(args)
    assert code == 0, err
    return folder, out


@pytest.fixture(scope="module")
def report(run_out) -> Path:
    """The folder ``run`` wrote its report into."""
    return run_out[0]


@needs_pdf
def test_every_page_is_rendered_and_non_blank(report, tmp_path):
    import matplotlib.image as mpimg

    pdf = report / "report.pdf"
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) >= 3  # paginated, not one long page
    for page in pages:
        img = mpimg.imread(page)[..., :3]
        ink = np.mean(img.min(axis=-1) < 0.95)
        assert ink > INK_MIN, f"{page.name} is blank ({ink:.4%} ink)"


@needs_pdf
def test_pdf_has_the_content_of_report_html(report):
    text = subprocess.run(
        ["pdftotext", str(report / "report.pdf"), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    flat = " ".join(text.split())
    for _, heading in SECTIONS:
        assert heading in flat, heading
    assert "Summary of findings" in flat and "the grade is the panel's judgement" in flat
    fonts = subprocess.run(
        ["pdffonts", str(report / "report.pdf")], check=True, capture_output=True, text=True
    ).stdout.splitlines()[2:]
    assert fonts and all(" yes " in line for line in fonts)  # every font embedded


@needs_pdf
def test_figures_as_vector_pdf_with_embedded_fonts(report):
    pdfs = sorted((report / "figures").glob("*.pdf"))
    assert {p.stem for p in pdfs} == {p.stem for p in (report / "figures").glob("*.svg")}
    for pdf in pdfs:
        fonts = subprocess.run(
            ["pdffonts", str(pdf)], check=True, capture_output=True, text=True
        ).stdout.splitlines()[2:]
        assert fonts and all("TrueType" in f and " yes " in f for f in fonts), pdf.name
        images = subprocess.run(
            ["pdfimages", "-list", str(pdf)], check=True, capture_output=True, text=True
        ).stdout.splitlines()[2:]
        assert images == [], f"{pdf.name} holds raster images: not vector"


def test_format_lists_are_checked():
    assert parse_formats("html, pdf,html", ("html", "md", "pdf"), "--format") == ("html", "pdf")
    with pytest.raises(PdfError, match="--format: unknown format 'docx'; valid: html, md, pdf"):
        parse_formats("html,docx", ("html", "md", "pdf"), "--format")


def test_an_unknown_figure_format_is_bad_input_at_the_command_line(tmp_path):
    code, _, err = run_cli(["report", str(tmp_path), "--figure-format", "svg,gif"])
    assert code == 2
    assert err.strip() == (
        "trialsynth: error: --figure-format: unknown format 'gif'; valid: png, svg, pdf "
        "(comma-separated)"
    )


@needs_pdf
def test_run_writes_pdf_report_and_figures(run_out) -> None:
    folder, out = run_out
    assert (folder / "report.pdf").stat().st_size > 0 and (folder / "sof.csv").is_file()
    assert (folder / "figures" / "forest.pdf").is_file()
    assert "P(difference > 50)" in out
