"""Benchmarks of ``trialsynth design`` (assurance) and ``trialsynth compare`` (LOO refits).

Run: ``.venv/bin/python scripts/bench_compare.py``; prints the markdown of the
"Future trial and LOO comparison" section of BENCHMARKS.md. Every ratio is against a baseline
measured in the same run:

1. assurance: the vectorised, nested simulation of ``analysis.assurance.simulate`` against
   a plain Python loop over simulated trials (per simulated trial and size).
2. LOO refits: a fold refitted with the k-1-trial model compiled once and reused
   (``fit(..., reusable=True)``, what ``compare`` does) against compiling it for the fold.
3. PSIS-LOO against exact refits for every trial of ``ivig_rm`` (common-effect model): why
   ``compare`` refits every trial of a binomial-likelihood model by default.
"""

from __future__ import annotations

import math
import platform
import time

import numpy as np
from scipy.special import expit

from trialsynth.analysis.assurance import Criterion, observed_log_or, simulate
from trialsynth.analysis.loo import loo_trials
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.engines.mcmc import clear_cache
from trialsynth.models.spec import ModelSpec
from trialsynth.results.fitting import fit

SETTINGS = SamplerSettings(seed=7)  # the defaults: 4 chains x 2000 draws, 1000 tuning


def bench_assurance() -> list[str]:
    res = fit(load("ivig_rm_secondary"), settings=SETTINGS, reusable=True)
    theta = res.draws("theta_new")
    logit_c = res.draws("alpha")[..., 0]
    sizes = list(range(100, 3001, 100))
    crit = Criterion()
    t0 = time.perf_counter()
    _, sims = simulate(theta, logit_c, sizes, crit, sims=40_000, seed=1)
    vec = time.perf_counter() - t0
    per_vec = vec / (sims * len(sizes))

    # baseline: one simulated trial at a time (same model, one size)
    rng = np.random.default_rng(1)
    flat_t, flat_c = theta.ravel(), logit_c.ravel()
    n_loop = 4000
    t0 = time.perf_counter()
    hits = 0
    for s in range(n_loop):
        j = s % flat_t.size
        xt = rng.binomial(1000, expit(flat_c[j] + flat_t[j]))
        xc = rng.binomial(1000, expit(flat_c[j]))
        lor, se = observed_log_or(np.array(xt), np.array(xc), 1000)
        hits += bool(crit.success(lor, se))
    loop = time.perf_counter() - t0
    per_loop = loop / n_loop
    return [
        "| assurance, per simulated trial and size | "
        f"{per_loop * 1e6:.1f} µs (Python loop) | {per_vec * 1e6:.3f} µs | "
        f"{per_loop / per_vec:.0f}x |",
        f"| assurance curve: {len(sizes)} sizes x {sims} trials (ivig_rm_secondary) | "
        f"{per_loop * sims * len(sizes):.0f} s (extrapolated) | {vec:.2f} s | |",
    ]


def bench_refits() -> list[str]:
    data = load("ivig_rm")
    spec = ModelSpec()
    folds = [data.drop(s) for s in data.study[:3]]
    clear_cache()
    # baseline: compile the fold's model for the fold (frozen: the faster compile)
    t0 = time.perf_counter()
    fit(folds[0], spec=spec, settings=SETTINGS, reusable=False)
    fresh = time.perf_counter() - t0
    # compare's way: compile the k-1 structure once, then reuse for every fold
    fit(folds[0], spec=spec, settings=SETTINGS, reusable=True)
    t0 = time.perf_counter()
    for f in folds[1:]:
        fit(f, spec=spec, settings=SETTINGS, reusable=True)
    reuse = (time.perf_counter() - t0) / (len(folds) - 1)
    k = data.k
    return [
        f"| one LOO refit (ivig_rm, binomial-normal) | {fresh:.2f} s (compile for the fold) | "
        f"{reuse:.2f} s (compiled model reused) | {fresh / reuse:.0f}x |",
        f"| all {k} refits of one model | {k * fresh:.0f} s | "
        f"{fresh + (k - 1) * reuse:.0f} s (one compile + {k - 1} reuses) | "
        f"{k * fresh / (fresh + (k - 1) * reuse):.1f}x |",
    ]


def psis_vs_exact() -> list[str]:
    data = load("ivig_rm")
    spec = ModelSpec.from_options("common-effect", data_kind="arm")
    res = fit(data, spec=spec, settings=SETTINGS, reusable=True)
    psis = loo_trials(res, data, k_threshold=math.inf)  # PSIS only
    exact = loo_trials(res, data, k_threshold=-math.inf)  # every trial refitted
    rows = [
        "| trial | PSIS k | PSIS elpd | exact elpd (refit) | PSIS - exact |",
        "|---|---|---|---|---|",
    ]
    for j, s in enumerate(data.study):
        p, e = float(psis.elpd.elpd_i.values[j]), float(exact.elpd.elpd_i.values[j])
        rows.append(f"| {s} | {psis.psis_k[j]:.2f} | {p:.2f} | {e:.2f} | {p - e:+.2f} |")
    rows.append(
        f"| total | | {float(psis.elpd.elpd):.2f} | {float(exact.elpd.elpd):.2f} | "
        f"{float(psis.elpd.elpd - exact.elpd.elpd):+.2f} |"
    )
    return rows


def main() -> None:
    print(f"machine: {platform.machine()}, {platform.python_version()}; one run, wall clock\n")
    print("| task | baseline | trialsynth | speed-up |")
    print("|---|---|---|---|")
    for line in bench_assurance() + bench_refits():
        print(line)
    print()
    print("PSIS-LOO vs exact leave-one-trial-out, ivig_rm, common-effect, 4 x 2000 draws:\n")
    for line in psis_vs_exact():
        print(line)


if __name__ == "__main__":
    main()
