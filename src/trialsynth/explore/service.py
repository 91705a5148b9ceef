"""What the explorer computes: request settings -> the fit ``trialsynth fit`` runs -> JSON.

:func:`analysis` builds the model spec and priors from the same strings and with the same
functions as the ``fit`` command (``ModelSpec.from_options``, ``PriorSet.from_strings``,
``design``) and calls the same :func:`trialsynth.results.fitting.fit` with the same default
sampler settings, so ``GET /api/posterior`` returns the ``fit --json`` object itself; the
explorer has no statistic of its own. Exclusions subset the data as ``run`` does for a
spec's ``[data] exclude``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from trialsynth.analysis.absolute import attach_absolute
from trialsynth.core.errors import TrialsynthError
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import DataError, TrialData
from trialsynth.models.design import design as check_design
from trialsynth.models.spec import MODELS, ModelError, ModelSpec
from trialsynth.priors.prior import PriorError, PriorSet, parse_prior
from trialsynth.results.fitting import fit as do_fit


class ExploreError(TrialsynthError):
    """A request the explorer cannot answer (one line; HTTP 400)."""

    status = 400


class NeedsMCMC(ExploreError):
    """Settings the exact engine cannot answer: they need an MCMC job (HTTP 409)."""

    status = 409


#: Query parameters of /api/posterior (and keys of a job's JSON body).
PARAMS = ("model", "tau", "mu", "baseline", "exclude", "subgroup", "subgroup_tau", "engine")
ENGINES = ("auto", "exact", "mcmc")


@dataclass(frozen=True)
class Settings:
    """One analysis the page or a script asks for (hashable: the cache key)."""

    model: str = "normal-normal"
    tau: str | None = None
    mu: str | None = None
    baseline: str | None = None
    exclude: tuple[str, ...] = ()
    subgroup: str | None = None
    subgroup_tau: str = "shared"  # as ``fit --subgroup-tau``; the page asks for separate
    engine: str = "auto"

    def key(self) -> tuple[Any, ...]:
        """What the answer depends on: parsed priors (with their labels), sorted exclusions.

        ``mu=normal(0, 2.82)`` and no mu (the default) are the same analysis.
        """
        from trialsynth.priors.prior import DEFAULT_BASELINE, DEFAULT_MU, DEFAULT_TAU

        def prior(text: str | None, role: str, default: Any) -> tuple[Any, str]:
            p = parse_prior(text, role) if text else default  # type: ignore[arg-type]
            return p, p.label

        return (
            self.model,
            prior(self.tau, "tau", DEFAULT_TAU),
            prior(self.mu, "mu", DEFAULT_MU),
            prior(self.baseline, "baseline", DEFAULT_BASELINE),
            tuple(sorted(self.exclude)),
            self.subgroup,
            self.subgroup_tau if self.subgroup else None,
            self.engine,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what a job records, and a sensitivity scenario's settings)."""
        d = asdict(self)
        d["exclude"] = list(self.exclude)
        return d


def _one(params: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = [v for v in params.get(key, []) if v is not None]
    if len(values) > 1:
        raise ExploreError(f"{key}: given {len(values)} times; give it once")
    if not values:
        return None
    text = str(values[0]).strip()
    return text or None


def parse_settings(params: Mapping[str, Sequence[str]], data: TrialData) -> Settings:
    """Validate request parameters (every key a list of strings) against the data.

    Raises
    ------
    ExploreError
        Unknown parameter, model, engine, study or prior: one line naming it.
    """
    for key in params:
        if key not in PARAMS:
            raise ExploreError(f"unknown parameter {key!r}; valid: {', '.join(PARAMS)}")
    model = _one(params, "model") or "normal-normal"
    if model not in MODELS:
        raise ExploreError(f"model: unknown model {model!r}; valid: {', '.join(MODELS)}")
    engine = _one(params, "engine") or "auto"
    if engine not in ENGINES:
        raise ExploreError(f"engine: unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    priors = {}
    for role in ("tau", "mu", "baseline"):
        text = _one(params, role)
        if text is not None:
            try:
                parse_prior(text, role)  # type: ignore[arg-type]
            except PriorError as err:
                raise ExploreError(f"{role}: {err}") from None
        priors[role] = text
    exclude = tuple(dict.fromkeys(str(s) for s in params.get("exclude", []) if str(s)))
    for study in exclude:
        if study not in data.study:
            raise ExploreError(
                f"exclude: unknown study {study!r}; studies: {', '.join(data.study)}"
            )
    if len(exclude) > data.k - 2:
        raise ExploreError(
            f"exclude: {len(exclude)} of {data.k} trials excluded; a random-effects "
            "meta-analysis needs at least 2"
        )
    subgroup_tau = _one(params, "subgroup_tau") or "shared"
    if subgroup_tau not in ("shared", "separate"):
        raise ExploreError(f"subgroup_tau: {subgroup_tau!r}; valid: shared, separate")
    return Settings(
        model=model,
        exclude=exclude,
        subgroup=_one(params, "subgroup"),
        subgroup_tau=subgroup_tau,
        engine=engine,
        **priors,
    )


def settings_from_json(body: Any, data: TrialData) -> Settings:
    """Settings from a JSON object (a job request): the same keys as the query string."""
    if not isinstance(body, dict):
        raise ExploreError("the request body must be a JSON object")
    params: dict[str, list[str]] = {}
    for key, value in body.items():
        if isinstance(value, list):
            params[str(key)] = [str(v) for v in value]
        elif value is not None:
            params[str(key)] = [str(value)]
    return parse_settings(params, data)


def analysis(
    data: TrialData,
    s: Settings,
    *,
    sampler: SamplerSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """The FitResult that ``trialsynth fit`` computes for these settings.

    Raises
    ------
    ExploreError
        Data, model or prior errors of the fit, as one line.
    """
    try:
        trials = data.subset([t for t in data.study if t not in s.exclude]) if s.exclude else data
        spec = ModelSpec.from_options(
            s.model,
            data_kind=trials.kind,
            subgroup=s.subgroup,
            subgroup_tau=s.subgroup_tau,
        )
        check_design(spec, trials)
        priors = PriorSet.from_strings(mu=s.mu, tau=s.tau, baseline=s.baseline)
        result = do_fit(
            trials,
            spec=spec,
            priors=priors,
            settings=sampler or SamplerSettings(),
            reusable=False,
            progress=progress,
            engine=s.engine,
        )
        attach_absolute(result)  # the `fit --json` object has the default absolute effects
        return result
    except (DataError, ModelError, PriorError, TrialsynthError) as err:
        raise ExploreError(str(err)) from None


def needs_mcmc(data: TrialData, s: Settings) -> str | None:
    """Why these settings need MCMC (a job), or None when the exact engine answers."""
    from trialsynth.engines.exact import exact_unavailable
    from trialsynth.models.spec import resolve_priors

    if s.engine == "mcmc":
        return "engine=mcmc"
    try:
        spec = ModelSpec.from_options(
            s.model, data_kind=data.kind, subgroup=s.subgroup, subgroup_tau=s.subgroup_tau
        )
        check_design(spec, data)  # an unknown subgroup column is bad input, not MCMC
        priors = resolve_priors(
            spec, data, PriorSet.from_strings(mu=s.mu, tau=s.tau, baseline=s.baseline)
        )
    except (DataError, ModelError, PriorError, TrialsynthError) as err:
        raise ExploreError(str(err)) from None
    reason = exact_unavailable(spec, priors)
    if reason and s.engine == "exact":
        raise ExploreError(f"engine=exact: {reason}")
    return reason


@dataclass
class _Cache:
    """A small thread-safe LRU of computed answers (one computation per key at a time)."""

    size: int = 64
    items: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[Any, threading.Lock] = field(default_factory=dict)

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            gate = self.pending.setdefault(key, threading.Lock())
        with gate:  # a second request for the same key waits for the first
            with self.lock:
                if key in self.items:
                    return self.items[key]
            try:
                value = compute()
            finally:  # a failed computation leaves nothing behind
                with self.lock:
                    self.pending.pop(key, None)
            self.put(key, value)
            return value

    def peek(self, key: Any) -> Any:
        with self.lock:
            return self.items.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class Explorer:
    """One dataset's explorer state: the data, cached exact fits, finished MCMC views."""

    def __init__(self, data: TrialData, *, defaults: Settings | None = None) -> None:
        self.data = data
        self.defaults = defaults or Settings()
        self._fits = _Cache(size=32)
        self._views = _Cache(size=64)
        self._psense = _Cache(size=64)

    def exact_result(self, s: Settings) -> Any:
        """The (cached) exact FitResult; ExploreError when the settings need MCMC."""
        reason = needs_mcmc(self.data, s)
        if reason:
            raise NeedsMCMC(
                f"{s.model} with these priors is fitted by MCMC ({reason}): start it with "
                "POST /api/jobs and read the result from GET /api/jobs/ID"
            )
        return self._fits.get(s.key(), lambda: analysis(self.data, s))

    def posterior(self, s: Settings) -> dict[str, Any]:
        """The ``fit --json`` object of these settings (exact, or a finished MCMC job)."""
        done = self._views.peek(("mcmc", s.key()))
        if done is not None:
            return done["summary"]
        return self.exact_result(s).summary()

    def view(self, s: Settings) -> dict[str, Any]:
        """Everything the page draws for these settings."""
        from trialsynth.explore.views import view_payload

        done = self._views.peek(("mcmc", s.key()))
        if done is not None:
            return done
        return self._views.get(s.key(), lambda: view_payload(self.exact_result(s)))

    def psense(self, s: Settings) -> list[dict[str, Any]]:
        """Power-scaling diagnosis of mu and tau (ArviZ psense on the fit's draws)."""
        from trialsynth.analysis.sensitivity import power_scaling

        done = self._views.peek(("mcmc", s.key()))
        if done is not None:
            return done["psense"]
        return self._psense.get(s.key(), lambda: power_scaling(self.exact_result(s)))

    def query(self, s: Settings, expr: str) -> dict[str, Any]:
        """One ``P(...)`` query answered by the fit (exact where the fit is exact)."""
        from trialsynth.results.queries import QueryError

        try:
            return self.exact_result(s).ask(expr).to_json()
        except QueryError as err:
            raise ExploreError(f"expr: {err}") from None

    def warm(self) -> None:
        """Compute the starting page's answers (exact settings only) before serving."""
        if needs_mcmc(self.data, self.defaults) is None:
            self.view(self.defaults)
            self.psense(self.defaults)

    def store_mcmc(self, s: Settings, payload: dict[str, Any]) -> None:
        """Keep a finished MCMC job's view (summary, curves, psense) for these settings."""
        self._views.put(("mcmc", s.key()), payload)


def _spec_prior_texts(path: Any) -> dict[str, str]:
    """The ``[priors]`` strings as written in a spec (a Turner preset keeps its label)."""
    import tomllib

    table = tomllib.loads(path.read_text(encoding="utf-8")).get("priors", {})
    return {role: str(table[role]) for role in ("tau", "mu", "baseline") if role in table}


def explorer_for(source: str, *, is_spec: bool) -> Explorer:
    """An Explorer of a data argument, or of a spec's data with its settings as the start.

    Raises
    ------
    TrialsynthError
        The data or spec cannot be read (one line, from their own readers).
    """
    from trialsynth.data import load
    from trialsynth.models.analysis import SpecError, load_spec

    try:
        if not is_spec:
            return Explorer(load(source))
        spec = load_spec(source)
        data = load(spec.data_source(), columns=spec.columns or None, outcome=spec.outcome)
    except (DataError, SpecError) as err:
        raise ExploreError(str(err)) from None
    unknown = [s for s in spec.exclude if s not in data.study]
    if unknown:
        raise ExploreError(f"{source} [data] exclude: unknown study {unknown[0]!r}")
    texts = _spec_prior_texts(spec.path) if spec.path else {}
    defaults = Settings(
        model=spec.model,
        exclude=tuple(spec.exclude),
        subgroup=spec.subgroup,
        subgroup_tau=spec.subgroup_tau,
        engine=spec.engine,
        **texts,
    )
    return Explorer(data, defaults=defaults)
