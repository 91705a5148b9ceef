"""Probability queries on a fitted posterior, parsed by a small grammar (never ``eval``).

Grammar (whitespace is free, names are case-sensitive inside brackets)::

    query   := "P(" cond ")"
    cond    := target OP number                  P(OR > 1)
             | number OP target OP number        P(0.8 < OR < 1.25)
             | target OP target                  P(OR[secondary] > OR[primary])
    target  := NAME | NAME "[" label "]"
    NAME    := OR | OR_new | tau | mu | theta_new
    OP      := > | < | >= | <=

``OR`` is the pooled odds ratio exp(mu); ``OR_new`` the odds ratio of a future trial;
``OR[label]`` one trial's shrunken odds ratio (label = study name) or a subgroup's pooled odds
ratio (label = subgroup level, for subgroup fits); ``OR_new[level]`` a future trial in a
subgroup; ``tau`` the heterogeneity SD; ``mu`` and ``theta_new`` are the log-OR scale.
Model-specific targets: ``tau[level]`` (a subgroup's heterogeneity SD), ``beta[covariate]``
(a meta-regression slope, log-OR per unit: ``P(beta[ablat] < 0)``) and ``nu`` (estimated
Student-t degrees of freedom).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trialsynth.core.errors import TrialsynthError

if TYPE_CHECKING:
    from trialsynth.results.base import FitResult

NAMES = ("OR", "OR_new", "tau", "mu", "theta_new")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<op>>=|<=|>|<)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)\s*(?:\[(?P<label>[^\]]*)\])?)"
)


class QueryError(TrialsynthError):
    """A malformed query or an unknown target (one line listing the valid targets)."""


@dataclass(frozen=True)
class Target:
    """A posterior quantity named in a query."""

    name: str
    label: str | None = None

    def __str__(self) -> str:
        return self.name if self.label is None else f"{self.name}[{self.label}]"


@dataclass(frozen=True)
class Query:
    """A parsed query: bounds on one target, or a comparison of two targets."""

    text: str
    target: Target
    lower: float | None = None
    upper: float | None = None
    other: Target | None = None
    greater: bool = True  # for comparisons: P(target > other)


@dataclass(frozen=True)
class Answer:
    """A query's probability and its Monte Carlo standard error (None where exact)."""

    query: str
    probability: float
    mcse: float | None

    def to_json(self) -> dict[str, Any]:
        """The INTERFACE ``query --json`` object."""
        return {"query": self.query, "probability": self.probability, "mcse": self.mcse}


def _tokens(text: str) -> list[tuple[str, Any]]:
    pos, out = 0, []
    body = text.strip()
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m or m.end() == pos:
            raise QueryError(f"cannot parse {text!r} at {body[pos:]!r}; {_GRAMMAR_HINT}")
        if m["num"] is not None:
            out.append(("num", float(m["num"])))
        elif m["op"] is not None:
            out.append(("op", m["op"]))
        else:
            label = m["label"].strip() if m["label"] is not None else None
            out.append(("target", Target(m["name"], label)))
        pos = m.end()
        while pos < len(body) and body[pos].isspace():
            pos += 1
    return out


_GRAMMAR_HINT = "expected e.g. P(OR > 1), P(OR_new > 1), P(0.8 < OR < 1.25), P(OR[study] > 1)"


def parse_query(text: str) -> Query:
    """Parse ``P(...)`` into a :class:`Query` (structure only; targets checked later)."""
    m = re.fullmatch(r"\s*P\s*\((?P<body>.*)\)\s*", text, flags=re.DOTALL)
    if not m:
        raise QueryError(f"cannot parse {text!r}: a query is P(condition); {_GRAMMAR_HINT}")
    toks = _tokens(m["body"])
    kinds = [k for k, _ in toks]
    vals = [v for _, v in toks]
    canon = " ".join(str(v) if k != "num" else f"{v:g}" for k, v in toks)
    text_out = f"P({canon})"
    if kinds == ["target", "op", "num"]:
        t, op, c = vals
        return Query(
            text_out, t, lower=c if op[0] == ">" else None, upper=c if op[0] == "<" else None
        )
    if kinds == ["num", "op", "target"]:
        c, op, t = vals
        return Query(
            text_out, t, lower=c if op[0] == "<" else None, upper=c if op[0] == ">" else None
        )
    if kinds == ["num", "op", "target", "op", "num"]:
        a, op1, t, op2, b = vals
        if op1[0] != op2[0]:
            raise QueryError(f"{text!r}: a range needs two '<' or two '>'")
        lo, hi = (a, b) if op1[0] == "<" else (b, a)
        if not lo < hi:
            raise QueryError(f"{text!r}: empty range ({lo:g} is not below {hi:g})")
        return Query(text_out, t, lower=lo, upper=hi)
    if kinds == ["target", "op", "target"]:
        t, op, u = vals
        return Query(text_out, t, other=u, greater=op[0] == ">")
    raise QueryError(f"cannot parse {text!r}; {_GRAMMAR_HINT}")


def valid_targets(fit: FitResult) -> list[str]:
    """Every target a query on this fit may name."""
    out = list(NAMES)
    out += [f"OR[{s}]" for s in fit.studies]
    for level in fit.subgroups:
        out += [f"OR[{level}]", f"OR_new[{level}]", f"tau[{level}]"]
    post = fit.tree["posterior"]
    if "beta" in post:  # meta-regression slopes (log-OR per unit of the covariate)
        out += [f"beta[{c}]" for c in post["covariate"].values]
    if "nu" in post:  # estimated Student-t degrees of freedom
        out.append("nu")
    return out


def _draws(fit: FitResult, t: Target) -> tuple[np.ndarray, bool]:
    """Draws (chain, draw) of a target, and whether they are on the OR scale."""
    post = fit.tree["posterior"]
    if t.label is None:
        base = {
            "OR": "mu",
            "OR_new": "theta_new",
            "mu": "mu",
            "theta_new": "theta_new",
            "tau": "tau",
        }
        if t.name in base:
            return np.asarray(post[base[t.name]].values), t.name.startswith("OR")
        if t.name == "nu" and "nu" in post:
            return np.asarray(post["nu"].values), False
    elif t.name == "beta" and "beta" in post and t.label in post["covariate"].values:
        return np.asarray(post["beta"].sel(covariate=t.label).values), False
    elif t.name == "tau" and t.label in fit.subgroups:
        return np.asarray(post["tau_subgroup"].sel(subgroup=t.label).values), False
    elif t.name in ("OR", "OR_new"):
        subgroups = fit.subgroups
        if t.label in subgroups:
            var = "mu_subgroup" if t.name == "OR" else "theta_new_subgroup"
            return np.asarray(post[var].sel(subgroup=t.label).values), True
        if t.name == "OR" and t.label in fit.studies:
            return np.asarray(post["theta"].sel(study=t.label).values), True
    raise QueryError(f"unknown target {str(t)!r}; valid: {', '.join(valid_targets(fit))}")


def ask(fit: FitResult, text: str | Query) -> Answer:
    """Answer one query from the posterior draws of ``fit`` (no refitting).

    The probability is the fraction of draws meeting the condition; its MCSE comes
    from ArviZ's effective sample size of the indicator.
    """
    q = parse_query(text) if isinstance(text, str) else text
    x, is_or = _draws(fit, q.target)
    exact = _exact_answer(fit, q, is_or)
    if exact is not None:
        return exact
    scale = np.exp if is_or else (lambda v: v)
    if q.other is not None:
        y, other_or = _draws(fit, q.other)
        if other_or != is_or:
            raise QueryError(f"{q.text}: cannot compare an odds ratio with a log-scale quantity")
        ind = (x > y) if q.greater else (x < y)
    else:
        v = scale(x)
        ind = np.ones_like(v, dtype=bool)
        if q.lower is not None:
            ind &= v > q.lower
        if q.upper is not None:
            ind &= v < q.upper
    return Answer(q.text, float(ind.mean()), fit.probability_mcse(ind))


#: Query names of a pooled quantity -> the result's marginal (for a subgroup level: only
#: the OR-scale names and tau).
_WHOLE = {"OR": "mu", "mu": "mu", "OR_new": "theta_new", "theta_new": "theta_new", "tau": "tau"}
_LEVEL = {"OR": "mu", "OR_new": "theta_new", "tau": "tau"}


def _exact_marginal(fit: FitResult, t: Target) -> Any:
    """The exact marginal of a single target (None where the result has none)."""
    if t.label is None:
        return fit.marginal(_WHOLE[t.name]) if t.name in _WHOLE else None
    marginal = None
    if t.name == "OR" and t.label in fit.studies:
        marginal = fit.marginal("theta", t.label)
    if marginal is None and t.name in _LEVEL:
        marginal = fit.marginal(_LEVEL[t.name], t.label)
    return marginal


def _exact_answer(fit: FitResult, q: Query, is_or: bool) -> Answer | None:
    """P(lower < X < upper) from an exact marginal's cdf (comparisons use the draws)."""
    if q.other is not None:
        return None
    marginal = _exact_marginal(fit, q.target)
    if marginal is None:
        return None

    def to_scale(c: float) -> float:
        if not is_or:
            return c
        return np.log(c) if c > 0 else -np.inf

    lo = -np.inf if q.lower is None else to_scale(q.lower)
    hi = np.inf if q.upper is None else to_scale(q.upper)
    p_hi = 1.0 if hi == np.inf else float(marginal.cdf(hi))
    p = p_hi - (float(marginal.cdf(lo)) if lo > -np.inf else 0.0)
    if q.upper is None and lo > -np.inf:
        p = float(marginal.sf(lo))  # no cancellation in the far tail
    return Answer(q.text, min(max(p, 0.0), 1.0), None)


def benefit_curve(fit: FitResult, thresholds: np.ndarray | None = None) -> Any:
    """P(OR > c) over thresholds c for the pooled and the predictive odds ratio.

    Returns a pandas DataFrame with columns ``c``, ``p_or``, ``p_or_new`` (and their MCSE),
    the data of the probability-of-benefit figure.
    """
    import pandas as pd

    c = np.geomspace(0.5, 2.0, 25) if thresholds is None else np.asarray(thresholds, dtype=float)
    mu, new = fit.draws("mu"), fit.draws("theta_new")
    rows = []
    for ci in c:
        lc = np.log(ci)
        rows.append(
            {
                "c": float(ci),
                "p_or": float((mu > lc).mean()),
                "p_or_mcse": fit.probability_mcse(mu > lc),
                "p_or_new": float((new > lc).mean()),
                "p_or_new_mcse": fit.probability_mcse(new > lc),
            }
        )
    return pd.DataFrame(rows)
