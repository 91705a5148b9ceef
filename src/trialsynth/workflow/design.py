"""What ``trialsynth design FIT`` does: the assurance of a future trial from a saved fit.

:func:`design_from_folder` for a trial judged alone (``two-sided-test``, ``posterior``);
:func:`updated_design_from_folder` for one judged by the meta-analysis it joins
(``updated-meta``, ``updated-meta-classical``), with a refit check of weak reweighting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialsynth.analysis import updated_meta
from trialsynth.analysis.assurance import Criterion, DesignResult, design_trial
from trialsynth.report.figures_design import assurance_curves_plot
from trialsynth.report.plots import assurance_plot
from trialsynth.results.base import FitResult
from trialsynth.workflow.outputs import prepare_output


@dataclass
class DesignOutcome:
    """The saved fit and the design computed from it."""

    fit: FitResult
    design: DesignResult | updated_meta.UpdatedDesign


def design_from_folder(
    fit_dir: Path,
    sizes: Sequence[int],
    *,
    criterion: Criterion,
    plot: Path | None = None,
    **options: Any,
) -> DesignOutcome:
    """Load the fit in ``fit_dir``, compute the design, and draw its curve into ``plot``.

    ``options`` are those of :func:`~trialsynth.analysis.assurance.design_trial`. The
    folder of ``plot`` is checked (and made) before the simulation.
    """
    fit = FitResult.load(fit_dir)
    if plot is not None:
        prepare_output(plot.parent, option="--plot")
    design = design_trial(fit, sizes, criterion=criterion, **options)
    if plot is not None:
        _save(assurance_plot(design), plot)
    return DesignOutcome(fit, design)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt  # heavy: only when a figure is drawn

    fig.savefig(path, dpi=200)
    plt.close(fig)


def updated_design_from_folder(
    fit_dir: Path,
    sizes: Sequence[int],
    *,
    criterion: str,
    refit_check: int = 5,
    plot: Path | None = None,
    notify: Callable[[str], None] | None = None,
    **options: Any,
) -> DesignOutcome:
    """The updated-meta design of the fit in ``fit_dir`` (and its three curves in ``plot``).

    Where the Kish ESS of the reweighted draws near the threshold is below
    :data:`~trialsynth.analysis.updated_meta.ESS_WARN`, ``refit_check`` simulated trials
    are refitted by MCMC to check the reweighting (``notify`` is told first); ``options``
    are those of :func:`~trialsynth.analysis.updated_meta.design_updated`.
    """
    fit = FitResult.load(fit_dir)
    if fit.spec.bias is not None:  # its update (reweighting, exact checks) is unadjusted
        raise updated_meta.UpdateError(
            f"{fit_dir}: the updated meta-analysis does not apply the fit's bias adjustment; "
            "use --criterion two-sided-test or posterior, or a fit without it"
        )
    if plot is not None:
        prepare_output(plot.parent, option="--plot")
    res = updated_meta.design_updated(fit, sizes, criterion=criterion, **options)
    weak = [
        p.n_per_arm
        for p in res.points
        if p.importance and p.importance["ess_min_near_threshold"] < updated_meta.ESS_WARN
    ]
    if weak and refit_check > 0:
        if notify is not None:
            notify(
                f"Kish ESS below {updated_meta.ESS_WARN:g} near the threshold at "
                f"N = {', '.join(map(str, weak))}: refitting {refit_check} simulated trials by "
                "MCMC to check the reweighting (--refit-check 0 skips)"
            )
        res = updated_meta.refit_check(fit, res, trials=refit_check)
    if plot is not None:
        _save(assurance_curves_plot(res), plot)
    return DesignOutcome(fit, res)
