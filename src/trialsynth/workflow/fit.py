"""What ``trialsynth fit`` and ``fit --from FIT`` do, as functions returning objects.

``fit``: :func:`plan_fit` reads the data and checks the model against it (before anything
is compiled), :func:`run_fit` checks the output folder, fits (with ``engine="both"``
exactly and by MCMC, with their agreement) and writes the folder. ``fit --from``:
:func:`redo_inputs` rebuilds a saved fit's inputs from its provenance, verified against
its analysis key; :func:`run_redo` refits them and says whether the summary is identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialsynth.analysis.absolute import attach_absolute, check_options, reference_benefit
from trialsynth.analysis.agreement import AGREEMENT_Z, engine_agreement
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import TrialData, load
from trialsynth.models.bias import BiasAdjustment, BiasError
from trialsynth.models.design import design
from trialsynth.models.spec import ModelSpec
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit
from trialsynth.results.provenance import analysis_key, provenance_key_fields
from trialsynth.results.recorded import recorded_trials
from trialsynth.workflow.outputs import OutputError, check_output, differences, write_outputs

if TYPE_CHECKING:
    from trialsynth.engines.base import Progress
    from trialsynth.priors.prior import PriorSet

#: Called with a note for the user as it arises (data notices, reuse of a saved fit).
Notify = Callable[[str], None]
#: Engines ``fit`` accepts: those of a fit, and ``both`` (exact and MCMC side by side).
FIT_ENGINES = ("auto", "mcmc", "exact", "both")


def _silent(_note: str) -> None:
    """The default :data:`Notify`: say nothing."""


@dataclass(frozen=True)
class FitPlan:
    """A fit about to run: validated data, model, priors and settings."""

    data: TrialData
    spec: ModelSpec
    priors: PriorSet
    settings: SamplerSettings
    engine: str = "auto"
    out_dir: Path | None = None
    #: Options of the absolute effects (control_risk, mcid, benefit); None: none attached
    absolute: dict[str, Any] | None = field(default_factory=dict)

    @property
    def notices(self) -> tuple[str, ...]:
        """The data's notices (printed before the fit)."""
        return self.data.notices

    @property
    def fit_engine(self) -> str:
        """The engine of the main fit (``both``: the exact one, beside an MCMC fit)."""
        return "exact" if self.engine == "both" else self.engine


@dataclass
class FitOutcome:
    """A finished fit: the result, its summary (what ``fit --json`` prints), the MCMC twin."""

    result: FitResult
    summary: dict[str, Any]
    mcmc: FitResult | None = None

    @property
    def agreement_limit(self) -> float:
        """|z| up to which an MCMC value agrees with the exact one (``engine="both"``)."""
        return AGREEMENT_Z


def plan_fit(
    source: str,
    *,
    outcome: str | None = None,
    model: str = "binomial-normal",
    model_options: Mapping[str, Any] | None = None,
    priors: PriorSet,
    settings: SamplerSettings,
    engine: str = "auto",
    out_dir: Path | None = None,
    absolute: Mapping[str, Any] | None = None,
    bias: Mapping[str, Any] | None = None,
    notify: Notify = _silent,
) -> FitPlan:
    """Read the data and check the model against it (unknown columns fail here, not later).

    Parameters
    ----------
    source : str
        CSV path, RevMan file or shipped dataset name.
    outcome : str, optional
        The outcome of a RevMan review (``C.O`` or its name).
    model : str
        ``binomial-normal``, ``normal-normal`` or ``common-effect`` (one trial suffices).
    model_options : mapping, optional
        The other keywords of :meth:`ModelSpec.from_options`.
    priors, settings, engine, out_dir
        As the fit will use them (``engine`` one of :data:`FIT_ENGINES`).
    absolute : mapping, optional
        ``control_risk``, ``mcid``, ``benefit`` of the absolute effects (checked first).
    bias : mapping, optional
        A bias adjustment of the weaker trials: ``column``, ``adequate``, ``prior``, ``sd``
        (:meth:`BiasAdjustment.from_options`; its direction is ``absolute["benefit"]``).
    notify : callable
        Receives the data's notices.
    """
    options = dict(absolute or {})
    check_options(options.get("control_risk"), options.get("mcid"), options.get("benefit"))
    adjustment = None
    if bias:
        adjustment = BiasAdjustment.from_options(**bias, benefit=options.get("benefit"))
    data = load(source, min_trials=1 if model == "common-effect" else 2, outcome=outcome)
    if adjustment is not None:
        check_bias_direction(adjustment, options.get("benefit"), data)
    spec = ModelSpec.from_options(
        model, data_kind=data.kind, **(model_options or {}), bias=adjustment
    )
    design(spec, data)  # unknown subgroup/covariate columns: one-line error now
    for notice in data.notices:
        notify(notice)
    return FitPlan(data, spec, priors, settings, engine, out_dir, options)


def check_bias_direction(adj: BiasAdjustment, benefit: str | None, data: TrialData) -> None:
    """Refuse to guess the bias's sign when RevMan's labels say fewer events are a benefit.

    The bias adjustment's direction is the stated ``benefit`` (default more-events); a review
    whose forest plot favours the experimental arm on the left (fewer events a benefit) must
    say so, or the bias would be subtracted the wrong way.
    """
    if benefit is None and reference_benefit(data.reference) != adj.benefit:
        raise BiasError(
            "bias adjustment: RevMan's forest-plot labels say fewer events are a benefit; "
            "state the direction with --benefit ([analysis] benefit)"
        )


def run_fit(
    plan: FitPlan,
    *,
    force: bool = False,
    progress: Progress | None = None,
    notify: Notify = _silent,
) -> FitOutcome:
    """Check the output folder, fit, and write the folder (``plan.out_dir``, if any).

    With ``engine="both"`` the main result is the exact fit; the summary gets the
    ``agreement`` rows and the MCMC fit's ``diagnostics``, ``status`` and ``mcse``.
    ``notify`` hears why a fit has no absolute effects.
    """
    if plan.out_dir is not None:  # before sampling: writable, and no other analysis overwritten
        check_output(
            plan.out_dir,
            plan.data,
            plan.spec,
            plan.priors,
            plan.settings,
            plan.fit_engine,
            force=force,
        )

    def one(engine: str) -> FitResult:
        return fit(
            plan.data,
            spec=plan.spec,
            priors=plan.priors,
            settings=plan.settings,
            reusable=False,
            progress=progress,
            engine=engine,
        )

    result = one(plan.fit_engine)
    mcmc = one("mcmc") if plan.engine == "both" else None
    if plan.absolute is not None:
        with_absolute(result, plan.absolute, notify)
    if plan.spec.bias is not None:  # in the summary.json written next
        result.extras["bias_unadjusted"] = unadjusted(plan, result)
    if plan.out_dir is not None:
        result.timings |= write_outputs(result, plan.out_dir, progress=progress)
    summary = result.summary()
    if mcmc is not None:
        summary["agreement"] = engine_agreement(result, mcmc)
        summary["mcmc"] = {
            k: v for k, v in mcmc.summary().items() if k in ("diagnostics", "status", "mcse")
        }
    return FitOutcome(result, summary, mcmc)


def unadjusted(plan: FitPlan, adjusted: FitResult) -> dict[str, Any] | None:
    """P(OR > 1) and the pooled OR of the same model without the bias adjustment.

    Only beside an exact fit (the unadjusted one takes milliseconds); an MCMC fit would need
    a second compile and sampling run: None (``scripts/bias_steps.py`` compares them).
    """
    if adjusted.engine != "exact":
        return None
    other = fit(
        plan.data,
        spec=replace(plan.spec, bias=None),
        priors=plan.priors,
        settings=plan.settings,
        reusable=False,
        engine="exact",
    )
    s = other.summary()
    return {"engine": "exact", "p_mu_gt_0": s["p_mu_gt_0"], "or": s["or"], "tau": s["tau"]}


def with_absolute(result: FitResult, options: Mapping[str, Any], notify: Notify) -> None:
    """Attach the absolute effects of ``result`` (``summary.json`` ``absolute``), or say why not."""
    if attach_absolute(result, **options) is None:
        notify(
            "no absolute effects: contrast-level data have no control arms; give "
            "--control-risk P ([analysis] control_risk)"
        )


# ---------------------------------------------------------------------- fit --from


@dataclass(frozen=True)
class RedoInputs:
    """Everything needed to redo a saved fit."""

    data: TrialData
    spec: ModelSpec
    priors: PriorSet
    settings: SamplerSettings
    engine: str
    provenance: dict[str, Any]


@dataclass
class RedoOutcome(FitOutcome):
    """A redone fit; ``summary["redo"]`` says whether it reproduced the saved one."""

    saved: dict[str, Any] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """The summary equals the saved one."""
        return bool(self.summary["redo"]["identical"])

    @property
    def same_versions(self) -> bool:
        """The package versions equal the saved fit's."""
        return bool(self.summary["redo"]["same_versions"])


def redo_inputs(fit_dir: Path) -> RedoInputs:
    """Data, model, priors, sampler settings and engine of a saved fit, verified.

    The rebuilt inputs must give the recorded :func:`analysis_key` (the same analysis);
    package versions may differ (then the numbers may differ in Monte Carlo error).

    Raises
    ------
    trialsynth.results.provenance.ResultError
        The folder cannot be loaded, or its analysed trials cannot be recovered.
    OutputError
        The inputs do not rebuild the same analysis (their analysis key differs).
    """
    result = FitResult.load(fit_dir)
    prov = result.provenance
    data = recorded_trials(prov, str(fit_dir))
    spec, priors = result.spec, result.priors
    settings = SamplerSettings(**prov["settings"])
    engine = prov.get("engine", "mcmc")
    rebuilt = provenance_key_fields(data, spec, priors, settings, engine=engine)
    if analysis_key(rebuilt) != analysis_key(prov):
        raise OutputError(
            f"{fit_dir}: the saved provenance does not rebuild the same analysis (differs in "
            f"{differences({**rebuilt, 'model_spec': rebuilt['model']}, prov)})"
        )
    return RedoInputs(data, spec, priors, settings, engine, dict(prov))


def run_redo(
    from_fit: Path,
    inputs: RedoInputs,
    *,
    out_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    notify: Notify = _silent,
) -> RedoOutcome:
    """Refit ``inputs`` (:func:`redo_inputs`) and compare with the summary saved in ``from_fit``."""
    folder = from_fit if from_fit.is_dir() else from_fit.parent
    saved = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    # the same absolute effects as the saved fit (none if it had none)
    absolute = (saved["absolute"].get("options") or {}) if "absolute" in saved else None
    plan = FitPlan(
        inputs.data,
        inputs.spec,
        inputs.priors,
        inputs.settings,
        inputs.engine,
        out_dir,
        absolute,
    )
    done = run_fit(plan, force=force, progress=progress, notify=notify)
    summary = done.summary
    summary["redo"] = {
        "of": str(from_fit),
        "fit_key": saved.get("fit_key"),
        # compile form, numba and CPU target too (MCMC)
        "same_versions": saved.get("versions") == summary["versions"]
        and saved.get("numerics") == summary.get("numerics"),
        "identical": {k: v for k, v in saved.items() if k != "redo"} == summary,
    }
    return RedoOutcome(done.result, summary, saved=saved)
