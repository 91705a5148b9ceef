"""The interface every result shares: draws, ``summary()``, ``ask()``, ``save``/``load``.

A result wraps an ``xarray.DataTree`` (ArviZ groups ``posterior``, ``observed_data`` and,
for MCMC, ``sample_stats``) whose root attributes hold its provenance
(:mod:`trialsynth.results.provenance`). Each engine has its own result type
(:class:`~trialsynth.results.mcmc.McmcFit`, :class:`~trialsynth.results.exact.ExactFit`);
what differs between them is a few hooks (diagnostics, exact marginals), never a branch on
the engine's name. ``save`` writes the ``FIT`` folder of INTERFACE.md (``posterior.nc``,
``summary.json``, ``summary.csv``); :meth:`FitResult.load` reads it back as the result type
of the engine that made it and refuses a folder whose provenance does not check out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from trialsynth.core.density import kde
from trialsynth.core.files import commit_files, recover
from trialsynth.engines.diagnostics import Diagnostics, probability_mcse
from trialsynth.models.bias import BiasAdjustment
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import ROLES, Prior, PriorSet
from trialsynth.results.provenance import FORMAT_VERSION, ResultError, analysis_key, fit_key

if TYPE_CHECKING:
    from trialsynth.core.settings import SamplerSettings
    from trialsynth.engines.base import EngineFit
    from trialsynth.models.problem import Problem
from trialsynth.results.queries import Answer, ask

#: ``summary()`` entries that layers above results compute, each with its place in the
#: summary: a saved fit keeps them (``summary.json``) and :meth:`FitResult.load` restores them.
EXTRAS: dict[str, tuple[str, ...]] = {
    "absolute": ("absolute",),  # analysis.absolute.attach_absolute
    "bias_unadjusted": ("bias_adjustment", "unadjusted"),  # workflow.fit.unadjusted
}
_MISSING = object()


def _get_path(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return _MISSING
        tree = tree[key]
    return tree


def _put_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _stats(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=float).ravel()
    q025, median, q975 = np.quantile(x, [0.025, 0.5, 0.975])
    return {
        "mean": float(x.mean()),
        "sd": float(x.std(ddof=1)),
        "median": float(median),
        "q025": float(q025),
        "q975": float(q975),
    }


def _or_stats(x: np.ndarray) -> dict[str, float]:
    q025, median, q975 = np.exp(
        np.quantile(np.asarray(x, dtype=float).ravel(), [0.025, 0.5, 0.975])
    )
    return {"median": float(median), "q025": float(q025), "q975": float(q975)}


@lru_cache(maxsize=64)
def _data_table(text: str) -> pd.DataFrame:
    """The data table stored as JSON records in the provenance, parsed once per table.

    A fit's report, absolute effects and explorer view each ask for it (7 ms a parse).
    """
    return pd.read_json(StringIO(text), orient="records")


@dataclass
class FitResult:
    """Posterior of a random-effects meta-analysis with its diagnostics and provenance.

    Attributes
    ----------
    tree : xarray.DataTree
        ``posterior`` holds ``mu``, ``tau``, ``theta`` (dim ``study``), ``theta_new`` on
        the log odds ratio scale (and ``alpha``, control-arm log-odds, for the binomial
        likelihood).
    provenance : dict
        Data hash and name, model, priors, sampler settings, seed, versions, notices.
    diagnostics : Diagnostics or None
        Convergence checks (None where there is no Monte Carlo error to check).
    timings : dict
        Seconds per phase of the fit that made this result (not saved).
    extras : dict
        Summary entries computed by the layers above from this posterior (``absolute``:
        :func:`trialsynth.analysis.absolute.attach_absolute`); part of ``summary()`` and
        ``summary.json``, restored by :meth:`load` (keys and places in :data:`EXTRAS`).
    """

    tree: xr.DataTree
    provenance: dict[str, Any]
    diagnostics: Diagnostics | None = None
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    #: The engine's name (``summary()["engine"]``), set by each result type.
    engine: ClassVar[str] = ""
    #: True when the draws are Markov chains (rank and trace plots, R-hat make sense).
    has_chains: ClassVar[bool] = False
    _types: ClassVar[dict[str, type[FitResult]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        FitResult._types[cls.engine] = cls

    # ------------------------------------------------------------------ hooks

    def marginal(self, name: str, label: str | None = None) -> Any:
        """The exact marginal of ``name`` (``mu``, ``tau``, ``theta_new``, ``theta``), or None.

        ``label`` is a study (for ``theta``) or a subgroup level. Results without exact
        marginals answer from their draws.
        """
        return None

    def density(self, name: str, grid: ArrayLike, *, lower: float | None = None) -> np.ndarray:
        """The posterior density of ``name`` (``mu``, ``tau``, ``theta_new``) on ``grid``.

        The exact marginal's density where the result has one; otherwise a Gaussian kernel
        density of the draws (reflected at ``lower``, e.g. 0 for tau).
        """
        grid = np.asarray(grid, float)
        marginal = self.marginal(name)
        if marginal is not None:
            return np.asarray(marginal.pdf(grid), float)
        return kde(self.draws(name), grid, lower=lower)

    def _pooled(self) -> dict[str, Any]:
        """mu, tau, theta_new, the ORs, P(> 0) with MCSE, and each trial's theta."""
        mu, tau, new = self.draws("mu"), self.draws("tau"), self.draws("theta_new")
        theta = self.draws("theta")
        return {
            "mu": _stats(mu),
            "tau": _stats(tau),
            "theta_new": _stats(new),
            "or": _or_stats(mu),
            "or_new": _or_stats(new),
            "p_mu_gt_0": float(np.mean(mu > 0)),
            "p_theta_new_gt_0": float(np.mean(new > 0)),
            "mcse": {
                "p_mu_gt_0": self.probability_mcse(mu > 0),
                "p_theta_new_gt_0": self.probability_mcse(new > 0),
            },
            "theta": [
                {"study": s, **_stats(theta[..., i]), "or": _or_stats(theta[..., i])}
                for i, s in enumerate(self.studies)
            ],
        }

    def _diagnostics_json(self) -> dict[str, Any]:
        return {"r_hat_max": None, "ess_bulk_min": None, "ess_tail_min": None, "divergences": None}

    def _refine(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Replace summary entries by better values where the result type has them."""
        return summary

    @classmethod
    def from_engine(
        cls,
        out: EngineFit,
        problem: Problem,
        *,
        settings: SamplerSettings,
        notices: tuple[str, ...] = (),
    ) -> FitResult:
        """Package an engine's output as this result type (each result type has its own)."""
        raise NotImplementedError(f"{cls.__name__} has no engine")

    @classmethod
    def _from_saved(
        cls, tree: xr.DataTree, provenance: dict[str, Any], saved: dict[str, Any]
    ) -> FitResult:
        return cls(tree=tree, provenance=provenance)

    # ------------------------------------------------------------------ access

    @property
    def spec(self) -> ModelSpec:
        """The model that was fitted."""
        m = self.provenance["model"]
        return ModelSpec(
            likelihood=m["likelihood"],
            random_effects=m["random_effects"],
            nu=m.get("nu", 4.0),
            correction=m.get("correction", 0.5),
            subgroup=m.get("subgroup"),
            subgroup_tau=m.get("subgroup_tau", "shared"),
            covariates=tuple(m.get("covariates", ())),
            bias=BiasAdjustment.from_dict(m["bias"]) if "bias" in m else None,
        )

    @property
    def priors(self) -> PriorSet:
        """The priors that were used (data-dependent constants resolved)."""
        p = self.provenance["priors"]
        return PriorSet(**{role: Prior.from_dict(p[role]) for role in ROLES if role in p})

    @property
    def studies(self) -> list[str]:
        """Study labels in data order."""
        return list(self.provenance["studies"])

    @property
    def subgroups(self) -> list[str]:
        """Subgroup levels of a subgroup fit (empty otherwise)."""
        post = self.tree["posterior"]
        return [str(v) for v in post["subgroup"].values] if "subgroup" in post.coords else []

    def prob(self, expr: str) -> float:
        """Posterior probability of a query, e.g. ``fit.prob("OR > 1")``.

        Accepts the condition alone or wrapped as ``P(...)``; see
        :mod:`trialsynth.results.queries` for the grammar and :meth:`ask` for the MCSE.
        """
        return self.ask(expr).probability

    def ask(self, expr: str) -> Answer:
        """The :class:`~trialsynth.results.queries.Answer` (probability and MCSE) of a query."""
        text = expr if expr.strip().startswith("P") and "(" in expr else f"P({expr})"
        return ask(self, text)

    @property
    def data_frame(self) -> pd.DataFrame:
        """The analysed data table (with provenance columns): a copy, the caller's to change."""
        return _data_table(self.provenance["data_table"]).copy()

    @property
    def ok(self) -> bool:
        """False when the fit failed its convergence checks."""
        return self.diagnostics is None or self.diagnostics.ok

    def probability_mcse(self, indicator: np.ndarray) -> float:
        """MCSE of a probability estimated from (chain, draw) indicators of these draws.

        ESS-based (ArviZ), which accounts for autocorrelation; :class:`ExactFit` overrides it
        with the binomial MCSE of its iid draws.
        """
        return probability_mcse(indicator)

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of ``name`` with dims (chain, draw[, study])."""
        post = self.tree["posterior"]
        if name not in post:
            raise KeyError(f"no posterior variable {name!r}; valid: {', '.join(post.data_vars)}")
        return np.asarray(post[name].values)

    # ------------------------------------------------------------------ summaries

    def summary(self) -> dict[str, Any]:
        """The ``fit --json`` object of INTERFACE.md (plus documented extra keys)."""
        prov = self.provenance
        out: dict[str, Any] = {
            "model": prov["model"]["name"],
            "engine": self.engine,
            "k": prov["k"],
            "priors": {
                role: Prior.from_dict(prov["priors"][role]).describe()
                for role in self.prior_roles()
            },
            **self._pooled(),
            **self._subgroup_summary(),
            "diagnostics": self._diagnostics_json(),
            "status": "ok" if self.ok else "failed",
            "frequentist": prov.get("frequentist"),
            "seed": prov["seed"],
            "data": prov["data_name"],
            "data_sha256": prov["data_sha256"],
            "settings": prov["settings"],
            "model_spec": prov["model"],
            "notices": prov["notices"],
            "refits": prov["refits"],
            "fit_key": prov["fit_key"],
            "analysis_key": analysis_key(prov),
            "versions": prov["versions"],
            **({"numerics": prov["numerics"]} if "numerics" in prov else {}),
        }
        if prov.get("reference"):  # RevMan's own pooled result of the outcome
            out["published_reference"] = prov["reference"]
        if "bias_adjustment" in prov:
            out["bias_adjustment"] = self._bias_summary()
        for key, path in EXTRAS.items():
            if key in self.extras and _get_path(out, path[:-1]) is not _MISSING:
                _put_path(out, path, self.extras[key])
        return self._refine(out)

    def _bias_summary(self) -> dict[str, Any]:
        """The weaker trials, the bias prior and the posterior of the mean bias."""
        b = self.draws("bias_mean")
        sign = 1.0 if self.provenance["bias_adjustment"]["benefit"] == "more-events" else -1.0
        return {
            **self.provenance["bias_adjustment"],
            # on the log-OR scale of the model, and as the factor by which weaker trials
            # overstate the benefit (exp of the mean bias in the benefit direction)
            "bias_mean": _stats(b),
            "overstatement": _or_stats(sign * b),
            # the same model without the adjustment, when the workflow fitted it (EXTRAS)
            "unadjusted": None,
        }

    def _subgroup_summary(self) -> dict[str, Any]:
        """Per-subgroup effects and contrasts, and meta-regression slopes (when fitted)."""
        post = self.tree["posterior"]
        out: dict[str, Any] = {}
        if "mu_subgroup" in post:
            levels = self.subgroups
            mu_g = np.asarray(post["mu_subgroup"].values)
            new_g = np.asarray(post["theta_new_subgroup"].values)
            tau_g = np.asarray(post["tau_subgroup"].values)
            frame = self.data_frame.set_index("study").loc[self.studies]
            column = self.provenance["model"]["subgroup"]
            out["subgroups"] = {
                level: {
                    "k": int((frame[column].astype(str) == level).sum()),
                    "mu": _stats(mu_g[..., j]),
                    "tau": _stats(tau_g[..., j]),
                    "or": _or_stats(mu_g[..., j]),
                    "or_new": _or_stats(new_g[..., j]),
                    "p_mu_gt_0": float(np.mean(mu_g[..., j] > 0)),
                    "p_theta_new_gt_0": float(np.mean(new_g[..., j] > 0)),
                    "mcse": {
                        "p_mu_gt_0": self.probability_mcse(mu_g[..., j] > 0),
                        "p_theta_new_gt_0": self.probability_mcse(new_g[..., j] > 0),
                    },
                }
                for j, level in enumerate(levels)
            }
            out["subgroup_contrasts"] = [
                {
                    "contrast": f"{a} vs {b}",
                    "a": a,
                    "b": b,
                    "log_ratio_of_or": _stats(mu_g[..., i] - mu_g[..., j]),
                    "ratio_of_or": _or_stats(mu_g[..., i] - mu_g[..., j]),
                    "p_greater": float(np.mean(mu_g[..., i] > mu_g[..., j])),
                    "p_greater_mcse": self.probability_mcse(mu_g[..., i] > mu_g[..., j]),
                }
                for i, a in enumerate(levels)
                for j, b in enumerate(levels)
                if i < j
            ]
        if "beta" in post:
            beta = np.asarray(post["beta"].values)
            names = [str(c) for c in post["covariate"].values]
            out["beta"] = {
                name: {**_stats(beta[..., j]), "p_gt_0": float(np.mean(beta[..., j] > 0))}
                for j, name in enumerate(names)
            }
            if "covariate_centre" in post.coords:  # mu is the effect at these values
                for name, c in zip(names, post["covariate_centre"].values, strict=True):
                    out["beta"][name]["centre"] = float(c)
        if "nu" in post:  # estimated Student-t degrees of freedom
            out["nu"] = _stats(np.asarray(post["nu"].values))
        return out

    def prior_roles(self) -> list[str]:
        """The prior roles this fit's model uses (what its summary lists under ``priors``)."""
        m = self.provenance["model"]
        roles = ["mu"]
        if m["random_effects"] is not None:
            roles.append("tau")
        if m["likelihood"] == "binomial":
            roles.append("baseline")
        if m.get("covariates"):
            roles.append("beta")
        if m["random_effects"] == "student-t" and m.get("nu", 4.0) is None:
            roles.append("nu")
        return roles

    def summary_frame(self) -> pd.DataFrame:
        """One row per quantity (log-OR scale and OR scale), for ``summary.csv``."""
        s = self.summary()
        rows = []
        for q in ("mu", "tau", "theta_new"):
            rows.append({"quantity": q, **s[q]})
        for t in s["theta"]:
            rows.append(
                {
                    "quantity": f"theta[{t['study']}]",
                    **{k: t[k] for k in ("mean", "sd", "median", "q025", "q975")},
                }
            )
        post = self.tree["posterior"]
        per_level = (
            ("mu_subgroup", "mu"),
            ("tau_subgroup", "tau"),
            ("theta_new_subgroup", "theta_new"),
        )
        for level in s.get("subgroups", {}):
            for var, q in per_level:
                x = np.asarray(post[var].sel(subgroup=level).values)
                rows.append({"quantity": f"{q}[{level}]", **_stats(x)})
        for name, b in s.get("beta", {}).items():
            keep = ("mean", "sd", "median", "q025", "q975")
            rows.append({"quantity": f"beta[{name}]", **{k: b[k] for k in keep}})
        if "nu" in s:
            rows.append({"quantity": "nu", **s["nu"]})
        frame = pd.DataFrame(rows)
        # tau and nu are not log odds ratios (beta: exp is the OR ratio per covariate unit)
        is_effect = ~frame["quantity"].str.match(r"^(tau|nu)(\[|$)")
        for col in ("median", "q025", "q975"):
            frame[f"or_{col}"] = np.where(is_effect, np.exp(frame[col]), np.nan)
        frame["status"] = s["status"]  # a failed fit is marked in every output
        return frame

    def to_dataframe(self) -> pd.DataFrame:
        """Tidy posterior summaries for pandas users: one row per quantity.

        Columns ``quantity``, ``scale`` (``log_or``, ``or``, ``tau``, ``probability``,
        ``per_1000``), ``mean``, ``sd``, ``median``, ``q025``, ``q975``; the pooled and
        new-trial ORs, tau, each trial's shrunken effect, P(OR > 1), and the absolute
        effects when the fit has them. Missing entries are NaN.
        """
        s = self.summary()
        rows: list[dict[str, Any]] = []
        for q in ("mu", "theta_new"):
            rows.append({"quantity": q, "scale": "log_or", **s[q]})
        rows.append({"quantity": "tau", "scale": "tau", **s["tau"]})
        rows.append({"quantity": "or", "scale": "or", **s["or"]})
        rows.append({"quantity": "or_new", "scale": "or", **s["or_new"]})
        for t in s["theta"]:
            keep = {k: t[k] for k in ("mean", "sd", "median", "q025", "q975")}
            rows.append({"quantity": f"theta[{t['study']}]", "scale": "log_or", **keep})
        rows.append({"quantity": "P(OR > 1)", "scale": "probability", "mean": s["p_mu_gt_0"]})
        rows.append(
            {"quantity": "P(OR_new > 1)", "scale": "probability", "mean": s["p_theta_new_gt_0"]}
        )
        a = s.get("absolute")
        if a:
            for key in ("per_1000_control", "per_1000_treatment", "difference_per_1000"):
                rows.append({"quantity": key, "scale": "per_1000", **a[key]})
            rows.append({"quantity": "P(benefit)", "scale": "probability", "mean": a["p_benefit"]})
            if a.get("p_difference_gt_mcid") is not None:
                rows.append(
                    {
                        "quantity": f"P(difference > {a['mcid']:g})",
                        "scale": "probability",
                        "mean": a["p_difference_gt_mcid"],
                    }
                )
        cols = ["quantity", "scale", "mean", "sd", "median", "q025", "q975"]
        return pd.DataFrame(rows).reindex(columns=cols)

    def _repr_html_(self) -> str:
        """Jupyter display: the summary table and the diagnostics."""
        import html

        s = self.summary()

        def ci(d: dict[str, float]) -> str:
            return f"{d['median']:.2f} [{d['q025']:.2f}, {d['q975']:.2f}]"

        rows = [
            ("pooled OR, exp(mu)", ci(s["or"]), f"{s['p_mu_gt_0']:.3f}"),
            ("heterogeneity tau", ci(s["tau"]), ""),
            ("OR of a new trial", ci(s["or_new"]), f"{s['p_theta_new_gt_0']:.3f}"),
        ]
        a = s.get("absolute")
        if a:
            for label, key in (
                ("risk with control per 1000", "per_1000_control"),
                ("risk with treatment per 1000", "per_1000_treatment"),
                ("difference per 1000", "difference_per_1000"),
            ):
                d = a[key]
                rows.append((label, f"{d['median']:.0f} [{d['q025']:.0f}, {d['q975']:.0f}]", ""))
        body = "".join(
            f"<tr><td>{html.escape(q)}</td><td>{v}</td><td>{p}</td></tr>" for q, v, p in rows
        )
        d = s["diagnostics"]
        if d.get("r_hat_max") is None:
            diag = "exact computation (no Monte Carlo error)"
        else:
            diag = (
                f"{'convergence OK' if s['status'] == 'ok' else 'CONVERGENCE FAILED'}: R-hat max "
                f"{d['r_hat_max']:.3f}, ESS bulk min {d['ess_bulk_min']:.0f}, tail min "
                f"{d['ess_tail_min']:.0f}, divergences {d['divergences']}"
            )
        title = html.escape(f"{s['data']}: {s['model']} ({s['engine']}, k = {s['k']})")
        return (
            f"<div><strong>{title}</strong><table><thead><tr><th>quantity</th>"
            f"<th>median [95% CrI]</th><th>P(&gt; 1)</th></tr></thead><tbody>{body}</tbody>"
            f"</table><p>{html.escape(diag)}</p></div>"
        )

    # ------------------------------------------------------------------ files

    def save(self, out: str | os.PathLike[str]) -> Path:
        """Write ``posterior.nc``, ``summary.json`` and ``summary.csv`` into ``out``.

        The three files are one commit (:func:`trialsynth.core.files.commit_files`): an
        interrupted save leaves the previous set or the new set, never a mix or a partial
        file.
        """
        return commit_files(
            out,
            {
                "posterior.nc": lambda path: self.tree.to_netcdf(path, engine="h5netcdf"),
                "summary.json": json.dumps(self.summary(), indent=2) + "\n",
                "summary.csv": self.summary_frame().to_csv(index=False),
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FitResult:
        """Read a ``FIT`` folder written by :meth:`save`, checking its provenance hash."""
        folder = Path(path)
        nc = folder / "posterior.nc" if folder.is_dir() else folder
        recover(nc.parent)  # finish a save interrupted after its commit point
        if not nc.exists():
            raise ResultError(
                f"{path}: no posterior.nc (is this a folder written by 'trialsynth fit'?)"
            )
        try:
            tree = xr.open_datatree(nc, engine="h5netcdf").load()
        except Exception as err:
            raise ResultError(
                f"{nc}: cannot read posterior ({type(err).__name__}: {err})"
            ) from None
        raw = tree.attrs.get("trialsynth")
        if raw is None:
            raise ResultError(f"{nc}: not written by trialsynth (no provenance attributes)")
        provenance = json.loads(raw)
        if provenance.get("format") != FORMAT_VERSION:
            raise ResultError(
                f"{nc}: written in result format {provenance.get('format')}, "
                f"this trialsynth reads format {FORMAT_VERSION}; refit with 'trialsynth fit'"
            )
        # the reported seed is outside the hash: it must be the hashed settings' seed
        seed_ok = provenance.get("seed") == (provenance.get("settings") or {}).get("seed")
        if fit_key(provenance) != provenance.get("fit_key") or not seed_ok:
            raise ResultError(
                f"{nc}: provenance hash does not match its contents (edited or corrupted)"
            )
        summary_path = nc.parent / "summary.json"
        # The convergence verdict lives in summary.json: without it a loaded MCMC fit
        # would look converged, so a missing or foreign summary is an error.
        if not summary_path.exists():
            raise ResultError(
                f"{summary_path}: missing (it holds the convergence checks of {nc.name}); "
                "redo the fit with 'trialsynth fit --from' on a complete folder or refit"
            )
        try:
            saved = json.loads(summary_path.read_text(encoding="utf-8"))
            d = saved["diagnostics"]
            saved_key = saved["fit_key"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise ResultError(
                f"{summary_path}: cannot be read ({type(err).__name__}: {err})"
            ) from None
        if saved_key != provenance["fit_key"]:
            raise ResultError(
                f"{summary_path}: belongs to another fit than {nc.name} (fit_key "
                f"{str(saved_key)[:12]} vs {provenance['fit_key'][:12]}); the folder mixes "
                "two analyses: refit"
            )
        kind = FitResult._types.get(provenance.get("engine", "mcmc"))
        if kind is None or not isinstance(d, dict):
            raise ResultError(f"{nc}: unknown engine {provenance.get('engine')!r}")
        result = kind._from_saved(tree, provenance, saved)
        result.extras = {
            key: value
            for key, path in EXTRAS.items()
            if (value := _get_path(saved, path)) is not _MISSING
        }
        return result
