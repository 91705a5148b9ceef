"""Benchmark of the report: all figures plus report.html/report.md for ivig_rm.

Measures, each in a fresh process (median of N repeats, wall time and peak RSS):
- baseline: load the saved fit and draw only the forest plot (what `run` wrote before the
  report existed);
- from a saved fit with no report yet: `trialsynth report FIT --out DIR` (load, the
  future-trial simulations, every figure, report);
- from a saved fit whose report is current (`report.stamp.json` matches its inputs and this
  code): `trialsynth report FIT --out DIR` (copies and re-renders the stored report);
- cold: `trialsynth run SPEC --refit --out DIR` on a fresh folder (compile, sample, save,
  forest plot, figures and report), with the spec's [analysis]/[data]/[model]/[priors]/
  [sampler] tables only (no [sensitivity] grid);
and, in one process, the split of a report from a loaded fit (per figure, rendering).
Prints markdown tables for BENCHMARKS.md.

Usage: .venv/bin/python scripts/bench_report.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import textwrap
import time
import tomllib
from pathlib import Path

from _bench import PY, ROOT, TRIALSYNTH, load_average, run_once

SPEC = ROOT / "models" / "ivig_rm.toml"

FOREST_ONLY = textwrap.dedent(
    """
    import sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trialsynth.results.base import FitResult
    from trialsynth.report.forest import forest_plot
    fit = FitResult.load(sys.argv[1])
    fig = forest_plot(fit, treatment="IVIg", control="placebo")
    fig.savefig(sys.argv[2], dpi=300)
    plt.close(fig)
    """
)

SPLIT = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from trialsynth.report import report as rep
    from trialsynth.report.style import save_figure
    from trialsynth.results.base import FitResult
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit = FitResult.load(sys.argv[1])
    t_load = time.perf_counter() - t0
    meta = rep.read_analysis_meta(sys.argv[1], fit)
    opts = {"treatment": meta["treatment"], "control": meta["control"], "title": meta["title"]}
    rows = {"import": t_import, "load fit": t_load}
    for spec in rep._figure_specs(fit):
        t0 = time.perf_counter()
        fig = spec.draw(fit, **{k: opts[k] for k in spec.kwargs})
        t1 = time.perf_counter()
        save_figure(fig, sys.argv[2] + "/figures", spec.name)
        t2 = time.perf_counter()
        # what --figure-format png adds (the default writes the SVG only)
        save_figure(fig, sys.argv[2] + "/png", spec.name, png=True)
        t3 = time.perf_counter()
        plt.close(fig)
        rows[f"figure {spec.name}: draw"] = t1 - t0
        rows[f"figure {spec.name}: save SVG"] = t2 - t1
        rows[f"figure {spec.name}: PNG 300 dpi (+SVG), only if asked"] = t3 - t2
    t0 = time.perf_counter()
    files = rep.write_report(fit, sys.argv[2], analysis=meta)
    rows["write_report (simulations, figures again, context, render)"] = time.perf_counter() - t0
    for key, label in [
        ("assurance_s", "assurance: design_trial + updated meta-analysis + conclusion map"),
        ("figures_s", "figures (every one, drawn and saved)"),
        ("report_s", "context + render + write"),
    ]:
        rows[f"  of which {label}"] = files.timings[key]
    print(json.dumps(rows))
    """
)


def measure(cmd: list[str]) -> dict[str, float]:
    """One fresh process of ``cmd`` (wall s, peak RSS MiB)."""
    return run_once(cmd)


def spec_without_sensitivity(folder: Path) -> Path:
    doc = tomllib.loads(SPEC.read_text(encoding="utf-8"))
    lines = []
    for section in ("analysis", "data", "model", "priors", "sampler"):
        if section not in doc:
            continue
        lines.append(f"[{section}]")
        for key, value in doc[section].items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path = folder / "ivig_rm.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        spec = spec_without_sensitivity(tmp_path)
        fit_dir = tmp_path / "fit"
        # a saved fit with analysis.json (and a first report) to start from
        measure([TRIALSYNTH, "run", str(spec), "--out", str(fit_dir)])
        keys = ("baseline", "reused", "saved", "cold")
        results: dict[str, list[dict[str, float]]] = {k: [] for k in keys}
        loads = [load_average()]
        for i in range(args.repeats):  # interleaved: load changes hit every task alike
            results["baseline"].append(
                measure([PY, "-c", FOREST_ONLY, str(fit_dir), str(tmp_path / f"f{i}.png")])
            )
            out = tmp_path / f"report{i}"
            results["reused"].append(
                measure([TRIALSYNTH, "report", str(fit_dir), "--out", str(out)])
            )
            bare = tmp_path / f"bare{i}"  # the saved fit alone, no report yet
            bare.mkdir()
            for name in ("posterior.nc", "summary.json", "summary.csv", "analysis.json"):
                shutil.copyfile(fit_dir / name, bare / name)
            # into a new folder: `out` now holds a current report of the same inputs
            fresh = tmp_path / f"fresh{i}"
            results["saved"].append(measure([TRIALSYNTH, "report", str(bare), "--out", str(fresh)]))
            cold = tmp_path / f"cold{i}"
            results["cold"].append(
                measure([TRIALSYNTH, "run", str(spec), "--refit", "--out", str(cold)])
            )
            for folder in (out, bare, fresh, cold):
                shutil.rmtree(folder)
            loads.append(load_average())
        split_out = tmp_path / "split"
        split = json.loads(
            subprocess.run(
                [PY, "-c", SPLIT, str(fit_dir), str(split_out)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        sizes = {
            "report.html": (fit_dir / "report.html").stat().st_size,
            "figures/ (SVG)": sum(p.stat().st_size for p in (fit_dir / "figures").iterdir()),
        }

    def med(key: str, field: str) -> float:
        return statistics.median(r[field] for r in results[key])

    base = med("baseline", "wall")
    print(f"repeats: {args.repeats} (median), fresh process each, interleaved")
    print(f"load average (1, 5, 15 min) before and after each repeat: {' | '.join(loads)}\n")
    print("| task | wall s | ratio to baseline | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: |")
    labels = {
        "baseline": "baseline: load saved fit, forest plot only (PNG 300 dpi)",
        "reused": "`trialsynth report FIT --out DIR`, report of FIT current (re-rendered)",
        "saved": "`trialsynth report FIT --out DIR`, no report yet (simulations, figures)",
        "cold": "cold `trialsynth run --refit` (fit + all figures + report)",
    }
    for key, label in labels.items():
        w = med(key, "wall")
        walls = ", ".join(f"{r['wall']:.2f}" for r in results[key])
        print(f"| {label} | {w:.2f} [{walls}] | {w / base:.2f} | {med(key, 'rss_mib'):.0f} |")
    print("\nSplit of a report from a loaded fit (one process, seconds):\n")
    print("| phase | s |")
    print("| --- | ---: |")
    for k, v in split.items():
        print(f"| {k} | {v:.2f} |")
    print("\nSizes: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()))
    print(f"(measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")


if __name__ == "__main__":
    main()
