"""Calibration of the default binomial-normal analysis (slow; ``pytest -m slow``).

Runs the same code as ``scripts/calibration.py`` (which can run more replications and
writes ``reports/calibration/``): simulation-based calibration over 200 meta-analyses drawn
from the default priors, and coverage of the 95% CrI of mu over 200 replications under
fixed true (mu, tau). About 5 minutes on an idle 2-core machine.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "calibration.py"
_spec = importlib.util.spec_from_file_location("calibration", SCRIPT)
assert _spec is not None and _spec.loader is not None
calibration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibration)

pytestmark = pytest.mark.slow


@pytest.mark.mcmc
def test_sbc_ranks_are_uniform() -> None:
    # Chi-square test of uniform ranks (10 bins, 200 replications, expected 20 a bin) for
    # mu and for tau, each at level 0.01: a miscalibrated posterior (e.g. a prior in the
    # model that differs from the one simulated from) fails it.
    result = calibration.sbc(200)
    assert result["replications"] == 200
    for name in ("mu", "tau"):
        assert sum(result[name]["counts"]) == 200
        assert result[name]["p"] > calibration.SBC_LEVEL, (name, result[name])


@pytest.mark.parametrize(("mu", "tau"), calibration.SCENARIOS)
@pytest.mark.mcmc
def test_coverage_of_mu(mu: float, tau: float) -> None:
    # Target 93-97% (issue 7). With 200 replications the exact (Clopper-Pearson) 95%
    # interval of the observed coverage is about +-3.5 points; the test fails when that
    # interval misses the target band, i.e. when the miscoverage is more than Monte Carlo
    # error. The point estimates are reported as they are in the README (not tuned).
    result = calibration.coverage(200, mu, tau)
    low, high = result["coverage_ci95"]
    assert high >= 0.93 and low <= 0.97, result
