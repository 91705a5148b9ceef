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
