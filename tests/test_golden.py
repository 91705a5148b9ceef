"""Golden outputs: a battery of analyses (scripts/golden.py) reproduces every recorded number.

The recorded files are what these commands printed on this project's machines with the
versions of requirements-lock.txt. The comparison is exact (no tolerance): the same code,
data, priors, sampler settings and seed must give the same numbers. MCMC cases are compared
exactly only where the machine and versions match those recorded (``tests/golden/_env.json``);
elsewhere they are skipped with the reason (floating-point results of compiled code may
legitimately differ across CPUs and library versions).
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


def _diff(a, b, path="$"):
    """Every place where two JSON values differ (exactly), as strings."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}: keys {sorted(set(a) ^ set(b))}"] if set(a) != set(b) else []
        for k in set(a) & set(b):
            out += _diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            extra = [x for x in a if x not in b] + [y for y in b if y not in a]
            return [f"{path}: length {len(a)} != {len(b)} (not in both: {extra!r:.300})"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_diff_finds_a_changed_number():
    assert _diff({"a": [1.0, {"b": 2.0}]}, {"a": [1.0, {"b": 2.0000000001}]}) == [
        "$.a[1].b: 2.0 != 2.0000000001"
    ]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("golden")


CASES = [
    pytest.param(name, marks=[pytest.mark.mcmc, pytest.mark.slow] if mcmc else [])
    for name, _, _, mcmc in golden.CASES
]


@pytest.mark.parametrize("name", CASES)
def test_golden(name, work):
    recorded = golden.strip(json.loads((GOLDEN / f"{name}.json").read_text()))
    assert _diff(golden.run_case(name, work), recorded) == []
