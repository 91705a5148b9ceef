"""The report's section on small-study effects and publication bias (from ``bias.json``).

``trialsynth bias FIT`` writes ``bias.json`` into the FIT folder; the report of that fit then
has this section (after the sensitivity analyses) with the bias figures. A ``bias.json`` of
other data (another data hash) is ignored: it describes another analysis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trialsynth.core.errors import TrialsynthError

#: Section id and heading (inserted after "sensitivity" when a bias analysis exists).
SECTION = ("bias", "Small-study effects and publication bias")
#: Rows of the model table (the most probable models; the JSON has all of them).
TOP_MODELS = 8


def find_bias(folder: str | Path, data_sha256: str | None = None) -> dict[str, Any] | None:
    """The ``bias.json`` object of a folder, if present and (given a hash) of the same data."""
    path = Path(folder) / "bias.json"
    if not path.is_file():
        return None
    try:
        bias = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TrialsynthError(f"{path}: not valid JSON ({err.msg})") from None
    if not isinstance(bias, dict) or "models" not in bias:
        raise TrialsynthError(f"{path}: not the output of trialsynth bias")
    if data_sha256 is not None and bias.get("data_sha256") != data_sha256:
        return None
    return bias


def _or(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    return f"{d['median']:.2f} [{d['q025']:.2f}, {d['q975']:.2f}]"


def _bf(bf: float | None) -> str:
    if bf is None:
        return "n/a"
    return f"{bf:.3g}" if bf < 1000 else f"{bf:.2e}"


def _test_text(name: str, t: dict[str, Any]) -> str:
    if "error" in t:
        return f"{name}: not computed ({t['error']})"
    what = "intercept" if name.startswith("Egger") else "slope on 1/N"
    return f"{name}: {what} {t['estimate']:.2f} (SE {t['se']:.2f}), p = {t['p']:.3f}"


def bias_context(bias: dict[str, Any]) -> dict[str, Any]:
    """What the templates print of a bias analysis."""
    inc = bias["inclusion"]
    rows = [
        {"label": "model-averaged (all models)", **_row(bias["averaged"])},
        {"label": "model-averaged, given an effect", **_row(bias["conditional"])},
    ]
    if bias.get("unadjusted"):
        rows.append({"label": "random effects without a bias model", **_row(bias["unadjusted"])})
    if bias.get("fit"):
        rows.append({"label": "this report's fit", **_row(bias["fit"])})
    top = sorted(bias["models"], key=lambda m: -m["posterior_prob"])[:TOP_MODELS]
    tests = bias.get("small_study", {})
    return {
        "present": True,
        "k": bias["k"],
        "priors": "; ".join(f"{k} ~ {v}" for k, v in bias["priors"].items()),
        "n_models": len(bias["models"]),
        "inclusion": [
            {
                "component": name,
                "prior": f"{inc[name]['prior_prob']:.3f}",
                "posterior": f"{inc[name]['posterior_prob']:.3f}",
                "bf": _bf(inc[name]["bf"]),
            }
            for name in ("effect", "heterogeneity", "bias")
        ],
        "rows": rows,
        "models": [
            {
                "effect": "yes" if m["effect"] else "no",
                "heterogeneity": "yes" if m["heterogeneity"] else "no",
                "bias": m["bias"],
                "prior": f"{m['prior_prob']:.4f}",
                "log_ml": f"{m['log_ml']:.3f} \u00b1 {m['log_ml_error']:.0e}",
                "posterior": f"{m['posterior_prob']:.4f}",
            }
            for m in top
        ],
        "max_error": f"{bias['max_log_ml_error']:.1e}",
        "tests": [
            _test_text(label, tests[key])
            for key, label in (("egger", "Egger's test"), ("peters", "Peters' test"))
            if key in tests
        ],
        "seed": bias.get("seed"),
    }


def _row(d: dict[str, Any]) -> dict[str, str]:
    p = d.get("p_mu_gt_0")
    return {"or": _or(d.get("or")), "p": "" if p is None else f"{p:.3f}"}


def add_section(sections: list[dict[str, str]]) -> list[dict[str, str]]:
    """The report's section list with the bias section after the sensitivity analyses."""
    ids = [s["id"] for s in sections]
    at = ids.index("sensitivity") + 1 if "sensitivity" in ids else len(sections)
    return [*sections[:at], {"id": SECTION[0], "heading": SECTION[1]}, *sections[at:]]
