"""Benchmark of sensitivity runs: a 24-scenario prior grid on ivig_rm (binomial-normal, MCMC).

Grid: tau in {half-normal, half-cauchy} x {0.25, 0.5, 1}, mu in {normal(0, 1), normal(0,
2.82)}, baseline in {normal(0, 2), normal(0, 5)}: 24 scenarios, two compiled structures
(the tau family), the spec's sampler settings (4 chains x 2000 draws + 1000 tuning).
Measured in the same run, each in a fresh Python process (imports included):

- one cold fit: the spec's analysis, compiled once (frozen, as ``trialsynth run`` does);
- naive: the 24 scenarios each rebuilt and recompiled (``fit(..., reusable=False)`` after
  clearing the compile cache), one after another;
- this implementation (``analysis.sensitivity.run``) with 1 worker (this process) and with
  2 worker processes, into an empty output folder.

Usage: ``.venv/bin/python scripts/bench_sensitivity.py [--repeats N] [--skip-naive]``;
prints Markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

GRID = {
    "tau": [
        "half-normal(0.25)",
        "half-normal(0.5)",
        "half-normal(1)",
        "half-cauchy(0.25)",
        "half-cauchy(0.5)",
        "half-cauchy(1)",
    ],
    "mu": ["normal(0, 1)", "normal(0, 2.82)"],
    "baseline": ["normal(0, 2)", "normal(0, 5)"],
}

PRELUDE = textwrap.dedent(
    f"""
    import json, sys, tempfile, time
    t0 = time.perf_counter()
    from dataclasses import replace
    from trialsynth.analysis import sensitivity as sens
    from trialsynth.models.analysis import load_spec
    spec = load_spec("models/ivig_rm.toml")
    spec = replace(spec, sensitivity={GRID!r})
    data = sens.spec_data(spec)
    scenarios = sens.plan(spec, data)
    assert len(scenarios) == 24, len(scenarios)
    """
)

COLD = PRELUDE + textwrap.dedent(
    """
    from trialsynth.results.fitting import fit
    main = next(s for s in scenarios if s.main)
    res = fit(main.data, spec=main.spec, priors=main.priors, settings=main.sampler,
              reusable=False)
    ok = res.ok
    print(json.dumps({"wall": time.perf_counter() - t0, "ok": int(ok), "n": 1}))
    """
)

NAIVE = PRELUDE + textwrap.dedent(
    """
    from trialsynth.results.fitting import fit
    from trialsynth.engines.mcmc import clear_cache
    ok = 0
    for s in scenarios:
        clear_cache()
        res = fit(s.data, spec=s.spec, priors=s.priors, settings=s.sampler, reusable=False)
        ok += res.ok
    print(json.dumps({"wall": time.perf_counter() - t0, "ok": ok, "n": len(scenarios)}))
    """
)

GRID_RUN = PRELUDE + textwrap.dedent(
    """
    workers = int(sys.argv[1])
    out = tempfile.mkdtemp(prefix="bench-sens-")
    result = sens.run(scenarios, out, workers=workers)
    assert len(result.ran) == 24
    ok = sum(r["status"] == "ok" for r in result.rows)
    print(json.dumps({"wall": time.perf_counter() - t0, "ok": ok, "n": len(result.rows),
                      "table": sens.comparable(result.rows)}))
    """
)


def measure(code: str, *args: str) -> dict:
    p = subprocess.run(
        [PY, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    rows: dict[str, list[dict]] = {"cold": [], "naive": [], "w1": [], "w2": []}
    for _ in range(args.repeats):
        rows["cold"].append(measure(COLD))
        rows["w1"].append(measure(GRID_RUN, "1"))
        rows["w2"].append(measure(GRID_RUN, "2"))
        if not args.skip_naive:
            rows["naive"].append(measure(NAIVE))
    same = all(r["table"] == rows["w1"][0]["table"] for r in rows["w1"] + rows["w2"])

    def wall(name: str) -> float:
        return statistics.median(r["wall"] for r in rows[name])

    cold = wall("cold")
    n = args.repeats
    print(f"| what (fresh process each, median of {n}) | wall s | ratio to one cold fit | ok |")
    print("| --- | --- | --- | --- |")
    labels = [
        ("cold", "one cold fit of the main analysis (compile frozen + sample)"),
        ("naive", "naive: 24 scenarios, each rebuilt and recompiled"),
        ("w1", "`sensitivity.run`, 24 scenarios, 1 worker (this process)"),
        ("w2", "`sensitivity.run`, 24 scenarios, 2 worker processes"),
    ]
    for key, label in labels:
        if not rows[key]:
            continue
        walls = [round(r["wall"], 1) for r in rows[key]]
        ok = f"{rows[key][0]['ok']}/{rows[key][0]['n']}"
        print(f"| {label} | {wall(key):.1f} {walls} | {wall(key) / cold:.2f} | {ok} |")
    print()
    print(f"identical tables (excluding wall_s) for 1 and 2 workers: {same}")
    print(f"cpu count: {os.cpu_count()}; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
