"""The explorer's page in a real headless browser (Playwright driving Debian's chromium).

The page is driven as a person would: choose a tau prior, untick a trial, move the c
slider, collect scenarios; the numbers it then shows are read back and compared with the
exact engine's (to the 3 decimals the page prints). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the explorer needs starlette and uvicorn")
pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need the playwright package ([test] extra)"
)

from conftest import headless_chromium
from trialsynth.data import load
from trialsynth.explore.serve import Running
from trialsynth.explore.service import Explorer, Settings, analysis

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    run = Running(Explorer(load("ivig_rm")))
    yield run
    run.stop()


class Page:
    """A page in a fresh browser context (its own cookies, storage and cache, as a new
    profile has) that records problems and foreign requests."""

    def __init__(self, chromium: Any, origin: str) -> None:
        self.ctx = chromium.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.ctx.new_page()
        self.problems: list[str] = []
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        self.page.on(
            "console",
            lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on(
            "request",
            lambda r: None if r.url.startswith(origin) else self.foreign.append(r.url),
        )
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.revision = "0"

    def redrawn(self) -> None:
        """Wait until the page has drawn an answer newer than the last one seen."""
        self.page.wait_for_selector(
            f"body[data-state=ready]:not([data-revision='{self.revision}'])", timeout=60_000
        )
        self.revision = self.page.get_attribute("body", "data-revision") or "0"

    def text(self, selector: str) -> str:
        return self.page.text_content(selector) or ""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless chromium for the module (each test gets its own context in it)."""
    with headless_chromium() as browser:
        yield browser


@pytest.fixture
def browser(server: Running, chromium: Any) -> Iterator[Any]:
    page = Page(chromium, server.url)
    try:
        yield page
    finally:
        page.ctx.close()


def _p(settings: Settings) -> str:
    data = load("ivig_rm")
    return f"{analysis(data, settings).summary()['p_mu_gt_0']:.3f}"


def test_tau_prior_and_an_excluded_trial_show_the_exact_engines_answer(server, browser):
    page = browser.page
    page.goto(server.url + "/")
    browser.redrawn()
    assert browser.text("#p-or-gt-1") == _p(Settings())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explore-start.png"), full_page=True)

    page.select_option("#tau-preset", "half-cauchy(0.5)")
    browser.redrawn()
    assert browser.text("#p-or-gt-1") == _p(Settings(tau="half-cauchy(0.5)"))

    page.uncheck("#trials input[data-study='Coulam 1995']")
    browser.redrawn()
    want = Settings(tau="half-cauchy(0.5)", exclude=("Coulam 1995",))
    assert browser.text("#p-or-gt-1") == _p(want)
    assert page.locator("#forest g.study-row").count() == load("ivig_rm").k - 1
    page.screenshot(path=str(ARTIFACTS / "explore-half-cauchy-without-coulam.png"), full_page=True)

    page.select_option("#tau-preset", "turner")  # the Turner preset's first setting
    browser.redrawn()
    assert browser.text("#priors-text").count("Turner et al. 2015") == 1

    timings = page.evaluate("window.__explore.timings")
    assert len(timings) == 4 and all(t["total_ms"] > 0 for t in timings)
    print("change -> redrawn page (ms):", [round(t["total_ms"]) for t in timings[1:]])
    assert browser.problems == [] and browser.foreign == []


def test_moving_c_asks_the_exact_engine(server, browser):
    page = browser.page
    page.goto(server.url + "/")
    browser.redrawn()
    page.fill("#c-slider", "50")  # log c = 0.50 -> c = 1.65 (3 significant digits)
    page.wait_for_selector("#c-echo:text-is('1.65')")
    fit = analysis(load("ivig_rm"), Settings())
    want = f"{fit.ask('P(OR > 1.65)').probability:.3f}"
    page.wait_for_selector(f"#p-or-gt-c:text-is('{want}')", timeout=30_000)
    assert browser.problems == []


def test_scenarios_export_as_a_sensitivity_section(server, browser):
    from trialsynth.analysis.sensitivity import parse_section

    page = browser.page
    page.goto(server.url + "/")
    browser.redrawn()
    page.click("#add-scenario")
    page.select_option("#tau-preset", "dumouchel")
    browser.redrawn()
    page.click("#add-scenario")
    assert page.locator("#scenarios tr").count() == 3  # header + 2
    with page.expect_download() as download:
        page.click("#export-toml")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    table = tomllib.loads(text)["sensitivity"]
    assert table["tau"] == ["half-normal(0.5)", "dumouchel"]
    parse_section(table)
    assert browser.text("#export-out") == text
    page.screenshot(path=str(ARTIFACTS / "explore-sensitivity-table.png"), full_page=True)


def test_names_written_as_html_are_shown_as_text(tmp_path, browser):
    evil = "<img src=x onerror=\"document.title='pwned'\">"
    csv = tmp_path / "evil.csv"
    quoted = evil.replace('"', '""')
    csv.write_text(
        "study,events_t,n_t,events_c,n_c,population\n"
        f'"{quoted}",10,20,5,20,<b>x</b>\nTrial B,8,20,6,20,y\nTrial C,12,25,9,25,y\n',
        encoding="utf-8",
    )
    run = Running(Explorer(load(str(csv))))
    try:
        page = browser.page
        page.goto(run.url + "/")
        browser.redrawn()
        assert page.locator("#views img, #controls img").count() == 0
        assert evil in browser.text("#trials") and evil in browser.text("#forest")
        assert page.title() == "trialsynth explore" and browser.dialogs == []
    finally:
        run.stop()


@pytest.mark.mcmc
def test_mcmc_on_request_shows_progress_and_cancels(server, browser):
    page = browser.page
    page.goto(server.url + "/")
    browser.redrawn()
    page.fill("#tau-text", "half-normal(0.35)")  # settings no other test fits
    page.check("input[name=model][value=binomial-normal]")
    page.wait_for_selector("body[data-state=needs-mcmc]")
    assert "press Run MCMC" in browser.text("#error")
    page.click("#mcmc-run")
    page.wait_for_selector("#mcmc-status:has-text('running')", timeout=60_000)
    page.click("#mcmc-cancel")
    page.wait_for_selector("#mcmc-status:text-is('cancelled')")
    jobs = server.app.state.jobs.list()
    assert jobs[-1].state == "cancelled" and jobs[-1].settings.tau == "half-normal(0.35)"
    assert page.is_enabled("#mcmc-run") and not page.is_enabled("#mcmc-cancel")


@pytest.mark.mcmc
@pytest.mark.slow
def test_mcmc_on_request_draws_the_jobs_answer(server, browser):
    page = browser.page
    page.goto(server.url + "/")
    browser.redrawn()
    page.check("input[name=model][value=binomial-normal]")
    page.wait_for_selector("body[data-state=needs-mcmc]")
    page.click("#mcmc-run")
    page.wait_for_selector("body[data-state=ready][data-revision]", timeout=600_000)
    job = server.app.state.jobs.list()[-1]
    assert job.state == "done"
    s = job.payload["summary"]
    assert browser.text("#p-or-gt-1") == f"{s['p_mu_gt_0']:.3f}"
    assert "MCSE" in browser.text("#p-or-gt-1-mcse")
    page.screenshot(path=str(ARTIFACTS / "explore-mcmc.png"), full_page=True)
