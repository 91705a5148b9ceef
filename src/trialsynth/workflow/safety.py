"""Nothing lost or half-written: FIT folder commits, crash recovery, overwrite protection.

Three guarantees for a ``FIT`` folder (``posterior.nc``, ``summary.json``,
``summary.csv``):

* **Whole files, one analysis.** :func:`commit_files` writes every file of a save to a
  hidden temporary name in the folder, then writes a small journal
  (``.trialsynth-commit.json``, itself temp + rename) naming the renames, then renames
  the files into place and deletes the journal. A run killed before the journal exists
  leaves the previous files untouched (and hidden temporaries, removed later); killed
  after, the next :func:`recover` (called by every save, by ``FitResult.load`` and by
  :func:`prepare_output`) finishes the renames. Either way the folder holds the old set
  or the new set, never a mix, and no file is ever partial.
* **Writable before fitting.** :func:`prepare_output` checks that the output folder can be
  created and written before minutes of sampling are spent.
* **No silent overwrite.** A folder that holds a *different* analysis (another
  :func:`analysis_key`: data, model, priors, sampler settings, seed or engine) is not
  overwritten without ``force``; re-running the same analysis is fine (also after a
  package upgrade: versions are not part of the analysis key).

It also rebuilds the inputs of a saved fit from its provenance (``trialsynth fit --from
FIT``): :func:`redo_inputs`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.core.errors import TrialsynthError
from trialsynth.core.files import TEMP_PREFIX, recover
from trialsynth.results.provenance import analysis_key

if TYPE_CHECKING:
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import TrialData
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorSet

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


def _differences(summary: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
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
    same = (
        saved.key == analysis_key(provenance)
        if saved.key is not None
        else _legacy_same(saved.summary, provenance)
    )
    if not same:
        raise OutputError(
            f"{out} holds a different analysis ({saved.describe()}; differs in "
            f"{_differences(saved.summary, provenance)}); use --force to overwrite it or "
            f"choose another {option}"
        )
    return out


# ---------------------------------------------------------------------- redo


@dataclass(frozen=True)
class RedoInputs:
    """Everything needed to redo a saved fit."""

    data: TrialData
    spec: ModelSpec
    priors: PriorSet
    settings: SamplerSettings
    engine: str
    provenance: dict[str, Any]


def _trials_from_table(provenance: Mapping[str, Any]) -> TrialData:
    import pandas as pd

    from trialsynth.data import trial_type

    frame = pd.DataFrame(json.loads(provenance["data_table"]))  # no type guessing
    trials = trial_type("arm" if "events_t" in frame.columns else "contrast")
    covariates = frame.drop(columns=["study", *trials.COLUMNS]).reset_index(drop=True)
    for c in covariates.columns:
        if covariates[c].dtype == object:
            covariates[c] = covariates[c].astype("str").where(covariates[c].notna())
    return trials(
        provenance.get("data_name", "saved data"),
        [str(s) for s in frame["study"]],
        covariates=covariates,
        **{c: frame[c].to_numpy() for c in trials.COLUMNS},
    )


def recorded_trials(provenance: Mapping[str, Any], where: str) -> TrialData:
    """The analysed trials of a saved fit, checked against its recorded sha256.

    Tries the recorded source (a shipped dataset or the CSV path as given, subset to the
    analysed studies), then the data table stored in the provenance.

    Raises
    ------
    OutputError
        When neither reproduces the recorded data hash.
    """
    from trialsynth.data import DataError, load

    sha = provenance["data_sha256"]
    studies = list(provenance.get("studies", []))
    try:
        outcome = (provenance.get("reference") or {}).get("analysis")  # a RevMan outcome
        data = load(provenance["data_name"], min_trials=1, outcome=outcome)
        if data.sha256 != sha and studies and set(studies) <= set(data.study):
            data = data.subset(studies)
        if data.sha256 == sha:
            return data
    except (DataError, KeyError, ValueError):
        pass
    try:
        data = _trials_from_table(provenance)
    except (KeyError, ValueError, TypeError) as err:
        raise OutputError(f"{where}: the recorded data table cannot be read ({err})") from None
    if data.sha256 != sha:
        raise OutputError(
            f"{where}: the data of this fit cannot be recovered ({provenance.get('data_name')} "
            "has changed and the stored table does not reproduce the recorded sha256)"
        )
    return data


def redo_inputs(fit_dir: str | os.PathLike[str]) -> RedoInputs:
    """Data, model, priors, sampler settings and engine of a saved fit, verified.

    The rebuilt inputs must give the recorded :func:`analysis_key` (the same analysis);
    package versions may differ (then the numbers may differ in Monte Carlo error).

    Raises
    ------
    trialsynth.results.provenance.ResultError
        The folder cannot be loaded (see ``FitResult.load``).
    OutputError
        The inputs cannot be rebuilt exactly.
    """
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.results.base import FitResult
    from trialsynth.results.provenance import provenance_key_fields

    result = FitResult.load(fit_dir)
    prov = result.provenance
    data = recorded_trials(prov, str(fit_dir))
    spec, priors = result.spec, result.priors
    settings = SamplerSettings(**prov["settings"])
    engine = prov.get("engine", "mcmc")
    rebuilt = provenance_key_fields(data, spec, priors, settings, engine=engine)
    if analysis_key(rebuilt) != analysis_key(prov):
        raise OutputError(
            f"{fit_dir}: the saved provenance does not rebuild the same analysis (differs in "
            f"{_differences({**rebuilt, 'model_spec': rebuilt['model']}, prov)})"
        )
    return RedoInputs(data, spec, priors, settings, engine, dict(prov))
