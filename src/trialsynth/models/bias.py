"""Bias adjustment by trial quality (Turner et al. 2009; Welton et al. 2009): the option.

Trials marked as weaker by a column of the data (``confidence`` not ``high``, a risk-of-bias
judgement not ``low``) get an additive bias on the log odds ratio::

    y_i ~ likelihood(theta_i + w_i beta_i),   theta_i = mu + tau z_i,
    beta_i ~ Normal(b, kappa^2)  (weaker trials: w_i = 1; the others w_i = 0),
    b ~ Normal(m_b, s_b^2).

This is Welton et al.'s (2009) model with the mean bias ``b`` of this meta-analysis under an
empirical prior and a fixed between-trial SD of bias ``kappa``. ``theta_i`` is then a trial's
*unbiased* effect, and ``mu`` is identified by the adequate trials (the weaker ones inform it
only through what the prior leaves of their bias).

Sign convention. Bias exaggerates benefit (meta-epidemiology: weaker trials show larger
benefits). The prior of the mean bias is stated **in the benefit direction**: a positive
``m_b`` means that weaker trials overstate the benefit by the factor ``exp(m_b)`` on the OR
scale. In the model the additive bias is ``b_model = sign * b`` with ``sign = +1`` when more
events are a benefit (OR > 1 is benefit, e.g. live birth) and ``-1`` when fewer events are.
Meta-epidemiological studies state a ratio of odds ratios ROR < 1 for exaggeration with
OR < 1 as benefit, so ``m_b = -log(ROR)`` (:func:`prior_from_ror`).

The model itself is written in :mod:`trialsynth.models.pymc` and
:mod:`trialsynth.models.likelihood`; the exact engine integrates it
(:mod:`trialsynth.core.normal_normal`). numpy and scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from trialsynth.core.errors import TrialsynthError
from trialsynth.priors.prior import Prior, PriorError, parse_prior

if TYPE_CHECKING:
    from trialsynth.data.trials import TrialData

Benefit = Literal["more-events", "fewer-events"]
BENEFITS: tuple[str, ...] = ("more-events", "fewer-events")
#: The models the adjustment works in (``--model``).
BIAS_MODELS = ("binomial-normal", "normal-normal")
_Z975 = 1.959963984540054


class BiasError(TrialsynthError):
    """A bias-adjustment request that cannot be honoured (one line)."""


@dataclass(frozen=True)
class PublishedBias:
    """A meta-epidemiological estimate of bias, as published (ratio of odds ratios)."""

    ror: float  # average ROR (< 1: exaggerated benefit, OR < 1 = benefit)
    ror_low: float  # its 95% credible interval
    ror_high: float
    kappa: float  # increase in between-trial SD associated with the characteristic
    phi: float  # between-meta-analysis SD of the average bias
    source: str


#: BRANDO (Savovic et al. 2012, Health Technol Assess 16(35); Ann Intern Med 157:429-38),
#: inadequate or unclear allocation concealment, "other objective" outcomes (live birth is
#: objective), as tabulated by Page et al. 2016 (PLoS One 11:e0159267, Table 3). See
#: notes/bias-prior-sources.md for how the numbers were checked.
BRANDO_OBJECTIVE = PublishedBias(
    ror=0.92,
    ror_low=0.76,
    ror_high=1.12,
    kappa=0.06,
    phi=0.06,
    source="BRANDO (Savovic et al. 2012), allocation concealment, other objective outcomes",
)


def prior_from_ror(pub: PublishedBias, digits: int = 4) -> tuple[Prior, float]:
    """The prior of the mean bias ``b`` (benefit direction) and ``kappa`` from a publication.

    Welton et al. (2009): the bias of a new meta-analysis is predicted by the average bias
    (mean ``-log ROR``, SD from its 95% interval on the log scale) plus the between-meta-
    analysis variation ``phi``: ``b ~ N(-log ROR, sd^2 + phi^2)``. Rounded to ``digits``
    decimals so that the prior prints as a short grammar string.
    """
    mean = -math.log(pub.ror)
    sd = (math.log(pub.ror_high) - math.log(pub.ror_low)) / (2 * _Z975)
    total = math.hypot(sd, pub.phi)
    prior = Prior("normal", (round(mean, digits), round(total, digits)), label=pub.source)
    return prior, pub.kappa


DEFAULT_BIAS_PRIOR, DEFAULT_BIAS_SD = prior_from_ror(BRANDO_OBJECTIVE)


@dataclass(frozen=True)
class BiasAdjustment:
    """Which trials are weaker, and the prior of their bias.

    Attributes
    ----------
    column : str
        The data column that marks trial quality.
    adequate : tuple of str
        Its values of the adequate trials; every other value marks a weaker trial.
    prior : Prior
        Normal prior of the mean bias ``b`` in the benefit direction (log ratio of ORs;
        positive: weaker trials overstate benefit).
    sd : float
        ``kappa``, the fixed between-trial SD of the bias of weaker trials (>= 0).
    benefit : {"more-events", "fewer-events"}
        Which way is a benefit; fixes the sign of the bias on the log-OR scale.
    """

    column: str
    adequate: tuple[str, ...]
    prior: Prior = DEFAULT_BIAS_PRIOR
    sd: float = DEFAULT_BIAS_SD
    benefit: Benefit = "more-events"

    @property
    def sign(self) -> float:
        """+1 when more events are a benefit (bias raises the log OR), else -1."""
        return 1.0 if self.benefit == "more-events" else -1.0

    @property
    def model_prior(self) -> tuple[float, float]:
        """``(mean, sd)`` of the additive mean bias on the log-OR scale of the model."""
        m, s = self.prior.params
        return self.sign * m, s

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``summary.json`` ``model_spec.bias``; round-trips)."""
        return {
            "column": self.column,
            "adequate": list(self.adequate),
            "prior": self.prior.to_dict(),
            "sd": self.sd,
            "benefit": self.benefit,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BiasAdjustment:
        """Inverse of :meth:`to_dict`."""
        return cls(
            column=d["column"],
            adequate=tuple(d["adequate"]),
            prior=Prior.from_dict(d["prior"]),
            sd=float(d["sd"]),
            benefit=d["benefit"],
        )

    @classmethod
    def from_options(
        cls,
        column: str,
        adequate: tuple[str, ...] | list[str] | str,
        *,
        prior: str | Prior | None = None,
        sd: float | None = None,
        benefit: str | None = None,
    ) -> BiasAdjustment:
        """The adjustment from CLI/TOML options, every option checked (one-line errors)."""
        if not column or not str(column).strip():
            raise BiasError("the bias column is empty: give the column that marks weaker trials")
        values = (adequate,) if isinstance(adequate, str) else tuple(adequate)
        values = tuple(v.strip() for part in values for v in str(part).split(",") if v.strip())
        if not values:
            raise BiasError(
                f"bias column {column!r}: say which values mark adequate trials "
                "(--bias-adequate, e.g. high)"
            )
        if prior is None:
            parsed = DEFAULT_BIAS_PRIOR
        else:
            text = str(prior).strip().lower()
            if not (text.startswith("normal(") or text.startswith("normal (")):
                raise BiasError(
                    f"bias prior {str(prior)!r}: the mean bias needs a normal(mean, sd) prior "
                    "(log ratio of odds ratios, positive = weaker trials overstate benefit)"
                )
            try:
                parsed = parse_prior(prior, "mu")
            except PriorError as err:
                raise BiasError(f"bias prior: {err}") from None
        kappa = DEFAULT_BIAS_SD if sd is None else float(sd)
        if not (math.isfinite(kappa) and kappa >= 0):
            raise BiasError(f"the between-trial SD of bias must be a number >= 0, got {sd}")
        if benefit is None:
            benefit = "more-events"
        if benefit not in BENEFITS:
            raise BiasError(f"benefit must be one of {', '.join(BENEFITS)}, not {benefit!r}")
        return cls(str(column).strip(), values, parsed, kappa, benefit)  # type: ignore[arg-type]


def weaker_trials(adj: BiasAdjustment, data: TrialData) -> np.ndarray:
    """0/1 indicator of the weaker trials (data order), with one-line errors.

    Raises
    ------
    BiasError
        An unknown column (the valid ones listed), a trial without a value in it, an
        adequate value the column never takes, no weaker trial at all, or no adequate one
        (``mu`` would then rest on the bias prior alone).
    """
    cov = data.covariates
    if adj.column not in cov.columns:
        valid = ", ".join(map(str, cov.columns)) or "(no covariate columns)"
        raise BiasError(f"bias column {adj.column!r} is not in the data; valid: {valid}")
    values = cov[adj.column].loc[list(data.study)]
    labels = []
    for study, v in zip(data.study, values, strict=True):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            raise BiasError(f"bias column {adj.column!r} has no value for study {study!r}")
        labels.append(str(v).strip())
    seen = sorted(set(labels))
    unknown = [a for a in adj.adequate if a not in seen]
    if len(unknown) == len(adj.adequate):
        raise BiasError(
            f"every trial is marked weaker by {adj.column!r} (none is "
            f"{', '.join(adj.adequate)}; its values: {', '.join(seen)}): the pooled effect "
            "would rest on the bias prior alone"
        )
    if unknown:
        raise BiasError(
            f"bias column {adj.column!r} has no value {unknown[0]!r}; its values: {', '.join(seen)}"
        )
    w = np.array([0.0 if lab in adj.adequate else 1.0 for lab in labels])
    if not w.any():
        raise BiasError(
            f"no trial is marked weaker: every value of {adj.column!r} is adequate "
            f"({', '.join(adj.adequate)}); nothing to adjust"
        )
    return w


def check_model(model_name: str, subgroup: str | None, covariates: tuple[str, ...]) -> None:
    """The adjustment works in binomial-normal and normal-normal models without structure."""
    if model_name not in BIAS_MODELS:
        raise BiasError(
            f"bias adjustment works with --model {' or '.join(BIAS_MODELS)} (normal random "
            f"effects), not {model_name}"
        )
    if subgroup or covariates:
        raise BiasError("bias adjustment is not combined with subgroups or meta-regression")
