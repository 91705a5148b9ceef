"""Column detection: which kind of table a header is, and which column plays which role.

Headers are matched after stripping whitespace and case-insensitively; common alternative
spellings are recognised and reported (metafor's ``ai, n1i, ci, n2i`` and ``ai, bi, ci, di``;
``r_t, n_t, r_c, n_c``; meta's ``event.e, n.e, event.c, n.c``; ``yi, vi`` and ``yi, sei``).
An explicit ``columns`` mapping (file column -> standard name) is applied first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trialsynth.data.errors import located

__all__ = ["STANDARD_COLUMNS", "ColumnPlan", "norm", "plan_columns"]

#: Standard column names a ``columns`` mapping may target. ``nonevents_t``/``nonevents_c``
#: are arm non-events (the arm size is events + non-events); ``var`` is the variance of
#: ``log_or`` (``se = sqrt(var)``); ``or, lower, upper`` are a published odds ratio and its
#: 95% interval.
STANDARD_COLUMNS: tuple[str, ...] = (
    "study",
    "events_t",
    "n_t",
    "events_c",
    "n_c",
    "nonevents_t",
    "nonevents_c",
    "log_or",
    "se",
    "var",
    "or",
    "lower",
    "upper",
)

# Recognised alternative spellings (normalised: stripped, lower case, single spaces).
_ALIASES: dict[str, tuple[str, ...]] = {
    "study": ("studlab", "slab", "study_id", "study_name", "study or subgroup"),
    "events_t": ("ai", "r_t", "event.e", "experimental events"),
    "n_t": ("n1i", "n.e", "experimental total"),
    "events_c": ("ci", "r_c", "event.c", "control events"),
    "n_c": ("n2i", "n.c", "control total"),
    "nonevents_t": ("bi",),
    "nonevents_c": ("di",),
    "log_or": ("yi", "logor", "lnor"),
    "se": ("sei", "se_log_or"),
    "var": ("vi",),
    "or": ("odds_ratio",),
    "lower": ("lower95", "ci_lower", "lower_ci"),
    "upper": ("upper95", "ci_upper", "upper_ci"),
}

_ACCEPTED = (
    "accepted column sets: arm-level study, events_t, n_t, events_c, n_c; "
    "contrast-level study, log_or, se; published estimate study, or, lower, upper "
    "(alternative spellings such as metafor's ai, n1i, ci, n2i or yi, vi are recognised; "
    "map other names with columns=...)"
)

# Z for a 95% interval, for the column-mapping report only (the conversion is in effects).
_Z95_TEXT = "(2 * 1.96)"

_KIND_LABEL = {"arm": "arm-level", "contrast": "contrast-level", "published": "published estimate"}
_REQUIRED = {
    "arm": ("study", "events_t", "n_t", "events_c", "n_c"),
    "contrast": ("study", "log_or", "se"),
    "published": ("study", "or", "lower", "upper"),
}
_SUBSTITUTES = {"n_t": "nonevents_t", "n_c": "nonevents_c", "se": "var"}


def norm(name: str) -> str:
    """A header name as matched: stripped, single spaces, lower case."""
    return " ".join(str(name).split()).lower()


@dataclass
class ColumnPlan:
    """What a header holds.

    Attributes
    ----------
    kind : {"arm", "contrast", "published"}
        The table's kind; published estimates become contrasts once converted.
    roles : dict
        Standard role -> column index of the analysed columns.
    notices : list of str
        Column mappings and conversions, for the report.
    mapping : dict
        Standard name -> the source column or the expression it is derived by.
    """

    kind: str
    roles: dict[str, int]
    notices: list[str]
    mapping: dict[str, str]


def _explicit_roles(
    header: list[str], index: Mapping[str, int], columns: Mapping[str, str], label: str
) -> dict[str, int]:
    """Standard role -> column index of a ``columns`` mapping, every entry checked."""
    explicit: dict[str, int] = {}
    for src, dst in columns.items():
        role = norm(dst)
        if role not in STANDARD_COLUMNS:
            raise located(
                label,
                f"columns: unknown standard column name {dst!r} (for {src!r}); "
                f"valid names: {', '.join(STANDARD_COLUMNS)}",
            )
        j = index.get(norm(src))
        if j is None:
            raise located(
                label,
                f"column {src!r} named in columns is not in the file "
                f"(file columns: {', '.join(header)})",
            )
        if role in explicit:
            raise located(
                label,
                f"columns maps both {header[explicit[role]]!r} and {src!r} to {role!r}",
            )
        explicit[role] = j
    return explicit


def _candidates(
    index: Mapping[str, int], explicit: Mapping[str, int]
) -> tuple[dict[str, list[int]], set[str]]:
    """Column indices that could play each role, and the roles found by an alias."""
    claimed = set(explicit.values())
    candidates: dict[str, list[int]] = {}
    aliased: set[str] = set()
    for role in STANDARD_COLUMNS:
        if role in explicit:
            candidates[role] = [explicit[role]]
        elif role in index and index[role] not in claimed:
            candidates[role] = [index[role]]
        else:
            found = [index[a] for a in _ALIASES[role] if a in index and index[a] not in claimed]
            candidates[role] = found
            if found:
                aliased.add(role)
    return candidates, aliased


def _complete_kinds(
    header: list[str], candidates: Mapping[str, list[int]], explicit: Mapping[str, int], label: str
) -> list[str]:
    """The kinds whose required columns are all present, the preferred first."""

    def have(role: str) -> bool:
        return bool(candidates[role]) or bool(
            role in _SUBSTITUTES and candidates[_SUBSTITUTES[role]]
        )

    order = ["arm", "contrast", "published"]
    # A kind whose columns were mapped explicitly goes first.
    order.sort(key=lambda kd: -sum(1 for r in _REQUIRED[kd] if r in explicit))
    complete = [kd for kd in order if all(have(r) for r in _REQUIRED[kd])]
    if complete:
        return complete
    best = max(order, key=lambda kd: sum(have(r) for r in _REQUIRED[kd]))
    missing = [r for r in _REQUIRED[best] if not have(r)]
    hint = ""
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        sep = next(s for s in ";\t|" if s in header[0])
        hint = f" (the file seems to use {sep!r} as separator; use commas)"
    raise located(
        label,
        f"missing required column(s) {', '.join(repr(m) for m in missing)} for "
        f"{_KIND_LABEL[best]} data (file columns: {', '.join(header)}){hint}; {_ACCEPTED}",
    )


def _assign_roles(
    kind: str, header: list[str], candidates: Mapping[str, list[int]], label: str
) -> dict[str, int]:
    """One column per required role of ``kind`` (a substitute where the role is absent)."""
    roles: dict[str, int] = {}
    for req in _REQUIRED[kind]:
        role = req if candidates[req] else _SUBSTITUTES[req]
        found = candidates[role]
        if len(found) > 1:
            names = " and ".join(repr(header[j]) for j in found)
            raise located(
                label,
                f"columns {names} could both be {role!r}; say which to use with columns=",
            )
        roles[role] = found[0]
    return roles


def _mapping(kind: str, col: Mapping[str, str], study_expr: str | None) -> dict[str, str]:
    """Standard name -> the source column, or the expression it is derived by."""
    mapping = {"study": study_expr if study_expr and col["study"] == "study" else col["study"]}
    if kind == "arm":
        for arm in ("t", "c"):
            mapping[f"events_{arm}"] = col[f"events_{arm}"]
            if f"n_{arm}" in col:
                mapping[f"n_{arm}"] = col[f"n_{arm}"]
            else:
                mapping[f"n_{arm}"] = f"{col[f'events_{arm}']} + {col[f'nonevents_{arm}']}"
    elif kind == "contrast":
        mapping["log_or"] = col["log_or"]
        mapping["se"] = col["se"] if "se" in col else f"sqrt({col['var']})"
    else:
        mapping["log_or"] = f"log({col['or']})"
        mapping["se"] = f"(log({col['upper']}) - log({col['lower']})) / {_Z95_TEXT}"
    return mapping


def _kept_kind_notice(
    kind: str, other: str, header: list[str], candidates: Mapping[str, list[int]]
) -> str:
    """A complete set of columns of another kind, kept as covariates."""
    used = []
    for req in _REQUIRED[other]:
        role = req if candidates[req] else _SUBSTITUTES.get(req, req)
        if req != "study" and candidates[role]:
            used.append(header[candidates[role][0]])
    return (
        f"{_KIND_LABEL[kind]} columns analysed; the {_KIND_LABEL[other]} columns "
        f"({', '.join(used)}) are kept as covariates"
    )


def plan_columns(
    header: list[str],
    columns: Mapping[str, str] | None,
    label: str,
    mapped_by: str,
    study_expr: str | None = None,
) -> ColumnPlan:
    """Decide the kind of table and which column plays which standard role.

    Parameters
    ----------
    header : list of str
        Column names as spelled in the file.
    columns : mapping or None
        File column -> standard name, applied before auto-detection.
    label : str
        The source, for messages.
    mapped_by : str
        Who mapped the columns (``"as given"``, ``"shipped dataset bcg"``), for the notice.
    study_expr : str, optional
        How a derived ``study`` column was built (e.g. ``"author + year"``).

    Returns
    -------
    ColumnPlan
    """
    index = {norm(c): j for j, c in enumerate(header)}
    explicit = _explicit_roles(header, index, columns or {}, label)
    candidates, aliased = _candidates(index, explicit)
    complete = _complete_kinds(header, candidates, explicit, label)
    kind = complete[0]
    roles = _assign_roles(kind, header, candidates, label)
    col = {role: header[j] for role, j in roles.items()}
    mapping = _mapping(kind, col, study_expr)

    notices: list[str] = []
    if kind == "published":
        notices.append(
            f"converted published odds ratios with 95% intervals ({col['or']}, {col['lower']}, "
            f"{col['upper']}) to log odds ratios and standard errors: log_or = {mapping['log_or']},"
            f" se = {mapping['se']} (symmetric Wald interval on the log scale assumed)"
        )
    renamed = [f"{std} = {src}" for std, src in mapping.items() if std != src]
    if renamed and kind != "published":
        how = ""
        if mapped_by:
            how = f" ({mapped_by})"
        elif aliased & set(roles):
            how = " (alternative spellings recognised)"
        notices.append(f"columns used{how}: {', '.join(renamed)}")
    notices.extend(_kept_kind_notice(kind, other, header, candidates) for other in complete[1:])
    return ColumnPlan(kind=kind, roles=roles, notices=notices, mapping=mapping)
