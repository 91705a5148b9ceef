"""Loading and validating trial data: arm-level counts or contrast-level estimates.

A data source is a CSV file or the name of a shipped dataset (see :data:`SHIPPED_DATASETS`).
Three kinds of table are recognised from their columns (one row per trial):

============================  ==========================================  ===============
input                         required columns                            ``kind``
============================  ==========================================  ===============
arm-level binary counts       ``study, events_t, n_t, events_c, n_c``     ``"arm"``
contrast-level estimates      ``study, log_or, se``                       ``"contrast"``
published estimates           ``study, or, lower, upper`` (95% interval)  ``"contrast"``
============================  ==========================================  ===============

Every other column is kept as a covariate. Headers are matched after stripping whitespace
and case-insensitively; common alternative spellings are recognised and reported (metafor's
``ai, n1i, ci, n2i`` and ``ai, bi, ci, di``; ``r_t, n_t, r_c, n_c``; meta's
``event.e, n.e, event.c, n.c``; ``yi, vi`` and ``yi, sei``).

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
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from trialsynth.core import effects
from trialsynth.data import revman

__all__ = [
    "SHIPPED_DATASETS",
    "STANDARD_COLUMNS",
    "DataError",
    "Exclusion",
    "TrialData",
    "load",
]

Kind = Literal["arm", "contrast"]

#: Shipped datasets: name -> short description.
SHIPPED_DATASETS: dict[str, str] = {
    "ivig_rm": (
        "IVIg vs placebo in recurrent miscarriage, live birth, whole trials "
        "(Stephenson 1998 has no per-arm counts and is excluded)"
    ),
    "ivig_rm_secondary": (
        "IVIg vs placebo in women with secondary recurrent miscarriage (5 trials or subgroups)"
    ),
    "crins2014": (
        "IL-2 receptor antagonists in paediatric liver transplantation, acute rejection "
        "(Crins et al. 2014; bayesmeta's CrinsEtAl2014; 6 studies)"
    ),
    "bcg": "BCG vaccine against tuberculosis (metafor's dat.bcg; 13 trials; moderator ablat)",
}

#: Standard column names a ``columns`` mapping may target. ``nonevents_t``/``nonevents_c``
#: are arm non-events (the arm size is events + non-events); ``var`` is the variance of
#: ``log_or`` (``se = sqrt(var)``); ``or, lower, upper`` are a published odds ratio and its
#: 95% interval.
STANDARD_COLUMNS: tuple[str, ...] = (
    "study",
    "events_t",
    "n_t",
    "events_c",
    "n_c",
    "nonevents_t",
    "nonevents_c",
    "log_or",
    "se",
    "var",
    "or",
    "lower",
    "upper",
)

# Recognised alternative spellings (normalised: stripped, lower case, single spaces).
_ALIASES: dict[str, tuple[str, ...]] = {
    "study": ("studlab", "slab", "study_id", "study_name", "study or subgroup"),
    "events_t": ("ai", "r_t", "event.e", "experimental events"),
    "n_t": ("n1i", "n.e", "experimental total"),
    "events_c": ("ci", "r_c", "event.c", "control events"),
    "n_c": ("n2i", "n.c", "control total"),
    "nonevents_t": ("bi",),
    "nonevents_c": ("di",),
    "log_or": ("yi", "logor", "lnor"),
    "se": ("sei", "se_log_or"),
    "var": ("vi",),
    "or": ("odds_ratio",),
    "lower": ("lower95", "ci_lower", "lower_ci"),
    "upper": ("upper95", "ci_upper", "upper_ci"),
}

_ACCEPTED = (
    "accepted column sets: arm-level study, events_t, n_t, events_c, n_c; "
    "contrast-level study, log_or, se; published estimate study, or, lower, upper "
    "(alternative spellings such as metafor's ai, n1i, ci, n2i or yi, vi are recognised; "
    "map other names with columns=...)"
)

# Z for a 95% interval, for the column-mapping report only (the conversion is in effects).
_Z95_TEXT = "(2 * 1.96)"

_INT_RE = re.compile(r"[+-]?\d+")
_NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NONFINITE = frozenset(
    {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
)
_MISSING = frozenset({"", "na", "n/a"})
# A number written with thousands separators ("1,000", "12 345", "1'000", "1_000").
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:([,' _])\d{3})(?:\1\d{3})*(?:\.\d+)?")
# The two halves of such a number when an unquoted comma split it into fields.
_GROUP_HEAD_RE = re.compile(r"[+-]?\d{1,3}")
_GROUP_TAIL_RE = re.compile(r"\d{3}(?:\.\d+)?")


class DataError(ValueError):
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


def _error(
    source: str, rule: str, *, row: int | None = None, column: str | None = None
) -> DataError:
    """Build a DataError with the standard ``SOURCE row R, column 'C': RULE`` layout."""
    where = source
    if row is not None:
        where += f" row {row}"
    if column is not None:
        where += f", column {column!r}" if row is not None else f" column {column!r}"
    return DataError(f"{where}: {rule}", source=source, row=row, column=column)


def _show(text: str, limit: int = 40) -> str:
    """Quote a cell for a message, shortened."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


@dataclass(frozen=True)
class Exclusion:
    """A row that was read but left out of the analysis.

    Attributes
    ----------
    study : str
        Study name.
    row : int
        1-based data row in the source (header not counted).
    reason : str
        Why it was excluded, e.g. ``per-arm events missing``.
    """

    study: str
    row: int
    reason: str


def _readonly(values: ArrayLike, dtype: Any) -> NDArray[Any]:
    arr = np.array(values, dtype=dtype, copy=True)
    arr.flags.writeable = False
    return arr


def _value_key(value: Any) -> str | None:
    """Return comparable text for filter values: ``1998``, ``1998.0`` and ``"1998"`` agree."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
        return repr(number)
    text = str(value).strip()
    if _NUM_RE.fullmatch(text):
        return _value_key(float(text))
    return text


def _json_value(value: Any) -> Any:
    """Return a JSON-safe value; floats rounded to 12 significant digits.

    The rounding keeps :attr:`TrialData.sha256` identical when a derived float (e.g. a log
    odds ratio from a published interval) differs in its last bits between platforms.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(f"{float(value):.12g}")
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


@dataclass(frozen=True, init=False, eq=False, repr=False)
class TrialData:
    """Validated, immutable trial data ready for analysis.

    Construct with :func:`load` (files, shipped datasets) or directly, e.g.
    ``TrialData("sim", "arm", ["a", "b"], events_t=[1, 2], n_t=[10, 10], events_c=[3, 0],
    n_c=[10, 9])``; direct construction applies the same value rules (rows are then
    positions, 1-based).

    Attributes
    ----------
    name : str
        Dataset name or the file path as given (not part of :attr:`sha256`).
    kind : {"arm", "contrast"}
        Arm-level counts, or per-trial log odds ratios with standard errors (contrast-level
        input and converted published estimates).
    study : tuple of str
        Unique study names, in file order.
    events_t, n_t, events_c, n_c : ndarray of int64 or None
        Events and arm sizes (read-only); None for contrast data.
    log_or, se : ndarray of float64 or None
        Log odds ratio and standard error (read-only); None for arm data (use
        :meth:`contrasts`).
    excluded : tuple of Exclusion
        Rows read but not analysed.
    notices : tuple of str
        Human-readable notes for reports: exclusions, column mappings, conversions.
    reference : dict or None
        A published pooled result that came with the data (RevMan's own result of the
        outcome read from a review, :func:`trialsynth.data.revman.select`); not part of
        :attr:`sha256`.
    """

    name: str
    kind: Kind
    study: tuple[str, ...]
    events_t: NDArray[np.int64] | None
    n_t: NDArray[np.int64] | None
    events_c: NDArray[np.int64] | None
    n_c: NDArray[np.int64] | None
    log_or: NDArray[np.float64] | None
    se: NDArray[np.float64] | None
    excluded: tuple[Exclusion, ...]
    notices: tuple[str, ...]
    reference: dict[str, Any] | None
    _covariates: pd.DataFrame = field(repr=False)
    _column_mapping: dict[str, str] = field(repr=False)

    def __init__(
        self,
        name: str,
        kind: Kind,
        study: Sequence[str],
        *,
        events_t: ArrayLike | None = None,
        n_t: ArrayLike | None = None,
        events_c: ArrayLike | None = None,
        n_c: ArrayLike | None = None,
        log_or: ArrayLike | None = None,
        se: ArrayLike | None = None,
        covariates: pd.DataFrame | None = None,
        excluded: Iterable[Exclusion] = (),
        column_mapping: Mapping[str, str] | None = None,
        notices: Iterable[str] = (),
        reference: Mapping[str, Any] | None = None,
    ) -> None:
        name = str(name)
        if kind not in ("arm", "contrast"):
            raise ValueError(f"kind must be 'arm' or 'contrast', not {kind!r}")
        if isinstance(study, str):
            raise TypeError("study must be a sequence of study names, not a single string")
        studies = tuple(str(s).strip() for s in study)
        k = len(studies)
        if k == 0:
            raise _error(name, "no trials to analyse")
        seen: dict[str, int] = {}
        for i, s in enumerate(studies, start=1):
            if not s:
                raise _error(name, "study name is empty", row=i, column="study")
            if s in seen:
                raise _error(
                    name,
                    f"duplicate study name {s!r} (also row {seen[s]}); study names must be unique",
                    row=i,
                    column="study",
                )
            seen[s] = i

        def vector(values: ArrayLike | None, col: str) -> NDArray[np.float64]:
            if values is None:
                raise ValueError(f"{kind} data need {col}")
            arr = np.asarray(values, dtype=float)
            if arr.shape != (k,):
                raise ValueError(f"{col} has shape {arr.shape}, expected ({k},)")
            for i, v in enumerate(arr, start=1):
                if not math.isfinite(v):
                    raise _error(name, f"value ({v}) is not finite", row=i, column=col)
            return arr

        arrays: dict[str, NDArray[Any] | None] = dict.fromkeys(
            ("events_t", "n_t", "events_c", "n_c", "log_or", "se")
        )
        if kind == "arm":
            if log_or is not None or se is not None:
                raise ValueError("arm data take counts, not log_or/se")
            given = {"events_t": events_t, "n_t": n_t, "events_c": events_c, "n_c": n_c}
            floats = {col: vector(v, col) for col, v in given.items()}
            for col, arr in floats.items():
                for i, v in enumerate(arr, start=1):
                    if not v.is_integer():
                        raise _error(
                            name, f"count ({v:g}) is not a whole number", row=i, column=col
                        )
                    if v < 0:
                        raise _error(name, f"count ({v:g}) is negative", row=i, column=col)
            for arm in ("t", "c"):
                ev, n = floats[f"events_{arm}"], floats[f"n_{arm}"]
                for i in range(k):
                    if n[i] == 0:
                        raise _error(
                            name,
                            "arm size is 0; every arm needs at least one participant",
                            row=i + 1,
                            column=f"n_{arm}",
                        )
                    if ev[i] > n[i]:
                        raise _error(
                            name,
                            f"events ({ev[i]:g}) exceed the arm size n_{arm} ({n[i]:g})",
                            row=i + 1,
                            column=f"events_{arm}",
                        )
            for col, arr in floats.items():
                arrays[col] = _readonly(arr, np.int64)
        else:
            if any(v is not None for v in (events_t, n_t, events_c, n_c)):
                raise ValueError("contrast data take log_or/se, not counts")
            y = vector(log_or, "log_or")
            s = vector(se, "se")
            for i, v in enumerate(s, start=1):
                if v <= 0:
                    raise _error(
                        name, f"standard error must be positive (got {v:g})", row=i, column="se"
                    )
            arrays["log_or"] = _readonly(y, np.float64)
            arrays["se"] = _readonly(s, np.float64)

        if covariates is None:
            cov = pd.DataFrame(index=pd.Index(studies, name="study"))
        else:
            if len(covariates) != k:
                raise ValueError(f"covariates have {len(covariates)} rows, expected {k}")
            cov = covariates.copy(deep=True)
            cov.index = pd.Index(studies, name="study")
            standard = {"study", *(c for c, v in arrays.items() if v is not None)}
            for col in cov.columns:
                if not isinstance(col, str):
                    raise ValueError(f"covariate column names must be strings, not {col!r}")
                if col in standard:
                    raise _error(name, f"covariate column {col!r} clashes with a standard column")

        object.__setattr__(self, "name", name)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "study", studies)
        for col, arr in arrays.items():
            object.__setattr__(self, col, arr)
        object.__setattr__(self, "excluded", tuple(excluded))
        object.__setattr__(self, "notices", tuple(str(n) for n in notices))
        object.__setattr__(self, "reference", None if reference is None else dict(reference))
        object.__setattr__(self, "_covariates", cov)
        object.__setattr__(self, "_column_mapping", dict(column_mapping or {}))

    # ------------------------------------------------------------------ basic views
    def __repr__(self) -> str:
        cov = ", ".join(self._covariates.columns)
        return (
            f"TrialData(name={self.name!r}, kind={self.kind!r}, k={self.k}, "
            f"excluded={len(self.excluded)}, covariates=[{cov}])"
        )

    def __len__(self) -> int:
        return self.k

    @property
    def k(self) -> int:
        """Number of trials analysed (after exclusions)."""
        return len(self.study)

    @property
    def covariates(self) -> pd.DataFrame:
        """A copy of the covariate columns (index: study); edits do not affect the data."""
        return self._covariates.copy(deep=True)

    @property
    def column_mapping(self) -> dict[str, str]:
        """Standard name -> where its values came from, e.g. ``{"n_t": "tpos + tneg"}``.

        Returns a copy. Keys are the analysed standard columns (``study``, counts or
        ``log_or``/``se``); values are the source column as spelled in the file, or the
        expression used to derive it.
        """
        return dict(self._column_mapping)

    @property
    def has_zero_cells(self) -> NDArray[np.bool_]:
        """Per trial: a cell (events or non-events, either arm) is zero. All False for contrasts."""
        if self.kind != "arm":
            return np.zeros(self.k, dtype=bool)
        assert self.events_t is not None and self.n_t is not None
        assert self.events_c is not None and self.n_c is not None
        cells = np.stack(
            [self.events_t, self.n_t - self.events_t, self.events_c, self.n_c - self.events_c]
        )
        return (cells == 0).any(axis=0)

    @property
    def double_zero(self) -> NDArray[np.bool_]:
        """Per trial: no events in both arms, or only events in both arms (arm data)."""
        if self.kind != "arm":
            return np.zeros(self.k, dtype=bool)
        assert self.events_t is not None and self.n_t is not None
        assert self.events_c is not None and self.n_c is not None
        none = (self.events_t == 0) & (self.events_c == 0)
        every = (self.events_t == self.n_t) & (self.events_c == self.n_c)
        return none | every

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the analysed content.

        Covers kind, study names, counts (or log_or and se) and covariates, serialised as
        canonical JSON; not the name, path, notices or exclusions. Stable across processes.
        """
        payload: dict[str, Any] = {"format": 1, "kind": self.kind, "study": list(self.study)}
        cols = ("events_t", "n_t", "events_c", "n_c") if self.kind == "arm" else ("log_or", "se")
        for col in cols:
            arr = getattr(self, col)
            payload[col] = [_json_value(v) for v in arr.tolist()]
        payload["covariates"] = [
            [str(col), [_json_value(v) for v in self._covariates[col].tolist()]]
            for col in self._covariates.columns
        ]
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def contrasts(self, correction: float = effects.DEFAULT_CORRECTION) -> effects.LogOddsRatios:
        """Per-trial log odds ratios and standard errors.

        Parameters
        ----------
        correction : float
            For arm data, added to every cell of a trial with a zero cell
            (:func:`trialsynth.core.effects.log_odds_ratios`). Ignored for contrast data, which
            are returned as given with ``corrected`` all False.

        Returns
        -------
        effects.LogOddsRatios
        """
        if self.kind == "arm":
            return effects.log_odds_ratios(
                self.events_t,
                self.n_t,
                self.events_c,
                self.n_c,
                correction=correction,
            )
        assert self.log_or is not None and self.se is not None
        return effects.LogOddsRatios(
            y=self.log_or.copy(),
            se=self.se.copy(),
            corrected=np.zeros(self.k, dtype=bool),
            correction=correction,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per trial: ``study``, the standard columns of the kind, then covariates."""
        cols = ("events_t", "n_t", "events_c", "n_c") if self.kind == "arm" else ("log_or", "se")
        frame = pd.DataFrame({"study": list(self.study)})
        for col in cols:
            frame[col] = np.array(getattr(self, col))
        cov = self._covariates.reset_index(drop=True)
        return pd.concat([frame, cov], axis=1)

    # ------------------------------------------------------------------ selections
    def _take(self, index: NDArray[np.intp], what: str) -> TrialData:
        if index.size == 0:
            raise _error(self.name, f"{what} leaves no trials")
        arrays = {
            col: (None if getattr(self, col) is None else getattr(self, col)[index])
            for col in ("events_t", "n_t", "events_c", "n_c", "log_or", "se")
        }
        return TrialData(
            self.name,
            self.kind,
            [self.study[i] for i in index],
            covariates=self._covariates.iloc[index],
            excluded=self.excluded,
            column_mapping=self._column_mapping,
            notices=self.notices,
            **arrays,
        )

    def _position(self, study: str) -> int:
        try:
            return self.study.index(study)
        except ValueError:
            raise _error(
                self.name,
                f"unknown study {study!r} (studies: {', '.join(self.study)})",
                column="study",
            ) from None

    def subset(self, studies: Sequence[str] | ArrayLike) -> TrialData:
        """Keep the trials named in ``studies`` (in data order), or those where a mask is True.

        Parameters
        ----------
        studies : sequence of str, str, or boolean array of length k
            Study names (an unknown name is a DataError) or a boolean mask.

        Returns
        -------
        TrialData
            Same name, exclusions and notices; a new :attr:`sha256`.
        """
        if isinstance(studies, str):
            studies = [studies]
        arr = np.asarray(studies)
        if arr.dtype == bool:
            if arr.shape != (self.k,):
                raise ValueError(f"mask has shape {arr.shape}, expected ({self.k},)")
            index = np.flatnonzero(arr)
        else:
            wanted = {self._position(str(s)) for s in arr.tolist()}
            index = np.array(sorted(wanted), dtype=np.intp)
        return self._take(index, "the subset")

    def drop(self, study: str) -> TrialData:
        """Return all trials but ``study`` (leave-one-out)."""
        pos = self._position(study)
        index = np.array([i for i in range(self.k) if i != pos], dtype=np.intp)
        return self._take(index, f"dropping {study!r}")

    def filter(self, column: str, values: Any) -> TrialData:
        """Keep the trials whose covariate ``column`` takes one of ``values``.

        Parameters
        ----------
        column : str
            Covariate name (matched exactly, else case-insensitively).
        values : scalar or iterable
            Accepted values; numbers and their text agree (``1998`` matches ``"1998"``).

        Returns
        -------
        TrialData
        """
        cov = self._covariates
        if column not in cov.columns:
            matches = [c for c in cov.columns if c.strip().lower() == column.strip().lower()]
            if len(matches) != 1:
                raise _error(
                    self.name,
                    f"no covariate column {column!r} to filter on "
                    f"(covariates: {', '.join(cov.columns) or 'none'})",
                    column=column,
                )
            column = matches[0]
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        keys = {_value_key(v) for v in values} - {None}
        cells = [_value_key(v) for v in cov[column].tolist()]
        mask = np.array([c in keys for c in cells], dtype=bool)
        if not mask.any():
            present = sorted({c for c in cells if c is not None})
            raise _error(
                self.name,
                f"no trials have {column} in {sorted(keys)} (values: {', '.join(present)})",
                column=column,
            )
        return self._take(np.flatnonzero(mask), "the filter")


# ---------------------------------------------------------------------- reading CSV


@dataclass(frozen=True)
class _Record:
    row: int
    line: int
    cells: list[str]


@dataclass(frozen=True)
class _ShippedSpec:
    file: str
    columns: Mapping[str, str] = field(default_factory=dict)
    study_from: tuple[str, ...] = ()


_SHIPPED: dict[str, _ShippedSpec] = {
    "ivig_rm": _ShippedSpec("ivig_rm.csv"),
    "ivig_rm_secondary": _ShippedSpec("ivig_rm_secondary.csv"),
    "crins2014": _ShippedSpec(
        "crins2014.csv",
        columns={
            "publication": "study",
            "exp_AR_events": "events_t",
            "exp_total": "n_t",
            "cont_AR_events": "events_c",
            "cont_total": "n_c",
        },
    ),
    "bcg": _ShippedSpec(
        "bcg.csv",
        columns={
            "tpos": "events_t",
            "tneg": "nonevents_t",
            "cpos": "events_c",
            "cneg": "nonevents_c",
        },
        study_from=("author", "year"),
    ),
}


def _norm(name: str) -> str:
    return " ".join(str(name).split()).lower()


def _blank(cells: list[str]) -> bool:
    return all(not c.strip() for c in cells)


def _read_table(raw: bytes, label: str) -> tuple[list[str], list[_Record]]:
    """Decode and split a CSV: stripped header names and the non-blank data records."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _error(
            label,
            f"line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); the file must be "
            "UTF-8 encoded (a byte-order mark is fine): re-save it as 'CSV UTF-8'",
        ) from None
    if not text.strip():
        raise _error(label, "the file is empty (expected a header row and one row per trial)")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise _error(
            label,
            f"line {line} contains a NUL byte: this is not a text CSV file (a spreadsheet or "
            "UTF-16 file? save it as 'CSV UTF-8')",
        )

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
        raise _error(label, f"line {reader.line_num}: malformed CSV ({exc})") from None
    if header is None:  # only empty fields, e.g. a line of commas
        raise _error(label, "the file has no header row (every line is empty or only commas)")
    if not records:
        raise _error(label, "the file has a header row but no data rows")

    width = len(header)
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
            raise _error(
                label,
                f"line {rec.line} has {n} fields, but the header has {width}{hint}",
                row=rec.row,
            )

    # Columns without a header name: allowed (and dropped) only when empty throughout.
    keep = []
    for j, col in enumerate(header):
        if col:
            keep.append(j)
            continue
        for rec in records:
            if rec.cells[j].strip():
                after = next((header[i] for i in range(j - 1, -1, -1) if header[i]), None)
                place = f"after {after!r}" if after else "first"
                raise _error(
                    label,
                    f"column {j + 1} ({place}) has values but no name in the header",
                    row=rec.row,
                )
    header = [header[j] for j in keep]
    for rec in records:
        rec.cells[:] = [rec.cells[j] for j in keep]

    seen: dict[str, int] = {}
    for j, col in enumerate(header):
        key = _norm(col)
        if key in seen:
            raise _error(
                label,
                f"column name {col!r} appears twice in the header "
                f"(columns {seen[key] + 1} and {j + 1})",
            )
        seen[key] = j
    return header, records


@dataclass
class _Plan:
    kind: str  # "arm", "contrast", "published"
    roles: dict[str, int]  # standard role -> column index
    notices: list[str]
    mapping: dict[str, str]


_KIND_LABEL = {"arm": "arm-level", "contrast": "contrast-level", "published": "published estimate"}
_REQUIRED = {
    "arm": ("study", "events_t", "n_t", "events_c", "n_c"),
    "contrast": ("study", "log_or", "se"),
    "published": ("study", "or", "lower", "upper"),
}
_SUBSTITUTES = {"n_t": "nonevents_t", "n_c": "nonevents_c", "se": "var"}


def _plan_columns(
    header: list[str],
    columns: Mapping[str, str] | None,
    label: str,
    mapped_by: str,
    study_expr: str | None = None,
) -> _Plan:
    """Decide the kind of table and which column plays which standard role."""
    index = {_norm(c): j for j, c in enumerate(header)}
    candidates: dict[str, list[int]] = {role: [] for role in STANDARD_COLUMNS}
    explicit: dict[str, int] = {}
    for src, dst in (columns or {}).items():
        role = _norm(dst)
        if role not in STANDARD_COLUMNS:
            raise _error(
                label,
                f"columns: unknown standard column name {dst!r} (for {src!r}); "
                f"valid names: {', '.join(STANDARD_COLUMNS)}",
            )
        j = index.get(_norm(src))
        if j is None:
            raise _error(
                label,
                f"column {src!r} named in columns is not in the file "
                f"(file columns: {', '.join(header)})",
            )
        if role in explicit:
            raise _error(
                label,
                f"columns maps both {header[explicit[role]]!r} and {src!r} to {role!r}",
            )
        explicit[role] = j
    claimed = set(explicit.values())
    aliased: set[str] = set()
    for role in STANDARD_COLUMNS:
        if role in explicit:
            candidates[role] = [explicit[role]]
        elif role in index and index[role] not in claimed:
            candidates[role] = [index[role]]
        else:
            found = [index[a] for a in _ALIASES[role] if a in index and index[a] not in claimed]
            candidates[role] = found
            if found:
                aliased.add(role)

    def have(role: str) -> bool:
        return bool(candidates[role]) or bool(
            role in _SUBSTITUTES and candidates[_SUBSTITUTES[role]]
        )

    order = ["arm", "contrast", "published"]
    # A kind whose columns were mapped explicitly goes first.
    order.sort(key=lambda kd: -sum(1 for r in _REQUIRED[kd] if r in explicit))
    complete = [kd for kd in order if all(have(r) for r in _REQUIRED[kd])]
    if not complete:
        best = max(order, key=lambda kd: sum(have(r) for r in _REQUIRED[kd]))
        missing = [r for r in _REQUIRED[best] if not have(r)]
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            sep = next(s for s in ";\t|" if s in header[0])
            hint = f" (the file seems to use {sep!r} as separator; use commas)"
        raise _error(
            label,
            f"missing required column(s) {', '.join(repr(m) for m in missing)} for "
            f"{_KIND_LABEL[best]} data (file columns: {', '.join(header)}){hint}; {_ACCEPTED}",
        )
    kind = complete[0]

    roles: dict[str, int] = {}
    for req in _REQUIRED[kind]:
        role = req if candidates[req] else _SUBSTITUTES[req]
        found = candidates[role]
        if len(found) > 1:
            names = " and ".join(repr(header[j]) for j in found)
            raise _error(
                label,
                f"columns {names} could both be {role!r}; say which to use with columns=",
            )
        roles[role] = found[0]

    notices: list[str] = []
    mapping: dict[str, str] = {}
    col = {role: header[j] for role, j in roles.items()}
    mapping["study"] = study_expr if study_expr and col["study"] == "study" else col["study"]
    if kind == "arm":
        for arm in ("t", "c"):
            mapping[f"events_{arm}"] = col[f"events_{arm}"]
            if f"n_{arm}" in col:
                mapping[f"n_{arm}"] = col[f"n_{arm}"]
            else:
                mapping[f"n_{arm}"] = f"{col[f'events_{arm}']} + {col[f'nonevents_{arm}']}"
    elif kind == "contrast":
        mapping["log_or"] = col["log_or"]
        mapping["se"] = col["se"] if "se" in col else f"sqrt({col['var']})"
    else:
        mapping["log_or"] = f"log({col['or']})"
        mapping["se"] = f"(log({col['upper']}) - log({col['lower']})) / {_Z95_TEXT}"
        notices.append(
            f"converted published odds ratios with 95% intervals ({col['or']}, {col['lower']}, "
            f"{col['upper']}) to log odds ratios and standard errors: log_or = {mapping['log_or']},"
            f" se = {mapping['se']} (symmetric Wald interval on the log scale assumed)"
        )
    renamed = [f"{std} = {src}" for std, src in mapping.items() if std != src]
    if renamed and kind != "published":
        how = ""
        if mapped_by:
            how = f" ({mapped_by})"
        elif aliased & set(roles):
            how = " (alternative spellings recognised)"
        notices.append(f"columns used{how}: {', '.join(renamed)}")
    for other in complete[1:]:
        used = []
        for req in _REQUIRED[other]:
            role = req if candidates[req] else _SUBSTITUTES.get(req, req)
            if req != "study" and candidates[role]:
                used.append(header[candidates[role][0]])
        notices.append(
            f"{_KIND_LABEL[kind]} columns analysed; the {_KIND_LABEL[other]} columns "
            f"({', '.join(used)}) are kept as covariates"
        )
    return _Plan(kind=kind, roles=roles, notices=notices, mapping=mapping)


def _parse_number(text: str, label: str, row: int, column: str) -> int | float | None:
    """Parse one numeric cell: None when missing, an error when present but invalid."""
    s = text.strip()
    if s.lower() in _MISSING:
        return None
    if _INT_RE.fullmatch(s):
        return int(s)
    if _NUM_RE.fullmatch(s):
        value = float(s)
        if not math.isfinite(value):
            raise _error(label, f"value {_show(s)} is not finite", row=row, column=column)
        return value
    if s.lower() in _NONFINITE:
        raise _error(label, f"value {_show(s)} is not finite", row=row, column=column)
    if _THOUSANDS_RE.fullmatch(s):
        plain = s.replace(",", "").replace("_", "").replace(" ", "").replace("'", "")
        raise _error(
            label,
            f"{_show(s)} is not a number (thousands separators are not allowed: write {plain})",
            row=row,
            column=column,
        )
    raise _error(label, f"{_show(s)} is not a number", row=row, column=column)


def _count(value: float, text: str, label: str, row: int, column: str) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise _error(
                label, f"count ({text.strip()}) is not a whole number", row=row, column=column
            )
        value = int(value)
    if value < 0:
        raise _error(label, f"count ({value}) is negative", row=row, column=column)
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
        elif _NUM_RE.fullmatch(s) and math.isfinite(float(s)):
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


def _read_source(source: str | os.PathLike[str]) -> tuple[str, bytes, _ShippedSpec | None]:
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        try:
            return text, path.read_bytes(), None
        except OSError as exc:
            raise _error(text, f"cannot read the file ({exc.strerror})") from None
    if text in _SHIPPED:
        spec = _SHIPPED[text]
        raw = resources.files("trialsynth.data").joinpath("datasets", spec.file).read_bytes()
        return text, raw, spec
    names = ", ".join(sorted(SHIPPED_DATASETS))
    if path.is_dir():
        raise _error(text, f"is a directory, not a CSV file (shipped datasets: {names})")
    raise _error(text, f"no such file, and not a shipped dataset name (shipped datasets: {names})")


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
        name (:data:`SHIPPED_DATASETS`). An existing file wins over a dataset of the same name.
    columns : mapping, optional
        File column -> standard name (:data:`STANDARD_COLUMNS`), applied before
        auto-detection, e.g. ``{"Trial": "study", "deaths_iv": "events_t"}``.
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

    Raises
    ------
    DataError
        For every problem with the source or its contents; the message is one line naming
        the source, row (1-based data row, header not counted) and column.

    Notes
    -----
    Rows with an empty required numeric cell are excluded and reported (see the module
    docstring); zero-event arms and double-zero trials are valid. Shipped mappings:
    ``crins2014`` (publication, exp_AR_events, exp_total, cont_AR_events, cont_total) and
    ``bcg`` (study = author + year; events = tpos/cpos, arm size = tpos + tneg / cpos + cneg).
    """
    if min_trials < 1:
        raise ValueError(f"min_trials must be at least 1, not {min_trials}")
    label, raw, spec = _read_source(source)
    if spec is None and revman.is_revman(label, raw[:512]):
        try:
            selection = revman.select(label, raw, outcome)
        except revman.RevManError as err:  # the loader's one error type
            raise DataError(str(err), source=label) from None
        return _from_revman(selection, min_trials)
    if outcome is not None:
        raise _error(label, "an outcome can only be chosen in a RevMan file (.rm5 or export)")
    header, records = _read_table(raw, label)

    mapped_by = ""
    merged: dict[str, str] = {}
    if spec is not None:
        user_roles = {_norm(v) for v in (columns or {}).values()}
        merged.update({s: d for s, d in spec.columns.items() if d not in user_roles})
        if spec.study_from and "study" not in user_roles and "study" not in header:
            parts = [header.index(c) for c in spec.study_from]
            header = [*header, "study"]
            for rec in records:
                rec.cells.append(" ".join(rec.cells[p].strip() for p in parts))
        if merged or spec.study_from:
            mapped_by = f"shipped dataset {label}"
    if columns:
        merged.update(columns)
        mapped_by = "as given" if not mapped_by else mapped_by + " and as given"
    study_expr = None
    if spec is not None and spec.study_from and "study" in header[-1:]:
        study_expr = " + ".join(spec.study_from)
    plan = _plan_columns(header, merged or None, label, mapped_by, study_expr)

    roles = plan.roles
    name_of = {role: header[j] for role, j in roles.items()}
    numeric_roles = [r for r in roles if r != "study"]
    confidence_j = next((j for j, c in enumerate(header) if _norm(c) == "confidence"), None)

    kept_rows: list[_Record] = []
    studies: list[str] = []
    values: dict[str, list[Any]] = {r: [] for r in numeric_roles}
    excluded: list[Exclusion] = []
    exclusion_notices: list[str] = []
    seen: dict[str, int] = {}
    for rec in records:
        study = rec.cells[roles["study"]].strip()
        if not study:
            raise _error(label, "study name is empty", row=rec.row, column=name_of["study"])
        if study in seen:
            raise _error(
                label,
                f"duplicate study name {study!r} (also row {seen[study]}); "
                "study names must be unique",
                row=rec.row,
                column=name_of["study"],
            )
        seen[study] = rec.row

        cell: dict[str, int | float | None] = {}
        for role in numeric_roles:
            text = rec.cells[roles[role]]
            value = _parse_number(text, label, rec.row, name_of[role])
            if value is not None and plan.kind == "arm":
                value = _count(value, text, label, rec.row, name_of[role])
            cell[role] = value

        missing = [r for r in numeric_roles if cell[r] is None]
        if missing:
            if plan.kind == "arm" and set(missing) == {"events_t", "events_c"}:
                reason = "per-arm events missing"
            else:
                names = [name_of[r] for r in missing]
                reason = "missing " + (
                    names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
                )
            excluded.append(Exclusion(study=study, row=rec.row, reason=reason))
            note = f"excluded {study} (row {rec.row}): {reason}"
            if confidence_j is not None and rec.cells[confidence_j].strip():
                note += f" (confidence: {rec.cells[confidence_j].strip()})"
            exclusion_notices.append(note)
            continue

        _check_row(plan.kind, cell, name_of, label, rec.row)
        kept_rows.append(rec)
        studies.append(study)
        for role in numeric_roles:
            values[role].append(cell[role])

    k = len(studies)
    if k < min_trials:
        detail = ""
        if excluded:
            detail = "; excluded: " + ", ".join(f"{e.study} (row {e.row})" for e in excluded)
        raise _error(
            label,
            f"{k} trial{'s' if k != 1 else ''} left to analyse, at least {min_trials} "
            f"needed{detail}",
        )

    used = set(roles.values())
    cov_cols = [j for j in range(len(header)) if j not in used]
    covariates = pd.DataFrame(
        {header[j]: _covariate([r.cells[j] for r in kept_rows]) for j in cov_cols},
        index=pd.RangeIndex(k),
    )
    standard_out = {"study", *plan.mapping}
    for j in cov_cols:
        if _norm(header[j]) in standard_out:
            raise _error(
                label,
                f"column {header[j]!r} clashes with the standard column taken from "
                f"{plan.mapping[_norm(header[j])]!r}; rename or drop one of them",
            )

    arrays: dict[str, Any] = {}
    if plan.kind == "arm":
        for arm in ("t", "c"):
            ev = np.array(values[f"events_{arm}"], dtype=np.int64)
            if f"n_{arm}" in values:
                n = np.array(values[f"n_{arm}"], dtype=np.int64)
            else:
                n = ev + np.array(values[f"nonevents_{arm}"], dtype=np.int64)
            arrays[f"events_{arm}"], arrays[f"n_{arm}"] = ev, n
        kind: Kind = "arm"
    elif plan.kind == "contrast":
        arrays["log_or"] = np.array(values["log_or"], dtype=float)
        if "se" in values:
            arrays["se"] = np.array(values["se"], dtype=float)
        else:
            arrays["se"] = np.sqrt(np.array(values["var"], dtype=float))
        kind = "contrast"
    else:
        y, se = effects.log_or_from_interval(values["or"], values["lower"], values["upper"])
        arrays["log_or"], arrays["se"] = y, se
        kind = "contrast"

    return TrialData(
        label,
        kind,
        studies,
        covariates=covariates,
        excluded=excluded,
        column_mapping=plan.mapping,
        notices=[*exclusion_notices, *plan.notices, *_uninformative_notices(kind, arrays)],
        **arrays,
    )


def _from_revman(sel: revman.Selection, min_trials: int) -> TrialData:
    """Arm-level trial data from a RevMan outcome (covariates typed as in a CSV)."""
    frame, label = sel.frame, sel.review.source
    if len(frame) < min_trials:
        raise _error(
            label,
            f"analysis {sel.outcome.number} has {len(frame)} trial(s) with data, at least "
            f"{min_trials} needed",
        )
    counts = ("events_t", "n_t", "events_c", "n_c")
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
    return TrialData(
        label,
        "arm",
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


def _check_row(
    kind: str, cell: Mapping[str, Any], name_of: Mapping[str, str], label: str, row: int
) -> None:
    """Row-level rules once every cell of the row has been parsed."""
    if kind == "arm":
        for arm in ("t", "c"):
            ev, ev_col = cell[f"events_{arm}"], name_of[f"events_{arm}"]
            if f"n_{arm}" in cell:
                n, n_col = cell[f"n_{arm}"], name_of[f"n_{arm}"]
                if n == 0:
                    raise _error(
                        label,
                        "arm size is 0; every arm needs at least one participant",
                        row=row,
                        column=n_col,
                    )
                if ev > n:
                    raise _error(
                        label,
                        f"events ({ev}) exceed the arm size {n_col} ({n})",
                        row=row,
                        column=ev_col,
                    )
            else:
                ne_col = name_of[f"nonevents_{arm}"]
                if ev + cell[f"nonevents_{arm}"] == 0:
                    raise _error(
                        label,
                        f"arm size {ev_col} + {ne_col} is 0; every arm needs at least one "
                        "participant",
                        row=row,
                        column=ne_col,
                    )
    elif kind == "contrast":
        if "se" in cell:
            if cell["se"] <= 0:
                raise _error(
                    label,
                    f"standard error must be positive (got {cell['se']})",
                    row=row,
                    column=name_of["se"],
                )
        elif cell["var"] <= 0:
            raise _error(
                label,
                f"variance must be positive (got {cell['var']})",
                row=row,
                column=name_of["var"],
            )
    else:
        what = {"or": "odds ratio", "lower": "lower limit", "upper": "upper limit"}
        for role in ("or", "lower", "upper"):
            if cell[role] <= 0:
                raise _error(
                    label,
                    f"{what[role]} must be positive (got {cell[role]})",
                    row=row,
                    column=name_of[role],
                )
        o, lo, up = cell["or"], cell["lower"], cell["upper"]
        if lo > o:
            raise _error(
                label,
                f"lower limit ({lo}) is above the odds ratio ({o})",
                row=row,
                column=name_of["lower"],
            )
        if o > up:
            raise _error(
                label,
                f"upper limit ({up}) is below the odds ratio ({o})",
                row=row,
                column=name_of["upper"],
            )
        if lo == up:
            raise _error(
                label,
                f"the interval has zero width (lower = upper = {up})",
                row=row,
                column=name_of["upper"],
            )
