"""Calibration of the default binomial-normal analysis (issue 7): SBC, coverage, divergences.

1. Simulation-based calibration (Talts et al. 2018). Each replication draws mu ~ N(0, 2.82),
   tau ~ HN(0.5) and control-arm log-odds alpha_i ~ N(0, 5) from the default priors,
   k = 5..8 trials with 20-100 participants per arm, binomial events; fits the default
   model (4 chains x 1000 draws, 1000 tuning; one compiled model per k, reused with
   ``fit(..., reusable=True)``); ranks the true mu and tau among L = 99 draws thinned by 40
   (thinning lowers autocorrelation so the ranks are close to independent draws).
   Test: chi-square test of uniform ranks in 10 bins, each parameter at level 0.01.
2. Coverage: fixed true (mu, tau), k = 5..10 trials of 20-100 per arm, control risk about
   0.3 (alpha_i ~ N(logit 0.3, 0.5)); how often the central 95% CrI of mu holds the true
   mu (4 x 1000 draws, 1000 tuning). Reported with its binomial 95% interval; the issue's
   target is 93-97%. Nothing is tuned to hit it.
3. Divergences with the default settings on the shipped validation datasets (first pass,
   before the automatic refit), several seeds.

Writes ``calibration.json``, ``sbc_ranks.png`` and ``coverage.png`` to ``--out``.
Usage: .venv/bin/python scripts/calibration.py [--sbc 200] [--coverage 200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from trialsynth.core.settings import SamplerSettings
from trialsynth.data import ArmData, TrialData, load
from trialsynth.results.fitting import fit

ROOT = Path(__file__).resolve().parents[1]
#: Thinned draws per replication for the SBC ranks (ranks take L + 1 = 100 values).
L_RANKS = 99
THIN = 40
BINS = 10
#: Level of each uniformity test (mu and tau tested separately).
SBC_LEVEL = 0.01
# 4 x 1000 draws after 1000 tuning: with 4 x 250 after 300 (the first study) tau mixed too
# slowly for its ranks to be uniform over 400 replications (p = 0.009; the same 400
# data sets give p = 0.64 with these settings, reports/calibration/sbc_400_short_chains.json).
SBC_SETTINGS = {"draws": 1000, "tune": 1000, "chains": 4}
COVERAGE_SETTINGS = {"draws": 1000, "tune": 1000, "chains": 4}
#: Fixed (mu, tau) scenarios of the coverage study.
SCENARIOS = ((0.3, 0.2), (0.3, 0.5))
VALIDATION = ("ivig_rm", "ivig_rm_secondary", "crins2014", "bcg")


def simulate(
    rng: np.random.Generator, k: int, mu: float, tau: float, alpha: np.ndarray
) -> TrialData:
    """Arm-level binomial trials with 20-100 participants per arm."""
    theta = mu + tau * rng.standard_normal(k)
    n_t = rng.integers(20, 101, size=k)
    n_c = rng.integers(20, 101, size=k)
    p_c = 1 / (1 + np.exp(-alpha))
    p_t = 1 / (1 + np.exp(-(alpha + theta)))
    return ArmData(
        f"sim(k={k})",
        [f"trial {i + 1}" for i in range(k)],
        events_t=rng.binomial(n_t, p_t),
        n_t=n_t,
        events_c=rng.binomial(n_c, p_c),
        n_c=n_c,
    )


def _rank(draws: np.ndarray, truth: float) -> int:
    thinned = np.asarray(draws)[:, ::THIN].ravel()[:L_RANKS]
    assert thinned.size == L_RANKS, thinned.size
    return int(np.sum(thinned < truth))


def chi2_uniform(ranks: list[int]) -> dict[str, Any]:
    """Chi-square test that ranks 0..L_RANKS are uniform, in BINS equal bins."""
    counts = np.bincount(np.asarray(ranks) * BINS // (L_RANKS + 1), minlength=BINS)
    stat, p = stats.chisquare(counts)
    return {"counts": counts.tolist(), "chi2": float(stat), "df": BINS - 1, "p": float(p)}


def sbc(n: int, seed: int = 2026) -> dict[str, Any]:
    """Simulation-based calibration over ``n`` replications (k cycles through 5..8)."""
    rng = np.random.default_rng(seed)
    rows = []
    t0 = time.perf_counter()
    for i in range(n):
        k = 5 + i % 4
        mu = rng.normal(0, 2.82)
        tau = abs(rng.normal(0, 0.5))
        alpha = rng.normal(0, 5, size=k)
        data = simulate(rng, k, mu, tau, alpha)
        res = fit(data, settings=SamplerSettings(seed=i, **SBC_SETTINGS), reusable=True)
        d = res.diagnostics
        rows.append(
            {
                "k": k,
                "mu": mu,
                "tau": tau,
                "rank_mu": _rank(res.draws("mu"), mu),
                "rank_tau": _rank(res.draws("tau"), tau),
                "divergences": d.divergences if d else 0,
                "refit": bool(res.provenance["refits"]),
                "ok": res.ok,
            }
        )
    return {
        "replications": n,
        "settings": SBC_SETTINGS,
        "L": L_RANKS,
        "thin": THIN,
        "level": SBC_LEVEL,
        "mu": chi2_uniform([r["rank_mu"] for r in rows]),
        "tau": chi2_uniform([r["rank_tau"] for r in rows]),
        "refits": sum(r["refit"] for r in rows),
        "failed_checks": sum(not r["ok"] for r in rows),
        "divergent_after_refit": sum(r["divergences"] > 0 for r in rows),
        "wall_s": time.perf_counter() - t0,
        "rows": rows,
    }


def coverage(n: int, mu: float, tau: float, seed: int = 7) -> dict[str, Any]:
    """Coverage of the central 95% CrI of mu over ``n`` replications (k cycles 5..10)."""
    rng = np.random.default_rng([seed, round(mu * 1000), round(tau * 1000)])
    hits, widths, failed = [], [], 0
    t0 = time.perf_counter()
    for i in range(n):
        k = 5 + i % 6
        alpha = rng.normal(math.log(0.3 / 0.7), 0.5, size=k)
        data = simulate(rng, k, mu, tau, alpha)
        res = fit(data, settings=SamplerSettings(seed=i, **COVERAGE_SETTINGS), reusable=True)
        s = res.summary()["mu"]
        hits.append(bool(s["q025"] <= mu <= s["q975"]))
        widths.append(s["q975"] - s["q025"])
        failed += not res.ok
    x = int(sum(hits))
    ci = stats.binomtest(x, n).proportion_ci(0.95, method="exact")
    return {
        "mu": mu,
        "tau": tau,
        "replications": n,
        "covered": x,
        "coverage": x / n,
        "coverage_ci95": [float(ci.low), float(ci.high)],
        "median_width": float(np.median(widths)),
        "failed_checks": failed,
        "wall_s": time.perf_counter() - t0,
    }


def divergence_rates(seeds: int = 5) -> list[dict[str, Any]]:
    """First-pass divergences of the default fit on the validation datasets."""
    out = []
    for name in VALIDATION:
        data = load(name)
        div, transitions, refits, failed = 0, 0, 0, 0
        for seed in range(1, seeds + 1):
            settings = SamplerSettings(seed=seed)
            first = fit(data, settings=settings, retry_divergences=False, reusable=True)
            assert first.diagnostics is not None
            div += first.diagnostics.divergences
            transitions += settings.draws * settings.chains
            if first.diagnostics.divergences:
                again = fit(data, settings=settings, reusable=True)
                refits += 1
                failed += not again.ok
        out.append(
            {
                "dataset": name,
                "seeds": seeds,
                "divergences": div,
                "transitions": transitions,
                "rate": div / transitions,
                "fits_with_divergences": refits,
                "failed_after_refit": failed,
            }
        )
    return out


def figures(result: dict[str, Any], out: Path) -> None:
    """Rank histograms (with a 99% band for uniform counts) and the coverage plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["sbc"]
    n = s["replications"]
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / BINS)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for ax, name in zip(axes, ("mu", "tau"), strict=True):
        counts = s[name]["counts"]
        ax.bar(range(BINS), counts, width=0.9, color="#4c72b0")
        ax.axhspan(lo, hi, color="grey", alpha=0.25, label="99% band if uniform")
        ax.axhline(n / BINS, color="black", lw=0.8)
        ax.set_title(f"SBC ranks of {name} (chi-square p = {s[name]['p']:.3f})")
        ax.set_xlabel(f"rank bin (of {L_RANKS} thinned draws)")
        ax.set_ylabel("replications")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.savefig(out / "sbc_ranks.png", dpi=150)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    for i, c in enumerate(result["coverage"]):
        ax.errorbar(
            [i],
            [c["coverage"]],
            yerr=[[c["coverage"] - c["coverage_ci95"][0]], [c["coverage_ci95"][1] - c["coverage"]]],
            fmt="o",
            capsize=4,
        )
    ax.axhspan(0.93, 0.97, color="green", alpha=0.15, label="target 93-97%")
    ax.axhline(0.95, color="black", lw=0.8)
    ax.set_xticks(range(len(result["coverage"])))
    ax.set_xticklabels([f"mu={c['mu']}, tau={c['tau']}" for c in result["coverage"]])
    ax.set_ylabel("coverage of the 95% CrI of mu")
    ax.legend(fontsize=8)
    fig.savefig(out / "coverage.png", dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sbc", type=int, default=200, help="SBC replications")
    parser.add_argument("--coverage", type=int, default=200, help="replications per scenario")
    parser.add_argument("--divergence-seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "calibration")
    parser.add_argument("--sbc-only", action="store_true", help="only the SBC part, no files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"sbc": sbc(args.sbc)}
    print(json.dumps({k: v for k, v in result["sbc"].items() if k != "rows"}), flush=True)
    if args.sbc_only:
        return
    result["coverage"] = [coverage(args.coverage, mu, tau) for mu, tau in SCENARIOS]
    print(json.dumps(result["coverage"]), flush=True)
    result["divergences"] = divergence_rates(args.divergence_seeds)
    print(json.dumps(result["divergences"]), flush=True)
    (args.out / "calibration.json").write_text(json.dumps(result, indent=2) + "\n")
    figures(result, args.out)


if __name__ == "__main__":
    main()
