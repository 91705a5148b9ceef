"""What ``trialsynth run SPEC.toml`` does, as functions returning objects.

:func:`plan_run` reads the spec and its data (exclusions applied), checks the output
folder and finds an identical fit saved there (reused unless ``refit``);
:func:`run_analysis` fits (or reuses) and writes what is not current: summary, posterior,
forest plot and, without a ``[sensitivity]`` section, the report. With one, the caller runs
the scenarios (:mod:`trialsynth.workflow.sensitivity`) and :func:`finish_run` writes the
report with their table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.analysis.absolute import check_options
from trialsynth.analysis.cumulative import trial_order
from trialsynth.analysis.sensitivity import (
    Elsewhere,
    ScenarioStore,
    SensitivityResult,
    parse_section,
    scenario_key,
)
from trialsynth.core.errors import TrialsynthError
from trialsynth.data import SHIPPED_DATASETS, TrialData, load
from trialsynth.engines.select import choose_engine
from trialsynth.models.analysis import AnalysisSpec, SpecError, load_spec
from trialsynth.models.bias import BiasError
from trialsynth.models.design import design
from trialsynth.models.problem import Problem
from trialsynth.models.spec import ModelError, ModelSpec, resolve_priors
from trialsynth.report.report import analysis_meta, is_current, start_future_analyses
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit
from trialsynth.results.provenance import fit_key
from trialsynth.workflow.fit import check_bias_direction, with_absolute
from trialsynth.workflow.outputs import (
    DEFAULT_FORMATS,
    Formats,
    check_output,
    write_outputs,
    write_report,
)
from trialsynth.workflow.warm import not_cached, scenario_structures, start_ahead

if TYPE_CHECKING:
    from concurrent.futures import Future

    from trialsynth.core.settings import SamplerSettings
    from trialsynth.engines.base import Progress
    from trialsynth.report.report import FutureAnalyses
    from trialsynth.workflow.sensitivity import SensitivityPlan


def _silent(_note: str) -> None:
    """Say nothing."""


@dataclass
class RunPlan:
    """A spec ready to fit: its data and model, the output folder, a reusable saved fit."""

    spec: AnalysisSpec
    spec_path: Path
    settings: SamplerSettings
    folder: Path
    data: TrialData
    model: ModelSpec
    engine: str
    previous: FitResult | None = None
    started: float = field(default_factory=time.perf_counter)
    formats: Formats = DEFAULT_FORMATS
    ahead: Elsewhere | None = None  # the second process of compile_ahead

    @property
    def meta(self) -> dict[str, Any]:
        """The report's analysis metadata (from the spec's ``[analysis]``)."""
        s = self.spec
        return analysis_meta(
            name=s.name,
            title=s.title,
            question=s.question,
            treatment=s.treatment,
            control=s.control,
            spec=str(self.spec_path),
            cumulative=s.cumulative,
        )


@dataclass
class RunOutcome:
    """The fit of a run, its summary, and whether its files were (re)written.

    ``ahead``: the report's future-trial analyses, already running while the sensitivity
    scenarios are fitted (a fresh fit with a ``[sensitivity]`` section only).
    """

    result: FitResult
    summary: dict[str, Any]
    fresh: bool
    ahead: Future[FutureAnalyses] | None = None


def load_spec_data(spec: AnalysisSpec, spec_path: Path) -> TrialData:
    """The spec's data, checked to exist, after its ``[data] exclude`` list."""
    source = spec.data_source()
    if not Path(source).is_file() and source not in SHIPPED_DATASETS:
        raise SpecError(
            f"{spec_path} [data] source: {spec.source!r} is neither a file nor a shipped dataset"
            f" (shipped datasets: {', '.join(sorted(SHIPPED_DATASETS))})"
        )
    data = load(
        source,
        columns=spec.columns or None,
        min_trials=1 if spec.model == "common-effect" else 2,
        outcome=spec.outcome,
    )
    return spec.without_excluded(data, where=str(spec_path))


def plan_run(
    spec_path: Path,
    *,
    out_dir: Path | None = None,
    seed: int | None = None,
    refit: bool = False,
    force: bool = False,
    formats: Formats = DEFAULT_FORMATS,
    notify: Callable[[str], None] = _silent,
) -> RunPlan:
    """Read and check everything a run needs before fitting (errors before any sampling).

    ``formats`` of the report and its figures; ``notify`` receives the data's notices, the
    exclusions and the reuse of a saved fit.
    """
    started = time.perf_counter()
    spec = load_spec(spec_path)
    check_options(spec.control_risk, spec.mcid, spec.benefit, f"{spec_path} [analysis]")
    if spec.sensitivity:  # a bad section fails now, not after the main fit
        parse_section(spec.sensitivity, where=f"{spec.path} [sensitivity]")
        if spec.bias is not None:  # its scenarios would be unadjusted fits
            raise SpecError(
                f"{spec_path}: the [sensitivity] scenarios do not apply the [bias_adjustment]; "
                "remove one of the two sections"
            )
    settings = spec.sampler if seed is None else replace(spec.sampler, seed=seed)
    folder = out_dir or spec.output_dir()
    data = load_spec_data(spec, spec_path)
    try:
        model = spec.model_spec(data.kind)
    except ModelError as e:
        raise SpecError(f"{spec_path} [model]: {e}") from None
    except BiasError as e:
        raise SpecError(f"{spec_path} [bias_adjustment]: {e}") from None
    if model.bias is not None:  # the weaker trials and the bias's sign, before any sampling
        try:
            check_bias_direction(model.bias, spec.benefit, data)
            design(model, data)
        except BiasError as e:
            raise SpecError(f"{spec_path} [bias_adjustment]: {e}") from None
    for notice in data.notices:
        notify(notice)
    for s in spec.exclude:
        notify(f"excluded {s} (spec [data] exclude)")
    if spec.cumulative:  # an unknown [cumulative] order column: one line now, not after fitting
        trial_order(data, spec.cumulative, option=f"{spec_path} [cumulative] order")
    engine = choose_engine(spec.engine, model, resolve_priors(model, data, spec.priors))
    fields = check_output(  # before sampling: writable, and no other analysis overwritten
        folder,
        data,
        model,
        spec.priors,
        settings,
        engine,
        force=force,
        option="--out" if out_dir is not None else f"{spec_path} [output] dir",
    )
    plan = RunPlan(
        spec, spec_path, settings, folder, data, model, engine, started=started, formats=formats
    )
    if not refit and (folder / "posterior.nc").exists():
        try:
            previous = FitResult.load(folder)
        except TrialsynthError:  # unreadable or another format: fit again
            previous = None
        if previous is not None and previous.provenance.get("fit_key") == fit_key(fields):
            plan.previous = previous
            notify(
                f"reusing the identical fit saved in {folder} (same data, model, priors, "
                "sampler settings, seed and versions); --refit samples again"
            )
    return plan


def run_analysis(
    plan: RunPlan,
    *,
    progress: Progress | None = None,
    notify: Callable[[str], None] = _silent,
) -> RunOutcome:
    """Fit (or reuse the saved fit) and write the outputs that are not current.

    ``notify`` hears why a fit has no absolute effects.
    """
    spec = plan.spec
    result = plan.previous or fit(
        plan.data,
        spec=plan.model,
        priors=spec.priors,
        settings=plan.settings,
        # with a [sensitivity] section the in-process scenarios of the same structure
        # reuse this compiled model (one compile instead of two, and the main scenario's
        # numbers are the main fit's)
        reusable=bool(spec.sensitivity),
        progress=progress,
        engine=plan.engine,
    )
    meta = plan.meta
    saved_absolute = result.extras.get("absolute")
    options = {"control_risk": spec.control_risk, "mcid": spec.mcid, "benefit": spec.benefit}
    with_absolute(result, options, notify)
    fresh = bool(
        result.timings
        or not (plan.folder / "forest.png").exists()
        # missing, another format, another question, or figures of a format not there
        or not is_current(plan.folder, meta, plan.formats[1])
        or result.extras.get("absolute") != saved_absolute  # other control risk or MCID
        or ("pdf" in plan.formats[0] and not (plan.folder / "report.pdf").exists())
    )
    # a fresh fit's report is written after the scenarios: start its numpy-only analyses
    # now, on the second core, beside the fit's outputs and the scenarios
    ahead = start_future_analyses(result) if fresh and spec.sensitivity else None
    if fresh:
        result.timings |= write_outputs(
            result,
            plan.folder,
            progress=progress,
            title=spec.title or None,
            treatment=spec.treatment,
            control=spec.control,
            analysis=meta,
            report=not spec.sensitivity,  # written after the sensitivity runs
            formats=plan.formats,
        )
    summary = result.summary()
    result.timings["total_s"] = time.perf_counter() - plan.started
    return RunOutcome(result, summary, fresh, ahead)


def compile_ahead(plan: RunPlan, sensitivity: SensitivityPlan) -> None:
    """Start a second process that does the scenarios' work the main fit cannot share.

    It compiles the pending scenarios' structures that are neither the main fit's nor in
    the compile cache and, when the scenarios run in this process (``workers = 1``), fits
    the pending scenarios that do not use the main fit's compiled model (the exact-engine
    ones and the other structures'). Only when the main fit is sampled now: a second core
    is then free while it compiles. :func:`finish_run` waits for the process.
    """
    if plan.previous is not None or plan.engine != "mcmc":
        return
    store = ScenarioStore(sensitivity.folder / "scenarios")
    pending = [s for s in sensitivity.scenarios if not store.is_done(s)]
    main = Problem.build(plan.data, plan.model, plan.spec.priors).structure_key
    others = [p for p in scenario_structures(pending) if p.structure_key != main]
    workers = sensitivity.config.workers  # more than 1: worker processes fit them
    beside = [s for s in pending if s.structure not in (main, None)] if workers == 1 else []
    plan.ahead = start_ahead(not_cached(others), beside, store.folder)


def main_fit_scenario(
    plan: RunPlan, outcome: RunOutcome, sensitivity: SensitivityPlan
) -> dict[str, FitResult]:
    """The main fit as the fit of the sensitivity scenario that is the same analysis.

    The scenario key hashes what determines the numbers (data, model, priors, sampler
    settings and seed, engine, versions), so an equal key is the same analysis: its
    record is made from the main fit instead of sampling it again (same draws).
    """
    key = scenario_key(plan.data, plan.model, plan.spec.priors, plan.settings, plan.engine)
    return {key: outcome.result} if any(s.key == key for s in sensitivity.scenarios) else {}


def finish_run(plan: RunPlan, outcome: RunOutcome, sensitivity: SensitivityResult) -> None:
    """The report with the sensitivity table, unless nothing it shows has changed."""
    if plan.ahead is not None:
        plan.ahead.wait()
    meta = plan.meta
    if outcome.fresh or sensitivity.changed or not is_current(plan.folder, meta, plan.formats[1]):
        write_report(
            outcome.result, plan.folder, analysis=meta, formats=plan.formats, ahead=outcome.ahead
        )
