"""The package's layers only point down, and ARCHITECTURE.md maps every module.

Every import inside the package counts, function-level ones included (only imports under
``if TYPE_CHECKING:`` are exempt: they never run). The layer order is the one ARCHITECTURE.md
states; a module may import its own layer and the layers below it, and the import graph of
modules has no cycle.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "trialsynth"

#: Bottom to top; ``explore`` is a front-end beside ``cli``.
LAYERS = (
    "core",
    "data",
    "priors",
    "models",
    "engines",
    "results",
    "analysis",
    "report",
    "workflow",
    ("cli", "explore"),
)
RANK = {
    name: i
    for i, layer in enumerate(LAYERS)
    for name in (layer if isinstance(layer, tuple) else (layer,))
}


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(SRC.rglob("*.py")):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    """The package modules that ``module`` imports (any depth, TYPE_CHECKING excluded)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for e in child.orelse:
                    visit(e)
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (_resolve(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for a in child.names:
                    target = _resolve(f"{base}.{a.name}") or _resolve(base)
                    if target:
                        found.add(target)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m != module and not module.startswith(m + ".")}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_is_in_a_layer() -> None:
    stray = [m for m in MODULES if m != "trialsynth" and _layer(m) not in RANK]
    assert stray == [], f"modules outside the layer folders: {stray}"


def test_imports_point_down() -> None:
    up = [
        f"{m} ({_layer(m)}) imports {d} ({_layer(d)})"
        for m, deps in GRAPH.items()
        for d in deps
        if _layer(m) and _layer(d) and RANK[_layer(d)] > RANK[_layer(m)]
    ]
    assert up == []


def test_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            comp.append(v)
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            strong(v)
    assert cycles == []


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The AST reader sees a function-level import (the way a cycle used to hide)."""
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from trialsynth.cli import app\n")
    assert "trialsynth.cli.app" in _imports("trialsynth.core.m", f)


def test_architecture_md_lists_every_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_/]+\.py)` \|", text, flags=re.MULTILINE))
    files = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.name != "__init__.py"}
    assert rows == files, (sorted(files - rows), sorted(rows - files))


#: Steps of one fresh process, each more than the one before (sys.modules only grows).
NO_MCMC_STEPS = {
    "import trialsynth.data": "import trialsynth.data",
    "an exact fit": "from trialsynth.data import load\nfrom trialsynth.results.fitting import fit\n"
    "from trialsynth.models.spec import ModelSpec\n"
    "r = fit(load('crins2014'), spec=ModelSpec(likelihood='normal'), engine='exact')\n"
    "assert r.summary()['engine'] == 'exact'",
    "the exact fit command": "import contextlib, io\nfrom trialsynth.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    assert main(['fit', 'ivig_rm', '--model', 'normal-normal', '--json']) == 0",
    "an exact fit's report": "import tempfile\nfrom trialsynth.report.report import write_report\n"
    "write_report(r, tempfile.mkdtemp())",
}


def test_no_pymc_and_no_arviz_without_mcmc() -> None:
    """The data layer, an exact fit, the exact `fit` command and its report: no PyMC, no ArviZ.

    One process runs the three steps in turn and lists what is loaded after each, so the
    first step that pulls in a forbidden module is named. The exact engine's draws are iid,
    so the MCSE of a probability is binomial and needs no ESS; keeping arviz-stats and
    arviz-base out saves an exact command about 0.4 s (BENCHMARKS), and an exact fit's
    report has no rank plot or rank test to import arviz-stats for (0.2 s).
    """
    check = (
        "bad = ('pymc', 'nutpie', 'pytensor', 'arviz', 'arviz_stats', 'arviz_base')\n"
        "print(','.join(sorted(m for m in bad if m in sys.modules)))\n"
    )
    probe = "import sys\n" + "".join(f"{code}\n{check}" for code in NO_MCMC_STEPS.values())
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert dict(zip(NO_MCMC_STEPS, out, strict=True)) == dict.fromkeys(NO_MCMC_STEPS, "")
