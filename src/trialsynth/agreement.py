"""Checks of one answer against another.

MCMC against the exact engine, and the binomial-normal model against its normal-normal
approximation. Pure functions on :class:`~trialsynth.results.FitResult` objects and numpy
arrays; they fit nothing themselves except the exact normal-normal posterior (milliseconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.diagnostics import probability_mcse

if TYPE_CHECKING:
    from trialsynth.data import TrialData
    from trialsynth.models import ModelSpec
    from trialsynth.priors import PriorSet
    from trialsynth.results import FitResult

#: |MCMC - exact| above this many Monte Carlo standard errors is flagged as disagreement
#: (4 MCSE: a false alarm about once in 16 000 comparisons if the MCSE is right).
AGREEMENT_Z = 4.0
#: The binomial-normal and normal-normal answers "differ materially" when the pooled
#: log-OR medians differ by more than this fraction of the posterior sd of mu, or P(OR > 1)
#: by more than ``MATERIAL_DP`` (both far above Monte Carlo error at default settings).
MATERIAL_SD = 0.25
MATERIAL_DP = 0.05


def _mcse(x: np.ndarray, method: str, prob: float | None = None) -> float:
    """ArviZ's MCSE of a (chain, draw) array (accounts for autocorrelation)."""
    from arviz_stats.base import array_stats

    kwargs = {"prob": prob} if prob is not None else {}
    return float(
        array_stats.mcse(
            np.asarray(x, dtype=float), chain_axis=-2, draw_axis=-1, method=method, **kwargs
        )
    )


def engine_agreement(exact: FitResult, mcmc: FitResult) -> list[dict[str, Any]]:
    """Compare an MCMC fit with the exact fit of the same model, data and priors.

    Returns one row per quantity (mean, sd, median, 2.5% and 97.5% quantiles of mu, tau
    and theta_new; P(mu > 0), P(theta_new > 0)) with the exact value, the MCMC value, its
    MCSE, ``z = (mcmc - exact) / mcse`` and ``ok = |z| <= AGREEMENT_Z``.
    """
    if exact.exact is None:
        raise ValueError("the first fit must come from the exact engine")
    if exact.provenance["data_sha256"] != mcmc.provenance["data_sha256"]:
        raise ValueError("the two fits are of different data")
    ex = exact.summary()
    rows: list[dict[str, Any]] = []

    def add(quantity: str, exact_value: float, draws: np.ndarray, stat: str) -> None:
        if stat == "mean":
            value, se = float(draws.mean()), _mcse(draws, "mean")
        elif stat == "sd":
            value, se = float(draws.std(ddof=1)), _mcse(draws, "sd")
        elif stat.startswith("p>"):
            ind = draws > 0
            value, se = float(ind.mean()), probability_mcse(ind)
            if se == 0.0:  # no draw on one side: use the binomial MCSE at the exact value
                se = float(np.sqrt(exact_value * (1 - exact_value) / ind.size))
        else:
            q = {"median": 0.5, "q025": 0.025, "q975": 0.975}[stat]
            value, se = float(np.quantile(draws, q)), _mcse(draws, "quantile", q)
        z = (value - exact_value) / se if se > 0 else (0.0 if value == exact_value else np.inf)
        rows.append(
            {
                "quantity": quantity,
                "exact": exact_value,
                "mcmc": value,
                "mcse": se,
                "z": float(z),
                "ok": bool(abs(z) <= AGREEMENT_Z),
            }
        )

    for name in ("mu", "tau", "theta_new"):
        draws = mcmc.draws(name)
        for stat in ("mean", "sd", "median", "q025", "q975"):
            add(f"{name} {stat}", ex[name][stat], draws, stat)
    add("P(mu > 0)", ex["p_mu_gt_0"], mcmc.draws("mu"), "p>0")
    add("P(theta_new > 0)", ex["p_theta_new_gt_0"], mcmc.draws("theta_new"), "p>0")
    return rows


def likelihood_notice(
    mcmc: FitResult | dict[str, Any], data: TrialData, spec: ModelSpec, priors: PriorSet
) -> str | None:
    """Say when a binomial-normal fit and the normal-normal approximation differ materially.

    The normal-normal posterior (log-OR with 0.5 added to every cell of trials with a
    zero cell, same mu and tau priors) is computed exactly. Returns a one-line notice when
    the pooled log-OR medians differ by more than ``MATERIAL_SD`` posterior sds or P(OR > 1)
    by more than ``MATERIAL_DP``, else None (also None where the comparison does not apply:
    contrast data, non-normal random effects, subgroups, covariates, a non-normal mu prior).
    """
    from trialsynth.fit import exact_for, exact_unavailable
    from trialsynth.models import ModelSpec as _Spec

    normal = _Spec(likelihood="normal", random_effects=spec.random_effects)
    if (
        spec.likelihood != "binomial"
        or data.kind != "arm"
        or spec.subgroup
        or spec.covariates
        or exact_unavailable(normal, priors) is not None
    ):
        return None
    s = mcmc if isinstance(mcmc, dict) else mcmc.summary()
    lor = data.contrasts(correction=normal.correction)
    post = exact_for(lor.y, lor.se, priors, data.study)
    med_n, p_n = float(post.mu.median), post.prob_mu_gt(0.0)
    med_b, sd_b, p_b = s["mu"]["median"], s["mu"]["sd"], s["p_mu_gt_0"]
    if abs(med_b - med_n) <= MATERIAL_SD * sd_b and abs(p_b - p_n) <= MATERIAL_DP:
        return None
    why = []
    if data.has_zero_cells.any():
        why.append(f"{int(data.has_zero_cells.sum())} trial(s) with a zero cell")
    few = int((np.minimum(data.events_t, data.events_c) < 5).sum())
    if few:
        why.append(f"{few} trial(s) with fewer than 5 events in an arm")
    return (
        f"binomial-normal and normal-normal answers differ materially: pooled OR "
        f"{np.exp(med_b):.2f} vs {np.exp(med_n):.2f}, P(OR > 1) {p_b:.3f} vs {p_n:.3f}"
        + (f" ({'; '.join(why)})" if why else "")
        + "; the exact binomial likelihood is the one to trust with few events"
    )
