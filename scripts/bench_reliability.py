"""Costs of the reliability machinery, and the arm size the binomial likelihood can take.

1. Saving a FIT folder: the journalled commit (``FitResult.save``) against a baseline of
   writing the same three files directly (no temporaries, no journal), same run.
2. The prior-data conflict check (20 000 prior predictive draws) against the sampling time
   of the same fit (4 x 2000 draws), same run.
3. Binomial-normal fits of 4 trials with 10^5, 10^6, 10^7 participants per arm (default
   settings): R-hat, bulk ESS, divergences. Sets ``fit.MAX_BINOMIAL_ARM``.

Usage: .venv/bin/python scripts/bench_reliability.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from trialsynth.core.settings import SamplerSettings
from trialsynth.data import ArmData, load
from trialsynth.models.conflict import prior_predictive_check
from trialsynth.models.spec import ModelSpec, resolve_priors
from trialsynth.priors.prior import PriorSet
from trialsynth.results.fitting import fit


def timed(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    data = load("ivig_rm")
    res = fit(data, settings=SamplerSettings(seed=1))
    tmp = Path(tempfile.mkdtemp())

    def plain() -> None:
        out = tmp / "plain"
        out.mkdir(exist_ok=True)
        res.tree.to_netcdf(out / "posterior.nc", engine="h5netcdf")
        (out / "summary.json").write_text(json.dumps(res.summary(), indent=2) + "\n")
        (out / "summary.csv").write_text(res.summary_frame().to_csv(index=False))

    rows = []
    base, base_best = timed(plain, args.repeats)
    rows.append(("save, plain writes (baseline)", base, base_best, 1.0))
    med, best = timed(lambda: res.save(tmp / "journal"), args.repeats)
    rows.append(("save, journalled commit (FitResult.save)", med, best, med / base))

    spec = ModelSpec()
    priors = resolve_priors(spec, data, PriorSet())
    t0 = time.perf_counter()
    again = fit(data, settings=SamplerSettings(seed=2))
    sample_s = again.timings.get("sample_s", time.perf_counter() - t0)
    med, best = timed(lambda: prior_predictive_check(data, spec, priors, 1), args.repeats)
    rows.append(("sampling 4 x 2000 draws (baseline)", sample_s, sample_s, 1.0))
    rows.append(("prior-data conflict check", med, best, med / sample_s))

    print("| task | median (s) | best (s) | vs baseline |")
    print("| --- | ---: | ---: | ---: |")
    for name, m, b, r in rows:
        print(f"| {name} | {m:.4f} | {b:.4f} | {r:.3f}x |")

    print()
    print("| participants per arm | R-hat max | bulk ESS min | divergences | checks |")
    print("| ---: | ---: | ---: | ---: | --- |")
    risks = [(0.30, 0.20), (0.25, 0.24), (0.10, 0.11), (0.20, 0.18)]
    for n in (10**5, 10**6, 10**7):
        trials = ArmData(
            f"n={n}",
            ["A", "B", "C", "D"],
            events_t=[int(pt * n) for pt, _ in risks],
            n_t=[n] * 4,
            events_c=[int(pc * n) for _, pc in risks],
            n_c=[n] * 4,
        )
        import trialsynth.engines.mcmc as fit_module

        saved, fit_module.MAX_BINOMIAL_ARM = fit_module.MAX_BINOMIAL_ARM, 10**12
        try:
            r = fit(trials, settings=SamplerSettings(seed=1), reusable=True)
        finally:
            fit_module.MAX_BINOMIAL_ARM = saved
        d = r.diagnostics
        assert d is not None
        verdict = "ok" if d.ok else "FAILED"
        print(f"| {n:,} | {d.r_hat_max:.3f} | {d.ess_bulk_min:.0f} | {d.divergences} | {verdict} |")


if __name__ == "__main__":
    main()
