"""What the model sees of the data: observations, subgroup membership, centred covariates.

:func:`observations` and :func:`design_values` are the per-trial values the model is fitted
to (the PyMC model's ``pm.Data``, a result's ``observed_data``); :func:`design` checks the
subgroup and covariate columns a :class:`~trialsynth.models.spec.ModelSpec` names, with
one-line errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trialsynth.models.bias import weaker_trials
from trialsynth.models.spec import ModelError

if TYPE_CHECKING:
    from trialsynth.data.trials import TrialData
    from trialsynth.models.spec import ModelSpec


@dataclass(frozen=True)
class Design:
    """Subgroup membership and centred covariates of the trials (what the model uses)."""

    levels: tuple[str, ...] = ()
    group: np.ndarray | None = None  # index into levels, per trial
    covariates: tuple[str, ...] = ()
    x: np.ndarray | None = None  # (k, p), centred
    centre: tuple[float, ...] = ()
    #: bias adjustment: 0/1 weight of each trial (1: weaker) and its one-hot map onto the
    #: weaker trials, (k, n_weaker), and their labels
    bias_weight: np.ndarray | None = None
    bias_map: np.ndarray | None = None
    weaker: tuple[str, ...] = ()


def design(spec: ModelSpec, data: TrialData) -> Design:
    """Subgroup indices and the centred covariate matrix, with clear errors."""
    cov = data.covariates
    levels: tuple[str, ...] = ()
    group = None
    if spec.subgroup:
        if spec.subgroup not in cov.columns:
            raise ModelError(
                f"subgroup column {spec.subgroup!r} is not in the data; "
                f"valid: {', '.join(map(str, cov.columns)) or '(no covariate columns)'}"
            )
        values = cov[spec.subgroup].loc[list(data.study)]
        missing = [s for s, v in zip(data.study, values, strict=True) if _blank(v)]
        if missing:
            raise ModelError(f"subgroup column {spec.subgroup!r} has no value for {missing[0]!r}")
        labels = [str(v) for v in values]
        levels = tuple(sorted(set(labels)))
        if len(levels) < 2:
            raise ModelError(
                f"subgroup column {spec.subgroup!r} has a single level ({levels[0]!r}): "
                "nothing to compare"
            )
        group = np.array([levels.index(v) for v in labels], dtype=np.int64)
    x = None
    centre: tuple[float, ...] = ()
    if spec.covariates:
        cols = []
        for name in spec.covariates:
            if name not in cov.columns:
                raise ModelError(
                    f"covariate {name!r} is not in the data; "
                    f"valid: {', '.join(map(str, cov.columns)) or '(no covariate columns)'}"
                )
            try:
                col = cov[name].loc[list(data.study)].to_numpy(dtype=float)
            except (TypeError, ValueError):
                raise ModelError(f"covariate {name!r} is not numeric") from None
            if not np.isfinite(col).all():
                bad = data.study[int(np.flatnonzero(~np.isfinite(col))[0])]
                raise ModelError(f"covariate {name!r} has no value for {bad!r}")
            if np.ptp(col) == 0:
                raise ModelError(f"covariate {name!r} is constant across trials")
            cols.append(col)
        raw = np.column_stack(cols)
        centre = tuple(float(c) for c in raw.mean(axis=0))
        x = raw - raw.mean(axis=0)
    bias: dict[str, object] = {}
    if spec.bias is not None:
        w = weaker_trials(spec.bias, data)
        idx = np.flatnonzero(w)
        bias_map = np.zeros((data.k, idx.size))
        bias_map[idx, np.arange(idx.size)] = 1.0
        bias = {
            "bias_weight": w,
            "bias_map": bias_map,
            "weaker": tuple(data.study[i] for i in idx),
        }
    return Design(
        levels=levels, group=group, covariates=spec.covariates, x=x, centre=centre, **bias
    )


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def observations(spec: ModelSpec, data: TrialData) -> dict[str, np.ndarray]:
    """The observed data of the model (per trial) as ``pm.Data`` values."""
    if spec.likelihood == "binomial":
        return {
            "events_t": np.asarray(data.events_t, dtype=np.int64),
            "n_t": np.asarray(data.n_t, dtype=np.int64),
            "events_c": np.asarray(data.events_c, dtype=np.int64),
            "n_c": np.asarray(data.n_c, dtype=np.int64),
        }
    lor = data.contrasts(correction=spec.correction)
    return {"y": np.asarray(lor.y, dtype=float), "se": np.asarray(lor.se, dtype=float)}


def design_values(spec: ModelSpec, data: TrialData) -> dict[str, np.ndarray]:
    """Subgroup index and covariate matrix as ``pm.Data`` values (may be empty)."""
    d = design(spec, data)
    out: dict[str, np.ndarray] = {}
    if d.group is not None:
        out["group"] = d.group
    if d.x is not None:
        out["x"] = d.x
    if d.bias_map is not None:
        out["bias_map"] = d.bias_map
    return out
