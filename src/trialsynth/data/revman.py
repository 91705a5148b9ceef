"""Reading Cochrane RevMan 5 reviews: ``.rm5`` files (XML) and analysis exports (CSV).

A review holds comparisons; each comparison holds outcomes (RevMan's "analyses"),
numbered ``C.O``. A dichotomous outcome becomes arm-level trial data: ``EVENTS_1`` /
``TOTAL_1`` are the experimental arm (``events_t``, ``n_t``; RevMan's ``GROUP_LABEL_1``),
``EVENTS_2`` / ``TOTAL_2`` the control arm (``GROUP_LABEL_2``). Study names come from the
review's study list (``STUDY`` elements, ``NAME`` and ``YEAR``), RevMan's subgroups from
``DICH_SUBGROUP`` (the ``subgroup`` column). RevMan's own pooled result of the outcome is
kept as :class:`PooledResult`, a published reference.

Only the standard library's XML parser is used. It honours the encoding the file
declares (RevMan writes ``ISO-8859-1``); entity declarations are refused (RevMan never
writes them). A CSV export is read as UTF-8 (a byte-order mark allowed) or, failing that,
as Windows-1252, the encoding RevMan 5 uses on Windows.

Every problem raises :class:`RevManError` with a one-line message naming the file and,
where it applies, the outcome, row or element.
"""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trialsynth.core.errors import TrialsynthError
from trialsynth.core.revman_pooling import revman_pool

__all__ = [
    "OUTCOME_TYPES",
    "Outcome",
    "PooledResult",
    "RevManError",
    "Review",
    "StudyRow",
    "is_revman",
    "read_review",
    "select",
]

#: RevMan outcome element -> the type name used in listings and messages.
OUTCOME_TYPES: dict[str, str] = {
    "DICH": "dichotomous",
    "CONT": "continuous",
    "IV": "generic inverse variance",
    "IPD": "O-E and variance",
}
#: First letter of the CSV export's "Data Type" cell -> outcome type.
_CSV_TYPES: dict[str, str] = {
    "D": "dichotomous",
    "C": "continuous",
    "I": "generic inverse variance",
    "G": "generic inverse variance",
    "O": "O-E and variance",
    "P": "O-E and variance",
}
_MEASURES = {
    "odds ratio": "OR",
    "peto odds ratio": "PETO_OR",
    "risk ratio": "RR",
    "risk difference": "RD",
    "mean difference": "MD",
    "std. mean difference": "SMD",
    "standardized mean difference": "SMD",
    "hazard ratio": "HR",
}
#: Measures RevMan stores on the ratio scale (pooled log scale = log of these).
RATIO_MEASURES = frozenset({"OR", "RR", "PETO_OR", "HR"})

_CSV_REQUIRED = (
    "Comparison Number",
    "Outcome Number",
    "Subgroup Number",
    "Name",
    "Data Type",
    "Events 1",
    "Total 1",
    "Events 2",
    "Total 2",
)


class RevManError(TrialsynthError):
    """A RevMan file that cannot be read, or an outcome that cannot be used.

    ``str(err)`` is one line naming the file and what is wrong.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.source = source


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PooledResult:
    """RevMan's own pooled result of an outcome, as stored in the file.

    Attributes
    ----------
    measure : str
        ``OR``, ``RR``, ``RD``, ``PETO_OR``, ``MD``, ``SMD``, ... (RevMan's code).
    method : str
        ``MH`` (Mantel-Haenszel), ``IV`` (inverse variance) or ``PETO``.
    model : {"fixed", "random"}
        RevMan's analysis model (random effects: DerSimonian-Laird).
    estimate, lower, upper : float or None
        Pooled effect and confidence interval on the measure's natural scale (ratios for
        OR/RR); None where RevMan stored none (e.g. ``TOTALS="NO"``).
    level : float
        Confidence level of the interval (``CI_TOTAL`` / 100).
    tau2, i2, q, q_pval, z, z_pval : float or None
        Heterogeneity (DL tau^2, I^2 in percent, chi^2 and its p-value) and the test of
        the overall effect.
    df : int or None
        Degrees of freedom of the heterogeneity test (estimable studies - 1).
    """

    measure: str
    method: str
    model: str
    estimate: float | None
    lower: float | None
    upper: float | None
    level: float = 0.95
    tau2: float | None = None
    i2: float | None = None
    q: float | None = None
    q_pval: float | None = None
    z: float | None = None
    z_pval: float | None = None
    df: int | None = None

    @property
    def log_estimate(self) -> float | None:
        """``log(estimate)`` for ratio measures (None otherwise or when not stored)."""
        if self.measure not in RATIO_MEASURES or not self.estimate or self.estimate <= 0:
            return None
        return math.log(self.estimate)

    def describe(self) -> str:
        """E.g. ``OR 0.897 (95% CI 0.841 to 0.957), Mantel-Haenszel, fixed effect``."""
        method = {"MH": "Mantel-Haenszel", "IV": "inverse variance", "PETO": "Peto"}.get(
            self.method, self.method
        )
        model = "random effects" if self.model == "random" else "fixed effect"
        if self.estimate is None:
            return f"{self.measure} not pooled in the review ({method}, {model})"
        ci = ""
        if self.lower is not None and self.upper is not None:
            ci = f" ({self.level:.0%} CI {self.lower:.3g} to {self.upper:.3g})"
        return f"{self.measure} {self.estimate:.3g}{ci}, {method}, {model}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (non-finite numbers become None)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[key] = value
        return out


@dataclass(frozen=True)
class StudyRow:
    """One study's data in one (sub)group of a dichotomous outcome.

    ``events_t``/``n_t`` are RevMan's group 1 (experimental), ``events_c``/``n_c`` group 2
    (control). ``effect``/``weight`` are RevMan's stored per-study estimate (natural scale)
    and weight in percent.
    """

    study_id: str
    study: str
    year: str
    subgroup: str | None
    events_t: int
    n_t: int
    events_c: int
    n_c: int
    order: int | None = None
    weight: float | None = None
    effect: float | None = None
    estimable: bool = True


@dataclass(frozen=True)
class Outcome:
    """One RevMan outcome (analysis) ``C.O`` with its data and pooled result."""

    comparison_no: int
    outcome_no: int
    comparison: str
    name: str
    type: str
    n_studies: int
    group_label_t: str = ""
    group_label_c: str = ""
    graph_label_left: str = ""
    graph_label_right: str = ""
    swap_events: bool = False
    subgroups: tuple[str, ...] = ()
    rows: tuple[StudyRow, ...] = ()
    pooled: PooledResult | None = None

    @property
    def number(self) -> str:
        """RevMan's analysis number ``C.O``, e.g. ``"1.1"``."""
        return f"{self.comparison_no}.{self.outcome_no}"

    def describe(self) -> str:
        """One listing line: number, name, type and studies."""
        s = "study" if self.n_studies == 1 else "studies"
        return f"{self.number} {self.name} ({self.type}, {self.n_studies} {s})"


@dataclass(frozen=True)
class Review:
    """A RevMan review (or an analysis export) reduced to its outcomes."""

    source: str
    title: str
    format: str  # "rm5" or "csv"
    outcomes: tuple[Outcome, ...]
    notices: tuple[str, ...] = field(default=())

    def listing(self) -> str:
        """The outcomes, one per ``; ``-separated item (for one-line messages)."""
        return "; ".join(o.describe() for o in self.outcomes)

    def outcome(self, key: str | None = None) -> Outcome:
        """The outcome named by ``key``: ``C.O`` or the outcome's name (case-insensitive).

        Without ``key`` a review with exactly one outcome gives it; otherwise a
        :class:`RevManError` lists the outcomes.
        """
        if not self.outcomes:
            raise RevManError(f"{self.source}: the review has no analyses", source=self.source)
        if key is None or not str(key).strip():
            if len(self.outcomes) == 1:
                return self.outcomes[0]
            raise RevManError(
                f"{self.source} has {len(self.outcomes)} outcomes; choose one with "
                f"--outcome C.O or its name: {self.listing()}",
                source=self.source,
            )
        text = str(key).strip()
        by_number = [o for o in self.outcomes if o.number == _norm_number(text)]
        if by_number:
            return by_number[0]
        folded = _fold(text)
        by_name = [o for o in self.outcomes if _fold(o.name) == folded]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            numbers = ", ".join(o.number for o in by_name)
            raise RevManError(
                f"{self.source}: outcome name {text!r} is ambiguous (analyses {numbers}); "
                "use --outcome C.O",
                source=self.source,
            )
        raise RevManError(
            f"{self.source}: no outcome {text!r}; valid: {self.listing()}", source=self.source
        )


def _norm_number(text: str) -> str:
    m = re.fullmatch(r"\s*(\d+)\s*\.\s*(\d+)\s*", text)
    return f"{int(m.group(1))}.{int(m.group(2))}" if m else text


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


# ----------------------------------------------------------------------------- sniffing


def is_revman(path: str | Path, head: bytes | None = None) -> bool:
    """True when the file looks like a RevMan review or analysis export.

    An ``.rm5`` suffix, an XML document, or a CSV whose header starts with
    ``Comparison Number`` (after any byte-order mark).
    """
    p = Path(path)
    if p.suffix.lower() == ".rm5":
        return True
    if head is None:
        try:
            with p.open("rb") as fh:
                head = fh.read(512)
        except OSError:
            return False
    start = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return (
        start.startswith(b"<?xml")
        or start.startswith(b"<COCHRANE_REVIEW")
        or (
            start.lower().startswith(b"comparison number")
            or start.lower().startswith(b'"comparison number"')
        )
    )


def read_review(source: str | Path, raw: bytes | None = None) -> Review:
    """Read a RevMan 5 file (``.rm5``) or a RevMan 5 analysis export (CSV).

    Parameters
    ----------
    source : str or path-like
        The file (its name is used in messages).
    raw : bytes, optional
        The file's content, when already read.

    Returns
    -------
    Review

    Raises
    ------
    RevManError
        For an unreadable file, malformed XML, a file that is not a RevMan review, or
        an export without the mandatory columns; the message is one line.
    """
    label = str(source)
    if raw is None:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise RevManError(
                f"{label}: cannot read the file ({exc.strerror})", source=label
            ) from None
    start = raw.lstrip(b"\xef\xbb\xbf").lstrip()
    if not start:
        raise RevManError(f"{label}: the file is empty", source=label)
    if start.startswith(b"<"):
        return _read_rm5(raw, label)
    return _read_csv(raw, label)


# ----------------------------------------------------------------------------- XML


def _parse_xml(raw: bytes, label: str) -> ET.Element:
    if b"<!ENTITY" in raw or b"<!DOCTYPE" in raw:
        raise RevManError(
            f"{label}: XML with a DOCTYPE or entity declarations is refused "
            "(RevMan files have none)",
            source=label,
        )
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        line, col = exc.position
        what = str(exc).split(":")[0]
        raise RevManError(
            f"{label}: malformed XML at line {line}, column {col + 1}: {what}", source=label
        ) from None
    except (LookupError, ValueError) as exc:  # e.g. an unknown declared encoding
        raise RevManError(f"{label}: cannot decode the XML ({exc})", source=label) from None
    if root.tag != "COCHRANE_REVIEW":
        raise RevManError(
            f"{label}: not a RevMan 5 review (root element <{root.tag}>, "
            "expected <COCHRANE_REVIEW>)",
            source=label,
        )
    return root


def _read_rm5(raw: bytes, label: str) -> Review:
    root = _parse_xml(raw, label)
    title = " ".join((root.findtext("COVER_SHEET/TITLE") or "").split())
    studies = {
        s.get("ID", ""): (" ".join((s.get("NAME") or "").split()), (s.get("YEAR") or "").strip())
        for s in root.iter("STUDY")
    }
    analyses = root.find("ANALYSES_AND_DATA")
    if analyses is None:
        raise RevManError(f"{label}: the review has no ANALYSES_AND_DATA section", source=label)
    outcomes: list[Outcome] = []
    for cmp in analyses.findall("COMPARISON"):
        c_no = _int_attr(cmp, "NO", label, "COMPARISON")
        c_name = " ".join((cmp.findtext("NAME") or "").split())
        for el in cmp:
            if not el.tag.endswith("_OUTCOME"):
                continue
            outcomes.append(_xml_outcome(el, c_no, c_name, studies, label))
    return Review(label, title, "rm5", tuple(outcomes))


def _int_attr(el: ET.Element, name: str, label: str, where: str) -> int:
    text = (el.get(name) or "").strip()
    try:
        return int(text)
    except ValueError:
        raise RevManError(
            f"{label}: <{where}> has {name}={text!r}, expected a whole number", source=label
        ) from None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _xml_pooled(el: ET.Element) -> PooledResult:
    g = el.get
    measure = (g("EFFECT_MEASURE") or el.findtext("EFFECT_MEASURE") or "").strip()
    measure = _MEASURES.get(measure.lower(), measure.upper())
    level = _float(g("CI_TOTAL"))
    df = _float(g("DF"))
    totals = (g("TOTALS") or "YES").upper()
    est = _float(g("EFFECT_SIZE")) if totals == "YES" else None
    return PooledResult(
        measure=measure,
        method=(g("METHOD") or "IV").upper(),
        model="random" if (g("RANDOM") or "NO").upper() == "YES" else "fixed",
        estimate=est,
        lower=_float(g("CI_START")) if est is not None else None,
        upper=_float(g("CI_END")) if est is not None else None,
        level=(level / 100) if level else 0.95,
        tau2=_float(g("TAU2")),
        i2=_float(g("I2")),
        q=_float(g("CHI2")),
        q_pval=_float(g("P_CHI2")),
        z=_float(g("Z")),
        z_pval=_float(g("P_Z")),
        df=None if df is None else int(df),
    )


def _xml_outcome(
    el: ET.Element,
    c_no: int,
    c_name: str,
    studies: dict[str, tuple[str, str]],
    label: str,
) -> Outcome:
    kind = el.tag[: -len("_OUTCOME")]
    o_no = _int_attr(el, "NO", label, el.tag)
    name = " ".join((el.findtext("NAME") or "").split())
    otype = OUTCOME_TYPES.get(kind, kind.lower())
    where = f"analysis {c_no}.{o_no}"
    rows: list[StudyRow] = []
    subgroups: list[str] = []
    if kind == "DICH":
        for data in el.findall("DICH_DATA"):
            rows.append(_xml_row(data, None, studies, label, where))
        for sub in el.findall("DICH_SUBGROUP"):
            sname = " ".join((sub.findtext("NAME") or "").split()) or f"subgroup {sub.get('NO')}"
            subgroups.append(sname)
            for data in sub.findall("DICH_DATA"):
                rows.append(_xml_row(data, sname, studies, label, where))
    n_studies = _float(el.get("STUDIES"))
    if n_studies is None:
        ids = {d.get("STUDY_ID") for d in el.iter() if d.tag.endswith("_DATA")}
        n_studies = float(len(ids))
    return Outcome(
        comparison_no=c_no,
        outcome_no=o_no,
        comparison=c_name,
        name=name,
        type=otype,
        n_studies=int(n_studies),
        group_label_t=(el.findtext("GROUP_LABEL_1") or "").strip(),
        group_label_c=(el.findtext("GROUP_LABEL_2") or "").strip(),
        graph_label_left=(el.findtext("GRAPH_LABEL_1") or "").strip(),
        graph_label_right=(el.findtext("GRAPH_LABEL_2") or "").strip(),
        swap_events=(el.get("SWAP_EVENTS") or "NO").upper() == "YES",
        subgroups=tuple(subgroups),
        rows=tuple(rows),
        pooled=_xml_pooled(el),
    )


def _count_attr(data: ET.Element, name: str, label: str, where: str, study: str) -> int:
    text = (data.get(name) or "").strip()
    value = _float(text)
    if value is None or not float(value).is_integer() or value < 0:
        raise RevManError(
            f"{label} {where}, study {study!r}: {name}={text!r} is not a count", source=label
        )
    return int(value)


def _xml_row(
    data: ET.Element,
    subgroup: str | None,
    studies: dict[str, tuple[str, str]],
    label: str,
    where: str,
) -> StudyRow:
    sid = (data.get("STUDY_ID") or "").strip()
    if sid not in studies:
        raise RevManError(
            f"{label} {where}: data row for study id {sid!r}, which is not in the "
            "review's study list",
            source=label,
        )
    name, year = studies[sid]
    name = name or sid
    counts = [_count_attr(data, a, label, where, name) for a in _XML_COUNTS]
    order = _float(data.get("ORDER"))
    return StudyRow(
        study_id=sid,
        study=name,
        year=year,
        subgroup=subgroup,
        events_t=counts[0],
        n_t=counts[1],
        events_c=counts[2],
        n_c=counts[3],
        order=None if order is None else int(order),
        weight=_float(data.get("WEIGHT")),
        effect=_float(data.get("EFFECT_SIZE")),
        estimable=(data.get("ESTIMABLE") or "YES").upper() == "YES",
    )


_XML_COUNTS = ("EVENTS_1", "TOTAL_1", "EVENTS_2", "TOTAL_2")


# ----------------------------------------------------------------------------- CSV


def _decode_csv(raw: bytes, label: str) -> tuple[str, str]:
    if b"\x00" in raw:
        raise RevManError(f"{label}: the file contains NUL bytes (not a CSV text file)")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "windows-1252"


def _read_csv(raw: bytes, label: str) -> Review:
    text, encoding = _decode_csv(raw, label)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        table = [r for r in reader if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise RevManError(f"{label}: malformed CSV ({exc})", source=label) from None
    if not table:
        raise RevManError(f"{label}: the file is empty", source=label)
    header = [h.strip() for h in table[0]]
    if not header or header[0].lower() != "comparison number":
        raise RevManError(
            f"{label}: not a RevMan 5 analysis export (the header must start with "
            f"'Comparison Number', found {header[0][:40]!r})",
            source=label,
        )
    col = {h: j for j, h in enumerate(header)}
    missing = [h for h in _CSV_REQUIRED if h not in col]
    if missing:
        raise RevManError(
            f"{label}: the RevMan export lacks the column(s) {', '.join(map(repr, missing))}; "
            "export them with File > Export > Data and analyses",
            source=label,
        )
    records = []
    for i, cells in enumerate(table[1:], start=1):
        if len(cells) != len(header):
            raise RevManError(
                f"{label} row {i}: {len(cells)} fields, but the header has {len(header)} "
                "(was the 'Risk of bias tables' field exported?)",
                source=label,
            )
        records.append((i, cells))
    notices = () if encoding == "utf-8" else (f"{label} decoded as {encoding}",)
    outcomes = _csv_outcomes(records, col, label)
    title = Path(label).stem
    return Review(label, title, "csv", tuple(outcomes), notices)


def _csv_int(cells: list[str], col: dict[str, int], name: str, label: str, row: int) -> int:
    text = cells[col[name]].strip()
    value = _float(text)
    if value is None or not value.is_integer() or value < 0:
        raise RevManError(
            f"{label} row {row}, column {name!r}: {text!r} is not a whole number", source=label
        )
    return int(value)


def _cell(cells: list[str], col: dict[str, int], name: str) -> str:
    j = col.get(name)
    return cells[j].strip() if j is not None else ""


def _csv_pooled(cells: list[str], col: dict[str, int]) -> PooledResult:
    def num(name: str) -> float | None:
        return _float(_cell(cells, col, name))

    measure = _cell(cells, col, "Effect Measure")
    measure = _MEASURES.get(measure.lower(), measure.upper())
    df = num("df")
    i2_name = next((h for h in col if h.startswith("I") and h.endswith("(Q)")), "")
    tau_name = next((h for h in col if h.lower().startswith("tau")), "")
    return PooledResult(
        measure=measure,
        method=_cell(cells, col, "Statistical Method").upper() or "IV",
        model="random" if _cell(cells, col, "Analysis Model").lower() == "random" else "fixed",
        estimate=num("Effect Estimate"),
        lower=num("CI Start"),
        upper=num("CI End"),
        tau2=num(tau_name) if tau_name else None,
        i2=num(i2_name) if i2_name else None,
        q=num("Q"),
        q_pval=num("P(Q)"),
        z=num("Z"),
        z_pval=num("P(Z)"),
        df=None if df is None else int(df),
    )


def _csv_outcomes(
    records: Sequence[tuple[int, list[str]]], col: dict[str, int], label: str
) -> list[Outcome]:
    comparisons: dict[int, str] = {}
    heads: dict[tuple[int, int], tuple[int, list[str]]] = {}
    subgroup_names: dict[tuple[int, int, int], str] = {}
    rows: dict[tuple[int, int], list[StudyRow]] = {}
    for i, cells in records:
        c = _csv_int(cells, col, "Comparison Number", label, i)
        o = _csv_int(cells, col, "Outcome Number", label, i)
        s = _csv_int(cells, col, "Subgroup Number", label, i)
        name = " ".join(_cell(cells, col, "Name").split())
        if o == 0:
            comparisons[c] = name
            continue
        if (c, o) not in heads:
            heads[(c, o)] = (i, cells)
            rows[(c, o)] = []
            continue
        if s > 0 and (c, o, s) not in subgroup_names:
            subgroup_names[(c, o, s)] = name or f"subgroup {s}"
            continue
        kind = _CSV_TYPES.get(_cell(heads[(c, o)][1], col, "Data Type")[:1].upper(), "other")
        if kind != "dichotomous":
            rows[(c, o)].append(_placeholder_row(name))
            continue
        counts = [
            _csv_int(cells, col, n, label, i)
            for n in ("Events 1", "Total 1", "Events 2", "Total 2")
        ]
        order = _float(_cell(cells, col, "User defined order"))
        rows[(c, o)].append(
            StudyRow(
                study_id=name,
                study=name,
                year=_cell(cells, col, "Year of study"),
                subgroup=subgroup_names.get((c, o, s)) if s > 0 else None,
                events_t=counts[0],
                n_t=counts[1],
                events_c=counts[2],
                n_c=counts[3],
                order=None if order is None else int(order),
                weight=_float(_cell(cells, col, "Weight")),
                effect=_float(_cell(cells, col, "Effect Estimate")),
            )
        )
    out = []
    for (c, o), (_i, cells) in heads.items():
        code = _cell(cells, col, "Data Type")
        kind = _CSV_TYPES.get(code[:1].upper(), f"other ({code or 'no data type'})")
        these = rows[(c, o)]
        subs = tuple(v for (cc, oo, _s), v in sorted(subgroup_names.items()) if (cc, oo) == (c, o))
        df = _float(_cell(cells, col, "df"))
        n_studies = len({r.study for r in these}) if these else (int(df) + 1 if df else 0)
        out.append(
            Outcome(
                comparison_no=c,
                outcome_no=o,
                comparison=comparisons.get(c, ""),
                name=" ".join(_cell(cells, col, "Name").split()),
                type=kind,
                n_studies=n_studies,
                group_label_t=_cell(cells, col, "Group Label 1"),
                group_label_c=_cell(cells, col, "Group Label 2"),
                graph_label_left=_cell(cells, col, "Left Graph Label"),
                graph_label_right=_cell(cells, col, "Right Graph Label"),
                swap_events=_cell(cells, col, "Swap event and non-event").lower() == "yes",
                subgroups=subs,
                rows=tuple(r for r in these if r.study_id != "\x00"),
                pooled=_csv_pooled(cells, col),
            )
        )
    return out


def _placeholder_row(name: str) -> StudyRow:
    """A non-dichotomous study row: counted for the listing, never analysed."""
    return StudyRow("\x00", name, "", None, 0, 0, 0, 0)


# ----------------------------------------------------------------------------- arm data


def arm_table(outcome: Outcome, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Arm-level rows of a dichotomous outcome, and the notices to report.

    Columns ``study, events_t, n_t, events_c, n_c, year`` and, for an outcome with
    subgroups, ``subgroup``. A study that appears in several subgroups gets the subgroup
    in its name (``"Smith 2001 (children)"``): its subgroups are separate patient groups.
    RevMan rows with an empty arm (no participants entered) are left out and reported.
    With ``SWAP_EVENTS`` RevMan analyses non-events: the counts are swapped the same way.

    Raises
    ------
    RevManError
        When the outcome is not dichotomous (the message names its type).
    """
    if outcome.type != "dichotomous":
        raise RevManError(
            f"{source} analysis {outcome.number} ({outcome.name}) is a {outcome.type} "
            "outcome; only dichotomous outcomes are supported yet",
            source=source,
        )
    notices: list[str] = []
    kept = [r for r in outcome.rows if r.n_t > 0 and r.n_c > 0]
    for r in outcome.rows:
        if r.n_t == 0 or r.n_c == 0:
            notices.append(f"excluded {r.study} ({outcome.number}): an arm has no participants")
    if not kept:
        raise RevManError(
            f"{source} analysis {outcome.number} ({outcome.name}) has no study data",
            source=source,
        )
    counts = {r.study_id: 0 for r in kept}
    for r in kept:
        counts[r.study_id] += 1
    names = []
    for r in kept:
        name = r.study
        if counts[r.study_id] > 1 and r.subgroup:
            name = f"{r.study} ({r.subgroup})"
        names.append(name)
    if len(set(names)) != len(names):  # the same study twice in one (sub)group
        seen: dict[str, int] = {}
        for j, n in enumerate(names):
            seen[n] = seen.get(n, 0) + 1
            if seen[n] > 1:
                names[j] = f"{n} [{seen[n]}]"
    frame = pd.DataFrame(
        {
            "study": names,
            "events_t": [r.events_t for r in kept],
            "n_t": [r.n_t for r in kept],
            "events_c": [r.events_c for r in kept],
            "n_c": [r.n_c for r in kept],
            "year": [r.year for r in kept],
        }
    )
    if outcome.swap_events:
        frame["events_t"] = frame["n_t"] - frame["events_t"]
        frame["events_c"] = frame["n_c"] - frame["events_c"]
        notices.append(
            f"{outcome.number}: RevMan analyses non-events (swap events): events are "
            "total minus the events entered"
        )
    if outcome.subgroups:
        frame["subgroup"] = [r.subgroup or "" for r in kept]
    return frame, notices


# ----------------------------------------------------------------------------- selection

#: Stored and recomputed pooled estimates must agree this closely (relative): RevMan's CSV
#: export keeps 8 significant digits, the .rm5 file 16.
REPRODUCE_RTOL = 1e-6


@dataclass(frozen=True)
class Selection:
    """One dichotomous outcome of a review, ready to become arm-level trial data."""

    review: Review
    outcome: Outcome
    frame: pd.DataFrame
    notices: tuple[str, ...]
    reference: dict[str, Any]


def reproduce(outcome: Outcome, frame: pd.DataFrame) -> dict[str, Any] | None:
    """RevMan's pooled result recomputed from the counts with RevMan's own rules.

    Returns None where the method is not reproduced here (Peto, risk difference) or the
    review stored no pooled result; else ``estimate``, ``lower``, ``upper``, ``tau2`` and
    ``matches`` (agreement with the stored estimate to :data:`REPRODUCE_RTOL`).
    """
    p = outcome.pooled
    if p is None or p.estimate is None or p.measure not in ("OR", "RR"):
        return None
    if p.method not in ("MH", "IV"):
        return None
    try:
        ours = revman_pool(
            frame["events_t"],
            frame["n_t"],
            frame["events_c"],
            frame["n_c"],
            measure=p.measure,
            method=p.method,
            model=p.model,
        )
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return None
    lo, hi = ours.interval(p.level)
    return {
        "estimate": ours.estimate,
        "lower": lo,
        "upper": hi,
        "tau2": ours.tau2,
        "matches": bool(abs(ours.estimate - p.estimate) <= REPRODUCE_RTOL * abs(p.estimate)),
    }


def select(source: str, raw: bytes, outcome: str | None) -> Selection:
    """Read a RevMan file and pick one dichotomous outcome (``C.O`` or its name).

    Raises
    ------
    RevManError
        Unreadable or malformed file; several outcomes and none chosen (the message lists
        them); an unknown outcome; an outcome that is not dichotomous.
    """
    review = read_review(source, raw)
    chosen = review.outcome(outcome)
    frame, notices = arm_table(chosen, source)
    pooled = chosen.pooled
    kind = "RevMan 5 review" if review.format == "rm5" else "RevMan 5 analysis export"
    reference: dict[str, Any] = {
        "source": f"{kind} {source}, analysis {chosen.number}",
        "review": review.title,
        "analysis": chosen.number,
        "outcome": chosen.name,
        "comparison": chosen.comparison,
        "treatment": chosen.group_label_t,
        "control": chosen.group_label_c,
        "graph_labels": [chosen.graph_label_left, chosen.graph_label_right],
        "studies": chosen.n_studies,
        "pooled": None if pooled is None else pooled.to_dict(),
        "describe": "" if pooled is None else pooled.describe(),
        "reproduced": reproduce(chosen, frame),
    }
    note = [
        f"RevMan analysis {chosen.number} ({chosen.name}): "
        f"{chosen.group_label_t or 'group 1'} vs {chosen.group_label_c or 'group 2'}"
    ]
    if pooled is not None and pooled.estimate is not None:
        note.append(f"RevMan's own result: {pooled.describe()}")
    rep = reference["reproduced"]
    if rep is not None and not rep["matches"]:
        note.append(
            f"RevMan's stored {pooled.measure} {pooled.estimate:.4g} is not reproduced from "  # type: ignore[union-attr]
            f"the counts ({rep['estimate']:.4g}): the data may have been edited after the "
            "review's last analysis"
        )
    return Selection(review, chosen, frame, (*review.notices, *note, *notices), reference)


def listing_lines(review: Review) -> list[str]:
    """What ``trialsynth data FILE`` prints for a review: title, then one line per outcome."""
    lines = [
        f"{review.source}: {review.title or '(untitled review)'} "
        f"({'RevMan 5 review' if review.format == 'rm5' else 'RevMan 5 analysis export'}, "
        f"{len(review.outcomes)} outcome{'s' if len(review.outcomes) != 1 else ''})"
    ]
    for o in review.outcomes:
        line = f"  {o.describe()}"
        if o.pooled is not None and o.pooled.estimate is not None:
            line += f"; RevMan: {o.pooled.describe()}"
        lines.append(line)
    return lines
