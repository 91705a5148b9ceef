"""ARCHITECTURE.md maps every module of the package (after CausalPy's inventory test)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_has_a_row_and_every_row_a_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+\.py)` \|", text, flags=re.MULTILINE))
    modules = {p.name for p in (ROOT / "src" / "trialsynth").glob("*.py")} - {"__init__.py"}
    assert rows == modules, (sorted(modules - rows), sorted(rows - modules))
