"""Timing shared by the benchmark scripts: each command in a fresh child process.

:func:`measure` runs a command ``repeats`` times, each as a child of a small wrapper
process that reports the child's wall time and peak RSS, and returns the median with every
wall. :func:`load_average` is what the machine was doing (BENCHMARKS.md records it beside
the numbers: the machine has 2 cores shared with other jobs).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TRIALSYNTH = str(Path(PY).with_name("trialsynth"))

# Runs a command as a child and reports its wall time (s), peak RSS (MiB) and stderr's tail.
WRAPPER = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    t = time.perf_counter()
    p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rc": p.returncode, "wall": wall, "rss_mib": rss,
                      "stderr": p.stderr[-2000:]}))
    """
)

# The main job split by phase in one process (what `run` does, step by step); prints JSON.
MAIN_JOB_SPLIT = textwrap.dedent(
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


def cache_env(folder: Path) -> dict[str, str]:
    """The variables that put every compile cache in ``folder``.

    trialsynth's, PyTensor's and numba's: an empty ``folder`` is a new machine's first run.
    """
    return {
        "TRIALSYNTH_CACHE_DIR": str(folder / "trialsynth"),
        "PYTENSOR_FLAGS": f"base_compiledir={folder / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(folder / "numba"),
    }


def run_once(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> dict[str, Any]:
    """One fresh process of ``cmd``: ``wall``, ``rss_mib`` (exits on a failed command)."""
    p = subprocess.run(
        [PY, "-c", WRAPPER, *cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    r = json.loads(p.stdout)
    if r["rc"] != 0:
        raise SystemExit(f"failed ({r['rc']}): {' '.join(cmd)}\n{r['stderr']}")
    return r


def measure(
    cmd: list[str],
    repeats: int = 1,
    *,
    env: dict[str, str] | Callable[[], dict[str, str]] | None = None,
    out_in: Path | None = None,
    cwd: Path = ROOT,
) -> dict[str, Any]:
    """Median wall time of ``repeats`` fresh processes of ``cmd``.

    ``env``: extra environment, or a function called before each repeat (e.g. to empty
    the compile caches each time). ``out_in``: add ``--out`` with a new empty folder made
    under it for each repeat (the last one is returned as ``out``).
    """
    runs = []
    for _ in range(repeats):
        extra = ["--out", tempfile.mkdtemp(dir=out_in, prefix="out-")] if out_in else []
        run_env = env() if callable(env) else env
        r = run_once([*cmd, *extra], env=run_env, cwd=cwd)
        r["out"] = extra[1] if extra else None
        runs.append(r)
    return combine(runs)


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, every wall, median peak RSS and the last ``out`` of single runs."""
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "walls": [round(r["wall"], 2) for r in runs],
        "rss_mib": statistics.median(r["rss_mib"] for r in runs),
        "out": runs[-1].get("out"),
    }


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages (``uptime``'s numbers)."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())
