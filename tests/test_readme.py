"""The README's Python example runs as printed (its imports are the package's real API)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_a_python_example() -> None:
    assert any("from trialsynth" in block for block in _python_blocks())


@pytest.mark.mcmc
def test_readme_python_example_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # it saves into out/
    for block in _python_blocks():
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "out" / "summary.json").exists()
