"""``trialsynth cache info|clear``: the persistent compile cache of the MCMC engine."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from trialsynth.engines import compile_cache

cache_app = typer.Typer(
    no_args_is_help=True,
    help="The MCMC engine's compile cache (TRIALSYNTH_CACHE_DIR, else the user cache "
    "folder): what it holds, or empty it. A model structure compiled once loads in about "
    "a second in any later process.",
)
_out = Console(soft_wrap=True)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def _describe(tc: dict[str, Any] | None) -> str:
    if not tc:
        return "(no toolchain.json)"
    v, cpu = tc.get("versions", {}), tc.get("cpu", {})
    return (
        f"pymc {v.get('pymc')}, pytensor {v.get('pytensor')}, nutpie {v.get('nutpie')}, "
        f"numba {v.get('numba')}; CPU {cpu.get('cpu_name')}"
    )


@cache_app.command("info")
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the cache folder, its size and the compiled models of each toolchain."""
    data = compile_cache.info()
    current = compile_cache.CompileCache(compile_cache.COMPILE_FORM, root=None).key
    data["current_toolchain"] = current
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    _out.print(f"compile cache: {data['root']} ({_size(data['bytes'])})")
    if not data["toolchains"]:
        _out.print("empty: the next MCMC fit of each model structure compiles it (10-20 s)")
        return
    for tc in data["toolchains"]:
        last = max((m.get("compiled_at") or 0 for m in tc["models"]), default=0)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last)) if last else "-"
        mark = " (current)" if tc["key"] == current else ""
        _out.print(
            f"toolchain {tc['key']}{mark}: {len(tc['models'])} model(s), "
            f"{_size(tc['bytes'])}, last compiled {when}"
        )
        _out.print(f"  {_describe(tc['toolchain'])}")


@cache_app.command("clear")
def clear() -> None:
    """Delete all compiled models (the next fit of each structure compiles it again)."""
    freed = compile_cache.clear()
    _out.print(f"compile cache cleared: {_size(freed)} freed in {compile_cache.cache_root()}")


def _structures(spec_path: Path) -> list[tuple[Any, Any, Any]]:
    """(data, model spec, priors) of every MCMC fit of an analysis spec and its grid."""
    from trialsynth.analysis.sensitivity import plan
    from trialsynth.data import load
    from trialsynth.engines.select import choose_engine
    from trialsynth.models.analysis import load_spec
    from trialsynth.models.problem import Problem

    spec = load_spec(spec_path)
    data = load(
        spec.data_source(),
        columns=spec.columns or None,
        min_trials=1 if spec.model == "common-effect" else 2,
        outcome=spec.outcome,
    )
    if spec.exclude:
        data = data.subset([s for s in data.study if s not in spec.exclude])
    main = Problem.build(data, spec.model_spec(data.kind), spec.priors)
    out = []
    if choose_engine(spec.engine, main.spec, main.priors) == "mcmc":
        out.append((main.data, main.spec, main.priors))
    if spec.sensitivity:
        out += [(s.data, s.spec, s.priors) for s in plan(spec, data) if s.engine == "mcmc"]
    return out


@cache_app.command("warm")
def warm(
    specs: Annotated[list[Path], typer.Argument(help="Analysis specs (models/*.toml).")],
) -> None:
    """Compile the MCMC models of analysis specs and their sensitivity grids (no sampling).

    Run it ahead of a first run to find the models compiled (./setup.sh does not: see
    ARCHITECTURE.md, "Speed choices"). A structure already in the cache takes about a second.
    """
    from trialsynth.engines.mcmc import compile_report, compiled_model
    from trialsynth.models.pymc import structure_key

    t0 = time.perf_counter()
    seen: dict[Any, str] = {}
    for path in specs:
        for data, mspec, priors in _structures(path):
            key = structure_key(mspec, data, priors)
            if key in seen:
                continue
            compiled_model(mspec, data, priors)
            report = compile_report(mspec, data, priors)
            seen[key] = report.status if report else "?"
            _out.print(f"{path}: {mspec.name}, k = {data.k}: {seen[key]}")
    n_new = sum(1 for v in seen.values() if v != "hit")
    _out.print(
        f"compile cache warm: {len(seen)} model structure(s), {n_new} compiled now, "
        f"in {time.perf_counter() - t0:.1f} s ({compile_cache.cache_root()})"
    )
