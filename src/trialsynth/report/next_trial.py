"""Report sections of the next trial in the updated meta-analysis and of the evidence over time.

:func:`updated_future` runs the updated-meta design of a fit at the report's sizes;
:func:`updated_context` turns it into the ``future.updated`` part of ``report.json``
(the three curves per size, the observed OR above which the updated meta-analysis shows
benefit, and the panel's sentence). :func:`cumulative_for` runs the cumulative
meta-analysis a spec's ``[cumulative]`` section asks for; :func:`cumulative_context` is
its ``cumulative`` section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trialsynth.analysis.assurance import AssuranceError
from trialsynth.analysis.cumulative import Cumulative, cumulative
from trialsynth.analysis.mixture_update import components_for, old_contrasts
from trialsynth.analysis.updated_conclusion import ConclusionMap, conclusion_map
from trialsynth.analysis.updated_meta import UpdatedDesign, design_updated, panel_summary
from trialsynth.core.settings import SamplerSettings
from trialsynth.results.recorded import recorded_trials

if TYPE_CHECKING:
    from trialsynth.results.base import FitResult

#: The section a ``[cumulative]`` spec adds to the report (before Reproducibility).
CUMULATIVE_SECTION = {"id": "cumulative", "heading": "The evidence over time"}


def _prob(p: float, mcse: float) -> str:
    return f"{p:.3f} \u00b1 {mcse:.3f}"


def updated_future(fit: FitResult, sizes: list[int]) -> tuple[UpdatedDesign | None, str]:
    """The updated-meta design at ``sizes`` (``design`` defaults), or None and why not."""
    if fit.spec.likelihood != "binomial":
        return None, (
            "A normal-likelihood fit carries no control-arm rate; run `trialsynth design FIT "
            "--criterion updated-meta --n-per-arm N --control-rate P`."
        )
    try:
        return design_updated(fit, sizes), ""
    except AssuranceError as err:  # subgroup or Student-t fits: said in the section
        return None, f"No updated-meta assurance: {err}"


def updated_context(design: UpdatedDesign | None, note: str) -> dict[str, Any]:
    """``future.updated`` of ``report.json``."""
    if design is None:
        return {"present": False, "note": note, "rows": []}
    rows = []
    for p in design.points:
        c = p.curves
        rows.append(
            {
                "n": p.n_per_arm,
                "alone": _prob(c["two-sided-test"].assurance, c["two-sided-test"].mcse),
                "bayes": _prob(c["updated-meta"].assurance, c["updated-meta"].mcse),
                "classical": _prob(
                    c["updated-meta-classical"].assurance, c["updated-meta-classical"].mcse
                ),
                "benefit_or": ", ".join(f"{x:.2f}" for x in p.crossing.benefit) or "never",
                "ess": "exact"
                if p.importance is None
                else f"{p.importance['ess_min_near_threshold']:.0f}",
            }
        )
    lim = design.limits
    return {
        "present": True,
        "note": "",
        "sentence": panel_summary(design),
        "criterion": design.criterion_text,
        "threshold": design.threshold,
        "p_now": f"{design.p_mu_gt_0:.3f}",
        "limits": (
            f"trial alone {_prob(*lim['stand-alone'])}; updated P(OR > 1) > "
            f"{design.threshold:g} {_prob(*lim['updated-meta'])}; updated DL "
            f"{_prob(*lim['updated-meta-classical'])}"
        ),
        "method": (
            "exact update of the tau quadrature nodes"
            if design.components == "exact"
            else f"importance reweighting of the {design.n_components} posterior draws "
            "(Rao-Blackwellised over mu; smallest Kish ESS near the threshold per size in the "
            "table; the assurance MCSE includes the reweighting error)"
        ),
        "rows": rows,
    }


#: Sizes per arm of the report's conclusion map (log-spaced).
MAP_SIZES = (20, 35, 60, 100, 170, 300, 500, 850, 1500)


def conclusion_for(fit: FitResult, design: UpdatedDesign) -> ConclusionMap:
    """Where a new trial would change the conclusion, at the design's median control rate."""
    y_old, se_old = old_contrasts(fit)
    return conclusion_map(
        components_for(fit), y_old, se_old, design.control_rate, design.threshold, MAP_SIZES
    )


def cumulative_for(fit: FitResult, order: str) -> Cumulative:
    """The cumulative meta-analysis of a fit's trials with its model, priors and sampler."""
    data = recorded_trials(fit.provenance, "the cumulative section")
    settings = SamplerSettings(**fit.provenance["settings"])
    engine = "exact" if fit.engine == "exact" else "mcmc"
    return cumulative(
        data, spec=fit.spec, priors=fit.priors, settings=settings, order=order, engine=engine
    )


def cumulative_context(cum: Cumulative) -> dict[str, Any]:
    """``cumulative`` of ``report.json``."""
    rows = []
    for s in cum.steps:
        o, c = s.odds_ratio, s.classical
        mc = s.mcse
        rows.append(
            {
                "k": s.k,
                "order": "" if s.order_value is None else str(s.order_value),
                "added": s.added,
                "or": f"{o['median']:.2f} [{o['q025']:.2f}, {o['q975']:.2f}]",
                "tau": f"{s.tau['median']:.2f}",
                "p": f"{s.p_mu_gt_0:.3f}" if mc is None else _prob(s.p_mu_gt_0, mc["p_mu_gt_0"]),
                "p_new": f"{s.p_theta_new_gt_0:.3f}",
                "dl": f"{c['or']:.2f} [{c['lower']:.2f}, {c['upper']:.2f}]",
                "status": s.status,
            }
        )
    return {
        "present": True,
        "order": cum.order,
        "engine": cum.engine,
        "rows": rows,
    }
