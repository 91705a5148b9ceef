"""Golden-output harness: a battery of analyses whose every number must not move by accident.

Each case runs a ``trialsynth`` command in this process (``trialsynth.cli.app.main``) and keeps
what it printed as JSON (or a JSON file it wrote), without what legitimately varies between
runs (wall times, versions, paths). ``--record`` writes ``tests/golden/<case>.json``;
``tests/test_golden.py`` reruns the cases and compares every number exactly where the
machine and versions are those recorded (``tests/golden/_env.json``, :func:`environment`).
``--machine`` records the MCMC cases again on another CPU kind with the same versions, in
``tests/golden/machines/<CPU>/``, so that they are compared exactly there too.

Usage: .venv/bin/python scripts/golden.py --record [CASE ...] | --machine
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from trialsynth.engines.compile_cache import PACKAGES, toolchain

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"

#: Keys whose values vary between identical runs (timings, versions, places, dates).
VOLATILE = {
    "wall_s",
    "timings",
    "versions",
    "path",
    "out",
    "folder",
    "created",
    "generated",
    "date",
    "python",
    "figures",
    "files",
    "fit_dir",
    "source_path",
    "cache",
    "compile",
    "seconds",
    "numerics",  # compile form, numba, CPU target: recorded by results, not compared here
}

# (name, argv before the JSON flag, output) -- output "stdout" parses what was printed;
# "file:NAME" reads NAME from the case's --out folder. "{fit:CASE}" is the folder of an
# earlier case's fit. Every MCMC case uses a small, fixed sampler setting.
SMALL = ["--draws", "500", "--tune", "500", "--seed", "7"]
CASES: list[tuple[str, list[str], str, bool]] = [
    # name, argv, output, mcmc
    ("fit_ivig_bn", ["fit", "ivig_rm", "--seed", "20261125"], "stdout", True),
    ("fit_ivig_nn_exact", ["fit", "ivig_rm", "--model", "normal-normal"], "stdout", False),
    (
        "fit_ivig_nn_mcmc",
        ["fit", "ivig_rm", "--model", "normal-normal", "--engine", "mcmc", *SMALL],
        "stdout",
        True,
    ),
    (
        "fit_ivig_nn_both",
        ["fit", "crins2014", "--model", "normal-normal", "--engine", "both", *SMALL],
        "stdout",
        True,
    ),
    ("fit_bcg_ce", ["fit", "bcg", "--model", "common-effect", *SMALL], "stdout", True),
    (
        "fit_ivig_student_t",
        ["fit", "ivig_rm", "--random-effects", "student-t", *SMALL],
        "stdout",
        True,
    ),
    (
        "fit_ivig_nu_prior",
        [
            "fit",
            "crins2014",
            "--model",
            "normal-normal",
            "--random-effects",
            "student-t",
            "--nu-prior",
            "gamma(2, 0.1)",
            *SMALL,
        ],
        "stdout",
        True,
    ),
    (
        "fit_ivig_subgroup_shared",
        ["fit", "ivig_rm", "--subgroup", "population", *SMALL],
        "stdout",
        True,
    ),
    (
        "fit_ivig_subgroup_separate_exact",
        [
            "fit",
            "ivig_rm",
            "--model",
            "normal-normal",
            "--subgroup",
            "population",
            "--subgroup-tau",
            "separate",
        ],
        "stdout",
        False,
    ),
    (
        "fit_bcg_metareg",
        ["fit", "bcg", "--model", "normal-normal", "--covariate", "ablat", *SMALL],
        "stdout",
        True,
    ),
    (
        "fit_bcg_bn_baseline_logistic",
        ["fit", "bcg", "--baseline-prior", "logistic(0, 1)", "--mu-prior", "normal(0, 1)", *SMALL],
        "stdout",
        True,
    ),
]
# The heterogeneity prior forms, each through the exact engine.
for i, tau in enumerate(
    [
        "half-cauchy(0.5)",
        "half-t(3, 0.5)",
        "uniform(0, 4)",
        "log-normal(-1, 1)",
        "exponential(2)",
        "tau2:uniform(0, 4)",
        "tau2:log-normal(-3.52, 1.74)",
        "precision:gamma(0.001, 0.001)",
        "uniform-shrinkage",
        "dumouchel",
        "turner(obstetric, pharm-placebo)",
    ]
):
    CASES.append(
        (
            f"fit_crins_tau{i:02d}",
            ["fit", "crins2014", "--model", "normal-normal", "--tau-prior", tau],
            "stdout",
            False,
        )
    )
CASES += [
    (
        "fit_crins_flat_mu",
        ["fit", "crins2014", "--model", "normal-normal", "--mu-prior", "normal(0, 100)"],
        "stdout",
        False,
    ),
    (
        "query_ivig_bn",
        [
            "query",
            "{fit:fit_ivig_bn}",
            "P(OR > 1)",
            "P(OR < 0.8)",
            "P(0.8 < OR < 1.25)",
            "P(OR_new > 1)",
            "P(OR[Coulam 1995] > 1)",
        ],
        "stdout",
        True,
    ),
    (
        "query_ivig_nn_exact",
        [
            "query",
            "{fit:fit_ivig_nn_exact}",
            "P(OR > 1)",
            "P(OR_new > 1.2)",
            "P(OR[Coulam 1995] > 1)",
        ],
        "stdout",
        False,
    ),
    (
        "query_subgroups",
        ["query", "{fit:fit_ivig_subgroup_separate_exact}", "P(OR[secondary] > OR[primary])"],
        "stdout",
        False,
    ),
    (
        "design_ivig_bn",
        ["design", "{fit:fit_ivig_bn}", "--n-range", "100:500:200", "--sims", "2000"],
        "stdout",
        True,
    ),
    (
        "design_ivig_nn_posterior",
        [
            "design",
            "{fit:fit_ivig_nn_exact}",
            "--n-per-arm",
            "300",
            "--criterion",
            "posterior",
            "--sims",
            "2000",
            "--control-rate",
            "0.5",
        ],
        "stdout",
        False,
    ),
    ("sensitivity_ivig", ["sensitivity", "models/ivig_rm.toml", "--out", "{out}"], "stdout", True),
    (
        "compare_crins",
        ["compare", "crins2014", "--models", "normal,common-effect", *SMALL],
        "stdout",
        True,
    ),
    ("report_ivig_nn", ["report", "{fit:fit_ivig_nn_exact}"], "file:report.json", False),
    (
        "run_ivig_secondary",
        ["run", "models/ivig_rm_secondary.toml", "--out", "{out}"],
        "file:summary.json",
        True,
    ),
]
FIT_CASES = {name for name, argv, _, _ in CASES if argv[0] == "fit"}


#: The recorded environment (written by ``--record``).
ENV_FILE = GOLDEN / "_env.json"
#: Records of the MCMC cases on other CPU kinds with the same versions (``--machine``), one
#: folder per numba CPU name: MCMC draws depend on the CPU, so each kind needs its own.
MACHINES = GOLDEN / "machines"
#: Packages whose compiled code the numbers depend on: the compile cache's toolchain, and scipy.
NUMERIC_PACKAGES = (*PACKAGES, "scipy")


def environment() -> dict[str, Any]:
    """What the recorded numbers depend on besides the code: versions and the CPU.

    The compile cache's toolchain (``compile_cache.toolchain``: the compiled stack's
    versions, Python, the CPU target) plus scipy. The CPU matters even without compiled
    models: numpy picks SIMD code for exp, log and friends and OpenBLAS its kernels by the
    CPU's features, and the results differ in the last bits from one CPU kind to another.
    """
    chain = toolchain({})
    versions = {**chain["versions"], "scipy": metadata.version("scipy")}
    python = versions.pop("python")
    return {"python": python, "versions": versions, "cpu": chain["cpu"]}


def machine_folder(env: dict[str, Any]) -> Path:
    """Where ``--machine`` keeps the MCMC cases recorded on ``env``'s CPU kind."""
    return MACHINES / str(env["cpu"]["cpu_name"])


def record_for(name: str, env: dict[str, Any]) -> Path | None:
    """The record of case ``name`` made exactly on ``env`` (None: none was made there).

    The main record if ``env`` is its environment, else this CPU kind's ``--machine``
    record of an MCMC case, if its environment is ``env``.
    """
    if _recorded_env() == env:
        return GOLDEN / f"{name}.json"
    folder = machine_folder(env)
    env_file, path = folder / "_env.json", folder / f"{name}.json"
    if env_file.exists() and json.loads(env_file.read_text()) == env and path.exists():
        return path
    return None


def without_cpu(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` without its CPU: what a ``--machine`` record shares with the main one."""
    return {k: v for k, v in env.items() if k != "cpu"}


def _check_machine(env: dict[str, Any]) -> str:
    """Why ``--machine`` cannot record here ("" if it can)."""
    main_env = _recorded_env()
    if main_env is None or main_env == env:
        return "this is the main record's machine (or none exists): use --record"
    if without_cpu(main_env) != without_cpu(env):
        return (
            f"Python or package versions differ from the main record ({ENV_FILE.name}); "
            "record every case anew with --record"
        )
    return ""


def _run_cases(names: list[str], env: dict[str, Any], folder: Path | None) -> None:
    """Run ``names``; with a ``folder``, write each output and ``_env.json`` there."""
    work = Path(tempfile.mkdtemp(prefix="golden-"))
    try:
        for name in names:
            result = run_case(name, work)
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
            print(f"{name}: ok", file=sys.stderr)
        if folder is not None:
            (folder / "_env.json").write_text(json.dumps(env, indent=1, sort_keys=True) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def strip(value: Any) -> Any:
    """Drop the volatile keys, recursively."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def _invoke(argv: list[str]) -> tuple[int, str]:
    from trialsynth.cli.app import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


def _parse(text: str) -> Any:
    """One JSON document, or one object a line (``query --json``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _read_later(name: str) -> bool:
    """Whether another case reads this fit's folder (``{fit:NAME}``)."""
    return any(f"{{fit:{name}}}" in argv for _, argv, _, _ in CASES)


def run_case(name: str, work: Path) -> Any:
    """Run one case (and the fits it needs) in ``work``; return its stripped output."""
    spec = {c[0]: c for c in CASES}[name]
    _, argv, output, _ = spec
    out = work / name
    argv = [a.replace("{out}", str(out)) for a in argv]
    for i, a in enumerate(argv):
        if a.startswith("{fit:"):
            dep = a[5:-1]
            if not (work / dep / "summary.json").exists():
                run_case(dep, work)
            argv[i] = str(work / dep)
    if argv[0] == "fit":  # a folder only for the cases that read it (--json is the same)
        argv = [*argv, *(["--out", str(out)] if _read_later(name) else []), "--json"]
    elif output == "stdout":
        argv = [*argv, "--json"]
    code, text = _invoke(argv)
    if code != 0:
        raise RuntimeError(f"{name}: exit {code}: {' '.join(argv)}")
    if output == "stdout":
        result = _parse(text)
    else:
        where = out if argv[0] == "run" else Path(argv[1])
        result = json.loads((where / output[5:]).read_text())
    return strip(result)


def main(argv: list[str] | None = None) -> int:
    """Record (or print) the golden outputs."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    ap.add_argument("--record", action="store_true", help="write tests/golden/*.json")
    ap.add_argument(
        "--machine",
        action="store_true",
        help="record the MCMC cases of this CPU kind in tests/golden/machines/CPU/",
    )
    args = ap.parse_args(argv)
    names = args.cases or [c[0] for c in CASES]
    env = environment()
    if args.machine:
        why = _check_machine(env)
        if why:
            print(f"golden: {why}", file=sys.stderr)
            return 2
        _run_cases([c[0] for c in CASES if c[3]], env, machine_folder(env))
        return 0
    if args.record and args.cases and _recorded_env() not in (None, env):
        print(
            "golden: the other cases were recorded on another machine or versions "
            f"({ENV_FILE.name}); record every case here (no CASE arguments)",
            file=sys.stderr,
        )
        return 2
    _run_cases(names, env, GOLDEN if args.record else None)
    return 0


def _recorded_env() -> dict[str, Any] | None:
    return json.loads(ENV_FILE.read_text()) if ENV_FILE.exists() else None


if __name__ == "__main__":
    raise SystemExit(main())
