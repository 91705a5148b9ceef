"""The bridge sampler against closed forms, and the quadrature against MCMC + bridge sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from trialsynth.analysis.bias import log_evidence
from trialsynth.analysis.bias_models import Component, WeightFunction, cochrane_priors
from trialsynth.analysis.bridge import bridge_sampling

Y = np.array([-0.3112, 0.9933, 1.1391, -0.5729, -0.098, 0.0, 0.3159, 0.1911])
SE = np.array([0.524, 0.7207, 0.5338, 0.6798, 0.7586, 0.5281, 0.619, 0.4428])
#: Bridge sampling is compared in units of its own approximate SE (relative MSE of
#: Fruhwirth-Schnatter 2004): 4 of them, a false alarm about once in 16 000 if it is right.
Z = 4.0


def test_bridge_conjugate_normal_2d() -> None:
    # y ~ N(A theta, I), theta ~ N(0, I_2): p(y) = N(y; 0, I + A A'), posterior normal
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 2))
    y = rng.normal(size=6)
    truth = stats.multivariate_normal(np.zeros(6), np.eye(6) + a @ a.T).logpdf(y)
    cov = np.linalg.inv(np.eye(2) + a.T @ a)
    draws = rng.multivariate_normal(cov @ a.T @ y, cov, size=4000)

    def lp(t: np.ndarray) -> np.ndarray:
        return stats.norm.logpdf(y[None, :] - t @ a.T).sum(axis=1) + stats.norm.logpdf(t).sum(1)

    res = bridge_sampling(draws, lp, rng=2)
    assert abs(res.log_ml - truth) < Z * res.se + 1e-6


def test_bridge_skewed_posterior() -> None:
    # beta-binomial on the logit axis: p(y) = C(n, y) B(y + 1, n - y + 1)
    n, k = 20, 3
    truth = math.log(math.comb(n, k)) + math.lgamma(k + 1) + math.lgamma(n - k + 1)
    truth -= math.lgamma(n + 2)
    p = np.random.default_rng(3).beta(k + 1, n - k + 1, size=6000)
    x = np.log(p / (1 - p))[:, None]

    def lp(t: np.ndarray) -> np.ndarray:
        pr = 1 / (1 + np.exp(-t[:, 0]))
        return stats.binom.logpmf(k, n, pr) + np.log(pr) + np.log1p(-pr)

    res = bridge_sampling(x, lp, rng=4)
    assert abs(res.log_ml - truth) < Z * res.se
    assert res.se < 0.02


def test_bridge_needs_a_draw_matrix() -> None:
    with pytest.raises(ValueError, match="shape"):
        bridge_sampling(np.zeros(100), lambda t: t)


@pytest.mark.mcmc
@pytest.mark.slow
@pytest.mark.parametrize(
    "comp",
    [
        Component(True, True, "selection", WeightFunction("two-sided", (0.05,))),
        Component(True, True, "selection", WeightFunction("one-sided", (0.025, 0.05, 0.5))),
        Component(True, True, "pet"),
    ],
    ids=lambda c: c.bias_label,
)
def test_quadrature_matches_mcmc_bridge_sampling(comp: Component) -> None:
    from trialsynth.analysis.bias_mcmc import mcmc_log_evidence

    pri = cochrane_priors()
    ev = log_evidence(comp, Y, SE, pri)
    m = mcmc_log_evidence(comp, Y, SE, pri, draws=2000)
    # Z bridge SEs plus the quadrature's own error estimate
    assert abs(ev.log_ml - m.log_ml) < Z * m.se + ev.error, (ev.log_ml, m)
