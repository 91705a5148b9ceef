"""Shared fixtures: fitted models are session-scoped with fixed seeds (they compile once)."""

from __future__ import annotations

import pytest

from trialsynth.core.settings import SamplerSettings
from trialsynth.data.trials import load
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import PriorSet, parse_prior
from trialsynth.results.fitting import fit


@pytest.fixture(scope="session")
def crins_mcmc():
    """crins2014, normal-normal, mu ~ N(0, 4), tau ~ HN(0.5): the JSS paper's setting."""
    data = load("crins2014")
    priors = PriorSet(mu=parse_prior("normal(0, 4)", "mu"), tau=parse_prior("half-normal(0.5)"))
    return fit(
        data,
        spec=ModelSpec.from_options("normal-normal", data_kind=data.kind),
        priors=priors,
        settings=SamplerSettings(draws=5000, tune=1000, seed=11),
        engine="mcmc",
    )


@pytest.fixture(scope="session")
def bcg_mcmc():
    """bcg, binomial-normal, tau ~ HN(0.5), mu ~ N(0, 2.82): the MetaStan vignette setting."""
    data = load("bcg")
    return fit(data, spec=ModelSpec(), settings=SamplerSettings(draws=3000, seed=12))
