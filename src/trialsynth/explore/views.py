"""The numbers behind the explorer's figures, from a FitResult (no statistic of its own).

Exact fits: densities and P(OR > c) from the exact engine's marginals. MCMC fits: the
report's kernel densities of the draws and :func:`queries.benefit_curve`. Priors: the
Prior objects' own densities; the prior predictive of theta_new from the report's draws.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trialsynth.core.density import kde
from trialsynth.report.plots import _prior_predictive
from trialsynth.report.style import observed_effects
from trialsynth.results.queries import benefit_curve

GRID = 161
#: P(OR > c) curve: c from 1/4 to 4 on a log grid (c = 1 is a grid point).
C_GRID = np.exp(np.linspace(math.log(0.25), math.log(4.0), 121))
PRIOR_PREDICTIVE_DRAWS = 2000  # a curve to look at: KDE cost is draws x grid


def _clean(values: Any) -> list[float | None]:
    arr = np.asarray(values, dtype=float).ravel()
    return [float(v) if math.isfinite(v) else None for v in arr]


def _range(marginal: Any, draws: np.ndarray) -> tuple[float, float]:
    """The grid's range: 0.1%..99.9% of the posterior, padded by a fifth."""
    if marginal is not None:
        lo, hi = float(marginal.ppf(0.001)), float(marginal.ppf(0.999))
    else:
        lo, hi = (float(v) for v in np.quantile(draws, [0.001, 0.999]))
    pad = 0.2 * (hi - lo)
    return lo - pad, hi + pad


def _density(fit: Any, name: str, *, lower: float | None = None) -> dict[str, Any]:
    marginal = fit.marginal(name)
    draws = np.asarray(fit.draws(name), float).ravel()
    lo, hi = _range(marginal, draws)
    if lower is not None:
        lo = lower
    grid = np.linspace(lo, hi, GRID)
    post = fit.density(name, grid, lower=lower)
    return {"x": _clean(grid), "posterior": _clean(post)}


def _structured(fit: Any) -> bool:
    return bool(fit.subgroups) or bool(fit.spec.covariates)


def _curves(fit: Any) -> dict[str, Any]:
    mu = _density(fit, "mu")
    new = _density(fit, "theta_new")
    prior = fit.priors
    mu["prior"] = None
    if prior.mu.family != "flat" and not _structured(fit):
        mu["prior"] = _clean(prior.mu.dist().pdf(np.asarray(mu["x"], float)))
    new["prior"] = None
    seed = int(fit.provenance["seed"])
    pred = None if _structured(fit) else _prior_predictive(fit, PRIOR_PREDICTIVE_DRAWS, seed)
    if pred is not None:
        new["prior"] = _clean(kde(pred, np.asarray(new["x"], float)))
    out = {"mu": mu, "theta_new": new}
    if fit.spec.random_effects is not None:
        tau = _density(fit, "tau", lower=0.0)
        tau["prior"] = None
        if prior.tau.family != "flat":
            dens = prior.tau.tau_dist().pdf(np.asarray(tau["x"], float))
            tau["prior"] = _clean(dens)
        out["tau"] = tau
    return out


def _benefit(fit: Any) -> dict[str, Any]:
    logc = np.log(C_GRID)
    m_or, m_new = fit.marginal("mu"), fit.marginal("theta_new")
    if m_or is not None and m_new is not None:
        p_or, p_new = m_or.sf(logc), m_new.sf(logc)
    else:
        frame = benefit_curve(fit, C_GRID)
        p_or, p_new = frame["p_or"].to_numpy(), frame["p_or_new"].to_numpy()
    return {"c": _clean(C_GRID), "p_or": _clean(p_or), "p_or_new": _clean(p_new)}


def _observed_intervals(fit: Any) -> tuple[np.ndarray, np.ndarray]:
    """Observed log-ORs and 95% half-widths: what a normal likelihood saw, else the report's."""
    obs = fit.tree["observed_data"]
    if "y" in obs and "se" in obs:
        return np.asarray(obs["y"].values, float), 1.959964 * np.asarray(obs["se"].values, float)
    y, half, _counts = observed_effects(fit)
    return y, half


def _forest(fit: Any, summary: dict[str, Any]) -> list[dict[str, Any]]:
    y, half = _observed_intervals(fit)
    column = fit.provenance["model"].get("subgroup")
    groups = None
    if column:
        groups = fit.data_frame.set_index("study").loc[fit.studies, column].astype(str).tolist()
    rows = []
    for i, t in enumerate(summary["theta"]):
        rows.append(
            {
                "study": t["study"],
                "y": float(y[i]),
                "lower": float(y[i] - half[i]),
                "upper": float(y[i] + half[i]),
                "group": groups[i] if groups else None,
                "theta": {k: t[k] for k in ("median", "q025", "q975")},  # log OR
                "or": t["or"],
            }
        )
    return rows


def view_payload(fit: Any) -> dict[str, Any]:
    """The JSON the page draws: the summary (``fit --json``), forest rows, curves."""
    summary = fit.summary()
    return {
        "summary": summary,
        "forest": _forest(fit, summary),
        "curves": _curves(fit),
        "benefit": _benefit(fit),
    }
