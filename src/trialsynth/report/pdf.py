"""``report.pdf``: the paginated print of ``report.html``, and figures as vector PDF.

The PDF is made by headless Chromium's print-to-PDF from the very ``report.html`` the
report writes, with a print stylesheet added (A4 pages, margins, no table or figure split
across pages). Why Chromium: it is the browser the report's own HTML test already needs
(Debian's ``chromium``, installed by ``.ci/run``), so the PDF shows exactly what a reader
of ``report.html`` sees (same engine, same SVG figures, same fonts, which it embeds as
subsets); WeasyPrint would be a second renderer with its own CSS support and system
libraries (Pango) to install, for a copy that could differ from the HTML.

Figures as PDF (``--figure-format pdf``) are matplotlib's vector PDF with TrueType
(Type 42) fonts embedded, as journals ask.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from trialsynth.core.errors import TrialsynthError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Executables tried, in order, for headless printing.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Seconds a print may take before it is abandoned.
PRINT_TIMEOUT = 180
#: Added to the HTML for printing only (report.html itself is unchanged).
PRINT_CSS = """<style media="print">
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
body { max-width: none; margin: 0; font-size: 10pt; }
figure, tr, img, svg { break-inside: avoid; page-break-inside: avoid; }
h2, h3 { break-after: avoid; page-break-after: avoid; }
figure img { max-width: 100%; }
table { width: 100%; font-size: 8pt; }
td, th, td.num { white-space: normal; overflow-wrap: break-word; }
table.sof { font-size: 7pt; table-layout: fixed; }
</style>
"""
#: Formats ``--figure-format`` accepts. SVG is always written (the report shows it); PNG
#: (300 dpi) and PDF (vector, fonts embedded) are written when asked for.
FIGURE_FORMATS = ("png", "svg", "pdf")
DEFAULT_FIGURE_FORMATS = ("svg",)
REPORT_FORMATS = ("html", "md", "pdf")


class PdfError(TrialsynthError):
    """A PDF that cannot be made (one-line message)."""


def parse_formats(text: str, valid: tuple[str, ...], option: str) -> tuple[str, ...]:
    """``"html,md,pdf"`` -> ``("html", "md", "pdf")``, refusing unknown names."""
    names = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise PdfError(
            f"{option}: unknown format {bad[0] if bad else text!r}; valid: "
            f"{', '.join(valid)} (comma-separated)"
        )
    return names


def browser() -> str:
    """The headless browser used for printing, or a :class:`PdfError` saying how to get one."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise PdfError(
        "report.pdf needs headless Chromium to print report.html: install Debian's "
        "chromium (apt-get install chromium)"
    )


def html_to_pdf(html: Path, pdf: Path) -> Path:
    """Print ``html`` to ``pdf`` (A4, paginated) with headless Chromium."""
    text = html.read_text(encoding="utf-8")
    printable = text.replace("</head>", PRINT_CSS + "</head>", 1)
    with tempfile.TemporaryDirectory(prefix="trialsynth-pdf-") as tmp:
        page = Path(tmp) / "report.html"  # figures are data URIs: the copy stands alone
        page.write_text(printable, encoding="utf-8")
        out = Path(tmp) / "report.pdf"
        cmd = [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=10000",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PRINT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise PdfError(f"{pdf}: printing took longer than {PRINT_TIMEOUT} s") from None
        if not out.is_file() or out.stat().st_size == 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise PdfError(f"{pdf}: Chromium did not print the report ({last[:200]})")
        pdf.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, pdf)
    return pdf


def save_pdf_figure(fig: Figure, path: Path) -> Path:
    """Save ``fig`` as vector PDF with embedded TrueType fonts (no creation date)."""
    import matplotlib

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(path, format="pdf", metadata={"CreationDate": None, "Creator": None})
    return path
