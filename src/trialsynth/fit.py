"""Fitting the PyMC models with nutpie: compile once, sample, check, package.

The compiled model is the expensive part (a few seconds of numba compilation against
~0.2 s of sampling), so compiled models are kept in a per-process cache keyed by
:func:`trialsynth.models.structure_key`; a later fit with the same structure but other
data values or prior hyperparameters reuses it through ``with_data``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.diagnostics import Diagnostics, check
from trialsynth.models import (
    ModelSpec,
    build_model,
    model_values,
    resolve_priors,
    structure_key,
)
from trialsynth.priors import PriorSet

if TYPE_CHECKING:
    from trialsynth.data import TrialData
    from trialsynth.results import FitResult

#: Default seed of every command (a fixed, documented value: same command, same numbers).
DEFAULT_SEED = 20261125
#: Target acceptance used for the automatic refit after divergent transitions.
RETRY_TARGET_ACCEPT = 0.99

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings (nutpie); ``seed`` makes a fit reproducible."""

    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    seed: int = DEFAULT_SEED
    target_accept: float = 0.9

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept must be in (0, 1), got {self.target_accept}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


_COMPILED: dict[tuple[Any, ...], Any] = {}


def compiled_model(
    spec: ModelSpec, data: TrialData, priors: PriorSet, *, reusable: bool = True
) -> tuple[Any, bool]:
    """The nutpie compiled model for this analysis, and whether it was compiled now.

    ``reusable=True`` compiles with data and hyperparameters as inputs, so later fits
    of the same structure only swap values (``with_data``). ``reusable=False`` freezes
    them into the graph, which compiles about twice as fast: right for a process that
    fits once (the CLI's ``fit`` and ``run``).
    """
    import nutpie

    values = model_values(spec, data, priors)
    key = structure_key(spec, data, priors)
    if not reusable:
        blob = b"".join(
            k.encode() + np.ascontiguousarray(v).tobytes() for k, v in sorted(values.items())
        )
        key += ("frozen", hashlib.sha256(blob).hexdigest())
    base = _COMPILED.get(key)
    fresh = base is None
    if base is None:
        model = build_model(spec, data, priors)
        base = nutpie.compile_pymc_model(model, freeze_model=not reusable)
        _COMPILED[key] = base
    return (base.with_data(**values) if reusable else base), fresh


def clear_cache() -> None:
    """Forget compiled models (for benchmarks of cold compilation)."""
    _COMPILED.clear()


def _sample(compiled: Any, settings: SamplerSettings) -> Any:
    import nutpie

    return nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        cores=min(settings.chains, 2),
        seed=settings.seed,
        target_accept=settings.target_accept,
        save_warmup=False,
        progress_bar=False,
    )


def add_theta(raw: Any, spec: ModelSpec, studies: tuple[str, ...]) -> Any:
    """Add the trial effects ``theta = mu + tau * z`` (or ``mu``) to the posterior."""
    import xarray as xr

    post = raw["posterior"].to_dataset()
    if spec.random_effects is None:
        theta = post["mu"].expand_dims(study=list(studies)).copy()
    else:
        theta = post["mu"] + post["tau"] * post["z"]
    raw["posterior"] = xr.DataTree(post.assign(theta=theta.transpose("chain", "draw", "study")))
    return raw


def parameter_names(spec: ModelSpec, tree: Any) -> list[str]:
    """The sampled parameters whose convergence is checked."""
    names = ["mu", "theta"]
    if spec.random_effects is not None:
        names.append("tau")
    if spec.likelihood == "binomial":
        names.append("alpha")
    return [n for n in names if n in tree["posterior"]]


def fit(
    data: TrialData,
    *,
    spec: ModelSpec | None = None,
    priors: PriorSet | None = None,
    settings: SamplerSettings | None = None,
    retry_divergences: bool = True,
    reusable: bool = True,
    progress: Progress | None = None,
) -> FitResult:
    """Fit a random-effects meta-analysis by MCMC (NUTS via nutpie).

    Parameters
    ----------
    data : TrialData
        Validated trials (:func:`trialsynth.data.load`).
    spec : ModelSpec, optional
        The model; default binomial-normal.
    priors : PriorSet, optional
        The priors; default :class:`~trialsynth.priors.PriorSet` (documented defaults).
    settings : SamplerSettings, optional
        Draws, tuning, chains, seed, target acceptance.
    retry_divergences : bool
        After divergent transitions, refit once at ``target_accept=0.99`` (same seed)
        and record that the refit happened (``provenance["refits"]``; the recorded
        ``settings`` stay those requested, so the fit's key does not change).
    reusable : bool
        Keep the compiled model reusable for later fits with other values in this
        process (see :func:`compiled_model`); False compiles faster for a single fit.
    progress : callable, optional
        Called with the name of each phase as it starts.

    Returns
    -------
    FitResult
        Posterior, diagnostics and provenance; its ``diagnostics.ok`` says whether the
        fit passed the convergence checks.
    """
    from trialsynth.results import FitResult

    spec = spec or ModelSpec()
    priors = resolve_priors(spec, data, priors or PriorSet())
    settings = requested = settings or SamplerSettings()
    say = progress or (lambda _phase: None)
    timings: dict[str, float] = {}

    say("compile")
    t0 = time.perf_counter()
    compiled, fresh = compiled_model(spec, data, priors, reusable=reusable)
    timings["compile_s" if fresh else "reuse_compiled_s"] = time.perf_counter() - t0

    say("sample")
    t0 = time.perf_counter()
    raw = add_theta(_sample(compiled, settings), spec, data.study)
    timings["sample_s"] = time.perf_counter() - t0

    say("diagnostics")
    t0 = time.perf_counter()
    diag = check(raw, parameter_names(spec, raw))
    refits: list[dict[str, Any]] = []
    if retry_divergences and diag.divergences and settings.target_accept < RETRY_TARGET_ACCEPT:
        first = diag
        settings = replace(settings, target_accept=RETRY_TARGET_ACCEPT)
        say("refit")
        raw = add_theta(_sample(compiled, settings), spec, data.study)
        diag = check(raw, parameter_names(spec, raw))
        refits.append(
            {
                "reason": f"{first.divergences} divergent transition(s)",
                "target_accept": RETRY_TARGET_ACCEPT,
                "divergences_after": diag.divergences,
            }
        )
    timings["diagnostics_s"] = time.perf_counter() - t0
    return FitResult.from_sampler(
        raw,
        data=data,
        spec=spec,
        priors=priors,
        settings=requested,
        diagnostics=diag,
        refits=tuple(refits),
        timings=timings,
    )


def predictive_draws(mu: np.ndarray, tau: np.ndarray, spec: ModelSpec, seed: int) -> np.ndarray:
    """Draws of a future trial's effect, theta_new ~ RE(mu, tau), one per posterior draw.

    Drawn with numpy from its own seeded stream, so ``theta_new`` is exact given the
    (mu, tau) draws and reproducible from the fit's seed.
    """
    rng = np.random.default_rng([seed, 1])
    if spec.random_effects is None:
        return np.array(mu, dtype=float, copy=True)
    if spec.random_effects == "student-t":
        eps = rng.standard_t(spec.nu, size=np.shape(mu))
    else:
        eps = rng.standard_normal(size=np.shape(mu))
    return mu + tau * eps


def as_diagnostics(d: dict[str, Any] | None) -> Diagnostics | None:
    """Rebuild :class:`Diagnostics` from its JSON form (for loaded fits)."""
    if d is None:
        return None
    return Diagnostics(
        r_hat_max=d["r_hat_max"],
        ess_bulk_min=d["ess_bulk_min"],
        ess_tail_min=d["ess_tail_min"],
        divergences=d["divergences"],
        bfmi_min=d.get("bfmi_min"),
        problems=tuple(d.get("problems", ())),
        worst=d.get("worst", {}),
    )
