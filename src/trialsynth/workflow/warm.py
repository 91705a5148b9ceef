"""Compile MCMC models, and fit sensitivity scenarios, ahead of their turn.

:func:`spec_structures` lists the model structures of a spec and its sensitivity grid;
:func:`compile_structures` compiles them here (``trialsynth cache warm``);
:func:`start_ahead` compiles those the persistent compile cache lacks in a second
process and then fits scenarios there. ``run`` starts one beside its main fit, so that the
sensitivity scenarios the main fit's compiled model does not serve (the exact-engine ones
and the ``logistic(0, 1)`` baseline's structure of the shipped spec) are compiled and
fitted on the second core while the main process compiles, samples and fits the others.
The compiled code is the same whichever process compiles it, and a scenario's record the
same whichever process fits it (``tests/test_same_draws.py``), so the numbers do not
depend on this.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trialsynth.engines.select import choose_engine
from trialsynth.models.problem import Problem

if TYPE_CHECKING:
    from trialsynth.analysis.sensitivity import Elsewhere, Scenario
    from trialsynth.data import TrialData
    from trialsynth.models.analysis import AnalysisSpec


def distinct(problems: Iterable[Problem]) -> list[Problem]:
    """One problem per model structure, in order of first appearance."""
    seen: dict[object, Problem] = {}
    for p in problems:
        seen.setdefault(p.structure_key, p)
    return list(seen.values())


def spec_structures(spec: AnalysisSpec, data: TrialData) -> list[Problem]:
    """The MCMC fits of ``spec`` on ``data`` and of its sensitivity grid, one per structure."""
    from trialsynth.analysis.sensitivity import plan

    main = Problem.build(data, spec.model_spec(data.kind), spec.priors)
    out = [main] if choose_engine(spec.engine, main.spec, main.priors) == "mcmc" else []
    if spec.sensitivity:
        out += scenario_structures(plan(spec, data))
    return distinct(out)


def scenario_structures(scenarios: Iterable[Scenario]) -> list[Problem]:
    """The MCMC scenarios' problems, one per structure."""
    return distinct(Problem(s.data, s.spec, s.priors) for s in scenarios if s.engine == "mcmc")


def compile_structures(problems: Iterable[Problem]) -> list[tuple[Problem, str]]:
    """Compile each problem's model here; its cache status (hit, miss, damaged, off)."""
    from trialsynth.engines.mcmc import compile_report, compiled_model

    out = []
    for p in problems:
        compiled_model(p.spec, p.data, p.priors)
        report = compile_report(p.spec, p.data, p.priors)
        out.append((p, report.status if report else "?"))
    return out


def not_cached(problems: Iterable[Problem]) -> list[Problem]:
    """The problems whose compiled model the persistent cache does not hold."""
    from trialsynth.engines.mcmc import is_cached

    return [p for p in problems if not is_cached(p.spec, p.data, p.priors)]


def _work_quietly(problems: list[Problem], scenarios: list[Scenario], store: Path) -> None:
    """The second process: compile, then fit ``scenarios`` into ``store``, saying nothing.

    The fits report their own cache use; each record is stored as it finishes, as the
    command's own process would store it.
    """
    from trialsynth.analysis.sensitivity import ScenarioStore, fit_scenario

    done = ScenarioStore(store)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        compile_structures(problems)
        for s in scenarios:
            done.put(fit_scenario(s.task()))


def start_ahead(
    problems: list[Problem], scenarios: Sequence[Scenario], store: Path
) -> Elsewhere | None:
    """Compile ``problems``, then fit ``scenarios`` into ``store``, in a second process.

    None if there is nothing to do. Where it is safe, the process is a fork made once PyMC
    and nutpie are imported here (this process imports them for its own fit anyway), so it
    starts at once instead of spending 2-3 s of the busy second core importing them again.
    Safe means Linux and no other thread alive: a fork copies only the calling thread, so
    a lock another thread held would stay held in the child. Elsewhere a fresh interpreter
    (``spawn``). Whatever the process does not do, the command's own process does.
    Returns the scenarios it fits and how to wait for it (also when it only compiles).
    """
    if not problems and not scenarios:
        return None
    from trialsynth.analysis.sensitivity import Elsewhere
    from trialsynth.engines.mcmc import import_engine

    import_engine()
    method = "fork" if sys.platform == "linux" and threading.active_count() == 1 else "spawn"
    process = multiprocessing.get_context(method).Process(
        target=_work_quietly,
        args=(problems, list(scenarios), store),
        name="trialsynth-ahead",
        daemon=True,
    )
    process.start()
    return Elsewhere(frozenset(s.key for s in scenarios), process.join)
