"""The posterior summaries equal ArviZ's own (arviz-stats), bit for bit.

``results/base.py`` computes mean, sd, median and the 2.5%/97.5% quantiles with numpy so
that an exact-engine command does not import arviz-stats (about 0.3 s of a 1.9 s command).
These tests hold that choice to ArviZ: the summary of an MCMC fit must equal
``arviz_stats.summary`` (mean, sd) and arviz-stats' array quantiles and median exactly, so
the two can never drift apart. (ArviZ's own ``eti`` computes its lower bound at
``(1 - 0.95) / 2``, which is 0.025 plus 2e-17, and can differ in the last bit; the quantile
function at 0.025 is the definition both use.)
"""

from __future__ import annotations

import numpy as np
import pytest

from trialsynth.results.base import _or_stats, _stats


@pytest.mark.parametrize("seed", range(20))
def test_stats_equal_arviz_array_stats(seed: int) -> None:
    from arviz_stats.base import array_stats

    rng = np.random.default_rng(seed)
    x = rng.normal(rng.normal(), rng.uniform(0.1, 3.0), size=(4, 1000))
    flat = x.ravel()
    s = _stats(x)
    q025, q975 = array_stats.quantile(flat, [0.025, 0.975])
    assert s["mean"] == array_stats.mean(flat)
    assert s["sd"] == array_stats.std(flat)
    assert s["median"] == array_stats.median(flat)
    assert (s["q025"], s["q975"]) == (q025, q975)
    o = _or_stats(x)
    assert (o["q025"], o["q975"]) == tuple(np.exp([q025, q975]))


def test_fit_summary_equals_arviz_summary(ivig_bn) -> None:
    import arviz_stats as azs

    table = azs.summary(
        ivig_bn.tree,
        var_names=["mu", "tau", "theta_new"],
        kind="stats",
        round_to="none",
        ci_prob=0.95,
        ci_kind="eti",
    )
    s = ivig_bn.summary()
    for name in ("mu", "tau", "theta_new"):
        assert s[name]["mean"] == table.loc[name, "mean"]
        assert s[name]["sd"] == table.loc[name, "sd"]
        assert s[name]["q975"] == table.loc[name, "eti95_ub"]


@pytest.mark.parametrize("p", [0.05, 0.3, 0.83])
def test_iid_mcse_is_binomial_and_what_arviz_estimates_for_iid_draws(p: float) -> None:
    """The exact engine's MCSE of a probability is sqrt(p(1 - p)/n) (its draws are iid).

    ArviZ's ESS-based MCSE estimates the same quantity from the draws; for 8000 iid draws its
    estimate of the ESS is noisy by a few percent (autocorrelations summed to the first
    negative pair), so the two agree within 10% here, and the binomial one has no such noise.
    """
    from trialsynth.engines.diagnostics import iid_probability_mcse, probability_mcse

    ind = np.random.default_rng(7).random((4, 2000)) < p
    q = ind.mean()
    assert iid_probability_mcse(ind) == np.sqrt(q * (1 - q) / ind.size)
    assert probability_mcse(ind) == pytest.approx(iid_probability_mcse(ind), rel=0.10)


def test_exact_fit_uses_the_binomial_mcse() -> None:
    from trialsynth.analysis.absolute import attach_absolute
    from trialsynth.data import load
    from trialsynth.engines.diagnostics import iid_probability_mcse
    from trialsynth.models.spec import ModelSpec
    from trialsynth.results.fitting import fit
    from trialsynth.results.queries import ask

    data = load("ivig_rm")
    res = fit(data, spec=ModelSpec.from_options("normal-normal", data_kind=data.kind))
    theta = res.draws("theta")
    ind = theta[..., 0] > theta[..., 1]
    answer = ask(res, f"P(OR[{data.study[0]}] > OR[{data.study[1]}])")
    assert answer.mcse == iid_probability_mcse(ind)
    out = attach_absolute(res)
    assert out is not None
    n, q = theta[..., 0].size, out["p_benefit"]
    # the same mean of the same indicators (bool vs float array: last-bit tolerance)
    assert out["mcse"]["p_benefit"] == pytest.approx(np.sqrt(q * (1 - q) / n), rel=1e-12)
