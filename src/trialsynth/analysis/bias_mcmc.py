"""MCMC cross-check of the bias ensemble: each component in PyMC, evidence by bridge sampling.

The PyMC model is an independent implementation of a component (PyTensor likelihood, PyMC's
own prior densities from :func:`trialsynth.priors.prior.pymc_variable`, its own transforms);
nutpie samples it and :func:`trialsynth.analysis.bridge.bridge_sampling` estimates the log
evidence from the draws on PyMC's unconstrained axis with PyMC's compiled log density
(Jacobians included). It shares no code with the quadrature path except the weight
function's cut points and bins. PyMC is imported inside the functions (a heavy optional
dependency of this analysis).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from trialsynth.analysis.bias_models import BiasPriors, Component, FloatArray
from trialsynth.analysis.bridge import bridge_sampling
from trialsynth.priors.prior import pymc_variable


def build_pymc(comp: Component, y: FloatArray, se: FloatArray, priors: BiasPriors) -> Any:
    """PyMC model of one component (random effects marginalised, as in RoBMA)."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        mu = pymc_variable(priors.mu, "mu") if comp.effect else pt.constant(0.0)
        tau = pymc_variable(priors.tau, "tau") if comp.heterogeneity else pt.constant(0.0)
        mean = mu + pt.zeros(len(y))
        if comp.bias == "pet":
            mean = mean + pymc_variable(priors.pet, "b") * se
        elif comp.bias == "peese":
            mean = mean + pymc_variable(priors.peese, "b") * se**2
        sd = pt.sqrt(se**2 + tau**2)
        ll = pm.logp(pm.Normal.dist(mean, sd), y).sum()
        wf = comp.weightfunction
        if wf is not None:
            ratios = [pm.Beta(f"r{k + 1}", a, b) for k, (a, b) in enumerate(wf.ratio_params())]
            omegas = [pt.constant(1.0)]
            for r in ratios:
                omegas.append(omegas[-1] * r)
            omega = pt.stack(omegas)
            crit = wf.crit(se)  # (k, J-1), decreasing

            def ncdf(x: Any) -> Any:
                return 0.5 * pt.erfc(-x / math.sqrt(2.0))

            q = ncdf((mean[:, None] - crit) / sd[:, None])
            if wf.side == "two-sided":
                q = q + ncdf((-crit - mean[:, None]) / sd[:, None])
            probs = pt.concatenate([q[:, :1], q[:, 1:] - q[:, :-1], 1.0 - q[:, -1:]], axis=1)
            denom = (probs * omega[None, :]).sum(axis=1)
            ll = ll + pt.log(omega[wf.bin_index(y, se)]).sum() - pt.log(denom).sum()
        pm.Potential("loglik", ll)
    return model


@dataclass(frozen=True)
class McmcEvidence:
    """Bridge-sampling evidence of one component and what the MCMC run cost."""

    log_ml: float
    se: float
    wall_s: float
    n_draws: int
    divergences: int


def _unconstrained(model: Any, posterior: Any) -> tuple[list[str], FloatArray]:
    """The draws on PyMC's unconstrained (value-variable) axis, one column per scalar."""
    import pytensor
    import pytensor.tensor as pt

    names, cols = [], []
    for rv, value in zip(model.free_RVs, model.value_vars, strict=True):
        x = np.asarray(posterior[rv.name].values, dtype=float).reshape(-1)
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            v = pt.dvector("v")
            x = pytensor.function([v], transform.forward(v, *rv.owner.inputs))(x)
        names.append(value.name)
        cols.append(np.asarray(x, dtype=float))
    return names, np.stack(cols, axis=1)


def mcmc_log_evidence(
    comp: Component,
    y: FloatArray,
    se: FloatArray,
    priors: BiasPriors,
    *,
    draws: int = 2000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 1,
) -> McmcEvidence:
    """Sample a component with nutpie (via ``pm.sample``) and bridge-sample its evidence."""
    import pymc as pm

    t0 = time.perf_counter()
    model = build_pymc(comp, np.asarray(y, float), np.asarray(se, float), priors)
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            progressbar=False,
            target_accept=0.95,
        )
    names, x = _unconstrained(model, idata["posterior"])
    logp = model.compile_logp(jacobian=True)

    def log_post(t: FloatArray) -> FloatArray:
        return np.array([logp(dict(zip(names, row, strict=True))) for row in np.atleast_2d(t)])

    res = bridge_sampling(x, log_post, rng=seed)
    div = int(idata["sample_stats"]["diverging"].sum())
    return McmcEvidence(res.log_ml, res.se, time.perf_counter() - t0, x.shape[0], div)
