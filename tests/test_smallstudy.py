"""Egger's and Peters' tests against an independent least-squares fit (numpy.polyfit)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from trialsynth.core.smallstudy import SmallStudyError, egger_test, peters_test

Y = np.array([-0.3112, 0.9933, 1.1391, -0.5729, -0.098, 0.0, 0.3159, 0.1911])
SE = np.array([0.524, 0.7207, 0.5338, 0.6798, 0.7586, 0.5281, 0.619, 0.4428])
# ivig_rm counts (the 8 trials with counts), for Peters' test
A = np.array([20, 9, 18, 15, 17, 13, 16, 23.0])
N1 = np.array([33, 17, 29, 22, 22, 29, 23, 42.0])
C = np.array([21, 5, 11, 19, 15, 13, 15, 20.0])
N2 = np.array([31, 17, 32, 24, 19, 29, 24, 40.0])
RTOL = 1e-8  # two least-squares solvers on the same 8 rows: rounding only


def test_egger_matches_polyfit() -> None:
    res = egger_test(Y, SE)
    coef, cov = np.polyfit(1 / SE, Y / SE, 1, cov="unscaled")
    resid = Y / SE - np.polyval(coef, 1 / SE)
    s2 = resid @ resid / (Y.size - 2)
    se = np.sqrt(s2 * cov[1, 1])
    assert res.estimate == pytest.approx(coef[1], rel=RTOL)
    assert res.se == pytest.approx(se, rel=RTOL)
    assert res.p == pytest.approx(2 * stats.t.sf(abs(coef[1] / se), Y.size - 2), rel=RTOL)
    assert res.df == 6 and res.k == 8


def test_peters_matches_weighted_polyfit() -> None:
    res = peters_test(A, N1, C, N2)
    n = N1 + N2
    w = (A + C) * (n - A - C) / n
    lor = np.log(A * (N2 - C) / ((N1 - A) * C))
    coef = np.polyfit(1 / n, lor, 1, w=np.sqrt(w))  # polyfit weights multiply residuals
    assert res.estimate == pytest.approx(coef[0], rel=RTOL)


def test_peters_continuity_correction_only_for_zero_cells() -> None:
    a = A.copy()
    a[0] = 0.0
    res = peters_test(a, N1, C, N2)
    assert np.isfinite(res.estimate)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: egger_test(Y[:2], SE[:2]), "egger's test needs at least 3 trials, got 2"),
        (lambda: egger_test(Y, -SE), "positive standard errors"),
        (lambda: peters_test(A * 0, N1, C * 0, N2), "events and non-events in every trial"),
    ],
)
def test_bad_input_is_a_one_line_error(call, message) -> None:
    with pytest.raises(SmallStudyError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
