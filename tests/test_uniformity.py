"""The report's rank test and its rank plot share one multi-chain test (report.uniformity).

Counted at arviz-stats' own method: outside the context the plot and the table each run
the test; inside, the test of each hyperparameter runs once and the table's p-values are
those it computes alone, to the bit. The guard: an arviz-stats version the shim does not
know leaves the library untouched.
"""

from __future__ import annotations

import threading

import arviz_stats.base.array as backend
import matplotlib.pyplot as plt
import pytest

from trialsynth.report import plots, uniformity
from trialsynth.report.context import rank_test


@pytest.fixture
def counted(monkeypatch):
    """Count the calls of arviz-stats' test of one (chain, draw) array."""
    calls = []
    method = type(backend.array_stats)._mtc_c

    def counting(self, ary):
        calls.append(ary.shape)
        return method(self, ary)

    monkeypatch.setattr(type(backend.array_stats), "_mtc_c", counting)
    return calls


def test_plot_and_table_run_the_test_once_each_parameter(ivig_bn, counted) -> None:
    alone = rank_test(ivig_bn)
    n = len(counted)  # one per hyperparameter (mu, tau)
    assert n == len(plots.hyperparameters(ivig_bn)) == 2
    counted.clear()
    plt.close(plots.rank_plot(ivig_bn))
    assert len(counted) == n  # the plot runs it too, outside the context
    counted.clear()
    with uniformity.computed_once():
        plt.close(plots.rank_plot(ivig_bn))
        shared = rank_test(ivig_bn)
    assert len(counted) == n
    assert shared == alone  # p-values equal as floats, not approximately
    assert "_mtc_c" not in vars(backend.array_stats)  # the library's own method again


def test_a_second_thread_waits_for_the_first_computation(ivig_bn, counted) -> None:
    got = {}
    with uniformity.computed_once():
        other = threading.Thread(target=lambda: got.setdefault("thread", rank_test(ivig_bn)))
        other.start()
        got["main"] = rank_test(ivig_bn)
        other.join()
    assert len(counted) == 2 and got["thread"] == got["main"]


def test_an_unknown_arviz_stats_version_is_left_alone(ivig_bn, counted, monkeypatch) -> None:
    monkeypatch.setattr(uniformity, "version", lambda _name: "9.0.0")
    with uniformity.computed_once():
        assert "_mtc_c" not in vars(backend.array_stats)
        rank_test(ivig_bn)
        rank_test(ivig_bn)
    assert len(counted) == 4


def test_not_needed_installs_nothing(counted) -> None:
    with uniformity.computed_once(False):
        assert "_mtc_c" not in vars(backend.array_stats)
