"""Which engine fits a problem: ``auto`` is exact wherever the exact engine applies."""

from __future__ import annotations

from trialsynth.core.errors import TrialsynthError
from trialsynth.core.settings import ENGINES
from trialsynth.engines.base import Engine
from trialsynth.engines.exact import ExactEngine, exact_unavailable
from trialsynth.engines.mcmc import MCMCEngine
from trialsynth.models.spec import ModelError, ModelSpec
from trialsynth.priors.prior import PriorSet


def choose_engine(engine: str, spec: ModelSpec, priors: PriorSet) -> str:
    """Resolve ``"auto"`` and check that an explicit ``"exact"`` is possible."""
    if engine not in ENGINES:
        raise TrialsynthError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    reason = exact_unavailable(spec, priors)
    if engine == "auto":
        return "mcmc" if reason else "exact"
    if engine == "exact" and reason:
        raise ModelError(f"{reason}; use --engine mcmc")
    return engine


def engine_named(name: str, *, retry_divergences: bool = True, reusable: bool = True) -> Engine:
    """The engine called ``name`` (``mcmc`` or ``exact``; resolve ``auto`` first)."""
    if name == "exact":
        return ExactEngine()
    return MCMCEngine(retry_divergences=retry_divergences, reusable=reusable)
