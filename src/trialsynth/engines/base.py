"""What every engine is: ``Engine.fit(problem, settings) -> EngineFit``.

An engine turns a :class:`~trialsynth.models.problem.Problem` into posterior draws and
the engine-specific facts a result needs (convergence diagnostics, refits, the exact
posterior). It knows nothing of result types, files or queries: the results layer wraps
an :class:`EngineFit` in the result type of its engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import xarray as xr

    from trialsynth.core.exact import ExactPosterior
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.engines.diagnostics import Diagnostics
    from trialsynth.models.problem import Problem

#: Called with the name of each phase of a fit as it starts (``compile``, ``sample``, ...).
Progress = Callable[[str], None]


def _quiet(_phase: str) -> None:
    """The default :data:`Progress`: say nothing."""


@dataclass(frozen=True)
class EngineFit:
    """What an engine returns.

    Attributes
    ----------
    tree : xarray.DataTree
        ``posterior`` (mu, tau, theta, theta_new, ... on the log-OR scale) and, for MCMC,
        ``sample_stats``.
    settings : SamplerSettings
        The settings of the draws that were kept (a refit's, after divergences).
    diagnostics : Diagnostics or None
        Convergence checks of MCMC draws; None where there is no Monte Carlo error.
    refits : tuple of dict
        Refits made after failed checks, with their reason.
    timings : dict
        Seconds per phase.
    posterior, subgroup_posteriors : ExactPosterior, dict or None
        The exact posterior(s) the draws came from (exact engine).
    notices : tuple of str
        Things the user should know about how the draws were made (e.g. a damaged
        compile-cache entry that was compiled again).
    """

    tree: xr.DataTree
    settings: SamplerSettings
    diagnostics: Diagnostics | None = None
    refits: tuple[dict[str, Any], ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    posterior: ExactPosterior | None = None
    subgroup_posteriors: dict[str, ExactPosterior] | None = None
    notices: tuple[str, ...] = ()


class Engine(Protocol):
    """An engine: a name and a ``fit``."""

    name: str

    def fit(
        self, problem: Problem, settings: SamplerSettings, *, progress: Progress = _quiet
    ) -> EngineFit:
        """Posterior draws of ``problem`` (seeded by ``settings.seed``)."""
        ...
