"""What ``trialsynth bias DATA|FIT`` does: the ensemble, the classical tests, ``bias.json``.

It reads the trials, runs the model-averaged bias analysis and the classical small-study
tests, and writes ``bias.json`` (the report's bias section reads it).

``DATA`` is a CSV path or a shipped dataset; ``FIT`` a fit folder, whose analysed trials
(after its exclusions, checked against the recorded data hash) and continuity correction are
used, and whose own P(OR > 1) is shown beside the ensemble's.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.analysis.bias import BiasResult, bias_analysis
from trialsynth.analysis.bias_models import BiasError, bias_priors
from trialsynth.core.files import atomic_write_text
from trialsynth.core.settings import DEFAULT_SEED
from trialsynth.core.smallstudy import SmallStudyError, egger_test, peters_test

if TYPE_CHECKING:
    from trialsynth.data.trials import TrialData

#: File of the bias analysis in a FIT folder (or an ``--out`` folder).
BIAS_FILE = "bias.json"


@dataclass
class BiasRun:
    """A bias analysis with its inputs and the classical tests beside it."""

    result: BiasResult
    data_name: str
    data_sha256: str
    small_study: dict[str, Any]
    fit: dict[str, Any] | None  # the FIT's own summary numbers, when DATA was a FIT

    def to_json(self) -> dict[str, Any]:
        """The ``bias --json`` object: INTERFACE keys plus the inputs and classical tests."""
        out = self.result.to_json()
        out |= {"data": self.data_name, "data_sha256": self.data_sha256}
        out["small_study"] = self.small_study
        out["fit"] = self.fit
        return _finite(out)


def _finite(value: Any) -> Any:
    """JSON has no inf or nan: non-finite numbers become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _is_fit_folder(source: str) -> bool:
    return os.path.isdir(source) and (Path(source) / "summary.json").is_file()


def read_source(source: str) -> tuple[TrialData, float, dict[str, Any] | None]:
    """Trials, continuity correction and (for a FIT) the fit's summary numbers."""
    if not _is_fit_folder(source):
        from trialsynth.data import load

        return load(source, min_trials=3), 0.5, None
    from trialsynth.results.base import FitResult
    from trialsynth.results.recorded import recorded_trials

    fit = FitResult.load(source)
    s = fit.summary()
    data = recorded_trials(fit.provenance, source)
    keep = ("model", "engine", "priors", "or", "p_mu_gt_0", "mcse", "fit_key")
    return data, fit.spec.correction, {"folder": str(source), **{k: s.get(k) for k in keep}}


def small_study_tests(data: TrialData, y: Any, se: Any) -> dict[str, Any]:
    """Egger's test on the log ORs, Peters' on the counts; a test that cannot run says why."""
    out: dict[str, Any] = {}
    try:
        out["egger"] = egger_test(y, se).to_dict()
    except SmallStudyError as err:
        out["egger"] = {"error": str(err)}
    if data.kind != "arm":
        out["peters"] = {"error": "Peters' test needs arm-level counts"}
    else:
        try:
            out["peters"] = peters_test(data.events_t, data.n_t, data.events_c, data.n_c).to_dict()
        except SmallStudyError as err:
            out["peters"] = {"error": str(err)}
    return out


def run_bias(
    source: str,
    *,
    mu_prior: str | None = None,
    tau_prior: str | None = None,
    seed: int | None = None,
) -> BiasRun:
    """The bias analysis of ``DATA`` or ``FIT`` (priors as grammar strings; None: defaults)."""
    data, correction, fit = read_source(source)
    if data.k < 3:
        raise BiasError(f"{source}: the bias analysis needs at least 3 trials, got {data.k}")
    lor = data.contrasts(correction=correction)
    priors = bias_priors(mu_prior, tau_prior, se=lor.se)
    result = bias_analysis(
        lor.y,
        lor.se,
        priors=priors,
        labels=list(data.study),
        seed=DEFAULT_SEED if seed is None else seed,
    )
    tests = small_study_tests(data, lor.y, lor.se)
    return BiasRun(result, data.name, data.sha256, tests, fit)


def save_bias(run: BiasRun, folder: str | os.PathLike[str]) -> Path:
    """Write ``bias.json`` into ``folder`` (atomically; the folder is created)."""
    path = Path(folder) / BIAS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(run.to_json(), indent=1) + "\n")
    return path


def source_is_fit(source: str) -> bool:
    """True when ``source`` is a FIT folder (where ``bias`` saves its ``bias.json``)."""
    return _is_fit_folder(source)
