"""Reuse of a current report: ``report.stamp.json`` says what a report was made from.

A report is a deterministic function of the FIT folder's files (``posterior.nc``,
``summary.json``, ``analysis.json``, the sensitivity rows, ``bias.json``), of this code
(trialsynth's source, templates and shipped data) and of the plotting stack's versions. Its
slow part is not the text but the analyses behind it (the assurance simulations of the next
trial, the conclusion map, the rank test) and the figures. So when the stamp of an existing
report equals the stamp of the inputs now, ``report FIT`` does not draw or simulate again:
it re-renders ``report.md``/``report.html`` from the stored ``report.json`` and the stored
figures (rendering is a pure function of those, see :mod:`trialsynth.report.report`), and
copies them when the report goes to another folder. Any changed byte of any input, any
edit of the code, another package version, or figure formats the stored report lacks make
the stamps differ, and the report is made again from scratch.

Deleting ``report.stamp.json`` forces a full redraw.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from trialsynth.core.files import sha256_file

#: The stamp's file name in a report folder.
STAMP_FILE = "report.stamp.json"
#: Files of a FIT folder the report is made from (each hashed when present).
INPUT_FILES = (
    "posterior.nc",
    "summary.json",
    "analysis.json",
    "bias.json",
    "sensitivity.json",
    "sensitivity/sensitivity.json",
)
#: Packages whose output is in the figures or the text (their versions are stamped).
STACK = ("matplotlib", "arviz-plots", "arviz-stats", "numpy", "scipy", "jinja2", "pillow")


@functools.cache
def code_digest() -> str:
    """sha256 over every file of the installed trialsynth package (source, templates, data).

    Hashing the code rather than trusting the version number means an edited figure or
    template is never hidden behind a reused report during development.
    """
    import trialsynth

    root = Path(trialsynth.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for name in STACK:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def input_stamp(fit_dir: str | Path, figure_formats: tuple[str, ...]) -> dict[str, Any]:
    """The stamp of a report of the FIT folder ``fit_dir`` with ``figure_formats``."""
    from trialsynth.report.context import REPORT_FORMAT

    folder = Path(fit_dir)
    return {
        "report_format": REPORT_FORMAT,
        "code": code_digest(),
        "versions": _versions(),
        "inputs": {
            name: sha256_file(folder / name) for name in INPUT_FILES if (folder / name).is_file()
        },
        "figure_formats": sorted({"svg", *figure_formats}),
    }


def write_stamp(folder: str | Path, stamp: dict[str, Any]) -> Path:
    """Store ``stamp`` in ``folder`` once every file of the report is written.

    The sha256 of ``report.json`` and of each figure file it lists are stored with it, so a
    report edited or damaged since is made again rather than reused.
    """
    from trialsynth.core.files import atomic_write_text

    folder = Path(folder)
    path = folder / STAMP_FILE
    outputs = {name: sha256_file(folder / name) for name in _output_files(folder)}
    atomic_write_text(
        path, json.dumps(stamp | {"outputs": outputs}, indent=1, sort_keys=True) + "\n"
    )
    return path


#: The file kinds a ``figures`` entry of report.json may name.
FIGURE_KINDS = ("png", "svg", "pdf")


def figure_names(figures: list[dict[str, Any]]) -> list[str]:
    """The files that report.json's ``figures`` entries name (relative to its folder)."""
    return [f[k] for f in figures for k in FIGURE_KINDS if k in f]


def has_figure_files(folder: Path, figures: Any, kinds: Any) -> bool:
    """True when each of ``figures`` (report.json entries) names an existing file of ``kinds``."""
    if not kinds:
        return True
    if not isinstance(figures, list) or not all(isinstance(f, dict) for f in figures):
        return False
    return all(
        isinstance(f.get(k), str) and (folder / f[k]).is_file() for f in figures for k in kinds
    )


def _output_files(folder: Path) -> list[str]:
    """``report.json`` and every figure file it lists (paths relative to ``folder``)."""
    context = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return ["report.json", *figure_names(context.get("figures", []))]


def clear_stamp(folder: str | Path) -> None:
    """Remove the stamp before a report is rewritten (a half-rewritten report is never reused)."""
    (Path(folder) / STAMP_FILE).unlink(missing_ok=True)


def reusable(folder: str | Path, stamp: dict[str, Any]) -> dict[str, Any] | None:
    """The stored ``report.json`` of ``folder`` if its report was made from ``stamp``'s inputs.

    The stored stamp must equal ``stamp`` except that it may hold more figure formats, every
    figure file that ``report.json`` lists must exist, and ``report.json`` and those files
    must be the bytes the stamp recorded. None otherwise.
    """
    folder = Path(folder)
    try:
        stored = json.loads((folder / STAMP_FILE).read_text(encoding="utf-8"))
        context = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or not isinstance(context, dict):
        return None
    same = all(stored.get(k) == v for k, v in stamp.items() if k != "figure_formats")
    if not same or not set(stamp["figure_formats"]) <= set(stored.get("figure_formats", [])):
        return None
    if not has_figure_files(folder, context.get("figures", []), stamp["figure_formats"]):
        return None
    outputs = stored.get("outputs")
    if not isinstance(outputs, dict) or set(outputs) != set(_output_files(folder)):
        return None
    if any(sha256_file(folder / name) != sha for name, sha in outputs.items()):
        return None  # edited or damaged since it was written
    return context
