"""Analysis specs: the TOML files in ``models/`` that a researcher edits.

A spec names the data, the model, the priors, the sampler settings and where results
go. Unknown sections or keys are errors that list the valid ones: a misspelt prior key
must never fall back silently to a default. The schema (:mod:`trialsynth.models.schema`)
reports every problem of a file at once.

Paths in ``[data] source`` are relative to the spec file; ``[output] dir`` is relative
to the working directory (default ``reports/<analysis name>``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.core.errors import TrialsynthError
from trialsynth.core.settings import SamplerSettings
from trialsynth.models.bias import BiasAdjustment, BiasError
from trialsynth.models.schema import SpecDocument, validate
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import PriorSet

if TYPE_CHECKING:
    from trialsynth.data.trials import TrialData


class SpecError(TrialsynthError):
    """A spec file that cannot be used (one-line message)."""


@dataclass(frozen=True)
class AnalysisSpec:
    """A parsed analysis spec."""

    name: str
    source: str
    path: Path | None = None
    title: str = ""
    question: str = ""
    treatment: str = "treatment"
    control: str = "control"
    exclude: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    outcome: str | None = None  # a RevMan review's outcome, C.O or its name
    control_risk: float | None = None  # absolute effects: assumed control risk
    mcid: float | None = None  # minimal important difference per 1000
    benefit: str | None = None  # "more-events" | "fewer-events"
    model: str = "binomial-normal"
    likelihood: str | None = None
    engine: str = "auto"
    random_effects: str | None = None
    nu: float | None = 4.0  # None: estimated under [priors] nu
    subgroup: str | None = None
    subgroup_tau: str = "shared"
    covariates: tuple[str, ...] = ()
    priors: PriorSet = field(default_factory=PriorSet)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    out_dir: Path | None = None
    sensitivity: dict[str, Any] = field(default_factory=dict)
    queries: dict[str, Any] = field(default_factory=dict)
    #: Order column of a ``[cumulative]`` section (the report then adds the cumulative
    #: meta-analysis); None without the section.
    cumulative: str | None = None
    #: ``[bias_adjustment]`` options (column, adequate, prior, sd); None without the section
    bias: dict[str, Any] | None = None

    def data_source(self) -> str:
        """The data argument for :func:`trialsynth.data.load` (paths made absolute)."""
        candidate = Path(self.source)
        if self.path is not None and not candidate.is_absolute() and candidate.suffix:
            return str((self.path.parent / candidate).resolve())
        return self.source

    def model_spec(self, data_kind: str) -> ModelSpec:
        """The :class:`ModelSpec` for data of this kind."""
        return ModelSpec.from_options(
            self.model,
            data_kind=data_kind,
            likelihood=self.likelihood,
            random_effects=self.random_effects,
            nu=self.nu,
            subgroup=self.subgroup,
            subgroup_tau=self.subgroup_tau,
            covariates=self.covariates,
            bias=self.bias_adjustment(),
        )

    def bias_adjustment(self) -> BiasAdjustment | None:
        """The ``[bias_adjustment]`` of the spec (its direction: ``[analysis] benefit``)."""
        if self.bias is None:
            return None
        try:
            return BiasAdjustment.from_options(**self.bias, benefit=self.benefit)
        except BiasError as err:
            raise SpecError(f"{self.path} [bias_adjustment]: {err}") from None

    def output_dir(self) -> Path:
        """Where ``run`` writes its outputs."""
        return self.out_dir or Path("reports") / self.name

    def without_excluded(
        self,
        data: TrialData,
        *,
        where: str | None = None,
        error: type[TrialsynthError] = SpecError,
    ) -> TrialData:
        """``data`` without the ``[data] exclude`` studies, each of which must be in it.

        ``where`` names the spec in the message (default: its resolved path).
        """
        missing = [s for s in self.exclude if s not in data.study]
        if missing:
            raise error(
                f"{where or self.path} [data] exclude: unknown study {missing[0]!r}; "
                f"valid: {', '.join(data.study)}"
            )
        if not self.exclude:
            return data
        return data.subset([s for s in data.study if s not in self.exclude])


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate an analysis spec.

    Raises
    ------
    SpecError
        Missing file, bad TOML, unknown sections or keys, wrong types, bad priors or
        sampler settings (every problem of the file in one message).
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: spec file not found")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{p}: invalid TOML: {err}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{p}: not UTF-8 text") from None
    except OSError as err:  # unreadable: the user's file, so the user's error
        raise SpecError(f"{p}: cannot be read ({err.strerror or type(err).__name__})") from None
    spec = validate(SpecDocument, doc, where=str(p), error=SpecError)
    analysis, data, model = spec.analysis, spec.data, spec.model
    priors = spec.priors.given()
    return AnalysisSpec(
        name=analysis.name or p.stem,
        source=data.source or "",
        path=p.resolve(),
        title=analysis.title,
        question=analysis.question,
        treatment=analysis.treatment,
        control=analysis.control,
        exclude=tuple(str(s) for s in data.exclude),
        columns={str(k): str(v) for k, v in data.columns.items()},
        outcome=data.outcome,
        control_risk=_opt_float(analysis.control_risk),
        mcid=_opt_float(analysis.mcid),
        benefit=analysis.benefit,
        model=model.model,
        likelihood=model.likelihood,
        engine=model.engine,
        random_effects=model.random_effects,
        nu=None if "nu" in priors else float(model.nu),
        subgroup=model.subgroup,
        subgroup_tau=model.subgroup_tau,
        covariates=tuple(str(c) for c in model.covariates),
        priors=PriorSet(**priors),
        sampler=spec.sampler.settings(),
        out_dir=Path(spec.output.dir) if spec.output.dir else None,
        sensitivity=dict(spec.sensitivity),
        queries=dict(spec.queries),
        cumulative=spec.cumulative.order if spec.cumulative is not None else None,
        bias=_bias_options(spec.bias_adjustment),
    )


def _bias_options(section: Any) -> dict[str, Any] | None:
    """The ``[bias_adjustment]`` section as :meth:`BiasAdjustment.from_options` keywords."""
    if section is None:
        return None
    adequate = section.adequate
    return {
        "column": section.column,
        "adequate": (adequate,) if isinstance(adequate, str) else tuple(adequate),
        "prior": section.prior,
        "sd": section.sd,
    }
