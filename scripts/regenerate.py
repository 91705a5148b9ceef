"""Regenerate reports/ and the README's numbers from the code (never typed by hand).

1. Each spec in ``models/*.toml`` is run afresh in its own process (``trialsynth run SPEC
   --refit --force``), which rewrites ``reports/<name>/``; the compile caches are a fresh
   empty folder and the stored scenario records are deleted, so the main job prints what a
   fresh clone's first run does.
2. The README fragments between ``<!-- generated:NAME -->`` and ``<!-- /generated -->`` are
   rewritten: the main job's printed output (abridged), and the sentences that quote its
   numbers, rendered from the ``summary.json`` / ``sensitivity.json`` just written.

``tests/test_readme_numbers.py`` renders the same fragments from the committed reports and
checks that the README holds exactly them.

Usage: .venv/bin/python scripts/regenerate.py [--skip-runs]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SPECS = ("ivig_rm", "ivig_rm_secondary", "ivig_rm_subgroups")
FRAGMENT = re.compile(
    r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S
)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _ci(d: dict[str, float]) -> str:
    return f"{d['median']:.2f} [{d['q025']:.2f}, {d['q975']:.2f}]"


def run_spec(name: str, env: dict[str, str] | None = None) -> str:
    """Run one spec in a fresh process; return what it printed (stdout then stderr)."""
    cmd = [str(Path(sys.executable).with_name("trialsynth")), "run", f"models/{name}.toml"]
    done = subprocess.run(
        [*cmd, "--refit", "--force"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"regenerate: {name} failed (exit {done.returncode}):\n{done.stderr}")
    return done.stderr + done.stdout


def _dots(row: str) -> str:
    """A table row with every cell blank but ``...`` in the first."""
    cells = row.split("│")
    inner = [("   ..." if i == 0 else "").ljust(len(c)) for i, c in enumerate(cells[1:-1])]
    return "│".join([cells[0], *inner, cells[-1]])


def _abridge(printed: str) -> str:
    """The main job's output with the long tables cut (rows kept: the ones the text cites)."""
    out, shrunken, in_sens = [], 0, False
    for line in printed.splitlines():
        if "shrunken OR:" in line:
            shrunken += 1
            if shrunken == 3:
                out.append(_dots(line))
            if shrunken > 2:
                continue
        if line.lstrip().startswith("# |"):
            in_sens = True
            out.append(line)
            continue
        if in_sens and re.match(r"^\s*\d+ \|", line):
            if re.match(r"^\s*0 \|", line) or "drop:Coulam" in line:
                out.append(line)
            elif "  ...  " not in out[-1]:
                out.append("  ...  (rows cut here: every row is in reports/ivig_rm/sensitivity/)")
            continue
        in_sens = in_sens and not line.startswith("power-scaling")
        out.append(line)
    return "\n".join(out)


def fragments(reports: Path, printed: str | None = None) -> dict[str, str]:
    """The README fragments rendered from the reports in ``reports`` (and the run's output)."""
    main = _json(reports / "ivig_rm" / "summary.json")
    sec = _json(reports / "ivig_rm_secondary" / "summary.json")
    rows = _json(reports / "ivig_rm" / "sensitivity" / "sensitivity.json")
    ok = [r for r in rows if r["status"] == "ok"]
    default_baseline = main["priors"]["baseline"]
    p_tau = [
        r["p_mu_gt_0"]
        for r in ok
        if r["settings"]["data"] == "all" and r["settings"]["baseline"] in (None, default_baseline)
    ]
    drop = {
        r["settings"]["data"][5:]: r["p_mu_gt_0"]
        for r in ok
        if r["settings"]["data"].startswith("drop:")
    }
    lowest = min(drop, key=drop.get)
    out = {
        "reading": (
            "Read it this way: with these public counts the posterior probability that IVIg "
            f"raises the odds of live birth is {main['p_mu_gt_0']:.2f}, and "
            f"{main['p_theta_new_gt_0']:.2f} for a future trial; across the heterogeneity "
            f"priors and likelihoods of the sensitivity grid it ranges over "
            f"{min(p_tau):.2f}-{max(p_tau):.2f}, and it moves most when single trials are "
            f"dropped ({drop[lowest]:.2f} without {lowest}).\n"
        ),
        "secondary": (
            f"(pooled OR {_ci(sec['or'])}, P(OR > 1) = {sec['p_mu_gt_0']:.2f} with the default "
            "priors).\n"
        ),
    }
    if printed is not None:
        out["main-output"] = "```text\n" + _abridge(printed).rstrip() + "\n```\n"
    return out


def rewrite_readme(new: dict[str, str]) -> None:
    """Replace each generated fragment of the README that ``new`` has."""
    text = README.read_text(encoding="utf-8")

    def repl(m: re.Match[str]) -> str:
        body = new.get(m.group("name"), m.group("body"))
        return m.group(1) + body + m.group(4)

    README.write_text(FRAGMENT.sub(repl, text), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the specs, then rewrite the README's generated fragments."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-runs", action="store_true", help="only re-render the README")
    args = ap.parse_args(argv)
    printed = None
    if not args.skip_runs:
        # here, not at the top: tests load this file by path, without scripts/ on sys.path
        from _bench import cache_env

        # empty compile caches, shared by the specs: the main job (first) prints the
        # timings a new user's first run shows, whatever this machine compiled before
        with tempfile.TemporaryDirectory(prefix="regenerate-") as caches:
            for name in SPECS:
                # nor any stored scenario (not committed): every scenario is fitted again
                shutil.rmtree(
                    ROOT / "reports" / name / "sensitivity" / "scenarios", ignore_errors=True
                )
                text = run_spec(name, os.environ | cache_env(Path(caches)))
                print(f"regenerate: reports/{name} written", file=sys.stderr)
                if name == "ivig_rm":
                    printed = text
    rewrite_readme(fragments(ROOT / "reports", printed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
