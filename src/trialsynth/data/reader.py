"""Reading and validating trial data: a CSV file or shipped dataset -> ArmData or ContrastData.

Three kinds of table are recognised from their columns (one row per trial; see
:mod:`trialsynth.data.columns`):

============================  ==========================================  ==================
input                         required columns                            type
============================  ==========================================  ==================
arm-level binary counts       ``study, events_t, n_t, events_c, n_c``     :class:`ArmData`
contrast-level estimates      ``study, log_or, se``                       :class:`ContrastData`
published estimates           ``study, or, lower, upper`` (95% interval)  :class:`ContrastData`
============================  ==========================================  ==================

Every other column is kept as a covariate.

Row numbers
-----------
Every message that points into a file names a *row*: ``row 3`` is the third data row after
the header row, counted the way a spreadsheet user sees it (the header is not counted and fully
blank lines are skipped, so in a file without blank lines ``row 3`` is on line 4). Messages
about a malformed line (wrong number of fields) also give the physical ``line``.

Missing values
--------------
An empty cell (or ``NA``) in a required numeric column *excludes* the row: it is recorded in
:attr:`TrialData.excluded` and reported in :attr:`TrialData.notices`, never dropped silently.
This applies whether both event counts are missing (reason ``per-arm events missing``, as for
Stephenson 1998 in ``ivig_rm``) or a single required cell is (reason ``missing n_c``, naming
the column as spelled in the file). A value that is present but invalid (``abc``, ``2.5`` for
a count, ``inf``) is an error, and so is a missing study name.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trialsynth.core import effects
from trialsynth.data import revman
from trialsynth.data.columns import ColumnPlan, norm, plan_columns
from trialsynth.data.errors import DataError, located, show
from trialsynth.data.shipped import read_source, shipped_columns
from trialsynth.data.trials import NUMBER_RE, ArmData, Exclusion, Kind, TrialData, trial_type

__all__ = ["load"]

_INT_RE = re.compile(r"[+-]?\d+")
_NONFINITE = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
_MISSING = frozenset({"", "na", "n/a"})
# A number written with thousands separators ("1,000", "12 345", "1'000", "1_000").
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:([,' _])\d{3})(?:\1\d{3})*(?:\.\d+)?")
# The two halves of such a number when an unquoted comma split it into fields.
_GROUP_HEAD_RE = re.compile(r"[+-]?\d{1,3}")
_GROUP_TAIL_RE = re.compile(r"\d{3}(?:\.\d+)?")


@dataclass(frozen=True)
class _Record:
    row: int
    line: int
    cells: list[str]


def _blank(cells: list[str]) -> bool:
    return all(not c.strip() for c in cells)


# ---------------------------------------------------------------------- splitting the file


def _decode(raw: bytes, label: str) -> str:
    """UTF-8 text (a BOM allowed) that is not empty and not binary."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise located(
            label,
            f"line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); the file must be "
            "UTF-8 encoded (a byte-order mark is fine): re-save it as 'CSV UTF-8'",
        ) from None
    if not text.strip():
        raise located(label, "the file is empty (expected a header row and one row per trial)")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise located(
            label,
            f"line {line} contains a NUL byte: this is not a text CSV file (a spreadsheet or "
            "UTF-16 file? save it as 'CSV UTF-8'",
        )
    return text


def _split(text: str, label: str) -> tuple[list[str], list[_Record]]:
    """The stripped header and the non-blank data records, as the CSV module reads them."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    header: list[str] | None = None
    records: list[_Record] = []
    previous_line = 0
    try:
        for cells in reader:
            start = previous_line + 1
            previous_line = reader.line_num
            if _blank(cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                continue
            records.append(_Record(len(records) + 1, start, cells))
    except csv.Error as exc:
        raise located(label, f"line {reader.line_num}: malformed CSV ({exc})") from None
    if header is None:  # only empty fields, e.g. a line of commas
        raise located(label, "the file has no header row (every line is empty or only commas)")
    if not records:
        raise located(label, "the file has a header row but no data rows")
    return header, records


def _check_widths(width: int, records: list[_Record], label: str) -> None:
    """Every record as wide as the header (trailing empty fields are dropped)."""
    for rec in records:
        n = len(rec.cells)
        if n > width and _blank(rec.cells[width:]):
            del rec.cells[width:]  # trailing empty fields (spreadsheet padding)
        elif n != width:
            hint = ""
            if n > width and any(
                _GROUP_HEAD_RE.fullmatch(a.strip()) and _GROUP_TAIL_RE.fullmatch(b.strip())
                for a, b in zip(rec.cells, rec.cells[1:], strict=False)
            ):
                hint = (
                    " (a number with a thousands separator, e.g. 1,000, splits into two fields:"
                    " write 1000)"
                )
            raise located(
                label,
                f"line {rec.line} has {n} fields, but the header has {width}{hint}",
                row=rec.row,
            )


def _named_columns(header: list[str], records: list[_Record], label: str) -> list[str]:
    """Drop the columns without a header name (allowed only when empty throughout)."""
    keep = []
    for j, col in enumerate(header):
        if col:
            keep.append(j)
            continue
        for rec in records:
            if rec.cells[j].strip():
                after = next((header[i] for i in range(j - 1, -1, -1) if header[i]), None)
                place = f"after {after!r}" if after else "first"
                raise located(
                    label,
                    f"column {j + 1} ({place}) has values but no name in the header",
                    row=rec.row,
                )
    for rec in records:
        rec.cells[:] = [rec.cells[j] for j in keep]
    header = [header[j] for j in keep]
    seen: dict[str, int] = {}
    for j, col in enumerate(header):
        key = norm(col)
        if key in seen:
            raise located(
                label,
                f"column name {col!r} appears twice in the header "
                f"(columns {seen[key] + 1} and {j + 1})",
            )
        seen[key] = j
    return header


def _read_table(raw: bytes, label: str) -> tuple[list[str], list[_Record]]:
    """Decode and split a CSV: stripped, unique header names and the non-blank data records."""
    header, records = _split(_decode(raw, label), label)
    _check_widths(len(header), records, label)
    return _named_columns(header, records, label), records


# ---------------------------------------------------------------------- cells


def _parse_number(text: str, label: str, row: int, column: str) -> int | float | None:
    """Parse one numeric cell: None when missing, an error when present but invalid."""
    s = text.strip()
    if s.lower() in _MISSING:
        return None
    if _INT_RE.fullmatch(s):
        return int(s)
    if NUMBER_RE.fullmatch(s):
        value = float(s)
        if not math.isfinite(value):
            raise located(label, f"value {show(s)} is not finite", row=row, column=column)
        return value
    if s.lower() in _NONFINITE:
        raise located(label, f"value {show(s)} is not finite", row=row, column=column)
    if _THOUSANDS_RE.fullmatch(s):
        plain = s.replace(",", "").replace("_", "").replace(" ", "").replace("'", "")
        raise located(
            label,
            f"{show(s)} is not a number (thousands separators are not allowed: write {plain})",
            row=row,
            column=column,
        )
    raise located(label, f"{show(s)} is not a number", row=row, column=column)


def _count(value: float, text: str, label: str, row: int, column: str) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise located(
                label, f"count ({text.strip()}) is not a whole number", row=row, column=column
            )
        value = int(value)
    if value < 0:
        raise located(label, f"count ({value}) is negative", row=row, column=column)
    return value


def _covariate(values: list[str]) -> pd.Series:
    """Type a covariate column: int64, float64 (NaN for missing) or text (NaN for missing)."""
    parsed: list[int | float | None] = []
    numeric = True
    for v in values:
        s = v.strip()
        if s.lower() in _MISSING:
            parsed.append(None)
        elif _INT_RE.fullmatch(s):
            parsed.append(int(s))
        elif NUMBER_RE.fullmatch(s) and math.isfinite(float(s)):
            parsed.append(float(s))
        else:
            numeric = False
            break
    present = [p for p in parsed if p is not None]
    if numeric and present:
        if len(present) == len(values) and all(isinstance(p, int) for p in present):
            return pd.Series(present, dtype="int64")
        return pd.Series([np.nan if p is None else float(p) for p in parsed], dtype="float64")
    texts = [None if v.strip().lower() in _MISSING else v.strip() for v in values]
    return pd.Series(texts, dtype="str")


# ---------------------------------------------------------------------- rows


def _check_arm_row(
    cell: Mapping[str, Any], name_of: Mapping[str, str], label: str, row: int
) -> None:
    """Every arm has a participant, and no more events than participants."""
    for arm in ("t", "c"):
        ev, ev_col = cell[f"events_{arm}"], name_of[f"events_{arm}"]
        if f"n_{arm}" in cell:
            n, n_col = cell[f"n_{arm}"], name_of[f"n_{arm}"]
            if n == 0:
                raise located(
                    label,
                    "arm size is 0; every arm needs at least one participant",
                    row=row,
                    column=n_col,
                )
            if ev > n:
                raise located(
                    label,
                    f"events ({ev}) exceed the arm size {n_col} ({n})",
                    row=row,
                    column=ev_col,
                )
        else:
            ne_col = name_of[f"nonevents_{arm}"]
            if ev + cell[f"nonevents_{arm}"] == 0:
                raise located(
                    label,
                    f"arm size {ev_col} + {ne_col} is 0; every arm needs at least one participant",
                    row=row,
                    column=ne_col,
                )


def _check_contrast_row(
    cell: Mapping[str, Any], name_of: Mapping[str, str], label: str, row: int
) -> None:
    """A positive standard error (or variance)."""
    role, what = ("se", "standard error") if "se" in cell else ("var", "variance")
    if cell[role] <= 0:
        raise located(
            label, f"{what} must be positive (got {cell[role]})", row=row, column=name_of[role]
        )


def _check_published_row(
    cell: Mapping[str, Any], name_of: Mapping[str, str], label: str, row: int
) -> None:
    """Positive odds ratio and limits, the ratio inside an interval of some width."""
    what = {"or": "odds ratio", "lower": "lower limit", "upper": "upper limit"}
    for role in ("or", "lower", "upper"):
        if cell[role] <= 0:
            raise located(
                label,
                f"{what[role]} must be positive (got {cell[role]})",
                row=row,
                column=name_of[role],
            )
    o, lo, up = cell["or"], cell["lower"], cell["upper"]
    for bad, role, rule in (
        (lo > o, "lower", f"lower limit ({lo}) is above the odds ratio ({o})"),
        (o > up, "upper", f"upper limit ({up}) is below the odds ratio ({o})"),
        (lo == up, "upper", f"the interval has zero width (lower = upper = {up})"),
    ):
        if bad:
            raise located(label, rule, row=row, column=name_of[role])


_ROW_CHECKS = {
    "arm": _check_arm_row,
    "contrast": _check_contrast_row,
    "published": _check_published_row,
}


@dataclass
class _Rows:
    """The rows kept for analysis and those excluded, with their parsed standard values."""

    kept: list[_Record] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)
    values: dict[str, list[Any]] = field(default_factory=dict)
    excluded: list[Exclusion] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _study_of(rec: _Record, study_j: int, column: str, seen: dict[str, int], label: str) -> str:
    """The row's study name: present and not seen before."""
    study = rec.cells[study_j].strip()
    if not study:
        raise located(label, "study name is empty", row=rec.row, column=column)
    if study in seen:
        raise located(
            label,
            f"duplicate study name {study!r} (also row {seen[study]}); study names must be unique",
            row=rec.row,
            column=column,
        )
    seen[study] = rec.row
    return study


def _exclusion_reason(kind: str, missing: list[str], name_of: Mapping[str, str]) -> str:
    if kind == "arm" and set(missing) == {"events_t", "events_c"}:
        return "per-arm events missing"
    names = [name_of[r] for r in missing]
    return "missing " + (
        names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    )


def _read_rows(header: list[str], records: list[_Record], plan: ColumnPlan, label: str) -> _Rows:
    """Parse every row's standard cells; exclude rows with a missing one, check the others."""
    roles = plan.roles
    name_of = {role: header[j] for role, j in roles.items()}
    numeric_roles = [r for r in roles if r != "study"]
    confidence_j = next((j for j, c in enumerate(header) if norm(c) == "confidence"), None)
    out = _Rows(values={r: [] for r in numeric_roles})
    seen: dict[str, int] = {}
    for rec in records:
        study = _study_of(rec, roles["study"], name_of["study"], seen, label)
        cell: dict[str, int | float | None] = {}
        for role in numeric_roles:
            text = rec.cells[roles[role]]
            value = _parse_number(text, label, rec.row, name_of[role])
            if value is not None and plan.kind == "arm":
                value = _count(value, text, label, rec.row, name_of[role])
            cell[role] = value

        missing = [r for r in numeric_roles if cell[r] is None]
        if missing:
            reason = _exclusion_reason(plan.kind, missing, name_of)
            out.excluded.append(Exclusion(study=study, row=rec.row, reason=reason))
            note = f"excluded {study} (row {rec.row}): {reason}"
            if confidence_j is not None and rec.cells[confidence_j].strip():
                note += f" (confidence: {rec.cells[confidence_j].strip()})"
            out.notices.append(note)
            continue

        _ROW_CHECKS[plan.kind](cell, name_of, label, rec.row)
        out.kept.append(rec)
        out.studies.append(study)
        for role in numeric_roles:
            out.values[role].append(cell[role])
    return out


# ---------------------------------------------------------------------- the data


def _check_enough(rows: _Rows, min_trials: int, label: str) -> None:
    """At least ``min_trials`` trials kept; the message lists the excluded rows."""
    k = len(rows.studies)
    if k < min_trials:
        detail = ""
        if rows.excluded:
            detail = "; excluded: " + ", ".join(f"{e.study} (row {e.row})" for e in rows.excluded)
        raise located(
            label,
            f"{k} trial{'s' if k != 1 else ''} left to analyse, at least {min_trials} "
            f"needed{detail}",
        )


def _covariates(
    header: list[str], plan: ColumnPlan, kept: list[_Record], label: str
) -> pd.DataFrame:
    """Every column that plays no standard role, typed; none may shadow a standard name."""
    used = set(plan.roles.values())
    cov_cols = [j for j in range(len(header)) if j not in used]
    covariates = pd.DataFrame(
        {header[j]: _covariate([r.cells[j] for r in kept]) for j in cov_cols},
        index=pd.RangeIndex(len(kept)),
    )
    standard_out = {"study", *plan.mapping}
    for j in cov_cols:
        if norm(header[j]) in standard_out:
            raise located(
                label,
                f"column {header[j]!r} clashes with the standard column taken from "
                f"{plan.mapping[norm(header[j])]!r}; rename or drop one of them",
            )
    return covariates


def _standard_arrays(kind: str, values: Mapping[str, list[Any]]) -> tuple[Kind, dict[str, Any]]:
    """The analysed columns of the trial type (arm sizes from non-events, se from var or CI)."""
    arrays: dict[str, Any] = {}
    if kind == "arm":
        for arm in ("t", "c"):
            ev = np.array(values[f"events_{arm}"], dtype=np.int64)
            if f"n_{arm}" in values:
                n = np.array(values[f"n_{arm}"], dtype=np.int64)
            else:
                n = ev + np.array(values[f"nonevents_{arm}"], dtype=np.int64)
            arrays[f"events_{arm}"], arrays[f"n_{arm}"] = ev, n
        return "arm", arrays
    if kind == "contrast":
        arrays["log_or"] = np.array(values["log_or"], dtype=float)
        if "se" in values:
            arrays["se"] = np.array(values["se"], dtype=float)
        else:
            arrays["se"] = np.sqrt(np.array(values["var"], dtype=float))
        return "contrast", arrays
    y, se = effects.log_or_from_interval(values["or"], values["lower"], values["upper"])
    return "contrast", {"log_or": y, "se": se}


def _from_revman(label: str, raw: bytes, outcome: str | None, min_trials: int) -> TrialData:
    """Arm-level trial data from a RevMan outcome (covariates typed as in a CSV)."""
    try:
        sel = revman.select(label, raw, outcome)
    except revman.RevManError as err:  # the loader's one error type
        raise DataError(str(err), source=label) from None
    frame, label = sel.frame, sel.review.source
    if len(frame) < min_trials:
        raise located(
            label,
            f"analysis {sel.outcome.number} has {len(frame)} trial(s) with data, at least "
            f"{min_trials} needed",
        )
    counts = ArmData.COLUMNS
    cov_cols = [c for c in frame.columns if c not in ("study", *counts)]
    covariates = pd.DataFrame(
        {c: _covariate([str(v) for v in frame[c]]) for c in cov_cols},
        index=pd.RangeIndex(len(frame)),
    )
    arrays = {c: frame[c].to_numpy(dtype=np.int64) for c in counts}
    mapping = {
        "study": "STUDY NAME",
        "events_t": "EVENTS_1",
        "n_t": "TOTAL_1",
        "events_c": "EVENTS_2",
        "n_c": "TOTAL_2",
    }
    return ArmData(
        label,
        list(frame["study"]),
        covariates=covariates,
        column_mapping=mapping,
        notices=[*sel.notices, *_uninformative_notices("arm", arrays)],
        reference=sel.reference,
        **arrays,
    )


def _uninformative_notices(kind: str, arrays: Mapping[str, Any]) -> list[str]:
    """A notice when arm data carry no information on the odds ratio at all.

    With no events in any arm (or only events), every trial is a double-zero trial: the
    data are valid, but the likelihood is flat in the treatment effect, so the posterior of
    the pooled log-OR is essentially its prior. Said once, never silently.
    """
    if kind != "arm":
        return []
    ev_t, n_t, ev_c, n_c = (np.asarray(arrays[c]) for c in ("events_t", "n_t", "events_c", "n_c"))
    if not ev_t.any() and not ev_c.any():
        what = "no events in any arm"
    elif np.array_equal(ev_t, n_t) and np.array_equal(ev_c, n_c):
        what = "every participant had the event"
    else:
        return []
    return [
        f"{what}: the data carry no information on the odds ratio; the pooled OR is "
        "determined by the priors (mu and baseline), not by the trials"
    ]


def load(
    source: str | os.PathLike[str],
    *,
    columns: Mapping[str, str] | None = None,
    min_trials: int = 2,
    outcome: str | None = None,
) -> TrialData:
    """Read, validate and standardise trial data.

    Parameters
    ----------
    source : str or path-like
        A CSV file (UTF-8, BOM allowed, comma-separated, header row) or a shipped dataset
        name (:data:`~trialsynth.data.SHIPPED_DATASETS`). An existing file wins over a
        dataset of the same name.
    columns : mapping, optional
        File column -> standard name (:data:`~trialsynth.data.STANDARD_COLUMNS`), applied
        before auto-detection, e.g. ``{"Trial": "study", "deaths_iv": "events_t"}``.
    min_trials : int
        Fewest trials allowed after exclusions: 2 for random-effects models (default), 1 for
        a common-effect model.
    outcome : str, optional
        For a RevMan 5 review (``.rm5``) or analysis export (CSV with the ``Comparison
        Number, Outcome Number, Subgroup Number, ...`` header): the outcome ``C.O`` or its
        name (:mod:`trialsynth.data.revman`). Required when the file has several outcomes.

    Returns
    -------
    TrialData
        :class:`~trialsynth.data.ArmData` for counts, else
        :class:`~trialsynth.data.ContrastData`.

    Raises
    ------
    DataError
        For every problem with the source or its contents; the message is one line naming
        the source, row (1-based data row, header not counted) and column.

    Notes
    -----
    Rows with an empty required numeric cell are excluded and reported (see the module
    docstring); zero-event arms and double-zero trials are valid. Shipped mappings are
    described in :mod:`trialsynth.data.shipped`.
    """
    if min_trials < 1:
        raise ValueError(f"min_trials must be at least 1, not {min_trials}")
    label, raw, spec = read_source(source)
    if spec is None and revman.is_revman(label, raw[:512]):
        return _from_revman(label, raw, outcome, min_trials)
    if outcome is not None:
        raise located(label, "an outcome can only be chosen in a RevMan file (.rm5 or export)")
    header, records = _read_table(raw, label)
    header, merged, mapped_by, study_expr = shipped_columns(
        spec, columns, label, header, [rec.cells for rec in records]
    )
    plan = plan_columns(header, merged, label, mapped_by, study_expr)
    rows = _read_rows(header, records, plan, label)
    _check_enough(rows, min_trials, label)
    covariates = _covariates(header, plan, rows.kept, label)
    kind, arrays = _standard_arrays(plan.kind, rows.values)
    return trial_type(kind)(
        label,
        rows.studies,
        covariates=covariates,
        excluded=rows.excluded,
        column_mapping=plan.mapping,
        notices=[*rows.notices, *plan.notices, *_uninformative_notices(kind, arrays)],
        **arrays,
    )
