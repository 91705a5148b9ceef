"""How much each step of a bias adjustment by trial quality moves P(OR > 1) for the IVIg data.

For ``ivig_rm`` (all trials) and ``ivig_rm_secondary`` the same model is fitted at each step:

1. unadjusted;
2. weaker = {reconstructed, missing} (adequate: high, medium), empirical mean bias (the BRANDO
   default prior of ``trialsynth fit --bias-column``);
3. weaker = not high (adequate: high), empirical mean bias;
4. and 5. the same two sets with a mean-zero bias (prior ``normal(0, s)`` with the default's
   sd ``s`` and the same between-trial SD: the adjustment only adds variance).

Normal-normal fits are exact; binomial-normal fits are MCMC (nutpie, default settings), with
their MCSE and convergence checks. A step whose weaker set is empty (no analysed trial has
that value: ivig_rm's only "missing" trial, Stephenson 1998, is excluded for lack of counts)
is reported as such: the CLI refuses it with a one-line error. Each fit's wall time is
measured in the same process (``time.perf_counter``), so adjusted and unadjusted fits are
compared under the same load; the first MCMC fit of each model structure compiles.

Usage::

    .venv/bin/python scripts/bias_steps.py [--models normal-normal binomial-normal] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.models.bias import DEFAULT_BIAS_PRIOR, DEFAULT_BIAS_SD, BiasAdjustment, BiasError
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import Prior
from trialsynth.results.fitting import fit

DATASETS = ("ivig_rm", "ivig_rm_secondary")
MEAN_ZERO = Prior("normal", (0.0, DEFAULT_BIAS_PRIOR.params[1]))


@dataclass(frozen=True)
class Step:
    """One row of the table: which trials are weaker and the prior of their mean bias."""

    label: str
    adequate: tuple[str, ...] | None  # None: unadjusted
    prior: Prior = DEFAULT_BIAS_PRIOR


STEPS = (
    Step("unadjusted", None),
    Step("weaker = reconstructed, missing; empirical mean bias", ("high", "medium")),
    Step("weaker = not high; empirical mean bias", ("high",)),
    Step("weaker = reconstructed, missing; mean-zero bias", ("high", "medium"), MEAN_ZERO),
    Step("weaker = not high; mean-zero bias", ("high",), MEAN_ZERO),
)


def run_step(dataset: str, model: str, step: Step, settings: SamplerSettings) -> dict[str, Any]:
    """Fit one step; the row of the table (or why the step does not apply)."""
    data = load(dataset)
    bias = None
    if step.adequate is not None:
        bias = BiasAdjustment("confidence", step.adequate, step.prior, DEFAULT_BIAS_SD)
    try:
        spec = ModelSpec.from_options(model, data_kind=data.kind, bias=bias)
        t0 = time.perf_counter()
        engine = "exact" if model == "normal-normal" else "mcmc"
        res = fit(data, spec=spec, settings=settings, engine=engine, reusable=True)
        wall = time.perf_counter() - t0
    except BiasError as err:
        return {"dataset": dataset, "model": model, "step": step.label, "skipped": str(err)}
    s = res.summary()
    row = {
        "dataset": dataset,
        "model": model,
        "step": step.label,
        "engine": s["engine"],
        "weaker": s.get("bias_adjustment", {}).get("weaker", []),
        "p_or_gt_1": s["p_mu_gt_0"],
        "mcse": s["mcse"]["p_mu_gt_0"] if s["engine"] == "mcmc" else 0.0,
        "or": s["or"],
        "wall_s": wall,
        "timings": res.timings,
        "status": s["status"],
        "diagnostics": s["diagnostics"],
    }
    if "bias_adjustment" in s:
        row["overstatement"] = s["bias_adjustment"]["overstatement"]
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table: P(OR > 1), its move against the unadjusted fit, OR, wall time."""
    out = [
        "| data | model | step | weaker trials | P(OR > 1) | change | pooled OR [95% CrI] "
        "| wall time (s) | compile / sample (s) | vs unadjusted |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    base: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["dataset"], r["model"])
        if "skipped" in r:
            out.append(
                f"| {r['dataset']} | {r['model']} | {r['step']} | 0 | n/a (no analysed trial "
                "is weaker) | | | | | |"
            )
            continue
        if r["step"] == "unadjusted":
            base[key] = r
        b = base[key]
        p = f"{r['p_or_gt_1']:.3f}"
        if r["engine"] == "mcmc":
            p += f" ± {r['mcse']:.3f}"
            if r["status"] != "ok":
                p += " (FAILED checks)"
        change = "" if r is b else f"{r['p_or_gt_1'] - b['p_or_gt_1']:+.3f}"
        o = r["or"]
        # exact: whole fit; MCMC: sampling (each structure compiles once, in its first fit)
        t, tb = (r["wall_s"], b["wall_s"]) if r["engine"] == "exact" else (_sample(r), _sample(b))
        ratio = "1" if r is b else f"{t / tb:.2f}x"
        parts = (
            ""
            if r["engine"] == "exact"
            else f"{r['timings'].get('compile_s', 0.0):.2f} / {_sample(r):.2f}"
        )
        out.append(
            f"| {r['dataset']} | {r['model']} | {r['step']} | {len(r['weaker'])} | {p} | "
            f"{change} | {o['median']:.2f} [{o['q025']:.2f}, {o['q975']:.2f}] | "
            f"{r['wall_s']:.2f} | {parts} | {ratio} |"
        )
    return "\n".join(out)


def _sample(row: dict[str, Any]) -> float:
    """Sampling time of an MCMC row (a refit after divergences included)."""
    return float(sum(v for k, v in row["timings"].items() if k.startswith("sample")))


def diagnostics(rows: list[dict[str, Any]]) -> str:
    """One line per MCMC fit: R-hat, ESS, divergences, E-BFMI (every fit's checks shown)."""
    lines = []
    for r in rows:
        if r.get("engine") != "mcmc":
            continue
        d = r["diagnostics"]
        lines.append(
            f"- {r['dataset']}, {r['step']}: R-hat max {d['r_hat_max']:.3f}, ESS bulk min "
            f"{d['ess_bulk_min']:.0f}, tail min {d['ess_tail_min']:.0f}, divergences "
            f"{d['divergences']}, E-BFMI min {d['bfmi_min']:.2f}, {r['status']}; timings "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items())
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run every step for every dataset and model; print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["normal-normal", "binomial-normal"])
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    settings = SamplerSettings()
    # warm-up (imports, first calls; not timed): one exact fit, so the first row is not
    # charged with them; MCMC compiles are reported apart instead
    fit(load("ivig_rm"), spec=ModelSpec(likelihood="normal"), engine="exact")
    rows = [
        run_step(dataset, model, step, settings)
        for model in args.models
        for dataset in DATASETS
        for step in STEPS
    ]
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or 'cpu'}"
        f", {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; bias prior "
        f"{DEFAULT_BIAS_PRIOR.describe()}, mean-zero {MEAN_ZERO}, between-trial SD "
        f"{DEFAULT_BIAS_SD}; sampler {settings.to_dict()}\n"
    )
    print(table(rows))
    print()
    print(diagnostics(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
