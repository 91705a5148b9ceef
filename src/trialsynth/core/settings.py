"""Settings every layer shares: sampler settings, the default seed, engine names, limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from trialsynth.core.errors import TrialsynthError

#: Default seed of every command (a fixed, documented value: same command, same numbers).
DEFAULT_SEED = 20261125
#: Target acceptance used for the automatic refit after divergent transitions.
RETRY_TARGET_ACCEPT = 0.99
#: Largest arm the binomial likelihood is sampled for. Measured (BENCHMARKS.md, reliability):
#: 4 trials with 10^6 per arm converge (bulk ESS ~500 of 8000 draws); with 10^7 the
#: non-centred posterior is too narrow for NUTS to adapt (R-hat 1.02, ESS < 400) and with
#: 10^9 it fails outright (R-hat > 1.7). The normal approximation is exact to < 1e-3 on
#: the log-OR scale for such arms, so the error points to the normal-normal model.
MAX_BINOMIAL_ARM = 10**6


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings (nutpie); ``seed`` makes a fit reproducible."""

    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    seed: int = DEFAULT_SEED
    target_accept: float = 0.9

    def __post_init__(self) -> None:
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TrialsynthError(f"{name} must be a positive integer, got {value!r}")
        if not 0 < self.target_accept < 1:
            raise TrialsynthError(f"target_accept must be in (0, 1), got {self.target_accept}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise TrialsynthError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


#: The engines a fit can ask for (``auto``: exact where it applies, MCMC otherwise).
ENGINES = ("mcmc", "exact", "auto")
