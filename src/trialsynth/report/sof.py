"""A Bayesian GRADE summary-of-findings table from a fit's summary (no plotting, no I/O).

GRADE's columns (outcome; participants (studies); relative effect; anticipated absolute
effects with control and with treatment, and their difference) are filled from the
posterior, with P(benefit) and P(difference > MCID) beside them. The certainty of the
evidence is the panel's judgement: the table never grades it. It shows *signals*, each
with the number behind it:

* imprecision: the 95% CrI of the risk difference against 0 and the MCID;
* inconsistency: tau and the 95% predictive interval of a new trial's OR;
* risk of bias: the share of trials whose data carry a weaker confidence than "high"
  (the ``confidence`` column), and how far a bias adjustment moves the OR once the fit
  has one (``bias_adjustment`` in the summary: the fit is adjusted, ``unadjusted`` beside);
* publication bias: the inclusion Bayes factor of small-study bias from the bias
  ensemble (``bias`` in the summary), once it has been run.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

#: The columns of ``sof.csv`` (one row per setting: pooled effect, a new trial).
SOF_COLUMNS = (
    "outcome",
    "setting",
    "participants",
    "studies",
    "or_median",
    "or_q025",
    "or_q975",
    "control_per_1000",
    "control_per_1000_q025",
    "control_per_1000_q975",
    "treatment_per_1000",
    "treatment_per_1000_q025",
    "treatment_per_1000_q975",
    "difference_per_1000",
    "difference_per_1000_q025",
    "difference_per_1000_q975",
    "p_benefit",
    "p_difference_gt_mcid",
    "mcid",
    "imprecision",
    "inconsistency",
    "risk_of_bias",
    "publication_bias",
    "certainty",
)
#: What the certainty column says: the grade is not ours to give.
CERTAINTY_TEXT = "for the panel to judge (signals beside)"
WEAKER_CONFIDENCE_EXCEPT = "high"


def _fmt_or(d: dict[str, float]) -> str:
    return f"OR {d['median']:.2f} ({d['q025']:.2f} to {d['q975']:.2f})"


def _per_1000(x: float) -> str:
    return f"{x:.0f}"


def _difference_text(d: dict[str, float]) -> str:
    def word(v: float) -> str:
        return f"{abs(v):.0f} {'more' if v >= 0 else 'fewer'}"

    return f"{word(d['median'])} per 1000 ({word(d['q025'])} to {word(d['q975'])})"


def imprecision(absolute: dict[str, Any]) -> dict[str, Any]:
    """Where the difference's 95% CrI lies against 0 and the MCID."""
    d = absolute["difference_per_1000"]
    lo, hi = d["q025"], d["q975"]
    mcid = absolute.get("mcid")
    sign = 1.0 if absolute.get("direction", "higher") == "higher" else -1.0
    blo, bhi = sorted((sign * lo, sign * hi))  # in the beneficial direction
    if blo <= 0 <= bhi:
        signal = "CrI includes no difference"
    else:
        signal = "CrI excludes no difference"
    if mcid is not None:
        if blo < mcid < bhi:
            signal += "; crosses the MCID"
        elif blo >= mcid:
            signal += "; wholly beyond the MCID"
        else:
            signal += "; wholly below the MCID"
    text = f"95% CrI {lo:.0f} to {hi:.0f} per 1000"
    text += f" (MCID {mcid:g})" if mcid is not None else " (no MCID given)"
    return {"signal": signal, "q025": lo, "q975": hi, "mcid": mcid, "text": f"{signal}: {text}"}


def inconsistency(summary: dict[str, Any]) -> dict[str, Any]:
    """Tau and the predictive interval of a new trial's OR."""
    tau, new = summary["tau"], summary["or_new"]
    crosses = new["q025"] < 1 < new["q975"]
    pooled_side = summary["or"]["q025"] > 1 or summary["or"]["q975"] < 1
    if crosses and pooled_side:
        signal = "predictive interval crosses OR 1 though the pooled CrI does not"
    elif crosses:
        signal = "predictive interval crosses OR 1"
    else:
        signal = "predictive interval on one side of OR 1"
    text = (
        f"{signal}: tau {tau['median']:.2f} ({tau['q025']:.2f} to {tau['q975']:.2f}); "
        f"95% predictive interval OR {new['q025']:.2f} to {new['q975']:.2f}"
    )
    return {
        "signal": signal,
        "tau_median": tau["median"],
        "tau_q025": tau["q025"],
        "tau_q975": tau["q975"],
        "or_new_q025": new["q025"],
        "or_new_q975": new["q975"],
        "text": text,
    }


def risk_of_bias(summary: dict[str, Any], confidence: Sequence[str] | None) -> dict[str, Any]:
    """Share of trials with weaker data confidence; the bias adjustment where one exists."""
    out: dict[str, Any] = {"weaker": None, "k": None, "share": None, "adjustment": None}
    parts = []
    if confidence is None:
        parts.append("no data-confidence column")
    else:
        levels = [str(c).strip().lower() for c in confidence]
        weaker = sum(1 for c in levels if c != WEAKER_CONFIDENCE_EXCEPT)
        share = weaker / len(levels) if levels else math.nan
        out |= {"weaker": weaker, "k": len(levels), "share": share}
        parts.append(
            f"{weaker} of {len(levels)} trials ({share:.0%}) with data confidence below high"
        )
    adj = summary.get("bias_adjustment")
    if adj and adj.get("unadjusted"):  # the fit is the adjusted one; the unadjusted beside it
        moved = math.log(summary["or"]["median"]) - math.log(adj["unadjusted"]["or"]["median"])
        out["adjustment"] = moved
        parts.append(
            f"bias adjustment of {len(adj['weaker'])} weaker trial(s) moves the log OR by "
            f"{moved:+.2f}"
        )
    elif adj:
        parts.append(
            f"bias adjustment of {len(adj['weaker'])} weaker trial(s) (unadjusted not fitted)"
        )
    else:
        parts.append("no bias adjustment in this fit")
    out["signal"] = parts[0]
    out["text"] = "; ".join(parts)
    return out


def publication_bias(summary: dict[str, Any]) -> dict[str, Any]:
    """The bias ensemble's inclusion Bayes factor of small-study bias, once run."""
    bias = summary.get("bias") or {}
    bf = ((bias.get("inclusion") or {}).get("bias") or {}).get("bf")
    if bf is None:
        return {
            "signal": "not assessed",
            "bf": None,
            "text": "not assessed (run `trialsynth bias` on this fit)",
        }
    return {
        "signal": f"inclusion BF {bf:.2f}",
        "bf": bf,
        "text": f"inclusion Bayes factor of small-study bias {bf:.2f} (bias ensemble)",
    }


def sof_table(
    summary: dict[str, Any],
    *,
    outcome: str,
    participants: int,
    confidence: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The summary-of-findings table: rows (pooled effect, a new trial) and signals.

    Parameters
    ----------
    summary : dict
        The ``fit --json`` object with ``absolute``.
    outcome : str
        The outcome's name (e.g. ``"Live birth"``).
    participants : int
        Participants in the analysed trials (both arms).
    confidence : sequence of str, optional
        The trials' data confidence levels (the ``confidence`` column), if any.

    Returns
    -------
    dict
        ``rows`` (numbers and texts; the numbers are the summary's), ``signals``,
        ``columns`` and ``certainty`` (never a grade).
    """
    absolute = summary["absolute"]
    signals = {
        "imprecision": imprecision(absolute),
        "inconsistency": inconsistency(summary),
        "risk_of_bias": risk_of_bias(summary, confidence),
        "publication_bias": publication_bias(summary),
    }
    rows = [
        _row(
            outcome,
            "pooled effect",
            summary["or"],
            absolute,
            absolute,
            summary["k"],
            participants,
            signals,
        ),
    ]
    if "new_trial" in absolute:
        rows.append(
            _row(
                outcome,
                "a new trial's setting",
                summary["or_new"],
                absolute,
                absolute["new_trial"],
                summary["k"],
                participants,
                signals,
            )
        )
    return {
        "rows": rows,
        "signals": signals,
        "columns": list(SOF_COLUMNS),
        "certainty": CERTAINTY_TEXT,
    }


def _row(
    outcome: str,
    setting: str,
    odds: dict[str, float],
    absolute: dict[str, Any],
    part: dict[str, Any],
    k: int,
    participants: int,
    signals: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    ctl, trt, diff = (
        absolute["per_1000_control"],
        part["per_1000_treatment"],
        part["difference_per_1000"],
    )
    return {
        "outcome": outcome,
        "setting": setting,
        "participants": participants,
        "studies": k,
        "or_median": odds["median"],
        "or_q025": odds["q025"],
        "or_q975": odds["q975"],
        "control_per_1000": ctl["median"],
        "control_per_1000_q025": ctl["q025"],
        "control_per_1000_q975": ctl["q975"],
        "treatment_per_1000": trt["median"],
        "treatment_per_1000_q025": trt["q025"],
        "treatment_per_1000_q975": trt["q975"],
        "difference_per_1000": diff["median"],
        "difference_per_1000_q025": diff["q025"],
        "difference_per_1000_q975": diff["q975"],
        "p_benefit": part["p_benefit"],
        "p_difference_gt_mcid": part["p_difference_gt_mcid"],
        "mcid": absolute.get("mcid"),
        "imprecision": signals["imprecision"]["text"],
        "inconsistency": signals["inconsistency"]["text"],
        "risk_of_bias": signals["risk_of_bias"]["text"],
        "publication_bias": signals["publication_bias"]["text"],
        "certainty": CERTAINTY_TEXT,
        "text": {
            "participants": f"{participants} ({k} {'study' if k == 1 else 'studies'})",
            "relative": _fmt_or(odds),
            "control": f"{_per_1000(ctl['median'])} per 1000",
            "treatment": (
                f"{_per_1000(trt['median'])} per 1000 "
                f"({_per_1000(trt['q025'])} to {_per_1000(trt['q975'])})"
            ),
            "difference": _difference_text(diff),
        },
    }


def sof_csv(table: dict[str, Any]) -> str:
    """``sof.csv``: one line per row, the :data:`SOF_COLUMNS`."""
    buf = io.StringIO()
    w = csv.DictWriter(
        buf, fieldnames=list(SOF_COLUMNS), extrasaction="ignore", lineterminator="\n"
    )
    w.writeheader()
    for row in table["rows"]:
        w.writerow({k: ("" if row[k] is None else row[k]) for k in SOF_COLUMNS})
    return buf.getvalue()


def sof_context(summary: dict[str, Any], frame: Any, outcome: str) -> dict[str, Any] | None:
    """The report's summary-of-findings table from a fit's summary and its data table.

    ``frame`` is the analysed data (``FitResult.data_frame``): participants are the arm
    sizes summed; the ``confidence`` column, where present, feeds the risk-of-bias signal.
    None when the summary has no absolute effects.
    """
    if not summary.get("absolute"):
        return None
    participants = int((frame["n_t"] + frame["n_c"]).sum()) if "n_t" in frame.columns else 0
    confidence = list(frame["confidence"].astype(str)) if "confidence" in frame.columns else None
    return sof_table(summary, outcome=outcome, participants=participants, confidence=confidence)
