"""The Bayesian summary-of-findings table: its numbers are the summary's, it never grades."""

from __future__ import annotations

import csv
import io
import json

import pytest

from trialsynth.analysis.absolute import attach_absolute
from trialsynth.data import load
from trialsynth.models.spec import ModelSpec
from trialsynth.report.report import write_report
from trialsynth.report.sof import CERTAINTY_TEXT, SOF_COLUMNS, sof_context, sof_csv
from trialsynth.results.fitting import fit


@pytest.fixture(scope="module")
def ivig():
    data = load("ivig_rm")
    result = fit(
        data, spec=ModelSpec.from_options("normal-normal", data_kind="arm"), engine="exact"
    )
    attach_absolute(result, mcid=50)
    return result


def test_sof_numbers_equal_the_summary(ivig):
    s = ivig.summary()
    table = sof_context(s, ivig.data_frame, "Live birth")
    pooled, new = table["rows"]
    a = s["absolute"]
    assert (pooled["or_median"], pooled["or_q025"], pooled["or_q975"]) == (
        s["or"]["median"],
        s["or"]["q025"],
        s["or"]["q975"],
    )
    assert (new["or_median"], new["or_q975"]) == (s["or_new"]["median"], s["or_new"]["q975"])
    assert pooled["control_per_1000"] == a["per_1000_control"]["median"]
    assert pooled["treatment_per_1000_q025"] == a["per_1000_treatment"]["q025"]
    assert pooled["difference_per_1000"] == a["difference_per_1000"]["median"]
    assert pooled["difference_per_1000_q975"] == a["difference_per_1000"]["q975"]
    assert pooled["p_difference_gt_mcid"] == a["p_difference_gt_mcid"]
    assert new["difference_per_1000"] == a["new_trial"]["difference_per_1000"]["median"]
    assert new["p_benefit"] == a["new_trial"]["p_benefit"]
    frame = ivig.data_frame
    assert pooled["participants"] == int((frame["n_t"] + frame["n_c"]).sum())
    assert pooled["studies"] == s["k"] == 8


def test_signals_carry_their_numbers_and_no_grade(ivig):
    s = ivig.summary()
    table = sof_context(s, ivig.data_frame, "Live birth")
    sig = table["signals"]
    assert sig["imprecision"]["q025"] == s["absolute"]["difference_per_1000"]["q025"]
    assert "crosses the MCID" in sig["imprecision"]["signal"]
    assert sig["inconsistency"]["tau_median"] == s["tau"]["median"]
    assert sig["inconsistency"]["or_new_q975"] == s["or_new"]["q975"]
    rob = sig["risk_of_bias"]
    levels = list(ivig.data_frame["confidence"])
    assert rob["weaker"] == sum(1 for c in levels if c != "high") and rob["k"] == len(levels)
    assert (
        sig["publication_bias"]["bf"] is None and "not assessed" in sig["publication_bias"]["text"]
    )
    for row in table["rows"]:
        assert row["certainty"] == CERTAINTY_TEXT
        for grade in ("high", "moderate", "low", "very low", "\u2295"):
            assert grade not in row["certainty"].lower()


def test_sof_csv_and_report_files(ivig, tmp_path):
    files = write_report(ivig, tmp_path)
    text = (tmp_path / "sof.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(SOF_COLUMNS) and len(rows) == 2
    ctx = json.loads(files.context.read_text())
    assert float(rows[0]["difference_per_1000"]) == ctx["sof"]["rows"][0]["difference_per_1000"]
    assert (
        ctx["sof"]["rows"][0]["difference_per_1000"]
        == (ctx["summary"]["absolute"]["difference_per_1000"]["median"])
    )
    assert text == sof_csv(ctx["sof"])
    html = files.html.read_text()
    md = files.markdown.read_text()
    for doc in (html, md):
        assert "Summary of findings" in doc and "for the panel to judge" in doc
