"""Tests of the command line, called in-process: ``trialsynth.cli.app.main([...])``.

Fitting compiles a model (several seconds), so the one real fit of ``ivig_rm`` is a
module-scoped fixture reused by every test that reads its output; later fits of the same
data and priors in this process reuse the compiled model. Contract: INTERFACE.md (exit
codes 0/2/3, one line on stderr per error, the ``fit --json`` keys).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import typer.main

from conftest import run_cli
from trialsynth.cli import app as cli
from trialsynth.cli import render
from trialsynth.cli.app import main
from trialsynth.data import load
from trialsynth.results.base import FitResult

MODELS = Path(__file__).resolve().parents[1] / "models"
FIT_ARGS = ["fit", "ivig_rm", "--json", "--draws", "500", "--seed", "1"]
STAT_KEYS = {"mean", "sd", "median", "q025", "q975"}
OR_KEYS = {"median", "q025", "q975"}
#: Top-level keys of ``fit --json`` named in INTERFACE.md (more may be added beside them).
INTERFACE_KEYS = {
    "model",
    "engine",
    "k",
    "priors",
    "mu",
    "tau",
    "theta_new",
    "or",
    "or_new",
    "p_mu_gt_0",
    "p_theta_new_gt_0",
    "diagnostics",
    "frequentist",
    "seed",
    "data_sha256",
    "versions",
}
DIAGNOSTIC_KEYS = {"r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences"}
#: Quantiles of exp(draws) versus exp(quantiles of draws): equal except where np.quantile
#: interpolates between two neighbouring draws (median of an even number of draws), where
#: they differ by O((gap between the draws)^2), far below this.
INTERP_RTOL = 1e-4


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


def call(args: list[str]) -> Run:
    """:func:`conftest.run_cli` as a :class:`Run` (usable in module fixtures)."""
    return Run(*run_cli(args))


def assert_one_line_error(err: str) -> str:
    """stderr is exactly one line ``trialsynth: error: ...``, without a traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trialsynth: error: ")
    return lines[0].removeprefix("trialsynth: error: ")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Run, Path]:
    """``trialsynth fit ivig_rm --json --out DIR --draws 500 --seed 1`` (compiles once)."""
    folder = tmp_path_factory.mktemp("fit") / "ivig_rm"
    run = call([*FIT_ARGS, "--out", str(folder)])
    assert run.code == 0, run.err
    return run, folder


# ---------------------------------------------------------------------- fit --json


@pytest.mark.mcmc
def test_fit_json_has_interface_keys(fitted) -> None:
    s = fitted[0].json
    assert INTERFACE_KEYS <= set(s)
    assert set(s["priors"]) == {"mu", "tau", "baseline"}  # binomial-normal: all three
    for q in ("mu", "tau", "theta_new"):
        assert set(s[q]) == STAT_KEYS, q
    for q in ("or", "or_new"):
        assert set(s[q]) == OR_KEYS, q
    assert DIAGNOSTIC_KEYS <= set(s["diagnostics"])
    assert isinstance(s["versions"], dict)
    assert {"python", "trialsynth", "pymc", "nutpie", "numpy"} <= set(s["versions"])


def test_fit_json_values(fitted) -> None:
    s = fitted[0].json
    assert s["model"] == "binomial-normal"
    assert s["engine"] == "mcmc"
    assert s["k"] == 8  # ivig_rm without Stephenson 1998 (no per-arm counts)
    assert s["seed"] == 1
    assert s["data_sha256"] == load("ivig_rm").sha256
    assert re.fullmatch(r"[0-9a-f]{64}", s["data_sha256"])
    assert s["priors"] == {
        "mu": "normal(0, 2.82)",
        "tau": "half-normal(0.5)",
        "baseline": "normal(0, 5)",
    }
    for q in ("mu", "tau", "theta_new"):
        d = s[q]
        assert d["q025"] < d["median"] < d["q975"], q
        assert d["q025"] <= d["mean"] <= d["q975"], q
        assert d["sd"] > 0, q
    assert s["tau"]["q025"] >= 0
    # a new trial's effect is at least as uncertain as the pooled effect
    assert s["theta_new"]["sd"] >= s["mu"]["sd"]
    assert s["theta_new"]["q975"] - s["theta_new"]["q025"] >= s["mu"]["q975"] - s["mu"]["q025"]
    for p in ("p_mu_gt_0", "p_theta_new_gt_0"):
        assert 0 <= s[p] <= 1
    # OR-scale quantiles are exp of the log-OR quantiles (quantiles commute with exp)
    for k in OR_KEYS:
        assert s["or"][k] == pytest.approx(math.exp(s["mu"][k]), rel=1e-6)
        assert s["or_new"][k] == pytest.approx(math.exp(s["theta_new"][k]), rel=1e-6)
    d = s["diagnostics"]
    assert 0.99 < d["r_hat_max"] < 1.2
    assert 0 < d["ess_tail_min"] and 0 < d["ess_bulk_min"]
    assert isinstance(d["divergences"], int) and d["divergences"] >= 0
    # the status agrees with the checks (500 draws may honestly fail R-hat <= 1.01)
    assert s["status"] == ("ok" if not d["problems"] else "failed")


def test_fit_writes_fit_folder(fitted) -> None:
    run, folder = fitted
    for name in ("posterior.nc", "summary.json", "summary.csv", "forest.png"):
        assert (folder / name).is_file(), name
        assert (folder / name).stat().st_size > 0, name
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == run.json
    assert (folder / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = (folder / "summary.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"quantity", "mean", "sd", "median", "q025", "q975"} <= set(header)


def test_saved_fit_loads_with_same_summary(fitted) -> None:
    run, folder = fitted
    result = FitResult.load(folder)
    assert json.loads(json.dumps(result.summary())) == run.json
    # the posterior holds the INTERFACE variables, theta labelled by study
    mu = result.draws("mu")
    assert mu.shape == (4, 500)
    theta = result.tree["posterior"]["theta"]
    assert list(theta["study"].values) == list(load("ivig_rm").study)
    assert theta.shape == (4, 500, 8)
    assert result.draws("theta_new").shape == (4, 500)
    # the summary is recomputable from the saved draws
    s = run.json
    assert s["p_mu_gt_0"] == float(np.mean(mu > 0))
    assert s["mu"]["median"] == pytest.approx(float(np.median(mu)), rel=1e-12)
    assert s["or"]["median"] == pytest.approx(float(np.median(np.exp(mu))), rel=INTERP_RTOL)
    tau = result.draws("tau")
    assert s["tau"]["mean"] == pytest.approx(float(tau.mean()), rel=1e-12)


@pytest.mark.mcmc
def test_same_seed_gives_identical_summary(fitted) -> None:
    again = call(FIT_ARGS)  # reuses the compiled model
    assert again.code == 0, again.err
    assert again.json == fitted[0].json


@pytest.mark.mcmc
def test_other_seed_gives_other_draws(fitted) -> None:
    other = call([*FIT_ARGS[:-1], "2"])
    assert other.code == 0, other.err
    s = other.json
    assert s["seed"] == 2
    assert s["mu"]["mean"] != fitted[0].json["mu"]["mean"]
    # ... of the same posterior: two estimates of its median differ by far less than 1 SD
    assert abs(s["mu"]["median"] - fitted[0].json["mu"]["median"]) < s["mu"]["sd"]


@pytest.mark.mcmc
def test_fit_human_output_prints_priors(capsys) -> None:
    code = main(["fit", "ivig_rm", "--draws", "100", "--tune", "100", "--seed", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    text = " ".join(captured.out.split())  # the console may wrap long lines
    assert "pooled OR, exp(mu)" in text
    assert "mu ~ normal(0, 2.82)" in text
    assert "tau ~ half-normal(0.5)" in text
    assert "baseline ~ normal(0, 5)" in text


# ---------------------------------------------------------------------- --strict


@pytest.mark.mcmc
def test_strict_exits_3_on_failed_checks(capsys, fitted) -> None:
    # 20 draws x 4 chains cannot reach ESS >= 400: an honest failure of the checks
    args = ["fit", "ivig_rm", "--json", "--draws", "20", "--tune", "20", "--seed", "1"]
    code = main([*args, "--strict"])
    captured = capsys.readouterr()
    assert code == 3
    assert "Traceback" not in captured.err
    s = json.loads(captured.out)
    assert s["status"] == "failed"
    assert s["diagnostics"]["ok"] is False
    assert s["diagnostics"]["ess_bulk_min"] < 400
    assert any("ESS" in p for p in s["diagnostics"]["problems"])
    # without --strict the same failed fit exits 0 but stays marked failed
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0
    assert json.loads(captured.out)["status"] == "failed"
    assert "failed its convergence checks" in " ".join(captured.err.split())


@pytest.mark.mcmc
def test_strict_failure_message_is_one_line(capsys, monkeypatch, fitted) -> None:
    monkeypatch.setattr(render.err, "width", 80)  # stderr to a pipe or log file
    code = main(["fit", "ivig_rm", "--json", "--draws", "20", "--tune", "20", "--strict"])
    assert code == 3
    lines = capsys.readouterr().err.splitlines()
    failure = [ln for ln in lines if "convergence checks" in ln]
    assert len(failure) == 1
    assert "marked failed in every output" in failure[0]


# ---------------------------------------------------------------------- run


def _spec_copy(tmp_path: Path, out: Path) -> Path:
    """models/ivig_rm.toml with [output] dir in tmp_path, small draws and no [sensitivity].

    The tests below are of reuse, refit and seeds; `run` with the spec's sensitivity grid is
    tested in test_sensitivity.py and, end to end in fresh processes, in test_same_draws.py.
    """
    text = (MODELS / "ivig_rm.toml").read_text(encoding="utf-8")
    text = text[: text.index("\n# Sensitivity:")] + "\n"
    for pattern, repl in [
        (r'(?m)^dir = ".*"$', f"dir = {json.dumps(str(out))}"),
        (r"(?m)^draws = \d+$", "draws = 300"),
        (r"(?m)^tune = \d+$", "tune = 300"),
    ]:
        text, n = re.subn(pattern, repl, text)
        assert n == 1, pattern
    path = tmp_path / "ivig_rm.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.mcmc
def test_run_writes_then_reuses_then_refits(tmp_path, fitted) -> None:
    out = tmp_path / "reports" / "ivig_rm"
    spec = _spec_copy(tmp_path, out)

    first = call(["run", str(spec), "--json"])
    assert first.code == 0, first.err
    assert "reusing" not in first.err
    for name in ("posterior.nc", "summary.json", "summary.csv", "forest.png"):
        assert (out / name).is_file(), name
    s = first.json
    assert s["k"] == 8
    assert s["settings"]["draws"] == 300
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == s
    inode = (out / "posterior.nc").stat().st_ino

    second = call(["run", str(spec), "--json"])
    assert second.code == 0, second.err
    assert "reusing" in second.err
    assert second.json == s
    assert (out / "posterior.nc").stat().st_ino == inode  # not rewritten
    assert not list((out / "figures").glob("*.png"))  # the report's figures: SVG by default

    # PNGs asked for: the same fit, its report drawn again with them
    with_png = call(["run", str(spec), "--json", "--figure-format", "svg,png"])
    assert with_png.code == 0, with_png.err
    assert "reusing" in with_png.err and with_png.json == s
    assert (out / "figures" / "forest.png").is_file()
    assert "![Forest plot](figures/forest.png)" in (out / "report.md").read_text()

    inode = (out / "posterior.nc").stat().st_ino  # the outputs were written again
    third = call(["run", str(spec), "--json", "--refit"])
    assert third.code == 0, third.err
    assert "reusing" not in third.err
    assert (out / "posterior.nc").stat().st_ino != inode  # sampled and saved again
    assert third.json == s  # same seed, same numbers

    # another seed is another fit: never reused, and not written over this one without --force
    refused = call(["run", str(spec), "--json", "--seed", "5"])
    assert refused.code == 2 and "differs in seed" in refused.err
    fourth = call(["run", str(spec), "--json", "--seed", "5", "--force"])
    assert fourth.code == 0, fourth.err
    assert "reusing" not in fourth.err
    assert fourth.json["seed"] == 5
    assert fourth.json["mu"] != s["mu"]


@pytest.mark.mcmc
def test_run_out_option_overrides_spec(tmp_path, fitted) -> None:
    spec = _spec_copy(tmp_path, tmp_path / "from_spec")
    other = tmp_path / "elsewhere"
    res = call(["run", str(spec), "--json", "--out", str(other)])
    assert res.code == 0, res.err
    assert (other / "summary.json").is_file()
    assert not (tmp_path / "from_spec").exists()


# ---------------------------------------------------------------------- errors: exit 2


def _bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(
        "study,events_t,n_t,events_c,n_c\nA 2001,12,10,5,12\nB 2002,4,20,6,21\n",
        encoding="utf-8",
    )
    return path


def _one_trial_csv(tmp_path: Path) -> Path:
    path = tmp_path / "one.csv"
    path.write_text("study,events_t,n_t,events_c,n_c\nA 2001,12,20,5,18\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["fit", "no_such_dataset"],
            "no_such_dataset: no such file, and not a shipped dataset name "
            "(shipped datasets: bcg, crins2014, ivig_rm, ivig_rm_secondary)",
        ),
        (
            ["fit", "ivig_rm", "--tau-prior", "foo(1)"],
            "--tau-prior: unknown prior 'foo' in 'foo(1)'; valid: half-normal(sigma), "
            "half-cauchy(beta), "
            "half-t(nu, sigma), uniform(lower, upper), log-normal(mu, sigma), exponential(lam), "
            "gamma(alpha, beta), inverse-gamma(alpha, beta), uniform-shrinkage, dumouchel, "
            "turner(OUTCOME, COMPARISON), "
            "prefixes tau2: and precision: (e.g. tau2:uniform(0, 50), "
            "precision:gamma(0.001, 0.001))",
        ),
        (
            ["fit", "ivig_rm", "--mu-prior", "half-normal(1)"],
            "--mu-prior: 'half-normal(1)' is not a valid mu prior; valid: normal(mu, sigma), "
            "logistic(mu, s), student-t(nu, mu, sigma), uniform(lower, upper), flat()",
        ),
        (
            ["fit", "ivig_rm", "--model", "random"],
            "Invalid value for '--model': 'random' is not one of "
            "'binomial-normal', 'normal-normal', 'common-effect'. (see 'trialsynth fit --help')",
        ),
        (
            ["fit", "ivig_rm", "--random-effects", "cauchy"],
            "Invalid value for '--random-effects': 'cauchy' is not one of "
            "'normal', 'student-t'. (see 'trialsynth fit --help')",
        ),
        (["fit", "ivig_rm", "--draws", "0"], "draws must be a positive integer, got 0"),
        (["fit", "ivig_rm", "--draws", "many"], None),
        (["fit", "ivig_rm", "--no-such-option"], None),
        (["fit"], "give DATA (a CSV path or a shipped dataset name) or --from FIT"),
        (["run", "missing_spec.toml"], "missing_spec.toml: spec file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, message) -> None:
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2
    got = assert_one_line_error(captured.err)
    if message is not None:
        assert got.lower() == message.lower()
    assert captured.out == ""


def test_unknown_option_names_the_option(capsys) -> None:
    code = main(["fit", "ivig_rm", "--no-such-option"])
    got = assert_one_line_error(capsys.readouterr().err)
    assert code == 2
    assert got.startswith("No such option: --no-such-option")
    assert got.endswith("(see 'trialsynth fit --help')")


def test_bad_csv_exits_2(capsys, tmp_path) -> None:
    path = _bad_csv(tmp_path)
    code = main(["fit", str(path), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert assert_one_line_error(captured.err) == (
        f"{path} row 1, column 'events_t': events (12) exceed the arm size n_t (10)"
    )
    assert captured.out == ""


def test_bad_spec_exits_2(capsys, tmp_path) -> None:
    spec = tmp_path / "typo.toml"
    spec.write_text('[data]\nsource = "ivig_rm"\n[priors]\ntua = "half-cauchy(1)"\n')
    code = main(["run", str(spec)])
    assert code == 2
    assert assert_one_line_error(capsys.readouterr().err) == (
        f"{spec} [priors]: unknown key 'tua'; valid: mu, tau, baseline, beta, nu"
    )


def test_one_trial_binomial_normal_is_an_error(capsys, tmp_path) -> None:
    path = _one_trial_csv(tmp_path)
    code = main(["fit", str(path), "--json"])
    assert code == 2
    assert assert_one_line_error(capsys.readouterr().err) == (
        f"{path}: 1 trial left to analyse, at least 2 needed"
    )


@pytest.mark.mcmc
def test_one_trial_common_effect_is_allowed(tmp_path) -> None:
    path = _one_trial_csv(tmp_path)
    res = call(
        [
            *("fit", str(path), "--model", "common-effect", "--json"),
            *("--draws", "300", "--tune", "300", "--seed", "3"),
        ]
    )
    assert res.code == 0, res.err
    s = res.json
    assert s["model"] == "common-effect"
    assert s["k"] == 1
    assert set(s["priors"]) == {"mu", "baseline"}  # no heterogeneity prior
    assert s["tau"]["sd"] == 0 and s["tau"]["median"] == 0
    # no heterogeneity: a new trial's effect is the pooled effect
    assert s["theta_new"] == s["mu"]
    # sanity against the data: OR = (12/8) / (5/13) = 3.9; the posterior median is near it
    assert 1.5 < s["or"]["median"] < 10


# ---------------------------------------------------------------------- --help


REGISTERED = sorted(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]


def test_fit_and_run_are_commands() -> None:
    assert {"fit", "run"} <= set(REGISTERED)


@pytest.mark.parametrize("command", REGISTERED)
def test_command_help_exits_0(capsys, command) -> None:
    code = main([command, "--help"])
    captured = capsys.readouterr()
    assert code == 0
    assert f"Usage: trialsynth {command}" in captured.out
    assert captured.err == ""


def test_root_help_exits_0(capsys) -> None:
    code = main(["--help"])
    captured = capsys.readouterr()
    assert code == 0
    assert "Usage: trialsynth" in captured.out
    for command in REGISTERED:
        assert command in captured.out


def test_unknown_command_hint(capsys) -> None:
    code = main(["frobnicate"])
    assert code == 2
    assert assert_one_line_error(capsys.readouterr().err) == (
        "No such command 'frobnicate'. (see 'trialsynth --help')"
    )


# ---------------------------------------------------------------------- internal errors: exit 1


def _bug(*args, **kwargs):
    raise KeyError("no such key")


def test_a_bug_is_an_internal_error_with_a_traceback_file(monkeypatch, tmp_path) -> None:
    from trialsynth.workflow import fit as workflow

    monkeypatch.setenv("TRIALSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(workflow, "plan_fit", _bug)
    code, out, err = run_cli(["fit", "ivig_rm", "--model", "normal-normal"])
    assert code == 1  # not 2: the input was fine
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(
        "trialsynth: internal error (a bug, not your input): KeyError: 'no such key'; traceback in "
    )
    assert line.endswith("; --debug prints it")
    written = Path(line.split("traceback in ")[1].split("; ")[0])
    assert written.parent == tmp_path / "cache" / "crashes"
    text = written.read_text(encoding="utf-8")
    assert text.startswith("trialsynth fit ivig_rm --model normal-normal\n")
    assert "Traceback (most recent call last)" in text and "KeyError: 'no such key'" in text


def test_debug_prints_the_traceback_of_a_bug(monkeypatch, tmp_path) -> None:
    from trialsynth.workflow import fit as workflow

    monkeypatch.setenv("TRIALSYNTH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(workflow, "plan_fit", _bug)
    code, _, err = run_cli(["--debug", "fit", "ivig_rm", "--model", "normal-normal"])
    assert code == 1
    assert "Traceback (most recent call last)" in err and "in _bug" in err
    assert err.splitlines()[-1].startswith("trialsynth: internal error (a bug, not your input)")


def test_an_oserror_of_the_code_is_a_bug_not_bad_input(monkeypatch, tmp_path) -> None:
    # cli.main used to catch every OSError and ValueError as the user's (exit 2)
    from trialsynth.workflow import fit as workflow

    def missing(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/package/template.j2")

    monkeypatch.setenv("TRIALSYNTH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(workflow, "plan_fit", missing)
    code, _, err = run_cli(["fit", "ivig_rm", "--model", "normal-normal"])
    assert code == 1 and "internal error" in err and "FileNotFoundError" in err


def test_debug_prints_the_traceback_of_bad_input_and_keeps_exit_2() -> None:
    code, _, err = run_cli(["--debug", "fit", "no_such_dataset"])
    assert code == 2
    assert "Traceback (most recent call last)" in err and "DataError" in err
    assert err.splitlines()[-1].startswith("trialsynth: error: no_such_dataset: no such file")


def test_every_user_error_class_is_a_trialsynth_error() -> None:
    import inspect

    import trialsynth
    from trialsynth.core.errors import TrialsynthError

    root = Path(trialsynth.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        if module.endswith("__init__") or ".explore." in module or module.endswith("__main__"):
            continue
        names += [
            (module, n)
            for n, obj in inspect.getmembers(__import__(module, fromlist=["_"]), inspect.isclass)
            if n.endswith("Error")
            and obj.__module__ == module
            and not issubclass(obj, TrialsynthError)
        ]
    assert names == []


# ---------------------------------------------------------------------- choices


def test_choice_enums_are_the_library_lists() -> None:
    from trialsynth.analysis.absolute import BENEFITS
    from trialsynth.analysis.assurance import CRITERIA
    from trialsynth.analysis.updated_meta import UPDATED_CRITERIA
    from trialsynth.cli import options
    from trialsynth.core.settings import ENGINES
    from trialsynth.models.spec import LIKELIHOODS, MODELS, RANDOM_EFFECTS, SUBGROUP_TAU
    from trialsynth.workflow.fit import FIT_ENGINES

    assert [m.value for m in options.Model] == list(MODELS)
    assert [m.value for m in options.Likelihood] == list(LIKELIHOODS)
    assert [m.value for m in options.RandomEffects] == list(RANDOM_EFFECTS)
    assert [m.value for m in options.SubgroupTau] == list(SUBGROUP_TAU)
    assert [m.value for m in options.FitEngine] == list(FIT_ENGINES)
    assert {m.value for m in options.Engine} == set(ENGINES)
    assert [m.value for m in options.Benefit] == list(BENEFITS)
    assert [m.value for m in options.Criterion] == [*CRITERIA, *UPDATED_CRITERIA]


def test_help_starts_without_scipy_or_pymc() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\nfrom trialsynth.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    code = main(['fit', '--help'])\n"
        "print(code, sorted(m for m in ('scipy', 'pymc', 'xarray', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "0 []"


def test_console_exits_with_mains_code_after_freezing(monkeypatch) -> None:
    """The ``trialsynth`` script: main's exit code, rarer full collections, a frozen teardown."""
    import gc

    from trialsynth.cli import app as app_module

    monkeypatch.setattr(app_module, "main", lambda: 3)
    threshold = gc.get_threshold()
    try:
        with pytest.raises(SystemExit) as exited:
            app_module.console()
        assert exited.value.code == 3 and gc.get_freeze_count() > 0
        assert gc.get_threshold() == (*threshold[:2], app_module.FULL_COLLECTION_EVERY)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_installed_script_keeps_exit_codes_and_output(tmp_path) -> None:
    """Through the console script: stdout flushed, 0 on success, 2 and one line on bad input."""
    import subprocess
    import sys
    from pathlib import Path

    script = str(Path(sys.executable).with_name("trialsynth"))
    ok = subprocess.run([script, "fit", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "Usage: trialsynth fit" in ok.stdout
    bad = subprocess.run(
        [script, "fit", str(tmp_path / "nope.csv")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "error" in bad.stderr


# ---------------------------------------------------------------------- user paths: exit 2


@pytest.fixture(scope="module")
def exact_fit(tmp_path_factory) -> Path:
    """``fit ivig_rm --model normal-normal --out DIR`` (exact engine: no sampling)."""
    folder = tmp_path_factory.mktemp("exact") / "fit"
    code, _, err = run_cli(["fit", "ivig_rm", "--model", "normal-normal", "--out", folder])
    assert code == 0, err
    return folder


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["design", "--n-per-arm", "100", "--control-rate", "0.5", "--sims", "400"], "--plot"),
        (["report"], "--out"),
    ],
)
def test_an_unwritable_user_path_is_bad_input(exact_fit, tmp_path, command, option) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    name, *rest = command
    code, _, err = run_cli([name, exact_fit, *rest, option, blocker / "x"])
    assert code == 2
    assert assert_one_line_error(err) == (
        f"{option} {blocker if option == '--plot' else blocker / 'x'}: "
        + (
            "is a file, not a folder"
            if option == "--plot"
            else f"{blocker} is a file, so no folder can be made in it"
        )
    )
