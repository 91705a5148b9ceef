"""Analysis specs: the TOML files in ``models/`` that a researcher edits.

A spec names the data, the model, the priors, the sampler settings and where results
go. Unknown sections or keys are errors that list the valid ones: a misspelt prior key
must never fall back silently to a default.

Paths in ``[data] source`` are relative to the spec file; ``[output] dir`` is relative
to the working directory (default ``reports/<analysis name>``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialsynth.core.settings import ENGINES, SamplerSettings
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import PriorSet, parse_prior


class SpecError(ValueError):
    """A spec file that cannot be used (one-line message)."""


_SECTIONS: dict[str, tuple[str, ...]] = {
    "analysis": (
        "name",
        "title",
        "question",
        "treatment",
        "control",
        "control_risk",
        "mcid",
        "benefit",
    ),
    "data": ("source", "exclude", "columns", "outcome"),
    "model": (
        "model",
        "engine",
        "likelihood",
        "random_effects",
        "nu",
        "subgroup",
        "subgroup_tau",
        "covariates",
    ),
    "priors": ("mu", "tau", "baseline", "beta", "nu"),
    "sampler": ("draws", "tune", "chains", "seed", "target_accept"),
    "output": ("dir",),
    "cumulative": ("order",),
}
#: Sections whose contents are validated by their own modules (sensitivity, queries).
_FREE_SECTIONS = ("sensitivity", "queries")


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
        )

    def output_dir(self) -> Path:
        """Where ``run`` writes its outputs."""
        return self.out_dir or Path("reports") / self.name


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _check_keys(where: str, table: dict[str, Any], valid: tuple[str, ...]) -> None:
    for key in table:
        if key not in valid:
            raise SpecError(f"{where}: unknown key {key!r}; valid: {', '.join(valid)}")


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate an analysis spec.

    Raises
    ------
    SpecError
        Missing file, bad TOML, unknown section or key, wrong type, bad prior.
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
    for section, table in doc.items():
        if section not in _SECTIONS and section not in _FREE_SECTIONS:
            valid = ", ".join((*_SECTIONS, *_FREE_SECTIONS))
            raise SpecError(f"{p}: unknown section [{section}]; valid: {valid}")
        if not isinstance(table, dict):
            raise SpecError(f"{p}: [{section}] must be a table")
        if section in _SECTIONS:
            _check_keys(f"{p} [{section}]", table, _SECTIONS[section])

    def get(section: str, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = doc.get(section, {}).get(key, default)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is a subclass of int in Python: `nu = true` must not read as 1.
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if value is not default and (wrong_bool or not isinstance(value, kind)):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise SpecError(f"{p} [{section}] {key}: expected {names}, got {value!r}")
        return value

    source = get("data", "source", str)
    if not source:
        raise SpecError(f"{p}: [data] source is required (a CSV path or a shipped dataset name)")
    name = get("analysis", "name", str) or p.stem
    priors_table = doc.get("priors", {})
    try:
        priors = PriorSet(
            **{
                role: parse_prior(str(priors_table[role]), role)  # type: ignore[arg-type]
                for role in ("mu", "tau", "baseline", "beta", "nu")
                if role in priors_table
            }
        )
    except ValueError as err:
        raise SpecError(f"{p} [priors]: {err}") from None
    # a [priors] nu estimates the Student-t degrees of freedom; [model] nu fixes them
    if "nu" in priors_table and "nu" in doc.get("model", {}):
        raise SpecError(
            f"{p}: give either [model] nu (fixed degrees of freedom) or [priors] nu "
            "(estimated under that prior), not both"
        )
    sampler_table = doc.get("sampler", {})
    for key, value in sampler_table.items():
        want = float if key == "target_accept" else int
        if isinstance(value, bool) or not isinstance(value, want):
            raise SpecError(f"{p} [sampler] {key}: expected {want.__name__}, got {value!r}")
    try:
        sampler = SamplerSettings(**sampler_table)
    except ValueError as err:
        raise SpecError(f"{p} [sampler]: {err}") from None
    engine = get("model", "engine", str, "auto")
    if engine not in ENGINES:
        raise SpecError(
            f"{p} [model] engine: unknown engine {engine!r}; valid: {', '.join(ENGINES)}"
        )
    exclude = get("data", "exclude", list, [])
    columns = get("data", "columns", dict, {})
    out = get("output", "dir", str)
    return AnalysisSpec(
        name=name,
        source=source,
        path=p.resolve(),
        title=get("analysis", "title", str, ""),
        question=get("analysis", "question", str, ""),
        treatment=get("analysis", "treatment", str, "treatment"),
        control=get("analysis", "control", str, "control"),
        exclude=tuple(str(s) for s in exclude),
        columns={str(k): str(v) for k, v in columns.items()},
        outcome=get("data", "outcome", str),
        control_risk=_opt_float(get("analysis", "control_risk", (int, float))),
        mcid=_opt_float(get("analysis", "mcid", (int, float))),
        benefit=get("analysis", "benefit", str),
        model=get("model", "model", str, "binomial-normal"),
        likelihood=get("model", "likelihood", str),
        engine=engine,
        random_effects=get("model", "random_effects", str),
        nu=None if "nu" in priors_table else float(get("model", "nu", (int, float), 4.0)),
        subgroup=get("model", "subgroup", str),
        subgroup_tau=get("model", "subgroup_tau", str, "shared"),
        covariates=tuple(str(c) for c in get("model", "covariates", list, [])),
        priors=priors,
        sampler=sampler,
        out_dir=Path(out) if out else None,
        sensitivity=dict(doc.get("sensitivity", {})),
        queries=dict(doc.get("queries", {})),
        cumulative=get("cumulative", "order", str, "year") if "cumulative" in doc else None,
    )
