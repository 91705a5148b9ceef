"""What made a result: provenance, its hashes, package versions, classical references.

A result's root attributes record data hash, model, priors, sampler settings, seed, engine
and package versions. :func:`fit_key` hashes everything that determines the numbers;
:func:`analysis_key` leaves out versions and format (the same analysis after an upgrade).
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from trialsynth import __version__
from trialsynth.core.errors import TrialsynthError
from trialsynth.core.frequentist import classical_summary
from trialsynth.engines.mcmc import numerics
from trialsynth.models.design import observations
from trialsynth.models.spec import ModelSpec, resolve_priors
from trialsynth.priors.prior import ROLES, PriorSet

if TYPE_CHECKING:
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import TrialData
    from trialsynth.models.problem import Problem

#: 2: the engine (mcmc/exact) is part of the fit key.
FORMAT_VERSION = 2
_VERSIONED = (
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "numpy",
    "scipy",
    "xarray",
    "pandas",
)


class ResultError(TrialsynthError):
    """A FIT folder that cannot be read (missing, corrupted, other version)."""


#: Provenance fields that define an analysis (versions and format excluded).
ANALYSIS_FIELDS = ("data_sha256", "model", "priors", "settings", "engine")


def analysis_key(provenance: Mapping[str, Any]) -> str:
    """Hash of what defines an analysis: data, model, priors, sampler settings, engine.

    Unlike :func:`trialsynth.results.provenance.fit_key` it leaves out package versions and the
    result format, so re-running the same analysis after an upgrade is the same analysis.
    """
    blob = json.dumps(
        {k: provenance.get(k, "mcmc" if k == "engine" else None) for k in ANALYSIS_FIELDS},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python, trialsynth and the numerical stack (a fresh dict each call)."""
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    # read once per process: parsing the installed packages' metadata costs about 20 ms
    # (80 ms on a loaded machine), most of an exact fit's time (the explorer's latency)
    out = {"python": platform.python_version(), "trialsynth": __version__}
    for pkg in _VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return tuple(out.items())


def provenance_key_fields(
    data: TrialData,
    spec: ModelSpec,
    priors: PriorSet,
    settings: SamplerSettings,
    engine: str = "mcmc",
) -> dict[str, Any]:
    """The provenance fields that determine a fit's numbers (known before sampling)."""
    priors = resolve_priors(spec, data, priors)
    fields = {
        "format": FORMAT_VERSION,
        "data_sha256": data.sha256,
        "model": spec.to_dict(),
        "priors": {role: getattr(priors, role).to_dict() for role in ROLES},
        "settings": settings.to_dict(),
        "engine": engine,
        "versions": versions(),
    }
    if engine == "mcmc":  # compile form, numba/llvmlite versions, CPU target
        fields["numerics"] = numerics()
    return fields


def fit_key(provenance: dict[str, Any]) -> str:
    """Hash of everything that determines the numbers of a fit."""
    keys = ("data_sha256", "model", "priors", "settings", "engine", "versions", "format")
    fields = {k: provenance.get(k) for k in keys}
    if "numerics" in provenance:  # MCMC fits since the one compile form (issue 11)
        fields["numerics"] = provenance["numerics"]
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def classical_references(data: TrialData, correction: float = 0.5) -> dict[str, Any]:
    """Classical pooled estimates beside the posterior (MH, Peto, IV, DL, REML, PM, DL-HK).

    An estimator that cannot be computed on these data (e.g. Mantel-Haenszel with no
    events at all) is recorded as ``{"error": "..."}`` instead of failing the fit.
    """
    lor = data.contrasts(correction=correction)
    counts = {}
    if data.kind == "arm":
        counts = {
            "events_t": data.events_t,
            "n_t": data.n_t,
            "events_c": data.events_c,
            "n_c": data.n_c,
        }
    try:
        return classical_summary(**counts, y=lor.y, se=lor.se)
    except ValueError as err:
        out: dict[str, Any] = {"error": str(err)}
        try:
            out |= classical_summary(y=lor.y, se=lor.se)
        except ValueError:
            pass
        return out


def package(
    groups: dict[str, Any],
    problem: Problem,
    *,
    settings: SamplerSettings,
    engine: str,
    refits: tuple[dict[str, Any], ...] = (),
    notices: tuple[str, ...] = (),
) -> tuple[xr.DataTree, dict[str, Any]]:
    """The result tree (``groups`` plus ``observed_data``) and its provenance attributes."""
    data, spec, priors = problem.data, problem.spec, problem.priors
    observed = xr.Dataset(
        {name: ("study", np.asarray(values)) for name, values in observations(spec, data).items()},
        coords={"study": list(data.study)},
    )
    provenance = {
        **provenance_key_fields(data, spec, priors, settings, engine=engine),
        "data_name": data.name,
        "k": data.k,
        "studies": list(data.study),
        "seed": settings.seed,
        "notices": list(data.notices) + _model_notices(spec, data) + list(notices),
        "refits": list(refits),
        "frequentist": classical_references(data, spec.correction),
        "data_table": data.to_frame().to_json(orient="records"),
    }
    if data.reference:  # a published pooled result read with the data (RevMan)
        provenance["reference"] = data.reference
    if spec.bias is not None:  # which trials the bias adjustment treated as weaker
        provenance["bias_adjustment"] = bias_record(spec, problem.design.weaker)
    provenance["fit_key"] = fit_key(provenance)
    tree = xr.DataTree.from_dict({**groups, "observed_data": observed})
    tree.attrs["trialsynth"] = json.dumps(provenance, sort_keys=True)
    tree.attrs["trialsynth_fit_key"] = provenance["fit_key"]
    return tree, provenance


def bias_record(spec: ModelSpec, weaker: tuple[str, ...]) -> dict[str, Any]:
    """What ``summary.json`` says of a bias adjustment: the weaker trials and the prior."""
    assert spec.bias is not None
    adj = spec.bias
    m, s = adj.model_prior
    return {
        "column": adj.column,
        "adequate": list(adj.adequate),
        "weaker": list(weaker),
        "prior": adj.prior.describe(),
        "prior_scale": "log ratio of odds ratios, positive = weaker trials overstate benefit",
        "benefit": adj.benefit,
        "model_prior": f"bias_mean ~ normal({m:.6g}, {s:.6g}) on the log-OR scale",
        "sd": adj.sd,
    }


def _model_notices(spec: ModelSpec, data: TrialData) -> list[str]:
    if spec.likelihood != "normal" or data.kind != "arm":
        return []
    lor = data.contrasts(correction=spec.correction)
    fixed = [s for s, c in zip(data.study, lor.corrected, strict=True) if c]
    if not fixed:
        return []
    return [
        f"normal likelihood: {spec.correction} added to every cell of {len(fixed)} trial(s) "
        f"with a zero cell: {', '.join(fixed)}"
    ]
