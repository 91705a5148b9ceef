"""Tests of the classical meta-analysis estimators in ``trialsynth.core.frequentist``.

Golden numbers come from published sources (named beside each one, and in
``tests/REFERENCES.md``); everything else is checked against independent computations
written out in this file (brute-force likelihood maximisation, textbook formulas).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from trialsynth.core import frequentist as fq
from trialsynth.core.effects import log_odds_ratios

DATASETS = Path(__file__).resolve().parents[1] / "src" / "trialsynth" / "data" / "datasets"


def _read(name: str) -> list[dict[str, str]]:
    with open(DATASETS / name, newline="") as fh:
        return list(csv.DictReader(fh))


def _ints(rows: list[dict[str, str]], col: str) -> np.ndarray:
    return np.array([int(r[col]) for r in rows])


@pytest.fixture(scope="module")
def bcg() -> tuple[np.ndarray, ...]:
    # tpos/tneg: vaccinated cases/non-cases; cpos/cneg: control. n = pos + neg.
    rows = _read("bcg.csv")
    tpos, tneg, cpos, cneg = (_ints(rows, c) for c in ("tpos", "tneg", "cpos", "cneg"))
    return tpos, tpos + tneg, cpos, cpos + cneg


@pytest.fixture(scope="module")
def crins() -> tuple[np.ndarray, ...]:
    rows = _read("crins2014.csv")
    return tuple(
        _ints(rows, c) for c in ("exp_AR_events", "exp_total", "cont_AR_events", "cont_total")
    )


@pytest.fixture(scope="module")
def ivig_secondary() -> tuple[np.ndarray, ...]:
    rows = _read("ivig_rm_secondary.csv")
    return tuple(_ints(rows, c) for c in ("events_t", "n_t", "events_c", "n_c"))


def _subset(counts: tuple[np.ndarray, ...], idx: list[int]) -> tuple[np.ndarray, ...]:
    return tuple(c[idx] for c in counts)


# --------------------------------------------------------------------------- golden numbers


def test_bcg_mantel_haenszel(bcg):
    # metafor dat.bcg, rma.mh(measure="OR"): OR 0.622874 (shared/data/validation/README.md).
    # Published to 6 decimals; 1e-5 leaves room for the last printed digit only.
    res = fq.mantel_haenszel(*bcg)
    assert res.odds_ratio == pytest.approx(0.622874, abs=1e-5)
    assert res.to_dict()["or"] == pytest.approx(0.622874, abs=1e-5)


def test_bcg_dersimonian_laird(bcg):
    # metafor dat.bcg, rma(measure="OR", method="DL"): log OR -0.7474 (se 0.1923),
    # tau^2 0.3663 (shared/data/validation/README.md). Published to 4 decimals -> 5e-5.
    lor = log_odds_ratios(*bcg)
    res = fq.random_effects(lor.y, lor.se, method="DL")
    assert res.estimate == pytest.approx(-0.7474, abs=5e-5)
    assert res.se == pytest.approx(0.1923, abs=5e-5)
    assert res.tau2 == pytest.approx(0.3663, abs=5e-5)
    summary = fq.classical_summary(*bcg)
    assert summary["dl"]["estimate"] == pytest.approx(-0.7474, abs=5e-5)


def test_crins_reml(crins):
    # Roever C (2020) J Stat Softw 93(6), section 3.5 (metafor rma(method="REML") on
    # CrinsEtAl2014, Gras 2008 corrected with 0.5 in every cell): mu -1.591513,
    # se 0.3340882, tau 0.4670268. Tolerance 1e-6: metafor stops Fisher scoring when tau^2
    # changes by < 1e-5, so its printed tau can differ from the exact optimum (used here)
    # in the 7th decimal; observed differences are below 1e-7.
    lor = log_odds_ratios(*crins)
    assert lor.corrected.tolist() == [False] * 5 + [True]  # only Gras 2008
    res = fq.random_effects(lor.y, lor.se, method="REML")
    assert res.estimate == pytest.approx(-1.591513, abs=1e-6)
    assert res.se == pytest.approx(0.3340882, abs=1e-6)
    assert res.tau == pytest.approx(0.4670268, abs=1e-6)


@pytest.mark.parametrize(
    ("rows", "expected", "source"),
    [
        # Stephenson 1998 + Jablonowska 1999 (secondary rows) + Stephenson 2010:
        # published common OR 1.44 (0.59-3.48), Stephenson et al., Hum Reprod 2010 abstract.
        ([1, 2, 3], (1.44, 0.59, 3.48), "Stephenson 2010 pooled"),
        # Stephenson 2010 alone, 16/23 vs 15/24: OR 1.37 (0.41-4.61), same abstract.
        ([3], (1.37, 0.41, 4.61), "Stephenson 2010 alone"),
        # shared/data/ivig_rm/README.md: review-era rows (first three) about 2.66 (1.12-6.35).
        ([0, 1, 2], (2.66, 1.12, 6.35), "review-era rows"),
        # shared/data/ivig_rm/README.md: all five rows about 1.70 (0.99-2.93).
        ([0, 1, 2, 3, 4], (1.70, 0.99, 2.93), "all secondary rows"),
    ],
)
def test_ivig_mantel_haenszel(ivig_secondary, rows, expected, source):
    # Published to two decimals: compare after rounding to two decimals.
    d = fq.mantel_haenszel(*_subset(ivig_secondary, rows)).to_dict()
    got = (round(d["or"], 2), round(d["lower"], 2), round(d["upper"], 2))
    assert got == expected, source


# --------------------------------------------------------------------------- independent checks


def _reml_negll_matrix(y: np.ndarray, v: np.ndarray, tau2: float) -> float:
    """-2 x restricted log-likelihood written in matrix form (Harville 1977), no shortcuts."""
    k = y.size
    x = np.ones((k, 1))
    vinv = np.diag(1 / (v + tau2))
    xtvx = x.T @ vinv @ x
    p = vinv - vinv @ x @ np.linalg.inv(xtvx) @ x.T @ vinv
    return float(
        np.log(v + tau2).sum()
        + np.log(np.linalg.det(xtvx))
        + y @ p @ y
        + (k - 1) * np.log(2 * np.pi)
    )


def _ml_negll(y: np.ndarray, v: np.ndarray, tau2: float) -> float:
    w = 1 / (v + tau2)
    mu = (w * y).sum() / w.sum()
    return float(np.log(v + tau2).sum() + (w * (y - mu) ** 2).sum())


def _brute_force_max(negll, upper: float) -> float:
    grid = np.linspace(0, upper, 4001)
    vals = np.array([negll(t) for t in grid])
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    if i == 0 and vals[0] <= vals[1]:
        return 0.0
    return float(
        optimize.minimize_scalar(
            negll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}
        ).x
    )


HOMOGENEOUS = (np.array([0.10, 0.12, 0.08, 0.11]), np.array([0.3, 0.4, 0.35, 0.5]))


@pytest.mark.parametrize("data", ["crins", "bcg", "homogeneous"])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_likelihood_estimators_maximise_likelihood(data, method, request):
    if data == "homogeneous":
        y, se = HOMOGENEOUS
    else:
        lor = log_odds_ratios(*request.getfixturevalue(data))
        y, se = lor.y, lor.se
    v = se**2

    def negll(t: float) -> float:
        return _reml_negll_matrix(y, v, t) if method == "REML" else _ml_negll(y, v, t)

    expected = _brute_force_max(negll, upper=3 * float(np.var(y, ddof=1)) + 0.1)
    res = fq.random_effects(y, se, method=method)
    # The optimum is flat: 1e-6 in tau^2 is far below any printed precision.
    assert res.tau2 == pytest.approx(expected, abs=1e-6)
    assert negll(res.tau2) <= negll(expected) + 1e-10
    if data == "homogeneous":
        assert res.tau2 == 0.0


def test_restricted_loglik_matches_matrix_form(crins):
    lor = log_odds_ratios(*crins)
    v = lor.se**2
    for t in (0.0, 0.1, 0.5, 2.0):
        const = (lor.y.size - 1) * np.log(2 * np.pi)
        assert -2 * fq.restricted_loglik(lor.y, lor.se, t) + const == pytest.approx(
            _reml_negll_matrix(lor.y, v, t), rel=1e-10
        )


def test_grid_search_agrees_with_fisher_scoring(bcg):
    lor = log_odds_ratios(*bcg)
    v = lor.se**2
    for method in ("REML", "ML"):
        assert fq._tau2_grid(lor.y, v, method) == pytest.approx(
            fq._tau2_scoring(lor.y, v, method), abs=1e-8
        )


# A bimodal restricted likelihood (found by random search): Fisher scoring from the DL start
# stops at a local maximum near tau^2 = 1.24, the global maximum is at the boundary 0.
BIMODAL = (np.array([0.8, 0.8, 0.1, -4.1]), np.array([0.5, 0.5, 1.4, 1.8]))


def test_reml_returns_global_maximum_when_bimodal():
    y, se = BIMODAL
    v = se**2
    local = fq._tau2_scoring(y, v, "REML")
    assert local is not None and local > 1  # the premise: scoring alone is fooled

    def negll(t: float) -> float:
        return _reml_negll_matrix(y, v, t)

    assert negll(0.0) < negll(local)
    expected = _brute_force_max(negll, upper=20.0)
    res = fq.random_effects(y, se, method="REML")
    assert res.tau2 == pytest.approx(expected, abs=1e-6)
    assert res.tau2 == 0.0


def test_dl_truncates_at_zero_when_q_below_df():
    y, se = HOMOGENEOUS
    w = 1 / se**2
    mu_fe = (w * y).sum() / w.sum()
    q = (w * (y - mu_fe) ** 2).sum()
    assert q < y.size - 1  # the premise of the test
    res = fq.random_effects(y, se, method="DL")
    assert res.tau2 == 0.0
    assert res.i2 == 0.0
    assert res.h2 == pytest.approx(1.0)
    assert res.q == pytest.approx(q, rel=1e-12)
    assert res.estimate == pytest.approx(mu_fe, rel=1e-12)
    assert res.se == pytest.approx(1 / math.sqrt(w.sum()), rel=1e-12)


def test_dl_formula_and_i2(bcg, crins):
    for counts in (bcg, crins):
        lor = log_odds_ratios(*counts)
        w = 1 / lor.se**2
        mu_fe = (w * lor.y).sum() / w.sum()
        q = (w * (lor.y - mu_fe) ** 2).sum()
        df = lor.y.size - 1
        tau2 = max(0.0, (q - df) / (w.sum() - (w**2).sum() / w.sum()))
        res = fq.random_effects(lor.y, lor.se, method="DL")
        assert res.tau2 == pytest.approx(tau2, rel=1e-12)
        assert res.q_df == df
        assert res.q_pval == pytest.approx(stats.chi2.sf(q, df), rel=1e-10)
        assert res.i2 == pytest.approx(100 * max(0.0, (q - df) / q), rel=1e-10)
        assert res.h2 == pytest.approx(q / df if q > df else 1.0, rel=1e-10)


@pytest.mark.parametrize("data", ["crins", "bcg"])
def test_paule_mandel_solves_generalised_q(data, request):
    lor = log_odds_ratios(*request.getfixturevalue(data))
    res = fq.random_effects(lor.y, lor.se, method="PM")
    w = 1 / (lor.se**2 + res.tau2)
    mu = (w * lor.y).sum() / w.sum()
    assert res.tau2 > 0
    assert (w * (lor.y - mu) ** 2).sum() == pytest.approx(lor.y.size - 1, rel=1e-9)
    assert res.estimate == pytest.approx(mu, rel=1e-12)


def test_paule_mandel_zero_when_homogeneous():
    assert fq.random_effects(*HOMOGENEOUS, method="PM").tau2 == 0.0


def test_hartung_knapp_and_prediction_intervals(crins):
    lor = log_odds_ratios(*crins)
    y, se = lor.y, lor.se
    k = y.size
    plain = fq.random_effects(y, se, method="DL")
    hk = fq.random_effects(y, se, method="DL", hartung_knapp=True)
    hts = fq.random_effects(y, se, method="DL", prediction="hts")
    w = 1 / (se**2 + plain.tau2)
    mu = (w * y).sum() / w.sum()
    se_hk = math.sqrt((w * (y - mu) ** 2).sum() / ((k - 1) * w.sum()))
    t1, t2, z = stats.t.ppf(0.975, k - 1), stats.t.ppf(0.975, k - 2), stats.norm.ppf(0.975)
    assert hk.tau2 == plain.tau2
    assert hk.estimate == pytest.approx(plain.estimate, rel=1e-12)
    assert hk.se == pytest.approx(se_hk, rel=1e-10)
    assert (hk.dist, hk.df) == ("t", k - 1)
    assert hk.ci_upper - hk.estimate == pytest.approx(t1 * se_hk, rel=1e-9)
    assert hk.pval == pytest.approx(2 * stats.t.sf(abs(mu / se_hk), k - 1), rel=1e-9)
    # metafor predict(): mu +- z sqrt(se^2 + tau2); with HK, t_{k-1} and the HK se.
    half = z * math.sqrt(plain.se**2 + plain.tau2)
    assert (plain.pi_lower, plain.pi_upper) == pytest.approx((mu - half, mu + half), rel=1e-9)
    half_hk = t1 * math.sqrt(se_hk**2 + plain.tau2)
    assert hk.pi_upper == pytest.approx(mu + half_hk, rel=1e-9)
    # Higgins-Thompson-Spiegelhalter: t_{k-2}.
    assert hts.pi_upper == pytest.approx(mu + t2 * math.sqrt(plain.se**2 + plain.tau2), rel=1e-9)
    assert hts.ci_upper == plain.ci_upper


def test_hts_prediction_undefined_for_two_trials():
    res = fq.random_effects([0.1, 0.5], [0.2, 0.3], method="DL", prediction="hts")
    assert math.isnan(res.pi_lower)
    assert res.to_dict()["pi_lower"] is None


def test_peto_matches_textbook_2x2():
    # 12/50 vs 20/50: O = 12, E = 50 * 32 / 100 = 16,
    # V = 50 * 50 * 32 * 68 / (100^2 * 99) = 5.4949...; log OR = (O - E) / V, se = 1/sqrt(V).
    v = 50 * 50 * 32 * 68 / (100**2 * 99)
    res = fq.peto([12], [50], [20], [50])
    assert res.estimate == pytest.approx(-4 / v, rel=1e-12)
    assert res.se == pytest.approx(1 / math.sqrt(v), rel=1e-12)
    assert res.estimate == pytest.approx(-0.727941, abs=1e-6)  # -4 / 5.494949...
    assert res.q == pytest.approx(0.0, abs=1e-12)


def test_peto_two_tables_and_heterogeneity():
    # Second table 5/40 vs 5/40: O - E = 0. Peto pools (O - E) and V over tables.
    v1 = 50 * 50 * 32 * 68 / (100**2 * 99)
    v2 = 40 * 40 * 10 * 70 / (80**2 * 79)
    res = fq.peto([12, 5], [50, 40], [20, 5], [50, 40])
    assert res.estimate == pytest.approx(-4 / (v1 + v2), rel=1e-12)
    assert res.q == pytest.approx(16 / v1 - 16 / (v1 + v2), rel=1e-10)
    assert res.q_df == 1


def test_mh_single_table_is_woolf():
    a, b, c, d = 16, 7, 15, 9
    res = fq.mantel_haenszel([a], [a + b], [c], [c + d])
    assert res.estimate == pytest.approx(math.log(a * d / (b * c)), rel=1e-12)
    assert res.se == pytest.approx(math.sqrt(1 / a + 1 / b + 1 / c + 1 / d), rel=1e-12)


@given(
    a=st.integers(1, 60),
    b=st.integers(1, 60),
    c=st.integers(1, 60),
    d=st.integers(1, 60),
    k=st.integers(1, 8),
)
def test_mh_identical_trials_equal_single_trial_or(a, b, c, d, k):
    res = fq.mantel_haenszel([a] * k, [a + b] * k, [c] * k, [c + d] * k)
    assert res.estimate == pytest.approx(math.log(a * d / (b * c)), rel=1e-10, abs=1e-12)
    # k identical strata: RBG variance is the single-table (Woolf) variance / k.
    woolf = 1 / a + 1 / b + 1 / c + 1 / d
    assert res.se == pytest.approx(math.sqrt(woolf / k), rel=1e-10)


def test_mh_and_peto_ignore_double_zero_trials(ivig_secondary):
    et, nt, ec, nc = ivig_secondary
    base_mh, base_peto = fq.mantel_haenszel(et, nt, ec, nc), fq.peto(et, nt, ec, nc)
    for extra_e in (0, 30):  # no events, or only events, in both arms of a 30 v 30 trial
        args = (
            np.append(et, extra_e),
            np.append(nt, 30),
            np.append(ec, extra_e),
            np.append(nc, 30),
        )
        assert fq.mantel_haenszel(*args).estimate == pytest.approx(base_mh.estimate, rel=1e-12)
        assert fq.mantel_haenszel(*args).se == pytest.approx(base_mh.se, rel=1e-12)
        assert fq.peto(*args).estimate == pytest.approx(base_peto.estimate, rel=1e-12)
        assert fq.peto(*args).q == pytest.approx(base_peto.q, rel=1e-10)


def test_inverse_variance_formula(crins):
    lor = log_odds_ratios(*crins)
    w = 1 / lor.se**2
    res = fq.inverse_variance(lor.y, lor.se)
    assert res.estimate == pytest.approx((w * lor.y).sum() / w.sum(), rel=1e-12)
    assert res.se == pytest.approx(w.sum() ** -0.5, rel=1e-12)
    assert res.ci_lower == pytest.approx(res.estimate - stats.norm.ppf(0.975) * res.se)
    assert res.q_df == lor.y.size - 1


def test_level_changes_interval_width(crins):
    lor = log_odds_ratios(*crins)
    r90 = fq.random_effects(lor.y, lor.se, level=0.90)
    r95 = fq.random_effects(lor.y, lor.se, level=0.95)
    ratio = (r90.ci_upper - r90.estimate) / (r95.ci_upper - r95.estimate)
    assert ratio == pytest.approx(stats.norm.ppf(0.95) / stats.norm.ppf(0.975), rel=1e-10)


# --------------------------------------------------------------------------- properties


counts_strategy = st.integers(2, 8).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(5, 200), min_size=k, max_size=k),
        st.lists(st.integers(5, 200), min_size=k, max_size=k),
        st.lists(st.floats(0, 1), min_size=k, max_size=k),
        st.lists(st.floats(0, 1), min_size=k, max_size=k),
        st.permutations(list(range(k))),
    )
)


def _all_estimates(et, nt, ec, nc) -> list[float]:
    lor = log_odds_ratios(et, nt, ec, nc)
    out = []
    for res in (
        fq.mantel_haenszel(et, nt, ec, nc),
        fq.peto(et, nt, ec, nc),
        fq.inverse_variance(lor.y, lor.se),
    ):
        out += [res.estimate, res.se]
    for method in fq.RE_METHODS:
        for hk in (False, True):
            res = fq.random_effects(lor.y, lor.se, method=method, hartung_knapp=hk)
            out += [res.estimate, res.se, res.tau2, res.q, res.i2, res.pi_lower, res.pi_upper]
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(counts_strategy)
def test_permuting_trials_changes_nothing(data):
    nt, nc, pt, pc, perm = data
    nt, nc = np.array(nt), np.array(nc)
    et = np.floor(np.array(pt) * nt).astype(int)
    ec = np.floor(np.array(pc) * nc).astype(int)
    a, b, c, d = et, nt - et, ec, nc - ec
    if (a * d).sum() == 0 or (b * c).sum() == 0:
        with pytest.raises(ValueError):
            fq.mantel_haenszel(et, nt, ec, nc)
        return
    base = _all_estimates(et, nt, ec, nc)
    perm = np.array(perm)
    shuffled = _all_estimates(et[perm], nt[perm], ec[perm], nc[perm])
    # Only floating-point summation order differs (and the 1e-12 tau^2 stopping rule).
    assert shuffled == pytest.approx(base, rel=1e-7, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 10).flatmap(
        lambda k: st.tuples(
            st.lists(st.floats(-3, 3), min_size=k, max_size=k),
            st.lists(st.floats(0.05, 2), min_size=k, max_size=k),
        )
    )
)
def test_random_effects_invariants(data):
    y, se = np.array(data[0]), np.array(data[1])
    for method in fq.RE_METHODS:
        res = fq.random_effects(y, se, method=method)
        assert res.tau2 >= 0
        assert 0 <= res.i2 < 100
        assert res.ci_lower <= res.estimate <= res.ci_upper
        assert res.pi_lower <= res.ci_lower + 1e-12 and res.pi_upper >= res.ci_upper - 1e-12
        assert y.min() - 1e-9 <= res.estimate <= y.max() + 1e-9
    # REML tau^2 is a maximiser of the restricted likelihood over tau^2 >= 0.
    reml = fq.random_effects(y, se, method="REML").tau2
    ll = fq.restricted_loglik(y, se, reml)
    for t in (0.0, reml * 0.9, reml * 1.1 + 1e-6, reml + 0.5):
        assert fq.restricted_loglik(y, se, t) <= ll + 1e-9


# --------------------------------------------------------------------------- API behaviour


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Valid methods: \['DL', 'REML', 'ML', 'PM'\]"):
        fq.random_effects([0.1, 0.2], [0.1, 0.1], method="reml")
    with pytest.raises(ValueError, match="Valid choices"):
        fq.random_effects([0.1, 0.2], [0.1, 0.1], prediction="t")  # type: ignore[arg-type]


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="at least 2"):
        fq.random_effects([0.1], [0.1])
    with pytest.raises(ValueError, match="se must be positive"):
        fq.inverse_variance([0.1, 0.2], [0.1, 0.0])
    with pytest.raises(ValueError, match="differ in length"):
        fq.inverse_variance([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="exceed"):
        fq.mantel_haenszel([5], [4], [1], [4])
    with pytest.raises(ValueError, match="level"):
        fq.inverse_variance([0.1], [0.1], level=95)
    with pytest.raises(ValueError, match="0 or infinite"):
        fq.mantel_haenszel([0, 0], [10, 10], [3, 2], [10, 10])
    with pytest.raises(ValueError, match="counts, or y and se"):
        fq.classical_summary()
    with pytest.raises(ValueError, match="all four"):
        fq.classical_summary(events_t=[1], n_t=[2])


def test_classical_summary_keys_and_json(crins):
    s = fq.classical_summary(*crins)
    assert list(s) == ["mh", "peto", "iv", "dl", "reml", "pm", "dl_hk"]
    json.dumps(s, allow_nan=False)
    for key in s:
        assert {"or", "lower", "upper", "estimate", "se"} <= set(s[key])
        assert s[key]["or"] == pytest.approx(math.exp(s[key]["estimate"]))
    for key in ("dl", "reml", "pm", "dl_hk"):
        assert {"tau2", "tau", "q", "q_df", "q_pval", "i2", "h2", "pi_lower", "pi_upper"} <= set(
            s[key]
        )
    assert s["dl_hk"]["hartung_knapp"] is True and s["dl_hk"]["dist"] == "t"
    assert s["reml"]["tau"] == pytest.approx(0.4670268, abs=1e-6)  # Roever 2020, as above


def test_classical_summary_from_effects_only(crins):
    lor = log_odds_ratios(*crins)
    s = fq.classical_summary(y=lor.y, se=lor.se)
    assert s["mh"] is None and s["peto"] is None
    assert s["reml"] == fq.classical_summary(*crins)["reml"]


def test_classical_summary_single_trial_skips_random_effects():
    # Stephenson 2010 alone: OR 1.37 (0.41-4.61), Hum Reprod 2010 abstract (two decimals).
    s = fq.classical_summary([16], [23], [15], [24])
    assert s["dl"] is None and s["reml"] is None and s["pm"] is None and s["dl_hk"] is None
    assert round(s["mh"]["or"], 2) == 1.37
    assert s["iv"]["or"] == pytest.approx(s["mh"]["or"], rel=1e-12)
    json.dumps(s, allow_nan=False)
