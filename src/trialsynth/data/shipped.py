"""Shipped datasets and the data source: a CSV path, or the name of a shipped dataset.

Shipped column mappings: ``crins2014`` (publication, exp_AR_events, exp_total,
cont_AR_events, cont_total) and ``bcg`` (study = author + year; events = tpos/cpos, arm
size = tpos + tneg / cpos + cneg). A user's ``columns`` mapping wins over a shipped one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from trialsynth.data.columns import norm
from trialsynth.data.errors import located

__all__ = ["SHIPPED_DATASETS", "ShippedSpec", "read_source", "shipped_columns"]

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


@dataclass(frozen=True)
class ShippedSpec:
    """Where a shipped dataset is and how its columns map to the standard ones.

    Attributes
    ----------
    file : str
        CSV file name under ``trialsynth/data/datasets/``.
    columns : mapping
        File column -> standard name.
    study_from : tuple of str
        Columns joined by a space into the study name, when the file has no study column.
    """

    file: str
    columns: Mapping[str, str] = field(default_factory=dict)
    study_from: tuple[str, ...] = ()


_SHIPPED: dict[str, ShippedSpec] = {
    "ivig_rm": ShippedSpec("ivig_rm.csv"),
    "ivig_rm_secondary": ShippedSpec("ivig_rm_secondary.csv"),
    "crins2014": ShippedSpec(
        "crins2014.csv",
        columns={
            "publication": "study",
            "exp_AR_events": "events_t",
            "exp_total": "n_t",
            "cont_AR_events": "events_c",
            "cont_total": "n_c",
        },
    ),
    "bcg": ShippedSpec(
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


def read_source(source: str | os.PathLike[str]) -> tuple[str, bytes, ShippedSpec | None]:
    """The label, the bytes and (for a shipped dataset) the spec of a data source.

    An existing file wins over a shipped dataset of the same name.
    """
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        try:
            return text, path.read_bytes(), None
        except OSError as exc:
            raise located(text, f"cannot read the file ({exc.strerror})") from None
    if text in _SHIPPED:
        spec = _SHIPPED[text]
        raw = resources.files("trialsynth.data").joinpath("datasets", spec.file).read_bytes()
        return text, raw, spec
    names = ", ".join(sorted(SHIPPED_DATASETS))
    if path.is_dir():
        raise located(text, f"is a directory, not a CSV file (shipped datasets: {names})")
    raise located(text, f"no such file, and not a shipped dataset name (shipped datasets: {names})")


def shipped_columns(
    spec: ShippedSpec | None,
    columns: Mapping[str, str] | None,
    label: str,
    header: list[str],
    rows: list[list[str]],
) -> tuple[list[str], dict[str, str] | None, str, str | None]:
    """Merge a shipped mapping with the user's; build a shipped dataset's study column.

    Parameters
    ----------
    spec : ShippedSpec or None
        The shipped dataset read, or None for a file.
    columns : mapping or None
        The user's mapping (file column -> standard name); it wins over the shipped one.
    label : str
        The source, for the notice.
    header : list of str
        The file's header.
    rows : list of list of str
        The cells of every data row; a built study column is appended in place.

    Returns
    -------
    header : list of str
        The header, with ``study`` appended when it was built.
    merged : dict or None
        The mapping to apply (None when there is none).
    mapped_by : str
        Who mapped the columns, for the notice (empty when nobody did).
    study_expr : str or None
        How the built study column was made, e.g. ``"author + year"``.
    """
    mapped_by = ""
    merged: dict[str, str] = {}
    if spec is not None:
        user_roles = {norm(v) for v in (columns or {}).values()}
        merged.update({s: d for s, d in spec.columns.items() if d not in user_roles})
        if spec.study_from and "study" not in user_roles and "study" not in header:
            parts = [header.index(c) for c in spec.study_from]
            header = [*header, "study"]
            for cells in rows:
                cells.append(" ".join(cells[p].strip() for p in parts))
        if merged or spec.study_from:
            mapped_by = f"shipped dataset {label}"
    if columns:
        merged.update(columns)
        mapped_by = "as given" if not mapped_by else mapped_by + " and as given"
    study_expr = None
    if spec is not None and spec.study_from and "study" in header[-1:]:
        study_expr = " + ".join(spec.study_from)
    return header, merged or None, mapped_by, study_expr
