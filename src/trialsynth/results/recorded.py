"""The analysed trials of a saved fit, rebuilt from its provenance and checked.

A result records the name of its data source, the analysed studies, the sha256 of the
trials and the trials themselves as a table. :func:`recorded_trials` gives them back
(``fit --from``, the report's cumulative section, ``bias FIT``): from the source if it still
holds the same trials, else from the stored table; the hash must match either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from trialsynth.core.errors import TrialsynthError
from trialsynth.data import TrialData, load, trial_type
from trialsynth.results.provenance import ResultError


def _trials_from_table(provenance: Mapping[str, Any]) -> TrialData:
    import pandas as pd

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
    ResultError
        When neither reproduces the recorded data hash.
    """
    sha = provenance["data_sha256"]
    studies = list(provenance.get("studies", []))
    try:
        outcome = (provenance.get("reference") or {}).get("analysis")  # a RevMan outcome
        data = load(provenance["data_name"], min_trials=1, outcome=outcome)
        if data.sha256 != sha and studies and set(studies) <= set(data.study):
            data = data.subset(studies)
        if data.sha256 == sha:
            return data
    except (TrialsynthError, KeyError):  # the source moved or changed: try the stored table
        pass
    try:
        data = _trials_from_table(provenance)
    except (KeyError, ValueError, TypeError) as err:  # a damaged table in the user's file
        raise ResultError(f"{where}: the recorded data table cannot be read ({err})") from None
    if data.sha256 != sha:
        raise ResultError(
            f"{where}: the data of this fit cannot be recovered ({provenance.get('data_name')} "
            "has changed and the stored table does not reproduce the recorded sha256)"
        )
    return data
