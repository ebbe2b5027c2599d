"""The browser-test harness: Debian's Chromium driven by Playwright for Python against pytest-django's live server
(a thread on an ephemeral 127.0.0.1 port, on the test database: SQLite here, PostgreSQL in CI), with axe-core checks.

Reuse it for any page: request `page` (a fresh desktop context per test) or `browser` (make your own contexts, e.g.
`phone_context`), `live_server.url` for addresses, `assert_accessible(page)` after each page loads, and `eager_tasks`
when a flow submits something (scoring then runs inside the server's request, like `make run`'s embedded mode).
Browsers cannot be downloaded here: CI installs Debian's chromium with apt (.ci/run); without it these tests skip,
or fail under SPINEBENCH_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import require_service

CHROMIUM = os.environ.get("SPINEBENCH_CHROMIUM", "/usr/bin/chromium")
# No background traffic: the machines have no route out, and every refused connection costs time.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
#: axe-core impact levels a page must not have.
BLOCKING_IMPACTS = ("serious", "critical")


@pytest.fixture(scope="session")
def browser():
    available = os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM) is not None
    require_service("Chromium", available, why=f"install Debian's chromium ({CHROMIUM})")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the tests' own ORM calls (factories, assertions) are
    # ordinary blocking calls, which Django refuses next to a running loop unless told otherwise. Only while the
    # browser runs; the live server's thread has no loop and is unaffected.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    settle(page)
    context.close()


@pytest.fixture
def phone_context(browser, live_server):
    context = browser.new_context(viewport=PHONE, base_url=live_server.url, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    context.set_default_timeout(15_000)
    yield context
    for opened in context.pages:
        settle(opened)
    context.close()


def settle(page) -> None:
    """Wait until the page's requests (images, htmx) are done: a request still running on the live server when the
    test's database is torn down fails in the server's thread, not in the test."""
    from playwright.sync_api import Error

    try:
        page.wait_for_load_state("networkidle", timeout=10_000)
    except Error:
        pass  # a page that keeps polling is closed with its context all the same


def axe_violations(page, impacts=BLOCKING_IMPACTS) -> list[dict]:
    """The axe-core violations of the page as it is now, limited to `impacts`."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [violation for violation in results.response["violations"] if violation.get("impact") in impacts]


def assert_accessible(page) -> None:
    """No serious or critical axe-core violation on the page; the message names each rule and the offending nodes."""
    violations = axe_violations(page)
    report = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} -> "
        + "; ".join(node["html"][:160] for node in violation["nodes"][:5])
        for violation in violations
    ]
    assert not violations, f"{page.url}: " + "\n".join(report)


def has_no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
