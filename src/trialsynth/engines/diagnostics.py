"""Convergence checks of an MCMC fit with ArviZ (R-hat, bulk/tail ESS, divergences, BFMI)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Thresholds of Vehtari et al. (2021) and the Stan team's guidance: rank-normalised
#: R-hat <= 1.01, bulk and tail ESS >= 400 (100 per chain for 4 chains), no divergent
#: transition, E-BFMI >= 0.3.
RHAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of a fit; ``ok`` is False if any check fails."""

    r_hat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    bfmi_min: float | None
    problems: tuple[str, ...] = field(default=())
    worst: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every check passes."""
        return not self.problems

    @property
    def suggestion(self) -> str:
        """What a user can try when a check fails."""
        if self.ok:
            return ""
        tips = []
        if self.divergences:
            tips.append("raise target acceptance (--target-accept 0.99)")
        if self.r_hat_max > RHAT_MAX or min(self.ess_bulk_min, self.ess_tail_min) < ESS_MIN:
            tips.append("run more draws/tuning (--draws, --tune)")
        tips.append("check the heterogeneity and baseline priors (a weakly informative one helps)")
        return "; ".join(tips)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Diagnostics:
        """Rebuild from :meth:`to_json` / the ``diagnostics`` object of ``summary.json``."""
        return cls(
            r_hat_max=d["r_hat_max"],
            ess_bulk_min=d["ess_bulk_min"],
            ess_tail_min=d["ess_tail_min"],
            divergences=d["divergences"],
            bfmi_min=d.get("bfmi_min"),
            problems=tuple(d.get("problems", ())),
            worst=d.get("worst", {}),
        )

    def to_json(self) -> dict[str, Any]:
        """The INTERFACE ``diagnostics`` object plus the extra fields."""
        d = asdict(self)
        d["problems"] = list(self.problems)
        d["ok"] = self.ok
        return d


def _reduce(dt: Any, how: str) -> tuple[float, str]:
    """Extreme value over every variable and element of an ArviZ result tree."""
    best, where = (-np.inf if how == "max" else np.inf), ""
    ds = dt["posterior"].to_dataset() if "posterior" in dt.children else dt.to_dataset()
    for name, da in ds.data_vars.items():
        values = np.asarray(da.values, dtype=float).ravel()
        if values.size == 0 or not np.isfinite(values).any():
            continue
        i = int(np.nanargmax(values) if how == "max" else np.nanargmin(values))
        v = float(values[i])
        if (how == "max" and v > best) or (how == "min" and v < best):
            label = name
            if da.ndim:
                idx = np.unravel_index(i, da.shape)
                coords = [str(da[dim].values[j]) for dim, j in zip(da.dims, idx, strict=True)]
                label = f"{name}[{', '.join(coords)}]"
            best, where = v, label
    return best, where


def check(tree: Any, var_names: list[str]) -> Diagnostics:
    """Compute the convergence diagnostics of ``tree`` for ``var_names``.

    Parameters
    ----------
    tree : xarray.DataTree
        Output of the sampler with ``posterior`` and ``sample_stats`` groups.
    var_names : list of str
        Posterior variables to check (the model's parameters, not derived draws).
    """
    import arviz as az

    rhat, rhat_at = _reduce(az.rhat(tree, var_names=var_names), "max")
    ess_b, ess_b_at = _reduce(az.ess(tree, var_names=var_names, method="bulk"), "min")
    ess_t, ess_t_at = _reduce(az.ess(tree, var_names=var_names, method="tail"), "min")
    stats = tree["sample_stats"]
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    bfmi = None
    if "energy" in stats:
        bfmi = float(np.min(np.asarray(az.bfmi(tree)["energy"].values)))
    problems = []
    if not rhat <= RHAT_MAX:
        problems.append(f"R-hat {rhat:.3f} > {RHAT_MAX} ({rhat_at})")
    if not ess_b >= ESS_MIN:
        problems.append(f"bulk ESS {ess_b:.0f} < {ESS_MIN:.0f} ({ess_b_at})")
    if not ess_t >= ESS_MIN:
        problems.append(f"tail ESS {ess_t:.0f} < {ESS_MIN:.0f} ({ess_t_at})")
    if divergences:
        problems.append(f"{divergences} divergent transition(s)")
    if bfmi is not None and not bfmi >= BFMI_MIN:
        problems.append(f"E-BFMI {bfmi:.2f} < {BFMI_MIN}")
    return Diagnostics(
        r_hat_max=rhat,
        ess_bulk_min=ess_b,
        ess_tail_min=ess_t,
        divergences=divergences,
        bfmi_min=bfmi,
        problems=tuple(problems),
        worst={"r_hat": rhat_at, "ess_bulk": ess_b_at, "ess_tail": ess_t_at},
    )


def iid_probability_mcse(indicator: np.ndarray) -> float:
    """Monte Carlo standard error of a probability estimated from independent draws.

    The binomial ``sqrt(p (1 - p) / n)``: exact for iid draws (the exact engine's), where an
    autocorrelation-based ESS would only add estimation noise around ``n``.
    """
    x = np.asarray(indicator, dtype=float)
    p = float(x.mean())
    return math.sqrt(p * (1.0 - p) / x.size)


def probability_mcse(indicator: np.ndarray) -> float:
    """Monte Carlo standard error of a probability estimated from (chain, draw) indicators.

    Uses ArviZ's ESS-based MCSE of the mean, which accounts for autocorrelation.
    """
    from arviz_stats.base import array_stats

    x = np.asarray(indicator, dtype=float)
    if np.all(x == x.flat[0]):
        return 0.0
    return float(array_stats.mcse(x, chain_axis=-2, draw_axis=-1, method="mean"))
