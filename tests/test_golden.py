"""Golden outputs: a battery of analyses (scripts/golden.py) reproduces every recorded number.

The recorded files are what these commands printed on one machine with the versions of
requirements-lock.txt; ``tests/golden/_env.json`` says which (package versions and the CPU
kind, :func:`golden.environment`). Where this machine and these versions are the recorded
ones, the comparison is exact (no tolerance): the same code, data, priors, sampler settings
and seed must give the same numbers. Elsewhere, cases without MCMC are compared within
:data:`REL_TOL` (floating-point rounding of another CPU kind, measured below). MCMC cases
are compared exactly with the record of this CPU kind where ``golden.py --machine`` made
one (``tests/golden/machines/<CPU>/``, same versions), and skipped with the reason where
none was made: compiled code may there legitimately give other draws
(``test_committed_reports`` checks the main job within Monte Carlo error instead).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
_spec = importlib.util.spec_from_file_location("golden", ROOT / "scripts" / "golden.py")
golden = importlib.util.module_from_spec(_spec)
sys.modules["golden"] = golden
_spec.loader.exec_module(golden)


#: Numbers computed without MCMC on another CPU kind or other versions are compared to this
#: relative tolerance (absolute near zero) instead of exactly: numpy picks SIMD code for
#: exp, log and friends, and OpenBLAS its kernels, by the CPU, and they round differently in
#: the last bits. Measured between the recording machine (Intel Emerald Rapids) and an AMD
#: Zen 5 with the same versions: at most 2.3e-16 relative on directly computed numbers,
#: 1.9e-15 after the quadrature and the HDI searches, and 2.1e-16 absolute on the
#: quadrature's error estimate (itself about 3e-14). REL_TOL is 500 times the largest of
#: these and far below what a changed model, prior or algorithm moves (1e-6 and more).
REL_TOL, ABS_TOL = 1e-12, 1e-15
RECORDED_ENV = json.loads((GOLDEN / "_env.json").read_text())
MCMC = {name: mcmc for name, _, _, mcmc in golden.CASES}


def _diff(a, b, path="$", *, tol=False):
    """Every place where two JSON values differ, as strings (floats within REL_TOL if tol)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}: keys {sorted(set(a) ^ set(b))}"] if set(a) != set(b) else []
        for k in set(a) & set(b):
            out += _diff(a[k], b[k], f"{path}.{k}", tol=tol)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            extra = [x for x in a if x not in b] + [y for y in b if y not in a]
            return [f"{path}: length {len(a)} != {len(b)} (not in both: {extra!r:.300})"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]", tol=tol)
        ]
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return []
        if tol and math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_diff_finds_a_changed_number():
    assert _diff({"a": [1.0, {"b": 2.0}]}, {"a": [1.0, {"b": 2.0000000001}]}) == [
        "$.a[1].b: 2.0 != 2.0000000001"
    ]


def test_diff_within_rounding_still_finds_a_real_change():
    # a change of 5e-11 (relative) is caught; last-bit rounding (1e-15) and near-zero
    # differences below ABS_TOL are not; integers and strings stay exact
    assert _diff({"a": 2.0}, {"a": 2.0000000001}, tol=True) == ["$.a: 2.0 != 2.0000000001"]
    assert _diff({"a": 0.3877142658942422}, {"a": 0.3877142658942421}, tol=True) == []
    assert _diff({"e": 3.2751e-14}, {"e": 3.2965e-14}, tol=True) == []
    assert sorted(_diff({"n": 8, "s": "x"}, {"n": 9, "s": "y"}, tol=True)) == [
        "$.n: 8 != 9",
        "$.s: 'x' != 'y'",
    ]


def test_recorded_environment_names_what_the_numbers_depend_on():
    assert set(RECORDED_ENV) == set(golden.environment()) == {"python", "versions", "cpu"}
    assert set(RECORDED_ENV["versions"]) == set(golden.NUMERIC_PACKAGES)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("golden")


CASES = [
    pytest.param(name, marks=[pytest.mark.mcmc, pytest.mark.slow] if mcmc else [])
    for name, _, _, mcmc in golden.CASES
]


def _differs(env: dict) -> str:
    """What differs between ``env`` and the recorded environment (empty if nothing)."""
    parts = [
        f"{key}: {RECORDED_ENV[key]} recorded, {env[key]} here"
        for key in sorted(RECORDED_ENV)
        if RECORDED_ENV[key] != env.get(key)
    ]
    return "; ".join(parts)


@pytest.mark.parametrize("name", CASES)
def test_golden(name, work):
    env = golden.environment()
    exact = golden.record_for(name, env)  # made on this very CPU kind and versions
    if MCMC[name] and exact is None:
        pytest.skip(f"MCMC case on another machine or versions ({_differs(env)})")
    path = exact or GOLDEN / f"{name}.json"
    recorded = golden.strip(json.loads(path.read_text()))
    assert _diff(golden.run_case(name, work), recorded, tol=exact is None) == []


def test_machine_records_differ_from_the_main_one_only_in_the_cpu():
    """Each CPU kind's MCMC record (``golden.py --machine``) has the main record's versions
    and every MCMC case, and nothing else: the same code and versions, another CPU."""
    folders = sorted(p for p in golden.MACHINES.glob("*") if p.is_dir())
    mcmc_cases = {name for name, mcmc in MCMC.items() if mcmc}
    for folder in folders:
        env = json.loads((folder / "_env.json").read_text())
        assert env["cpu"]["cpu_name"] == folder.name != RECORDED_ENV["cpu"]["cpu_name"]
        assert golden.without_cpu(env) == golden.without_cpu(RECORDED_ENV)
        assert {p.stem for p in folder.glob("*.json")} - {"_env"} == mcmc_cases
