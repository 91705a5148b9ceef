"""ArviZ's multi-chain rank-uniformity test computed once per array while a report is drawn.

The report's diagnostics table (:func:`trialsynth.report.context.rank_test`) and its rank
plot (``arviz_plots.plot_rank``, method ``mtc_c``) run arviz-stats' multi-chain test on the
same fractional ranks of the same draws: 0.6-1 s each for the IVIg fit, most of it scipy's
hypergeometric pmf and cdf. ``plot_rank`` takes no precomputed p-values (arviz-plots 1.3.2),
so inside :func:`computed_once` the test of an array is memoised by its bytes: whichever of
the two comes first computes it, the other reuses the result (the same numbers, bit for
bit, as both computing it). Upstream, ``plot_rank(stats={"mtc_c": <Dataset>})`` accepting
the results would make this module unnecessary (``notes/arviz-plots-upstream-report.md``).

The shim wraps one method of arviz-stats' array backend (``array_stats._mtc_c``, the test
of one (chain, draw) array), only for the arviz-stats versions in :data:`TESTED` and only
while the context is open; with any other version, or without that method, it does
nothing and each caller computes the test itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import version
from typing import Any

import numpy as np

#: arviz-stats versions whose ``array_stats._mtc_c`` has the signature this wraps
#: (``_mtc_c(ary) -> (p_value, b_shapley, w_shapley)``, a pure function of ``ary``).
TESTED = ("1.3.",)

_LOCK = threading.Lock()  # one computation at a time: a second caller then finds it
_STATE: dict[str, Any] = {"depth": 0, "memo": {}}


def _target() -> Any | None:
    """arviz-stats' array backend, if it is a version this shim knows, else None."""
    if not version("arviz-stats").startswith(TESTED):
        return None
    from arviz_stats.base.array import array_stats

    return array_stats if callable(getattr(array_stats, "_mtc_c", None)) else None


def _memoised(compute: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def mtc_c(ary: Any) -> Any:
        a = np.ascontiguousarray(ary)
        key = (a.shape, a.dtype.str, hashlib.sha256(a.tobytes()).hexdigest())
        with _LOCK:
            memo = _STATE["memo"]
            if key not in memo:
                memo[key] = compute(a)
            p, b, w = memo[key]
        return p, np.array(b, copy=True), np.array(w, copy=True)

    return mtc_c


@contextlib.contextmanager
def computed_once(needed: bool = True) -> Iterator[None]:
    """Within: arviz-stats' multi-chain test of equal rank arrays is computed once.

    Open it in the thread that draws the report, around everything that runs the test
    (threads it starts meanwhile share it). Nested uses share the outermost's memo.
    ``needed`` False (a fit without chains: no test to share) does nothing and imports
    nothing (arviz-stats' import is 0.2 s of an exact fit's report).
    """
    target = _target() if needed else None
    if target is None:
        yield
        return
    with _LOCK:
        if _STATE["depth"] == 0:
            target._mtc_c = _memoised(target._mtc_c)
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                del target._mtc_c  # the class's own method again
                _STATE["memo"] = {}
