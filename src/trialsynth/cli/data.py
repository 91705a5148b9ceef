"""``trialsynth data FILE``: what a data file holds (outcomes, studies, detected columns).

For a RevMan 5 review or analysis export it lists the outcomes (number, name, type,
studies, RevMan's own pooled result); with ``--outcome`` (or when the file has one
outcome) also the trials of that outcome as they would be analysed. For a CSV or a
shipped dataset: the kind of table, the trials, the detected columns and the notices.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from trialsynth.data import TrialData

out = Console(soft_wrap=True)


#: Covariates with longer values are listed by name only (the table stays readable).
SHORT_VALUE = 16


def _trials_table(data: TrialData) -> Table:
    frame = data.to_frame()
    keep = [
        c
        for c in frame.columns
        if c not in data.covariates.columns or frame[c].astype(str).str.len().max() <= SHORT_VALUE
    ]
    frame = frame[keep]
    table = Table(title=f"{data.k} trials ({data.kind}-level)", title_justify="left")
    for col in frame.columns:
        table.add_column(str(col), justify="left" if frame[col].dtype == object else "right")
    for row in frame.itertuples(index=False):
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def _describe(data: TrialData) -> None:
    out.print(_trials_table(data))
    mapping = data.column_mapping
    if mapping:
        out.print(
            "detected columns: " + ", ".join(f"{std} <- {src}" for std, src in mapping.items())
        )
    cov = list(data.covariates.columns)
    out.print("covariates: " + (", ".join(cov) if cov else "(none)"))
    for notice in data.notices:
        out.print(f"[yellow]note[/yellow]: {notice}")


def data(
    source: Annotated[
        str, typer.Argument(metavar="FILE", help="CSV, RevMan 5 file (.rm5 or export), dataset.")
    ],
    outcome: Annotated[
        str | None,
        typer.Option(help="RevMan outcome C.O (e.g. 1.1) or its name: show its trials."),
    ] = None,
) -> None:
    """Show what a data file holds: outcomes (RevMan), trials, detected columns."""
    from trialsynth.data import load, revman  # imported when run: the CLI starts without pandas

    path = Path(source)
    if path.is_file() and revman.is_revman(path):
        review = revman.read_review(path)
        for line in revman.listing_lines(review):
            out.print(line, highlight=False)
        if outcome is None and len(review.outcomes) != 1:
            out.print("choose an outcome with --outcome C.O to see its trials")
            return
    _describe(load(source, outcome=outcome, min_trials=1))
