"""Random-effects meta-regression by REML (metafor's ``rma(yi, vi, mods = ~ x)``).

Weighted least squares given tau^2, tau^2 by restricted maximum likelihood (Fisher scoring
with a grid-and-bounded-search fallback), Wald tests of the slopes. numpy/scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from trialsynth.core.frequentist import (
    MAX_ITER,
    TAU2_TOL,
    check_effects,
    check_level,
    jsonify,
    z_crit,
)

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class MetaRegressionResult:
    """A mixed-effects meta-regression ``y_i ~ N(x_i' b, v_i + tau2)`` (REML).

    Attributes
    ----------
    names : tuple of str
        ``"intercept"`` then the moderators, in the order of ``coef``.
    coef, se, ci_lower, ci_upper, zval, pval : tuple of float
        Coefficients on the scale of ``y`` (log odds ratio per unit of each moderator), their
        standard errors ``sqrt(diag((X' W X)^-1))`` with ``W = diag(1 / (v + tau2))``, Wald
        intervals at ``level`` and two-sided z-test p-values (metafor's default ``test="z"``).
    level : float
        Level of the intervals.
    k : int
        Number of trials.
    tau2, tau : float
        Residual between-trial variance (REML) and its square root.
    qe, qe_df, qe_pval : float
        Test of residual heterogeneity (common-effect weights), ``k - p`` degrees of freedom.
    qm, qm_df, qm_pval : float
        Omnibus Wald test of the moderators (all coefficients but the intercept).
    """

    names: tuple[str, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    ci_lower: tuple[float, ...]
    ci_upper: tuple[float, ...]
    zval: tuple[float, ...]
    pval: tuple[float, ...]
    level: float
    k: int
    tau2: float
    tau: float
    qe: float
    qe_df: int
    qe_pval: float
    qm: float
    qm_df: int
    qm_pval: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: one entry per coefficient plus the heterogeneity statistics."""
        coefs = {
            name: jsonify(
                {
                    "estimate": self.coef[j],
                    "se": self.se[j],
                    "ci_lower": self.ci_lower[j],
                    "ci_upper": self.ci_upper[j],
                    "zval": self.zval[j],
                    "pval": self.pval[j],
                }
            )
            for j, name in enumerate(self.names)
        }
        keys = ("level", "k", "tau2", "tau", "qe", "qe_df", "qe_pval", "qm", "qm_df", "qm_pval")
        rest = jsonify({key: getattr(self, key) for key in keys})
        return {"method": "REML", "coefficients": coefs, **rest}


def _gls(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float) -> tuple[FloatArray, FloatArray]:
    """Weighted least-squares coefficients and ``(X' W X)^-1`` at a given tau^2."""
    w = 1 / (v + tau2)
    xtwx_inv = np.linalg.inv(x.T @ (w[:, None] * x))
    return xtwx_inv @ (x.T @ (w * y)), xtwx_inv


def _mr_negll(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float) -> float:
    """-2 x restricted log-likelihood of the meta-regression, up to a constant."""
    b, xtwx_inv = _gls(y, v, x, tau2)
    r = y - x @ b
    _, logdet = np.linalg.slogdet(xtwx_inv)
    return float(np.log(v + tau2).sum() - logdet + (r**2 / (v + tau2)).sum())


def _mr_tau2_reml(y: FloatArray, v: FloatArray, x: FloatArray) -> float:
    """REML tau^2 of the meta-regression.

    Fisher scoring from 0, truncated at 0 (metafor's algorithm), checked against a grid
    search of the restricted likelihood; the higher restricted likelihood wins.
    """
    tau2 = 0.0
    scored: float | None = None
    for _ in range(MAX_ITER):
        w = 1 / (v + tau2)
        _, xtwx_inv = _gls(y, v, x, tau2)
        p = np.diag(w) - (w[:, None] * x) @ xtwx_inv @ (x.T * w)
        py = p @ y
        step = (float(py @ py) - float(np.trace(p))) / float(np.sum(p * p))
        new = max(0.0, tau2 + step)
        if abs(new - tau2) <= TAU2_TOL * max(1.0, tau2):
            scored = new
            break
        tau2 = new
    scale = float(np.ptp(y) ** 2 + v.max())
    grid = np.concatenate([[0.0], np.geomspace(1e-9 * scale, 10 * scale, 400)])
    vals = np.array([_mr_negll(y, v, x, t) for t in grid])
    i = int(np.argmin(vals))
    res = optimize.minimize_scalar(
        lambda t: _mr_negll(y, v, x, t),
        bounds=(grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]),
        method="bounded",
        options={"xatol": TAU2_TOL},
    )
    best = float(res.x) if _mr_negll(y, v, x, float(res.x)) < vals[i] else float(grid[i])
    if scored is not None and _mr_negll(y, v, x, scored) <= _mr_negll(y, v, x, best) + 1e-10:
        return scored
    return best


def meta_regression(
    y: ArrayLike,
    se: ArrayLike,
    moderators: ArrayLike,
    names: tuple[str, ...] | list[str] | None = None,
    level: float = 0.95,
) -> MetaRegressionResult:
    """Mixed-effects meta-regression with REML tau^2, as metafor's ``rma(yi, vi, mods = ~ x)``.

    Model: ``y_i ~ N(b0 + x_i' b, se_i^2 + tau2)``. tau^2 maximises the restricted
    likelihood (Fisher scoring from 0 truncated at 0, iterated to :data:`TAU2_TOL` and checked
    against a grid search); the coefficients are the weighted least-squares estimates at that
    tau^2 with standard errors from ``(X' W X)^-1`` and z-based Wald intervals.

    Parameters
    ----------
    y, se : array_like
        Per-trial estimates (e.g. log odds ratios) and standard errors.
    moderators : array_like
        ``(k,)`` or ``(k, p)`` moderator values, uncentred (an intercept is added).
    names : sequence of str, optional
        Moderator names (default ``x1, x2, ...``).
    level : float
        Level of the intervals.

    Returns
    -------
    MetaRegressionResult

    Raises
    ------
    ValueError
        Invalid inputs, fewer trials than coefficients + 1, or a moderator that is constant
        or collinear with the others.
    """
    level = check_level(level)
    y_arr, se_arr = check_effects(y, se)
    mods = np.asarray(moderators, dtype=float)
    if mods.ndim == 1:
        mods = mods[:, None]
    if mods.ndim != 2 or mods.shape[0] != y_arr.size:
        raise ValueError(
            f"moderators must have one row per trial ({y_arr.size}), got shape {mods.shape}"
        )
    if not np.all(np.isfinite(mods)):
        raise ValueError("moderators must be finite")
    p = mods.shape[1]
    labels = tuple(names) if names is not None else tuple(f"x{j + 1}" for j in range(p))
    if len(labels) != p:
        raise ValueError(f"{len(labels)} moderator name(s) for {p} moderator column(s)")
    k = y_arr.size
    x = np.column_stack([np.ones(k), mods])
    if k < p + 2:
        raise ValueError(f"meta-regression with {p} moderator(s) needs at least {p + 2} trials")
    if np.linalg.matrix_rank(x) < p + 1:
        raise ValueError("a moderator is constant or collinear with the others")
    v = se_arr**2
    tau2 = _mr_tau2_reml(y_arr, v, x)
    b, cov = _gls(y_arr, v, x, tau2)
    se_b = np.sqrt(np.diag(cov))
    crit = z_crit(level)
    z = b / se_b
    b0, _ = _gls(y_arr, v, x, 0.0)
    qe = float(((y_arr - x @ b0) ** 2 / v).sum())
    slopes = b[1:]
    qm = float(slopes @ np.linalg.solve(cov[1:, 1:], slopes))
    return MetaRegressionResult(
        names=("intercept", *labels),
        coef=tuple(float(c) for c in b),
        se=tuple(float(s) for s in se_b),
        ci_lower=tuple(float(c) for c in b - crit * se_b),
        ci_upper=tuple(float(c) for c in b + crit * se_b),
        zval=tuple(float(t) for t in z),
        pval=tuple(float(2 * special.ndtr(-abs(t))) for t in z),
        level=level,
        k=k,
        tau2=tau2,
        tau=math.sqrt(tau2),
        qe=qe,
        qe_df=k - p - 1,
        qe_pval=float(special.chdtrc(k - p - 1, qe)),
        qm=qm,
        qm_df=p,
        qm_pval=float(special.chdtrc(p, qm)),
    )
