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


@cache_app.command("warm")
def warm(
    specs: Annotated[list[Path], typer.Argument(help="Analysis specs (models/*.toml).")],
) -> None:
    """Compile the MCMC models of analysis specs and their sensitivity grids (no sampling).

    Run it ahead of a first run to find the models compiled (./setup.sh does not: see
    ARCHITECTURE.md, "Speed choices"). A structure already in the cache takes about a second.
    """
    from trialsynth.models.analysis import load_spec
    from trialsynth.workflow.run import load_spec_data
    from trialsynth.workflow.warm import compile_structures, spec_structures

    t0 = time.perf_counter()
    seen: dict[Any, str] = {}
    for path in specs:
        spec = load_spec(path)
        structures = spec_structures(spec, load_spec_data(spec, path))
        problems = [p for p in structures if p.structure_key not in seen]
        for problem, status in compile_structures(problems):
            seen[problem.structure_key] = status
            _out.print(f"{path}: {problem.spec.name}, k = {problem.data.k}: {status}")
    n_new = sum(1 for v in seen.values() if v != "hit")
    _out.print(
        f"compile cache warm: {len(seen)} model structure(s), {n_new} compiled now, "
        f"in {time.perf_counter() - t0:.1f} s ({compile_cache.cache_root()})"
    )
