"""Kernel density of draws: the density of a quantity a result knows only by its draws.

Results with exact marginals (the exact engine) use those instead
(:meth:`trialsynth.results.base.FitResult.density`). numpy/scipy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def kde(x: ArrayLike, grid: ArrayLike, *, lower: float | None = None) -> FloatArray:
    """Gaussian kernel density of draws ``x`` on ``grid`` (Scott's bandwidth).

    With ``lower``, the draws are reflected at that bound (a quantity such as tau that
    cannot go below it), so the density does not leak past it; it is 0 below ``lower``.
    """
    from scipy.stats import gaussian_kde

    x = np.asarray(x, float).ravel()
    grid = np.asarray(grid, float)
    if lower is None:
        return np.asarray(gaussian_kde(x)(grid), float)
    reflected = gaussian_kde(np.concatenate([x, 2 * lower - x]))
    return np.where(grid >= lower, 2 * reflected(grid), 0.0)
