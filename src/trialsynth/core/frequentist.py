"""Classical (frequentist) meta-analysis estimators on the log odds ratio scale.

Pure numpy/scipy functions: they know nothing of PyMC, files or the CLI. They give the
classical references that sit beside the Bayesian fits (the ``frequentist`` key of
``trialsynth fit --json``) and follow the definitions of R's metafor (``rma.mh``,
``rma.peto``, ``rma.uni`` and ``predict``):

- :func:`mantel_haenszel`: Mantel-Haenszel common odds ratio with the
  Robins-Breslow-Greenland variance; no continuity correction.
- :func:`peto`: Peto's one-step odds ratio.
- :func:`inverse_variance`: common (fixed) effect by inverse-variance weighting.
- :func:`random_effects`: normal-normal random effects with tau^2 by DerSimonian-Laird,
  REML, ML or Paule-Mandel, optional Hartung-Knapp(-Sidik-Jonkman) inference, I^2, H^2 and a
  prediction interval for a new trial.
- :func:`classical_summary`: all of the above at once, as JSON-friendly dicts.

Every estimate is on the log scale (``estimate``, ``se``, ``ci_lower``, ``ci_upper``);
``to_dict()`` adds ``or``, ``lower`` and ``upper`` = exp of the estimate and interval,
which are odds ratios when the inputs are log odds ratios.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from trialsynth.core.effects import log_odds_ratios

#: Estimators of the between-trial variance tau^2 accepted by :func:`random_effects`.
RE_METHODS: tuple[str, ...] = ("DL", "REML", "ML", "PM")

#: Prediction-interval variants accepted by :func:`random_effects`.
PREDICTION_METHODS: tuple[str, ...] = ("metafor", "hts")

#: Convergence tolerance on tau^2 of the iterative estimators (REML, ML, PM). Tighter than
#: metafor's default ``threshold=1e-5`` so that results are the exact optimum, not an
#: iterate that stopped early.
TAU2_TOL = 1e-12

MAX_ITER = 1000

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------- helpers


def z_crit(level: float) -> float:
    """Two-sided standard-normal critical value for a ``level`` interval."""
    return float(special.ndtri(0.5 + level / 2))


def _t_crit(level: float, df: float) -> float:
    """Two-sided Student-t critical value; NaN when ``df`` < 1."""
    if df < 1:
        return math.nan
    return float(special.stdtrit(df, 0.5 + level / 2))


def check_level(level: float) -> float:
    """The level as a float, checked to lie in (0, 1)."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    return level


def _as_vector(name: str, values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def check_effects(y: ArrayLike, se: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Effects and standard errors as float vectors of one length, every se > 0."""
    y_arr = _as_vector("y", y)
    se_arr = _as_vector("se", se)
    if y_arr.shape != se_arr.shape:
        raise ValueError(f"y and se differ in length: {y_arr.size} vs {se_arr.size}")
    if y_arr.size == 0:
        raise ValueError("at least one trial is needed")
    if np.any(se_arr <= 0):
        raise ValueError("se must be positive")
    return y_arr, se_arr


def _check_counts(
    events_t: ArrayLike, n_t: ArrayLike, events_c: ArrayLike, n_c: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return the 2x2 cells ``a, b, c, d`` (treatment events/non-events, control ditto)."""
    arrays = [
        _as_vector(name, v)
        for name, v in (("events_t", events_t), ("n_t", n_t), ("events_c", events_c), ("n_c", n_c))
    ]
    sizes = {a.size for a in arrays}
    if len(sizes) != 1:
        raise ValueError("events_t, n_t, events_c and n_c must have the same length")
    if arrays[0].size == 0:
        raise ValueError("at least one trial is needed")
    et, nt, ec, nc = arrays
    if np.any(et < 0) or np.any(ec < 0):
        raise ValueError("event counts must be non-negative")
    if np.any(nt <= 0) or np.any(nc <= 0):
        raise ValueError("arm sizes must be positive")
    if np.any(et > nt) or np.any(ec > nc):
        raise ValueError("event counts cannot exceed arm sizes")
    return et, nt - et, ec, nc - ec


def _json_float(x: float | None) -> float | None:
    """Plain float for JSON; ``None`` for missing or non-finite values."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _exp(x: float) -> float:
    return math.exp(x) if math.isfinite(x) else math.nan


def jsonify(d: dict[str, Any]) -> dict[str, Any]:
    """The dict with numpy scalars as Python numbers and non-finite floats as None."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, bool | str | int) or value is None:
            out[key] = value
        else:
            out[key] = _json_float(value)
    return out


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CommonEffectResult:
    """A common-effect (fixed-effect) pooled estimate on the log scale.

    Attributes
    ----------
    method : str
        ``"MH"``, ``"Peto"`` or ``"IV"``.
    k : int
        Number of trials supplied (including any that carry no information).
    estimate, se : float
        Pooled log odds ratio and its standard error.
    ci_lower, ci_upper : float
        Wald interval ``estimate -+ z * se`` at ``level``.
    level : float
        Confidence level of the interval.
    zval, pval : float
        Wald z statistic for ``estimate = 0`` and its two-sided p-value.
    q, q_df, q_pval : float or None
        Test of homogeneity (Cochran's Q for IV; Peto's Q for Peto; ``None`` for MH).
    """

    method: str
    k: int
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    level: float
    zval: float
    pval: float
    q: float | None = None
    q_df: int | None = None
    q_pval: float | None = None

    @property
    def odds_ratio(self) -> float:
        """``exp(estimate)``."""
        return _exp(self.estimate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: the fields plus ``or``, ``lower``, ``upper`` (exp scale).

        Non-finite values become ``None``.
        """
        d = asdict(self)
        d["or"] = _exp(self.estimate)
        d["lower"] = _exp(self.ci_lower)
        d["upper"] = _exp(self.ci_upper)
        return jsonify(d)


@dataclass(frozen=True)
class RandomEffectsResult:
    """A normal-normal random-effects estimate on the log scale.

    Attributes
    ----------
    method : str
        Estimator of tau^2 (one of :data:`RE_METHODS`).
    k : int
        Number of trials.
    estimate, se : float
        Pooled mean ``mu`` and its standard error (the Hartung-Knapp standard error when
        ``hartung_knapp`` is true).
    ci_lower, ci_upper : float
        Interval for ``mu`` at ``level`` (normal quantile, or ``t_{k-1}`` with Hartung-Knapp).
    level : float
        Confidence level of the intervals.
    statistic, pval : float
        z (or t) statistic for ``mu = 0`` and its two-sided p-value.
    dist : str
        ``"z"`` or ``"t"``: reference distribution of ``statistic`` and ``ci_*``.
    df : float or None
        Degrees of freedom of the t distribution (``k - 1``); ``None`` for z.
    hartung_knapp : bool
        Whether Hartung-Knapp(-Sidik-Jonkman) inference was used (metafor's ``test="knha"``
        without the ad hoc truncation: the HK variance may be smaller than the standard one).
    tau2, tau : float
        Between-trial variance and standard deviation.
    q, q_df, q_pval : float
        Cochran's Q (common-effect weights), its degrees of freedom and p-value.
    i2 : float
        ``100 * tau2 / (tau2 + s2)`` with ``s2`` the typical within-trial variance
        (metafor's definition; equals ``max(0, (Q - df) / Q) * 100`` for DL).
    h2 : float
        ``(tau2 + s2) / s2``.
    pi_lower, pi_upper : float
        Prediction interval for the true effect of a new trial.
    prediction : str
        Which prediction interval: ``"metafor"`` (``mu -+ crit * sqrt(se^2 + tau2)``, crit a
        normal quantile, or ``t_{k-1}`` with Hartung-Knapp) or ``"hts"``
        (Higgins-Thompson-Spiegelhalter, ``t_{k-2}``; undefined for ``k = 2``).
    """

    method: str
    k: int
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    level: float
    statistic: float
    pval: float
    dist: str
    df: float | None
    hartung_knapp: bool
    tau2: float
    tau: float
    q: float
    q_df: int
    q_pval: float
    i2: float
    h2: float
    pi_lower: float
    pi_upper: float
    prediction: str

    @property
    def odds_ratio(self) -> float:
        """``exp(estimate)``."""
        return _exp(self.estimate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: the fields plus exp-scale values.

        Adds ``or``, ``lower``, ``upper``, ``or_pi_lower`` and ``or_pi_upper``.
        Non-finite values (for example the HTS interval with ``k = 2``) become ``None``.
        """
        d = asdict(self)
        d["or"] = _exp(self.estimate)
        d["lower"] = _exp(self.ci_lower)
        d["upper"] = _exp(self.ci_upper)
        d["or_pi_lower"] = _exp(self.pi_lower)
        d["or_pi_upper"] = _exp(self.pi_upper)
        return jsonify(d)


# --------------------------------------------------------------------------- common effect


def _wald(
    method: str,
    k: int,
    estimate: float,
    se: float,
    level: float,
    q: float | None = None,
    q_df: int | None = None,
) -> CommonEffectResult:
    crit = z_crit(level)
    zval = estimate / se
    q_pval = None
    if q is not None and q_df is not None:
        q_pval = float(special.chdtrc(q_df, q)) if q_df > 0 else math.nan
    return CommonEffectResult(
        method=method,
        k=k,
        estimate=float(estimate),
        se=float(se),
        ci_lower=float(estimate - crit * se),
        ci_upper=float(estimate + crit * se),
        level=level,
        zval=float(zval),
        pval=float(2 * special.ndtr(-abs(zval))),
        q=None if q is None else float(q),
        q_df=q_df,
        q_pval=q_pval,
    )


def mantel_haenszel(
    events_t: ArrayLike,
    n_t: ArrayLike,
    events_c: ArrayLike,
    n_c: ArrayLike,
    level: float = 0.95,
) -> CommonEffectResult:
    """Mantel-Haenszel common odds ratio with the Robins-Breslow-Greenland variance.

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like
        Events and totals per trial in the treatment and control arms.
    level : float
        Confidence level of the Wald interval on the log scale.

    Returns
    -------
    CommonEffectResult
        ``estimate`` is ``log(sum(a d / n) / sum(b c / n))``. No continuity correction is
        used (as metafor's ``rma.mh``): trials with a zero cell contribute as they are, and
        double-zero trials (no events, or only events, in both arms) contribute nothing to
        either the estimate or its variance. ``q`` is ``None``. ``k`` counts all trials.

    Raises
    ------
    ValueError
        On invalid counts, or when the pooled odds ratio is 0 or infinite (no trial has
        ``a d > 0``, or none has ``b c > 0``).
    """
    level = check_level(level)
    a, b, c, d = _check_counts(events_t, n_t, events_c, n_c)
    n = a + b + c + d
    r = a * d / n
    s = b * c / n
    p = (a + d) / n
    q = (b + c) / n
    r_sum, s_sum = r.sum(), s.sum()
    if r_sum <= 0 or s_sum <= 0:
        raise ValueError(
            "Mantel-Haenszel odds ratio is 0 or infinite: "
            "no trial has both a*d > 0 and no trial has b*c > 0 respectively"
        )
    estimate = math.log(r_sum / s_sum)
    var = (
        (p * r).sum() / (2 * r_sum**2)
        + (p * s + q * r).sum() / (2 * r_sum * s_sum)
        + (q * s).sum() / (2 * s_sum**2)
    )
    return _wald("MH", a.size, estimate, math.sqrt(var), level)


def peto(
    events_t: ArrayLike,
    n_t: ArrayLike,
    events_c: ArrayLike,
    n_c: ArrayLike,
    level: float = 0.95,
) -> CommonEffectResult:
    """Peto's one-step odds ratio (parameters as :func:`mantel_haenszel`).

    Returns
    -------
    CommonEffectResult
        ``estimate = sum(O - E) / sum(V)`` and ``se = 1 / sqrt(sum(V))`` with ``O`` the
        treatment-arm events, ``E = n_t m / n`` and ``V = n_t n_c m (n - m) / (n^2 (n - 1))``
        (``m`` the total events). No continuity correction is needed; trials with ``V = 0``
        (double-zero) contribute nothing. ``q`` is Peto's homogeneity statistic
        ``sum((O - E)^2 / V) - (sum(O - E))^2 / sum(V)`` on ``k_informative - 1`` df.

    Raises
    ------
    ValueError
        On invalid counts, or when no trial carries information (all ``V = 0``).
    """
    level = check_level(level)
    a, b, c, d = _check_counts(events_t, n_t, events_c, n_c)
    n1, n2 = a + b, c + d
    n = n1 + n2
    m = a + c
    expected = n1 * m / n
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(n > 1, n1 * n2 * m * (n - m) / (n**2 * (n - 1)), 0.0)
    informative = var > 0
    v_sum = var.sum()
    if v_sum <= 0:
        raise ValueError("Peto odds ratio undefined: no trial has both events and non-events")
    oe = a - expected
    estimate = oe.sum() / v_sum
    q = float((oe[informative] ** 2 / var[informative]).sum() - oe.sum() ** 2 / v_sum)
    return _wald(
        "Peto",
        a.size,
        estimate,
        1 / math.sqrt(v_sum),
        level,
        max(q, 0.0),
        int(informative.sum()) - 1,
    )


def inverse_variance(y: ArrayLike, se: ArrayLike, level: float = 0.95) -> CommonEffectResult:
    """Common-effect (fixed-effect) inverse-variance pooled estimate.

    Parameters
    ----------
    y, se : array_like
        Per-trial estimates (e.g. log odds ratios) and their standard errors.
    level : float
        Confidence level of the Wald interval.

    Returns
    -------
    CommonEffectResult
        With Cochran's Q on ``k - 1`` df (``q_pval`` is ``None`` when ``k = 1``).
    """
    level = check_level(level)
    y_arr, se_arr = check_effects(y, se)
    w = 1 / se_arr**2
    mu = float((w * y_arr).sum() / w.sum())
    q = float((w * (y_arr - mu) ** 2).sum())
    return _wald("IV", y_arr.size, mu, 1 / math.sqrt(w.sum()), level, q, y_arr.size - 1)


# --------------------------------------------------------------------------- tau^2 estimators


def _weighted_mean(y: FloatArray, v: FloatArray, tau2: float) -> tuple[FloatArray, float]:
    w = 1 / (v + tau2)
    return w, float((w * y).sum() / w.sum())


def _tau2_dl(y: FloatArray, v: FloatArray) -> float:
    w, mu = _weighted_mean(y, v, 0.0)
    q = float((w * (y - mu) ** 2).sum())
    c = w.sum() - (w**2).sum() / w.sum()
    return max(0.0, (q - (y.size - 1)) / c)


def _generalised_q(y: FloatArray, v: FloatArray, tau2: float) -> float:
    w, mu = _weighted_mean(y, v, tau2)
    return float((w * (y - mu) ** 2).sum())


def _tau2_pm(y: FloatArray, v: FloatArray) -> float:
    df = y.size - 1
    if _generalised_q(y, v, 0.0) <= df:
        return 0.0
    # Q(t) <= sum((y - mean(y))^2) / t, so Q(upper) <= df at this bracket.
    upper = float(((y - y.mean()) ** 2).sum() / df)
    return float(
        optimize.brentq(
            lambda t: _generalised_q(y, v, t) - df, 0.0, upper, xtol=TAU2_TOL, rtol=1e-15
        )
    )


def restricted_loglik(y: ArrayLike, se: ArrayLike, tau2: float) -> float:
    """Restricted (REML) log-likelihood of the normal-normal model, up to a constant.

    Parameters
    ----------
    y, se : array_like
        Per-trial estimates and standard errors.
    tau2 : float
        Between-trial variance (>= 0).

    Returns
    -------
    float
        ``-0.5 * (sum(log(v + tau2)) + log(sum(w)) + sum(w (y - mu)^2))`` with
        ``w = 1 / (v + tau2)`` and ``mu`` the weighted mean.
    """
    y_arr, se_arr = check_effects(y, se)
    return -0.5 * float(_negll(y_arr, se_arr**2, tau2, "REML"))


def _negll(y: FloatArray, v: FloatArray, tau2: ArrayLike, method: str) -> NDArray[np.float64]:
    """-2 x (restricted) log-likelihood up to a constant, vectorised over ``tau2``."""
    t = np.asarray(tau2, dtype=float)[..., np.newaxis]
    w = 1 / (v + t)
    sw = w.sum(axis=-1)
    mu = (w * y).sum(axis=-1) / sw
    out = np.log(v + t).sum(axis=-1) + (w * (y - mu[..., np.newaxis]) ** 2).sum(axis=-1)
    if method == "REML":
        out = out + np.log(sw)
    return out


def _tau2_scoring(y: FloatArray, v: FloatArray, method: str) -> float | None:
    """REML or ML tau^2 by Fisher scoring truncated at 0 (metafor's ``rma.uni`` algorithm).

    Starts from the DL estimate; returns ``None`` if it does not converge.
    """
    tau2 = _tau2_dl(y, v)
    for _ in range(MAX_ITER):
        w, mu = _weighted_mean(y, v, tau2)
        r = y - mu
        sw, sw2 = w.sum(), (w**2).sum()
        if method == "REML":
            tr_p = sw - sw2 / sw
            tr_pp = sw2 - 2 * (w**3).sum() / sw + (sw2 / sw) ** 2
            step = ((w**2 * r**2).sum() - tr_p) / tr_pp
        else:  # ML
            step = ((w**2 * r**2).sum() - sw) / sw2
        new = max(0.0, tau2 + step)
        if abs(new - tau2) <= TAU2_TOL * max(1.0, tau2):
            return new
        tau2 = new
    return None


def _tau2_grid(y: FloatArray, v: FloatArray, method: str) -> float:
    """Global maximiser of the (restricted) likelihood over ``tau2 >= 0``.

    A log-spaced grid over ``[0, upper]`` locates the best region, Brent's method polishes
    it. ``upper = 10 * (range(y)^2 + max(v))`` lies beyond every maximiser: past it the
    likelihood decreases in ``tau2``.
    """
    scale = float(np.ptp(y) ** 2 + v.max())
    grid = np.concatenate([[0.0], np.geomspace(1e-9 * scale, 10 * scale, 400)])
    vals = _negll(y, v, grid, method)
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(
        lambda t: float(_negll(y, v, t, method)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": TAU2_TOL},
    )
    best = float(res.x)
    return best if float(_negll(y, v, best, method)) < vals[i] else float(grid[i])


def _tau2_likelihood(y: FloatArray, v: FloatArray, method: str) -> float:
    """REML or ML tau^2: the global maximiser of the (restricted) likelihood on tau2 >= 0.

    Fisher scoring (as metafor) gives the answer in almost every case; because the
    likelihood can be multimodal, its fixed point is compared with a grid search and the
    better of the two is returned.
    """
    candidates = [_tau2_grid(y, v, method)]
    scored = _tau2_scoring(y, v, method)
    if scored is not None:
        candidates.insert(0, scored)
    vals = [float(_negll(y, v, t, method)) for t in candidates]
    # Prefer the Fisher-scoring value unless the grid finds a clearly higher likelihood.
    return candidates[0] if vals[0] <= min(vals) + 1e-10 else candidates[int(np.argmin(vals))]


def _estimate_tau2(y: FloatArray, v: FloatArray, method: str) -> float:
    if method == "DL":
        return _tau2_dl(y, v)
    if method == "PM":
        return _tau2_pm(y, v)
    return _tau2_likelihood(y, v, method)


# --------------------------------------------------------------------------- random effects


def _heterogeneity(y: FloatArray, v: FloatArray) -> tuple[float, float]:
    """Cochran's Q (common-effect weights) and the typical within-trial variance of I^2.

    ``s2 = (k - 1) sum(w) / (sum(w)^2 - sum(w^2))`` (Higgins & Thompson 2002), as metafor.
    """
    w, mu = _weighted_mean(y, v, 0.0)
    sw = w.sum()
    q = float((w * (y - mu) ** 2).sum())
    return q, (y.size - 1) * sw / (sw**2 - (w**2).sum())


def _pooled(
    y: FloatArray, v: FloatArray, tau2: float, level: float, hartung_knapp: bool
) -> tuple[float, float, float | None, float]:
    """Pooled mean given tau^2, its SE, the t df (None: normal) and the interval's quantile."""
    w, mu = _weighted_mean(y, v, tau2)
    if not hartung_knapp:
        return mu, 1 / math.sqrt(w.sum()), None, z_crit(level)
    q_df = y.size - 1
    se_mu = math.sqrt(float((w * (y - mu) ** 2).sum()) / (q_df * w.sum()))
    return mu, se_mu, float(q_df), _t_crit(level, q_df)


def random_effects(
    y: ArrayLike,
    se: ArrayLike,
    method: str = "REML",
    level: float = 0.95,
    hartung_knapp: bool = False,
    prediction: Literal["metafor", "hts"] = "metafor",
) -> RandomEffectsResult:
    """Normal-normal random-effects meta-analysis.

    Parameters
    ----------
    y, se : array_like
        Per-trial estimates (e.g. log odds ratios) and their standard errors.
    method : {"REML", "DL", "PM", "ML"}
        Estimator of tau^2: restricted maximum likelihood (Fisher scoring truncated at 0, as
        metafor's ``rma(method="REML")``, iterated to :data:`TAU2_TOL`, and checked against a
        grid search: where the likelihood is multimodal the global maximum on tau2 >= 0 is
        returned, which metafor's single Fisher-scoring run may miss), DerSimonian-Laird
        (truncated at 0 when ``Q < k - 1``), Paule-Mandel (root of the generalised
        ``Q(tau2) = k - 1``; 0 when ``Q(0) <= k - 1``) or maximum likelihood (as REML).
    level : float
        Level of the confidence and prediction intervals.
    hartung_knapp : bool
        Use the Hartung-Knapp(-Sidik-Jonkman) variance
        ``sum(w (y - mu)^2) / ((k - 1) sum(w))`` and ``t_{k-1}`` quantiles. As metafor's
        default, the HK variance is not truncated at the standard variance.
    prediction : {"metafor", "hts"}
        Prediction interval for a new trial's true effect: ``"metafor"`` as metafor's
        ``predict``, ``mu -+ crit * sqrt(se^2 + tau2)`` with ``crit`` the normal quantile
        (``t_{k-1}`` with Hartung-Knapp); ``"hts"`` uses ``t_{k-2}`` instead (Higgins,
        Thompson & Spiegelhalter 2009), with ``se`` the standard error in use.

    Returns
    -------
    RandomEffectsResult

    Raises
    ------
    ValueError
        For an unknown ``method`` or ``prediction`` (the message lists the valid names), fewer
        than two trials, or invalid inputs.
    """
    if method not in RE_METHODS:
        raise ValueError(f"Unknown method {method!r}. Valid methods: {list(RE_METHODS)}")
    if prediction not in PREDICTION_METHODS:
        raise ValueError(
            f"Unknown prediction {prediction!r}. Valid choices: {list(PREDICTION_METHODS)}"
        )
    level = check_level(level)
    y_arr, se_arr = check_effects(y, se)
    k = y_arr.size
    if k < 2:
        raise ValueError("random-effects meta-analysis needs at least 2 trials")
    v = se_arr**2
    q, s2 = _heterogeneity(y_arr, v)
    q_df = k - 1
    tau2 = _estimate_tau2(y_arr, v, method)
    mu, se_mu, df, crit = _pooled(y_arr, v, tau2, level, hartung_knapp)
    stat = mu / se_mu if se_mu > 0 else math.copysign(math.inf, mu) if mu != 0 else math.nan
    if df is None:
        pval = float(2 * special.ndtr(-abs(stat)))
    else:
        pval = float(2 * special.stdtr(df, -abs(stat)))
    pi_crit = crit if prediction == "metafor" else _t_crit(level, k - 2)
    pi_half = pi_crit * math.sqrt(se_mu**2 + tau2)
    return RandomEffectsResult(
        method=method,
        k=k,
        estimate=mu,
        se=se_mu,
        ci_lower=mu - crit * se_mu,
        ci_upper=mu + crit * se_mu,
        level=level,
        statistic=float(stat),
        pval=pval,
        dist="z" if df is None else "t",
        df=df,
        hartung_knapp=hartung_knapp,
        tau2=tau2,
        tau=math.sqrt(tau2),
        q=q,
        q_df=q_df,
        q_pval=float(special.chdtrc(q_df, q)),
        i2=100 * tau2 / (tau2 + s2),
        h2=(tau2 + s2) / s2,
        pi_lower=mu - pi_half,
        pi_upper=mu + pi_half,
        prediction=prediction,
    )


# --------------------------------------------------------------------------- summary


def classical_summary(
    events_t: ArrayLike | None = None,
    n_t: ArrayLike | None = None,
    events_c: ArrayLike | None = None,
    n_c: ArrayLike | None = None,
    y: ArrayLike | None = None,
    se: ArrayLike | None = None,
    level: float = 0.95,
) -> dict[str, dict[str, Any] | None]:
    """All classical estimates at once, as JSON-friendly dicts.

    Give arm-level counts (``events_t, n_t, events_c, n_c``), contrast-level ``y, se``, or
    both. Without ``y, se`` they are the log odds ratios of
    :func:`trialsynth.core.effects.log_odds_ratios` (0.5 added to every cell of a trial with a
    zero cell).

    Parameters
    ----------
    events_t, n_t, events_c, n_c : array_like, optional
        Arm-level counts; all four or none.
    y, se : array_like, optional
        Per-trial log odds ratios and standard errors; both or neither.
    level : float
        Level of every interval.

    Returns
    -------
    dict
        Keys ``"mh"``, ``"peto"`` (``None`` without counts), ``"iv"``, ``"dl"``, ``"reml"``,
        ``"pm"`` and ``"dl_hk"`` (DL with Hartung-Knapp), each the ``to_dict()`` of the
        corresponding result. With a single trial the random-effects entries (``dl``,
        ``reml``, ``pm``, ``dl_hk``) are ``None`` instead of raising.

    Raises
    ------
    ValueError
        When neither counts nor ``y, se`` are given, only some of them are, or lengths differ.
    """
    counts = (events_t, n_t, events_c, n_c)
    have_counts = all(x is not None for x in counts)
    if any(x is not None for x in counts) and not have_counts:
        raise ValueError("give all four of events_t, n_t, events_c, n_c, or none")
    if (y is None) != (se is None):
        raise ValueError("give both y and se, or neither")
    if not have_counts and y is None:
        raise ValueError("give arm-level counts, or y and se")

    out: dict[str, dict[str, Any] | None] = {"mh": None, "peto": None}
    if have_counts:
        et, nt, ec, nc = counts
        assert et is not None and nt is not None and ec is not None and nc is not None
        out["mh"] = mantel_haenszel(et, nt, ec, nc, level=level).to_dict()
        out["peto"] = peto(et, nt, ec, nc, level=level).to_dict()
        if y is None:
            lor = log_odds_ratios(et, nt, ec, nc)
            y, se = lor.y, lor.se
        elif np.size(y) != np.size(et):
            raise ValueError("y/se and the counts differ in length")
    assert y is not None and se is not None
    y_arr, se_arr = check_effects(y, se)
    out["iv"] = inverse_variance(y_arr, se_arr, level=level).to_dict()
    k = y_arr.size
    for key, meth, hk in (
        ("dl", "DL", False),
        ("reml", "REML", False),
        ("pm", "PM", False),
        ("dl_hk", "DL", True),
    ):
        out[key] = (
            None
            if k < 2
            else random_effects(y_arr, se_arr, method=meth, level=level, hartung_knapp=hk).to_dict()
        )
    return out
