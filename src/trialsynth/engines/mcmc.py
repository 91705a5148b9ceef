"""The MCMC engine: the PyMC model compiled with nutpie, sampled, derived, checked.

Every MCMC fit compiles in one form (:func:`compile_model`), whichever path asks for it
(``fit``, ``run``, sensitivity scenarios and workers, LOO refits, the Python API):

* **reusable**: data and prior hyperparameters are inputs of the compiled model. The
  parameter vector is then in the model's order (``mu, tau, z, alpha``). Freezing would
  reorder it, so the same seed would give other draws. A later fit of the same structure
  only swaps values (``with_data``);
* **numba fastmath off**, so compiled code does not depend on how LLVM chose to reassociate;
* nutpie's C wrappers made **cacheable** (:mod:`trialsynth.engines.nutpie_wrappers`), in
  the **persistent compile cache** (:mod:`trialsynth.engines.compile_cache`). A structure
  this machine compiled before loads in about a second in any process.

The same analysis and seed therefore give bit-identical draws by every path, in one
process or many, with a cold or a warm cache, given the same versions and CPU target
(:func:`numerics`, recorded in the provenance). Compiled models are also kept in a
per-process cache keyed by :func:`trialsynth.models.pymc.structure_key`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.core.settings import MAX_BINOMIAL_ARM, RETRY_TARGET_ACCEPT, SamplerSettings
from trialsynth.data import ArmData
from trialsynth.engines import compile_cache, nutpie_wrappers
from trialsynth.engines.base import EngineFit, Progress, _quiet
from trialsynth.engines.diagnostics import check
from trialsynth.models.design import design
from trialsynth.models.likelihood import trial_effects
from trialsynth.models.pymc import build_model, model_values, structure_key
from trialsynth.models.spec import ModelError, ModelSpec
from trialsynth.priors.prior import PriorSet

if TYPE_CHECKING:
    from trialsynth.data import TrialData
    from trialsynth.models.problem import Problem

COMPILE_FORM = compile_cache.COMPILE_FORM


@dataclass
class _Compiled:
    """A compiled model of this process, its PyMC model and how the compile went."""

    compiled: Any
    model: Any
    report: compile_cache.CacheReport
    wrappers: str


_COMPILED: dict[tuple[Any, ...], _Compiled] = {}


def numerics() -> dict[str, Any]:
    """What MCMC draws depend on besides data, model, priors, settings and seed.

    The compile form, the versions of numba and llvmlite (pymc, pytensor and nutpie are
    in the provenance's ``versions``) and the CPU target numba compiled for. The same
    inputs give bit-identical draws where all of these match. Elsewhere they give
    another valid chain, which agrees within Monte Carlo error. (Read once per process;
    a fresh dict each call.)
    """
    return json.loads(_numerics())


@functools.cache
def _numerics() -> str:
    from importlib import metadata

    wrappers = COMPILE_FORM["wrappers"] if nutpie_wrappers.supported() else "nutpie"
    return json.dumps(
        {
            "compile": {**COMPILE_FORM, "wrappers": wrappers},
            "numba": metadata.version("numba"),
            "llvmlite": metadata.version("llvmlite"),
            "cpu": compile_cache.cpu_target(),
        }
    )


def import_on_fresh_stack(name: str) -> None:
    """Import module ``name`` on a new thread, whose call stack is short, and wait for it.

    nutpie imports arviz_base, which asks lazy_loader (0.6) for jax and numpyro; where they
    are not installed, lazy_loader records its caller with ``inspect.stack()``, which
    reads the source of every frame on the stack and scans ``sys.modules`` for each. Under
    the CLI (about 60 frames deep) that took 1.3 s of a cold ``run`` (py-spy) against 0.1 s
    from the top of a script. Nothing runs beside the import: the caller waits, and an
    import that fails here fails again, with its error, at the caller's own ``import``.
    """
    if name in sys.modules:
        return

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

    thread = threading.Thread(target=load, name=f"import-{name}")
    thread.start()
    thread.join()


def import_engine() -> None:
    """Import what compiling and sampling need (nutpie, PyMC, PyTensor's numba backend)."""
    import_on_fresh_stack("nutpie")
    import pymc  # noqa: F401
    import pytensor.link.numba.dispatch  # noqa: F401


def compile_model(model: Any, model_key: str) -> tuple[Any, compile_cache.CacheReport, str]:
    """Compile a PyMC model in the one form, through the persistent compile cache.

    Returns
    -------
    compiled : nutpie CompiledPyMCModel
    report : CacheReport
        hit, miss, damaged (repaired) or off.
    wrappers : str
        ``trialsynth-N`` (cacheable wrappers) or ``nutpie`` (nutpie's own, uncached).
    """
    import_on_fresh_stack("nutpie")
    import nutpie
    import pytensor

    cache = compile_cache.CompileCache(COMPILE_FORM)
    used: list[str] = []

    def build(numba_dir: Any) -> Any:
        with (
            compile_cache.numba_cache_at(numba_dir),
            pytensor.config.change_flags(numba__fastmath=False),
            nutpie_wrappers.cacheable_wrappers() as cacheable,
        ):
            compiled = nutpie.compile_pymc_model(model, freeze_model=False, cache=cacheable)
            compiled.initial_point_func(0)  # compile it now, in the cache folder
        used[:] = [COMPILE_FORM["wrappers"] if cacheable else "nutpie"]
        return compiled

    compiled, report = cache.compile(model_key, build, describe={"model": model_key})
    return compiled, report, used[0]


def _cache_key(key: tuple[Any, ...]) -> str:
    """A stable name of a structure key (its repr holds only specs, strings and numbers)."""
    return hashlib.sha256(repr(key).encode()).hexdigest()[:32]


def compiled_model(
    spec: ModelSpec, data: TrialData, priors: PriorSet, *, reusable: bool = True
) -> tuple[Any, bool]:
    """The nutpie compiled model for this analysis, and whether it was compiled now.

    Always the one compile form (see the module docstring). ``reusable`` is ignored: it
    is kept so that callers written for the earlier frozen/reusable choice keep working.
    """
    del reusable
    values = model_values(spec, data, priors)
    key = structure_key(spec, data, priors)
    entry = _COMPILED.get(key)
    fresh = entry is None
    if entry is None:
        model = build_model(spec, data, priors)
        compiled, report, wrappers = compile_model(model, _cache_key(key))
        entry = _COMPILED[key] = _Compiled(compiled, model, report, wrappers)
    # nutpie draws initial points from the PyMC model, whose pm.Data still hold the
    # values of the fit that compiled it: set them, so a reused model starts (and so
    # samples) exactly as a freshly compiled one would.
    for name, value in values.items():
        shared = entry.model[name]  # pm.Data stores counts as int32: cast like it
        shared.set_value(np.asarray(value, dtype=shared.type.dtype))
    return entry.compiled.with_data(**values), fresh


def is_cached(spec: ModelSpec, data: TrialData, priors: PriorSet) -> bool:
    """Whether this structure's compiled model is in this process or the persistent cache.

    A look at the manifest, no compile: the model's files are checked when it is loaded.
    """
    key = structure_key(spec, data, priors)
    if key in _COMPILED:
        return True
    manifest, sound = compile_cache.CompileCache(COMPILE_FORM).read_manifest()
    return sound and _cache_key(key) in manifest["models"]


def compile_report(spec: ModelSpec, data: TrialData, priors: PriorSet) -> Any:
    """The :class:`~trialsynth.engines.compile_cache.CacheReport` of this structure's compile."""
    entry = _COMPILED.get(structure_key(spec, data, priors))
    return None if entry is None else entry.report


def clear_cache() -> None:
    """Forget this process's compiled models (the persistent cache stays)."""
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


def sample_values(
    spec: ModelSpec,
    data: TrialData,
    priors: PriorSet,
    settings: SamplerSettings,
    values: dict[str, np.ndarray],
) -> tuple[Any, bool]:
    """Sample the reusable compiled model of this structure with other ``pm.Data`` values.

    ``values`` replace :func:`~trialsynth.models.pymc.model_values` (same names and shapes),
    e.g. a cumulative meta-analysis whose later trials have empty arms (no likelihood):
    every step is one ``with_data`` of one compiled model. Returns the derived draws (as
    :func:`derive`, labelled with ``data``'s studies) and whether the model was compiled now.
    """
    compiled, fresh = compiled_model(spec, data, priors, reusable=True)
    return derive(_sample(compiled.with_data(**values), settings), spec, data, settings.seed), fresh


def derive(raw: Any, spec: ModelSpec, data: TrialData, seed: int) -> Any:
    """Replace the sampler's posterior by the quantities trialsynth reports.

    ``theta``, the predictive ``theta_new`` and, for subgroup fits, the pooled and per-subgroup
    summaries come from :func:`trialsynth.models.likelihood.trial_effects` (exact functions
    of the draws, plus one random effect per draw for ``theta_new``); ``beta``, ``alpha`` and
    an estimated ``nu`` are kept as sampled.
    """
    import xarray as xr

    des = design(spec, data)
    post = raw["posterior"].to_dataset()
    rng = np.random.default_rng([seed, 1])
    out = xr.Dataset(
        coords={"chain": post["chain"], "draw": post["draw"], "study": list(data.study)}
    )
    effects = trial_effects(spec, des, post, rng, k=data.k)
    theta = effects.pop("theta")
    bias = effects.pop("bias", None)  # a bias adjustment: each trial's additive bias
    for name, values in effects.items():  # mu, tau, theta_new; first per subgroup if any
        out[name] = ("chain", "draw", "subgroup")[: values.ndim], values
    if des.levels:
        out = out.assign_coords(subgroup=list(des.levels))
    if des.covariates:
        out["beta"] = (("chain", "draw", "covariate"), post["beta"].values)
        out = out.assign_coords(covariate=list(des.covariates))
        # the covariates are centred at their mean: mu is the effect at these values
        out = out.assign_coords(covariate_centre=("covariate", list(des.centre)))
    out["theta"] = (("chain", "draw", "study"), theta)
    if bias is not None:
        out["bias"] = (("chain", "draw", "study"), bias)
    if "alpha" in post:
        out["alpha"] = (("chain", "draw", "study"), post["alpha"].values)
    if spec.estimate_nu:
        out["nu"] = (("chain", "draw"), post["nu"].values)
    raw["posterior"] = xr.DataTree(out)
    return raw


def parameter_names(spec: ModelSpec, tree: Any) -> list[str]:
    """The parameters whose convergence is checked (sampled ones and theta)."""
    names = ["mu", "theta", "mu_subgroup", "beta", "nu", "bias_mean"]
    if spec.random_effects is not None:  # (common effect: tau = 0, nothing to check)
        names += ["tau", "tau_subgroup"]
    if spec.likelihood == "binomial":
        names.append("alpha")
    return [n for n in names if n in tree["posterior"]]


def check_sampleable(spec: ModelSpec, data: TrialData) -> None:
    """Refuse, before compiling, an MCMC fit that cannot be sampled reliably.

    Raises
    ------
    ModelError
        A binomial likelihood with an arm larger than :data:`MAX_BINOMIAL_ARM`.
    """
    if spec.likelihood != "binomial" or not isinstance(data, ArmData):
        return
    sizes = np.maximum(data.n_t, data.n_c)
    i = int(np.argmax(sizes))
    if sizes[i] > MAX_BINOMIAL_ARM:
        raise ModelError(
            f"{data.name}: trial {data.study[i]!r} has an arm of {int(sizes[i]):,} participants;"
            f" the binomial likelihood is sampled for arms up to {MAX_BINOMIAL_ARM:,} (larger"
            " ones are too precise for NUTS): use --model normal-normal, whose normal"
            " approximation is exact at these sizes"
        )


@dataclass(frozen=True)
class MCMCEngine:
    """NUTS via nutpie, with one refit at ``target_accept=0.99`` after divergences.

    Attributes
    ----------
    retry_divergences : bool
        After divergent transitions, refit once at :data:`RETRY_TARGET_ACCEPT` (same seed)
        and record the refit.
    reusable : bool
        Ignored: every fit compiles in the one form (see :func:`compile_model`); kept so
        that callers of the earlier frozen/reusable choice keep working.
    """

    retry_divergences: bool = True
    reusable: bool = True
    name: str = "mcmc"

    def fit(
        self, problem: Problem, settings: SamplerSettings, *, progress: Progress = _quiet
    ) -> EngineFit:
        """Compile (or reuse), sample, derive theta/theta_new, check; refit if it diverged."""
        spec, data, priors = problem.spec, problem.data, problem.priors
        check_sampleable(spec, data)
        _ = problem.design  # a bad subgroup or covariate column is an error before compiling
        timings: dict[str, float] = {}
        progress("compile")
        t0 = time.perf_counter()
        compiled, fresh = compiled_model(spec, data, priors, reusable=self.reusable)
        timings["compile_s" if fresh else "reuse_compiled_s"] = time.perf_counter() - t0
        report = compile_report(spec, data, priors)
        notices = (report.message(),) if fresh and report and report.message() else ()
        progress("sample")
        t0 = time.perf_counter()
        raw = derive(_sample(compiled, settings), spec, data, settings.seed)
        timings["sample_s"] = time.perf_counter() - t0
        progress("diagnostics")
        t0 = time.perf_counter()
        diag = check(raw, parameter_names(spec, raw))
        refits: list[dict[str, Any]] = []
        if (
            self.retry_divergences
            and diag.divergences
            and settings.target_accept < RETRY_TARGET_ACCEPT
        ):
            first = diag
            settings = replace(settings, target_accept=RETRY_TARGET_ACCEPT)
            progress("refit")
            raw = derive(_sample(compiled, settings), spec, data, settings.seed)
            diag = check(raw, parameter_names(spec, raw))
            refits.append(
                {
                    "reason": f"{first.divergences} divergent transition(s)",
                    "target_accept": RETRY_TARGET_ACCEPT,
                    "divergences_after": diag.divergences,
                }
            )
        timings["diagnostics_s"] = time.perf_counter() - t0
        return EngineFit(
            tree=raw,
            settings=settings,
            diagnostics=diag,
            refits=tuple(refits),
            timings=timings,
            notices=notices,
        )
