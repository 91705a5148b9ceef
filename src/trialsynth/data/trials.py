"""Validated, immutable trial data: arm-level counts or contrast-level estimates.

Two explicit types share one base, :class:`TrialData`:

* :class:`ArmData` holds per-arm binary counts (``events_t, n_t, events_c, n_c``);
* :class:`ContrastData` holds per-trial log odds ratios with standard errors (``log_or, se``):
  contrast-level input, and published odds ratios with intervals once converted.

Both have the study names, covariates with the provenance of every standard column, the rows
excluded on reading, notices for the report, a content hash, the selections (``subset``,
``drop``, ``filter``) and :meth:`TrialData.contrasts`, the per-trial log odds ratios every
consumer uses: computed once per continuity correction and kept on the object. Code that
needs the counts narrows with ``isinstance(data, ArmData)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal, TypedDict, Unpack

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from trialsynth.core import effects
from trialsynth.data.errors import located

__all__ = [
    "NUMBER_RE",
    "ArmData",
    "Common",
    "ContrastData",
    "Exclusion",
    "Kind",
    "TrialData",
    "trial_type",
]

Kind = Literal["arm", "contrast"]

#: A finite or infinite decimal number as written in a cell (no sign words, no separators).
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


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


class Common(TypedDict, total=False):
    """The keyword arguments every trial type takes besides its standard columns."""

    covariates: pd.DataFrame | None
    excluded: Iterable[Exclusion]
    column_mapping: Mapping[str, str] | None
    notices: Iterable[str]
    reference: Mapping[str, Any] | None


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
    if NUMBER_RE.fullmatch(text):
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


def _study_names(name: str, study: Sequence[str]) -> tuple[str, ...]:
    """Stripped, non-empty, unique study names (rows are positions, 1-based)."""
    if isinstance(study, str):
        raise TypeError("study must be a sequence of study names, not a single string")
    studies = tuple(str(s).strip() for s in study)
    if not studies:
        raise located(name, "no trials to analyse")
    seen: dict[str, int] = {}
    for i, s in enumerate(studies, start=1):
        if not s:
            raise located(name, "study name is empty", row=i, column="study")
        if s in seen:
            raise located(
                name,
                f"duplicate study name {s!r} (also row {seen[s]}); study names must be unique",
                row=i,
                column="study",
            )
        seen[s] = i
    return studies


def _finite_vector(name: str, values: ArrayLike, col: str, k: int) -> NDArray[np.float64]:
    """One standard column as floats of length k, every value finite."""
    arr = np.asarray(values, dtype=float)
    if arr.shape != (k,):
        raise ValueError(f"{col} has shape {arr.shape}, expected ({k},)")
    for i, v in enumerate(arr, start=1):
        if not math.isfinite(v):
            raise located(name, f"value ({v}) is not finite", row=i, column=col)
    return arr


def _covariate_frame(
    name: str, studies: tuple[str, ...], covariates: pd.DataFrame | None, standard: set[str]
) -> pd.DataFrame:
    """A private copy of the covariates indexed by study; no clash with a standard column."""
    if covariates is None:
        return pd.DataFrame(index=pd.Index(studies, name="study"))
    if len(covariates) != len(studies):
        raise ValueError(f"covariates have {len(covariates)} rows, expected {len(studies)}")
    cov = covariates.copy(deep=True)
    cov.index = pd.Index(studies, name="study")
    for col in cov.columns:
        if not isinstance(col, str):
            raise ValueError(f"covariate column names must be strings, not {col!r}")
        if col in standard:
            raise located(name, f"covariate column {col!r} clashes with a standard column")
    return cov


@dataclass(frozen=True, init=False, eq=False, repr=False)
class TrialData(ABC):
    """Validated, immutable trial data: the base of :class:`ArmData` and :class:`ContrastData`.

    Construct with :func:`trialsynth.data.load` (files, shipped datasets) or a subclass
    directly, e.g. ``ArmData("sim", ["a", "b"], events_t=[1, 2], n_t=[10, 10],
    events_c=[3, 0], n_c=[10, 9])``; direct construction applies the same value rules (rows
    are then positions, 1-based).

    Attributes
    ----------
    kind : {"arm", "contrast"}
        Arm-level counts, or per-trial log odds ratios with standard errors (class constant).
    COLUMNS : tuple of str
        The standard columns of the kind (class constant).
    name : str
        Dataset name or the file path as given (not part of :attr:`sha256`).
    study : tuple of str
        Unique study names, in file order.
    excluded : tuple of Exclusion
        Rows read but not analysed.
    notices : tuple of str
        Human-readable notes for reports: exclusions, column mappings, conversions.
    reference : dict or None
        A published pooled result that came with the data (RevMan's own result of the
        outcome read from a review, :func:`trialsynth.data.revman.select`); not part of
        :attr:`sha256`.
    """

    kind: ClassVar[Kind]
    COLUMNS: ClassVar[tuple[str, ...]]

    name: str
    study: tuple[str, ...]
    excluded: tuple[Exclusion, ...]
    notices: tuple[str, ...]
    reference: dict[str, Any] | None
    _covariates: pd.DataFrame
    _column_mapping: dict[str, str]
    _contrasts: dict[tuple[type, float], effects.LogOddsRatios]

    def __init__(
        self,
        name: str,
        study: Sequence[str],
        columns: Mapping[str, ArrayLike],
        *,
        covariates: pd.DataFrame | None = None,
        excluded: Iterable[Exclusion] = (),
        column_mapping: Mapping[str, str] | None = None,
        notices: Iterable[str] = (),
        reference: Mapping[str, Any] | None = None,
    ) -> None:
        name = str(name)
        studies = _study_names(name, study)
        k = len(studies)
        floats = {col: _finite_vector(name, columns[col], col, k) for col in self.COLUMNS}
        arrays = self._checked(name, floats)
        cov = _covariate_frame(name, studies, covariates, {"study", *arrays})
        for attr, value in (
            ("name", name),
            ("study", studies),
            *arrays.items(),
            ("excluded", tuple(excluded)),
            ("notices", tuple(str(n) for n in notices)),
            ("reference", None if reference is None else dict(reference)),
            ("_covariates", cov),
            ("_column_mapping", dict(column_mapping or {})),
            ("_contrasts", {}),
        ):
            object.__setattr__(self, attr, value)

    @classmethod
    @abstractmethod
    def _checked(
        cls, name: str, floats: Mapping[str, NDArray[np.float64]]
    ) -> dict[str, NDArray[Any]]:
        """The kind's value rules on its finite columns; read-only arrays of its dtype."""

    @abstractmethod
    def _compute_contrasts(self, correction: float) -> effects.LogOddsRatios:
        """Per-trial log odds ratios under ``correction`` (uncached)."""

    # ------------------------------------------------------------------ basic views
    def __repr__(self) -> str:
        cov = ", ".join(self._covariates.columns)
        return (
            f"{type(self).__name__}(name={self.name!r}, k={self.k}, "
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
        return np.zeros(self.k, dtype=bool)

    @property
    def double_zero(self) -> NDArray[np.bool_]:
        """Per trial: no events in both arms, or only events in both arms (arm data)."""
        return np.zeros(self.k, dtype=bool)

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the analysed content.

        Covers kind, study names, counts (or log_or and se) and covariates, serialised as
        canonical JSON; not the name, path, notices or exclusions. Stable across processes.
        """
        payload: dict[str, Any] = {"format": 1, "kind": self.kind, "study": list(self.study)}
        for col in self.COLUMNS:
            payload[col] = [_json_value(v) for v in getattr(self, col).tolist()]
        payload["covariates"] = [
            [str(col), [_json_value(v) for v in self._covariates[col].tolist()]]
            for col in self._covariates.columns
        ]
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def contrasts(self, correction: float = effects.DEFAULT_CORRECTION) -> effects.LogOddsRatios:
        """Per-trial log odds ratios and standard errors, computed once per correction.

        Parameters
        ----------
        correction : float
            For arm data, added to every cell of a trial with a zero cell
            (:func:`trialsynth.core.effects.log_odds_ratios`). Ignored for contrast data, which
            are returned as given with ``corrected`` all False.

        Returns
        -------
        effects.LogOddsRatios
            Shared between calls with the same correction: its arrays are read-only.
        """
        key = (type(correction), correction)
        lor = self._contrasts.get(key)
        if lor is None:
            lor = self._compute_contrasts(correction)
            for arr in (lor.y, lor.se, lor.corrected):
                arr.flags.writeable = False
            self._contrasts[key] = lor
        return lor

    def to_frame(self) -> pd.DataFrame:
        """One row per trial: ``study``, the standard columns of the kind, then covariates."""
        frame = pd.DataFrame({"study": list(self.study)})
        for col in self.COLUMNS:
            frame[col] = np.array(getattr(self, col))
        cov = self._covariates.reset_index(drop=True)
        return pd.concat([frame, cov], axis=1)

    # ------------------------------------------------------------------ selections
    def _take(self, index: NDArray[np.intp], what: str) -> TrialData:
        if index.size == 0:
            raise located(self.name, f"{what} leaves no trials")
        return type(self)(
            self.name,
            [self.study[i] for i in index],
            **{col: getattr(self, col)[index] for col in self.COLUMNS},
            covariates=self._covariates.iloc[index],
            excluded=self.excluded,
            column_mapping=self._column_mapping,
            notices=self.notices,
        )

    def _position(self, study: str) -> int:
        try:
            return self.study.index(study)
        except ValueError:
            raise located(
                self.name,
                f"unknown study {study!r} (studies: {', '.join(self.study)})",
                column="study",
            ) from None

    def take(self, positions: Sequence[int] | ArrayLike) -> TrialData:
        """The trials at ``positions`` (0-based), in that order (e.g. sorted by year).

        Returns
        -------
        TrialData
            The same type, name, exclusions and notices; a new :attr:`sha256` when the
            order or the trials change.
        """
        return self._take(np.asarray(positions, dtype=np.intp), "the selection")

    def subset(self, studies: Sequence[str] | ArrayLike) -> TrialData:
        """Keep the trials named in ``studies`` (in data order), or those where a mask is True.

        Parameters
        ----------
        studies : sequence of str, str, or boolean array of length k
            Study names (an unknown name is a DataError) or a boolean mask.

        Returns
        -------
        TrialData
            The same type, name, exclusions and notices; a new :attr:`sha256`.
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
                raise located(
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
            raise located(
                self.name,
                f"no trials have {column} in {sorted(keys)} (values: {', '.join(present)})",
                column=column,
            )
        return self._take(np.flatnonzero(mask), "the filter")


@dataclass(frozen=True, init=False, eq=False, repr=False)
class ArmData(TrialData):
    """Arm-level binary counts, one row per trial.

    Attributes
    ----------
    events_t, n_t, events_c, n_c : ndarray of int64
        Events and arm sizes of the treatment and control arms (read-only).
    """

    kind: ClassVar[Kind] = "arm"
    COLUMNS: ClassVar[tuple[str, ...]] = ("events_t", "n_t", "events_c", "n_c")

    events_t: NDArray[np.int64]
    n_t: NDArray[np.int64]
    events_c: NDArray[np.int64]
    n_c: NDArray[np.int64]

    def __init__(
        self,
        name: str,
        study: Sequence[str],
        *,
        events_t: ArrayLike,
        n_t: ArrayLike,
        events_c: ArrayLike,
        n_c: ArrayLike,
        **common: Unpack[Common],
    ) -> None:
        columns = {"events_t": events_t, "n_t": n_t, "events_c": events_c, "n_c": n_c}
        super().__init__(name, study, columns, **common)

    @classmethod
    def _checked(
        cls, name: str, floats: Mapping[str, NDArray[np.float64]]
    ) -> dict[str, NDArray[Any]]:
        """Whole, non-negative counts; every arm has a participant and no more events."""
        for col, arr in floats.items():
            for i, v in enumerate(arr, start=1):
                if not v.is_integer():
                    raise located(name, f"count ({v:g}) is not a whole number", row=i, column=col)
                if v < 0:
                    raise located(name, f"count ({v:g}) is negative", row=i, column=col)
        for arm in ("t", "c"):
            ev, n = floats[f"events_{arm}"], floats[f"n_{arm}"]
            for i in range(ev.size):
                if n[i] == 0:
                    raise located(
                        name,
                        "arm size is 0; every arm needs at least one participant",
                        row=i + 1,
                        column=f"n_{arm}",
                    )
                if ev[i] > n[i]:
                    raise located(
                        name,
                        f"events ({ev[i]:g}) exceed the arm size n_{arm} ({n[i]:g})",
                        row=i + 1,
                        column=f"events_{arm}",
                    )
        return {col: _readonly(arr, np.int64) for col, arr in floats.items()}

    def _compute_contrasts(self, correction: float) -> effects.LogOddsRatios:
        return effects.log_odds_ratios(
            self.events_t, self.n_t, self.events_c, self.n_c, correction=correction
        )

    @property
    def has_zero_cells(self) -> NDArray[np.bool_]:
        """Per trial: a cell (events or non-events, either arm) is zero."""
        cells = np.stack(
            [self.events_t, self.n_t - self.events_t, self.events_c, self.n_c - self.events_c]
        )
        return (cells == 0).any(axis=0)

    @property
    def double_zero(self) -> NDArray[np.bool_]:
        """Per trial: no events in both arms, or only events in both arms."""
        none = (self.events_t == 0) & (self.events_c == 0)
        every = (self.events_t == self.n_t) & (self.events_c == self.n_c)
        return none | every


@dataclass(frozen=True, init=False, eq=False, repr=False)
class ContrastData(TrialData):
    """Per-trial log odds ratios with standard errors, one row per trial.

    Attributes
    ----------
    log_or, se : ndarray of float64
        Log odds ratio (treatment vs control) and its standard error (read-only).
    """

    kind: ClassVar[Kind] = "contrast"
    COLUMNS: ClassVar[tuple[str, ...]] = ("log_or", "se")

    log_or: NDArray[np.float64]
    se: NDArray[np.float64]

    def __init__(
        self,
        name: str,
        study: Sequence[str],
        *,
        log_or: ArrayLike,
        se: ArrayLike,
        **common: Unpack[Common],
    ) -> None:
        super().__init__(name, study, {"log_or": log_or, "se": se}, **common)

    @classmethod
    def _checked(
        cls, name: str, floats: Mapping[str, NDArray[np.float64]]
    ) -> dict[str, NDArray[Any]]:
        """Positive standard errors."""
        for i, v in enumerate(floats["se"], start=1):
            if v <= 0:
                raise located(
                    name, f"standard error must be positive (got {v:g})", row=i, column="se"
                )
        return {col: _readonly(arr, np.float64) for col, arr in floats.items()}

    def _compute_contrasts(self, correction: float) -> effects.LogOddsRatios:
        return effects.LogOddsRatios(
            y=self.log_or,
            se=self.se,
            corrected=np.zeros(self.k, dtype=bool),
            correction=correction,
        )


_TYPES: dict[str, type[TrialData]] = {"arm": ArmData, "contrast": ContrastData}


def trial_type(kind: str) -> type[TrialData]:
    """The trial type of a kind: ``"arm"`` gives ArmData, ``"contrast"`` ContrastData."""
    try:
        return _TYPES[kind]
    except KeyError:
        raise ValueError(f"kind must be 'arm' or 'contrast', not {kind!r}") from None
