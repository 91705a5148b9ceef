"""The error of the data layer: one line naming the source, the row and the column."""

from __future__ import annotations

from trialsynth.core.errors import TrialsynthError

__all__ = ["DataError", "located", "show"]


class DataError(TrialsynthError):
    """Invalid trial data or data source.

    ``str(err)`` is one line naming the source, the row and the column where they apply,
    and the rule, e.g. ``trials.csv row 3, column 'events_t': events (12) exceed the arm
    size n_t (10)``. Rows are 1-based data rows: ``row 3`` is the third data row after the
    header (blank lines are not counted).

    Attributes
    ----------
    source : str or None
        The file path as given, or the dataset name.
    row : int or None
        1-based data row, or None when the problem is not about one row.
    column : str or None
        The column as spelled in the file, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(" ".join(str(message).splitlines()))
        self.source = source
        self.row = row
        self.column = column


def located(
    source: str, rule: str, *, row: int | None = None, column: str | None = None
) -> DataError:
    """Build a DataError with the standard ``SOURCE row R, column 'C': RULE`` layout."""
    where = source
    if row is not None:
        where += f" row {row}"
    if column is not None:
        where += f", column {column!r}" if row is not None else f" column {column!r}"
    return DataError(f"{where}: {rule}", source=source, row=row, column=column)


def show(text: str, limit: int = 40) -> str:
    """Quote a cell for a message, shortened."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)
