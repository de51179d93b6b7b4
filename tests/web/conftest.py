"""Browser tests of the admin web app: Debian's Chromium driven by Playwright (Python), against
a real control plane per test. A failing test leaves a screenshot and the page's console in
test-results/web/ (git-ignored)."""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.web.server import ControlPlane, control_plane, migrated_template

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("KOKOA_CHROMIUM", "/usr/bin/chromium"))
RESULTS = ROOT / "test-results" / "web"
_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_REPORT] = report
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: sync Playwright keeps an event loop
    running on this thread while it is open, which async tests after it cannot share."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: ./dev test installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("web-template"))


@pytest.fixture
def server(template: Path, tmp_path: Path) -> Iterator[ControlPlane]:
    with control_plane(template, tmp_path) as plane:
        yield plane


class Console:
    """Everything the page logged, and the errors (a CSP violation is one)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []

    def record(self, message: ConsoleMessage) -> None:
        self.lines.append(f"{message.type}: {message.text}")
        if message.type == "error" and not _expected_http_error(message.text):
            self.errors.append(message.text)


def _expected_http_error(text: str) -> bool:
    # The browser logs every 4xx fetch ("Failed to load resource"); the app shows those itself.
    return bool(
        re.match(r"Failed to load resource: the server responded with a status of 4\d\d", text)
    )


def new_context(browser: Browser, server: ControlPlane, locale: str = "en-US") -> BrowserContext:
    context = browser.new_context(base_url=server.url, locale=locale)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(
    request: pytest.FixtureRequest, browser: Browser, server: ControlPlane, console: Console
) -> Iterator[Page]:
    context = new_context(browser, server)
    page = context.new_page()
    page.on("console", console.record)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    yield page
    report = request.node.stash.get(_REPORT, None)
    if report is not None and report.failed:
        save_failure(request.node.name, page, console)
    context.close()


def save_failure(name: str, page: Page, console: Console) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    page.screenshot(path=RESULTS / f"{safe}.png", full_page=True)
    (RESULTS / f"{safe}.console.txt").write_text("\n".join(console.lines), encoding="utf-8")
