"""Composite Gauss-Legendre panel rules and their error estimate, for the exact tau quadrature.

:class:`~trialsynth.core.exact.ExactPosterior` integrates over tau on an axis ``u`` cut
into panels. On every panel two rules are applied: rule A with :data:`GL_N` Gauss-Legendre
nodes, rule B with :data:`GL_N` nodes on each half. Their difference estimates the error of
rule A for every normalised functional watched (:func:`panel_errors`); the panels with the
largest errors are bisected until the sum is small enough.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

FloatArray = NDArray[np.float64]

#: Gauss-Legendre nodes per panel, the nodes and weights on [-1, 1].
GL_N = 8
GL_X, GL_W = np.polynomial.legendre.leggauss(GL_N)
#: Legendre polynomials at the nodes, ``P_l(x_j)`` (a panel's density as a Legendre series).
LEG_VANDER = np.polynomial.legendre.legvander(GL_X, GL_N - 1)
# cdf probes (mean + z sd) watched by the error control
_PROBE_Z = np.array([-2.0, 0.0, 2.0])


def two_rules(edges: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Nodes and weights of both rules on the u panels between ``edges``, and the midpoints.

    Rule A: ``GL_N`` Gauss-Legendre nodes per panel (first ``npan * GL_N`` entries); rule
    B: ``GL_N`` nodes on each half panel (lower halves, then upper halves).
    """
    lo, hi = edges[:-1], edges[1:]
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    ua = mid[:, None] + half[:, None] * GL_X
    wa = half[:, None] * GL_W
    qlo = np.concatenate([lo, mid])
    qh = np.concatenate([half, half]) * 0.5
    ub = (qlo + qh)[:, None] + qh[:, None] * GL_X
    wb = qh[:, None] * GL_W
    u_all = np.concatenate([ua.ravel(), ub.ravel()])
    w_all = np.concatenate([wa.ravel(), wb.ravel()])
    return u_all, w_all, mid


def _rule_sums(values: FloatArray, npan: int) -> tuple[FloatArray, FloatArray]:
    """Per-panel sums of weighted node ``values`` under rules A and B (:func:`two_rules`)."""
    n = GL_N
    na = npan * n
    a = values[:na].reshape(npan, n, -1).sum(axis=1)
    b_h = values[na:].reshape(2 * npan, n, -1).sum(axis=1)
    return a, b_h[:npan] + b_h[npan:]


def panel_errors(
    wd: FloatArray, tau: FloatArray, cm: FloatArray, cv: FloatArray, npan: int
) -> tuple[FloatArray, FloatArray, float, float]:
    """Estimated error per panel (rule A against rule B) of the normalised functionals.

    The functionals: the mass; the mean and second moment of tau and of each of the K
    normal mixtures (conditional means ``cm``, variances ``cv``); each mixture's cdf at its
    mean + {-2, 0, 2} sd. Errors are in posterior-sd units (moments) or probability.
    Returns the errors, rule A's per-panel moments (mass first), tau's mean and sd.
    """
    # moments: mass, tau, tau^2, E[X], E[X^2] for the K mixtures
    mom = np.column_stack([np.ones_like(tau), tau, tau * tau, cm, cm * cm + cv])
    ia, ib = _rule_sums(wd[:, None] * mom, npan)
    tot = ib.sum(axis=0)
    z = tot[0]
    if not (z > 0 and math.isfinite(z)):
        raise ValueError(
            "posterior normalising constant of tau is not finite and positive "
            f"(got {z!r} relative to the reference): improper or degenerate posterior"
        )
    ex = tot / z
    kk = cm.shape[1]
    mean_t, mean_x = ex[1], ex[3 : 3 + kk]
    sd_t = math.sqrt(max(ex[2] - mean_t**2, 0.0)) + 1e-300
    sd_x = np.sqrt(np.maximum(ex[3 + kk :] - mean_x**2, 0.0)) + 1e-300
    # cdf probes at mean + {-2, 0, 2} sd for each mixture
    xp = mean_x[None, :] + _PROBE_Z[:, None] * sd_x[None, :]  # (3, K)
    sdn = np.sqrt(cv)
    pr = special.ndtr((xp[None, :, :] - cm[:, None, :]) / sdn[:, None, :]).reshape(tau.size, -1)
    pa, pb = _rule_sums(wd[:, None] * pr, npan)
    ep = pb.sum(axis=0) / z
    # errors of normalised functionals, per panel
    d_mom = ia - ib
    d_pr = pa - pb
    d0 = d_mom[:, [0]]
    # errors in posterior-sd units; the floor 1e-6 |mean| keeps the target above
    # rounding for marginals far narrower than their location
    st_ = sd_t + 1e-6 * abs(mean_t)
    sx_ = sd_x + 1e-6 * np.abs(mean_x)
    scale = np.concatenate(
        [[st_, 2.0 * st_ * (st_ + abs(mean_t))], sx_, 2.0 * sx_ * (sx_ + np.abs(mean_x))]
    )
    e_mom = np.abs(d_mom[:, 1:] - ex[None, 1:] * d0) / (z * scale)
    e_pr = np.abs(d_pr - ep[None, :] * d0) / z
    err = np.maximum(np.abs(d0[:, 0]) / z, np.maximum(e_mom.max(axis=1), e_pr.max(axis=1)))
    return err, ia, float(mean_t), sd_t
