"""``trialsynth report FIT``: the report of a saved fit."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from trialsynth.cli import render


def report(
    fit_dir: Annotated[Path, typer.Argument(metavar="FIT", help="Output folder of fit/run.")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write the report here (default: the FIT folder)."),
    ] = None,
    formats: Annotated[
        str,
        typer.Option(
            "--format",
            help="Comma-separated: html, md, pdf (pdf: report.html printed to paginated "
            "A4 by headless Chromium; html and md are always written).",
        ),
    ] = "html,md",
    figure_formats: Annotated[
        str,
        typer.Option(
            "--figure-format",
            help="Comma-separated: svg, png (300 dpi), pdf (vector, fonts embedded); svg is "
            "always written (the report shows it).",
        ),
    ] = "svg",
) -> None:
    """Write report.html (self-contained), report.md and the figures of a saved fit."""
    from trialsynth.report.pdf import FIGURE_FORMATS, REPORT_FORMATS, parse_formats
    from trialsynth.workflow.outputs import report_folder

    kinds = parse_formats(formats, REPORT_FORMATS, "--format")
    fig_kinds = parse_formats(figure_formats, FIGURE_FORMATS, "--figure-format")
    t0 = time.perf_counter()
    files = report_folder(fit_dir, out_dir, formats=kinds, figure_formats=fig_kinds)
    written = ", ".join(
        ["report.html", "report.md", "report.json"]
        + (["report.pdf"] if "pdf" in kinds else [])
        + (["sof.csv"] if (files.folder / "sof.csv").is_file() else [])
    )
    render.out.print(
        f"wrote {files.folder}/ ({written}, figures/: {figures_text(files.figures)}) in "
        f"{time.perf_counter() - t0:.1f}s"
    )
    if json.loads(files.context.read_text(encoding="utf-8")).get("failed"):
        render.err.print(
            "[bold red]warning[/bold red]: this fit FAILED its convergence checks; "
            "the report says so at the top"
        )


def figures_text(figures: list[Path]) -> str:
    """``"10 figures as SVG and PNG"``: the formats the report holds.

    A reused report may hold more formats than were asked for.
    """
    held = {path.suffix.lstrip(".") for path in figures}
    kinds = " and ".join(k.upper() for k in ("svg", "png", "pdf") if k in held)
    return f"{len({path.stem for path in figures})} figures as {kinds}"


def register(app: typer.Typer) -> None:
    """Add ``report`` to the app."""
    app.command()(report)
