"""What the report says: every section's content as one JSON-serialisable dict.

:func:`build_context` collects the question, the data with provenance, methods text
generated from the fitted model, priors and sampler, results, the published results,
classical references, diagnostics, sensitivity, the future trial, versions, seed and data
hash (written as ``report.json``); :mod:`trialsynth.report.report` draws the figures and
renders this dict with the jinja2 templates.
"""

from __future__ import annotations

import csv
import json
import math
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.core.errors import TrialsynthError
from trialsynth.engines.diagnostics import BFMI_MIN, ESS_MIN, RHAT_MAX
from trialsynth.report.sof import sof_context

if TYPE_CHECKING:
    from trialsynth.results.base import FitResult


#: Version of the report's structure (sections, report.json keys); bump on any change.
REPORT_FORMAT = 3


#: Section ids and headings, in order; every report has all of them.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("question", "Question"),
    ("data", "Data and provenance"),
    ("methods", "Methods"),
    ("results", "Results"),
    ("published", "Published results beside ours"),
    ("classical", "Classical references"),
    ("diagnostics", "Convergence diagnostics"),
    ("sensitivity", "Sensitivity analyses"),
    ("future", "A future trial: assurance"),
    ("reproducibility", "Reproducibility"),
)


#: Probabilities reported in the results table (the query grammar of trialsynth.results.queries).
QUERIES = (
    "P(OR > 1)",
    "P(OR > 1.25)",
    "P(OR < 0.8)",
    "P(0.8 < OR < 1.25)",
    "P(OR_new > 1)",
)


#: Sizes per arm of the future trial in the assurance section (analysis.assurance defaults
#: for everything else: two-sided test at 0.05, control rate from the posterior).
ASSURANCE_SIZES = (25, 50, 100, 200, 400, 800)


#: Thresholds of the multi-chain rank-uniformity test shown beside the checks.
RANK_TEST_ALPHA = 0.01


class ReportError(TrialsynthError):
    """A report that cannot be made (one-line message)."""


def _ci(d: dict[str, Any] | None, key: str = "median") -> str:
    if not d or d.get(key) is None:
        return "n/a"
    return f"{d[key]:.2f} [{d['q025']:.2f}, {d['q975']:.2f}]"


def _prob(p: float | None, mcse: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.3f}" + ("" if mcse is None else f" \u00b1 {mcse:.3f}")


def _data_section(fit: FitResult) -> dict[str, Any]:
    frame = fit.data_frame
    preferred = [
        "study",
        "year",
        "population",
        "events_t",
        "n_t",
        "events_c",
        "n_c",
        "log_or",
        "se",
        "outcome",
        "denominator",
        "confidence",
        "source",
    ]
    columns = [c for c in preferred if c in frame.columns]
    columns += [c for c in frame.columns if c not in columns]
    rows = []
    for rec in frame[columns].to_dict(orient="records"):
        rows.append({c: _cell(rec[c]) for c in columns})
    confidence = (
        {str(k): int(v) for k, v in frame["confidence"].astype(str).value_counts().items()}
        if "confidence" in frame.columns
        else {}
    )
    return {
        "name": fit.provenance["data_name"],
        "k": len(frame),
        "columns": columns,
        "rows": rows,
        "confidence_counts": dict(sorted(confidence.items())),
        "notices": list(fit.provenance.get("notices", [])),
    }


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _model_sentence(fit: FitResult, summary: dict[str, Any], k: int) -> str:
    m = fit.spec
    re_dist = (
        "normal"
        if m.random_effects == "normal"
        else (
            f"Student-t with {m.nu:g} degrees of freedom"
            if m.nu is not None
            else "Student-t with estimated degrees of freedom"
        )
    )
    if m.likelihood == "binomial":
        lik = (
            "The number of events in each arm was modelled as binomial, with a trial-specific "
            "control-arm log-odds \u03b1\u1d62 and a treatment log odds ratio \u03b8\u1d62 "
            "(binomial-normal model, exact likelihood; no continuity correction)."
        )
    else:
        lik = (
            "Each trial's observed log odds ratio y\u1d62 was modelled as normal with its "
            "standard error, y\u1d62 ~ N(\u03b8\u1d62, se\u1d62) (normal-normal model)"
            + (
                f"; {m.correction:g} was added to every cell of trials with a zero cell."
                if m.correction
                else "."
            )
        )
    if m.random_effects is None:
        re = "A common (fixed) effect was assumed: \u03b8\u1d62 = \u03bc for every trial."
    else:
        re = (
            f"Trial effects were {re_dist} around the pooled log odds ratio \u03bc with "
            "between-trial standard deviation \u03c4"
            + (
                ", parameterised non-centred (\u03b8\u1d62 = \u03bc + \u03c4 z\u1d62)."
                if fit.has_chains
                else "."
            )
        )
    if m.subgroup:
        re += (
            f" Each level of '{m.subgroup}' had its own mean \u03bc_g "
            f"({'one \u03c4 shared by all subgroups' if m.subgroup_tau == 'shared' else 'and its own \u03c4'}); "  # noqa: E501
            "the overall \u03bc reported is the unweighted average of the subgroup means."
        )
    if m.covariates:
        re += (
            f" A meta-regression on {', '.join(m.covariates)} (centred at the trials' mean) "
            "added x\u1d62\u03b2 to each trial's mean."
        )
    return f"We combined {k} randomised trials in a Bayesian meta-analysis. {lik} {re}"


def _methods(fit: FitResult, summary: dict[str, Any]) -> dict[str, Any]:
    k = int(summary["k"])
    settings = summary["settings"]
    versions = summary["versions"]
    priors = summary["priors"]
    names = {
        "mu": "pooled log odds ratio \u03bc",
        "tau": "between-trial SD \u03c4",
        "baseline": "control-arm log-odds \u03b1\u1d62",
        "beta": "meta-regression slopes \u03b2",
        "nu": "Student-t degrees of freedom \u03bd",
    }
    prior_text = "; ".join(f"{names.get(r, r)} ~ {p}" for r, p in priors.items())
    model = _model_sentence(fit, summary, k)
    pred = ""
    if fit.spec.random_effects is not None:
        pred = " The predictive log odds ratio of a new trial, \u03b8_new, " + (
            "was drawn from the random-effects distribution once per posterior draw."
            if fit.has_chains
            else "follows the random-effects distribution; its posterior was computed exactly."
        )
    prior_para = f"Priors were pre-specified: {prior_text}.{pred}"
    if not fit.has_chains:
        sampler = (
            "The posterior was computed exactly: conjugate in \u03bc given \u03c4 and by "
            "adaptive Gauss-Legendre integration over \u03c4 "
            f"(trialsynth {versions.get('trialsynth', '?')}); posterior probabilities have no "
            "Monte Carlo error."
        )
        checks = ""
    else:
        sampler = (
            "The posterior was sampled with the No-U-Turn sampler (nutpie "
            f"{versions.get('nutpie', '?')}, PyMC {versions.get('pymc', '?')}): "
            f"{settings['chains']} chains of {settings['tune']} tuning and {settings['draws']} "
            f"retained draws, target acceptance {settings['target_accept']:g}, "
            f"seed {settings['seed']}."
        )
        for r in summary.get("refits", []):
            sampler += (
                f" After {r['reason']} the model was refitted once at target acceptance "
                f"{r['target_accept']}."
            )
        checks = (
            f"Convergence required rank-normalised R-hat \u2264 {RHAT_MAX}, bulk and tail "
            f"effective sample sizes \u2265 {ESS_MIN:.0f}, no divergent transition and "
            f"E-BFMI \u2265 {BFMI_MIN} (Vehtari et al. 2021), computed with ArviZ "
            f"{versions.get('arviz', '?')}."
        )
    reporting = (
        "We report posterior medians with 95% equal-tailed credible intervals (CrI) on the "
        "odds-ratio scale, and posterior probabilities such as P(OR > 1)"
        + (" with their Monte Carlo standard errors" if fit.has_chains else "")
        + ". For comparison, classical pooled odds ratios were computed (Mantel-Haenszel, "
        "DerSimonian-Laird and REML, with 0.5 added to zero cells where needed)."
    )
    paragraphs = [model, prior_para, _bias_paragraph(summary), sampler, checks, reporting]
    return {"paragraphs": [p for p in paragraphs if p], "priors": priors}


def _bias_paragraph(summary: dict[str, Any]) -> str:
    """The bias adjustment of the weaker trials (Welton et al. 2009), when the fit has one."""
    b = summary.get("bias_adjustment")
    if not b:
        return ""
    text = (
        f"Trials whose {b['column']} was not {' or '.join(b['adequate'])} "
        f"({', '.join(b['weaker'])}) were given an additive bias on the log odds ratio, "
        f"βᵢ ~ Normal(b, {b['sd']:g}²), with the mean bias b ~ {b['prior']} "
        "stated as the log ratio of odds ratios by which weaker trials overstate the benefit "
        f"({b['benefit'].replace('-', ' ')} are a benefit; Welton et al. 2009)."
    )
    before = b.get("unadjusted")
    if before:
        text += (
            f" Without the adjustment P(OR > 1) was {before['p_mu_gt_0']:.3f} (pooled OR "
            f"{before['or']['median']:.2f}); with it {summary['p_mu_gt_0']:.3f} "
            f"({summary['or']['median']:.2f})."
        )
    return text


def _results(fit: FitResult, summary: dict[str, Any]) -> dict[str, Any]:
    mcse = summary.get("mcse") or {}
    rows = [
        {
            "quantity": "average of subgroup ORs, exp(\u03bc)"
            if fit.subgroups
            else "pooled OR, exp(\u03bc)",
            "estimate": _ci(summary["or"]),
            "p": _prob(summary["p_mu_gt_0"], mcse.get("p_mu_gt_0")),
        },
        {
            "quantity": "OR of a new trial, exp(\u03b8_new)",
            "estimate": _ci(summary["or_new"]),
            "p": _prob(summary["p_theta_new_gt_0"], mcse.get("p_theta_new_gt_0")),
        },
    ]
    if fit.spec.random_effects is not None:
        rows.insert(
            1,
            {
                "quantity": "heterogeneity \u03c4 (log-OR scale)",
                "estimate": _ci(summary["tau"]),
                "p": "",
            },
        )
    for t in summary.get("theta", []):
        rows.append({"quantity": f"shrunken OR: {t['study']}", "estimate": _ci(t["or"]), "p": ""})
    probabilities = []
    for q in QUERIES:
        a = fit.ask(q)
        probabilities.append({"query": a.query, "text": _prob(a.probability, a.mcse)})
    subgroups = [
        {
            "level": level,
            "k": g["k"],
            "or": _ci(g["or"]),
            "or_new": _ci(g["or_new"]),
            "p": f"{g['p_mu_gt_0']:.3f}",
        }
        for level, g in (summary.get("subgroups") or {}).items()
    ]
    contrasts = [
        {"contrast": c["contrast"], "ratio": _ci(c["ratio_of_or"]), "p": f"{c['p_greater']:.3f}"}
        for c in summary.get("subgroup_contrasts", [])
    ]
    betas = [
        {"name": n, "estimate": _ci(b), "p": f"{b['p_gt_0']:.3f}"}
        for n, b in (summary.get("beta") or {}).items()
    ]
    pooled = "Average OR over subgroups" if fit.subgroups else "Pooled OR"
    headline = (
        f"{pooled} {_ci(summary['or'])} (median [95% CrI]); "
        f"P(OR > 1) = {summary['p_mu_gt_0']:.3f}; "
        f"OR of a new trial {_ci(summary['or_new'])}; "
        f"P(OR_new > 1) = {summary['p_theta_new_gt_0']:.3f}"
    )
    if fit.spec.random_effects is not None:
        headline += f"; \u03c4 {_ci(summary['tau'])}"
    return {
        "headline": headline + ".",
        "rows": rows,
        "probabilities": probabilities,
        "subgroups": subgroups,
        "contrasts": contrasts,
        "betas": betas,
    }


def published_results(data_name: str) -> list[dict[str, str]]:
    """Published estimates shipped for this dataset's family (``datasets/*_published.csv``).

    ``ivig_rm_secondary`` uses ``ivig_rm_published.csv``: the name is shortened at
    underscores until a file matches. Empty when none does.
    """
    parts = data_name.split("_")
    base = resources.files("trialsynth.data") / "datasets"
    for n in range(len(parts), 0, -1):
        candidate = base / f"{'_'.join(parts[:n])}_published.csv"
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8")
            return [dict(r) for r in csv.DictReader(text.splitlines())]
    return []


def _published(fit: FitResult, summary: dict[str, Any]) -> dict[str, Any]:
    rows = [
        {
            "source": r.get("source", ""),
            "subset": r.get("subset", ""),
            "estimate": f"{float(r['estimate']):.2f} [{float(r['lower95']):.2f}, "
            f"{float(r['upper95']):.2f}]",
            "method": r.get("method", ""),
            "note": r.get("note", ""),
        }
        for r in published_results(str(fit.provenance["data_name"]))
    ]
    rows += _revman_rows(summary.get("published_reference"))
    freq = summary.get("frequentist") or {}
    mh = freq.get("mh") if isinstance(freq.get("mh"), dict) else None
    ours = [
        {
            "source": "this analysis (Bayesian)",
            "subset": summary.get("data", ""),
            "estimate": _ci(summary["or"]),
            "method": f"{summary['model']}, posterior median [95% CrI]",
            "note": f"k = {summary['k']}",
        },
    ]
    if mh and "or" in mh:
        ours.append(
            {
                "source": "this analysis (classical)",
                "subset": summary.get("data", ""),
                "estimate": f"{mh['or']:.2f} [{mh['lower']:.2f}, {mh['upper']:.2f}]",
                "method": "Mantel-Haenszel common OR [95% CI]",
                "note": f"k = {summary['k']}",
            }
        )
    return {"rows": rows, "ours": ours}


def _revman_rows(ref: dict[str, Any] | None) -> list[dict[str, Any]]:
    """RevMan's own pooled result of the outcome, read from the review (a published row)."""
    if not ref or not ref.get("pooled") or ref["pooled"].get("estimate") is None:
        return []
    p, rep = ref["pooled"], ref.get("reproduced")
    ci = (
        f" [{p['lower']:.2f}, {p['upper']:.2f}]"
        if p.get("lower") is not None and p.get("upper") is not None
        else ""
    )
    arms = f"{ref.get('treatment', '')} vs {ref.get('control', '')}"
    note = f"{ref.get('studies', '')} studies; {arms}"
    if rep is not None:
        note += (
            "; reproduced from the counts with RevMan's rules"
            if rep["matches"]
            else f"; NOT reproduced from the counts ({rep['estimate']:.3f})"
        )
    return [
        {
            "source": f"{ref['source']} ({ref.get('review', '')})",
            "subset": ref.get("outcome", ""),
            "estimate": f"{p['measure']} {p['estimate']:.2f}{ci}",
            "method": ref.get("describe", ""),
            "note": note,
        }
    ]


def _classical(summary: dict[str, Any]) -> dict[str, Any]:
    from trialsynth.report.style import CLASSICAL_LABELS

    freq = summary.get("frequentist") or {}
    rows = []
    for key, label in CLASSICAL_LABELS.items():
        est = freq.get(key)
        if not isinstance(est, dict) or "or" not in est:
            continue
        tau = est.get("tau")
        pi = (
            f"{est['or_pi_lower']:.2f} to {est['or_pi_upper']:.2f}"
            if est.get("or_pi_lower") is not None
            else ""
        )
        rows.append(
            {
                "method": label,
                "estimate": f"{est['or']:.2f} [{est['lower']:.2f}, {est['upper']:.2f}]",
                "tau": "" if tau is None else f"{tau:.3f}",
                "i2": "" if est.get("i2") is None else f"{100 * est['i2']:.0f}%",
                "pi": pi,
                "p": "" if est.get("pval") is None else f"{est['pval']:.3f}",
            }
        )
    return {"rows": rows, "error": freq.get("error")}


def rank_test(fit: FitResult) -> list[dict[str, Any]]:
    """ArviZ's multi-chain rank-uniformity test p-value per hyperparameter element."""
    import arviz_stats  # noqa: F401 - registers the .azstats accessor

    from trialsynth.report.plots import hyperparameters

    ds = fit.tree["posterior"].to_dataset()[hyperparameters(fit)]
    dims = ["chain", "draw"]
    ranks = ds.azstats.compute_ranks(dim=dims, relative=True)
    p_values, _b, _w = ranks.azstats.mchain_uniformity_test(dim=dims)
    out = []
    for name, da in p_values.data_vars.items():
        values = np.atleast_1d(np.asarray(da.values, float))
        labels = [f"{name}[{c}]" for c in da[da.dims[0]].values] if da.ndim else [str(name)]
        for label, p in zip(labels, values.ravel(), strict=True):
            out.append({"parameter": label, "p": float(p), "flagged": bool(p < RANK_TEST_ALPHA)})
    return out


def _order_bound(error: float) -> str:
    """``error`` as the power of ten above it, e.g. 3.2e-14 as "below 1e-13".

    Near machine precision the estimate's leading digits are rounding noise that differs
    between CPU kinds (3.2e-14 on one, 3.3e-14 on another), so the report shows its order.
    """
    if not error > 0 or not math.isfinite(error):
        return f"{error:g}"
    return f"below 1e{math.floor(math.log10(error)) + 1}"


def _diagnostics(
    fit: FitResult, summary: dict[str, Any], rank: list[dict[str, Any]] | None
) -> dict[str, Any]:
    d = summary["diagnostics"]
    if fit.diagnostics is None:
        exact = summary.get("exact") or {}
        return {
            "engine": fit.engine,
            "ok": True,
            "rows": [],
            "problems": [],
            "suggestion": "",
            "rank_test": [],
            "note": "Exact computation: no Markov chains, so no MCMC diagnostics apply"
            + (
                f" (integration nodes {exact['nodes']}, error estimate "
                f"{_order_bound(exact['error_estimate'])})."
                if exact
                else "."
            ),
        }
    rows = [
        {
            "check": "R-hat (max)",
            "value": f"{d['r_hat_max']:.3f}",
            "threshold": f"\u2264 {RHAT_MAX}",
            "ok": d["r_hat_max"] <= RHAT_MAX,
        },
        {
            "check": "bulk ESS (min)",
            "value": f"{d['ess_bulk_min']:.0f}",
            "threshold": f"\u2265 {ESS_MIN:.0f}",
            "ok": d["ess_bulk_min"] >= ESS_MIN,
        },
        {
            "check": "tail ESS (min)",
            "value": f"{d['ess_tail_min']:.0f}",
            "threshold": f"\u2265 {ESS_MIN:.0f}",
            "ok": d["ess_tail_min"] >= ESS_MIN,
        },
        {
            "check": "divergent transitions",
            "value": str(d["divergences"]),
            "threshold": "0",
            "ok": d["divergences"] == 0,
        },
    ]
    if d.get("bfmi_min") is not None:
        rows.append(
            {
                "check": "E-BFMI (min)",
                "value": f"{d['bfmi_min']:.2f}",
                "threshold": f"\u2265 {BFMI_MIN}",
                "ok": d["bfmi_min"] >= BFMI_MIN,
            }
        )
    rank = rank_test(fit) if rank is None else rank
    flagged = [r["parameter"] for r in rank if r["flagged"]]
    note = (
        f"Supplementary rank test (not one of the pre-specified checks): ArviZ's multi-chain "
        f"rank-uniformity test flags {', '.join(flagged)} (p < {RANK_TEST_ALPHA}); one chain "
        "explored that parameter differently. Look at the rank plot; more draws help."
        if flagged
        else f"Supplementary rank test: no hyperparameter flagged (all p \u2265 {RANK_TEST_ALPHA})."
    )
    diag = fit.diagnostics
    return {
        "engine": fit.engine,
        "ok": bool(d.get("ok", True)),
        "rows": rows,
        "problems": list(d.get("problems", [])),
        "suggestion": diag.suggestion if diag is not None else "",
        "rank_test": [
            {"parameter": r["parameter"], "p": f"{r['p']:.3g}", "flagged": r["flagged"]}
            for r in rank
        ],
        "note": note,
    }


def find_sensitivity(folder: str | Path) -> list[dict[str, Any]] | None:
    """Rows of ``sensitivity.json`` in a FIT folder (or its ``sensitivity/``), if present."""
    for path in (
        Path(folder) / "sensitivity.json",
        Path(folder) / "sensitivity" / "sensitivity.json",
    ):
        if path.is_file():
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise ReportError(f"{path}: not valid JSON ({err.msg})") from None
            if not isinstance(rows, list):
                raise ReportError(f"{path}: expected a list of scenario rows")
            return rows
    return None


def _sensitivity(rows: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not rows:
        return {"present": False, "rows": [], "psense": []}
    out = []
    psense = []
    for r in rows:
        ok = r.get("status") == "ok"
        if r.get("main") and r.get("psense"):
            psense = [
                {
                    "variable": str(p["variable"]),
                    "prior": f"{p['prior']:.3f}",
                    "likelihood": f"{p['likelihood']:.3f}",
                    "diagnosis": str(p["diagnosis"]),
                    "ok": p["diagnosis"] == "ok",
                }
                for p in r["psense"]
            ]
        out.append(
            {
                "main": bool(r.get("main")),
                "label": str(r.get("label", r.get("scenario", ""))),
                "or": _ci(r.get("or")) if ok else "",
                "tau": "" if not ok or not r.get("tau") else f"{r['tau']['median']:.2f}",
                "or_new": _ci(r.get("or_new")) if ok else "",
                "p": "" if not ok else _prob(r.get("p_mu_gt_0"), None),
                "p_new": "" if not ok else _prob(r.get("p_theta_new_gt_0"), None),
                "status": str(r.get("status", ""))
                + (f": {r['error']}" if r.get("error") and not ok else ""),
            }
        )
    return {"present": True, "rows": out, "psense": psense}


def future_trial(fit: FitResult) -> tuple[Any, str]:
    """Assurance of a future trial at :data:`ASSURANCE_SIZES` (``trialsynth design`` defaults).

    Returns the :class:`~.analysis.assurance.DesignResult`, or None and the reason when the
    fit cannot give one without more input (e.g. a normal-likelihood fit has no control-arm
    rate: ``trialsynth design FIT --control-rate P`` supplies it).
    """
    from trialsynth.analysis.assurance import AssuranceError, design_trial

    if fit.spec.likelihood != "binomial":
        return None, (
            "A normal-likelihood fit carries no control-arm rate; run "
            "`trialsynth design FIT --n-per-arm N --control-rate P` for the assurance."
        )
    try:
        return design_trial(fit, list(ASSURANCE_SIZES)), ""
    except AssuranceError as err:  # a documented limitation, reported in the section
        return None, f"No assurance: {err}"


def _future(design: Any, note: str) -> dict[str, Any]:
    if design is None:
        return {"present": False, "note": note, "rows": []}
    lo_hi = design.control_rate_interval
    control = f"{design.control_rate:.3f} ({design.control_source}" + (
        f", 95% interval {lo_hi[0]:.3f} to {lo_hi[1]:.3f})" if lo_hi else ")"
    )
    return {
        "present": True,
        "note": design.target_note[:1].upper() + design.target_note[1:],
        "criterion": design.criterion.describe(),
        "control": control,
        "limit": _prob(design.assurance_limit, design.assurance_limit_mcse),
        "sims": design.sims,
        "seed": design.seed,
        "rows": [
            {
                "n": p.n_per_arm,
                "assurance": _prob(p.assurance, p.mcse),
                "power": "" if p.classical_power is None else f"{p.classical_power:.3f}",
            }
            for p in design.points
        ],
    }


def _outcome_name(fit: FitResult, analysis: dict[str, Any]) -> str:
    ref = fit.provenance.get("reference") or {}
    return str(ref.get("outcome") or analysis.get("title") or fit.provenance["data_name"])


def build_context(
    fit: FitResult,
    *,
    analysis: dict[str, Any],
    figures: list[dict[str, Any]],
    sensitivity: list[dict[str, Any]] | None = None,
    design: Any = None,
    design_note: str = "",
    updated: Any = None,
    updated_note: str = "",
    cum: Any = None,
    bias: dict[str, Any] | None = None,
    rank_test: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything the report says, as one JSON-serialisable dict (``report.json``).

    ``updated`` (an updated-meta design, or its ``updated_note``) adds ``future.updated``;
    ``cum`` (a cumulative meta-analysis) adds the ``cumulative`` section before
    Reproducibility. ``rank_test``: :func:`rank_test` of ``fit`` if already computed.
    """
    from trialsynth import __version__
    from trialsynth.report.next_trial import (
        CUMULATIVE_SECTION,
        cumulative_context,
        updated_context,
    )

    summary = fit.summary()
    failed = summary.get("status") == "failed"
    title = analysis.get("title") or f"{summary.get('data', '')}: {summary['model']}"
    sections = [{"id": s, "heading": h} for s, h in SECTIONS]
    extra: dict[str, Any] = {}
    if cum is not None:
        sections.insert(len(sections) - 1, CUMULATIVE_SECTION)
        extra["cumulative"] = cumulative_context(cum)
    future = _future(design, design_note)
    if updated is not None or updated_note:
        future["updated"] = updated_context(updated, updated_note)
    context = extra | {
        "format": REPORT_FORMAT,
        "trialsynth": __version__,
        "title": title,
        "sections": sections,
        "analysis": analysis,
        "failed": failed,
        "question": analysis.get("question") or "",
        "data": _data_section(fit),
        "methods": _methods(fit, summary),
        "results": _results(fit, summary),
        "sof": sof_context(summary, fit.data_frame, _outcome_name(fit, analysis)),
        "published": _published(fit, summary),
        "classical": _classical(summary),
        "diagnostics": _diagnostics(fit, summary, rank_test),
        "sensitivity": _sensitivity(sensitivity),
        "future": future,
        "figures": figures,
        "reproducibility": {
            "seed": summary["seed"],
            "data_sha256": summary["data_sha256"],
            "fit_key": summary["fit_key"],
            "engine": summary["engine"],
            "settings": summary["settings"],
            "versions": summary["versions"],
            "spec": analysis.get("spec"),
        },
        "summary": summary,
    }
    if bias:  # the section exists only with a bias analysis of these data
        from trialsynth.report.bias_section import add_section, bias_context

        context["sections"] = add_section(context["sections"])
        context["bias"] = bias_context(bias)
    return context
