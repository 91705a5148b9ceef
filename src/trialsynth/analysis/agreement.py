"""Checks of one answer against another.

MCMC against the exact engine, and the binomial-normal model against its normal-normal
approximation. Pure functions on :class:`~trialsynth.results.base.FitResult` objects and numpy
arrays; they fit nothing themselves except the exact normal-normal posterior (milliseconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.engines.diagnostics import probability_mcse
from trialsynth.results.exact import ExactFit

if TYPE_CHECKING:
    from trialsynth.results.base import FitResult

#: |MCMC - exact| above this many Monte Carlo standard errors is flagged as disagreement
#: (4 MCSE: a false alarm about once in 16 000 comparisons if the MCSE is right).
AGREEMENT_Z = 4.0


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
    if not isinstance(exact, ExactFit) or exact.posterior is None:
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
