"""Tests of the data layer: loading, validation, provenance and immutability."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trialsynth.core import effects
from trialsynth.data import (
    SHIPPED_DATASETS,
    STANDARD_COLUMNS,
    ArmData,
    ContrastData,
    DataError,
    Exclusion,
    load,
)

ARM_HEADER = "study,events_t,n_t,events_c,n_c"
GOOD_ROWS = ["A 2001,3,10,5,12", "B 2002,4,20,6,21", "C 2003,1,15,2,14"]


def write(tmp_path: Path, text: str | bytes, name: str = "trials.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def arm_csv(tmp_path: Path, *rows: str, header: str = ARM_HEADER) -> Path:
    return write(tmp_path, "\n".join([header, *rows]) + "\n")


def raises(path: Path | str, rest: str) -> pytest.RaisesContext[DataError]:
    """Expect a DataError whose message is exactly ``f"{path}{rest}"``."""
    return pytest.raises(DataError, match="^" + re.escape(f"{path}{rest}") + "$")


# ---------------------------------------------------------------------- shipped datasets


def test_shipped_dataset_names() -> None:
    assert set(SHIPPED_DATASETS) == {"ivig_rm", "ivig_rm_secondary", "crins2014", "bcg"}
    assert all(isinstance(v, str) and v for v in SHIPPED_DATASETS.values())


def test_ivig_rm_excludes_stephenson_1998_with_notice() -> None:
    data = load("ivig_rm")
    assert data.name == "ivig_rm"
    assert data.kind == "arm"
    assert data.k == 8
    assert "Stephenson 1998" not in data.study
    assert data.excluded == (
        Exclusion(study="Stephenson 1998", row=5, reason="per-arm events missing"),
    )
    assert (
        "excluded Stephenson 1998 (row 5): per-arm events missing (confidence: missing)"
        in data.notices
    )
    assert isinstance(data, ArmData) and not hasattr(data, "log_or")
    i = data.study.index("Coulam 1995")
    assert (data.events_t[i], data.n_t[i], data.events_c[i], data.n_c[i]) == (18, 29, 11, 32)


def test_ivig_rm_keeps_provenance_columns() -> None:
    data = load("ivig_rm")
    cov = data.covariates
    for col in ("confidence", "source", "population", "year", "in_review", "denominator"):
        assert col in cov.columns
    assert cov.index.name == "study"
    assert list(cov.index) == list(data.study)
    assert cov.loc["Christiansen 1995", "confidence"] == "medium"
    assert cov.loc["Stephenson 2010", "source"].startswith("Hum Reprod 2010")
    assert cov.loc["Stephenson 2010", "year"] == 2010
    frame = data.to_frame()
    assert list(frame.columns[:5]) == ["study", "events_t", "n_t", "events_c", "n_c"]
    assert {"confidence", "source"} <= set(frame.columns)


def test_ivig_rm_secondary() -> None:
    data = load("ivig_rm_secondary")
    assert data.k == 5
    assert data.excluded == ()
    assert list(data.covariates["confidence"]) == [
        "medium",
        "reconstructed",
        "reconstructed",
        "high",
        "high",
    ]
    # Stephenson 1998 + Jablonowska 1999 (secondary) + Stephenson 2010: 31/44 vs 28/45.
    sub = data.subset(
        ["Stephenson 1998 (secondary RM)", "Jablonowska 1999 (secondary RM)", "Stephenson 2010"]
    )
    assert (sub.events_t.sum(), sub.n_t.sum(), sub.events_c.sum(), sub.n_c.sum()) == (
        31,
        44,
        28,
        45,
    )


def test_crins2014_mapping_and_zero_cell() -> None:
    data = load("crins2014")
    assert data.k == 6
    assert data.study[0] == "Heffron (2003)"
    assert data.column_mapping == {
        "study": "publication",
        "events_t": "exp_AR_events",
        "n_t": "exp_total",
        "events_c": "cont_AR_events",
        "n_c": "cont_total",
    }
    assert any("events_t = exp_AR_events" in n for n in data.notices)
    gras = data.study.index("Gras (2008)")
    assert data.events_t[gras] == 0
    assert list(data.has_zero_cells) == [s == "Gras (2008)" for s in data.study]
    lor = data.contrasts()
    assert list(lor.corrected) == [s == "Gras (2008)" for s in data.study]
    expected = math.log((0.5 * 31.5) / (50.5 * 3.5))  # 0.5 added to every cell of Gras 2008
    assert lor.y[gras] == pytest.approx(expected)
    assert {"year", "randomized"} <= set(data.covariates.columns)


def test_bcg_counts_names_and_covariates() -> None:
    data = load("bcg")
    assert data.k == 13
    assert len(set(data.study)) == 13
    i = data.study.index("Aronson 1948")
    assert (data.events_t[i], data.n_t[i], data.events_c[i], data.n_c[i]) == (4, 123, 11, 139)
    assert "Rosenthal et al 1960" in data.study and "Rosenthal et al 1961" in data.study
    cov = data.covariates
    for col in ("ablat", "alloc", "year", "trial"):
        assert col in cov.columns
    assert cov["ablat"].dtype == np.int64
    assert cov.loc["Aronson 1948", "ablat"] == 44
    assert data.column_mapping["n_t"] == "tpos + tneg"
    assert data.column_mapping["study"] == "author + year"
    # Mantel-Haenszel OR 0.622874 (validation README, metafor dat.bcg).
    a, c = data.events_t, data.events_c
    b, d = data.n_t - a, data.n_c - c
    total = data.n_t + data.n_c
    mh = np.sum(a * d / total) / np.sum(b * c / total)
    assert mh == pytest.approx(0.622874, abs=5e-7)


def test_unknown_dataset_name_lists_valid_names() -> None:
    with raises(
        "ivig",
        ": no such file, and not a shipped dataset name "
        "(shipped datasets: bcg, crins2014, ivig_rm, ivig_rm_secondary)",
    ):
        load("ivig")


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with raises(
        path,
        ": no such file, and not a shipped dataset name "
        "(shipped datasets: bcg, crins2014, ivig_rm, ivig_rm_secondary)",
    ) as info:
        load(path)
    assert info.value.row is None and info.value.column is None


# ---------------------------------------------------------------------- validation rules


def test_events_exceed_arm_size(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS[:2], "C 2003,12,10,2,14")
    with raises(path, " row 3, column 'events_t': events (12) exceed the arm size n_t (10)") as e:
        load(path)
    assert (e.value.row, e.value.column) == (3, "events_t")


def test_negative_count(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS[:2], "C 2003,1,15,-2,14")
    with raises(path, " row 3, column 'events_c': count (-2) is negative"):
        load(path)


def test_non_integer_count(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A 2001,2.5,10,5,12", *GOOD_ROWS[1:])
    with raises(path, " row 1, column 'events_t': count (2.5) is not a whole number"):
        load(path)


def test_integral_decimal_count_accepted(tmp_path: Path) -> None:
    data = load(arm_csv(tmp_path, "A 2001,3.0,10,5,12", *GOOD_ROWS[1:]))
    assert data.events_t[0] == 3 and data.events_t.dtype == np.int64


def test_zero_arm_size(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS[:1], "B 2002,0,20,0,0")
    with raises(
        path, " row 2, column 'n_c': arm size is 0; every arm needs at least one participant"
    ):
        load(path)


def test_duplicate_study_names_name_both_rows(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS, "B 2002,1,5,1,5")
    with raises(
        path,
        " row 4, column 'study': duplicate study name 'B 2002' (also row 2); "
        "study names must be unique",
    ) as e:
        load(path)
    assert e.value.row == 4


def test_missing_study_name(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS, " ,1,5,1,5")
    with raises(path, " row 4, column 'study': study name is empty"):
        load(path)


def test_missing_required_columns(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A,1,10,2", header="study,events_t,n_t,events_c")
    with pytest.raises(DataError) as e:
        load(path)
    msg = str(e.value)
    assert msg.startswith(
        f"{path}: missing required column(s) 'n_c' for arm-level data "
        "(file columns: study, events_t, n_t, events_c); accepted column sets: "
        "arm-level study, events_t, n_t, events_c, n_c; contrast-level study, log_or, se; "
        "published estimate study, or, lower, upper"
    )
    assert "\n" not in msg


def test_missing_study_column(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "1,10,2,10", header="events_t,n_t,events_c,n_c")
    with pytest.raises(DataError, match=re.escape("missing required column(s) 'study' for arm")):
        load(path)


def test_semicolon_separated_file_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "study;events_t;n_t;events_c;n_c\nA;1;10;2;10\n")
    with pytest.raises(DataError, match=re.escape("seems to use ';' as separator")):
        load(path)


def test_non_numeric_value(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS[:1], "B 2002,4,abc,6,21")
    with raises(path, " row 2, column 'n_t': 'abc' is not a number") as e:
        load(path)
    assert (e.value.row, e.value.column) == (2, "n_t")


def test_non_numeric_value_in_row_with_missing_counts_is_an_error(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS, "D 2004,,x,,10")
    with raises(path, " row 4, column 'n_t': 'x' is not a number"):
        load(path)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_non_finite_value(tmp_path: Path, value: str) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS[:1], f"B 2002,4,20,{value},21")
    with raises(path, f" row 2, column 'events_c': value {value!r} is not finite"):
        load(path)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with raises(path, ": the file is empty (expected a header row and one row per trial)"):
        load(path)


def test_blank_lines_only_file_is_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "\n  \n\n")
    with raises(path, ": the file is empty (expected a header row and one row per trial)"):
        load(path)


def test_header_only(tmp_path: Path) -> None:
    path = write(tmp_path, ARM_HEADER + "\n\n")
    with raises(path, ": the file has a header row but no data rows"):
        load(path)


def test_too_few_trials_after_exclusion(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, GOOD_ROWS[0], "B 2002,,20,,21")
    with raises(
        path, ": 1 trial left to analyse, at least 2 needed; excluded: B 2002 (row 2)"
    ) as e:
        load(path)
    assert e.value.row is None
    assert load(path, min_trials=1).k == 1


def test_min_trials_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_trials must be at least 1"):
        load(arm_csv(tmp_path, *GOOD_ROWS), min_trials=0)


def test_ragged_row(tmp_path: Path) -> None:
    path = write(tmp_path, ARM_HEADER + "\nA 2001,3,10,5,12\n\nB 2002,4,20,6\n")
    with raises(path, " row 2: line 4 has 4 fields, but the header has 5") as e:
        load(path)
    assert e.value.row == 2


def test_too_many_fields(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS[:2], "C 2003,1,15,2,14,extra")
    with raises(path, " row 3: line 4 has 6 fields, but the header has 5"):
        load(path)


def test_unnamed_column_with_values(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A,3,10,5,12,", "B,4,20,6,21,x", header=ARM_HEADER + ",")
    with raises(path, " row 2: column 6 (after 'n_c') has values but no name in the header"):
        load(path)


def test_malformed_quoting(tmp_path: Path) -> None:
    path = write(tmp_path, ARM_HEADER + '\nA,3,10,5,12\n"B,4,20,6,21\n')
    with pytest.raises(DataError, match=re.escape(f"{path}: line ") + r"\d+: malformed CSV"):
        load(path)


def test_quoted_fields_with_commas_and_newlines(tmp_path: Path) -> None:
    text = ARM_HEADER + ',note\n"Smith, J 2001",3,10,5,12,"two\nlines"\nB,4,20,6,21,x\n'
    data = load(write(tmp_path, text))
    assert data.study == ("Smith, J 2001", "B")
    assert data.covariates.loc["Smith, J 2001", "note"] == "two\nlines"


def test_all_cells_missing_reason(tmp_path: Path) -> None:
    data = load(arm_csv(tmp_path, *GOOD_ROWS, "D 2004,,,,"))
    assert data.excluded[0].reason == "missing events_t, n_t, events_c and n_c"


def test_mapped_column_clashes_with_standard_name(tmp_path: Path) -> None:
    path = arm_csv(
        tmp_path, "A,a,3,10,5,12", "B,b,4,20,6,21", header="study,label,events_t,n_t,events_c,n_c"
    )
    with raises(
        path,
        ": column 'study' clashes with the standard column taken from 'label'; "
        "rename or drop one of them",
    ):
        load(path, columns={"label": "study"})


def test_trailing_empty_fields_tolerated(tmp_path: Path) -> None:
    path = write(tmp_path, ARM_HEADER + ",\nA 2001,3,10,5,12,\nB 2002,4,20,6,21,,\n,,,,,\n")
    data = load(path)
    assert data.k == 2 and list(data.covariates.columns) == []


def test_not_utf8(tmp_path: Path) -> None:
    path = write(
        tmp_path, (ARM_HEADER + "\nA,1,5,1,5\nM\u00fcller 2001,1,5,1,5\n").encode("latin-1")
    )
    with raises(
        path,
        ": line 3 is not valid UTF-8 (byte 0xfc); the file must be UTF-8 encoded "
        "(a byte-order mark is fine): re-save it as 'CSV UTF-8'",
    ):
        load(path)


def test_bom_tolerated(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff" + ARM_HEADER + "\n" + "\n".join(GOOD_ROWS) + "\n")
    data = load(path)
    assert data.k == 3 and data.column_mapping["study"] == "study"


def test_crlf_blank_lines_and_whitespace(tmp_path: Path) -> None:
    text = " Study , EVENTS_T ,n_t, events_c ,N_C , Year \r\n\r\n A 2001 , 3,10 ,5,12, 2001\r\n"
    text += "B 2002,4,20,6,21,2002\r\n   \r\n"
    data = load(write(tmp_path, text))
    assert data.study == ("A 2001", "B 2002")
    assert list(data.events_t) == [3, 4]
    assert list(data.covariates["Year"]) == [2001, 2002]


def test_row_numbers_skip_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, ARM_HEADER + "\n\nA 2001,3,10,5,12\n\n\nB 2002,4,2,6,21\n")
    with raises(path, " row 2, column 'events_t': events (4) exceed the arm size n_t (2)"):
        load(path)


# ---------------------------------------------------------------------- contrast / published


def test_contrast_level_input(tmp_path: Path) -> None:
    path = write(tmp_path, "study,log_or,se,year\nA,0.1,0.5,2001\nB,-0.3,0.25,2002\n")
    data = load(path)
    assert data.kind == "contrast"
    assert isinstance(data, ContrastData) and not hasattr(data, "events_t")
    np.testing.assert_array_equal(data.log_or, [0.1, -0.3])
    lor = data.contrasts()
    np.testing.assert_array_equal(lor.y, [0.1, -0.3])
    np.testing.assert_array_equal(lor.se, [0.5, 0.25])
    assert not lor.corrected.any()
    assert list(data.to_frame().columns) == ["study", "log_or", "se", "year"]


@pytest.mark.parametrize("value", ["0", "-0.2"])
def test_contrast_se_must_be_positive(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"study,log_or,se\nA,0.1,0.5\nB,0.2,{value}\n")
    with raises(path, f" row 2, column 'se': standard error must be positive (got {value})"):
        load(path)


def test_contrast_se_non_finite(tmp_path: Path) -> None:
    path = write(tmp_path, "study,log_or,se\nA,0.1,inf\nB,0.2,0.3\n")
    with raises(path, " row 1, column 'se': value 'inf' is not finite"):
        load(path)


def test_contrast_missing_se_excluded(tmp_path: Path) -> None:
    path = write(tmp_path, "study,log_or,se\nA,0.1,0.5\nB,0.2,\nC,0.3,0.4\n")
    data = load(path)
    assert data.study == ("A", "C")
    assert data.excluded == (Exclusion("B", 2, "missing se"),)
    assert "excluded B (row 2): missing se" in data.notices


def test_published_estimates_converted(tmp_path: Path) -> None:
    path = write(tmp_path, "study,or,lower,upper\nS2010,1.37,0.41,4.61\nX,0.8,0.5,1.28\n")
    data = load(path)
    assert data.kind == "contrast"
    y, se = effects.log_or_from_interval([1.37, 0.8], [0.41, 0.5], [4.61, 1.28])
    np.testing.assert_allclose(data.log_or, y)
    np.testing.assert_allclose(data.se, se)
    assert data.log_or[0] == pytest.approx(math.log(1.37))
    assert data.se[0] == pytest.approx((math.log(4.61) - math.log(0.41)) / (2 * 1.959963985))
    assert data.column_mapping["log_or"] == "log(or)"
    assert any(n.startswith("converted published odds ratios") for n in data.notices)


@pytest.mark.parametrize(
    ("row", "column", "rule"),
    [
        ("A,0,0.5,2", "or", "odds ratio must be positive (got 0)"),
        ("A,1,-0.5,2", "lower", "lower limit must be positive (got -0.5)"),
        ("A,1.5,1.6,2", "lower", "lower limit (1.6) is above the odds ratio (1.5)"),
        ("A,2.5,1.6,2", "upper", "upper limit (2) is below the odds ratio (2.5)"),
        ("A,2,2,2", "upper", "the interval has zero width (lower = upper = 2)"),
    ],
)
def test_published_estimate_rules(tmp_path: Path, row: str, column: str, rule: str) -> None:
    path = write(tmp_path, f"study,or,lower,upper\nB,1,0.5,2\n{row}\n")
    with raises(path, f" row 2, column {column!r}: {rule}"):
        load(path)


# ---------------------------------------------------------------------- zero events


def test_zero_event_arm_and_double_zero_are_valid(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A,0,10,3,12", "B,0,20,0,21", "C,5,5,7,7", "D,2,9,4,9")
    data = load(path)
    assert data.k == 4 and data.excluded == ()
    assert list(data.has_zero_cells) == [True, True, True, False]
    assert list(data.double_zero) == [False, True, True, False]
    lor = data.contrasts()
    assert np.isfinite(lor.y).all() and np.isfinite(lor.se).all()
    assert lor.y[1] == pytest.approx(math.log((0.5 * 21.5) / (20.5 * 0.5)))


def test_one_missing_cell_excludes_row_naming_column(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS, "D 2004,3,10,4,")
    data = load(path)
    assert data.k == 3
    assert data.excluded == (Exclusion("D 2004", 4, "missing n_c"),)
    assert data.notices == ("excluded D 2004 (row 4): missing n_c",)


def test_na_counts_as_missing(tmp_path: Path) -> None:
    data = load(arm_csv(tmp_path, *GOOD_ROWS, "D 2004,NA,10,NA,12"))
    assert data.excluded == (Exclusion("D 2004", 4, "per-arm events missing"),)


# ---------------------------------------------------------------------- column spellings


@pytest.mark.parametrize(
    ("header", "mapping"),
    [
        ("study,ai,n1i,ci,n2i", {"events_t": "ai", "n_t": "n1i", "events_c": "ci", "n_c": "n2i"}),
        (
            "study,ai,bi,ci,di",
            {"events_t": "ai", "n_t": "ai + bi", "events_c": "ci", "n_c": "ci + di"},
        ),
        ("Study,r_t,n_t,r_c,n_c", {"events_t": "r_t", "n_t": "n_t", "events_c": "r_c"}),
        ("studlab,event.e,n.e,event.c,n.c", {"study": "studlab", "events_t": "event.e"}),
    ],
)
def test_arm_alternative_spellings(tmp_path: Path, header: str, mapping: dict[str, str]) -> None:
    path = arm_csv(tmp_path, "A,3,10,5,12", "B,4,20,6,21", header=header)
    data = load(path)
    assert data.kind == "arm"
    assert mapping.items() <= data.column_mapping.items()
    assert any(
        n.startswith("columns used (alternative spellings recognised)") for n in data.notices
    )
    if "bi" in header:
        assert list(data.n_t) == [13, 24] and list(data.n_c) == [17, 27]
    else:
        assert list(data.n_t) == [10, 20] and list(data.n_c) == [12, 21]


def test_yi_vi(tmp_path: Path) -> None:
    data = load(write(tmp_path, "study,yi,vi\nA,0.1,0.25\nB,-0.2,0.04\n"))
    assert data.kind == "contrast"
    np.testing.assert_allclose(data.se, [0.5, 0.2])
    assert data.column_mapping == {"study": "study", "log_or": "yi", "se": "sqrt(vi)"}
    assert "columns used (alternative spellings recognised): log_or = yi, se = sqrt(vi)" in (
        data.notices
    )


def test_vi_must_be_positive(tmp_path: Path) -> None:
    path = write(tmp_path, "study,yi,vi\nA,0.1,0.25\nB,-0.2,0\n")
    with raises(path, " row 2, column 'vi': variance must be positive (got 0)"):
        load(path)


def test_yi_sei(tmp_path: Path) -> None:
    data = load(write(tmp_path, "study,yi,sei\nA,0.1,0.5\nB,-0.2,0.2\n"))
    np.testing.assert_allclose(data.se, [0.5, 0.2])
    assert data.column_mapping["se"] == "sei"


def test_errors_name_the_column_as_spelled_in_the_file(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A,3,10,5,12", "B,40,20,6,21", header="study,ai,n1i,ci,n2i")
    with raises(path, " row 2, column 'ai': events (40) exceed the arm size n1i (20)"):
        load(path)


def test_counts_win_over_contrasts_when_both_present(tmp_path: Path) -> None:
    path = arm_csv(
        tmp_path, "A,3,10,5,12,0.1,0.2", "B,4,20,6,21,0.3,0.4", header=ARM_HEADER + ",yi,vi"
    )
    data = load(path)
    assert data.kind == "arm"
    assert {"yi", "vi"} <= set(data.covariates.columns)
    assert any("contrast-level columns (yi, vi) are kept as covariates" in n for n in data.notices)


def test_explicit_columns_mapping(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A,3,10,5,12", "B,4,20,6,21", header="Trial,dt,nt,dc,nc")
    data = load(
        path,
        columns={"Trial": "study", "dt": "events_t", "nt": "n_t", "dc": "events_c", "NC": "n_c"},
    )
    assert data.k == 2
    assert data.column_mapping["events_t"] == "dt"
    assert any(n.startswith("columns used (as given): study = Trial") for n in data.notices)


def test_explicit_mapping_unknown_target(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS)
    with raises(
        path,
        ": columns: unknown standard column name 'events' (for 'x'); valid names: "
        + ", ".join(STANDARD_COLUMNS),
    ):
        load(path, columns={"x": "events"})


def test_explicit_mapping_unknown_source(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, *GOOD_ROWS)
    with raises(
        path,
        ": column 'deaths' named in columns is not in the file "
        "(file columns: study, events_t, n_t, events_c, n_c)",
    ):
        load(path, columns={"deaths": "events_t"})


def test_ambiguous_alternative_spellings(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A,3,3,10,5,12", header="study,ai,r_t,n1i,ci,n2i")
    with raises(
        path, ": columns 'ai' and 'r_t' could both be 'events_t'; say which to use with columns="
    ):
        load(path)


def test_duplicate_header(tmp_path: Path) -> None:
    path = arm_csv(tmp_path, "A,3,10,5,12,1", header=ARM_HEADER + ",N_T")
    with raises(path, ": column name 'N_T' appears twice in the header (columns 3 and 6)"):
        load(path)


# ---------------------------------------------------------------------- immutability, hashing


def test_arrays_and_fields_are_immutable() -> None:
    data = load("bcg")
    for arr in (data.events_t, data.n_t, data.events_c, data.n_c):
        assert arr.dtype == np.int64
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 99
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"  # type: ignore[misc]
    cov = data.covariates
    cov.loc["Aronson 1948", "ablat"] = 0
    assert data.covariates.loc["Aronson 1948", "ablat"] == 44
    mapping = data.column_mapping
    mapping["n_t"] = "x"
    assert data.column_mapping["n_t"] == "tpos + tneg"


def test_construction_copies_inputs() -> None:
    events = np.array([1, 2])
    data = ArmData("sim", ["a", "b"], events_t=events, n_t=[5, 5], events_c=[0, 1], n_c=[5, 6])
    events[0] = 4
    assert data.events_t[0] == 1


def test_direct_construction_validates() -> None:
    with raises("sim", " row 2, column 'events_c': events (7) exceed the arm size n_c (6)"):
        ArmData("sim", ["a", "b"], events_t=[1, 2], n_t=[5, 5], events_c=[0, 7], n_c=[5, 6])
    with raises("sim", " row 1, column 'se': standard error must be positive (got 0)"):
        ContrastData("sim", ["a"], log_or=[0.1], se=[0.0])


def test_sha256_independent_of_path_and_sensitive_to_counts(tmp_path: Path) -> None:
    text = ARM_HEADER + ",year\nA,3,10,5,12,2001\nB,4,20,6,21,2002\n"
    first = write(tmp_path, text, "one.csv")
    (tmp_path / "sub").mkdir()
    second = write(tmp_path / "sub", text.replace(",", ", "), "two.csv")
    changed = write(tmp_path, text.replace("B,4,", "B,5,"), "three.csv")
    h = load(first).sha256
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert load(second).sha256 == h
    assert load(changed).sha256 != h
    covariate_changed = write(tmp_path, text.replace("2002", "2003"), "four.csv")
    assert load(covariate_changed).sha256 != h


def test_sha256_stable_across_processes() -> None:
    code = "from trialsynth.data import load; print(load('ivig_rm').sha256)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == load("ivig_rm").sha256


def test_sha256_ignores_excluded_rows_and_name(tmp_path: Path) -> None:
    text = ARM_HEADER + "\nA,3,10,5,12\nB,4,20,6,21\n"
    plain = load(write(tmp_path, text, "a.csv"))
    with_missing = load(write(tmp_path, text + "C,,10,,10\n", "b.csv"))
    assert with_missing.excluded and plain.sha256 == with_missing.sha256


# ---------------------------------------------------------------------- selections


def test_drop_leave_one_out() -> None:
    data = load("bcg")
    loo = data.drop("Aronson 1948")
    assert loo.k == 12 and "Aronson 1948" not in loo.study
    assert loo.covariates.shape[0] == 12
    assert not loo.events_t.flags.writeable
    assert loo.sha256 != data.sha256
    with pytest.raises(DataError, match=re.escape("bcg column 'study': unknown study 'Nobody'")):
        data.drop("Nobody")


def test_subset_by_names_and_mask() -> None:
    data = load("ivig_rm")
    sub = data.subset(["Stephenson 2010", "Christiansen 2015"])
    assert sub.study == ("Stephenson 2010", "Christiansen 2015")
    assert list(sub.covariates["confidence"]) == ["high", "high"]
    mask = np.array([s.startswith("Christiansen") for s in data.study])
    assert data.subset(mask).study == (
        "Christiansen 1995",
        "Christiansen 2002",
        "Christiansen 2015",
    )
    assert data.subset(data.study).sha256 == data.sha256
    with pytest.raises(DataError, match="leaves no trials"):
        data.subset([])


def test_filter_by_covariate() -> None:
    data = load("ivig_rm")
    secondary = data.filter("population", "secondary")
    assert secondary.study == ("Stephenson 2010", "Christiansen 2015")
    review = data.filter("in_review", ["yes"])
    assert review.k == 6
    assert data.filter("year", "2010").study == ("Stephenson 2010",)
    assert data.filter("year", [1995, 2015]).k == 3
    with pytest.raises(DataError, match=re.escape("ivig_rm column 'region': no covariate column")):
        data.filter("region", "x")
    with pytest.raises(DataError, match=re.escape("no trials have population in ['tertiary']")):
        data.filter("population", "tertiary")


def test_contrasts_match_effects_module() -> None:
    data = load("crins2014")
    lor = data.contrasts(correction=0.25)
    ref = effects.log_odds_ratios(data.events_t, data.n_t, data.events_c, data.n_c, correction=0.25)
    np.testing.assert_array_equal(lor.y, ref.y)
    np.testing.assert_array_equal(lor.se, ref.se)
    assert lor.correction == 0.25
