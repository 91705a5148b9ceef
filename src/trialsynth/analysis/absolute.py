"""Absolute effects from posterior draws: risks per 1000, risk difference, NNT, P(> MCID).

:func:`attach_absolute` computes them for a fit (the ``absolute`` entry of ``summary.json``,
``--control-risk``, ``[analysis] control_risk``, ``--mcid``); the functions below it are
numpy only.

The relative effect is the posterior of the pooled log odds ratio ``mu`` (and of a new
trial's ``theta_new``); the absolute effect needs a control risk ``p_c``:

* **given** (``--control-risk P``): a fixed assumed risk, as in a GRADE table's
  "assumed risk" row;
* **from the posterior** (the default): the control arms' pooled risk
  ``p_c = expit(mean_i alpha_i)``, the mean control-arm log-odds of the trials, computed
  draw by draw from the binomial-normal fit's ``alpha`` draws (so its uncertainty and its
  correlation with ``mu`` are carried, not plugged in). A fit without ``alpha`` draws
  (normal-normal model, exact engine) gets them from the *baseline model* fitted to the
  control arms alone: each trial's control log-odds under the same baseline prior, an
  exact one-dimensional posterior sampled by inverse CDF on a fine grid
  (:func:`baseline_draws`), independent of the ``mu`` draws.

Per draw ``s``: ``p_t = expit(logit(p_c) + mu)``, ``d = 1000 (p_t - p_c)``. Summaries
are posterior medians and equal-tailed 95% intervals. The number needed to treat is
``1000 / |d|`` at the median and at the interval's limits; it has a finite interval only
when the difference's interval excludes 0 (otherwise the interval runs through
infinity, from NNTB to NNTH as Altman 1998 writes it, and this is said).

Which direction is a benefit depends on the outcome: ``direction="higher"`` (events are
desirable, e.g. live birth: the project's convention P(OR > 1)) or ``"lower"`` (events
are harms, e.g. death). ``p_difference_gt_mcid`` is the probability that the difference
in the beneficial direction exceeds the minimal important difference ``mcid`` (per 1000):
``P(d > mcid)`` for "higher", ``P(d < -mcid)`` for "lower".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, logit

from trialsynth.core.errors import TrialsynthError
from trialsynth.engines.diagnostics import probability_mcse

if TYPE_CHECKING:
    from trialsynth.results.base import FitResult

FloatArray = NDArray[np.float64]
#: Grid points of the exact per-trial baseline posterior (inverse-CDF sampling).
BASELINE_GRID = 4001
#: Half-width of that grid in approximate posterior SDs (mass outside < 1e-30).
BASELINE_SPAN = 12.0
DIRECTIONS = ("higher", "lower")


class AbsoluteError(TrialsynthError):
    """Absolute effects that cannot be computed (one-line message)."""


def _quantiles(x: FloatArray) -> dict[str, float]:
    q025, med, q975 = np.quantile(x, [0.025, 0.5, 0.975])
    return {"median": float(med), "q025": float(q025), "q975": float(q975)}


def check_control_risk(p: float) -> float:
    """A control risk strictly between 0 and 1, or an :class:`AbsoluteError`."""
    p = float(p)
    if not (0.0 < p < 1.0) or not math.isfinite(p):
        raise AbsoluteError(f"control risk must lie strictly between 0 and 1, got {p:g}")
    return p


def control_risk_from_alpha(alpha: ArrayLike) -> FloatArray:
    """Pooled control risk per draw: ``expit`` of the mean control-arm log-odds.

    Parameters
    ----------
    alpha : array_like, shape (..., k)
        Posterior draws of the trials' control-arm log-odds (last axis: trials).
    """
    a = np.asarray(alpha, dtype=float)
    if a.ndim < 1 or a.shape[-1] == 0:
        raise AbsoluteError("alpha draws need a trial axis")
    return expit(a.mean(axis=-1))


def baseline_draws(
    events_c: ArrayLike,
    n_c: ArrayLike,
    prior_logpdf: Callable[[FloatArray], FloatArray],
    n_draws: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Draws of each trial's control-arm log-odds from its exact posterior.

    The posterior of ``alpha_i`` given the control arm alone is proportional to
    ``prior(alpha) * expit(alpha)^e_i * (1 - expit(alpha))^(n_i - e_i)``; it is evaluated
    on a grid of :data:`BASELINE_GRID` points spanning :data:`BASELINE_SPAN` approximate
    SDs around the mode and sampled by inverse CDF (linear interpolation).

    Returns
    -------
    ndarray, shape (n_draws, k)
    """
    e = np.asarray(events_c, dtype=float)
    n = np.asarray(n_c, dtype=float)
    out = np.empty((n_draws, e.size))
    for i, (ei, ni) in enumerate(zip(e, n, strict=True)):
        centre = float(logit((ei + 0.5) / (ni + 1.0)))
        sd = math.sqrt(1 / (ei + 0.5) + 1 / (ni - ei + 0.5))
        grid = np.linspace(centre - BASELINE_SPAN * sd, centre + BASELINE_SPAN * sd, BASELINE_GRID)
        # log expit(a) = -log1p(exp(-a)); log(1 - expit(a)) = -log1p(exp(a))
        loglik = -ei * np.logaddexp(0.0, -grid) - (ni - ei) * np.logaddexp(0.0, grid)
        logpost = loglik + np.asarray(prior_logpdf(grid), dtype=float)
        dens = np.exp(logpost - logpost.max())
        cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
        cdf /= cdf[-1]
        out[:, i] = np.interp(rng.uniform(size=n_draws), cdf, grid)
    return out


def _nnt(diff: dict[str, float], direction: str) -> dict[str, Any]:
    """NNT from the difference's median and interval (per 1000)."""
    med, lo, hi = diff["median"], diff["q025"], diff["q975"]
    sign = 1.0 if direction == "higher" else -1.0
    kind = "NNTB" if sign * med > 0 else "NNTH"
    point = 1000.0 / abs(med) if med != 0 else math.inf
    out: dict[str, Any] = {"median": point, "q025": None, "q975": None, "kind": kind}
    if lo > 0 or hi < 0:  # the interval excludes 0: a finite NNT interval
        a, b = sorted((1000.0 / abs(lo), 1000.0 / abs(hi)))
        out |= {"q025": a, "q975": b, "defined": True, "note": ""}
        return out
    benefit_limit = hi if direction == "higher" else lo
    harm_limit = lo if direction == "higher" else hi
    nntb = 1000.0 / abs(benefit_limit) if benefit_limit != 0 else math.inf
    nnth = 1000.0 / abs(harm_limit) if harm_limit != 0 else math.inf
    out |= {
        "defined": False,
        "note": (
            f"the 95% CrI of the difference ({lo:.1f} to {hi:.1f} per 1000) includes 0: "
            f"the NNT interval is unbounded (NNTB {nntb:.0f} to infinity to NNTH {nnth:.0f})"
        ),
    }
    return out


def _setting(
    effect: FloatArray,
    pc: FloatArray,
    mcid: float | None,
    direction: str,
    mcse: Callable[[NDArray[np.bool_]], float],
) -> dict[str, Any]:
    """Treatment risk, difference, NNT and probabilities for one relative effect.

    ``effect`` and ``pc`` have the draws' (chain, draw) shape: the MCSE of each
    probability accounts for autocorrelation.
    """
    pt = expit(logit(pc) + effect)
    d = 1000.0 * (pt - pc)
    benefit = d if direction == "higher" else -d
    diff = _quantiles(d)
    return {
        "per_1000_treatment": _quantiles(1000.0 * pt),
        "difference_per_1000": diff,
        "nnt": _nnt(diff, direction),
        "p_benefit": float(np.mean(benefit > 0)),
        "p_difference_gt_mcid": None if mcid is None else float(np.mean(benefit > mcid)),
        "mcse": {
            "p_benefit": _mcse(benefit > 0, mcse),
            "p_difference_gt_mcid": None if mcid is None else _mcse(benefit > mcid, mcse),
        },
    }


def _mcse(indicator: NDArray[np.bool_], mcse: Callable[[NDArray[np.bool_]], float]) -> float:
    x = indicator if indicator.ndim >= 2 else indicator.reshape(1, -1)
    return mcse(x)


def absolute_effects(
    mu: ArrayLike,
    control: float | ArrayLike,
    *,
    theta_new: ArrayLike | None = None,
    mcid: float | None = None,
    direction: str = "higher",
    source: str = "given",
    mcse: Callable[[NDArray[np.bool_]], float] = probability_mcse,
) -> dict[str, Any]:
    """The ``absolute`` object of ``summary.json`` from posterior draws.

    Parameters
    ----------
    mu : array_like
        Posterior draws of the pooled log odds ratio, shape (chain, draw) or (draw,).
    control : float or array_like
        A given control risk, or draws of it paired with ``mu`` (same shape).
    theta_new : array_like, optional
        Draws of a new trial's log odds ratio: adds ``new_trial``.
    mcid : float, optional
        Minimal important difference per 1000 (> 0), in the beneficial direction.
    direction : {"higher", "lower"}
        Whether more events are a benefit.
    source : str
        How the control risk was obtained (recorded as ``control_risk_source``).
    mcse : callable
        MCSE of a probability from (chain, draw) indicators: default ESS-based (MCMC draws);
        :meth:`FitResult.probability_mcse` of the fit the draws came from.

    Returns
    -------
    dict
        ``control_risk`` (the given value, or the posterior median), ``control_risk_source``,
        ``per_1000_control``, ``per_1000_treatment``, ``difference_per_1000`` (each
        ``median``/``q025``/``q975``), ``nnt``, ``p_benefit``, ``p_difference_gt_mcid``,
        ``mcid``, ``direction`` and, with ``theta_new``, ``new_trial`` (the same keys for a
        new trial's setting).
    """
    if direction not in DIRECTIONS:
        raise AbsoluteError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if mcid is not None and not (mcid > 0 and math.isfinite(mcid)):
        raise AbsoluteError(f"the MCID must be a positive number of events per 1000, got {mcid}")
    m = np.asarray(mu, dtype=float)
    if np.ndim(control) == 0:
        pc = np.full(m.shape, check_control_risk(float(control)))  # type: ignore[arg-type]
        risk = float(control)  # type: ignore[arg-type]
    else:
        pc = np.asarray(control, dtype=float)
        if pc.shape != m.shape:
            raise AbsoluteError(
                f"control-risk draws ({pc.size}) and mu draws ({m.size}) differ in number"
            )
        risk = float(np.median(pc))
    out: dict[str, Any] = {
        "control_risk": risk,
        "control_risk_source": source,
        "per_1000_control": _quantiles(1000.0 * pc),
        **_setting(m, pc, mcid, direction, mcse),
        "mcid": mcid,
        "direction": direction,
    }
    if theta_new is not None:
        new = np.asarray(theta_new, dtype=float)
        if new.shape != m.shape:
            raise AbsoluteError("theta_new and mu draws differ in number")
        out["new_trial"] = _setting(new, pc, mcid, direction, mcse)
    return out


#: How ``benefit`` is written in the spec and on the command line.
BENEFITS = {"more-events": "higher", "fewer-events": "lower"}


def _direction_from_reference(reference: dict[str, Any] | None) -> tuple[str, str]:
    """Benefit direction from RevMan's forest-plot labels, else more events (the default)."""
    labels = (reference or {}).get("graph_labels") or ["", ""]
    left = str(labels[0]).lower()
    treatment = str((reference or {}).get("treatment") or "").lower()
    if left and ("experimental" in left or (treatment and treatment in left)):
        return "lower", f"fewer events are a benefit (RevMan's left label {labels[0]!r})"
    return "higher", "more events are a benefit (the default; see --benefit)"


def reference_benefit(reference: dict[str, Any] | None) -> str:
    """``more-events`` or ``fewer-events`` as RevMan's forest-plot labels say (else more)."""
    direction, _ = _direction_from_reference(reference)
    return "fewer-events" if direction == "lower" else "more-events"


def _posterior_control(result: FitResult) -> tuple[FloatArray | None, str]:
    """Draws of the control arms' pooled risk and how they were obtained."""
    mu = result.draws("mu")
    if "alpha" in result.tree["posterior"]:
        return control_risk_from_alpha(result.draws("alpha")), (
            "posterior: expit of the mean control-arm log-odds (alpha draws of the binomial fit)"
        )
    frame = result.data_frame
    if "events_c" not in frame.columns:
        return None, "no control arms in contrast-level data: give --control-risk"
    prior = result.priors.baseline
    rng = np.random.default_rng([int(result.provenance["seed"]), 14])
    alpha = baseline_draws(
        frame["events_c"].to_numpy(float),
        frame["n_c"].to_numpy(float),
        prior.dist().logpdf,
        mu.size,
        rng,
    )
    return control_risk_from_alpha(alpha).reshape(mu.shape), (
        "baseline model: each trial's control-arm log-odds from its own exact posterior "
        f"under the baseline prior {prior.describe()}, expit of their mean"
    )


def check_options(
    control_risk: float | None, mcid: float | None, benefit: str | None, where: str = ""
) -> None:
    """Fail before any sampling on a bad control risk, MCID or benefit direction."""
    prefix = f"{where}: " if where else ""
    try:
        if control_risk is not None:
            check_control_risk(control_risk)
        if mcid is not None and not (mcid > 0 and math.isfinite(mcid)):
            raise AbsoluteError(
                f"the MCID must be a positive number of events per 1000, got {mcid}"
            )
        if benefit is not None and benefit not in BENEFITS:
            raise AbsoluteError(f"benefit must be one of {', '.join(BENEFITS)}, not {benefit!r}")
    except AbsoluteError as err:
        raise AbsoluteError(f"{prefix}{err}") from None


def attach_absolute(
    result: FitResult,
    *,
    control_risk: float | None = None,
    mcid: float | None = None,
    benefit: str | None = None,
) -> dict[str, Any] | None:
    """Compute the absolute effects of ``result`` and keep them in ``result.extras``.

    Parameters
    ----------
    control_risk : float, optional
        Assumed control risk; default: the control arms' pooled risk from the posterior.
    mcid : float, optional
        Minimal important difference per 1000.
    benefit : {"more-events", "fewer-events"}, optional
        Default: from RevMan's forest-plot labels where the data came from a review, else
        more events.

    Returns
    -------
    dict or None
        The ``absolute`` entry (None, with nothing attached, when no control risk can be
        had: contrast-level data without ``control_risk``).
    """
    if benefit is not None and benefit not in BENEFITS:
        raise AbsoluteError(f"benefit must be one of {', '.join(BENEFITS)}, not {benefit!r}")
    if benefit is None:
        direction, why = _direction_from_reference(result.provenance.get("reference"))
    else:
        direction, why = BENEFITS[benefit], f"{benefit.replace('-', ' ')} are a benefit (as given)"
    if control_risk is not None:
        control: float | FloatArray = check_control_risk(control_risk)
        source = "given (--control-risk / [analysis] control_risk)"
    else:
        draws, source = _posterior_control(result)
        if draws is None:
            result.extras.pop("absolute", None)
            return None
        control = draws
    out = absolute_effects(
        result.draws("mu"),
        control,
        theta_new=result.draws("theta_new"),
        mcid=mcid,
        direction=direction,
        source=source,
        mcse=result.probability_mcse,
    )
    out["benefit"] = why
    # what was asked for, so that `fit --from` redoes the same absolute effects
    out["options"] = {"control_risk": control_risk, "mcid": mcid, "benefit": benefit}
    result.extras["absolute"] = out
    return out
