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

Also: the draws of fit, run and run --refit, cold and warm, are compared (same analysis,
same seed: identical). With --first-run instead: a new user (fresh clone, fresh HOME):
./setup.sh, the README's first command, and the cost of warming the cache in setup.
Prints markdown for BENCHMARKS.md.

Usage: .venv/bin/python scripts/bench_compile.py [--repeats 3] [--first-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from _bench import MAIN_JOB_SPLIT as SPLIT
from _bench import PY, ROOT, TRIALSYNTH, cache_env, combine, load_average, measure, run_once

TMP = Path(tempfile.mkdtemp(prefix="bench-compile-"))

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
    return cache_env(base)


def cold(name: str) -> Callable[[], dict[str, str]]:
    """Empty caches before each repeat."""
    return lambda: caches(name, empty=True)


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
    """The four targets of issue 11 with their baselines, interleaved in one run.

    Each repeat runs every line once, cold lines (caches emptied first) then warm ones, so
    a change of the machine's load hits targets and baselines alike; medians of the repeats.
    """
    warm = caches("warm", empty=True)
    fit = [TRIALSYNTH, "fit", "ivig_rm"]
    run = [TRIALSYNTH, "run", "models/ivig_rm.toml"]
    grid = [TRIALSYNTH, "sensitivity", "models/ivig_rm.toml"]
    lines: dict[str, tuple[list[str], object, bool]] = {
        "bare_cold": ([PY, "-c", BARE_FIT], cold("bare"), False),
        "fit_cold": (fit, cold("fit"), True),
        "run_cold": (run, cold("run"), True),
        "grid_cold": (grid, cold("grid"), True),
        "bare_import": ([PY, "-c", "import pymc, arviz, nutpie"], warm, False),
        "fit_warm": (fit, warm, True),
        "run_warm": (run, warm, True),
        "grid_warm": (grid, warm, True),
        "exact_import": ([PY, "-c", "import pandas, scipy.stats"], warm, False),
        "exact": ([*fit, "--model", "normal-normal", "--json"], warm, False),
    }
    # fill the warm caches (the main job's model and the grid's)
    run_once([*run, "--out", tempfile.mkdtemp(dir=TMP)], env=warm)
    runs: dict[str, list[dict]] = defaultdict(list)
    loads = [load_average()]
    for _ in range(repeats):
        for name, (cmd, env, out) in lines.items():
            r = measure(cmd, env=env, out_in=TMP if out else None)  # type: ignore[arg-type]
            runs[name].append(r)
        loads.append(load_average())
    res = {name: combine(rs) for name, rs in runs.items()}
    print(f"load average (1, 5, 15 min) before and after each repeat: {' | '.join(loads)}\n")
    table(
        [
            ("`import pymc, arviz, nutpie`", res["bare_import"], None, ""),
            ("`trialsynth fit ivig_rm`, warm cache", res["fit_warm"], res["bare_import"], "<= 2"),
            ("bare PyMC + nutpie fit of the same model, cold", res["bare_cold"], None, ""),
            ("`trialsynth fit ivig_rm`, cold", res["fit_cold"], res["bare_cold"], ""),
            (
                "`trialsynth run models/ivig_rm.toml`, cold (report, 24 scenarios)",
                res["run_cold"],
                res["bare_cold"],
                "<= 1.5",
            ),
            ("`trialsynth run models/ivig_rm.toml`, warm", res["run_warm"], res["bare_cold"], ""),
            (
                "`trialsynth sensitivity models/ivig_rm.toml` (24), cold",
                res["grid_cold"],
                res["fit_cold"],
                "<= 2",
            ),
            (
                "`trialsynth sensitivity models/ivig_rm.toml` (24), warm",
                res["grid_warm"],
                res["fit_cold"],
                "<= 1.2",
            ),
            ("`import pandas, scipy.stats`", res["exact_import"], None, ""),
            (
                "`trialsynth fit ivig_rm --model normal-normal --json` (exact)",
                res["exact"],
                res["exact_import"],
                "<= 1.5",
            ),
        ]
    )
    refit = str(TMP / "refit")
    shutil.copytree(res["run_warm"]["out"], refit)
    run_once([*run, "--refit", "--out", refit], env=warm)
    draws(
        {
            "fit, cold caches": res["fit_cold"]["out"],
            "fit, warm caches": res["fit_warm"]["out"],
            "run, cold caches": res["run_cold"]["out"],
            "run, warm caches": res["run_warm"]["out"],
            "run --refit (warm)": refit,
        }
    )


def draws(folders: dict[str, str]) -> None:
    """Hash of the draws of each FIT folder, and whether all are equal."""
    p = subprocess.run(
        [PY, "-c", DRAWS, *folders.values()], cwd=ROOT, capture_output=True, text=True, check=True
    )
    shas = p.stdout.split()
    print()
    print("| path | draws sha256 (mu, tau, theta, alpha) |")
    print("| --- | --- |")
    for name, sha in zip(folders, shas, strict=True):
        print(f"| {name} | `{sha}` |")
    print(f"\nall identical: {'yes' if len(set(shas)) == 1 else 'NO'}")


def new_user_env(home: Path) -> dict[str, str]:
    """A new user's environment: a fresh empty HOME and no cache or path overrides."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home)}
    for var in (
        "TRIALSYNTH_CACHE_DIR",
        "PYTENSOR_FLAGS",
        "NUMBA_CACHE_DIR",
        "XDG_CACHE_HOME",
        "PYTHONPATH",
        "VIRTUAL_ENV",
    ):
        env.pop(var, None)
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one process (exits with its stderr on failure)."""
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t


def first_run() -> None:
    """A new user: a fresh clone, a fresh empty HOME, `./setup.sh`, then the README's command.

    Times, each a whole process: `./setup.sh` (a new .venv, pip install from the lock file),
    the README's first command `trialsynth run models/ivig_rm.toml` twice (first: empty
    compile caches; second: reuses the saved fit), and, in a second fresh HOME with the same
    .venv, `trialsynth cache warm models/ivig_rm.toml` followed by the main job into a new
    folder (what the first run would cost if setup.sh warmed the cache). Then the main job
    split by phase in one process in a third fresh HOME.
    """
    clone = TMP / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = new_user_env(TMP / "home1")
    trialsynth = str(clone / ".venv" / "bin" / "trialsynth")
    run = [trialsynth, "run", "models/ivig_rm.toml"]
    t = {
        "setup": timed(["./setup.sh"], clone, env),
        "first run": timed(run, clone, env),
        "second run": timed(run, clone, env),
    }
    env2 = new_user_env(TMP / "home2")
    warm = [trialsynth, "cache", "warm", "models/ivig_rm.toml"]
    t["cache warm (fresh HOME)"] = timed(warm, clone, env2)
    out = tempfile.mkdtemp(dir=TMP, prefix="after-warm-")
    t["first run after cache warm"] = timed([*run, "--out", out], clone, env2)
    print(f"\nload average after: {load_average()}\n")
    print("| new user, fresh clone and HOME (one process each) | wall s |")
    print("| --- | --- |")
    for name, wall in t.items():
        print(f"| {name} | {wall:.2f} |")
    p = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", SPLIT],
        cwd=clone,
        env=new_user_env(TMP / "home3"),
        capture_output=True,
        text=True,
        check=True,
    )
    split = json.loads(p.stdout.strip().splitlines()[-1])
    print("\n| phase of the main job (one process, fresh HOME, empty caches) | s |")
    print("| --- | --- |")
    for key, value in split.items():
        print(f"| {key.removesuffix('_s')} | {value:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--first-run", action="store_true", help="only the new user's first run")
    args = ap.parse_args()
    try:
        if args.first_run:
            first_run()
        else:
            targets(args.repeats)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
