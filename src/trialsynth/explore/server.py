"""The explorer's HTTP server: a Starlette app (served by uvicorn) and its static page.

Routes
------
GET  /                      the page (static/index.html; every asset served from here)
GET  /api/info              the dataset (studies, covariates), defaults, presets
GET  /api/posterior?...     the ``fit --json`` object (400 {"error": ...} for bad input)
GET  /api/view?...          that object plus the figures' data
GET  /api/query?expr=...&.. one ``P(...)`` query (``query --json`` object)
GET  /api/psense?...        power-scaling diagnosis
POST /api/jobs              start an MCMC fit (JSON body with the same keys); 202
GET  /api/jobs/ID           its state, phase, progress, elapsed time (summary when done)
DELETE /api/jobs/ID         cancel it
POST /api/sensitivity       scenarios (JSON list of settings) -> {"toml", "csv"}
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from trialsynth.explore.export import scenario_row, sensitivity_csv, sensitivity_toml
from trialsynth.explore.jobs import JobManager
from trialsynth.explore.service import ExploreError, Explorer, parse_settings, settings_from_json

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("trialsynth.explore")
MAX_SCENARIOS = 500
MAX_BODY = 1_000_000


def _params(request: Request, *, drop: tuple[str, ...] = ()) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key not in drop:
            params.setdefault(key, []).append(value)
    return params


def _error(message: str, status: int = 400) -> JSONResponse:
    return _JSON({"error": message}, status_code=status)


class _JSON(JSONResponse):
    """JSON as the CLI writes it, but valid JSON: a non-finite number becomes null."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _guard(endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Bad input -> 4xx {"error"}; anything else -> logged, 500 {"error"}; never a crash."""

    async def wrapped(request: Request) -> Response:
        try:
            if inspect.iscoroutinefunction(endpoint):
                return await endpoint(request)
            return await run_in_threadpool(endpoint, request)
        except ExploreError as err:
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            return _error(message, err.status)
        except Exception as err:  # a bug: the request fails, the server goes on
            log.exception("explore: internal error on %s", request.url.path)
            return _error(f"internal error: {type(err).__name__}: {err}".splitlines()[0], 500)

    return wrapped


async def _json_body(request: Request) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ExploreError("send the request body as JSON (Content-Type: application/json)")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ExploreError(f"request body over {MAX_BODY} bytes")
    try:
        return json.loads(raw)
    except ValueError as err:
        raise ExploreError(f"request body is not JSON: {err}") from None


def _lifespan(jobs: JobManager) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        jobs.close()  # a running MCMC child is terminated with the server

    return lifespan


def _explorer(request: Request) -> Explorer:
    return request.app.state.explorer


def _jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def info(request: Request) -> Response:
    """The dataset, the starting settings and the Turner et al. (2015) settings."""
    from trialsynth.priors.prior import turner_table

    explorer = _explorer(request)
    data = explorer.data
    cov = data.covariates
    return _JSON(
        {
            "name": data.name,
            "kind": data.kind,
            "k": data.k,
            "studies": list(data.study),
            "covariates": {  # the columns with few levels: the subgroup choices
                c: sorted({str(v) for v in cov[c].dropna().tolist()})
                for c in cov.columns
                if cov[c].nunique() <= 12
            },
            "defaults": explorer.defaults.to_dict(),
            "turner": [[o, c] for o, c, _m, _s in turner_table()],
            "notices": list(data.notices),
        }
    )


def posterior(request: Request) -> Response:
    """The ``fit --json`` object of the query string's settings."""
    explorer = _explorer(request)
    return _JSON(explorer.posterior(parse_settings(_params(request), explorer.data)))


def view(request: Request) -> Response:
    """The ``fit --json`` object plus the data of the page's figures."""
    explorer = _explorer(request)
    return _JSON(explorer.view(parse_settings(_params(request), explorer.data)))


def query(request: Request) -> Response:
    """One ``P(...)`` query (``expr``) of the settings' fit."""
    explorer = _explorer(request)
    expr = request.query_params.get("expr")
    if not expr:
        raise ExploreError("expr: give a query such as P(OR > 1)")
    s = parse_settings(_params(request, drop=("expr",)), explorer.data)
    return _JSON(explorer.query(s, expr))


def psense(request: Request) -> Response:
    """Power-scaling sensitivity of mu and tau."""
    explorer = _explorer(request)
    return _JSON({"psense": explorer.psense(parse_settings(_params(request), explorer.data))})


async def job_start(request: Request) -> Response:
    """Queue an MCMC fit (JSON body: the query string's keys); 202 with the job."""
    s = settings_from_json(await _json_body(request), _explorer(request).data)
    return _JSON(_jobs(request).submit(s).to_json(), status_code=202)


def job_list(request: Request) -> Response:
    """The known jobs (without their results)."""
    return _JSON([j.to_json(with_result=False) for j in _jobs(request).list()])


def job_get(request: Request) -> Response:
    """One job: state, phase, progress, elapsed time, and its summary once done."""
    job = _jobs(request).get(request.path_params["job_id"])
    if job is None:
        return _error(f"unknown job {request.path_params['job_id']!r}", 404)
    return _JSON(job.to_json())


def job_cancel(request: Request) -> Response:
    """Cancel a job (its child process is terminated)."""
    job = _jobs(request).cancel(request.path_params["job_id"])
    if job is None:
        return _error(f"unknown job {request.path_params['job_id']!r}", 404)
    return _JSON(job.to_json())


async def sensitivity(request: Request) -> Response:
    """Scenarios (``{"scenarios": [settings, ...]}``) -> ``[sensitivity]`` TOML and CSV."""
    body = await _json_body(request)
    explorer = _explorer(request)
    items = body.get("scenarios") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ExploreError('give {"scenarios": [settings, ...]} with at least one scenario')
    if len(items) > MAX_SCENARIOS:
        raise ExploreError(f"at most {MAX_SCENARIOS} scenarios")
    scenarios = []
    for i, item in enumerate(items, start=1):
        try:
            scenarios.append(settings_from_json(item, explorer.data))
        except ExploreError as err:
            raise ExploreError(f"scenario {i}: {err}") from None
    rows = await run_in_threadpool(_scenario_rows, explorer, scenarios)
    return _JSON(
        {
            "toml": sensitivity_toml(scenarios, data_name=explorer.data.name),
            "csv": sensitivity_csv(rows),
            "rows": rows,
        }
    )


def _scenario_rows(explorer: Explorer, scenarios: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for i, s in enumerate(scenarios, start=1):
        try:
            summary = explorer.posterior(s)
        except ExploreError:
            summary = None  # an MCMC scenario not fitted in this session
        rows.append(scenario_row(i, s, summary))
    return rows


def index(request: Request) -> Response:
    """The page."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("/", index),
    Route("/api/info", _guard(info)),
    Route("/api/posterior", _guard(posterior)),
    Route("/api/view", _guard(view)),
    Route("/api/query", _guard(query)),
    Route("/api/psense", _guard(psense)),
    Route("/api/jobs", _guard(job_start), methods=["POST"]),
    Route("/api/jobs", _guard(job_list), methods=["GET"]),
    Route("/api/jobs/{job_id}", _guard(job_get), methods=["GET"]),
    Route("/api/jobs/{job_id}", _guard(job_cancel), methods=["DELETE"]),
    Route("/api/sensitivity", _guard(sensitivity), methods=["POST"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


def build_app(explorer: Explorer, *, allowed_hosts: list[str] | None = None) -> Starlette:
    """The Starlette app of one explorer: the routes above, JSON errors, static assets.

    Parameters
    ----------
    explorer : Explorer
        The data and caches every request reads.
    allowed_hosts : list of str, optional
        Accepted ``Host`` headers (others get 400): set when bound to loopback, so that a
        web page elsewhere cannot reach the server through a name of its own.
    """
    jobs = JobManager(explorer.data, explorer.store_mcmc)
    middleware = []
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=ROUTES, middleware=middleware, lifespan=_lifespan(jobs))
    app.state.jobs = jobs
    app.state.explorer = explorer
    return app
