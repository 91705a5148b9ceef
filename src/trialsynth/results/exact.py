"""The result of the exact engine: iid draws plus the exact posterior they came from.

Summaries and single-quantity queries come from the exact marginals (no Monte Carlo
error); the iid draws serve comparisons between quantities and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr

from trialsynth.core.exact import ExactPosterior
from trialsynth.engines.diagnostics import iid_probability_mcse
from trialsynth.engines.exact import exact_for, exact_subgroup_posteriors
from trialsynth.results.base import FitResult
from trialsynth.results.provenance import package

if TYPE_CHECKING:
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.engines.base import EngineFit
    from trialsynth.models.problem import Problem

#: The summary quantities a subgroup's exact posterior replaces.
_SUBGROUP_KEYS = ("mu", "tau", "or", "or_new", "p_mu_gt_0", "p_theta_new_gt_0")
_WHOLE = ("mu", "tau", "theta_new")


@dataclass
class ExactFit(FitResult):
    """Exact normal-normal posterior: one for all trials, or one per subgroup.

    Attributes
    ----------
    posterior : ExactPosterior or None
        The posterior of all trials (None for a subgroup fit).
    subgroup_posteriors : dict or None
        Level -> posterior of that subgroup (independent models: one tau each).
    """

    posterior: ExactPosterior | None = None
    subgroup_posteriors: dict[str, ExactPosterior] | None = None

    engine: ClassVar[str] = "exact"

    @classmethod
    def from_engine(
        cls,
        out: EngineFit,
        problem: Problem,
        *,
        settings: SamplerSettings,
        notices: tuple[str, ...] = (),
    ) -> ExactFit:
        """Package the exact engine's draws and posterior(s) with their provenance."""
        tree, provenance = package(
            {"posterior": out.tree["posterior"].to_dataset()},
            problem,
            settings=settings,
            engine="exact",
            notices=notices,
        )
        return cls(
            tree=tree,
            provenance=provenance,
            timings=out.timings,
            posterior=out.posterior,
            subgroup_posteriors=out.subgroup_posteriors,
        )

    @classmethod
    def _from_saved(
        cls, tree: xr.DataTree, provenance: dict[str, Any], saved: dict[str, Any]
    ) -> ExactFit:
        """Rebuild the exact posterior(s) from the stored contrasts and priors (a few ms)."""
        fit = cls(tree=tree, provenance=provenance)
        obs = tree["observed_data"]
        y, se = np.asarray(obs["y"].values), np.asarray(obs["se"].values)
        column = provenance["model"].get("subgroup")
        if not column:
            spec = fit.spec
            weight = None
            if spec.bias is not None:  # the weaker trials, as the fit recorded them
                weaker = set(provenance["bias_adjustment"]["weaker"])
                weight = np.array([1.0 if s in weaker else 0.0 for s in fit.studies])
            fit.posterior = exact_for(y, se, fit.priors, fit.studies, bias=spec.bias, weight=weight)
            return fit
        levels = tuple(fit.subgroups)
        labels = fit.data_frame.set_index("study").loc[fit.studies, column].astype(str)
        group = np.array([levels.index(v) for v in labels], dtype=np.int64)
        fit.subgroup_posteriors = exact_subgroup_posteriors(
            y, se, fit.priors, fit.studies, group, levels
        )
        return fit

    def marginal(self, name: str, label: str | None = None) -> Any:
        """The exact marginal of a quantity (None where there is none).

        ``mu``, ``tau``, ``theta_new`` of all trials or of subgroup ``label``; ``theta`` of
        trial ``label``.
        """
        if name == "theta":
            return None if self.posterior is None else self.posterior.theta(label)
        if name not in _WHOLE:
            return None
        post = self.posterior if label is None else (self.subgroup_posteriors or {}).get(label)
        return None if post is None else getattr(post, name)

    def probability_mcse(self, indicator: np.ndarray) -> float:
        """Binomial MCSE: the exact engine's draws are independent."""
        return iid_probability_mcse(indicator)

    def _pooled(self) -> dict[str, Any]:
        """From the exact marginals (no Monte Carlo error); subgroup fits: from the draws."""
        if self.posterior is None:
            return super()._pooled()
        return _exact_summary(self.posterior, self.studies)

    def _refine(self, summary: dict[str, Any]) -> dict[str, Any]:
        if self.posterior is not None:  # "exact" last, after the keys it qualifies
            summary["exact"] = summary.pop("exact")
        for level, post in (self.subgroup_posteriors or {}).items():
            ex = _exact_summary(post, [])
            summary["subgroups"][level] |= {key: ex[key] for key in _SUBGROUP_KEYS} | {"mcse": {}}
        return summary


def _exact_summary(post: Any, studies: list[str]) -> dict[str, Any]:
    """The summary quantities of an exact fit, from its marginals (no Monte Carlo error)."""
    s = post.summary()
    keys = ("mean", "sd", "median", "q025", "q975")

    def stats(name: str) -> dict[str, float]:
        return {k: s[name][k] for k in keys} | {
            "hdi_lower": s[name]["shortest_lower"],
            "hdi_upper": s[name]["shortest_upper"],
        }

    def odds(name: str) -> dict[str, float]:
        return {k: float(np.exp(s[name][k])) for k in ("median", "q025", "q975")}

    return {
        "mu": stats("mu"),
        "tau": stats("tau"),
        "theta_new": stats("theta_new"),
        "or": odds("mu"),
        "or_new": odds("theta_new"),
        "p_mu_gt_0": post.prob_mu_gt(0.0),
        "p_theta_new_gt_0": post.prob_theta_new_gt(0.0),
        "mcse": {},
        "theta": [
            {"study": st, **stats(f"theta[{st}]"), "or": odds(f"theta[{st}]")} for st in studies
        ],
        "exact": {"nodes": post.n_nodes, "error_estimate": float(post.error_estimate)},
    }
