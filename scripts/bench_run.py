"""Benchmark of the main job: `trialsynth run models/ivig_rm.toml`.

Measures, each in fresh processes (median of N repeats):
- baseline: a bare PyMC + nutpie fit of a 22-trial binomial-normal model (whole process);
- cold run: `trialsynth run models/ivig_rm.toml` into a new, empty folder each time
  (compiles, samples, writes the report and runs the 24-scenario sensitivity section);
- repeated run: the same command on a folder holding that run (reuses the identical saved
  fit and every stored scenario);
- the phase split of a cold run (import, data, compile, sample, diagnostics, save, forest
  plot, sensitivity, report).
Wall time and peak RSS of each child process. Prints a markdown table for BENCHMARKS.md.

Usage: .venv/bin/python scripts/bench_run.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import textwrap
from pathlib import Path

from _bench import MAIN_JOB_SPLIT as SPLIT
from _bench import PY, ROOT, TRIALSYNTH, load_average, measure

BASELINE = textwrap.dedent(
    """
    import numpy as np, pymc as pm, nutpie
    rng = np.random.default_rng(1)
    k = 22
    n = rng.integers(20, 200, size=(2, k))
    alpha = rng.normal(-0.5, 0.5, size=k)
    theta = rng.normal(0.2, 0.3, size=k)
    yc = rng.binomial(n[0], 1 / (1 + np.exp(-alpha)))
    yt = rng.binomial(n[1], 1 / (1 + np.exp(-(alpha + theta))))
    with pm.Model(coords={"study": range(k)}) as m:
        mu = pm.Normal("mu", 0, 2.82)
        tau = pm.HalfNormal("tau", 0.5)
        z = pm.Normal("z", 0, 1, dims="study")
        a = pm.Normal("alpha", 0, 5, dims="study")
        th = mu + tau * z
        pm.Binomial("yc", n=n[0], logit_p=a, observed=yc)
        pm.Binomial("yt", n=n[1], logit_p=a + th, observed=yt)
    nutpie.sample(nutpie.compile_pymc_model(m), draws=1000, tune=1000, chains=4, seed=1,
                  progress_bar=False)
    """
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-run-"))

    load_before = load_average()
    baseline = measure([PY, "-c", BASELINE], args.repeats)
    run = [TRIALSYNTH, "run", "models/ivig_rm.toml"]
    cold = measure(run, args.repeats, out_in=Path(tempfile.mkdtemp(prefix="bench-cold-")))
    subprocess.run([*run, "--out", str(out)], cwd=ROOT, capture_output=True, check=True)
    warm = measure([*run, "--out", str(out)], args.repeats)
    splits = []
    for _ in range(args.repeats):
        p = subprocess.run([PY, "-c", SPLIT], cwd=ROOT, capture_output=True, text=True, check=True)
        splits.append(json.loads(p.stdout.strip().splitlines()[-1]))
    split = {k: statistics.median(s.get(k, 0.0) for s in splits) for k in splits[0]}

    n = args.repeats
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_average()}\n")
    print(
        f"| what (fresh process each, median of {n}) | wall s | ratio to baseline | peak RSS MiB |"
    )
    print("| --- | --- | --- | --- |")
    for name, r in [
        ("baseline: bare PyMC + nutpie, 22-trial binomial-normal", baseline),
        ("`trialsynth run models/ivig_rm.toml` into an empty folder (cold: everything)", cold),
        ("`trialsynth run models/ivig_rm.toml` again (reuses the saved fit and scenarios)", warm),
    ]:
        ratio = r["wall"] / baseline["wall"]
        print(f"| {name} | {r['wall']:.2f} {r['walls']} | {ratio:.2f} | {r['rss_mib']:.0f} |")
    print()
    print("| phase of a cold run | s |")
    print("| --- | --- |")
    for k, v in split.items():
        print(f"| {k.removesuffix('_s')} | {v:.2f} |")


if __name__ == "__main__":
    main()
