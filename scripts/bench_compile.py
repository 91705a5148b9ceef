"""Benchmark of the compile path (issue 11): the targets as ratios to baselines of the same run.

Every measurement is a fresh process (wall time of the child, median of --repeats where
noted). "cold" = empty compile caches: a new TRIALSYNTH_CACHE_DIR, pytensor compiledir and
NUMBA_CACHE_DIR; "warm" = caches a previous process filled.

Targets (issue 11) and their baselines, measured in the same run:
- a fit of a compiled structure (`trialsynth fit ivig_rm`, warm) <= 2x
  `import pymc, arviz, nutpie`;
- a cold main job (`trialsynth run models/ivig_rm.toml`) <= 1.5x a bare cold PyMC + nutpie
  fit of the same model;
- the 24-scenario grid (`trialsynth sensitivity models/ivig_rm.toml`) <= 2x a cold
  `trialsynth fit ivig_rm`, and <= 1.2x once the cache is warm;
- an exact-engine command (`trialsynth fit ivig_rm --model normal-normal`) <= 1.5x
  `import pandas, scipy.stats`.

Also: the draws of fit and run are compared (same analysis, same seed: identical), and
with --first-run the time a new user (fresh clone, fresh HOME) spends in the main job, by
phase. Prints markdown for BENCHMARKS.md.

Usage: .venv/bin/python scripts/bench_compile.py [--repeats 3] [--first-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TRIALSYNTH = str(Path(PY).with_name("trialsynth"))
TMP = Path(tempfile.mkdtemp(prefix="bench-compile-"))

# Runs a command as a child and reports its wall time (s) and peak RSS (MiB).
WRAPPER = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t = time.perf_counter()
    p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rc": p.returncode, "wall": wall, "rss_mib": rss,
                      "stderr": p.stderr[-2000:]}))
    """
)

# The same model as `trialsynth fit ivig_rm` (binomial-normal, k = 8, the same priors and
# sampler settings), written in bare PyMC and compiled the way nutpie does by default.
BARE_FIT = textwrap.dedent(
    """
    import numpy as np, pymc as pm, nutpie
    from trialsynth.data import load
    d = load("ivig_rm")
    with pm.Model(coords={"study": list(d.study)}) as m:
        mu = pm.Normal("mu", 0, 2.82)
        tau = pm.HalfNormal("tau", 0.5)
        z = pm.Normal("z", 0, 1, dims="study")
        a = pm.Normal("alpha", 0, 5, dims="study")
        pm.Binomial("yc", n=d.n_c, logit_p=a, observed=d.events_c, dims="study")
        pm.Binomial("yt", n=d.n_t, logit_p=a + mu + tau * z, observed=d.events_t,
                    dims="study")
    nutpie.sample(nutpie.compile_pymc_model(m), draws=2000, tune=1000, chains=4, cores=2,
                  seed=20261125, progress_bar=False)
    """
)

# A cold main job split by phase, in one process (what `run` does, step by step).
SPLIT = textwrap.dedent(
    """
    import json, pathlib, tempfile, time
    t0 = time.perf_counter()
    import pymc, arviz, nutpie  # noqa: F401
    from trialsynth.workflow.outputs import write_outputs, write_report
    from trialsynth.workflow.sensitivity import plan_sensitivity, run_sensitivity
    from trialsynth.data import load
    from trialsynth.models.analysis import load_spec
    from trialsynth.results.fitting import fit
    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    spec = load_spec("models/ivig_rm.toml")
    data = load(spec.data_source())
    t_data = time.perf_counter() - t
    res = fit(data, spec=spec.model_spec(data.kind), priors=spec.priors, settings=spec.sampler)
    folder = pathlib.Path(tempfile.mkdtemp())
    out = write_outputs(res, folder, title=spec.title)
    t = time.perf_counter()
    run_sensitivity(plan_sensitivity(spec, data, folder / "sensitivity", settings=spec.sampler))
    t_sens = time.perf_counter() - t
    t = time.perf_counter()
    write_report(res, folder)
    t_report = time.perf_counter() - t
    split = {"import pymc, arviz, nutpie, trialsynth": t_import, "data": t_data,
             **res.timings, **out, "sensitivity (24 scenarios)": t_sens,
             "report": t_report, "total in process": time.perf_counter() - t0}
    print(json.dumps(split))
    """
)

DRAWS = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    from trialsynth.results.base import FitResult
    for folder in sys.argv[1:]:
        post = FitResult.load(folder).tree["posterior"]
        h = hashlib.sha256()
        for v in ("mu", "tau", "theta", "alpha"):
            h.update(np.ascontiguousarray(post[v].values).tobytes())
        print(h.hexdigest()[:16])
    """
)


def caches(name: str, *, empty: bool) -> dict[str, str]:
    """Environment pointing every compile cache at TMP/name (emptied first if asked)."""
    base = TMP / name
    if empty:
        shutil.rmtree(base, ignore_errors=True)
    return {
        "TRIALSYNTH_CACHE_DIR": str(base / "trialsynth"),
        "PYTENSOR_FLAGS": f"base_compiledir={base / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(base / "numba"),
    }


def measure(
    cmd: list[str],
    env: dict[str, str],
    repeats: int = 1,
    *,
    out: bool = False,
    cold: str | None = None,
) -> dict[str, object]:
    """Median wall time of ``repeats`` fresh processes (``cold``: empty caches each time)."""
    runs = []
    for _ in range(repeats):
        run_env = caches(cold, empty=True) if cold else env
        extra = ["--out", tempfile.mkdtemp(dir=TMP, prefix="out-")] if out else []
        p = subprocess.run(
            [PY, "-c", WRAPPER, *cmd, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **run_env},
            check=True,
        )
        r = json.loads(p.stdout)
        if r["rc"] != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{r['stderr']}")
        r["out"] = extra[1] if extra else None
        runs.append(r)
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "walls": [round(r["wall"], 2) for r in runs],
        "rss_mib": statistics.median(r["rss_mib"] for r in runs),
        "out": runs[-1]["out"],
    }


def table(rows: list[tuple[str, dict, dict | None, str]]) -> None:
    print("| what (fresh process each) | wall s | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for name, r, base, target in rows:
        if base is None:
            print(f"| {name} | {r['wall']:.2f} {r['walls']} | | | |")
            continue
        ratio = r["wall"] / base["wall"]
        print(
            f"| {name} | {r['wall']:.2f} {r['walls']} | {base['wall']:.2f} | "
            f"{ratio:.2f} | {target} |"
        )


def targets(repeats: int) -> None:
    """The four targets of issue 11 with their baselines, in one run."""
    warm = caches("warm", empty=True)
    fit = [TRIALSYNTH, "fit", "ivig_rm"]
    run = [TRIALSYNTH, "run", "models/ivig_rm.toml"]
    grid = [TRIALSYNTH, "sensitivity", "models/ivig_rm.toml"]
    bare_import = measure([PY, "-c", "import pymc, arviz, nutpie"], warm, repeats)
    bare_cold = measure([PY, "-c", BARE_FIT], {}, cold="bare")
    fit_cold = measure(fit, {}, out=True, cold="fit")
    run_cold = measure(run, {}, out=True, cold="run")
    grid_cold = measure(grid, {}, out=True, cold="grid")
    measure(run, warm, out=True)  # fills the warm caches (main job and the grid's models)
    fit_warm = measure(fit, warm, repeats, out=True)
    run_warm = measure(run, warm, repeats, out=True)
    grid_warm = measure(grid, warm, repeats, out=True)
    exact_import = measure([PY, "-c", "import pandas, scipy.stats"], warm, repeats)
    exact = measure([*fit, "--model", "normal-normal", "--json"], warm, repeats)
    table(
        [
            ("`import pymc, arviz, nutpie`", bare_import, None, ""),
            ("`trialsynth fit ivig_rm`, warm cache", fit_warm, bare_import, "<= 2"),
            ("bare PyMC + nutpie fit of the same model, cold", bare_cold, None, ""),
            ("`trialsynth fit ivig_rm`, cold", fit_cold, bare_cold, ""),
            (
                "`trialsynth run models/ivig_rm.toml`, cold (report, 24 scenarios)",
                run_cold,
                bare_cold,
                "<= 1.5",
            ),
            ("`trialsynth run models/ivig_rm.toml`, warm", run_warm, bare_cold, ""),
            (
                "`trialsynth sensitivity models/ivig_rm.toml` (24), cold",
                grid_cold,
                fit_cold,
                "<= 2",
            ),
            (
                "`trialsynth sensitivity models/ivig_rm.toml` (24), warm",
                grid_warm,
                fit_cold,
                "<= 1.2",
            ),
            ("`import pandas, scipy.stats`", exact_import, None, ""),
            (
                "`trialsynth fit ivig_rm --model normal-normal --json` (exact)",
                exact,
                exact_import,
                "<= 1.5",
            ),
        ]
    )
    p = subprocess.run(
        [PY, "-c", DRAWS, fit_cold["out"], fit_warm["out"], run_cold["out"], run_warm["out"]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    shas = p.stdout.split()
    print()
    print("| path | draws sha256 (mu, tau, theta, alpha) |")
    print("| --- | --- |")
    for name, sha in zip(["fit, cold", "fit, warm", "run, cold", "run, warm"], shas, strict=True):
        print(f"| {name} | `{sha}` |")
    print(f"\nall identical: {'yes' if len(set(shas)) == 1 else 'NO'}")


def first_run() -> None:
    """A new user: fresh clone, fresh HOME (so empty caches), the installed environment.

    Times `trialsynth run models/ivig_rm.toml` twice as whole processes, then the same job
    split by phase in one process (first in another fresh HOME, then warm).
    """
    clone = TMP / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)

    def env_for(home: Path) -> dict[str, str]:
        home.mkdir(exist_ok=True)
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(clone / "src")}
        for var in ("TRIALSYNTH_CACHE_DIR", "PYTENSOR_FLAGS", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
            env.pop(var, None)
        return env

    run = [TRIALSYNTH, "run", "models/ivig_rm.toml"]
    walls = []
    for _ in range(2):
        out = tempfile.mkdtemp(dir=TMP, prefix="first-")
        t = time.perf_counter()
        subprocess.run(
            [*run, "--out", out],
            cwd=clone,
            env=env_for(TMP / "home1"),
            capture_output=True,
            check=True,
        )
        walls.append(time.perf_counter() - t)
    print(
        f"\nnew user, `trialsynth run models/ivig_rm.toml`: first {walls[0]:.2f} s, "
        f"second {walls[1]:.2f} s"
    )
    splits = []
    for _ in range(2):
        t = time.perf_counter()
        p = subprocess.run(
            [PY, "-c", SPLIT],
            cwd=clone,
            env=env_for(TMP / "home2"),
            capture_output=True,
            text=True,
            check=True,
        )
        split = json.loads(p.stdout.strip().splitlines()[-1])
        split["process wall"] = time.perf_counter() - t
        splits.append(split)
    print("\n| phase of the main job (one process, fresh HOME) | first run s | second run s |")
    print("| --- | --- | --- |")
    for key in splits[0]:
        a, b = splits[0][key], splits[1].get(key, 0.0)
        print(f"| {key.removesuffix('_s')} | {a:.2f} | {b:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--first-run", action="store_true")
    args = ap.parse_args()
    try:
        targets(args.repeats)
        if args.first_run:
            first_run()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
