"""The README's numbers are the committed reports' numbers (scripts/regenerate.py writes them).

Each generated fragment of the README is rendered again from ``reports/`` and must be the
same text; the main job's printed table must quote ``reports/ivig_rm/summary.json``. A hand
edit of a number, or reports regenerated without the README, fails here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("regenerate", ROOT / "scripts" / "regenerate.py")
regenerate = importlib.util.module_from_spec(_spec)
sys.modules["regenerate"] = regenerate
_spec.loader.exec_module(regenerate)


def _readme_fragments(text: str | None = None) -> dict[str, str]:
    text = text or (ROOT / "README.md").read_text(encoding="utf-8")
    return {m.group("name"): m.group("body") for m in regenerate.FRAGMENT.finditer(text)}


def _mismatches(text: str | None = None) -> dict[str, str | None]:
    found = _readme_fragments(text)
    expected = regenerate.fragments(ROOT / "reports")
    return {k: found.get(k) for k in expected if found.get(k) != expected[k]}


def test_sentences_are_rendered_from_the_reports() -> None:
    assert _mismatches() == {}


def test_printed_table_quotes_summary_json() -> None:
    block = _readme_fragments()["main-output"]
    s = json.loads((ROOT / "reports" / "ivig_rm" / "summary.json").read_text())
    ci = regenerate._ci
    lines = {
        "pooled OR, exp(mu)": (
            f"{ci(s['or'])} │ {s['p_mu_gt_0']:.3f} ± {s['mcse']['p_mu_gt_0']:.3f}"
        ),
        "heterogeneity tau": ci(s["tau"]),
        "OR of a new trial": (
            f"{ci(s['or_new'])} │ {s['p_theta_new_gt_0']:.3f} ± {s['mcse']['p_theta_new_gt_0']:.3f}"
        ),
        "convergence OK": f"R-hat max {s['diagnostics']['r_hat_max']:.3f}",
    }
    for label, numbers in lines.items():
        row = next(line for line in block.splitlines() if label in line)
        assert numbers in row, (label, row)


def test_a_hand_edited_number_is_caught() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    edited = text.replace("P(OR > 1) = ", "P(OR > 1) = 0.9", 1)
    assert edited != text and set(_mismatches(edited)) == {"secondary"}
