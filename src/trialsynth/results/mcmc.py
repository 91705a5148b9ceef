"""The result of an MCMC fit: draws from Markov chains, with their convergence checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import xarray as xr

from trialsynth.engines.diagnostics import Diagnostics
from trialsynth.results.base import FitResult
from trialsynth.results.provenance import package

if TYPE_CHECKING:
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.engines.base import EngineFit
    from trialsynth.models.problem import Problem


class McmcFit(FitResult):
    """Posterior draws of NUTS chains (nutpie) and their convergence diagnostics."""

    engine: ClassVar[str] = "mcmc"
    has_chains: ClassVar[bool] = True

    @classmethod
    def from_engine(
        cls,
        out: EngineFit,
        problem: Problem,
        *,
        settings: SamplerSettings,
        notices: tuple[str, ...] = (),
    ) -> McmcFit:
        """Package the MCMC engine's output with its provenance (``observed_data`` added).

        ``settings`` are those requested: a refit's are in ``out.refits``, so the fit's key
        does not change.
        """
        raw = out.tree
        stats_vars = [
            v
            for v in ("diverging", "energy", "step_size", "depth", "n_steps", "mean_tree_accept")
            if v in raw["sample_stats"]
        ]
        tree, provenance = package(
            {
                "posterior": raw["posterior"].to_dataset(),
                "sample_stats": raw["sample_stats"].to_dataset()[stats_vars],
            },
            problem,
            settings=settings,
            engine="mcmc",
            refits=out.refits,
            notices=notices,
        )
        return cls(
            tree=tree, provenance=provenance, diagnostics=out.diagnostics, timings=out.timings
        )

    def _diagnostics_json(self) -> dict[str, Any]:
        d = self.diagnostics
        if d is None:  # pragma: no cover - every MCMC result is checked
            return super()._diagnostics_json()
        return {
            "r_hat_max": d.r_hat_max,
            "ess_bulk_min": d.ess_bulk_min,
            "ess_tail_min": d.ess_tail_min,
            "divergences": d.divergences,
            "bfmi_min": d.bfmi_min,
            "ok": d.ok,
            "problems": list(d.problems),
        }

    @classmethod
    def _from_saved(
        cls, tree: xr.DataTree, provenance: dict[str, Any], saved: dict[str, Any]
    ) -> McmcFit:
        # The convergence verdict lives in summary.json (FitResult.load checked it belongs).
        d = saved["diagnostics"]
        diag = Diagnostics.from_json(d) if d.get("r_hat_max") is not None else None
        return cls(tree=tree, provenance=provenance, diagnostics=diag)
