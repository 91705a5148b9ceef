"""What ``trialsynth cumulative DATA|SPEC`` does: the inputs, the analysis, the files.

:func:`inputs_from_options` and :func:`inputs_from_spec` build the data, model, priors,
sampler settings and engine (from command-line options, or from an analysis spec and its
exclusions); :func:`write_cumulative` writes ``cumulative.json`` and the two figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from trialsynth.analysis.cumulative import Cumulative, CumulativeError, cumulative
from trialsynth.core.files import atomic_write_text, commit_files
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import TrialData, load
from trialsynth.models.analysis import load_spec
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import PriorSet
from trialsynth.report.figures_design import cumulative_forest_plot, cumulative_probability_plot


@dataclass(frozen=True)
class CumulativeInputs:
    """What a cumulative meta-analysis is run on."""

    data: TrialData
    spec: ModelSpec
    priors: PriorSet
    settings: SamplerSettings
    engine: str = "auto"

    def run(self, order: str = "year") -> Cumulative:
        """The cumulative meta-analysis in the order of column ``order``."""
        return cumulative(
            self.data,
            spec=self.spec,
            priors=self.priors,
            settings=self.settings,
            order=order,
            engine=self.engine,
        )


def inputs_from_options(
    source: str,
    *,
    model: str,
    engine: str,
    likelihood: str | None,
    random_effects: str,
    nu: float | None,
    priors: PriorSet,
    settings: SamplerSettings,
) -> CumulativeInputs:
    """The inputs of a data argument (CSV path or shipped dataset) and the model options."""
    data = load(source, min_trials=1)
    spec = ModelSpec.from_options(
        model,
        data_kind=data.kind,
        likelihood=likelihood,
        random_effects=random_effects,
        nu=4.0 if nu is None else nu,
    )
    return CumulativeInputs(data, spec, priors, settings, engine)


def inputs_from_spec(path: str, seed: int | None = None) -> CumulativeInputs:
    """The inputs of an analysis spec (its data after ``[data] exclude``, model, priors)."""
    spec = load_spec(path)
    data = load(
        spec.data_source(), min_trials=1, columns=spec.columns or None, outcome=spec.outcome
    )
    data = spec.without_excluded(data, where=path, error=CumulativeError)
    settings = spec.sampler if seed is None else replace(spec.sampler, seed=seed)
    if spec.bias is not None:  # its steps are unadjusted fits: say so rather than drop it
        raise CumulativeError(
            f"{path} [bias_adjustment]: the cumulative meta-analysis does not apply a bias "
            "adjustment; remove the section or run cumulative on the data"
        )
    return CumulativeInputs(data, spec.model_spec(data.kind), spec.priors, settings, spec.engine)


def write_cumulative(res: Cumulative, folder: Path) -> None:
    """``cumulative.json`` and the two figures, written atomically into ``folder``."""
    import matplotlib.pyplot as plt  # heavy: only when figures are drawn

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "cumulative.json", json.dumps(res.to_json(), indent=2) + "\n")
    figs = {
        "cumulative_forest.png": cumulative_forest_plot(res),
        "cumulative_years.png": cumulative_probability_plot(res),
    }
    commit_files(
        folder,
        {
            name: (lambda path, f=fig: f.savefig(path, dpi=200, format="png"))
            for name, fig in figs.items()
        },
    )
    for fig in figs.values():
        plt.close(fig)
