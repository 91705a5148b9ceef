"""Random-effects model specifications: which model to fit, checked against the data kind.

A :class:`ModelSpec` names a model (likelihood, random-effects distribution, subgroups,
covariates). What the model sees of the data is :mod:`trialsynth.models.design`; the model
itself is written twice, for the sampler (:mod:`trialsynth.models.pymc`) and in numpy for
everything else (:mod:`trialsynth.models.likelihood`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from trialsynth.core.errors import TrialsynthError
from trialsynth.models.bias import BiasAdjustment, check_model

if TYPE_CHECKING:
    from trialsynth.data import TrialData
    from trialsynth.priors.prior import PriorSet

MODELS = ("binomial-normal", "normal-normal", "common-effect")
LIKELIHOODS = ("binomial", "normal")
RANDOM_EFFECTS = ("normal", "student-t")
SUBGROUP_TAU = ("shared", "separate")


class ModelError(TrialsynthError):
    """A model request that cannot be honoured (one-line message listing valid choices)."""


@dataclass(frozen=True)
class ModelSpec:
    """Which model to fit.

    Attributes
    ----------
    likelihood : {"binomial", "normal"}
        ``binomial``: exact binomial likelihood of each arm with a trial-specific
        control-arm log-odds (fixed baseline). ``normal``: normal approximation to each
        trial's log odds ratio with its standard error.
    random_effects : {"normal", "student-t"} or None
        Distribution of the trial effects around ``mu``; None is the common-effect
        model (tau = 0).
    nu : float or None
        Degrees of freedom of Student-t random effects: a fixed value, or None to
        estimate them under the ``nu`` prior of the :class:`~trialsynth.priors.prior.PriorSet`
        (default gamma(2, 0.1), Juarez & Steel 2010).
    correction : float
        Continuity correction for contrasts computed from arm counts (normal
        likelihood only), added to every cell of trials with a zero cell.
    subgroup : str or None
        A covariate column whose levels get one mean each (``mu_subgroup``).
    subgroup_tau : {"shared", "separate"}
        One heterogeneity SD for all subgroups, or one per subgroup.
    covariates : tuple of str
        Numeric covariates of a meta-regression, ``theta_i ~ RE(mu + x_i beta, tau)``
        with ``x`` centred at its mean over the trials (so ``mu`` is the effect at the
        average covariate value).
    bias : BiasAdjustment or None
        Bias adjustment of the weaker trials (:mod:`trialsynth.models.bias`), or none.
    """

    likelihood: Literal["binomial", "normal"] = "binomial"
    random_effects: Literal["normal", "student-t"] | None = "normal"
    nu: float | None = 4.0
    correction: float = 0.5
    subgroup: str | None = None
    subgroup_tau: Literal["shared", "separate"] = "shared"
    covariates: tuple[str, ...] = ()
    bias: BiasAdjustment | None = None

    @property
    def name(self) -> str:
        """The INTERFACE name of the model."""
        if self.random_effects is None:
            return "common-effect"
        return (
            f"{self.likelihood}-normal"
            if self.random_effects == "normal"
            else (f"{self.likelihood}-student-t")
        )

    @classmethod
    def from_options(
        cls,
        model: str = "binomial-normal",
        *,
        data_kind: str = "arm",
        likelihood: str | None = None,
        random_effects: str | None = None,
        nu: float | None = 4.0,
        subgroup: str | None = None,
        subgroup_tau: str = "shared",
        covariates: tuple[str, ...] | list[str] = (),
        bias: BiasAdjustment | None = None,
    ) -> ModelSpec:
        """Spec from the CLI/TOML options, checking every choice against the data kind.

        ``common-effect`` uses the binomial likelihood for arm-level data and the normal
        one for contrast-level data unless ``likelihood`` says otherwise. ``nu=None``
        estimates the Student-t degrees of freedom (they need ``random_effects="student-t"``).
        ``bias`` works in binomial-normal and normal-normal models without subgroups or
        covariates.
        """
        if model not in MODELS:
            raise ModelError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
        if likelihood is not None and likelihood not in LIKELIHOODS:
            raise ModelError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
        if random_effects is not None and random_effects not in RANDOM_EFFECTS:
            raise ModelError(
                f"unknown random-effects distribution {random_effects!r}; "
                f"valid: {', '.join(RANDOM_EFFECTS)}"
            )
        # binomial-normal is always binomial (contrast data is then an error below);
        # common-effect follows the data kind.
        if model == "binomial-normal":
            default_lik = "binomial"
        else:
            default_lik = (
                "normal" if model == "normal-normal" or data_kind == "contrast" else "binomial"
            )
        lik = likelihood or default_lik
        if model == "binomial-normal" and likelihood == "normal":
            raise ModelError("binomial-normal has a binomial likelihood; use --model normal-normal")
        if model == "normal-normal" and likelihood == "binomial":
            raise ModelError("normal-normal has a normal likelihood; use --model binomial-normal")
        if lik == "binomial" and data_kind != "arm":
            raise ModelError(
                f"the binomial likelihood needs arm-level counts (events_t, n_t, events_c, n_c); "
                f"these data are {data_kind}-level: use --model normal-normal"
            )
        if nu is None:
            if model == "common-effect" or random_effects != "student-t":
                raise ModelError(
                    "a prior on the degrees of freedom (nu) needs student-t random effects "
                    '(--random-effects student-t / [model] random_effects = "student-t")'
                )
        elif not nu > 0:
            raise ModelError(f"Student-t degrees of freedom must be > 0, got {nu}")
        if subgroup_tau not in SUBGROUP_TAU:
            raise ModelError(
                f"unknown subgroup_tau {subgroup_tau!r}; valid: {', '.join(SUBGROUP_TAU)}"
            )
        re = None if model == "common-effect" else (random_effects or "normal")
        spec = cls(
            likelihood=lik,  # type: ignore[arg-type]
            random_effects=re,  # type: ignore[arg-type]
            nu=None if nu is None else float(nu),
            subgroup=subgroup or None,
            subgroup_tau=subgroup_tau,  # type: ignore[arg-type]
            covariates=tuple(covariates),
        )
        if bias is not None:
            check_model(spec.name, spec.subgroup, spec.covariates)
            spec = replace(spec, bias=bias)
        return spec

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description."""
        d: dict[str, Any] = {
            "name": self.name,
            "likelihood": self.likelihood,
            "random_effects": self.random_effects,
        }
        if self.random_effects == "student-t":
            d["nu"] = self.nu  # None: estimated under the nu prior
        if self.likelihood == "normal":
            d["correction"] = self.correction
        if self.subgroup:
            d["subgroup"] = self.subgroup
            d["subgroup_tau"] = self.subgroup_tau
        if self.covariates:
            d["covariates"] = list(self.covariates)
        if self.bias is not None:
            d["bias"] = self.bias.to_dict()
        return d

    @property
    def estimate_nu(self) -> bool:
        """True when the Student-t degrees of freedom are a parameter (with a prior)."""
        return self.random_effects == "student-t" and self.nu is None

    @property
    def separate_tau(self) -> bool:
        """True when each subgroup has its own heterogeneity SD."""
        return (
            bool(self.subgroup)
            and self.subgroup_tau == "separate"
            and (self.random_effects is not None)
        )

    @property
    def mu_name(self) -> str:
        """The model's variable under the mu prior: ``mu``, or ``mu_subgroup`` (one a level)."""
        return "mu_subgroup" if self.subgroup else "mu"

    @property
    def tau_name(self) -> str:
        """The model's variable under the tau prior: ``tau``, or ``tau_subgroup`` (separate)."""
        return "tau_subgroup" if self.separate_tau else "tau"


def resolve_priors(spec: ModelSpec, data: TrialData, priors: PriorSet) -> PriorSet:
    """Fix data-dependent prior constants (s0 of uniform-shrinkage / DuMouchel)."""
    if not priors.tau.needs_data:
        return priors
    se = data.contrasts(correction=spec.correction).se
    return replace(priors, tau=priors.tau.resolve(se))
