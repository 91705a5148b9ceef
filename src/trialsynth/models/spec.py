"""Random-effects model specifications and their PyMC builders.

A :class:`ModelSpec` names a model (likelihood and random-effects distribution); the
builder turns spec + data + priors into a ``pm.Model`` whose observations and prior
hyperparameters are all ``pm.Data``. :func:`structure_key` says which of those a
compiled model does *not* depend on: two analyses with the same key can share one
compiled model (``nutpie``'s ``with_data``).

Parameterisation (non-centred, as recommended for few trials):
``theta_i = mu + tau * z_i``, ``z_i ~ Normal(0, 1)`` (or Student-t with ``nu`` degrees of
freedom for robust random effects); the common-effect model has ``theta_i = mu``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from trialsynth.priors.prior import PriorSet, hyper_values, pymc_variable
from trialsynth.priors.prior import structure_key as prior_key

if TYPE_CHECKING:
    import pymc as pm

    from trialsynth.data.trials import TrialData

MODELS = ("binomial-normal", "normal-normal", "common-effect")
LIKELIHOODS = ("binomial", "normal")
RANDOM_EFFECTS = ("normal", "student-t")
SUBGROUP_TAU = ("shared", "separate")


class ModelError(ValueError):
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
    """

    likelihood: Literal["binomial", "normal"] = "binomial"
    random_effects: Literal["normal", "student-t"] | None = "normal"
    nu: float | None = 4.0
    correction: float = 0.5
    subgroup: str | None = None
    subgroup_tau: Literal["shared", "separate"] = "shared"
    covariates: tuple[str, ...] = ()

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
    ) -> ModelSpec:
        """Spec from the CLI/TOML options, checking every choice against the data kind.

        ``common-effect`` uses the binomial likelihood for arm-level data and the normal
        one for contrast-level data unless ``likelihood`` says otherwise. ``nu=None``
        estimates the Student-t degrees of freedom (they need ``random_effects="student-t"``).
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
        return cls(
            likelihood=lik,  # type: ignore[arg-type]
            random_effects=re,  # type: ignore[arg-type]
            nu=None if nu is None else float(nu),
            subgroup=subgroup or None,
            subgroup_tau=subgroup_tau,  # type: ignore[arg-type]
            covariates=tuple(covariates),
        )

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


@dataclass(frozen=True)
class Design:
    """Subgroup membership and centred covariates of the trials (what the model uses)."""

    levels: tuple[str, ...] = ()
    group: np.ndarray | None = None  # index into levels, per trial
    covariates: tuple[str, ...] = ()
    x: np.ndarray | None = None  # (k, p), centred
    centre: tuple[float, ...] = ()


def design(spec: ModelSpec, data: TrialData) -> Design:
    """Subgroup indices and the centred covariate matrix, with clear errors."""
    cov = data.covariates
    levels: tuple[str, ...] = ()
    group = None
    if spec.subgroup:
        if spec.subgroup not in cov.columns:
            raise ModelError(
                f"subgroup column {spec.subgroup!r} is not in the data; "
                f"valid: {', '.join(map(str, cov.columns)) or '(no covariate columns)'}"
            )
        values = cov[spec.subgroup].loc[list(data.study)]
        missing = [s for s, v in zip(data.study, values, strict=True) if _blank(v)]
        if missing:
            raise ModelError(f"subgroup column {spec.subgroup!r} has no value for {missing[0]!r}")
        labels = [str(v) for v in values]
        levels = tuple(sorted(set(labels)))
        if len(levels) < 2:
            raise ModelError(
                f"subgroup column {spec.subgroup!r} has a single level ({levels[0]!r}): "
                "nothing to compare"
            )
        group = np.array([levels.index(v) for v in labels], dtype=np.int64)
    x = None
    centre: tuple[float, ...] = ()
    if spec.covariates:
        cols = []
        for name in spec.covariates:
            if name not in cov.columns:
                raise ModelError(
                    f"covariate {name!r} is not in the data; "
                    f"valid: {', '.join(map(str, cov.columns)) or '(no covariate columns)'}"
                )
            try:
                col = cov[name].loc[list(data.study)].to_numpy(dtype=float)
            except (TypeError, ValueError):
                raise ModelError(f"covariate {name!r} is not numeric") from None
            if not np.isfinite(col).all():
                bad = data.study[int(np.flatnonzero(~np.isfinite(col))[0])]
                raise ModelError(f"covariate {name!r} has no value for {bad!r}")
            if np.ptp(col) == 0:
                raise ModelError(f"covariate {name!r} is constant across trials")
            cols.append(col)
        raw = np.column_stack(cols)
        centre = tuple(float(c) for c in raw.mean(axis=0))
        x = raw - raw.mean(axis=0)
    return Design(levels=levels, group=group, covariates=spec.covariates, x=x, centre=centre)


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def observations(spec: ModelSpec, data: TrialData) -> dict[str, np.ndarray]:
    """The observed data of the model (per trial) as ``pm.Data`` values."""
    if spec.likelihood == "binomial":
        return {
            "events_t": np.asarray(data.events_t, dtype=np.int64),
            "n_t": np.asarray(data.n_t, dtype=np.int64),
            "events_c": np.asarray(data.events_c, dtype=np.int64),
            "n_c": np.asarray(data.n_c, dtype=np.int64),
        }
    lor = data.contrasts(correction=spec.correction)
    return {"y": np.asarray(lor.y, dtype=float), "se": np.asarray(lor.se, dtype=float)}


def design_values(spec: ModelSpec, data: TrialData) -> dict[str, np.ndarray]:
    """Subgroup index and covariate matrix as ``pm.Data`` values (may be empty)."""
    d = design(spec, data)
    out: dict[str, np.ndarray] = {}
    if d.group is not None:
        out["group"] = d.group
    if d.x is not None:
        out["x"] = d.x
    return out


def resolve_priors(spec: ModelSpec, data: TrialData, priors: PriorSet) -> PriorSet:
    """Fix data-dependent prior constants (s0 of uniform-shrinkage / DuMouchel)."""
    if not priors.tau.needs_data:
        return priors
    se = data.contrasts(correction=spec.correction).se
    return replace(priors, tau=priors.tau.resolve(se))


def model_values(spec: ModelSpec, data: TrialData, priors: PriorSet) -> dict[str, np.ndarray]:
    """Every ``pm.Data`` value of the model: observations and prior hyperparameters."""
    values = observations(spec, data) | design_values(spec, data)
    values |= hyper_values(priors.mu, _mu_name(spec))
    if spec.random_effects is not None:
        values |= hyper_values(priors.tau, _tau_name(spec))
    if spec.likelihood == "binomial":
        values |= hyper_values(priors.baseline, "alpha")
    if spec.covariates:
        values |= hyper_values(priors.beta, "beta")
    if spec.estimate_nu:
        values |= hyper_values(priors.nu, "nu")
    return values


def _mu_name(spec: ModelSpec) -> str:
    return "mu_subgroup" if spec.subgroup else "mu"


def _tau_name(spec: ModelSpec) -> str:
    return "tau_subgroup" if spec.separate_tau else "tau"


def structure_key(spec: ModelSpec, data: TrialData, priors: PriorSet) -> tuple[Any, ...]:
    """What a compiled model depends on: spec, number of trials and prior families."""
    d = design(spec, data)
    key: tuple[Any, ...] = (spec, data.k, len(d.levels), prior_key(priors.mu))
    if spec.random_effects is not None:
        key += (prior_key(priors.tau),)
    if spec.likelihood == "binomial":
        key += (prior_key(priors.baseline),)
    if spec.covariates:
        key += (prior_key(priors.beta),)
    if spec.estimate_nu:
        key += (prior_key(priors.nu),)
    return key


def build_model(spec: ModelSpec, data: TrialData, priors: PriorSet) -> pm.Model:
    """Build the PyMC model.

    ``priors`` must already be resolved against the data (:func:`resolve_priors`).
    Posterior variables: ``mu``, ``tau`` (absent for common effect) on the log odds
    ratio scale, ``alpha`` (control-arm log-odds, binomial likelihood) and the
    non-centred ``z``; the trial effects ``theta = mu + tau * z`` are added after
    sampling by `trialsynth.engines.mcmc.add_theta`.
    """
    import pymc as pm

    obs = observations(spec, data)
    des = design(spec, data)
    coords: dict[str, list[str]] = {"study": list(data.study)}
    if des.levels:
        coords["subgroup"] = list(des.levels)
    if des.covariates:
        coords["covariate"] = list(des.covariates)
    with pm.Model(coords=coords) as model:
        d = {name: pm.Data(name, value, dims="study") for name, value in obs.items()}
        # theta is not a Deterministic: nutpie would compile an extra expansion for it
        # (about 2 s); engines.mcmc.derive computes it from the draws exactly.
        if des.levels:
            group = pm.Data("group", des.group, dims="study")
            mu = pymc_variable(priors.mu, "mu_subgroup", dims="subgroup")[group]
        else:
            mu = pymc_variable(priors.mu, "mu")
        if des.covariates:
            x = pm.Data("x", des.x, dims=("study", "covariate"))
            beta = pymc_variable(priors.beta, "beta", dims="covariate")
            mu = mu + pm.math.dot(x, beta)
        if spec.random_effects is None:
            theta = mu
        else:
            if spec.separate_tau:
                tau = pymc_variable(priors.tau, "tau_subgroup", dims="subgroup")[group]
            else:
                tau = pymc_variable(priors.tau, "tau")
            if spec.random_effects == "normal":
                z = pm.Normal("z", 0.0, 1.0, dims="study")
            else:
                if spec.nu is None:
                    # estimated nu: t as a scale mixture of normals, z = e * sqrt(w) with
                    # e ~ N(0, 1), w ~ InvGamma(nu/2, nu/2): fewer divergences than a
                    # StudentT z whose shape moves with nu (engines.mcmc.derive rebuilds z)
                    nu = pymc_variable(priors.nu, "nu")
                    e = pm.Normal("z_normal", 0.0, 1.0, dims="study")
                    w = pm.InverseGamma("z_scale2", alpha=nu / 2, beta=nu / 2, dims="study")
                    z = e * pm.math.sqrt(w)
                else:
                    z = pm.StudentT("z", nu=spec.nu, mu=0.0, sigma=1.0, dims="study")
            theta = mu + tau * z
        if spec.likelihood == "binomial":
            alpha = pymc_variable(priors.baseline, "alpha", dims="study")
            pm.Binomial("obs_c", n=d["n_c"], logit_p=alpha, observed=d["events_c"], dims="study")
            pm.Binomial(
                "obs_t", n=d["n_t"], logit_p=alpha + theta, observed=d["events_t"], dims="study"
            )
        else:
            pm.Normal("obs_y", mu=theta, sigma=d["se"], observed=d["y"], dims="study")
    return model
