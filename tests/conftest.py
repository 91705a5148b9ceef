"""Shared fixtures: the catalogue of fitted models, session-scoped with fixed seeds.

A fit used by more than one test module lives here, so each is made once per session.

The ``mcmc`` marker is kept true by a guard: a test that is not marked ``mcmc`` and
compiles or samples a PyMC model (itself or through a fixture it is the first to use) fails
with a message naming it; so does one that compiles any PyTensor function (``pm.draw`` of a
prior, ``pm.logp(...).eval()``) or is the first to import PyTensor. So ``pytest -m "not
mcmc"`` runs the numpy-only suite. Set ``TRIALSYNTH_MCMC_AUDIT=FILE`` to list such tests in
FILE instead of failing them.

Also the one in-process CLI helper, :func:`run_cli` (``from conftest import run_cli``), and
the one headless browser of the browser tests, :func:`headless_chromium`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from trialsynth.cli import main
from trialsynth.core.settings import SamplerSettings
from trialsynth.data import load
from trialsynth.engines import mcmc as mcmc_engine
from trialsynth.models.spec import ModelSpec
from trialsynth.priors.prior import PriorSet, parse_prior
from trialsynth.results.fitting import fit

_RUNNING: dict[str, Any] = {}
#: Fixtures (here and in test modules) that fit a model by MCMC: their users are marked
#: ``mcmc`` automatically; a test that fits in its own body carries the marker itself.
MCMC_FIXTURES = frozenset(
    {
        "crins_mcmc",
        "bcg_mcmc",
        "ivig_bn",
        "ivig",  # test_plots, test_report, test_queries
        "ivig_sub",
        "secondary",
        "saved_fits",
        "fitted",
        "seeded",
        "two_fits",
        "written",
        "uninterrupted",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    """Let pytest cache the assert-rewritten test modules, even under PYTHONDONTWRITEBYTECODE.

    With bytecode writing off (as on our machines) every worker parses and rewrites all test
    modules on every run, ~4 s of each worker's 10 s collection. The cached files go to the
    git-ignored ``__pycache__`` folders, and a file whose source changed is rewritten again.
    """
    sys.dont_write_bytecode = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the users of MCMC fixtures ``mcmc`` (``-m "not mcmc"`` then skips them)."""
    for item in items:
        if MCMC_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mcmc)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _RUNNING["item"] = item  # session fixtures are made during their first user's setup
    _RUNNING["pytensor_before"] = "pytensor" in sys.modules
    _guard_pytensor()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if not _RUNNING.get("pytensor_before") and "pytensor" in sys.modules:
        _RUNNING["pytensor_before"] = True
        _unmarked(item, "imports PyTensor (a PyMC model or PyTensor function)")
    _guard_pytensor()
    _RUNNING.pop("item", None)


def _unmarked(item: pytest.Item | None, what: str) -> None:
    """Fail (or, auditing, record) ``item`` when it does ``what`` without the mcmc marker."""
    if item is None or item.get_closest_marker("mcmc") is not None:
        return
    audit = os.environ.get("TRIALSYNTH_MCMC_AUDIT")
    if not audit:
        raise RuntimeError(
            f"{item.nodeid} {what} but is not marked @pytest.mark.mcmc (see tests/conftest.py)"
        )
    with Path(audit).open("a", encoding="utf-8") as fh:
        fh.write(f"{item.nodeid}: {what}\n")


#: Where PyTensor defines ``FunctionMaker`` (3.x; 2.x), which every compiled function goes through.
_FUNCTION_MAKER_MODULES = ("pytensor.compile.maker", "pytensor.compile.function.types")


def _guard_pytensor() -> None:
    """Once PyTensor is imported, every function it compiles checks the running test."""
    module = next((sys.modules[m] for m in _FUNCTION_MAKER_MODULES if m in sys.modules), None)
    maker = getattr(module, "FunctionMaker", None)
    if maker is None or getattr(maker.__init__, "_guarded", False):
        return
    real = maker.__init__

    def guarded(self: Any, *args: Any, **kwargs: Any) -> None:
        _unmarked(_RUNNING.get("item"), "compiles a PyTensor function")
        real(self, *args, **kwargs)

    guarded._guarded = True  # type: ignore[attr-defined]
    maker.__init__ = guarded


@pytest.fixture(scope="session", autouse=True)
def _mcmc_marker_is_true():
    """Refuse an MCMC compile inside a test that is not marked ``mcmc``."""
    real = mcmc_engine.compiled_model

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _unmarked(_RUNNING.get("item"), "compiles a PyMC model")
        return real(*args, **kwargs)

    mcmc_engine.compiled_model = guarded
    yield
    mcmc_engine.compiled_model = real


@pytest.fixture(scope="session")
def crins_mcmc():
    """crins2014, normal-normal, mu ~ N(0, 4), tau ~ HN(0.5): the JSS paper's setting."""
    data = load("crins2014")
    priors = PriorSet(mu=parse_prior("normal(0, 4)", "mu"), tau=parse_prior("half-normal(0.5)"))
    return fit(
        data,
        spec=ModelSpec.from_options("normal-normal", data_kind=data.kind),
        priors=priors,
        settings=SamplerSettings(draws=5000, tune=1000, seed=11),
        engine="mcmc",
    )


@pytest.fixture(scope="session")
def bcg_mcmc():
    """bcg, binomial-normal, tau ~ HN(0.5), mu ~ N(0, 2.82): the MetaStan vignette setting."""
    data = load("bcg")
    return fit(data, spec=ModelSpec(), settings=SamplerSettings(draws=3000, seed=12))


@pytest.fixture(scope="session")
def ivig_bn():
    """ivig_rm, binomial-normal, default priors, 4 x 1000 draws (figures and report tests)."""
    settings = SamplerSettings(draws=1000, tune=500, seed=20261125)
    return fit(load("ivig_rm"), spec=ModelSpec(), settings=settings, reusable=True)


def run_cli(args: Sequence[object]) -> tuple[int, str, str]:
    """Run ``trialsynth ARGS`` in this process: (exit code, stdout, stderr).

    The arguments are passed through ``str`` (paths may be given as they are). The entry
    point is called with an argument list, never through ``sys.argv``.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


#: What the browser tests' chromium leaves out: sandbox (root in a container), GPU, and
#: every network call of its own (updates, sync, QUIC).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def headless_chromium() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright; closed on exit.

    For a module-scoped fixture (each test opens its own context in it), so that the
    driver's threads end with the module. Skips the caller where playwright (the
    ``[test]`` extra) or chromium is missing: tests install no system packages, and
    ``.ci/run`` installs chromium.
    """
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser tests need playwright ([test] extra)"
    )
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(
            "chromium is not installed and tests do not install system packages; "
            ".ci/run installs it (apt-get install -y chromium)"
        )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
