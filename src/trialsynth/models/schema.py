"""The typed schema of an analysis spec (``models/*.toml``), ``[sensitivity]`` included.

Every section is a pydantic model with ``extra="forbid"`` and strict types, so one
validation finds every unknown key, wrong type and bad value at once; :func:`validate`
turns them into one line that names each place and lists the valid keys. A single
problem reads as it always has (``spec.toml [priors]: unknown key 'tua'; valid: mu, ...``);
several are counted and separated by `` | `` on the same line.

The modules that own a section raise their own error class with that line
(:class:`~trialsynth.models.analysis.SpecError`,
:class:`~trialsynth.analysis.sensitivity.SensitivityError`).
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from trialsynth.core.errors import TrialsynthError
from trialsynth.core.settings import ENGINES, SamplerSettings
from trialsynth.models.spec import MODELS, RANDOM_EFFECTS
from trialsynth.priors.prior import Prior, parse_prior

#: The axes a sensitivity scenario can vary, in the order they are crossed and printed.
AXES = ("tau", "mu", "baseline", "model", "random_effects", "data")
#: Valid keys of a ``[sensitivity]`` table (and of each ``[[sensitivity.also]]`` table).
KEYS = (*AXES, "combine", "nu", "engine", "workers", "also")
COMBINE = ("grid", "list")
#: Data choices (``data = [...]``).
DATA_FORMS = (
    "all",
    "leave-one-out",
    "drop:STUDY[;STUDY]",
    "confidence:LEVEL[,LEVEL]",
    "filter:COLUMN=VALUE[,VALUE]",
    "dataset:NAME_OR_CSV",
)
CONFIDENCE_LEVELS = ("high", "medium", "reconstructed")
#: Type errors of pydantic's strict mode (reported as "expected TYPE, got VALUE").
_TYPE_ERRORS = {
    "int_type",
    "float_type",
    "string_type",
    "bool_type",
    "list_type",
    "dict_type",
    "tuple_type",
    "model_type",
    "model_attributes_type",
}


def fail(message: str) -> PydanticCustomError:
    """An error whose message :func:`validate` reports as written (braces are safe)."""
    return PydanticCustomError("trialsynth", "{message}", {"message": message})


def _only_float(value: Any) -> Any:
    """A float field refuses an integer (``target_accept = 1`` is a typo more often than not)."""
    if not isinstance(value, float):
        raise PydanticCustomError("float_type", "Input should be a float")
    return value


ExactFloat = Annotated[float, BeforeValidator(_only_float)]


class Strict(BaseModel):
    """A table whose keys and types are checked (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    #: How an unknown key is named in messages.
    unknown_noun: ClassVar[str] = "key"
    unknown_form: ClassVar[str] = "{key!r}"

    @classmethod
    def scope(cls, loc: Sequence[str | int]) -> str:
        """How the place ``loc`` (a path of keys) is named in messages."""
        return " ".join(str(part) for part in loc)


# ---------------------------------------------------------------------- messages


def _type_names(annotation: Any) -> str:
    """``int | float`` -> "int or float"; Optional parts dropped."""
    if get_origin(annotation) is Annotated:
        return _type_names(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        names = [_type_names(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(names)
    origin = get_origin(annotation) or annotation
    return getattr(origin, "__name__", str(origin))


def _field(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[tuple[str | int, ...], Any]:
    """The loc of the field an error is about and that field's annotation.

    Union branches and list indices that pydantic appends after the field are dropped.
    """
    model: Any = root
    path: list[str | int] = []
    annotation: Any = root
    for part in loc:
        if isinstance(part, int) and path:
            path.append(part)
            args = [a for a in get_args(annotation) if isinstance(a, type)]
            model = next((a for a in args if issubclass(a, BaseModel)), None)
            continue
        fields = getattr(model, "model_fields", None) if isinstance(model, type) else None
        if not fields or part not in fields:
            break
        path.append(part)
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) else None
    return tuple(path), annotation


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[Strict]:
    """The model class of the table at ``loc``."""
    path, annotation = _field(root, loc)
    if not path:
        return root  # type: ignore[return-value]
    if isinstance(annotation, type) and issubclass(annotation, Strict):
        return annotation
    args = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, Strict)]
    return args[0] if args else root  # type: ignore[return-value]


def _unknown(model: type[Strict], keys: list[str]) -> str:
    noun = model.unknown_noun + ("s" if len(keys) > 1 else "")
    names = ", ".join(model.unknown_form.format(key=k) for k in keys)
    return f"unknown {noun} {names}; valid: {', '.join(model.model_fields)}"


def _problems(err: ValidationError, root: type[Strict]) -> list[tuple[str, str]]:
    """(scope, message) of every problem; the unknown keys of one table are one problem."""
    found: list[tuple[str, str] | tuple[str | int, ...]] = []  # a loc: unknown keys there
    unknown: dict[tuple[str | int, ...], list[str]] = {}
    typed: set[tuple[str | int, ...]] = set()
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden":
            if loc[:-1] not in unknown:
                found.append(loc[:-1])
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
        elif e["type"] in _TYPE_ERRORS:
            path, annotation = _field(root, loc)
            if path in typed:  # one message for all branches of a union
                continue
            typed.add(path)
            if len(path) == 1 and e["type"] in ("model_type", "dict_type"):
                found.append(("", f"{root.scope(path)} must be a table"))
            else:
                names = _type_names(annotation)
                found.append((root.scope(path), f"expected {names}, got {e['input']!r}"))
        elif e["type"] == "trialsynth":
            found.append((root.scope(loc), e["ctx"]["message"]))
        else:
            detail = e.get("ctx", {}).get("error", e["msg"])
            found.append((root.scope(loc), str(detail)))
    return [
        (root.scope(f), _unknown(_model_at(root, f), unknown[f])) if f in unknown else f
        for f in found
    ]  # type: ignore[misc]


def validate[M: Strict](
    model: type[M], table: Any, *, where: str, error: type[TrialsynthError]
) -> M:
    """``model`` validated from ``table``, or ``error`` with every problem on one line.

    Parameters
    ----------
    model : type
        The schema (a :class:`Strict` model).
    table : object
        What the TOML file held.
    where : str
        The file or section, the start of every message.
    error : type
        The error class raised.
    """
    try:
        return model.model_validate(table)
    except ValidationError as err:
        problems = _problems(err, model)
    if len(problems) == 1:
        scope, message = problems[0]
        raise error(f"{where} {scope}: {message}" if scope else f"{where}: {message}") from None
    parts = " | ".join(f"{scope}: {message}" if scope else message for scope, message in problems)
    raise error(f"{where}: {len(problems)} problems: {parts}") from None


# ---------------------------------------------------------------------- analysis spec


class AnalysisSection(Strict):
    """``[analysis]``: what the analysis is called and asks."""

    name: str | None = None
    title: str = ""
    question: str = ""
    treatment: str = "treatment"
    control: str = "control"
    control_risk: int | float | None = None  # absolute effects: assumed control risk
    mcid: int | float | None = None  # minimal important difference per 1000
    benefit: str | None = None  # "more-events" | "fewer-events" (checked by analysis.absolute)


class DataSection(Strict):
    """``[data]``: the trials."""

    source: str | None = None
    exclude: list[Any] = Field(default_factory=list)
    columns: dict[str, Any] = Field(default_factory=dict)
    outcome: str | None = None  # a RevMan review's outcome, C.O or its name


class ModelSection(Strict):
    """``[model]``: the model and the engine (names checked when the model is built)."""

    model: str = "binomial-normal"
    engine: str = "auto"
    likelihood: str | None = None
    random_effects: str | None = None
    nu: int | float = 4.0
    subgroup: str | None = None
    subgroup_tau: str = "shared"
    covariates: list[Any] = Field(default_factory=list)

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if value not in ENGINES:
            raise fail(f"unknown engine {value!r}; valid: {', '.join(ENGINES)}")
        return value


class BiasAdjustmentSection(Strict):
    """``[bias_adjustment]``: additive bias of the weaker trials (checked by models.bias)."""

    column: str
    adequate: list[str] | str
    prior: str | None = None
    sd: ExactFloat | None = None


class PriorsSection(Strict):
    """``[priors]``: each in the ``PRIOR`` grammar (any value is read as its text)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    mu: Prior | None = None
    tau: Prior | None = None
    baseline: Prior | None = None
    beta: Prior | None = None
    nu: Prior | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _prior(cls, value: Any, info: ValidationInfo) -> Prior:
        try:
            return parse_prior(str(value), info.field_name)  # type: ignore[arg-type]
        except TrialsynthError as err:
            raise fail(str(err)) from None

    def given(self) -> dict[str, Prior]:
        """The priors the spec sets (the others keep their defaults)."""
        return {role: getattr(self, role) for role in self.model_fields_set}


class SamplerSection(Strict):
    """``[sampler]``: NUTS settings (ranges checked by :class:`SamplerSettings`)."""

    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    seed: int | None = None
    target_accept: ExactFloat = 0.9

    @model_validator(mode="after")
    def _ranges(self) -> SamplerSection:
        try:
            self.settings()
        except TrialsynthError as err:
            raise fail(str(err)) from None
        return self

    def settings(self) -> SamplerSettings:
        """The validated settings (defaults for keys not given)."""
        return SamplerSettings(**{k: getattr(self, k) for k in self.model_fields_set})


class OutputSection(Strict):
    """``[output]``: where ``run`` writes."""

    dir: str | None = None


class CumulativeSection(Strict):
    """``[cumulative]``: the report adds the cumulative meta-analysis in this order."""

    order: str = "year"


class SpecDocument(Strict):
    """A whole analysis spec; ``[sensitivity]`` and ``[queries]`` are checked by their owners."""

    unknown_noun: ClassVar[str] = "section"
    unknown_form: ClassVar[str] = "[{key}]"
    analysis: AnalysisSection = Field(default_factory=AnalysisSection)
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    priors: PriorsSection = Field(default_factory=PriorsSection)
    sampler: SamplerSection = Field(default_factory=SamplerSection)
    output: OutputSection = Field(default_factory=OutputSection)
    cumulative: CumulativeSection | None = None
    bias_adjustment: BiasAdjustmentSection | None = None
    sensitivity: dict[str, Any] = Field(default_factory=dict)
    queries: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def scope(cls, loc: Sequence[str | int]) -> str:
        """``("sampler", "draws")`` -> ``[sampler] draws``."""
        if not loc:
            return ""
        return " ".join([f"[{loc[0]}]", *(str(p) for p in loc[1:])])

    @model_validator(mode="after")
    def _whole(self) -> SpecDocument:
        if not self.data.source:
            raise fail("[data] source is required (a CSV path or a shipped dataset name)")
        # a [priors] nu estimates the Student-t degrees of freedom; [model] nu fixes them
        if self.priors.nu is not None and "nu" in self.model.model_fields_set:
            raise fail(
                "give either [model] nu (fixed degrees of freedom) or [priors] nu "
                "(estimated under that prior), not both"
            )
        return self


# ---------------------------------------------------------------------- [sensitivity]


def _as_list(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise fail("empty list")
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise fail(f"expected a string or a list of strings, got {v!r}")
    return tuple(v.strip() for v in values)


def _check_data_choice(text: str) -> None:
    low = text.lower()
    if low in ("all", "leave-one-out"):
        return
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if not sep or not rest.strip() or kind not in ("drop", "confidence", "filter", "dataset"):
        raise fail(f"unknown choice {text!r}; valid: {', '.join(DATA_FORMS)}")
    if kind == "confidence":
        levels = [v.strip().lower() for v in rest.split(",")]
        bad = [v for v in levels if v not in CONFIDENCE_LEVELS]
        if bad:
            raise fail(
                f"unknown confidence level {bad[0]!r} in {text!r}; "
                f"valid: {', '.join(CONFIDENCE_LEVELS)}"
            )
    if kind == "filter":
        column, eq, values = rest.partition("=")
        if not eq or not column.strip() or not values.strip():
            raise fail(f"{text!r} must be filter:COLUMN=VALUE[,VALUE]")


Choices = Annotated[tuple[str, ...] | None, BeforeValidator(_as_list)]


class SensitivityBlock(Strict):
    """One grid or list of scenarios (a ``[[sensitivity.also]]`` table)."""

    tau: Choices = None
    mu: Choices = None
    baseline: Choices = None
    model: Choices = None
    random_effects: Choices = None
    data: Choices = None
    combine: str = "grid"

    @field_validator("tau", "mu", "baseline")
    @classmethod
    def _priors(cls, values: tuple[str, ...] | None, info: ValidationInfo) -> Any:
        for v in values or ():
            try:
                parse_prior(v, info.field_name)  # type: ignore[arg-type]
            except TrialsynthError as err:
                raise fail(str(err)) from None
        return values

    @field_validator("model", "random_effects")
    @classmethod
    def _names(cls, values: tuple[str, ...] | None, info: ValidationInfo) -> Any:
        valid = MODELS if info.field_name == "model" else RANDOM_EFFECTS
        for v in values or ():
            if v not in valid:
                raise fail(f"{v!r}; valid: {', '.join(valid)}")
        return values

    @field_validator("data")
    @classmethod
    def _data(cls, values: tuple[str, ...] | None) -> Any:
        for v in values or ():
            _check_data_choice(v)
        return values

    @field_validator("combine", mode="before")
    @classmethod
    def _combine(cls, value: Any) -> Any:
        if value not in COMBINE:
            raise fail(f"{value!r}; valid: {', '.join(COMBINE)}")
        return value

    @model_validator(mode="after")
    def _lengths(self) -> SensitivityBlock:
        axes = self.axes()
        if self.combine == "list" and len({len(v) for v in axes.values() if len(v) > 1}) > 1:
            detail = ", ".join(f"{a}: {len(v)}" for a, v in axes.items())
            raise fail(
                'combine = "list" matches the i-th entries, so every list needs the '
                f"same length (or length 1); got {detail}"
            )
        return self

    def axes(self) -> dict[str, tuple[str, ...]]:
        """The axes given, in :data:`AXES` order."""
        return {a: getattr(self, a) for a in AXES if getattr(self, a) is not None}


def _also(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise fail("expected [[sensitivity.also]] tables")
    return value


class SensitivitySection(SensitivityBlock):
    """A ``[sensitivity]`` table: a first block, options, and ``also`` blocks."""

    nu: Any = None
    engine: str | None = None
    workers: Any = 1
    also: Annotated[list[SensitivityBlock], BeforeValidator(_also)] = Field(default_factory=list)

    @classmethod
    def scope(cls, loc: Sequence[str | int]) -> str:
        """``("also", 0, "tau")`` -> ``also #1 tau``."""
        return " ".join(f"#{p + 1}" if isinstance(p, int) else str(p) for p in loc)

    @field_validator("nu", mode="before")
    @classmethod
    def _nu(cls, value: Any) -> Any:
        ok = not isinstance(value, bool) and isinstance(value, int | float) and value > 0
        if value is not None and not ok:
            raise fail(f"expected a positive number, got {value!r}")
        return value

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail(f"expected a positive integer, got {value!r}")
        return value

    @field_validator("engine", mode="before")
    @classmethod
    def _engine(cls, value: Any) -> Any:
        if value is not None and value not in ENGINES:
            raise fail(f"{value!r}; valid: {', '.join(ENGINES)}")
        return value
