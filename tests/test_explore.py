"""The explorer's HTTP API: the same numbers as the CLI, 400s for bad input, concurrency,
errors that never stop the server, the sensitivity export, MCMC jobs, binding.

Equality with the CLI is exact (``==`` on the parsed JSON): the API and ``fit --json``
run the same fit with the same settings, so no tolerance is needed or allowed.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import socket
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the explorer needs starlette and uvicorn")
pytest.importorskip("uvicorn", reason="the explorer needs starlette and uvicorn")

from trialsynth.cli import main
from trialsynth.data import load
from trialsynth.explore.serve import Running, is_loopback
from trialsynth.explore.service import Explorer, Settings, analysis


@pytest.fixture(scope="module")
def server():
    run = Running(Explorer(load("ivig_rm")))
    yield run
    run.stop()


def get(server: Running, path: str, params: Any = ()) -> tuple[int, Any]:
    url = f"{server.url}{path}?{urllib.parse.urlencode(list(params))}"
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read())
        finally:
            e.close()


def send(server: Running, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{server.url}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read())
        finally:
            e.close()


def cli_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> Any:
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------- same numbers as the CLI


@pytest.mark.parametrize(
    "tau",
    [
        "half-normal(0.5)",
        "half-cauchy(0.5)",
        "uniform-shrinkage",
        "dumouchel",
        "turner(obstetric outcomes, pharmacological vs. placebo / control)",
    ],
)
def test_posterior_is_the_fit_json_object(server, capsys, tau) -> None:
    status, api = get(server, "/api/posterior", [("model", "normal-normal"), ("tau", tau)])
    assert status == 200
    cli = cli_json(
        capsys, ["fit", "ivig_rm", "--model", "normal-normal", "--tau-prior", tau, "--json"]
    )
    assert api == cli


def test_posterior_with_exclusions_is_the_run_json_object(server, capsys, tmp_path) -> None:
    """Exclusions are a spec's ``[data] exclude`` (the CLI's fit has no --exclude)."""
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[data]\nsource = "ivig_rm"\nexclude = ["Coulam 1995", "Christiansen 2015"]\n'
        '[model]\nmodel = "normal-normal"\n'
        '[priors]\ntau = "half-cauchy(0.5)"\nmu = "normal(0, 1)"\n'
    )
    params = [("tau", "half-cauchy(0.5)"), ("mu", "normal(0, 1)")]
    params += [("exclude", "Christiansen 2015"), ("exclude", "Coulam 1995")]  # any order
    status, api = get(server, "/api/posterior", params)
    assert status == 200 and api["k"] == 6
    cli = cli_json(capsys, ["run", str(spec), "--json", "--out", str(tmp_path / "out")])
    assert api == cli


def test_subgroup_fit_is_the_fit_json_object(server, capsys) -> None:
    status, api = get(
        server, "/api/posterior", [("subgroup", "population"), ("subgroup_tau", "separate")]
    )
    assert status == 200 and set(api["subgroups"]) == {"primary", "secondary", "mixed"}
    cli = cli_json(
        capsys,
        [
            "fit",
            "ivig_rm",
            "--model",
            "normal-normal",
            "--subgroup",
            "population",
            "--subgroup-tau",
            "separate",
            "--json",
        ],
    )
    assert api == cli


def test_query_view_and_curve_agree_with_the_summary(server) -> None:
    _, s = get(server, "/api/posterior", [("tau", "dumouchel")])
    _, q = get(server, "/api/query", [("expr", "P(OR > 1)"), ("tau", "dumouchel")])
    _, v = get(server, "/api/view", [("tau", "dumouchel")])
    assert q == {"query": "P(OR > 1)", "probability": s["p_mu_gt_0"], "mcse": None}
    assert v["summary"] == s
    i = v["benefit"]["c"].index(1.0)  # c = 1 is a grid point
    # the curve is the exact marginal's sf on the grid: the same number to rounding
    assert v["benefit"]["p_or"][i] == pytest.approx(s["p_mu_gt_0"], abs=1e-12)
    assert len(v["forest"]) == s["k"] and v["curves"]["tau"]["prior"] is not None


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ([("tau", "half-normal(-1)")], "tau:"),
        ([("tau", "banana(1)")], "tau:"),
        ([("mu", "half-normal(1)")], "mu:"),
        ([("exclude", "Nobody 2000")], "unknown study 'Nobody 2000'"),
        ([("exclude", s) for s in load("ivig_rm").study[:7]], "at least 2"),
        ([("model", "normal-normall")], "unknown model"),
        ([("taux", "half-normal(1)")], "unknown parameter 'taux'"),
        ([("tau", "half-normal(1)"), ("tau", "half-normal(2)")], "once"),
        ([("subgroup", "nope")], "nope"),
        ([("engine", "exact"), ("model", "binomial-normal")], "engine=exact"),
        ([("engine", "warp")], "unknown engine"),
    ],
)
def test_bad_input_is_400_with_one_line(server, params, needle) -> None:
    status, body = get(server, "/api/posterior", params)
    assert status == 400, body
    assert set(body) == {"error"} and needle in body["error"] and "\n" not in body["error"]


def test_bad_query_is_400(server) -> None:
    status, body = get(server, "/api/query", [("expr", "__import__('os')")])
    assert status == 400 and body["error"].startswith("expr:")
    assert get(server, "/api/query", [])[0] == 400


def test_mcmc_settings_point_to_the_job_endpoint(server) -> None:
    status, body = get(server, "/api/posterior", [("model", "binomial-normal")])
    assert status == 409 and "POST /api/jobs" in body["error"]


def test_posts_need_a_json_body(server) -> None:
    req = urllib.request.Request(
        f"{server.url}/api/jobs",
        data=b"model=binomial-normal",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    e.value.close()
    assert e.value.code == 400
    assert send(server, "POST", "/api/jobs", ["not", "an", "object"])[0] == 400
    assert send(server, "POST", "/api/jobs", {"model": "binomial-normal", "tau": "x(1)"})[0] == 400


def test_a_foreign_host_header_is_refused(server) -> None:
    """DNS rebinding: a page elsewhere resolving its own name to 127.0.0.1 gets nothing."""
    req = urllib.request.Request(f"{server.url}/api/info", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    e.value.close()
    assert e.value.code == 400


# ---------------------------------------------------------------- concurrency and errors


def test_fifty_parallel_requests_each_get_their_own_answer(server) -> None:
    data = load("ivig_rm")
    scales = np.linspace(0.1, 2.0, 50)
    params = [
        [("tau", f"half-normal({s:.4f})"), ("mu", f"normal(0, {1 + i % 3})")]
        for i, s in enumerate(scales)
    ]
    with cf.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda p: get(server, "/api/posterior", p), params))
    for p, (status, body) in zip(params, answers, strict=True):
        assert status == 200
        want = analysis(data, Settings(tau=p[0][1], mu=p[1][1])).summary()
        assert body == json.loads(json.dumps(want))


def test_a_server_error_is_a_500_and_the_server_goes_on(server, monkeypatch) -> None:
    explorer = server.app.state.explorer

    def boom(s: Settings) -> Any:
        raise RuntimeError("planted failure")

    monkeypatch.setattr(explorer, "posterior", boom)
    status, body = get(server, "/api/posterior", [("tau", "half-normal(0.77)")])
    assert status == 500 and body == {"error": "internal error: RuntimeError: planted failure"}
    monkeypatch.undo()
    assert get(server, "/api/posterior", [("tau", "half-normal(0.77)")])[0] == 200


# ---------------------------------------------------------------- sensitivity export


def test_sensitivity_export_is_a_valid_section_and_a_csv(server) -> None:
    from trialsynth.analysis.sensitivity import parse_section

    scenarios = [
        {"tau": "half-cauchy(0.5)"},
        {"tau": "dumouchel", "exclude": ["Coulam 1995"]},
        {"mu": "normal(0, 1)", "exclude": ["Perino 1997", 'A "quoted" =name']},
    ]
    status, out = send(server, "POST", "/api/sensitivity", {"scenarios": scenarios[:2]})
    assert status == 200
    table = tomllib.loads(out["toml"])["sensitivity"]
    assert table["tau"] == ["half-cauchy(0.5)", "dumouchel"]
    assert table["mu"] == ["normal(0, 2.82)", "normal(0, 2.82)"]
    assert table["data"] == ["all", "drop:Coulam 1995"]
    config = parse_section(table)  # the sensitivity command's own parser accepts it
    assert [b.combine for b in config.blocks] == ["list"]
    lines = out["csv"].splitlines()
    assert len(lines) == 3 and lines[0].startswith("scenario,model,engine,tau_prior")
    assert (
        out["rows"][1]["p_mu_gt_0"]
        == get(server, "/api/posterior", [("tau", "dumouchel"), ("exclude", "Coulam 1995")])[1][
            "p_mu_gt_0"
        ]
    )
    status, body = send(server, "POST", "/api/sensitivity", {"scenarios": scenarios})
    assert status == 400 and body["error"].startswith("scenario 3: exclude: unknown study")


def test_export_escapes_strings_for_toml_and_spreadsheets() -> None:
    from trialsynth.explore.export import scenario_row, sensitivity_csv, sensitivity_toml

    s = Settings(exclude=('Smith "2001"\\x',))
    text = sensitivity_toml([s], data_name="d\nx")
    assert tomllib.loads(text)["sensitivity"]["data"] == ['drop:Smith "2001"\\x']
    csv = sensitivity_csv([scenario_row(1, Settings(exclude=("=cmd()",)), None)])
    assert "'=cmd()" in csv and "not computed" in csv


# ---------------------------------------------------------------- MCMC jobs


def wait_job(server: Running, job_id: str, states: tuple[str, ...], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, job = get(server, f"/api/jobs/{job_id}")
        assert status == 200
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not in {states} after {timeout} s: {job}")


@pytest.mark.mcmc
def test_a_job_can_be_cancelled_and_its_process_ends(server) -> None:
    status, job = send(
        server, "POST", "/api/jobs", {"model": "binomial-normal", "tau": "half-normal(0.3)"}
    )
    assert status == 202 and job["state"] in ("queued", "running")
    wait_job(server, job["id"], ("running",), 60)
    status, cancelled = send(server, "DELETE", f"/api/jobs/{job['id']}")
    assert status == 200 and cancelled["state"] == "cancelled"
    manager = server.app.state.jobs
    deadline = time.monotonic() + 20
    while manager.get(job["id"]).process is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert manager.get(job["id"]).process is None  # the child was terminated and reaped
    assert get(server, "/api/jobs/nope")[0] == 404


@pytest.mark.mcmc
@pytest.mark.slow
def test_a_job_returns_the_fit_json_of_the_mcmc_fit(server, capsys) -> None:
    body = {"model": "binomial-normal", "tau": "half-normal(0.5)"}
    status, job = send(server, "POST", "/api/jobs", body)
    assert status == 202
    done = wait_job(server, job["id"], ("done", "failed"), 600)
    assert done["state"] == "done", done["error"]
    assert [p["phase"] for p in done["phases"]][:3] == ["start", "compile", "sample"]
    cli = cli_json(capsys, ["fit", "ivig_rm", "--tau-prior", "half-normal(0.5)", "--json"])
    assert done["summary"] == cli  # same seed, same settings: the same chains
    status, api = get(
        server, "/api/posterior", [("model", "binomial-normal"), ("tau", "half-normal(0.5)")]
    )
    assert status == 200 and api == cli


# ---------------------------------------------------------------- starting and stopping


def test_the_server_binds_only_where_it_is_told() -> None:
    ex = Explorer(load("ivig_rm"))
    run = Running(ex, host="127.0.0.2", port=0)  # another loopback address
    try:
        host, port = run.sock.getsockname()[:2]
        assert host == "127.0.0.2"
        with urllib.request.urlopen(f"{run.url}/api/info", timeout=10) as r:
            assert r.status == 200
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=5),
        ):
            pass
    finally:
        run.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.2", port), timeout=5):
        pass  # stopped: the port is closed


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("::")


def test_cli_explore_warns_for_another_host_and_rejects_a_busy_port(monkeypatch, capsys) -> None:
    import trialsynth.explore.serve as serve_mod

    ran = []
    monkeypatch.setattr(serve_mod, "bind", lambda host, port: _FakeSock(host, port))
    monkeypatch.setattr(serve_mod, "_server", lambda app: _FakeServer(ran))
    assert main(["explore", "ivig_rm", "--host", "0.0.0.0", "--port", "9", "--no-browser"]) == 0
    captured = capsys.readouterr()
    assert "warning: --host 0.0.0.0" in captured.err and ran == [True]
    assert "http://0.0.0.0:9/" in captured.out
    monkeypatch.undo()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["explore", "ivig_rm", "--port", str(port), "--no-browser"]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_cli_explore_bad_source_is_one_line(capsys) -> None:
    assert main(["explore", "no_such_dataset", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trialsynth: error:") and err.count("\n") == 1


class _FakeSock:
    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)

    def getsockname(self) -> tuple[str, int]:
        return self.address

    def close(self) -> None:
        pass


class _FakeServer:
    def __init__(self, ran: list[bool]) -> None:
        self.ran = ran

    def run(self, sockets: Any) -> None:
        self.ran.append(True)


def test_an_exported_section_reruns_to_the_same_numbers(server, capsys, tmp_path) -> None:
    """Scenarios -> [sensitivity] -> ``trialsynth sensitivity``: each row is the API's."""
    scenarios = [
        {"tau": "half-cauchy(0.5)"},
        {"tau": "dumouchel", "exclude": ["Coulam 1995", "Perino 1997"]},
        {"mu": "normal(0, 1)", "exclude": ["Christiansen 2015"]},
    ]
    status, out = send(server, "POST", "/api/sensitivity", {"scenarios": scenarios})
    assert status == 200
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[data]\nsource = "ivig_rm"\n[model]\nmodel = "normal-normal"\n' + out["toml"],
        encoding="utf-8",
    )
    rows = cli_json(capsys, ["sensitivity", str(spec), "--json", "--out", str(tmp_path / "s")])
    for sc in scenarios:
        params = [(k, v) for k, v in sc.items() if k != "exclude"]
        params += [("exclude", s) for s in sc.get("exclude", [])]
        api = get(server, "/api/posterior", params)[1]
        data = "all" if "exclude" not in sc else "drop:" + ";".join(sc["exclude"])
        match = [
            r
            for r in rows
            if r["settings"]["data"] == data
            and r["settings"]["tau"] == sc.get("tau", "half-normal(0.5)")
            and r["settings"]["mu"] == sc.get("mu", "normal(0, 2.82)")
        ]
        assert len(match) == 1, (data, [r["settings"] for r in rows])
        assert match[0]["status"] == "ok"
        assert match[0]["p_mu_gt_0"] == api["p_mu_gt_0"] and match[0]["or"] == api["or"]
