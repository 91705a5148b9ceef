"""Queries: the answers equal the fraction of posterior draws computed directly."""

from __future__ import annotations

import numpy as np
import pytest

from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.results.fitting import fit
from trialsynth.results.queries import QueryError, benefit_curve, parse_query


@pytest.fixture(scope="module")
def ivig():
    return fit(load("ivig_rm"), settings=SamplerSettings(draws=1000, seed=21))


@pytest.mark.mcmc
def test_pooled_and_predictive_probabilities_are_draw_fractions(ivig):
    mu, new = ivig.draws("mu"), ivig.draws("theta_new")
    assert ivig.prob("OR > 1") == np.mean(np.exp(mu) > 1)
    assert ivig.prob("P(OR > 1.2)") == np.mean(np.exp(mu) > 1.2)
    assert ivig.prob("OR < 0.8") == np.mean(np.exp(mu) < 0.8)
    assert ivig.prob("OR_new > 1") == np.mean(np.exp(new) > 1)
    assert ivig.prob("0.8 < OR < 1.25") == np.mean((np.exp(mu) > 0.8) & (np.exp(mu) < 1.25))
    assert ivig.prob("1.25 > OR > 0.8") == ivig.prob("0.8 < OR < 1.25")
    assert ivig.prob("1 < OR") == ivig.prob("OR > 1")
    assert ivig.prob("tau > 0.5") == np.mean(ivig.draws("tau") > 0.5)


def test_trial_and_contrast_queries(ivig):
    theta = ivig.tree["posterior"]["theta"]
    a = theta.sel(study="Coulam 1995").values
    b = theta.sel(study="Perino 1997").values
    assert ivig.prob("OR[Stephenson 2010] > 1") == np.mean(
        theta.sel(study="Stephenson 2010").values > 0
    )
    assert ivig.prob("OR[Coulam 1995] > OR[Perino 1997]") == np.mean(a > b)


def test_mcse_is_reported_and_plausible(ivig):
    ans = ivig.ask("OR > 1")
    p = ans.probability
    n = ivig.draws("mu").size
    # MCSE of a probability is near sqrt(p(1-p)/ESS) with ESS within a factor ~4 of n here.
    assert 0.5 * np.sqrt(p * (1 - p) / n) < ans.mcse < 4 * np.sqrt(p * (1 - p) / n)
    assert ans.to_json() == {"query": "P(OR > 1)", "probability": p, "mcse": ans.mcse}


def test_benefit_curve_is_monotone_and_matches_queries(ivig):
    curve = benefit_curve(ivig, np.array([0.8, 1.0, 1.5]))
    assert list(curve["c"]) == [0.8, 1.0, 1.5]
    assert curve["p_or"].is_monotonic_decreasing
    assert curve.loc[1, "p_or"] == ivig.prob("OR > 1")
    assert curve.loc[1, "p_or_new"] == ivig.prob("OR_new > 1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("OR >> 1", "cannot parse 'P(OR >> 1)'"),
        ("P OR > 1", "cannot parse"),
        ("P(1 < OR > 2)", "a range needs two '<' or two '>'"),
        ("P(2 < OR < 1)", "empty range (2 is not below 1)"),
        ("P(OR > 1; import os)", "cannot parse"),
        ("P(OR)", "cannot parse 'P(OR)'"),
    ],
)
def test_malformed_queries_fail_with_message(text, message, ivig):
    with pytest.raises(QueryError, match=re_escape(message)):
        ivig.prob(text)


def test_unknown_target_lists_valid_targets(ivig):
    with pytest.raises(QueryError, match=r"unknown target 'OR\[foo\]'; valid: OR, OR_new, tau"):
        ivig.prob("OR[foo] > 1")
    with pytest.raises(QueryError, match=r"unknown target 'HR'"):
        ivig.prob("HR > 1")


def test_parser_never_evaluates_code():
    with pytest.raises(QueryError):
        parse_query("P(__import__('os').system('true') > 1)")


def re_escape(s: str) -> str:
    import re

    return re.escape(s)
