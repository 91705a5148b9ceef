"""Reliability (issue 7): kill-during-write, same seed, failing samplers, overwrite
protection, redo from provenance, prior-data conflict, and property tests of the readers.

Fits are small (300-draw chains) and share compiled models within this process; the
numbers asserted are exact equalities (same seed) or structural (status, notices), except
the conflict check's false-alarm rate, whose tolerance is stated where it is used.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from trialsynth.core.files import JOURNAL, commit_files, recover
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import ContrastData, DataError, load
from trialsynth.engines import mcmc as fit_module
from trialsynth.models.conflict import CONFLICT_LEVEL, prior_predictive_check
from trialsynth.models.spec import ModelSpec, resolve_priors
from trialsynth.priors.prior import Prior, PriorError, PriorSet, parse_prior
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit
from trialsynth.results.provenance import ResultError, analysis_key
from trialsynth.workflow.outputs import OutputError, prepare_output

SMALL = ["--draws", "300", "--tune", "300"]
TRIALSYNTH = str(Path(sys.executable).with_name("trialsynth"))


# ---------------------------------------------------------------------- same seed, --from


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """`fit ivig_rm --seed 5` written to a folder (in-process)."""
    folder = tmp_path_factory.mktemp("seeded") / "fit"
    code, _, err = run_cli(["fit", "ivig_rm", *SMALL, "--seed", "5", "--out", folder, "--json"])
    assert code == 0, err
    return folder


@pytest.mark.mcmc
def test_same_seed_gives_byte_identical_outputs(seeded, tmp_path) -> None:
    # A second run in a fresh process (its own compilation) with the same command.
    other = tmp_path / "again"
    cmd = [TRIALSYNTH, "fit", "ivig_rm", *SMALL, "--seed", "5", "--out", str(other), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # summary.json holds no timings: every byte must agree, numbers included.
    assert (other / "summary.json").read_bytes() == (seeded / "summary.json").read_bytes()
    assert (other / "summary.csv").read_bytes() == (seeded / "summary.csv").read_bytes()
    assert json.loads(done.stdout) == json.loads((seeded / "summary.json").read_text())


@pytest.mark.mcmc
def test_other_seed_changes_the_numbers(seeded, tmp_path) -> None:
    code, out, err = run_cli(["fit", "ivig_rm", *SMALL, "--seed", "6", "--json"])
    assert code == 0, err
    saved = json.loads((seeded / "summary.json").read_text())
    assert json.loads(out)["mu"]["mean"] != saved["mu"]["mean"]


@pytest.mark.mcmc
def test_fit_from_redoes_the_saved_analysis(seeded, tmp_path) -> None:
    code, out, err = run_cli(["fit", "--from", seeded, "--json"])
    assert code == 0, err
    redo = json.loads(out)
    assert redo["redo"] == {
        "of": str(seeded),
        "fit_key": redo["fit_key"],
        "same_versions": True,
        "identical": True,
    }
    saved = json.loads((seeded / "summary.json").read_text())
    assert {k: v for k, v in redo.items() if k != "redo"} == saved
    assert "reproduced" in err


def test_fit_from_rebuilds_data_from_the_stored_table(seeded, tmp_path) -> None:
    # The recorded source is gone (a CSV that was deleted): the stored table is used.
    from trialsynth.results.recorded import recorded_trials

    prov = FitResult.load(seeded).provenance | {"data_name": str(tmp_path / "gone.csv")}
    data = recorded_trials(prov, "test")
    assert data.sha256 == prov["data_sha256"]
    assert data.study == tuple(prov["studies"])


def test_fit_from_refuses_changed_data(seeded, tmp_path) -> None:
    from trialsynth.results.recorded import recorded_trials

    prov = FitResult.load(seeded).provenance
    table = json.loads(prov["data_table"])
    table[0]["events_t"] += 1
    bad = prov | {"data_name": "nowhere", "data_table": json.dumps(table)}
    with pytest.raises(ResultError, match="cannot be recovered"):
        recorded_trials(bad, "test")


# ---------------------------------------------------------------------- --force


@pytest.mark.mcmc
def test_same_analysis_may_be_rewritten(seeded) -> None:
    code, _, err = run_cli(["fit", "ivig_rm", *SMALL, "--seed", "5", "--out", seeded])
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "differs"),
    [
        (["fit", "bcg", *SMALL, "--seed", "5"], "differs in data"),
        (["fit", "ivig_rm", *SMALL, "--seed", "7"], "differs in seed"),
        (["fit", "ivig_rm", "--draws", "301", "--tune", "300", "--seed", "5"], "sampler settings"),
        (["fit", "ivig_rm", *SMALL, "--seed", "5", "--tau-prior", "half-normal(1)"], "priors"),
        (["fit", "ivig_rm", *SMALL, "--seed", "5", "--model", "normal-normal"], "model"),
    ],
)
def test_different_analysis_needs_force(seeded, monkeypatch, args, differs) -> None:
    before = (seeded / "summary.json").read_bytes()

    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("sampled before refusing the output folder")

    monkeypatch.setattr(fit_module, "_sample", refuse)
    code, _, err = run_cli([*args, "--out", seeded])
    assert code == 2
    assert f"{seeded} holds a different analysis" in err and differs in err
    assert "--force" in err and "Traceback" not in err
    assert (seeded / "summary.json").read_bytes() == before


@pytest.mark.mcmc
def test_force_overwrites(seeded, tmp_path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(seeded, folder)
    code, _, err = run_cli(["fit", "ivig_rm", *SMALL, "--seed", "8", "--out", folder])
    assert code == 2 and "--force" in err
    code, _, err = run_cli(["fit", "ivig_rm", *SMALL, "--seed", "8", "--out", folder, "--force"])
    assert code == 0, err
    assert json.loads((folder / "summary.json").read_text())["seed"] == 8


def test_run_refuses_a_folder_of_another_analysis(seeded, tmp_path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nsource = "crins2014"\n', encoding="utf-8")
    code, _, err = run_cli(["run", spec, "--out", seeded])
    assert code == 2 and "holds a different analysis" in err and "--force" in err


def test_legacy_summary_without_analysis_key(tmp_path) -> None:
    # Summaries written before analysis keys: same data, model and settings = same analysis.
    prov = {"data_sha256": "abc", "model": {"name": "m"}, "settings": {"seed": 1}}
    (tmp_path / "summary.json").write_text(
        json.dumps({"data_sha256": "abc", "model_spec": {"name": "m"}, "settings": {"seed": 1}})
    )
    prepare_output(tmp_path, prov)
    with pytest.raises(OutputError, match="differs in data"):
        prepare_output(tmp_path, prov | {"data_sha256": "other"})
    prepare_output(tmp_path, prov | {"data_sha256": "other"}, force=True)


def test_unreadable_summary_needs_force(tmp_path) -> None:
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(OutputError, match=r"cannot be read.*--force"):
        prepare_output(tmp_path, {"data_sha256": "x"})
    prepare_output(tmp_path, {"data_sha256": "x"}, force=True)


def test_analysis_key_ignores_versions() -> None:
    prov = {"data_sha256": "a", "model": {}, "priors": {}, "settings": {}, "engine": "mcmc"}
    assert analysis_key(prov | {"versions": {"pymc": "6"}}) == analysis_key(prov)
    assert analysis_key(prov | {"engine": "exact"}) != analysis_key(prov)


# ---------------------------------------------------------------------- kill during write


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import trialsynth.core.files as files
    from trialsynth.results.base import FitResult

    result = FitResult.load(sys.argv[1])
    real_replace, real_write = os.replace, files._write_temp
    step = 0

    def announce():  # say which step is next, then leave time to be killed before it
        global step
        step += 1
        print(f"step {step}", flush=True)
        time.sleep(0.2)

    def slow_replace(a, b):
        announce()
        real_replace(a, b)

    def slow_write(*args):
        announce()
        return real_write(*args)

    os.replace, files._write_temp = slow_replace, slow_write
    result.save(sys.argv[2])
    print("saved", flush=True)
    """
)
#: The steps of a save: 1-3 stage posterior.nc, summary.json, summary.csv under temporary
#: names; 4 stages the journal; 5 renames it into place (the commit point); 6-8 rename the
#: three files. Killed just before step k, the folder must hold (after recovery):
KILL_AT = {1: "old", 5: "old", 6: "new", 8: "new"}


@pytest.fixture(scope="module")
def two_fits(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kill")
    data = load("ivig_rm_secondary")
    out = []
    for seed in (1, 2):
        res = fit(data, settings=SamplerSettings(draws=200, tune=200, seed=seed))
        out.append(res.save(root / f"seed{seed}"))
    return out[0], out[1]


def _state(folder: Path) -> str:
    """'old' or 'new' (by fit_key) after checking the files agree with each other."""
    res = FitResult.load(folder)  # recovers, then checks summary.json against posterior.nc
    return res.provenance["fit_key"]


@pytest.mark.mcmc
def test_kill_during_save_leaves_old_or_new(two_fits, tmp_path) -> None:
    old, new = two_fits
    old_key, new_key = _state(old), _state(new)
    csv_of = {
        old_key: (old / "summary.csv").read_bytes(),
        new_key: (new / "summary.csv").read_bytes(),
    }
    for step, expected in KILL_AT.items():
        target = tmp_path / f"target{step}"
        shutil.copytree(old, target)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(new), str(target)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        for line in child.stdout:  # kill while the child sleeps before this step
            if line.strip() == f"step {step}":
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        # Every file present is whole at every moment (temp + rename) ...
        json.loads((target / "summary.json").read_text())
        # ... and after recovery the three agree: all old or all new, as expected.
        key = _state(target)
        assert key == (old_key if expected == "old" else new_key), step
        assert (target / "summary.csv").read_bytes() == csv_of[key]
        assert not [p for p in target.iterdir() if p.name.startswith(".trialsynth")]


def test_recover_completes_an_interrupted_commit(tmp_path) -> None:
    commit_files(tmp_path, {"a.txt": "old a", "b.txt": "old b"})
    # Simulate a kill after the journal was written and one of two renames was done.
    (tmp_path / ".trialsynth-tmp-b").write_text("new b")
    (tmp_path / "a.txt").write_text("new a")
    (tmp_path / JOURNAL).write_text(
        json.dumps({"moves": [[".trialsynth-tmp-a-gone", "a.txt"], [".trialsynth-tmp-b", "b.txt"]]})
    )
    assert recover(tmp_path)
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert (tmp_path / "b.txt").read_text() == "new b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_uncommitted_temporaries_are_dropped(tmp_path) -> None:
    commit_files(tmp_path, {"a.txt": "old"})
    (tmp_path / ".trialsynth-tmp-a.txt.xyz").write_text("half")  # killed before the journal
    assert not recover(tmp_path)
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_saved_files_have_ordinary_permissions(two_fits) -> None:
    mask = os.umask(0)
    os.umask(mask)
    for name in ("posterior.nc", "summary.json", "summary.csv"):
        assert (two_fits[0] / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_text_written_atomically_has_ordinary_permissions(tmp_path) -> None:
    """sensitivity.json/.csv, report.json and the scenario records go through this one."""
    from trialsynth.core.files import atomic_write_text

    mask = os.umask(0)
    os.umask(mask)
    atomic_write_text(tmp_path / "t.json", "{}\n")
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o666 & ~mask


# ---------------------------------------------------------------------- failing samplers


@pytest.fixture(scope="module")
def diverging_csv(tmp_path_factory) -> Path:
    # Two tiny trials and a very wide heterogeneity prior at a forced low target
    # acceptance: the funnel makes NUTS diverge (21 divergences at this seed).
    path = tmp_path_factory.mktemp("div") / "tiny.csv"
    path.write_text("study,events_t,n_t,events_c,n_c\nA,1,10,0,10\nB,0,12,2,11\n")
    return path


DIVERGING = [
    "--tau-prior", "half-cauchy(5)", "--mu-prior", "normal(0, 10)",
    "--target-accept", "0.6", *SMALL,
]  # fmt: skip


@pytest.mark.mcmc
def test_divergences_trigger_a_reported_refit_and_failure_is_marked(
    diverging_csv, tmp_path
) -> None:
    out = tmp_path / "failed"
    code, stdout, err = run_cli(["fit", diverging_csv, *DIVERGING, "--json", "--out", out])
    assert code == 0, err  # not --strict: a warning, and the numbers are marked
    summary = json.loads(stdout)
    assert summary["refits"] and summary["refits"][0]["target_accept"] == 0.99
    assert "divergent transition" in summary["refits"][0]["reason"]
    assert summary["status"] == "failed" and summary["diagnostics"]["ok"] is False
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"
    with open(out / "summary.csv", newline="") as fh:
        assert {row["status"] for row in csv.DictReader(fh)} == {"failed"}
    assert "marked failed in every output" in err
    assert FitResult.load(out).ok is False


@pytest.mark.mcmc
def test_failed_fit_in_the_table_and_strict_exit(diverging_csv) -> None:
    code, stdout, _ = run_cli(["fit", diverging_csv, *DIVERGING])
    assert code == 0
    assert "CONVERGENCE FAILED" in stdout
    assert "refitted at target_accept 0.99 after" in stdout
    code, _, err = run_cli(["fit", diverging_csv, *DIVERGING, "--strict"])
    assert code == 3 and "failed its convergence checks" in err


# ---------------------------------------------------------------------- prior-data conflict


def test_conflict_is_reported_in_json_and_table() -> None:
    # The exact engine (normal-normal): no sampling. crins2014's pooled log-OR is about
    # -1.6; a prior mu ~ N(3, 0.1) puts it far out in the prior predictive tail.
    args = ["fit", "crins2014", "--model", "normal-normal", "--mu-prior", "normal(3, 0.1)"]
    code, stdout, err = run_cli([*args, "--json"])
    assert code == 0, err
    notes = [n for n in json.loads(stdout)["notices"] if n.startswith("prior-data conflict")]
    assert len(notes) == 1 and "(location)" in notes[0] and "normal(3, 0.1)" in notes[0]
    code, stdout, _ = run_cli(args)
    assert "warning: prior-data conflict (location)" in stdout


def test_heterogeneity_conflict() -> None:
    data = load("bcg")
    spec = ModelSpec()
    priors = resolve_priors(spec, data, PriorSet.from_strings(tau="half-normal(0.05)"))
    check = prior_predictive_check(data, spec, priors, seed=1)
    assert check.p_heterogeneity is not None and check.p_heterogeneity < CONFLICT_LEVEL
    assert any("(heterogeneity)" in n for n in check.notices(priors))


@pytest.mark.parametrize("name", ["ivig_rm", "ivig_rm_secondary", "crins2014", "bcg"])
def test_no_conflict_with_default_priors(name) -> None:
    data = load(name)
    spec = ModelSpec()
    priors = resolve_priors(spec, data, PriorSet())
    check = prior_predictive_check(data, spec, priors, seed=1)
    assert check.notices(priors) == []
    assert check == prior_predictive_check(data, spec, priors, seed=1)  # same seed


def test_conflict_false_alarm_rate_under_the_prior() -> None:
    # Data drawn from the prior itself: each check flags with probability 0.01 per
    # statistic (two statistics: at most 0.02). Over 300 datasets the flagged fraction is
    # below 0.02 + 3 binomial SDs (sqrt(0.02 * 0.98 / 300) = 0.008), i.e. 0.044.
    rng = np.random.default_rng(3)
    spec = ModelSpec(likelihood="normal")
    flagged = 0
    for i in range(300):
        k = 6
        se = rng.uniform(0.2, 0.6, size=k)
        mu, tau = rng.normal(0, 2.82), abs(rng.normal(0, 0.5))
        y = mu + tau * rng.standard_normal(k) + se * rng.standard_normal(k)
        data = ContrastData("sim", [f"t{j}" for j in range(k)], log_or=y, se=se)
        priors = resolve_priors(spec, data, PriorSet())
        flagged += bool(prior_predictive_check(data, spec, priors, seed=i).notices(priors))
    assert flagged / 300 < 0.044


# ---------------------------------------------------------------------- property tests

NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s.strip() != "")


@st.composite
def arm_tables(draw: Any) -> list[tuple[str, int, int, int, int]]:
    names = draw(st.lists(NAME, min_size=2, max_size=6, unique=True))
    rows = []
    for name in names:
        n_t = draw(st.integers(1, 10**6))
        n_c = draw(st.integers(1, 10**6))
        rows.append((name, draw(st.integers(0, n_t)), n_t, draw(st.integers(0, n_c)), n_c))
    return rows


def _write(data: bytes) -> str:
    fd, path = tempfile.mkstemp(suffix=".csv")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arm_tables(), st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_valid_tables_round_trip(rows, bom, newline) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline)
    writer.writerow(["study", "events_t", "n_t", "events_c", "n_c"])
    writer.writerows(rows)
    path = _write(("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8"))
    try:
        data = load(path)
    finally:
        os.unlink(path)
    assert data.study == tuple(r[0] for r in rows)
    assert data.events_t.tolist() == [r[1] for r in rows]
    assert data.n_t.tolist() == [r[2] for r in rows]
    assert data.events_c.tolist() == [r[3] for r in rows]
    assert data.n_c.tolist() == [r[4] for r in rows]


def _load_or_data_error(raw: bytes) -> None:
    path = _write(raw)
    try:
        load(path)  # a TrialData, or ...
    except DataError as e:  # ... one line, never another exception
        assert "\n" not in str(e) and str(e).startswith(path)
    finally:
        os.unlink(path)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_give_data_or_data_error(raw) -> None:
    _load_or_data_error(raw)


CELL = st.one_of(
    st.text(max_size=8),
    st.integers(-5, 10**10).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NA", "1,000", '"', "nan", "-0", "1e400", " 3 ", "\x00"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "study,events_t,n_t,events_c,n_c",
            "study,log_or,se",
            "study,or,lower,upper",
            "ai,n1i,ci,n2i",
        ]
    ),
    st.lists(st.lists(CELL, min_size=0, max_size=7), min_size=0, max_size=5),
    st.sampled_from([",", ";"]),
)
def test_garbage_under_a_valid_header_gives_data_or_data_error(header, rows, sep) -> None:
    text = header + "\n" + "\n".join(sep.join(r) for r in rows) + "\n"
    _load_or_data_error(text.encode("utf-8", errors="surrogatepass"))


PRIOR_TEXT = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scale, name, args: f"{scale}{name}({', '.join(args)})",
        st.sampled_from(["", "tau2:", "precision:", "foo:", "TAU2:"]),
        st.sampled_from(
            ["normal", "half-normal", "half-cauchy", "half-t", "uniform", "log-normal",
             "logistic", "exponential", "gamma", "student-t", "flat", "turner", "foo",
             "uniform-shrinkage", "dumouchel"]
        ),
        st.lists(
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True).map(repr),
                st.integers(-3, 100).map(str),
                st.text(max_size=5),
            ),
            max_size=4,
        ),
    ),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(PRIOR_TEXT, st.sampled_from(["mu", "tau", "baseline"]))
def test_random_prior_strings_give_prior_or_prior_error(text, role) -> None:
    try:
        prior = parse_prior(text, role)
    except PriorError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(prior, Prior)
    assert all(np.isfinite(p) for p in prior.params)  # nothing non-finite gets through
    assert parse_prior(str(prior), role) == prior  # what is printed parses back
