"""Sensitivity runs: one analysis refitted over a grid or list of scenarios.

A scenario changes any of the heterogeneity (tau) prior, the mu prior, the baseline
(control-arm log-odds) prior, the model (binomial-normal, normal-normal, common-effect),
the random-effects distribution (normal, Student-t) and the data (all trials, leave one
trial out, rows of given confidence, a covariate filter, another dataset). The
``[sensitivity]`` section of an analysis spec says which (see :func:`parse_section`);
:func:`plan` expands it into :class:`Scenario` objects and :func:`run` fits them.

Speed: scenarios are grouped by the structure of their compiled model
(:func:`trialsynth.models.pymc.structure_key`) and each group goes to one worker, whose
per-process compile cache then refits with new data and hyperparameters without
recompiling. ``workers=1`` runs in this process; more workers are separate processes
(``spawn``); ``scheduler="tcp://HOST:PORT"`` sends the scenarios to a Dask distributed
cluster instead.

Nothing lost: each finished scenario is written at once, atomically, to
``OUT/scenarios/<key>.json`` (key: hash of data, model, priors, sampler settings, seed
and package versions), and a later run reuses every stored scenario. A scenario whose
fit raises becomes a ``failed`` row carrying its error (only that scenario's exception
is caught; the others go on) and is attempted again by the next run; a fit that fails
its convergence checks is a ``failed`` row with the failed checks.

Determinism: a scenario's numbers depend only on its settings and the seed, never on
the worker, the number of workers or the scheduler.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.core.errors import TrialsynthError
from trialsynth.models.likelihood import log_likelihood, log_prior
from trialsynth.models.schema import AXES, SensitivitySection, validate
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import DEFAULT_BASELINE, DEFAULT_TAU, PriorSet, parse_prior

if TYPE_CHECKING:
    import pandas as pd

    from trialsynth.core.settings import SamplerSettings
    from trialsynth.data import TrialData
    from trialsynth.models.analysis import AnalysisSpec
    from trialsynth.results.base import FitResult


class SensitivityError(TrialsynthError):
    """A ``[sensitivity]`` section or request that cannot be used (one-line message)."""


#: Row fields that depend on the run (timing), not on the scenario's settings and seed.
RUN_FIELDS = ("wall_s",)
#: Version of the stored scenario records (part of every key).
STORE_FORMAT = 1


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Block:
    """One set of scenarios: axis values and how they combine (validated strings)."""

    combine: str = "grid"
    axes: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SensitivityConfig:
    """A validated ``[sensitivity]`` section."""

    blocks: tuple[Block, ...]
    nu: float | None = None
    engine: str | None = None  # None: follow the spec's [model] engine (see plan)
    workers: int = 1


def parse_section(table: dict[str, Any], *, where: str = "[sensitivity]") -> SensitivityConfig:
    """Validate a ``[sensitivity]`` table.

    Keys: the axes ``tau``, ``mu``, ``baseline`` (priors in the ``PRIOR`` grammar),
    ``model``, ``random_effects``, ``data`` (see :data:`trialsynth.models.schema.DATA_FORMS`),
    each a string or a list; ``combine`` (``"grid"``: every combination, default;
    ``"list"``: the i-th entries together); ``nu`` (Student-t degrees of freedom);
    ``workers``; ``also``: a list of further tables (``[[sensitivity.also]]``), each its own
    grid or list over the same axes. An axis not given takes the spec's value. The schema is
    :class:`trialsynth.models.schema.SensitivitySection`.

    Raises
    ------
    SensitivityError
        One line naming every bad key and listing the valid choices.
    """
    if not isinstance(table, dict):
        raise SensitivityError(f"{where} must be a table")
    section = validate(SensitivitySection, table, where=where, error=SensitivityError)
    blocks = [Block(combine=b.combine, axes=b.axes()) for b in (section, *section.also)]
    if not blocks[0].axes and len(blocks) > 1:
        blocks = blocks[1:]  # the top table only holds options
    return SensitivityConfig(
        blocks=tuple(blocks),
        nu=None if section.nu is None else float(section.nu),
        engine=section.engine,
        workers=section.workers,
    )


# --------------------------------------------------------------------------- scenarios


def spec_data(spec: AnalysisSpec) -> TrialData:
    """The spec's data after its ``[data] exclude`` list (the base of every scenario)."""
    from trialsynth.data import load

    data = load(
        spec.data_source(), columns=spec.columns or None, min_trials=1, outcome=spec.outcome
    )
    return spec.without_excluded(data, error=SensitivityError)


@dataclass
class Scenario:
    """One fit of a sensitivity run."""

    index: int
    settings: dict[str, str | None]
    data: TrialData
    spec: ModelSpec
    priors: PriorSet
    sampler: SamplerSettings
    key: str
    engine: str = "mcmc"
    main: bool = False
    label: str = ""

    @property
    def structure(self) -> tuple[Any, ...] | None:
        """The compiled model structure its fit uses (``("exact",)``: none), None if unfittable.

        An unfittable scenario's own fit reports the error, as a failed row.
        """
        if self.engine == "exact":
            return ("exact",)
        from trialsynth.models.problem import Problem

        try:
            return Problem.build(self.data, self.spec, self.priors).structure_key
        except ValueError:
            return None

    def task(self) -> dict[str, Any]:
        """What a worker needs to fit this scenario (picklable)."""
        return {
            "key": self.key,
            "data": self.data,
            "spec": self.spec,
            "priors": self.priors,
            "sampler": self.sampler,
            "engine": self.engine,
            "psense": self.main,
        }


def scenario_key(
    data: TrialData,
    spec: ModelSpec,
    priors: PriorSet,
    sampler: SamplerSettings,
    engine: str = "mcmc",
) -> str:
    """Hash of what determines a scenario's numbers (data, model, priors, sampler, seed).

    Also covers the engine and the package versions (:func:`trialsynth.results.provenance.fit_key`).
    """
    from trialsynth.results.provenance import fit_key, provenance_key_fields

    fields = provenance_key_fields(data, spec, priors, sampler, engine)
    blob = json.dumps({"fit": fit_key(fields), "store": STORE_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _drop(base: TrialData, rest: str) -> TrialData:
    """``drop:STUDY`` or ``drop:A;B`` (several trials; a name holding ';' matches whole)."""
    if rest in base.study or ";" not in rest:
        return base.drop(rest)
    data = base
    for study in (s.strip() for s in rest.split(";")):
        if study:
            data = data.drop(study)  # an unknown study: DataError naming it
    return data


def _select_data(
    choice: str, base: TrialData, spec_path: Path | None
) -> list[tuple[str, TrialData]]:
    """The datasets of one data choice, labelled (leave-one-out gives k of them)."""
    from trialsynth.data import DataError, load

    low = choice.lower()
    if low == "all":
        return [("all", base)]
    if low == "leave-one-out":
        return [(f"drop:{s}", base.drop(s)) for s in base.study]
    kind, _, rest = choice.partition(":")
    kind = kind.strip().lower()
    rest = rest.strip()
    try:
        if kind == "drop":
            return [(f"drop:{rest}", _drop(base, rest))]
        if kind == "confidence":
            levels = [v.strip().lower() for v in rest.split(",")]
            return [(f"confidence:{','.join(levels)}", base.filter("confidence", levels))]
        if kind == "filter":
            column, _, values = rest.partition("=")
            vals = [v.strip() for v in values.split(",")]
            return [
                (f"filter:{column.strip()}={','.join(vals)}", base.filter(column.strip(), vals))
            ]
        source = rest
        if spec_path is not None and Path(rest).suffix and not Path(rest).is_absolute():
            source = str((spec_path.parent / rest).resolve())
        return [(f"dataset:{rest}", load(source, min_trials=1))]
    except DataError as err:
        raise SensitivityError(f"[sensitivity] data {choice!r}: {err}") from None


def _combinations(block: Block, defaults: dict[str, str]) -> list[dict[str, str]]:
    values = {a: block.axes.get(a, (defaults[a],)) for a in AXES}
    if block.combine == "grid":
        return [
            dict(zip(AXES, combo, strict=True)) for combo in itertools.product(*values.values())
        ]
    n = max(len(v) for v in values.values())
    return [{a: (v[i] if len(v) > 1 else v[0]) for a, v in values.items()} for i in range(n)]


def plan(
    spec: AnalysisSpec,
    base: TrialData,
    config: SensitivityConfig | None = None,
    *,
    sampler: SamplerSettings | None = None,
) -> list[Scenario]:
    """Expand a spec's ``[sensitivity]`` section into scenarios.

    The spec's own analysis (its priors and model, all of ``base``) is the main scenario:
    it is added first unless a scenario of the grid equals it, and it gets the
    power-scaling check. Scenarios that coincide (e.g. two baseline priors crossed with
    the normal-normal model, which has no baseline) are kept once.

    Parameters
    ----------
    spec : AnalysisSpec
        The analysis; axes absent from the section take its values.
    base : TrialData
        The spec's data after its exclusions.
    config : SensitivityConfig, optional
        Default: ``parse_section(spec.sensitivity)``.
    sampler : SamplerSettings, optional
        Default: the spec's sampler settings (e.g. with a seed overridden by the caller).
    """
    config = config or parse_section(spec.sensitivity)
    sampler = sampler or spec.sampler
    # engine: the section's, else the spec's "mcmc" if it asks for MCMC, else "auto"
    # (exact where it applies; a spec's "exact" cannot hold for binomial scenarios)
    engine = config.engine or ("mcmc" if spec.engine == "mcmc" else "auto")
    nu = config.nu if config.nu is not None else spec.nu
    defaults = {
        "tau": str(spec.priors.tau),
        "mu": str(spec.priors.mu),
        "baseline": str(spec.priors.baseline),
        "model": spec.model,
        "random_effects": spec.random_effects or "normal",
        "data": "all",
    }
    combos = [c for block in config.blocks for c in _combinations(block, defaults)]
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    data_cache: dict[str, list[tuple[str, TrialData]]] = {}
    main: Scenario | None = None
    for position, combo in enumerate([defaults, *combos]):
        if combo["data"] not in data_cache:
            data_cache[combo["data"]] = _select_data(combo["data"], base, spec.path)
        for data_label, data in data_cache[combo["data"]]:
            s = _scenario(spec, combo, data_label, data, nu, sampler, engine)
            if position == 0:
                main = s
            elif s.key not in seen:
                seen.add(s.key)
                scenarios.append(s)
    assert main is not None
    same = [s for s in scenarios if s.key == main.key]
    if same:
        same[0].main = True
    else:
        main.main = True
        scenarios.insert(0, main)
    for i, s in enumerate(scenarios):
        s.index = i
    _label(scenarios)
    return scenarios


def _scenario(
    spec: AnalysisSpec,
    combo: dict[str, str],
    data_label: str,
    data: TrialData,
    nu: float,
    sampler: SamplerSettings,
    engine: str,
) -> Scenario:
    from trialsynth.engines.select import choose_engine

    model = combo["model"]
    min_trials = 1 if model == "common-effect" else 2
    if data.k < min_trials:
        raise SensitivityError(
            f"[sensitivity] data {data_label!r} leaves {data.k} trial(s); "
            f"the {model} model needs at least {min_trials}"
        )
    try:
        mspec = ModelSpec.from_options(
            model,
            data_kind=data.kind,
            likelihood=spec.likelihood if model == spec.model else None,
            random_effects=combo["random_effects"],
            nu=nu,
            subgroup=spec.subgroup,
            subgroup_tau=spec.subgroup_tau,
            covariates=spec.covariates,
        )
    except ValueError as err:
        raise SensitivityError(
            f"[sensitivity] model {model!r} with data {data_label!r}: {err}"
        ) from None
    priors = replace(
        spec.priors,
        tau=parse_prior(combo["tau"], "tau"),
        mu=parse_prior(combo["mu"], "mu"),
        baseline=parse_prior(combo["baseline"], "baseline"),
    )
    re = mspec.random_effects
    # A prior the model does not use is set to its default, so that scenarios differing
    # only in it have one key and are fitted once.
    if mspec.likelihood != "binomial":
        priors = replace(priors, baseline=DEFAULT_BASELINE)
    if re is None:
        priors = replace(priors, tau=DEFAULT_TAU)
    settings: dict[str, str | None] = {
        "tau": str(priors.tau) if re is not None else None,
        "mu": str(priors.mu),
        "baseline": str(priors.baseline) if mspec.likelihood == "binomial" else None,
        "model": model,
        "random_effects": f"student-t({nu:g})" if re == "student-t" else re,
        "data": data_label,
    }
    try:
        chosen = choose_engine(engine, mspec, priors)
    except ValueError as err:
        raise SensitivityError(f"[sensitivity] engine {engine!r} for {settings}: {err}") from None
    return Scenario(
        index=-1,
        settings=settings,
        data=data,
        spec=mspec,
        priors=priors,
        sampler=sampler,
        key=scenario_key(data, mspec, priors, sampler, chosen),
        engine=chosen,
    )


def _label(scenarios: list[Scenario]) -> None:
    """Short labels naming only the settings that vary across the scenarios."""
    varying = [a for a in AXES if len({s.settings[a] for s in scenarios}) > 1]
    for s in scenarios:
        parts = [f"{a} {s.settings[a]}" for a in varying if s.settings[a] is not None]
        text = "; ".join(parts) if parts else "all settings as specified"
        s.label = f"main: {text}" if s.main else text


# --------------------------------------------------------------------------- one fit


def _log_prior_and_likelihood(result: FitResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log prior and per-trial log likelihood of every draw (``models.likelihood``), for psense.

    The log prior is that of the analysis' priors on mu, tau (on the tau scale, with the
    Jacobian of a tau^2 or precision statement), beta and the control-arm log-odds; the prior
    of an estimated nu is not power-scaled. The log likelihood is per trial (both arms summed
    for the binomial likelihood).
    """
    post = result.tree["posterior"]
    spec = result.spec
    prior = log_prior(spec, result.priors, post)
    prior.pop("nu", None)
    alpha = np.asarray(post["alpha"].values) if spec.likelihood == "binomial" else None
    obs = {name: np.asarray(v.values) for name, v in result.tree["observed_data"].items()}
    bias = np.asarray(post["bias"].values) if spec.bias is not None else None
    loglik = log_likelihood(spec, obs, np.asarray(post["theta"].values), alpha, bias)
    dims = ("chain", "draw")
    return {k: (dims, v) for k, v in prior.items()}, {"y": ((*dims, "study"), loglik)}


def power_scaling(result: FitResult) -> list[dict[str, Any]]:
    """ArviZ power-scaling sensitivity (``psense_summary``) of mu and tau, no refit.

    Kallioinen et al. (2024): the posterior's change when the prior or the likelihood
    is raised to a power near 1, estimated by Pareto-smoothed importance sampling.
    Prior sensitivity > 0.05 with likelihood sensitivity > 0.05 suggests prior-data
    conflict; prior sensitivity > 0.05 alone a strong prior or weak likelihood.

    Returns
    -------
    list of dict
        ``{"variable", "prior", "likelihood", "diagnosis"}`` per variable.
    """
    import xarray as xr
    from arviz_stats import psense_summary

    log_prior, loglik = _log_prior_and_likelihood(result)
    post = result.tree["posterior"].to_dataset()
    names = ["mu", "tau"] if "tau" in log_prior else ["mu"]
    coords = {"chain": post["chain"], "draw": post["draw"], "study": result.studies}
    tree = xr.DataTree.from_dict(
        {
            "posterior": post[names],
            "log_prior": xr.Dataset(log_prior, coords=coords),
            "log_likelihood": xr.Dataset(loglik, coords=coords),
        }
    )
    log = logging.getLogger("arviz_stats.psense")
    level = log.level
    log.setLevel(logging.ERROR)  # its warning says what the diagnosis column says
    try:
        table = psense_summary(tree, var_names=names, round_to=4)
    finally:
        log.setLevel(level)
    rows = []
    for name, row in table.iterrows():
        diagnosis = str(row["diagnosis"])
        rows.append(
            {
                "variable": str(name),
                "prior": float(row["prior"]),
                "likelihood": float(row["likelihood"]),
                "diagnosis": "ok" if diagnosis == "\u2713" else diagnosis,
            }
        )
    return rows


def _row_from_summary(summary: dict[str, Any]) -> dict[str, Any]:
    d = summary["diagnostics"]
    return {
        "engine": summary["engine"],
        "k": summary["k"],
        "priors": summary["priors"],
        "or": summary["or"],
        "or_new": summary["or_new"],
        "tau": summary["tau"],
        "mu": summary["mu"],
        "p_mu_gt_0": summary["p_mu_gt_0"],
        "p_theta_new_gt_0": summary["p_theta_new_gt_0"],
        "mcse": summary.get("mcse", {}),
        "diagnostics": {
            k: d.get(k)
            for k in ("r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min")
        },
        "refits": summary.get("refits", []),
    }


def fit_scenario(task: dict[str, Any], fitted: FitResult | None = None) -> dict[str, Any]:
    """Fit one scenario and return its stored record (runs in a worker).

    ``fitted``: this scenario's analysis, already fitted (``run``'s main fit is its main
    scenario): its record is made from that result instead of fitting again.

    An exception raised by this scenario's fit is caught here, and only here, and
    becomes ``status: "failed"`` with ``failure: "error"`` and the error text; a fit
    that fails its convergence checks is ``status: "failed"`` with ``failure:
    "convergence"`` and the failed checks.
    """
    from trialsynth.results.fitting import fit

    t0 = time.perf_counter()
    record: dict[str, Any] = {"key": task["key"], "format": STORE_FORMAT}
    try:
        result = (
            fitted
            if fitted is not None
            else fit(
                task["data"],
                spec=task["spec"],
                priors=task["priors"],
                settings=task["sampler"],
                reusable=True,
                engine=task["engine"],
            )
        )
        summary = result.summary()
        record |= _row_from_summary(summary)
        if result.ok:
            record |= {"status": "ok", "failure": None, "error": None}
        else:
            problems = "; ".join(summary["diagnostics"].get("problems", []))
            record |= {"status": "failed", "failure": "convergence", "error": problems}
        if task.get("psense"):
            record["psense"] = power_scaling(result)
    except Exception as err:  # one scenario's failure must not stop the others
        last = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
        where = f" ({Path(last.filename).name}:{last.lineno})" if last else ""
        first_line = str(err).splitlines()[0] if str(err) else ""
        record |= {
            "status": "failed",
            "failure": "error",
            "error": f"{type(err).__name__}: {first_line}{where}",
        }
    record["wall_s"] = round(time.perf_counter() - t0, 3)
    return record


# --------------------------------------------------------------------------- store


class ScenarioStore:
    """Finished scenarios, one JSON file each under ``folder``, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """File of the scenario ``key``."""
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record, or None (also for an unreadable file, which is then redone)."""
        p = self.path(key)
        if not p.exists():
            return None
        try:
            record = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return record if record.get("key") == key else None

    def put(self, record: dict[str, Any]) -> None:
        """Write a record at once (temporary file + rename)."""
        from trialsynth.core.files import atomic_write_text

        atomic_write_text(self.path(record["key"]), json.dumps(record, indent=1) + "\n")

    def is_done(self, scenario: Scenario) -> bool:
        """True when a stored record can be reused (errors are retried; psense if main)."""
        record = self.get(scenario.key)
        if record is None or record.get("failure") == "error":
            return False
        return not (scenario.main and "psense" not in record and record["status"] == "ok")


# --------------------------------------------------------------------------- running


Progress = Callable[[Scenario, dict[str, Any]], None]


def _groups(scenarios: Sequence[Scenario], workers: int) -> list[list[Scenario]]:
    """Scenarios in chunks of one compiled structure, balanced over ``workers`` bins.

    Each bin is a list run in order by one worker, so each worker compiles each of its
    structures once. A structure with many scenarios is split when bins would be idle.
    """
    by_key: dict[Any, list[Scenario]] = {}
    for s in scenarios:
        by_key.setdefault(s.structure or ("unfittable", s.index), []).append(s)
    chunks = list(by_key.values())
    # split the largest chunks while there are fewer chunks than workers
    while len(chunks) < workers:
        chunks.sort(key=len, reverse=True)
        if len(chunks[0]) < 2:
            break
        big = chunks.pop(0)
        half = (len(big) + 1) // 2
        chunks += [big[:half], big[half:]]
    # greedy balance: a compile costs about as much as 10 refits
    bins: list[list[Scenario]] = [[] for _ in range(max(1, min(workers, len(chunks))))]
    cost = [0.0] * len(bins)
    for chunk in sorted(chunks, key=lambda c: (-len(c), c[0].index)):
        j = int(np.argmin(cost))
        bins[j].extend(chunk)
        cost[j] += 10 + len(chunk)
    return [b for b in bins if b]


def _run_local(
    todo: list[Scenario], workers: int, done: Callable[[Scenario, dict[str, Any]], None]
) -> None:
    if workers <= 1:
        for s in todo:
            done(s, fit_scenario(s.task()))
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    bins = _groups(todo, workers)
    ctx = multiprocessing.get_context("spawn")
    pools = [ProcessPoolExecutor(max_workers=1, mp_context=ctx) for _ in bins]
    try:
        pending: dict[Future[dict[str, Any]], Scenario] = {}
        for pool, scenarios in zip(pools, bins, strict=True):
            for s in scenarios:
                pending[pool.submit(fit_scenario, s.task())] = s
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: pending[f].index):
                done(pending.pop(fut), fut.result())
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(
    todo: list[Scenario], scheduler: str, done: Callable[[Scenario, dict[str, Any]], None]
) -> None:
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as err:
        raise SensitivityError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    try:
        addresses = sorted(client.scheduler_info()["workers"])
        if not addresses:
            raise SensitivityError(f"the Dask cluster at {scheduler} has no workers")
        bins = _groups(todo, len(addresses))
        futures = {}
        for address, scenarios in zip(addresses, bins, strict=False):
            for s in scenarios:
                fut = client.submit(
                    fit_scenario,
                    s.task(),
                    key=f"trialsynth-scenario-{s.key}",
                    workers=[address],
                    allow_other_workers=True,
                    pure=False,
                )
                futures[fut.key] = (fut, s)
        for fut in as_completed([f for f, _ in futures.values()]):
            done(futures[fut.key][1], fut.result())
    finally:
        client.close()


@dataclass(frozen=True)
class Elsewhere:
    """Scenarios another process is fitting into the store now, and how to wait for it.

    ``run`` beside a fresh main fit hands a second process the scenarios that the main
    fit's compiled model does not serve (``trialsynth.workflow.warm``); :func:`run` fits
    the others meanwhile, then waits and takes those records from the store. A scenario
    the other process did not store, or stored as an error, is fitted here. ``wait`` also
    waits for whatever else that process does (``keys`` may be empty: compiling only).
    """

    keys: frozenset[str]
    wait: Callable[[], None]


@dataclass
class SensitivityResult:
    """The outcome of :func:`run`: one row per scenario, in scenario order."""

    rows: list[dict[str, Any]]
    ran: list[str]
    reused: list[str]
    out_dir: Path
    wall_s: float = 0.0
    #: False when the table equals the one already in ``out_dir`` (figures/report current)
    changed: bool = True
    #: the keys of ``ran`` fitted by another process (:class:`Elsewhere`)
    beside: list[str] = field(default_factory=list)
    #: the keys of ``ran`` whose record was made from a fit given to :func:`run`
    given: list[str] = field(default_factory=list)

    @property
    def main(self) -> dict[str, Any]:
        """The main scenario's row."""
        return next(r for r in self.rows if r["main"])

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Rows whose status is failed."""
        return [r for r in self.rows if r["status"] != "ok"]

    def frame(self) -> pd.DataFrame:
        """The table as a flat DataFrame (what ``sensitivity.csv`` holds)."""
        return table_frame(self.rows)


def _row(scenario: Scenario, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenario": scenario.index,
        "label": scenario.label,
        "main": scenario.main,
        "settings": dict(scenario.settings),
        **{k: v for k, v in record.items() if k not in ("format",)},
    }


def table_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Flatten rows to one line each (the columns of ``sensitivity.csv``)."""
    import pandas as pd

    def get(row: dict[str, Any], *path: str) -> Any:
        cur: Any = row
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return None
            cur = cur[p]
        return cur

    lines = []
    for r in rows:
        lines.append(
            {
                "scenario": r["scenario"],
                "label": r["label"],
                "main": r["main"],
                **{f"{a}": r["settings"].get(a) for a in AXES},
                "k": r.get("k"),
                "engine": r.get("engine"),
                "or_median": get(r, "or", "median"),
                "or_q025": get(r, "or", "q025"),
                "or_q975": get(r, "or", "q975"),
                "tau_median": get(r, "tau", "median"),
                "or_new_median": get(r, "or_new", "median"),
                "or_new_q025": get(r, "or_new", "q025"),
                "or_new_q975": get(r, "or_new", "q975"),
                "p_or_gt_1": r.get("p_mu_gt_0"),
                "p_or_gt_1_mcse": get(r, "mcse", "p_mu_gt_0"),
                "p_or_new_gt_1": r.get("p_theta_new_gt_0"),
                "r_hat_max": get(r, "diagnostics", "r_hat_max"),
                "ess_bulk_min": get(r, "diagnostics", "ess_bulk_min"),
                "ess_tail_min": get(r, "diagnostics", "ess_tail_min"),
                "divergences": get(r, "diagnostics", "divergences"),
                "status": r["status"],
                "error": r.get("error"),
                "wall_s": r.get("wall_s"),
                "key": r["key"],
            }
        )
    return pd.DataFrame(lines)


def run(
    scenarios: Sequence[Scenario],
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    on_record: Callable[[Scenario, dict[str, Any]], None] | None = None,
    elsewhere: Elsewhere | None = None,
    fitted: Mapping[str, FitResult] | None = None,
) -> SensitivityResult:
    """Fit every scenario not already stored, then write the table.

    Parameters
    ----------
    scenarios : sequence of Scenario
        From :func:`plan`.
    out_dir : path
        Writes ``scenarios/<key>.json`` (each as it finishes), ``sensitivity.json`` and
        ``sensitivity.csv``.
    workers : int
        1: fit in this process; more: that many worker processes.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://HOST:PORT``); overrides
        ``workers``.
    progress : callable, optional
        Called as ``progress(scenario, record)`` after each scenario (run or reused).
    on_record : callable, optional
        Called after each newly fitted scenario has been written (a hook for tests and
        callers; an exception raised there stops the run, the written records stay).
    elsewhere : Elsewhere, optional
        Scenarios another process is fitting into ``out_dir/scenarios`` now (local runs).
    fitted : mapping, optional
        Scenario key -> a fit of that very analysis made already (``run``'s main fit, for
        its main scenario): the record is made from it (:func:`fit_scenario`).

    Returns
    -------
    SensitivityResult
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SensitivityError(f"workers must be a positive integer, got {workers!r}")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "inproc://")):
        raise SensitivityError(f"scheduler {scheduler!r}: expected an address like tcp://HOST:PORT")
    t0 = time.perf_counter()
    out = Path(out_dir)
    store = ScenarioStore(out / "scenarios")
    records: dict[str, dict[str, Any]] = {}
    todo: list[Scenario] = []
    reused: list[str] = []
    theirs = elsewhere.keys if elsewhere is not None and scheduler is None else frozenset()
    for s in scenarios:
        if s.key in theirs:
            continue  # being fitted elsewhere (and so not stored before this run)
        if store.is_done(s):
            records[s.key] = store.get(s.key)  # type: ignore[assignment]
            reused.append(s.key)
            if progress:
                progress(s, records[s.key])
        else:
            todo.append(s)
    ran: list[str] = []
    beside: list[str] = []

    def done(s: Scenario, record: dict[str, Any], *, stored: bool = False) -> None:
        if not stored:
            store.put(record)
        records[s.key] = record
        ran.append(s.key)
        if progress:
            progress(s, record)
        if on_record:
            on_record(s, record)

    given = [s for s in todo if fitted and s.key in fitted]
    for s in given:
        done(s, fit_scenario(s.task(), fitted[s.key]))  # type: ignore[index]
    todo = [s for s in todo if not (fitted and s.key in fitted)]
    if todo:
        if scheduler is not None:
            _run_dask(todo, scheduler, done)
        else:
            _run_local(todo, workers, done)
    if elsewhere is not None and theirs:
        elsewhere.wait()
        for s in (s for s in scenarios if s.key in theirs):
            if store.is_done(s):
                done(s, store.get(s.key), stored=True)  # type: ignore[arg-type]
                beside.append(s.key)
            else:  # the other process stopped early, or its fit raised: fit it here
                done(s, fit_scenario(s.task()))
    rows = [_row(s, records[s.key]) for s in scenarios]
    changed = _write_table(out, rows)
    return SensitivityResult(
        rows=rows,
        ran=ran,
        reused=reused,
        out_dir=out,
        wall_s=time.perf_counter() - t0,
        changed=changed,
        beside=beside,
        given=[s.key for s in given],
    )


def _write_table(out: Path, rows: list[dict[str, Any]]) -> bool:
    """Write ``sensitivity.json`` and ``.csv``; whether the JSON differs from the one there."""
    from trialsynth.core.files import atomic_write_text

    text = json.dumps(rows, indent=2) + "\n"
    previous = out / "sensitivity.json"
    changed = not previous.is_file() or previous.read_text(encoding="utf-8") != text
    atomic_write_text(previous, text)
    atomic_write_text(out / "sensitivity.csv", table_frame(rows).to_csv(index=False))
    return changed


def comparable(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without the run-dependent fields (:data:`RUN_FIELDS`), for comparing tables."""
    return [{k: v for k, v in r.items() if k not in RUN_FIELDS} for r in rows]
