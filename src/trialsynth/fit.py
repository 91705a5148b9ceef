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
    ModelError,
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
#: Largest arm the binomial likelihood is sampled for. Measured (BENCHMARKS.md, reliability):
#: 4 trials with 10^6 per arm converge (bulk ESS ~500 of 8000 draws); with 10^7 the
#: non-centred posterior is too narrow for NUTS to adapt (R-hat 1.02, ESS < 400) and with
#: 10^9 it fails outright (R-hat > 1.7). The normal approximation is exact to < 1e-3 on
#: the log-OR scale for such arms, so the error points to the normal-normal model.
MAX_BINOMIAL_ARM = 10**6

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
        _MODELS[key] = model
    if reusable:
        # nutpie draws initial points from the PyMC model, whose pm.Data still hold the
        # values of the fit that compiled it: set them, so a reused model starts (and so
        # samples) exactly as a freshly compiled one would.
        for name, value in values.items():
            shared = _MODELS[key][name]  # pm.Data stores counts as int32: cast like it
            shared.set_value(np.asarray(value, dtype=shared.type.dtype))
    return (base.with_data(**values) if reusable else base), fresh


#: The PyMC model behind each compiled model (see :func:`compiled_model`).
_MODELS: dict[tuple[Any, ...], Any] = {}


def clear_cache() -> None:
    """Forget compiled models (for benchmarks of cold compilation)."""
    _COMPILED.clear()
    _MODELS.clear()


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


def derive(raw: Any, spec: ModelSpec, data: TrialData, seed: int) -> Any:
    """Replace the sampler's posterior by the quantities trialsynth reports.

    ``theta_i = mu_i + tau_i z_i`` (``mu_i`` includes the trial's subgroup mean and
    ``x_i beta``; the common-effect model has ``theta_i = mu_i``) and the predictive
    ``theta_new`` are computed from the draws, exactly. For subgroup fits ``mu`` is the
    unweighted average of the subgroup means, ``tau`` the shared SD (or the root mean
    square of the subgroup SDs), and ``theta_new`` a future trial in a subgroup drawn
    with equal probability; per subgroup: ``mu_subgroup``, ``tau_subgroup``,
    ``theta_new_subgroup``.
    """
    import xarray as xr

    from trialsynth.models import design

    des = design(spec, data)
    post = raw["posterior"].to_dataset()
    studies = list(data.study)
    rng = np.random.default_rng([seed, 1])
    out = xr.Dataset(coords={"chain": post["chain"], "draw": post["draw"], "study": studies})
    chains_draws = post["mu_subgroup" if des.levels else "mu"].shape[:2]

    def eps(shape: tuple[int, ...]) -> np.ndarray:
        if spec.random_effects == "student-t":
            if spec.nu is None:  # estimated: one t draw per posterior draw of nu
                nu = post["nu"].values.reshape(post["nu"].shape + (1,) * (len(shape) - 2))
                return rng.standard_t(np.broadcast_to(nu, shape))
            return rng.standard_t(spec.nu, size=shape)
        return rng.standard_normal(size=shape)

    if des.levels:
        mu_g = post["mu_subgroup"].values  # (chain, draw, level)
        mu_i = mu_g[..., des.group]
        if spec.random_effects is None:
            tau_g = np.zeros_like(mu_g)
        elif spec.separate_tau:
            tau_g = post["tau_subgroup"].values
        else:
            tau_g = np.repeat(post["tau"].values[..., None], len(des.levels), axis=-1)
        tau_i = tau_g[..., des.group]
        new_g = mu_g + tau_g * eps(mu_g.shape) if spec.random_effects else mu_g.copy()
        pick = rng.integers(len(des.levels), size=chains_draws)
        sub = {"subgroup": list(des.levels)}
        out["mu_subgroup"] = (("chain", "draw", "subgroup"), mu_g)
        out["tau_subgroup"] = (("chain", "draw", "subgroup"), tau_g)
        out["theta_new_subgroup"] = (("chain", "draw", "subgroup"), new_g)
        out = out.assign_coords(sub)
        out["mu"] = (("chain", "draw"), mu_g.mean(axis=-1))
        out["tau"] = (("chain", "draw"), np.sqrt((tau_g**2).mean(axis=-1)))
        out["theta_new"] = (
            ("chain", "draw"),
            np.take_along_axis(new_g, pick[..., None], -1)[..., 0],
        )
    else:
        mu = post["mu"].values
        tau = post["tau"].values if spec.random_effects is not None else np.zeros_like(mu)
        mu_i = np.repeat(mu[..., None], data.k, axis=-1)
        tau_i = np.repeat(tau[..., None], data.k, axis=-1)
        out["mu"] = (("chain", "draw"), mu)
        out["tau"] = (("chain", "draw"), tau)
        new = mu + tau * eps(mu.shape) if spec.random_effects else mu.copy()
        out["theta_new"] = (("chain", "draw"), new)
    if des.covariates:
        beta = post["beta"].values  # (chain, draw, p)
        mu_i = mu_i + np.einsum("cdp,kp->cdk", beta, des.x)
        out["beta"] = (("chain", "draw", "covariate"), beta)
        out = out.assign_coords(covariate=list(des.covariates))
        # the covariates are centred at their mean: mu is the effect at these values
        out = out.assign_coords(covariate_centre=("covariate", list(des.centre)))
    if spec.estimate_nu:  # scale-mixture form of the t (models.build_model)
        z = post["z_normal"].values * np.sqrt(post["z_scale2"].values)
    elif spec.random_effects is not None:
        z = post["z"].values
    theta = mu_i + tau_i * z if spec.random_effects is not None else mu_i
    out["theta"] = (("chain", "draw", "study"), theta)
    if "alpha" in post:
        out["alpha"] = (("chain", "draw", "study"), post["alpha"].values)
    if spec.estimate_nu:
        out["nu"] = (("chain", "draw"), post["nu"].values)
    raw["posterior"] = xr.DataTree(out)
    return raw


def parameter_names(spec: ModelSpec, tree: Any) -> list[str]:
    """The parameters whose convergence is checked (sampled ones and theta)."""
    names = ["mu", "theta", "mu_subgroup", "beta", "nu"]
    if spec.random_effects is not None:  # (common effect: tau = 0, nothing to check)
        names += ["tau", "tau_subgroup"]
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
    engine: str = "auto",
) -> FitResult:
    """Fit a random-effects meta-analysis by MCMC (NUTS via nutpie) or exactly.

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
    engine : {"mcmc", "exact", "auto"}
        ``"exact"``: the normal-normal model by numerical integration
        (:mod:`trialsynth.exact`; no Monte Carlo error in its summaries, and
        ``settings.draws * settings.chains`` independent draws from ``settings.seed`` for
        anything else); an error names what prevents it. ``"auto"``: exact wherever
        :func:`exact_unavailable` allows, MCMC otherwise.

    Returns
    -------
    FitResult
        Posterior, diagnostics and provenance; its ``diagnostics.ok`` says whether the
        fit passed the convergence checks (``diagnostics`` is None for exact fits).
    """
    from trialsynth.results import FitResult

    spec = spec or ModelSpec()
    priors = resolve_priors(spec, data, priors or PriorSet())
    settings = requested = settings or SamplerSettings()
    engine = choose_engine(engine, spec, priors)
    if engine == "exact":
        return _fit_exact(data, spec, priors, settings, progress)
    check_sampleable(spec, data)
    say = progress or (lambda _phase: None)
    timings: dict[str, float] = {}

    say("compile")
    t0 = time.perf_counter()
    compiled, fresh = compiled_model(spec, data, priors, reusable=reusable)
    timings["compile_s" if fresh else "reuse_compiled_s"] = time.perf_counter() - t0

    say("sample")
    t0 = time.perf_counter()
    raw = derive(_sample(compiled, settings), spec, data, settings.seed)
    timings["sample_s"] = time.perf_counter() - t0

    say("diagnostics")
    t0 = time.perf_counter()
    diag = check(raw, parameter_names(spec, raw))
    refits: list[dict[str, Any]] = []
    if retry_divergences and diag.divergences and settings.target_accept < RETRY_TARGET_ACCEPT:
        first = diag
        settings = replace(settings, target_accept=RETRY_TARGET_ACCEPT)
        say("refit")
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
    from trialsynth.agreement import likelihood_notice

    mu = raw["posterior"]["mu"].values
    notice = likelihood_notice(
        {
            "mu": {"median": float(np.median(mu)), "sd": float(mu.std())},
            "p_mu_gt_0": float((mu > 0).mean()),
        },
        data,
        spec,
        priors,
    )
    return FitResult.from_sampler(
        raw,
        data=data,
        spec=spec,
        priors=priors,
        settings=requested,
        diagnostics=diag,
        refits=tuple(refits),
        timings=timings,
        notices=(notice,) if notice else (),
    )


ENGINES = ("mcmc", "exact", "auto")


def exact_unavailable(spec: ModelSpec, priors: PriorSet) -> str | None:
    """Why the exact engine cannot fit this model, or None when it can.

    The exact engine covers the normal-normal random-effects model with a normal or flat
    prior on mu and any heterogeneity prior, without covariates; subgroups when each has
    its own tau (the subgroups are then independent normal-normal models).
    """
    if spec.likelihood != "normal":
        return "the exact engine needs the normal likelihood (--model normal-normal)"
    if spec.random_effects != "normal":
        kind = "common-effect" if spec.random_effects is None else "student-t random effects"
        return f"the exact engine needs normal random effects, not {kind}"
    if spec.covariates:
        return "the exact engine does not fit covariates (meta-regression)"
    if spec.subgroup and not spec.separate_tau:
        return (
            "the exact engine fits subgroups only with one tau per subgroup "
            "(--subgroup-tau separate); a shared tau couples them"
        )
    if priors.mu.family not in ("normal", "flat"):
        return f"the exact engine needs a normal or flat mu prior, not {priors.mu.family}"
    return None


def choose_engine(engine: str, spec: ModelSpec, priors: PriorSet) -> str:
    """Resolve ``"auto"`` and check that an explicit ``"exact"`` is possible."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    reason = exact_unavailable(spec, priors)
    if engine == "auto":
        return "mcmc" if reason else "exact"
    if engine == "exact" and reason:
        raise ModelError(f"{reason}; use --engine mcmc")
    return engine


def exact_for(
    y: np.ndarray, se: np.ndarray, priors: PriorSet, labels: list[str] | tuple[str, ...]
) -> Any:
    """The :class:`~trialsynth.exact.ExactPosterior` of contrasts under these priors."""
    from trialsynth.exact import exact_posterior

    mu = None if priors.mu.family == "flat" else (priors.mu.params[0], priors.mu.params[1])
    return exact_posterior(y, se, priors.tau.tau_dist(), mu, labels=list(labels))


def _fit_exact(
    data: TrialData,
    spec: ModelSpec,
    priors: PriorSet,
    settings: SamplerSettings,
    progress: Progress | None,
) -> FitResult:
    """Exact posterior, packaged like an MCMC fit (iid draws for queries and plots)."""
    import xarray as xr

    from trialsynth.results import FitResult

    say = progress or (lambda _phase: None)
    say("exact")
    t0 = time.perf_counter()
    lor = data.contrasts(correction=spec.correction)
    shape = (settings.chains, settings.draws)
    if spec.subgroup:
        return _fit_exact_subgroups(data, spec, priors, settings, lor, t0)
    post = exact_for(lor.y, lor.se, priors, data.study)
    d = post.sample(settings.chains * settings.draws, rng=np.random.default_rng([settings.seed, 2]))
    posterior = xr.Dataset(
        {
            "mu": (("chain", "draw"), d["mu"].reshape(shape)),
            "tau": (("chain", "draw"), d["tau"].reshape(shape)),
            "theta_new": (("chain", "draw"), d["theta_new"].reshape(shape)),
            "theta": (("chain", "draw", "study"), d["theta"].reshape(*shape, data.k)),
        },
        coords={
            "chain": np.arange(shape[0]),
            "draw": np.arange(shape[1]),
            "study": list(data.study),
        },
    )
    timings = {"exact_s": time.perf_counter() - t0}
    result = FitResult.from_exact(
        xr.DataTree.from_dict({"posterior": posterior}),
        data=data,
        spec=spec,
        priors=priors,
        settings=settings,
        timings=timings,
    )
    result.__dict__["exact"] = post  # the cached property, already computed
    return result


def exact_subgroup_posteriors(
    y: np.ndarray,
    se: np.ndarray,
    priors: PriorSet,
    studies: list[str],
    group: np.ndarray,
    levels: tuple[str, ...],
) -> dict[str, Any]:
    """One exact posterior per subgroup (separate mu and tau: independent models)."""
    names = np.asarray(studies, dtype=object)
    return {
        level: exact_for(y[group == j], se[group == j], priors, list(names[group == j]))
        for j, level in enumerate(levels)
    }


def _fit_exact_subgroups(
    data: TrialData,
    spec: ModelSpec,
    priors: PriorSet,
    settings: SamplerSettings,
    lor: Any,
    t0: float,
) -> FitResult:
    """Exact subgroup fit: the same derived quantities as :func:`derive`, from iid draws."""
    import xarray as xr

    from trialsynth.models import design
    from trialsynth.results import FitResult

    des = design(spec, data)
    assert des.group is not None
    posts = exact_subgroup_posteriors(
        np.asarray(lor.y), np.asarray(lor.se), priors, list(data.study), des.group, des.levels
    )
    shape = (settings.chains, settings.draws)
    n = shape[0] * shape[1]
    mu_g = np.empty((n, len(des.levels)))
    tau_g, new_g = np.empty_like(mu_g), np.empty_like(mu_g)
    theta = np.empty((n, data.k))
    for j, post in enumerate(posts.values()):
        d = post.sample(n, rng=np.random.default_rng([settings.seed, 2, j]))
        mu_g[:, j], tau_g[:, j], new_g[:, j] = d["mu"], d["tau"], d["theta_new"]
        theta[:, des.group == j] = d["theta"]
    # pooled summaries as in fit.derive: mean of subgroup means, rms tau, a random subgroup
    pick = np.random.default_rng([settings.seed, 3]).integers(len(des.levels), size=n)
    dims = ("chain", "draw", "subgroup")
    posterior = xr.Dataset(
        {
            "mu": (("chain", "draw"), mu_g.mean(axis=1).reshape(shape)),
            "tau": (("chain", "draw"), np.sqrt((tau_g**2).mean(axis=1)).reshape(shape)),
            "theta_new": (("chain", "draw"), new_g[np.arange(n), pick].reshape(shape)),
            "theta": (("chain", "draw", "study"), theta.reshape(*shape, data.k)),
            "mu_subgroup": (dims, mu_g.reshape(*shape, -1)),
            "tau_subgroup": (dims, tau_g.reshape(*shape, -1)),
            "theta_new_subgroup": (dims, new_g.reshape(*shape, -1)),
        },
        coords={
            "chain": np.arange(shape[0]),
            "draw": np.arange(shape[1]),
            "study": list(data.study),
            "subgroup": list(des.levels),
        },
    )
    result = FitResult.from_exact(
        xr.DataTree.from_dict({"posterior": posterior}),
        data=data,
        spec=spec,
        priors=priors,
        settings=settings,
        timings={"exact_s": time.perf_counter() - t0},
    )
    result.__dict__["exact_subgroups"] = posts  # the cached property, already computed
    return result


def check_sampleable(spec: ModelSpec, data: TrialData) -> None:
    """Refuse, before compiling, an MCMC fit that cannot be sampled reliably.

    Raises
    ------
    ModelError
        A binomial likelihood with an arm larger than :data:`MAX_BINOMIAL_ARM`.
    """
    if spec.likelihood != "binomial" or data.kind != "arm":
        return
    assert data.n_t is not None and data.n_c is not None
    sizes = np.maximum(data.n_t, data.n_c)
    i = int(np.argmax(sizes))
    if sizes[i] > MAX_BINOMIAL_ARM:
        raise ModelError(
            f"{data.name}: trial {data.study[i]!r} has an arm of {int(sizes[i]):,} participants;"
            f" the binomial likelihood is sampled for arms up to {MAX_BINOMIAL_ARM:,} (larger"
            " ones are too precise for NUTS): use --model normal-normal, whose normal"
            " approximation is exact at these sizes"
        )


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
