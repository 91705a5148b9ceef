"""Model comparison by leave-one-TRIAL-out cross-validation (ELPD), with exact refits.

The unit left out is a whole trial, both arms: its pointwise log-likelihood is the sum of the
two arms' binomial log-likelihoods (binomial likelihood) or the normal log-density of its log
odds ratio (normal likelihood), computed in numpy from the posterior draws. PSIS-LOO
(ArviZ ``loo``) estimates each trial's ``log p(y_i | y_-i)``; in the binomial-normal model each
trial has its own baseline ``alpha_i`` and effect ``theta_i``, informed mostly by that trial,
so Pareto k is usually above 0.7 and the importance sampling unreliable. Those trials are
refitted without the trial (ArviZ ``reloo`` with :class:`TrialRefit`; the k-1-trial model is
compiled once and reused with new data for every fold) and their ELPD is computed exactly from
the refit:

``p(y_i | y_-i) = mean_s  ∫∫ p(y_i | a, theta) pi(a) RE(theta | mu_s + x_i beta_s, tau_s)
da dtheta``

i.e. the left-out trial's baseline comes from its prior ``pi`` (the baseline prior of the
fit) and its effect from the random-effects distribution (normal or Student-t; a point mass
for the common-effect model). The inner integrals are done by quadrature
(:func:`trial_likelihood_grid`, :func:`expected_over_effects`), not by Monte Carlo. Because
every model pays the same price for predicting the control arm under the same baseline
prior, the differences between models reflect the treatment effects.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from trialsynth.core.errors import TrialsynthError
from trialsynth.models.design import design, observations
from trialsynth.models.likelihood import log_binomial, log_likelihood
from trialsynth.models.spec import ModelError, ModelSpec

if TYPE_CHECKING:
    import pandas as pd

    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import TrialData
    from trialsynth.priors.prior import PriorSet
    from trialsynth.results.base import FitResult

#: Pareto k above which a trial is refitted (Vehtari et al. 2024, for S >= 2200 draws).
K_THRESHOLD = 0.7
MODEL_CHOICES = ("normal", "student-t", "common-effect", "covariate:COLUMN")
DEFAULT_MODELS = "normal,student-t,common-effect"
#: Baseline log-odds integrated over [-A_MAX, A_MAX] (prior mass outside is negligible for
#: the normal(0, 5) default: 2e-9).
A_MAX = 30.0
#: Half-width of the effect grid around a trial's observed log-OR, in its standard errors.
THETA_HALF_WIDTH_SE = 15.0


class CompareError(TrialsynthError):
    """A comparison that cannot be run as asked (one line naming the problem)."""


def parse_models(text: str, data: TrialData, *, nu: float = 4.0) -> dict[str, ModelSpec]:
    """Model specs from ``normal,student-t,common-effect,covariate:ablat``.

    The likelihood follows the data: binomial for arm-level counts, normal for contrasts,
    so all models are compared on the same observations.
    """
    names = [t.strip() for t in text.split(",") if t.strip()]
    if len(names) < 2:
        raise CompareError(
            f"compare needs at least two models, got {len(names)} ({text!r}); "
            f"valid: {', '.join(MODEL_CHOICES)}"
        )
    model = "binomial-normal" if data.kind == "arm" else "normal-normal"
    out: dict[str, ModelSpec] = {}
    for name in names:
        if name in out:
            raise CompareError(f"--models lists {name!r} twice")
        if name == "normal":
            spec = ModelSpec.from_options(model, data_kind=data.kind)
        elif name == "student-t":
            spec = ModelSpec.from_options(
                model, data_kind=data.kind, random_effects="student-t", nu=nu
            )
        elif name == "common-effect":
            lik = "binomial" if data.kind == "arm" else "normal"
            spec = ModelSpec.from_options("common-effect", data_kind=data.kind, likelihood=lik)
        elif name.startswith("covariate:") and name.removeprefix("covariate:").strip():
            cols = tuple(c.strip() for c in name.removeprefix("covariate:").split("+"))
            spec = ModelSpec.from_options(model, data_kind=data.kind, covariates=cols)
            try:  # unknown or non-numeric covariate: error now, not after the fits
                design(spec, data)
            except ModelError as err:
                numeric = ", ".join(numeric_covariates(data)) or "(none)"
                raise CompareError(f"{err}; numeric covariates of {data.name}: {numeric}") from None
        else:
            raise CompareError(
                f"unknown model {name!r} in --models; valid: {', '.join(MODEL_CHOICES)}"
            )
        out[name] = spec
    return out


def numeric_covariates(data: TrialData) -> list[str]:
    """Covariate columns usable in a meta-regression: numeric, complete, not constant."""
    out = []
    for name in data.covariates.columns:
        try:
            col = data.covariates[name].to_numpy(dtype=float)
        except (TypeError, ValueError):
            continue
        if np.isfinite(col).all() and np.ptp(col) > 0:
            out.append(str(name))
    return out


# --------------------------------------------------------------------------- log-likelihoods


def pointwise_log_lik(fit: FitResult, data: TrialData) -> np.ndarray:
    """Per-trial log-likelihood of every posterior draw, shape (chain, draw, k).

    :func:`trialsynth.models.likelihood.log_likelihood` of the fit's ``theta`` (and ``alpha``)
    on ``data`` as the fit's model sees them (both arms, or the log-OR with the fit's
    continuity correction).
    """
    spec = fit.spec
    alpha = fit.draws("alpha") if spec.likelihood == "binomial" else None
    bias = fit.draws("bias") if spec.bias is not None else None  # weaker trials' bias
    return log_likelihood(spec, observations(spec, data), fit.draws("theta"), alpha, bias)


def trial_likelihood_grid(
    data: TrialData, i: int, spec: ModelSpec, priors: PriorSet, theta: np.ndarray
) -> np.ndarray:
    """``log g_i(theta)``: trial i's likelihood as a function of its log-OR, on a grid.

    Binomial likelihood: the baseline is integrated out over its prior,
    ``g(theta) = ∫ Bin(y_c | n_c, expit(a)) Bin(y_t | n_t, expit(a + theta)) pi(a) da``, by
    the trapezoid rule on [-30, 30] with a step resolving the narrower arm likelihood.
    Normal likelihood: ``N(y_i | theta, se_i)``.
    """
    theta = np.asarray(theta, dtype=float)
    if spec.likelihood == "normal":
        lor = data.contrasts(correction=spec.correction)
        return log_likelihood(spec, {"y": lor.y[i], "se": lor.se[i]}, theta)
    if priors.baseline.family == "flat":
        raise CompareError(
            "leave-one-trial-out needs a proper baseline prior (the left-out trial's control "
            "arm is predicted from it); flat() is improper: use e.g. normal(0, 5)"
        )
    yc, nc = float(data.events_c[i]), float(data.n_c[i])
    yt, nt = float(data.events_t[i]), float(data.n_t[i])
    n_max = max(nc, nt)
    step = min(0.02, 0.25 / math.sqrt(0.25 * n_max + 1.0))
    a = np.linspace(-A_MAX, A_MAX, round(2 * A_MAX / step) + 1)
    log_prior = priors.baseline.dist().logpdf(a)
    base = log_binomial(yc, nc, a) + log_prior + math.log(a[1] - a[0])
    base[[0, -1]] += math.log(0.5)  # trapezoid end weights
    out = np.empty(theta.shape, dtype=float)
    flat = theta.ravel()
    chunk = max(1, 4_000_000 // a.size)
    for s in range(0, flat.size, chunk):
        t = flat[s : s + chunk, None]
        out.ravel()[s : s + chunk] = special.logsumexp(base + log_binomial(yt, nt, a + t), axis=1)
    return out


def _effect_grid(data: TrialData, i: int, spec: ModelSpec, centres: np.ndarray) -> np.ndarray:
    """Grid of trial i's log-OR: +-15 SE around its estimate and every draw's centre."""
    lor = data.contrasts(correction=spec.correction)
    y, se = float(lor.y[i]), float(lor.se[i])
    lo = min(y - THETA_HALF_WIDTH_SE * se, float(np.min(centres)) - 1.0)
    hi = max(y + THETA_HALF_WIDTH_SE * se, float(np.max(centres)) + 1.0)
    step = min(0.01, se / 50)
    n = min(math.ceil((hi - lo) / step) + 1, 20_001)
    return np.linspace(lo, hi, n)


def expected_over_effects(
    grid: np.ndarray,
    log_g: np.ndarray,
    centre: np.ndarray,
    scale: np.ndarray,
    nu: np.ndarray | float | None,
) -> np.ndarray:
    """``log E[g(theta)]`` for ``theta ~ centre + scale * eps`` per draw (eps normal or t_nu).

    ``g`` is known on an equally spaced grid: each grid value stands for the cell around it,
    and a draw's weight on a cell is the exact probability of the cell under its effect
    distribution (the end cells are open, so no mass is lost). A draw with ``scale`` below
    one grid step (the common-effect model) interpolates ``log g`` linearly at its centre.
    """
    centre = np.asarray(centre, dtype=float).ravel()
    scale = np.asarray(scale, dtype=float).ravel()
    nus = None if nu is None else np.broadcast_to(np.asarray(nu, dtype=float), centre.shape)
    h = grid[1] - grid[0]
    edges = np.concatenate([[-np.inf], (grid[:-1] + grid[1:]) / 2, [np.inf]])
    out = np.empty(centre.shape, dtype=float)
    point = scale < h
    out[point] = np.interp(centre[point], grid, log_g)
    spread = np.flatnonzero(~point)
    chunk = max(1, 2_000_000 // grid.size)
    for s in range(0, spread.size, chunk):
        idx = spread[s : s + chunk]
        z = (edges[None, :] - centre[idx, None]) / scale[idx, None]
        cdf = special.ndtr(z) if nus is None else special.stdtr(nus[idx, None], z)
        w = np.diff(cdf, axis=1)
        with np.errstate(divide="ignore"):
            out[idx] = special.logsumexp(log_g[None, :] + np.log(w), axis=1)
    return out


def heldout_log_lik(fold: FitResult, data: TrialData, i: int) -> np.ndarray:
    """``log p(y_i | params_s)`` of the left-out trial i for every draw of a fold fit.

    Parameters
    ----------
    fold : FitResult
        The model fitted to ``data`` without trial i.
    data : TrialData
        All trials (trial i included).
    i : int
        Position of the left-out trial in ``data``.

    Returns
    -------
    ndarray, shape (chain, draw)
    """
    spec = fold.spec
    mu = fold.draws("mu")
    shape = mu.shape
    centre = mu.copy()
    if spec.covariates:
        d_fold = design(spec, data.drop(data.study[i]))
        d_all = design(spec, data)
        x_raw = d_all.x[i] + np.asarray(d_all.centre)  # trial i's raw covariates
        x_i = x_raw - np.asarray(d_fold.centre)  # centred like the fold's fit
        centre = centre + np.einsum("cdp,p->cd", fold.draws("beta"), x_i)
    if spec.random_effects is None:
        scale = np.zeros(shape)
    else:
        scale = fold.draws("tau")
    nu: np.ndarray | float | None = None
    if spec.random_effects == "student-t":
        if spec.nu is None:
            if "nu" not in fold.tree["posterior"]:
                raise CompareError("student-t fit with estimated nu has no 'nu' draws to use")
            nu = fold.draws("nu").ravel()
        else:
            nu = float(spec.nu)
    grid = _effect_grid(data, i, spec, centre)
    log_g = trial_likelihood_grid(data, i, spec, fold.priors, grid)
    return expected_over_effects(grid, log_g, centre, scale, nu).reshape(shape)


# --------------------------------------------------------------------------- LOO with refits


def log_mean_exp_mcse(ll: np.ndarray) -> float:
    """Monte Carlo SE of ``log(mean(exp(ll)))`` over (chain, draw) draws (delta method).

    ``mcse(mean L) / mean L`` with ``L = exp(ll - max ll)`` and ArviZ's ESS-based MCSE of a
    mean, which accounts for the autocorrelation of MCMC draws.
    """
    from arviz_stats.base import array_stats

    lik = np.exp(ll - np.max(ll))
    return float(array_stats.mcse(lik, chain_axis=-2, draw_axis=-1, method="mean") / np.mean(lik))


def _loo_tree(fit: FitResult, data: TrialData) -> Any:
    import xarray as xr

    ll = pointwise_log_lik(fit, data)
    post = fit.tree["posterior"].to_dataset()[["mu"]]
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "study": list(data.study)}
    log_lik = xr.Dataset({"trial": (("chain", "draw", "study"), ll)}, coords=coords)
    return xr.DataTree.from_dict({"posterior": post, "log_likelihood": log_lik})


def _settings_of(fit: FitResult) -> SamplerSettings:
    from trialsynth.core.settings import SamplerSettings

    return SamplerSettings(**fit.provenance["settings"])


@dataclass
class _Folds:
    """What the refits did (filled in by :class:`TrialRefit`)."""

    refit: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    mcse: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def _make_wrapper(fit: FitResult, data: TrialData, folds: _Folds, progress: Callable[[str], None]):
    """An ArviZ ``SamplingWrapper`` that refits ``fit``'s model without one trial."""
    import time

    from arviz_stats.loo.wrapper import SamplingWrapper

    from trialsynth.results.fitting import fit as do_fit

    class TrialRefit(SamplingWrapper):
        """Leave one trial out: refit the same spec, priors and sampler settings."""

        def sel_observations(self, idx: Any) -> tuple[Any, int]:
            i = int(idx)
            return data.drop(data.study[i]), i

        def sample(self, modified_observed_data: Any) -> FitResult:
            t0 = time.perf_counter()
            left_out = next(s for s in data.study if s not in modified_observed_data.study)
            progress(f"refit without {left_out}")
            res = do_fit(
                modified_observed_data,
                spec=fit.spec,
                priors=fit.priors,
                settings=_settings_of(fit),
                reusable=True,
                engine=fit.engine,
            )
            folds.refit.append(left_out)
            if not res.ok:
                folds.failed.append(left_out)
            folds.seconds += time.perf_counter() - t0
            return res

        def get_inference_data(self, fitted_model: Any) -> Any:
            return fitted_model

        def log_likelihood__i(self, excluded_obs: Any, idata__i: Any) -> Any:
            import xarray as xr

            ll = heldout_log_lik(idata__i, data, int(excluded_obs))
            folds.mcse[data.study[int(excluded_obs)]] = log_mean_exp_mcse(ll)
            return xr.DataArray(
                ll[..., None],
                dims=("chain", "draw", "study"),
                coords={"study": [data.study[int(excluded_obs)]]},
            )

    return TrialRefit(model=fit.spec, idata_orig=_loo_tree(fit, data))


@dataclass
class ModelLOO:
    """Leave-one-trial-out ELPD of one model."""

    name: str
    spec: ModelSpec
    elpd: Any  # arviz_stats ELPDDataLOO (pointwise)
    psis_k: np.ndarray
    refit: list[str]
    failed_refits: list[str]
    fit_ok: bool
    refit_mcse: dict[str, float] = field(default_factory=dict)
    k_threshold: float = K_THRESHOLD
    seconds: float = 0.0

    @property
    def status(self) -> str:
        """``ok``, or ``failed`` when the fit or a refit failed its convergence checks."""
        return "ok" if self.fit_ok and not self.failed_refits else "failed"

    def to_json(self, studies: Sequence[str]) -> dict[str, Any]:
        """Totals and per-trial values (PSIS k, ELPD, whether refitted)."""
        return {
            "model": self.name,
            "model_spec": self.spec.to_dict(),
            "elpd_loo": float(self.elpd.elpd),
            "se": float(self.elpd.se),
            "p_loo": float(self.elpd.p),
            "refit_rule": (
                "every trial"
                if self.k_threshold == -math.inf
                else f"trials with PSIS k > {self.k_threshold:g}"
            ),
            "refit": list(self.refit),
            "failed_refits": list(self.failed_refits),
            "seconds": self.seconds,
            "status": self.status,
            "trials": [
                {
                    "study": s,
                    "elpd": float(self.elpd.elpd_i.values[j]),
                    "pareto_k": float(self.psis_k[j]),
                    "refit": s in self.refit,
                    "mcse": self.refit_mcse.get(s),
                }
                for j, s in enumerate(studies)
            ],
        }


def default_k_threshold(spec: ModelSpec) -> float:
    """Refit every trial (-inf) for a binomial likelihood; 0.7 for a normal one.

    With a per-trial baseline the left-out trial's control arm is predicted from the
    baseline prior, far wider than its posterior, and PSIS fails whatever k-hat says: on
    ``ivig_rm`` (common-effect, 4 x 2000 draws) PSIS overestimated every trial's ELPD by
    1.4-2.0 units, including one at k-hat 0.64 (BENCHMARKS.md, ``scripts/bench_compare.py``).
    """
    return -math.inf if spec.likelihood == "binomial" else K_THRESHOLD


def loo_trials(
    fit: FitResult,
    data: TrialData,
    *,
    name: str | None = None,
    k_threshold: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ModelLOO:
    """Leave-one-trial-out ELPD of a fit: PSIS-LOO, with exact refits where k > threshold.

    ``k_threshold=-inf`` refits every trial (brute-force LOO). The default (None) is
    :func:`default_k_threshold`: every trial for a binomial likelihood, whose per-trial
    baselines make PSIS unreliable even below k = 0.7, and 0.7 for a normal likelihood.
    """
    import time

    import arviz as az

    if fit.provenance.get("data_sha256") != data.sha256:
        raise CompareError(
            f"the fit of {fit.provenance.get('data_name')!r} was not made on these data "
            f"({data.name}): LOO refits need the fitted data"
        )
    if fit.spec.subgroup:
        raise CompareError("leave-one-trial-out of subgroup models is not supported")
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    folds = _Folds()
    wrapper = _make_wrapper(fit, data, folds, say)
    with warnings.catch_warnings():
        # ArviZ warns about k > 0.7; those trials are refitted and reported by name.
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        psis = az.loo(wrapper.idata_orig, pointwise=True)
        psis_k = np.asarray(psis.pareto_k.values, dtype=float).copy()
        threshold = default_k_threshold(fit.spec) if k_threshold is None else k_threshold
        result = az.reloo(wrapper, loo_orig=psis, k_threshold=threshold, pointwise=True)
    return ModelLOO(
        name=name or fit.spec.name,
        spec=fit.spec,
        elpd=result,
        psis_k=psis_k,
        refit=folds.refit,
        failed_refits=folds.failed,
        fit_ok=fit.ok,
        refit_mcse=dict(folds.mcse),
        k_threshold=threshold,
        seconds=time.perf_counter() - t0,
    )


@dataclass
class Comparison:
    """ELPD of several models on the same trials, ranked (ArviZ ``compare``)."""

    models: dict[str, ModelLOO]
    table: pd.DataFrame
    studies: list[str]
    data_name: str
    k_threshold: float | None

    def rows(self) -> list[dict[str, Any]]:
        """One JSON object per model, best first (elpd_loo, se, p_loo, elpd_diff, dse, ...)."""
        out = []
        for name, row in self.table.iterrows():
            m = self.models[str(name)]
            out.append(
                {
                    **m.to_json(self.studies),
                    "rank": int(row["rank"]),
                    "elpd_diff": float(row["elpd_diff"]),
                    "dse": float(row["dse"]),
                    "weight": float(row["weight"]),
                    "psis_k_above_threshold": [
                        s for s, k in zip(self.studies, m.psis_k, strict=True) if k > K_THRESHOLD
                    ],
                }
            )
        return out


def compare(
    fits: Mapping[str, FitResult],
    data: TrialData,
    *,
    k_threshold: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Compare fitted models on the same trials by leave-one-trial-out ELPD.

    Parameters
    ----------
    fits : mapping of str to FitResult
        Named fits of the same data (e.g. normal, Student-t, common-effect, meta-regression).
    data : TrialData
        The data they were fitted to (needed for the refits).
    k_threshold : float, optional
        Trials whose PSIS Pareto k exceeds this are refitted without the trial; default
        :func:`default_k_threshold`.
    progress : callable, optional
        Called with a short message before each refit.

    Returns
    -------
    Comparison
        Per model ELPD with SE, p_loo, the refitted trials; ranked with ELPD differences,
        their SE and stacking weights.
    """
    import arviz as az

    if len(fits) < 2:
        raise CompareError(f"compare needs at least two models, got {len(fits)}")
    liks = {f.spec.likelihood for f in fits.values()}
    if len(liks) > 1:
        raise CompareError(
            "models with binomial and normal likelihoods predict different observations and "
            "cannot be compared by ELPD"
        )
    results = {
        name: loo_trials(f, data, name=name, k_threshold=k_threshold, progress=progress)
        for name, f in fits.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-data caveats: shown as diag columns instead
        table = az.compare({n: r.elpd for n, r in results.items()}, round_to="none")
    return Comparison(
        models=results,
        table=table,
        studies=list(data.study),
        data_name=data.name,
        k_threshold=k_threshold,
    )


def compare_models(
    data: TrialData,
    models: str | Mapping[str, ModelSpec] = DEFAULT_MODELS,
    *,
    priors: PriorSet | None = None,
    settings: SamplerSettings | None = None,
    k_threshold: float | None = None,
    nu: float = 4.0,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Fit each model to ``data`` (same priors and sampler settings) and :func:`compare` them."""
    from trialsynth.results.fitting import fit as do_fit

    specs = parse_models(models, data, nu=nu) if isinstance(models, str) else dict(models)
    if len(specs) < 2:
        raise CompareError(f"compare needs at least two models, got {len(specs)}")
    say = progress or (lambda _m: None)
    fits = {}
    for name, spec in specs.items():
        say(f"fitting {name}")
        fits[name] = do_fit(data, spec=spec, priors=priors, settings=settings, reusable=True)
    return compare(fits, data, k_threshold=k_threshold, progress=progress)
