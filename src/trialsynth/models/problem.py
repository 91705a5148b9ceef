"""A problem: data, model and priors, with what is derived from them computed once.

In the spirit of bambi's ``Model``: the engines, the result packaging and the analyses take
a :class:`Problem` instead of ``(data, spec, priors)`` as loose arguments, and the contrasts,
design and model values are computed on first use and kept (the problem is immutable).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from trialsynth.models.design import Design, design
from trialsynth.models.pymc import model_values
from trialsynth.models.pymc import structure_key as _structure_key
from trialsynth.models.spec import ModelSpec, resolve_priors
from trialsynth.priors.prior import PriorSet

if TYPE_CHECKING:
    import numpy as np

    from trialsynth.core.effects import LogOddsRatios
    from trialsynth.data import TrialData


@dataclass(frozen=True, eq=False)
class Problem:
    """Data + model spec + priors (resolved against the data: see :meth:`build`)."""

    data: TrialData
    spec: ModelSpec
    priors: PriorSet

    @classmethod
    def build(
        cls, data: TrialData, spec: ModelSpec | None = None, priors: PriorSet | None = None
    ) -> Problem:
        """The problem with the documented defaults and data-dependent prior constants fixed."""
        spec = spec or ModelSpec()
        return cls(data, spec, resolve_priors(spec, data, priors or PriorSet()))

    @cached_property
    def contrasts(self) -> LogOddsRatios:
        """Log odds ratios and SEs under the model's continuity correction."""
        return self.data.contrasts(correction=self.spec.correction)

    @cached_property
    def design(self) -> Design:
        """Subgroup membership and centred covariates."""
        return design(self.spec, self.data)

    @cached_property
    def values(self) -> dict[str, np.ndarray]:
        """Every ``pm.Data`` value of the model (observations and hyperparameters)."""
        return model_values(self.spec, self.data, self.priors)

    @cached_property
    def structure_key(self) -> tuple[Any, ...]:
        """What a compiled model of this problem depends on."""
        return _structure_key(self.spec, self.data, self.priors)
