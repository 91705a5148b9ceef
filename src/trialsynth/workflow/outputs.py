"""Output folders: checked before fitting, written after (``fit --out``, ``run``).

* **Writable before fitting.** :func:`prepare_output` checks that the output folder can be
  created and written before minutes of sampling are spent.
* **No silent overwrite.** A folder that holds a *different* analysis (another
  :func:`~trialsynth.results.provenance.analysis_key`: data, model, priors, sampler
  settings, seed or engine) is not overwritten without ``force``; re-running the same
  analysis is fine (also after a package upgrade: versions are not part of the key).
* **Whole files, one analysis.** :func:`write_outputs` saves the result and its forest
  plot through the journalled commits of :mod:`trialsynth.core.files` (a kill leaves the
  old set or the new set, never a mix), then the report when asked.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.core.errors import TrialsynthError
from trialsynth.core.files import TEMP_PREFIX, commit_files, recover
from trialsynth.report.context import find_sensitivity
from trialsynth.report.forest import forest_plot
from trialsynth.report.pdf import DEFAULT_FIGURE_FORMATS
from trialsynth.report.report import (
    ReportFiles,
    analysis_meta,
    report_from_folder,
    write_analysis_meta,
)
from trialsynth.report.report import write_report as report_files
from trialsynth.report.stamp import input_stamp

if TYPE_CHECKING:
    from concurrent.futures import Future

    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import TrialData
    from trialsynth.engines.base import Progress
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorSet
    from trialsynth.report.report import FutureAnalyses
    from trialsynth.results.base import FitResult

#: Formats of a report and of its figures (``html``/``md``/``pdf``, ``png``/``svg``/``pdf``).
Formats = tuple[tuple[str, ...], tuple[str, ...]]
DEFAULT_FORMATS: Formats = (("html", "md"), DEFAULT_FIGURE_FORMATS)
#: Files of a FIT folder that identify the analysis it holds.
FIT_FILES = ("posterior.nc", "summary.json", "summary.csv")


class OutputError(TrialsynthError):
    """An output folder that cannot or must not be written (one-line message)."""


# ---------------------------------------------------------------------- output checks


@dataclass(frozen=True)
class SavedAnalysis:
    """What a FIT folder holds, read from its ``summary.json``."""

    key: str | None  # None for summaries written before analysis keys existed
    summary: dict[str, Any]

    def describe(self) -> str:
        """Short description for messages."""
        s = self.summary
        return f"{s.get('model', '?')} fit of {s.get('data', '?')}, seed {s.get('seed', '?')}"


def saved_analysis(folder: str | os.PathLike[str]) -> SavedAnalysis | None:
    """The analysis a folder holds (None when it holds no trialsynth output).

    Raises
    ------
    OutputError
        When trialsynth outputs are present but cannot be read.
    """
    out = Path(folder)
    if not out.is_dir():
        return None
    recover(out)
    summary_path = out / "summary.json"
    if not summary_path.exists():
        if (out / "posterior.nc").exists():
            raise OutputError(
                f"{out} holds a posterior.nc without summary.json (an incomplete or foreign "
                "trialsynth output); --force overwrites it"
            )
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise OutputError(
            f"{summary_path}: cannot be read ({type(err).__name__}); --force overwrites it"
        ) from None
    return SavedAnalysis(summary.get("analysis_key"), summary)


def _legacy_same(summary: Mapping[str, Any], provenance: Mapping[str, Any]) -> bool:
    """For summaries without an analysis key: same data, model and sampler settings."""
    return (
        summary.get("data_sha256") == provenance.get("data_sha256")
        and summary.get("model_spec") == provenance.get("model")
        and summary.get("settings") == provenance.get("settings")
    )


def differences(summary: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
    """What differs between a saved summary and the provenance of an analysis, for messages."""
    parts = []
    if summary.get("data_sha256") != provenance.get("data_sha256"):
        parts.append("data")
    if summary.get("model_spec") != provenance.get("model"):
        parts.append("model")
    settings = summary.get("settings")
    if settings != provenance.get("settings"):
        new = provenance.get("settings") or {}
        if isinstance(settings, dict) and {k: v for k, v in settings.items() if k != "seed"} == {
            k: v for k, v in new.items() if k != "seed"
        }:
            parts.append("seed")
        else:
            parts.append("sampler settings")
    if summary.get("engine", "mcmc") != provenance.get("engine", "mcmc"):
        parts.append("engine")
    return ", ".join(parts) or "priors"


def prepare_output(
    folder: str | os.PathLike[str],
    provenance: Mapping[str, Any] | None = None,
    *,
    force: bool = False,
    option: str = "--out",
) -> Path:
    """Check, before fitting, that ``folder`` can be written and may be overwritten.

    Parameters
    ----------
    folder : path
        The output folder (created here, so a bad path fails before any sampling).
    provenance : mapping, optional
        :func:`trialsynth.results.provenance.provenance_key_fields` of the analysis about to be
        written; when given, a folder holding a different analysis is refused.
    force : bool
        Overwrite a folder holding a different (or unreadable) analysis.
    option : str
        How the folder was given, for messages.

    Raises
    ------
    OutputError
        Not creatable, not writable, or holding a different analysis without ``force``.
    """
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out}: is a file, not a folder")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{option} {out}: {parent} is a file, so no folder can be made in it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=f"{TEMP_PREFIX}probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(
            f"{option} {out}: cannot write there ({err.strerror or type(err).__name__})"
        ) from None
    if provenance is None or force:
        return out
    try:
        saved = saved_analysis(out)
    except OutputError as err:
        raise OutputError(f"{err} (or choose another {option})") from None
    if saved is None:
        return out
    from trialsynth.results.provenance import analysis_key  # heavy: results, priors, scipy

    same = (
        saved.key == analysis_key(provenance)
        if saved.key is not None
        else _legacy_same(saved.summary, provenance)
    )
    if not same:
        raise OutputError(
            f"{out} holds a different analysis ({saved.describe()}; differs in "
            f"{differences(saved.summary, provenance)}); use --force to overwrite it or "
            f"choose another {option}"
        )
    return out


def check_output(
    folder: Path,
    data: TrialData,
    spec: ModelSpec,
    priors: PriorSet,
    settings: SamplerSettings,
    engine: str,
    *,
    force: bool = False,
    option: str = "--out",
) -> dict[str, Any]:
    """:func:`prepare_output` for the analysis of these inputs; returns its key fields.

    ``engine`` may be ``auto`` (resolved here as the fit will resolve it).
    """
    # here, not at the top: `report FIT` imports this module and needs no engine (scipy.stats)
    from trialsynth.engines.select import choose_engine
    from trialsynth.models.spec import resolve_priors
    from trialsynth.results.provenance import provenance_key_fields

    chosen = choose_engine(engine, spec, resolve_priors(spec, data, priors))
    fields = provenance_key_fields(data, spec, priors, settings, engine=chosen)
    prepare_output(folder, fields, force=force, option=option)
    return fields


# ---------------------------------------------------------------------- writing


def _say(progress: Progress | None, phase: str) -> None:
    if progress is not None:
        progress(phase)


def write_outputs(
    result: FitResult,
    folder: Path,
    *,
    progress: Progress | None = None,
    title: str | None = None,
    treatment: str = "treatment",
    control: str = "control",
    analysis: dict[str, Any] | None = None,
    report: bool = False,
    formats: Formats = DEFAULT_FORMATS,
) -> dict[str, float]:
    """Save ``result`` and its forest plot into ``folder`` (and the report if ``report``).

    ``formats``: of the report and of its figures (see :func:`write_report`).

    Returns
    -------
    dict
        Seconds spent per phase (``save_s``, ``plots_s``, and the report's phases).
    """
    import matplotlib.pyplot as plt  # heavy: only when a folder is written

    timings = {}
    t0 = time.perf_counter()
    _say(progress, "save")
    result.save(folder)
    timings["save_s"] = time.perf_counter() - t0
    _say(progress, "plots")
    t0 = time.perf_counter()
    fig = forest_plot(
        result,
        title=title or f"{result.provenance['data_name']}: {result.summary()['model']}",
        treatment=treatment,
        control=control,
    )
    # through a journalled commit: never a half-written figure
    commit_files(folder, {"forest.png": lambda path: fig.savefig(path, dpi=300, format="png")})
    plt.close(fig)
    timings["plots_s"] = time.perf_counter() - t0
    if report:
        timings |= write_report(
            result, folder, analysis=analysis, progress=progress, formats=formats
        )
    return timings


def write_report(
    result: FitResult,
    folder: Path,
    *,
    analysis: dict[str, Any] | None = None,
    progress: Progress | None = None,
    formats: Formats = DEFAULT_FORMATS,
    ahead: Future[FutureAnalyses] | None = None,
) -> dict[str, float]:
    """Write ``analysis.json``, the figures, ``report.html`` and ``report.md`` into a FIT folder.

    The report shows the sensitivity table found in ``folder/sensitivity``, if any.
    ``formats``: the report's (``html``, ``md``, ``pdf``) and its figures' (``png``,
    ``svg``, ``pdf``); ``ahead``: its future-trial analyses, started earlier
    (:func:`trialsynth.report.report.start_future_analyses`).
    """
    _say(progress, "report")
    meta = analysis or analysis_meta(name=str(result.provenance["data_name"]))
    write_analysis_meta(folder, meta)
    files = report_files(
        result,
        folder,
        analysis=meta,
        sensitivity=find_sensitivity(folder),
        formats=formats[0],
        figure_formats=formats[1],
        # every input file is in place: an unchanged fit's `report FIT` reuses this report
        stamp=input_stamp(folder, formats[1]),
        ahead=ahead,
    )
    return files.timings


def report_folder(
    fit_dir: Path,
    out_dir: Path | None = None,
    *,
    formats: tuple[str, ...] = ("html", "md"),
    figure_formats: tuple[str, ...] = DEFAULT_FIGURE_FORMATS,
) -> ReportFiles:
    """``trialsynth report FIT [--out DIR]``: the report of a saved fit.

    The target folder is checked (and made) first, so an unwritable one is the user's
    one-line error, not a failure half-way through the figures.
    """
    if (fit_dir / "posterior.nc").is_file():
        prepare_output(out_dir or fit_dir, option="--out" if out_dir else "FIT")
    return report_from_folder(fit_dir, out_dir, formats=formats, figure_formats=figure_formats)
