"""Compile MCMC models ahead of their fits.

:func:`spec_structures` lists the model structures of a spec and its sensitivity grid;
:func:`compile_structures` compiles them here (``trialsynth cache warm``);
:func:`start_compiling` compiles those the persistent compile cache lacks in a second
process. ``run`` starts one beside its main fit, so that the sensitivity scenarios' other
structures (the ``logistic(0, 1)`` baseline of the shipped spec) compile on the second
core instead of after the main fit. The compiled code is the same whichever process
compiles it (``tests/test_same_draws.py``), so the numbers do not depend on this.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
from collections.abc import Iterable
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from trialsynth.engines.select import choose_engine
from trialsynth.models.problem import Problem

if TYPE_CHECKING:
    from trialsynth.analysis.sensitivity import Scenario
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


def _compile_quietly(problems: list[Problem]) -> None:
    """The second process: compile, saying nothing (the fits report their own cache use)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        compile_structures(problems)


def start_compiling(problems: list[Problem]) -> BaseProcess | None:
    """Compile ``problems`` in a new process (None if there are none); join it when done.

    A fresh interpreter (``spawn``): forking a process that has loaded numba and PyMC's
    threads is unsafe. If it fails, the fits compile what it did not.
    """
    if not problems:
        return None
    process = multiprocessing.get_context("spawn").Process(
        target=_compile_quietly, args=(problems,), name="trialsynth-compile", daemon=True
    )
    process.start()
    return process
