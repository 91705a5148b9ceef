"""``trialsynth query FIT EXPR...``: posterior probabilities from a saved fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialsynth.cli import render


def query(
    fit_dir: Annotated[Path, typer.Argument(metavar="FIT", help="Output folder of fit/run.")],
    expressions: Annotated[
        list[str], typer.Argument(metavar="EXPR...", help="e.g. 'P(OR > 1)' 'P(OR_new > 1)'")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per expression.")
    ] = False,
) -> None:
    """Posterior probabilities from a saved fit, without refitting."""
    from trialsynth.results.base import FitResult

    result = FitResult.load(fit_dir)
    answers = [result.ask(e) for e in expressions]
    if as_json:
        for a in answers:
            render.print_json(a.to_json(), indent=None)
        return
    render.print_answers(answers)
    if not result.ok:
        render.err.print("[bold red]warning[/bold red]: this fit FAILED its convergence checks")


def register(app: typer.Typer) -> None:
    """Add ``query`` to the app."""
    app.command()(query)
