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
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TRIALSYNTH = str(Path(PY).with_name("trialsynth"))

# Runs a command as a child and reports its wall time and peak RSS (MiB).
WRAPPER = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t = time.perf_counter()
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rc = subprocess.run(sys.argv[1:], **quiet).returncode
    wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rc": rc, "wall": wall, "rss_mib": rss}))
    """
)

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

SPLIT = textwrap.dedent(
    """
    import json, time
    t0 = time.perf_counter()
    import pymc, arviz, nutpie  # noqa: F401
    from trialsynth.workflow.outputs import write_outputs, write_report
    from trialsynth.data import load
    from trialsynth.results.fitting import fit
    from trialsynth.models.analysis import load_spec
    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    spec = load_spec("models/ivig_rm.toml")
    data = load(spec.data_source())
    t_data = time.perf_counter() - t
    res = fit(data, spec=spec.model_spec(data.kind), priors=spec.priors, settings=spec.sampler)
    import tempfile, pathlib
    from trialsynth.workflow.sensitivity import plan_sensitivity, run_sensitivity
    folder = pathlib.Path(tempfile.mkdtemp())
    out = write_outputs(res, folder, title=spec.title)
    t = time.perf_counter()
    run_sensitivity(plan_sensitivity(spec, data, folder / "sensitivity", settings=spec.sampler))
    t_sens = time.perf_counter() - t
    t = time.perf_counter()
    write_report(res, folder)
    t_report = time.perf_counter() - t
    split = {"import": t_import, "data": t_data, **res.timings, **out,
             "sensitivity (24 scenarios)": t_sens, "report (figures, html, md)": t_report,
             "total": time.perf_counter() - t0}
    print(json.dumps(split))
    """
)


def measure(cmd: list[str], repeats: int, *, fresh_out: bool = False) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        extra = ["--out", tempfile.mkdtemp(prefix="bench-cold-")] if fresh_out else []
        p = subprocess.run(
            [PY, "-c", WRAPPER, *cmd, *extra], cwd=ROOT, capture_output=True, text=True, check=True
        )
        r = json.loads(p.stdout)
        if r["rc"] != 0:
            raise SystemExit(f"command failed: {' '.join(cmd)}")
        runs.append(r)
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "rss_mib": statistics.median(r["rss_mib"] for r in runs),
        "walls": [round(r["wall"], 2) for r in runs],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-run-"))

    baseline = measure([PY, "-c", BASELINE], args.repeats)
    run = [TRIALSYNTH, "run", "models/ivig_rm.toml"]
    cold = measure(run, args.repeats, fresh_out=True)
    subprocess.run([*run, "--out", str(out)], cwd=ROOT, capture_output=True, check=True)
    warm = measure([*run, "--out", str(out)], args.repeats)
    splits = []
    for _ in range(args.repeats):
        p = subprocess.run([PY, "-c", SPLIT], cwd=ROOT, capture_output=True, text=True, check=True)
        splits.append(json.loads(p.stdout.strip().splitlines()[-1]))
    split = {k: statistics.median(s.get(k, 0.0) for s in splits) for k in splits[0]}

    n = args.repeats
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
