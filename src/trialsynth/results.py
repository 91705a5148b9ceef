"""The result of a fit: posterior draws, summaries, diagnostics and provenance.

A :class:`FitResult` wraps an ``xarray.DataTree`` (ArviZ groups ``posterior``,
``sample_stats``, ``observed_data``) whose root attributes record what made it: data
hash, model, priors, sampler settings, seed and package versions. ``save`` writes the
``FIT`` folder of INTERFACE.md (``posterior.nc``, ``summary.json``, ``summary.csv``);
``load`` reads it back and refuses a folder whose provenance does not check out.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from trialsynth import __version__
from trialsynth.conflict import conflict_notices
from trialsynth.diagnostics import Diagnostics, probability_mcse
from trialsynth.models import ModelSpec
from trialsynth.priors import ROLES, Prior, PriorSet
from trialsynth.safety import analysis_key

if TYPE_CHECKING:
    import xarray as xr

    from trialsynth.data import TrialData
    from trialsynth.fit import SamplerSettings

#: 2: the engine (mcmc/exact) is part of the fit key.
FORMAT_VERSION = 2
_VERSIONED = (
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "numpy",
    "scipy",
    "xarray",
    "pandas",
)


class ResultError(ValueError):
    """A FIT folder that cannot be read (missing, corrupted, other version)."""


def versions() -> dict[str, str]:
    """Versions of Python, trialsynth and the numerical stack."""
    out = {"python": platform.python_version(), "trialsynth": __version__}
    for pkg in _VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


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


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def provenance_key_fields(
    data: TrialData,
    spec: ModelSpec,
    priors: PriorSet,
    settings: SamplerSettings,
    engine: str = "mcmc",
) -> dict[str, Any]:
    """The provenance fields that determine a fit's numbers (known before sampling)."""
    from trialsynth.models import resolve_priors

    priors = resolve_priors(spec, data, priors)
    return {
        "format": FORMAT_VERSION,
        "data_sha256": data.sha256,
        "model": spec.to_dict(),
        "priors": {role: getattr(priors, role).to_dict() for role in ROLES},
        "settings": settings.to_dict(),
        "engine": engine,
        "versions": versions(),
    }


def fit_key(provenance: dict[str, Any]) -> str:
    """Hash of everything that determines the numbers of a fit."""
    keys = ("data_sha256", "model", "priors", "settings", "engine", "versions", "format")
    blob = json.dumps({k: provenance.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


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
        Convergence checks (None for exact results).
    """

    tree: xr.DataTree
    provenance: dict[str, Any]
    diagnostics: Diagnostics | None
    engine: str = "mcmc"
    timings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ creation

    @classmethod
    def from_sampler(
        cls,
        raw: xr.DataTree,
        *,
        data: TrialData,
        spec: ModelSpec,
        priors: PriorSet,
        settings: SamplerSettings,
        diagnostics: Diagnostics,
        refits: tuple[dict[str, Any], ...] = (),
        timings: dict[str, float] | None = None,
        notices: tuple[str, ...] = (),
    ) -> FitResult:
        """Package nutpie's output with its provenance (``observed_data`` added)."""
        # fit.derive has already put theta, theta_new and subgroup quantities here.
        post = raw["posterior"].to_dataset()
        stats_vars = [
            v
            for v in ("diverging", "energy", "step_size", "depth", "n_steps", "mean_tree_accept")
            if v in raw["sample_stats"]
        ]
        sample_stats = raw["sample_stats"].to_dataset()[stats_vars]
        tree, provenance = _package(
            {"posterior": post, "sample_stats": sample_stats},
            data=data,
            spec=spec,
            priors=priors,
            settings=settings,
            engine="mcmc",
            refits=refits,
            notices=notices,
        )
        return cls(tree=tree, provenance=provenance, diagnostics=diagnostics, timings=timings or {})

    @classmethod
    def from_exact(
        cls,
        tree: xr.DataTree,
        *,
        data: TrialData,
        spec: ModelSpec,
        priors: PriorSet,
        settings: SamplerSettings,
        timings: dict[str, float] | None = None,
    ) -> FitResult:
        """Package an exact fit (``tree`` holds iid posterior draws) with its provenance."""
        tree, provenance = _package(
            {"posterior": tree["posterior"].to_dataset()},
            data=data,
            spec=spec,
            priors=priors,
            settings=settings,
            engine="exact",
        )
        return cls(
            tree=tree,
            provenance=provenance,
            diagnostics=None,
            engine="exact",
            timings=timings or {},
        )

    @cached_property
    def exact(self) -> Any:
        """The :class:`~trialsynth.exact.ExactPosterior` of an exact fit (else None).

        Recomputed from the stored contrasts and priors when a fit is loaded (a few ms).
        """
        if self.engine != "exact" or self.provenance["model"].get("subgroup"):
            return None
        from trialsynth.fit import exact_for

        obs = self.tree["observed_data"]
        return exact_for(
            np.asarray(obs["y"].values), np.asarray(obs["se"].values), self.priors, self.studies
        )

    @cached_property
    def exact_subgroups(self) -> dict[str, Any] | None:
        """Per-subgroup exact posteriors of an exact subgroup fit (else None)."""
        column = self.provenance["model"].get("subgroup")
        if self.engine != "exact" or not column:
            return None
        from trialsynth.fit import exact_subgroup_posteriors

        levels = tuple(self.subgroups)
        labels = self.data_frame.set_index("study").loc[self.studies, column].astype(str)
        group = np.array([levels.index(v) for v in labels], dtype=np.int64)
        obs = self.tree["observed_data"]
        return exact_subgroup_posteriors(
            np.asarray(obs["y"].values),
            np.asarray(obs["se"].values),
            self.priors,
            self.studies,
            group,
            levels,
        )

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
        :mod:`trialsynth.queries` for the grammar and :meth:`ask` for the MCSE.
        """
        return self.ask(expr).probability

    def ask(self, expr: str) -> Any:
        """The :class:`~trialsynth.queries.Answer` (probability and MCSE) of a query."""
        from trialsynth.queries import ask

        text = expr if expr.strip().startswith("P") and "(" in expr else f"P({expr})"
        return ask(self, text)

    @property
    def data_frame(self) -> pd.DataFrame:
        """The analysed data table (with provenance columns)."""
        from io import StringIO

        return pd.read_json(StringIO(self.provenance["data_table"]), orient="records")

    @property
    def ok(self) -> bool:
        """False when the fit failed its convergence checks."""
        return self.diagnostics is None or self.diagnostics.ok

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of ``name`` with dims (chain, draw[, study])."""
        post = self.tree["posterior"]
        if name not in post:
            raise KeyError(f"no posterior variable {name!r}; valid: {', '.join(post.data_vars)}")
        return np.asarray(post[name].values)

    # ------------------------------------------------------------------ summaries

    def summary(self) -> dict[str, Any]:
        """The ``fit --json`` object of INTERFACE.md (plus documented extra keys)."""
        mu, tau, new = self.draws("mu"), self.draws("tau"), self.draws("theta_new")
        theta = self.draws("theta")
        prov = self.provenance
        d = self.diagnostics
        out: dict[str, Any] = {
            "model": prov["model"]["name"],
            "engine": self.engine,
            "k": prov["k"],
            "priors": {
                role: Prior.from_dict(prov["priors"][role]).describe()
                for role in self.prior_roles()
            },
            "mu": _stats(mu),
            "tau": _stats(tau),
            "theta_new": _stats(new),
            "or": _or_stats(mu),
            "or_new": _or_stats(new),
            "p_mu_gt_0": float(np.mean(mu > 0)),
            "p_theta_new_gt_0": float(np.mean(new > 0)),
            "mcse": {
                "p_mu_gt_0": probability_mcse(mu > 0),
                "p_theta_new_gt_0": probability_mcse(new > 0),
            },
            "theta": [
                {"study": s, **_stats(theta[..., i]), "or": _or_stats(theta[..., i])}
                for i, s in enumerate(self.studies)
            ],
            **self._subgroup_summary(),
            "diagnostics": (
                {
                    "r_hat_max": d.r_hat_max,
                    "ess_bulk_min": d.ess_bulk_min,
                    "ess_tail_min": d.ess_tail_min,
                    "divergences": d.divergences,
                    "bfmi_min": d.bfmi_min,
                    "ok": d.ok,
                    "problems": list(d.problems),
                }
                if d is not None
                else {
                    "r_hat_max": None,
                    "ess_bulk_min": None,
                    "ess_tail_min": None,
                    "divergences": None,
                }
            ),
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
        }
        if self.exact is not None:
            out |= _exact_summary(self.exact, self.studies)
        return out

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
                        "p_mu_gt_0": probability_mcse(mu_g[..., j] > 0),
                        "p_theta_new_gt_0": probability_mcse(new_g[..., j] > 0),
                    },
                }
                for j, level in enumerate(levels)
            }
            for level, level_post in (self.exact_subgroups or {}).items():
                ex = _exact_summary(level_post, [])
                out["subgroups"][level] |= {
                    key: ex[key]
                    for key in ("mu", "tau", "or", "or_new", "p_mu_gt_0", "p_theta_new_gt_0")
                } | {"mcse": {}}
            out["subgroup_contrasts"] = [
                {
                    "contrast": f"{a} vs {b}",
                    "a": a,
                    "b": b,
                    "log_ratio_of_or": _stats(mu_g[..., i] - mu_g[..., j]),
                    "ratio_of_or": _or_stats(mu_g[..., i] - mu_g[..., j]),
                    "p_greater": float(np.mean(mu_g[..., i] > mu_g[..., j])),
                    "p_greater_mcse": probability_mcse(mu_g[..., i] > mu_g[..., j]),
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

    # ------------------------------------------------------------------ files

    def save(self, out: str | os.PathLike[str]) -> Path:
        """Write ``posterior.nc``, ``summary.json`` and ``summary.csv`` into ``out``.

        The three files are one commit (:func:`trialsynth.safety.commit_files`): an
        interrupted save leaves the previous set or the new set, never a mix or a partial
        file.
        """
        from trialsynth.safety import commit_files

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
        import xarray as xr

        from trialsynth.safety import recover

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
        diag = None
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
        if d.get("r_hat_max") is not None:
            from trialsynth.fit import as_diagnostics

            diag = as_diagnostics(d)
        return cls(tree=tree, provenance=provenance, diagnostics=diag, engine=provenance["engine"])


def _exact_summary(post: Any, studies: list[str]) -> dict[str, Any]:
    """The summary quantities of an exact fit, from its marginals (no Monte Carlo error)."""
    s = post.summary()
    keys = ("mean", "sd", "median", "q025", "q975")

    def stats(name: str) -> dict[str, float]:
        return {k: s[name][k] for k in keys} | {
            "hdi_lower": s[name]["shortest_lower"],
            "hdi_upper": s[name]["shortest_upper"],
        }

    def odds(name: str) -> dict[str, float]:
        return {k: float(np.exp(s[name][k])) for k in ("median", "q025", "q975")}

    return {
        "mu": stats("mu"),
        "tau": stats("tau"),
        "theta_new": stats("theta_new"),
        "or": odds("mu"),
        "or_new": odds("theta_new"),
        "p_mu_gt_0": post.prob_mu_gt(0.0),
        "p_theta_new_gt_0": post.prob_theta_new_gt(0.0),
        "mcse": {},
        "theta": [
            {"study": st, **stats(f"theta[{st}]"), "or": odds(f"theta[{st}]")} for st in studies
        ],
        "exact": {"nodes": post.n_nodes, "error_estimate": float(post.error_estimate)},
    }


def classical_references(data: TrialData, correction: float = 0.5) -> dict[str, Any]:
    """Classical pooled estimates beside the posterior (MH, Peto, IV, DL, REML, PM, DL-HK).

    An estimator that cannot be computed on these data (e.g. Mantel-Haenszel with no
    events at all) is recorded as ``{"error": "..."}`` instead of failing the fit.
    """
    from trialsynth.frequentist import classical_summary

    lor = data.contrasts(correction=correction)
    counts = {}
    if data.kind == "arm":
        counts = {
            "events_t": data.events_t,
            "n_t": data.n_t,
            "events_c": data.events_c,
            "n_c": data.n_c,
        }
    try:
        return classical_summary(**counts, y=lor.y, se=lor.se)
    except ValueError as err:
        out: dict[str, Any] = {"error": str(err)}
        try:
            out |= classical_summary(y=lor.y, se=lor.se)
        except ValueError:
            pass
        return out


def _package(
    groups: dict[str, Any],
    *,
    data: TrialData,
    spec: ModelSpec,
    priors: PriorSet,
    settings: SamplerSettings,
    engine: str,
    refits: tuple[dict[str, Any], ...] = (),
    notices: tuple[str, ...] = (),
) -> tuple[xr.DataTree, dict[str, Any]]:
    """The result tree (``groups`` plus ``observed_data``) and its provenance attributes."""
    import xarray as xr

    observed = xr.Dataset(
        {name: ("study", np.asarray(values)) for name, values in _observed(spec, data).items()},
        coords={"study": list(data.study)},
    )
    provenance = {
        **provenance_key_fields(data, spec, priors, settings, engine=engine),
        "data_name": data.name,
        "k": data.k,
        "studies": list(data.study),
        "seed": settings.seed,
        "notices": list(data.notices)
        + _model_notices(spec, data)
        + list(notices)
        + conflict_notices(data, spec, priors, settings.seed),
        "refits": list(refits),
        "frequentist": classical_references(data, spec.correction),
        "data_table": data.to_frame().to_json(orient="records"),
    }
    provenance["fit_key"] = fit_key(provenance)
    tree = xr.DataTree.from_dict({**groups, "observed_data": observed})
    tree.attrs["trialsynth"] = json.dumps(provenance, sort_keys=True)
    tree.attrs["trialsynth_fit_key"] = provenance["fit_key"]
    return tree, provenance


def _observed(spec: ModelSpec, data: TrialData) -> dict[str, np.ndarray]:
    from trialsynth.models import observations

    return observations(spec, data)


def _model_notices(spec: ModelSpec, data: TrialData) -> list[str]:
    if spec.likelihood != "normal" or data.kind != "arm":
        return []
    lor = data.contrasts(correction=spec.correction)
    fixed = [s for s, c in zip(data.study, lor.corrected, strict=True) if c]
    if not fixed:
        return []
    return [
        f"normal likelihood: {spec.correction} added to every cell of {len(fixed)} trial(s) "
        f"with a zero cell: {', '.join(fixed)}"
    ]
