"""The catalogue of hostile inputs (tests/bad_inputs/cases.toml) through every entry point.

Each error case must give, through the CLI (called in-process), exactly one stderr line
``trialsynth: error: ...`` containing the expected message and naming where (file, spec or
folder), exit code 2 and no traceback; through the Python API the same message as an
exception. Each accepted case must give the data of its clean twin (same sha256) or carry
its notice. Data errors are raised before any model is compiled; the FIT-folder cases
share one small saved fit (compiled once).
"""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import run_cli
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import DataError, load
from trialsynth.engines import mcmc as fit_module
from trialsynth.models.analysis import SpecError, load_spec
from trialsynth.models.spec import ModelError
from trialsynth.priors.prior import PriorError, parse_prior
from trialsynth.results.base import FitResult
from trialsynth.results.fitting import fit
from trialsynth.results.provenance import ResultError, fit_key

HERE = Path(__file__).resolve().parent / "bad_inputs"
CASES: list[dict[str, Any]] = tomllib.loads((HERE / "cases.toml").read_text())["case"]


def case_id(case: dict[str, Any]) -> str:
    return case.get("file") or case.get("prior") or case["name"]


def cases(kind: str, expect: str | None = None) -> list[Any]:
    return [
        pytest.param(c, id=case_id(c))
        for c in CASES
        if c["kind"] == kind and (expect is None or c["expect"] == expect)
    ]


@dataclass
class Run:
    code: int
    out: str
    err: str


def call(args: list[Any]) -> Run:
    return Run(*run_cli(args))


def error_line(run: Run) -> str:
    """The single error line of a failed command (notes before it are allowed)."""
    assert run.code == 2, (run.code, run.err)
    assert "Traceback" not in run.err and "Traceback" not in run.out
    lines = [ln for ln in run.err.splitlines() if not ln.startswith("note: ")]
    assert len(lines) == 1, run.err
    assert lines[0].startswith("trialsynth: error: ")
    return lines[0]


@pytest.fixture(autouse=True)
def no_sampling(monkeypatch):
    """Every error here must come before sampling: a fit reaching nutpie is a failure."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was sampled before the input error was found")

    monkeypatch.setattr(fit_module, "_sample", refuse)


def write_spec(tmp_path: Path, source: Path | str, extra: str = "") -> Path:
    spec = tmp_path / "analysis.toml"
    spec.write_text(f'[data]\nsource = "{source}"\n{extra}', encoding="utf-8")
    return spec


def test_catalogue_is_complete() -> None:
    files = {c["file"] for c in CASES if "file" in c}
    on_disk = {p.name for p in HERE.iterdir() if p.suffix in (".csv", ".toml", ".rm5")}
    on_disk -= {"cases.toml", "clean.csv"}
    assert files == on_disk  # every bad file has an expected outcome, and vice versa
    assert all(c["expect"] in ("error", "accept") for c in CASES)
    assert all("message" in c for c in CASES if c["expect"] == "error")


# ---------------------------------------------------------------------- data files


@pytest.mark.parametrize("case", cases("data", "error"))
def test_bad_data_cli(case: dict[str, Any], tmp_path: Path) -> None:
    path = HERE / case["file"]
    line = error_line(call(["fit", path, "--out", tmp_path / "out"]))
    assert case["message"] in line
    assert str(path) in line  # names the file


@pytest.mark.parametrize("case", cases("data", "error"))
def test_bad_data_python(case: dict[str, Any]) -> None:
    path = HERE / case["file"]
    if case.get("api") == "fit":
        with pytest.raises(ModelError) as e:
            fit(load(path), settings=SamplerSettings(draws=10, tune=10))
    else:
        with pytest.raises(DataError) as e:
            load(path)
    assert case["message"] in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("case", cases("data", "error"))
def test_bad_data_spec(case: dict[str, Any], tmp_path: Path) -> None:
    path = HERE / case["file"]
    spec = write_spec(tmp_path, path)
    line = error_line(call(["run", spec, "--out", tmp_path / "out"]))
    assert case["message"] in line


@pytest.mark.parametrize("case", cases("data", "accept"))
def test_accepted_data_every_entry_point(case: dict[str, Any], tmp_path: Path) -> None:
    path = HERE / case["file"]
    data = load(path)
    from_spec = load(load_spec(write_spec(tmp_path, path)).data_source())
    assert from_spec.sha256 == data.sha256
    if "same_as" in case:
        # Same studies, counts and covariates as the clean file: the quirk changed nothing.
        assert data.sha256 == load(HERE / case["same_as"]).sha256
    if "notice" in case:
        assert any(case["notice"] in n for n in data.notices)


def test_all_zero_events_notice_reaches_the_cli() -> None:
    # The exact engine (normal-normal) needs no sampling; the notice is printed and kept.
    run = call(["fit", HERE / "all_zero_events.csv", "--model", "normal-normal", "--json"])
    assert run.code == 0, run.err
    assert "no events in any arm" in run.err
    assert any("no events in any arm" in n for n in json.loads(run.out)["notices"])


def test_one_trial_is_accepted_by_the_common_effect_model() -> None:
    data = load(HERE / "one_trial.csv", min_trials=1)
    assert data.k == 1


def test_huge_counts_work_with_the_normal_normal_model() -> None:
    # The exact engine (no sampling): finite numbers, and with se ~ 1e-4 the trial effects
    # are the observed log-ORs (shrinkage below 1e-3 on the log-OR scale).
    run = call(["fit", HERE / "huge_counts.csv", "--model", "normal-normal", "--json"])
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    data = load(HERE / "huge_counts.csv")
    y = data.contrasts().y
    for t, yi in zip(summary["theta"], y, strict=True):
        assert abs(t["median"] - yi) < 1e-3
    for q in ("mu", "tau", "theta_new"):
        assert all(np.isfinite(v) for v in summary[q].values())
    for method in ("mh", "dl", "reml"):
        assert np.isfinite(summary["frequentist"][method]["or"])


# ---------------------------------------------------------------------- priors


@pytest.mark.parametrize("case", cases("prior"))
def test_bad_prior_every_entry_point(case: dict[str, Any], tmp_path: Path) -> None:
    role, text = case["role"], case["prior"]
    with pytest.raises(PriorError) as e:
        parse_prior(text, role)
    assert case["message"] in str(e.value)
    option = f"--{role}-prior"
    line = error_line(call(["fit", "ivig_rm", option, text]))
    assert case["message"] in line and option in line
    spec = write_spec(tmp_path, "ivig_rm", f"[priors]\n{role} = {json.dumps(text)}\n")
    line = error_line(call(["run", spec, "--out", tmp_path / "out"]))
    assert case["message"] in line and str(spec) in line


# ---------------------------------------------------------------------- specs


@pytest.mark.parametrize("case", cases("spec"))
def test_bad_spec(case: dict[str, Any], tmp_path: Path) -> None:
    path = HERE / case["file"]
    line = error_line(call(["run", path, "--out", tmp_path / "out"]))
    assert case["message"] in line
    assert str(path) in line
    if case.get("api") == "load_spec":
        with pytest.raises(SpecError) as e:
            load_spec(path)
        assert case["message"] in str(e.value)


# ---------------------------------------------------------------------- options


@pytest.mark.parametrize("case", cases("option"))
def test_bad_option(case: dict[str, Any]) -> None:
    args = [a.replace("{dir}", str(HERE)) for a in case["args"]]
    line = error_line(call(args))
    assert case["message"] in line


# ---------------------------------------------------------------------- output folders


@pytest.mark.parametrize("case", cases("output"))
def test_unwritable_output(case: dict[str, Any], tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    out = case["out"].replace("{file}", str(blocker))
    line = error_line(call(["fit", "ivig_rm", "--out", out]))
    assert case["message"] in line and out in line
    spec = write_spec(tmp_path, "ivig_rm", f'[output]\ndir = "{out}"\n')
    line = error_line(call(["run", spec]))
    assert case["message"] in line and "[output] dir" in line
    assert blocker.read_text() == "not a folder\n"


# ---------------------------------------------------------------------- FIT folders


@pytest.fixture(scope="module")
def saved_fits(tmp_path_factory) -> tuple[Path, Path]:
    """Two small saved fits of ivig_rm (seeds 1 and 2): the second donates a summary."""
    root = tmp_path_factory.mktemp("fits")
    data = load("ivig_rm")
    folders = []
    for seed in (1, 2):
        res = fit(data, settings=SamplerSettings(draws=200, tune=200, seed=seed))
        folders.append(res.save(root / f"seed{seed}"))
    return folders[0], folders[1]


def _rewrite_provenance(folder: Path, change: dict[str, Any], rehash: bool) -> None:
    import xarray as xr

    nc = folder / "posterior.nc"
    with xr.open_datatree(nc, engine="h5netcdf") as opened:
        tree = opened.load()
    prov = json.loads(tree.attrs["trialsynth"])
    for key, value in change.items():  # "settings.seed" sets a nested field
        *path, last = key.split(".")
        target = prov
        for part in path:
            target = target[part]
        target[last] = value
    if rehash:
        prov["fit_key"] = fit_key(prov)
        summary = json.loads((folder / "summary.json").read_text())
        summary["fit_key"] = prov["fit_key"]
        (folder / "summary.json").write_text(json.dumps(summary))
    tree.attrs["trialsynth"] = json.dumps(prov, sort_keys=True)
    nc.unlink()
    tree.to_netcdf(nc, engine="h5netcdf")


def damage(kind: str, good: Path, other: Path, target: Path) -> Path:
    shutil.copytree(good, target)
    nc = target / "posterior.nc"
    match kind:
        case "format":
            _rewrite_provenance(target, {"format": 1}, rehash=True)
        case "edit":
            # the seed that made the draws, changed without updating the hash
            _rewrite_provenance(target, {"settings.seed": 999}, rehash=False)
        case "edit_seed":
            # the reported seed (not itself hashed) changed alone
            _rewrite_provenance(target, {"seed": 999}, rehash=False)
        case "truncate":
            raw = nc.read_bytes()
            nc.write_bytes(raw[: len(raw) // 2])
        case "garbage":
            nc.write_bytes(b"this is not a netCDF file\n" * 50)
        case "no_summary":
            (target / "summary.json").unlink()
        case "bad_summary":
            (target / "summary.json").write_text('{"diagnostics": ')
        case "mixed":
            shutil.copy(other / "summary.json", target / "summary.json")
        case "empty":
            shutil.rmtree(target)
            target.mkdir()
        case _:
            raise ValueError(kind)
    return target


@pytest.mark.parametrize("case", cases("fit"))
@pytest.mark.mcmc
def test_damaged_fit_folder(case: dict[str, Any], saved_fits, tmp_path: Path) -> None:
    folder = damage(case["damage"], *saved_fits, tmp_path / "fit")
    for args in (["query", folder, "P(OR > 1)"], ["fit", "--from", folder]):
        line = error_line(call(args))
        assert case["message"] in line and str(folder) in line
    with pytest.raises(ResultError) as e:
        FitResult.load(folder)
    assert case["message"] in str(e.value)


def test_the_good_fit_folder_loads(saved_fits) -> None:
    # The damage above is what fails: the undamaged folder passes every check.
    res = FitResult.load(saved_fits[0])
    assert res.provenance["seed"] == 1
    assert call(["query", saved_fits[0], "P(OR > 1)"]).code == 0
