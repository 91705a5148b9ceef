"""The binomial-normal fit checked against its normal-normal approximation (exact, ms)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.engines.exact import exact_for, exact_unavailable
from trialsynth.models.bias import weaker_trials
from trialsynth.models.spec import ModelSpec

if TYPE_CHECKING:
    from trialsynth.data import TrialData
    from trialsynth.priors.prior import PriorSet
    from trialsynth.results.base import FitResult

#: The binomial-normal and normal-normal answers "differ materially" when the pooled
#: log-OR medians differ by more than this fraction of the posterior sd of mu, or P(OR > 1)
#: by more than ``MATERIAL_DP`` (both far above Monte Carlo error at default settings).
MATERIAL_SD = 0.25
MATERIAL_DP = 0.05


def likelihood_notice(
    mcmc: FitResult | dict[str, Any], data: TrialData, spec: ModelSpec, priors: PriorSet
) -> str | None:
    """Say when a binomial-normal fit and the normal-normal approximation differ materially.

    The normal-normal posterior (log-OR with 0.5 added to every cell of trials with a
    zero cell, same mu and tau priors) is computed exactly. Returns a one-line notice when
    the pooled log-OR medians differ by more than ``MATERIAL_SD`` posterior sds or P(OR > 1)
    by more than ``MATERIAL_DP``, else None (also None where the comparison does not apply:
    contrast data, non-normal random effects, subgroups, covariates, a non-normal mu prior).
    A bias-adjusted fit is compared with the bias-adjusted normal-normal model.
    """
    normal = ModelSpec(likelihood="normal", random_effects=spec.random_effects, bias=spec.bias)
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
    weight = None if spec.bias is None else weaker_trials(spec.bias, data)
    post = exact_for(lor.y, lor.se, priors, data.study, bias=spec.bias, weight=weight)
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
