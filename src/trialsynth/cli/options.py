"""What the commands share: exit codes, the CLI's own error, the fixed choices as enums.

The choices are typer ``Enum`` options (typer checks them and lists the valid values). They
are written here rather than imported from the model and analysis modules so that
``trialsynth --help`` does not import scipy and PyMC; ``tests/test_cli.py`` checks that
they equal the library's lists.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from trialsynth.core.errors import TrialsynthError

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
EXIT_INTERNAL = 1
#: Help text of a data argument.
DATA_HELP = "CSV path or shipped dataset (ivig_rm, ivig_rm_secondary, crins2014, bcg)."
#: Help text of ``fit``'s data argument (which also reads RevMan files).
FIT_DATA_HELP = (
    "CSV path, RevMan 5 file (.rm5 or analysis export) or shipped dataset "
    "(ivig_rm, ivig_rm_secondary, crins2014, bcg)."
)


class CLIError(TrialsynthError):
    """Options that cannot be combined or are missing (one line, exit 2)."""


class Model(StrEnum):
    """``--model`` (:data:`trialsynth.models.spec.MODELS`)."""

    BINOMIAL_NORMAL = "binomial-normal"
    NORMAL_NORMAL = "normal-normal"
    COMMON_EFFECT = "common-effect"


class Engine(StrEnum):
    """``--engine`` of a single fit (:data:`trialsynth.core.settings.ENGINES`)."""

    AUTO = "auto"
    MCMC = "mcmc"
    EXACT = "exact"


class FitEngine(StrEnum):
    """``fit --engine`` (:data:`trialsynth.workflow.fit.FIT_ENGINES`): also ``both``."""

    AUTO = "auto"
    MCMC = "mcmc"
    EXACT = "exact"
    BOTH = "both"


class Likelihood(StrEnum):
    """``--likelihood`` (:data:`trialsynth.models.spec.LIKELIHOODS`)."""

    BINOMIAL = "binomial"
    NORMAL = "normal"


class RandomEffects(StrEnum):
    """``--random-effects`` (:data:`trialsynth.models.spec.RANDOM_EFFECTS`)."""

    NORMAL = "normal"
    STUDENT_T = "student-t"


class SubgroupTau(StrEnum):
    """``--subgroup-tau`` (:data:`trialsynth.models.spec.SUBGROUP_TAU`)."""

    SHARED = "shared"
    SEPARATE = "separate"


class Benefit(StrEnum):
    """``--benefit`` (:data:`trialsynth.analysis.absolute.BENEFITS`)."""

    MORE_EVENTS = "more-events"
    FEWER_EVENTS = "fewer-events"


class Criterion(StrEnum):
    """``design --criterion`` (assurance ``CRITERIA``, then updated_meta ``UPDATED_CRITERIA``)."""

    TWO_SIDED_TEST = "two-sided-test"
    POSTERIOR = "posterior"
    UPDATED_META = "updated-meta"
    UPDATED_META_CLASSICAL = "updated-meta-classical"

    @property
    def updated(self) -> bool:
        """The trial is judged by the meta-analysis it joins."""
        return self in (Criterion.UPDATED_META, Criterion.UPDATED_META_CLASSICAL)


#: The options ``fit`` and ``compare`` share.
Draws = Annotated[int, typer.Option(help="Posterior draws per chain.")]
Tune = Annotated[int, typer.Option(help="Tuning draws per chain.")]
Chains = Annotated[int, typer.Option(help="Number of chains.")]
Seed = Annotated[int | None, typer.Option(help="Random seed (default 20261125).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
Strict = Annotated[bool, typer.Option(help="Exit 3 when the fit fails its convergence checks.")]
