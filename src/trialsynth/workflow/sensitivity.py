"""What ``trialsynth sensitivity`` (and the ``[sensitivity]`` part of ``run``) does.

:func:`plan_sensitivity` validates the section and expands it into scenarios;
:func:`load_sensitivity` does that for a spec file (section errors before data errors);
:func:`run_sensitivity` fits what is not stored yet, writes the table and, when the table
changed, the figure. The scenarios themselves are :mod:`trialsynth.analysis.sensitivity`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.analysis.sensitivity import (
    Elsewhere,
    Scenario,
    SensitivityConfig,
    SensitivityError,
    SensitivityResult,
    parse_section,
    plan,
    run,
    spec_data,
)
from trialsynth.models.analysis import AnalysisSpec, load_spec
from trialsynth.models.schema import KEYS
from trialsynth.report.plots import sensitivity_plot
from trialsynth.report.style import save_figure

if TYPE_CHECKING:
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import TrialData
    from trialsynth.results.base import FitResult

#: Called after each scenario, as ``tick(scenario, record)``.
Tick = Callable[[Scenario, dict[str, Any]], None]
#: Makes the ``tick`` of a run of ``n`` scenarios (e.g. a progress bar), as a context.
Tracker = Callable[[int], AbstractContextManager[Tick]]


@dataclass(frozen=True)
class SensitivityPlan:
    """The scenarios of a spec's ``[sensitivity]`` section, and where they go."""

    spec: AnalysisSpec
    data: TrialData
    folder: Path
    config: SensitivityConfig
    scenarios: list[Scenario]

    @property
    def title(self) -> str:
        """Title of the table and the figure."""
        return f"{self.spec.title or self.spec.name}: sensitivity"


def plan_sensitivity(
    spec: AnalysisSpec,
    data: TrialData,
    folder: Path,
    *,
    settings: SamplerSettings,
    config: SensitivityConfig | None = None,
) -> SensitivityPlan:
    """The scenarios of ``spec`` on ``data`` (its exclusions applied), stored in ``folder``.

    A spec with a ``[bias_adjustment]`` is refused: its scenarios would be unadjusted fits.
    """
    if spec.bias is not None:
        raise SensitivityError(
            f"{spec.path}: the [sensitivity] scenarios do not apply the [bias_adjustment]; "
            "remove one of the two sections"
        )
    if config is None:
        config = parse_section(spec.sensitivity, where=f"{spec.path} [sensitivity]")
    scenarios = plan(spec, data, config, sampler=settings)
    return SensitivityPlan(spec, data, folder, config, scenarios)


def load_sensitivity(
    spec_path: Path,
    *,
    out_dir: Path | None = None,
    seed: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> SensitivityPlan:
    """:func:`plan_sensitivity` of a spec file (default folder: its output dir/sensitivity).

    Raises
    ------
    SensitivityError
        The spec has no ``[sensitivity]`` section, or a bad one (before the data is read).
    """
    spec = load_spec(spec_path)
    if not spec.sensitivity:
        raise SensitivityError(
            f"{spec_path}: no [sensitivity] section; valid keys there: {', '.join(KEYS)}"
        )
    config = parse_section(spec.sensitivity, where=f"{spec.path} [sensitivity]")
    settings = spec.sampler if seed is None else replace(spec.sampler, seed=seed)
    data = spec_data(spec)
    if notify is not None:
        for notice in data.notices:
            notify(notice)
    folder = out_dir or spec.output_dir() / "sensitivity"
    return plan_sensitivity(spec, data, folder, settings=settings, config=config)


def run_sensitivity(
    plan: SensitivityPlan,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    tracker: Tracker | None = None,
    elsewhere: Elsewhere | None = None,
    fitted: Mapping[str, FitResult] | None = None,
) -> SensitivityResult:
    """Fit the scenarios not stored yet, write the table and (if it changed) the figure.

    ``workers`` defaults to the section's; ``scheduler`` sends the scenarios to Dask;
    ``elsewhere`` names those another process is fitting now (``run``'s second process);
    ``fitted`` gives fits already made of some scenarios' analyses (``run``'s main fit).
    """
    n_workers = workers if workers is not None else plan.config.workers
    how = {"workers": n_workers, "scheduler": scheduler, "elsewhere": elsewhere, "fitted": fitted}
    if tracker is None:
        result = run(plan.scenarios, plan.folder, **how)
    else:
        with tracker(len(plan.scenarios)) as tick:
            result = run(plan.scenarios, plan.folder, progress=tick, **how)
    if result.changed or not (plan.folder / "sensitivity.svg").exists():  # else it is current
        import matplotlib.pyplot as plt  # heavy: only when a figure is drawn

        fig = sensitivity_plot(result.rows, title=plan.title)
        save_figure(fig, plan.folder, "sensitivity", png=True)  # its own output: PNG too
        plt.close(fig)
    return result
