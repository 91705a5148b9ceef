"""Benchmark the exact (quadrature) posterior of the normal-normal model.

Times, as the median of several repeats (``time.perf_counter``):

* a full fit with every summary (``exact_posterior(...)`` then ``summary()``, which
  computes mean, sd, median, central and shortest 95% intervals of mu, tau, theta_new and
  every theta_i, plus ``P(mu > 0)`` and ``P(theta_new > 0)``) for k = 6, 20, 200 trials
  simulated with a fixed seed;
* a prior-sensitivity sweep: the same 6-trial data under 20 tau priors (half-normal,
  half-Cauchy and log-normal at several scales) with every summary of every fit.

Prints a markdown table. Usage::

    .venv/bin/python scripts/bench_exact.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import scipy
import scipy.stats as st

from trialsynth.core.exact import (
    DEFAULT_DELTA,
    DEFAULT_EPSILON,
    exact_posterior,
    exact_posterior_sweep,
)

SEED = 20240601
TAU_PRIOR = st.halfnorm(scale=0.5)


def simulate(k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Log odds ratios of k trials: mu = -0.5, tau = 0.3, standard errors 0.2 to 1."""
    se = rng.uniform(0.2, 1.0, k)
    theta = rng.normal(-0.5, 0.3, k)
    return theta + se * rng.standard_normal(k), se


def sweep_priors() -> dict[str, object]:
    priors: dict[str, object] = {}
    for s in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0):
        priors[f"halfnorm({s})"] = st.halfnorm(scale=s)
    for s in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0):
        priors[f"halfcauchy({s})"] = st.halfcauchy(scale=s)
    for s in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6):
        priors[f"lognorm(1, {s})"] = st.lognorm(s=1.0, scale=s)
    assert len(priors) == 20
    return priors


def full_fit(y: np.ndarray, se: np.ndarray) -> int:
    post = exact_posterior(y, se, TAU_PRIOR)
    post.summary()
    post.prob_mu_gt(0.0)
    post.prob_theta_new_gt(0.0)
    return post.n_nodes


def full_sweep(y: np.ndarray, se: np.ndarray, priors: dict[str, object]) -> int:
    fits = exact_posterior_sweep(y, se, priors)  # type: ignore[arg-type]
    for post in fits.values():
        post.summary()
        post.prob_mu_gt(0.0)
        post.prob_theta_new_gt(0.0)
    return sum(p.n_nodes for p in fits.values())


def timed(fn: Callable[[], int], repeats: int) -> tuple[float, float, int]:
    nodes = fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), nodes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(SEED)
    data = {k: simulate(k, rng) for k in (6, 20, 200)}
    priors = sweep_priors()
    rows = []
    for k, (y, se) in data.items():
        med, best, nodes = timed(lambda y=y, se=se: full_fit(y, se), args.repeats)
        rows.append((f"full fit + every summary, k = {k}", med, best, nodes))
    y6, se6 = data[6]
    med, best, nodes = timed(lambda: full_sweep(y6, se6, priors), args.repeats)
    rows.append(("sweep: 20 tau priors, k = 6, every summary", med, best, nodes))
    base = mcmc_baseline(*data[6], repeats=3)
    print(
        f"exact posterior benchmark (delta={DEFAULT_DELTA:g}, epsilon={DEFAULT_EPSILON:g}; "
        f"median of {args.repeats} repeats; Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__})\n"
    )
    print("| task | median (ms) | best (ms) | tau nodes | vs MCMC baseline |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, med, best, nodes in rows:
        print(f"| {name} | {1e3 * med:.2f} | {1e3 * best:.2f} | {nodes} | {med / base:.4f}x |")
    print(
        f"| baseline: MCMC fit of the same k = 6 model (nutpie, 4 x 2000 draws, compiled "
        f"model reused, summaries) | {1e3 * base:.0f} | | | 1x |"
    )


def mcmc_baseline(y: np.ndarray, se: np.ndarray, repeats: int) -> float:
    """Median wall time of a warm MCMC fit (compile excluded) of the k = 6 model."""
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import ContrastData
    from trialsynth.models.spec import ModelSpec
    from trialsynth.results.fitting import fit

    data = ContrastData("bench", tuple(f"t{i}" for i in range(y.size)), log_or=y, se=se)
    spec = ModelSpec(likelihood="normal")

    def one(seed: int) -> float:
        t = time.perf_counter()
        fit(data, spec=spec, settings=SamplerSettings(seed=seed), engine="mcmc").summary()
        return time.perf_counter() - t

    one(0)  # compile once; later fits reuse it
    return statistics.median(one(i + 1) for i in range(repeats))


if __name__ == "__main__":
    main()
