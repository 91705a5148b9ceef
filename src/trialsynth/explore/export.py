"""Scenarios collected on the page -> a ``[sensitivity]`` TOML section and a CSV table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from trialsynth.explore.service import Settings
from trialsynth.priors.prior import DEFAULT_BASELINE, DEFAULT_MU, DEFAULT_TAU

#: Separator of several studies in one ``drop:`` data choice.
DROP_SEPARATOR = ";"
CSV_COLUMNS = (
    "scenario",
    "model",
    "engine",
    "tau_prior",
    "mu_prior",
    "baseline_prior",
    "exclude",
    "subgroup",
    "k",
    "or_median",
    "or_q025",
    "or_q975",
    "or_new_median",
    "or_new_q025",
    "or_new_q975",
    "tau_median",
    "tau_q025",
    "tau_q975",
    "p_mu_gt_0",
    "p_theta_new_gt_0",
    "status",
)


def toml_string(text: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes; DEL escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def data_choice(s: Settings) -> str:
    """The ``[sensitivity] data`` choice of these settings' exclusions."""
    if not s.exclude:
        return "all"
    return "drop:" + DROP_SEPARATOR.join(s.exclude)


def sensitivity_toml(scenarios: Sequence[Settings], *, data_name: str) -> str:
    """A ``[sensitivity]`` section (``combine = "list"``) reproducing the scenarios."""
    if not scenarios:
        raise ValueError("no scenarios to export")
    binomial = any(s.model == "binomial-normal" for s in scenarios)
    axes = {
        "model": [s.model for s in scenarios],
        "tau": [s.tau or str(DEFAULT_TAU) for s in scenarios],
        "mu": [s.mu or str(DEFAULT_MU) for s in scenarios],
        "data": [data_choice(s) for s in scenarios],
    }
    if binomial:
        axes["baseline"] = [s.baseline or str(DEFAULT_BASELINE) for s in scenarios]
    lines = [
        f"# {len(scenarios)} scenario(s) collected in `trialsynth explore` on "
        f"{data_name.replace(chr(10), ' ')}; paste into the analysis spec and run "
        "`trialsynth sensitivity SPEC.toml`.",
    ]
    grouped = [i + 1 for i, s in enumerate(scenarios) if s.subgroup]
    if grouped:
        lines.append(
            "# scenario(s) "
            + ", ".join(map(str, grouped))
            + " were fitted by subgroup, which is not a sensitivity axis: set [model] subgroup"
        )
    lines += ["[sensitivity]", 'combine = "list"']
    for axis, values in axes.items():
        items = ",\n".join(f"    {toml_string(v)}" for v in values)
        lines.append(f"{axis} = [\n{items},\n]")
    return "\n".join(lines) + "\n"


def _safe_cell(value: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula get a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def scenario_row(i: int, s: Settings, summary: dict[str, Any] | None) -> dict[str, Any]:
    """One CSV row: the settings and (when computed) the fit's headline numbers."""
    row: dict[str, Any] = {
        "scenario": i,
        "model": s.model,
        "engine": summary["engine"] if summary else s.engine,
        "tau_prior": summary["priors"].get("tau", "") if summary else s.tau or "",
        "mu_prior": summary["priors"].get("mu", "") if summary else s.mu or "",
        "baseline_prior": (summary["priors"].get("baseline", "") if summary else s.baseline) or "",
        "exclude": DROP_SEPARATOR.join(s.exclude),
        "subgroup": s.subgroup or "",
        "status": "not computed",
    }
    if summary:
        row["k"] = summary["k"]
        for name in ("or", "or_new", "tau"):
            for q in ("median", "q025", "q975"):
                row[f"{name}_{q}"] = summary[name][q]
        row["p_mu_gt_0"] = summary["p_mu_gt_0"]
        row["p_theta_new_gt_0"] = summary["p_theta_new_gt_0"]
        row["status"] = summary.get("status", "ok")
    return row


def sensitivity_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The table as CSV text (numbers at full precision)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _safe_cell(row.get(k, "")) for k in CSV_COLUMNS})
    return buf.getvalue()
