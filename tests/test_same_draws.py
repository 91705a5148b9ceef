"""One analysis, one set of draws: every path, fresh processes, cold and warm caches.

Each case runs in a fresh Python process with its own compile cache
(``TRIALSYNTH_CACHE_DIR``), pytensor compiledir and numba cache folder, all temporary. The
draws of mu, tau, theta and alpha are hashed, and the hashes must be equal: bit-identical
draws (issue 11). Paths: the Python API, ``trialsynth fit``, ``trialsynth run``,
``fit --from``, a process that first compiled other structures, a damaged cache entry and
two processes compiling at once. About 5 minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.mcmc, pytest.mark.slow]

#: Small draws: the compile (what is under test) dominates; the numbers need not converge.
DRAWS, TUNE, SEED = 300, 300, 20261125

PROBE = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import load
    from trialsynth.engines import mcmc
    from trialsynth.models.spec import ModelSpec
    from trialsynth.priors.prior import PriorSet
    from trialsynth.results.fitting import fit

    mode, out = sys.argv[1], sys.argv[2]
    S = SamplerSettings(draws={draws}, tune={tune}, seed={seed})

    def digest(tree):
        post = tree["posterior"]
        h = hashlib.sha256()
        for v in ("mu", "tau", "theta", "alpha"):
            h.update(np.ascontiguousarray(post[v].values).tobytes())
        return h.hexdigest()

    notices, status, summary = [], None, None
    if mode == "api" or mode == "api-after-others":
        if mode == "api-after-others":
            # another structure, then this structure compiled with other values
            # (a tau prior of another scale), then the fit: with_data must not show
            for tau in ("half-cauchy(0.5)", "half-normal(1)"):
                fit(load("ivig_rm"), priors=PriorSet.from_strings(tau=tau), settings=S,
                    engine="mcmc")
        from trialsynth.models.problem import Problem
        problem = Problem.build(load("ivig_rm"), None, None)
        res = fit(problem.data, settings=S, engine="mcmc")
        status = mcmc.compile_report(problem.spec, problem.data, problem.priors).status
        tree, notices = res.tree, res.provenance["notices"]
        summary = res.summary()
    else:  # a CLI command (--json: its output is kept); its --out folder holds posterior.nc
        import contextlib, io
        from trialsynth.cli import main
        from trialsynth.results.base import FitResult
        argv, buf = json.loads(sys.argv[3]), io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(argv) == 0
        summary = json.loads(buf.getvalue()) if "--json" in argv else None
        tree = None if mode == "cli-json" else FitResult.load(out).tree
    shown = buf.getvalue() if mode.startswith("cli") else ""
    print(json.dumps({{"sha": tree and digest(tree), "status": status, "notices": notices,
                      "summary": summary, "stdout": shown}}))
    """
).format(draws=DRAWS, tune=TUNE, seed=SEED)


def _probe(
    tmp: Path,
    mode: str,
    cache: Path,
    argv: list[str] | None = None,
    out: Path | None = None,
    wait: bool = True,
):
    env = dict(os.environ)
    env.update(
        TRIALSYNTH_CACHE_DIR=str(cache / "trialsynth"),
        PYTENSOR_FLAGS=f"base_compiledir={cache / 'pytensor'}",
        NUMBA_CACHE_DIR=str(cache / "numba"),
    )
    out = out or tmp / f"out-{mode}"
    cmd = [sys.executable, "-c", PROBE, mode, str(out), json.dumps(argv or [])]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return _result(proc) if wait else proc


def _result(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """One cold process, then the cache it filled (shared by the warm cases)."""
    tmp = tmp_path_factory.mktemp("draws")
    cache = tmp / "cache"
    cold = _probe(tmp, "api", cache)
    return tmp, cache, cold


def test_cold_then_warm_process(warm):
    tmp, cache, cold = warm
    assert cold["status"] == "miss"
    again = _probe(tmp, "api", cache)
    assert again["status"] == "hit"
    assert again["sha"] == cold["sha"]


def test_cli_fit_run_and_fit_from_give_the_same_draws(warm):
    tmp, cache, cold = warm
    small = ["--draws", str(DRAWS), "--tune", str(TUNE), "--seed", str(SEED)]
    fit_dir = tmp / "fit"
    got = _probe(tmp, "cli", cache, ["fit", "ivig_rm", *small, "--out", str(fit_dir)], fit_dir)
    assert got["sha"] == cold["sha"], "trialsynth fit"
    spec = tmp / "ivig.toml"
    spec.write_text(
        '[analysis]\nname = "ivig"\n[data]\nsource = "ivig_rm"\n'
        '[model]\nmodel = "binomial-normal"\n'
        f"[sampler]\ndraws = {DRAWS}\ntune = {TUNE}\nseed = {SEED}\n"
    )
    run_dir = tmp / "run"
    got = _probe(tmp, "cli", cache, ["run", str(spec), "--out", str(run_dir)], run_dir)
    assert got["sha"] == cold["sha"], "trialsynth run"
    redo_dir = tmp / "redo"
    argv = ["fit", "--from", str(fit_dir), "--out", str(redo_dir)]
    assert _probe(tmp, "cli", cache, argv, redo_dir)["sha"] == cold["sha"], "fit --from"


def test_sensitivity_main_scenario_is_the_fit(warm):
    """The grid's scenario with the analysis's own settings reports the fit's numbers."""
    tmp, cache, cold = warm
    spec = tmp / "grid.toml"
    spec.write_text(
        '[analysis]\nname = "grid"\n[data]\nsource = "ivig_rm"\n'
        '[model]\nmodel = "binomial-normal"\n'
        f"[sampler]\ndraws = {DRAWS}\ntune = {TUNE}\nseed = {SEED}\n"
        '[sensitivity]\ntau = ["half-normal(1)", "half-normal(0.5)"]\n'
    )
    argv = ["sensitivity", str(spec), "--out", str(tmp / "grid"), "--json"]
    rows = _probe(tmp, "cli-json", cache, argv)["summary"]
    (main,) = [r for r in rows if r["priors"]["tau"] == "half-normal(0.5)"]
    for key in ("or", "or_new", "tau", "p_mu_gt_0", "p_theta_new_gt_0"):
        assert main[key] == cold["summary"][key], key


def test_other_structures_compiled_first(warm):
    tmp, cache, cold = warm
    assert _probe(tmp, "api-after-others", cache)["sha"] == cold["sha"]


def test_damaged_entry_is_compiled_again_reported_and_gives_the_same_draws(warm):
    tmp, cache, cold = warm
    damaged_cache = tmp / "damaged"
    shutil.copytree(cache, damaged_cache)
    wrappers = list(damaged_cache.glob("trialsynth/mcmc/*/numba/*trialsynth_nutpie_logp*.nbc"))
    assert wrappers
    for wrapper in wrappers:  # one bit flipped in the middle of each compiled logp wrapper
        blob = bytearray(wrapper.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        wrapper.write_bytes(bytes(blob))
    got = _probe(tmp, "api", damaged_cache)
    assert got["status"] == "damaged"
    assert any(f"{len(wrappers)} damaged file(s)" in n for n in got["notices"]), got["notices"]
    assert got["sha"] == cold["sha"]
    assert _probe(tmp, "api", damaged_cache)["status"] == "hit"


def test_two_processes_compiling_at_once(warm, tmp_path):
    _, _, cold = warm
    cache = tmp_path / "cache"
    procs = [_probe(tmp_path, "api", cache, out=tmp_path / f"o{i}", wait=False) for i in (1, 2)]
    got = [_result(p) for p in procs]
    assert [g["sha"] for g in got] == [cold["sha"]] * 2
    # the second waited for the first's lock, then loaded what it wrote
    assert sorted(g["status"] for g in got) == ["hit", "miss"]


def test_run_compiles_and_fits_the_other_scenarios_beside_the_main_fit(tmp_path):
    """`run` compiles and fits the grid's other scenarios in a second process, same numbers.

    The `logistic(0, 1)` baseline is another compiled structure than the main fit's, and the
    normal-normal scenario is exact. With empty caches `run` compiles the first in a second
    process while the main fit compiles (their compile intervals in the manifest overlap),
    and that process fits both (`run` says so); every scenario's numbers equal those of
    `trialsynth sensitivity` with its own empty caches, which fits them all in-process.
    """
    spec = tmp_path / "baseline.toml"
    spec.write_text(
        '[analysis]\nname = "baseline"\n[data]\nsource = "ivig_rm"\n'
        '[model]\nmodel = "binomial-normal"\n'
        f"[sampler]\ndraws = {DRAWS}\ntune = {TUNE}\nseed = {SEED}\n"
        '[sensitivity]\nbaseline = ["normal(0, 5)", "logistic(0, 1)"]\n'
        '[[sensitivity.also]]\nmodel = "normal-normal"\n'
    )
    run_cache, sens_cache = tmp_path / "run-cache", tmp_path / "sens-cache"
    argv = ["run", str(spec), "--out", str(tmp_path / "run")]
    shown = _probe(tmp_path, "cli", run_cache, argv, tmp_path / "run")["stdout"]
    assert "3 scenario(s) fitted (1 the main fit; 2 in a second process), 0 reused" in shown
    argv = ["sensitivity", str(spec), "--out", str(tmp_path / "sens"), "--json"]
    rows = _probe(tmp_path, "cli-json", sens_cache, argv)["summary"]
    ran = json.loads((tmp_path / "run" / "sensitivity" / "sensitivity.json").read_text())
    ran = ran["rows"] if isinstance(ran, dict) else ran
    keys = ("label", "engine", "or", "or_new", "tau", "p_mu_gt_0", "p_theta_new_gt_0")
    assert [[r[k] for k in keys] for r in ran] == [[r[k] for k in keys] for r in rows]
    assert [r["engine"] for r in rows] == ["mcmc", "mcmc", "exact"]
    (manifest,) = run_cache.glob("trialsynth/mcmc/*/manifest.json")
    models = json.loads(manifest.read_text())["models"].values()
    spans = sorted((m["compiled_at"] - m["compile_s"], m["compiled_at"]) for m in models)
    assert len(spans) == 2 and spans[1][0] < spans[0][1], spans
