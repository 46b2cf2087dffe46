import os
import shutil
import time

import pytest

from tests.conftest import SERVICES_REQUIRED

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# alongside it are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# One browser for the browser tests, closed after them: Playwright's event loop stays marked
# running in the main thread while it is open, which would refuse asyncio.run() (a judge's
# concurrent requests) in the tests that come after.
@pytest.fixture(scope="package")
def browser():
    if not os.path.exists(CHROMIUM):
        if SERVICES_REQUIRED:
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def checked_page(browser, **context_options):
    """A page in a new context (context_options as Playwright takes them) that fails its
    test if the site's Content-Security-Policy blocked anything; for fixtures to yield from."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    blocked = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)  # fmt: skip
    yield page
    context.close()
    assert not blocked, f"the Content-Security-Policy blocked: {blocked}"


@pytest.fixture
def page(browser):
    yield from checked_page(browser)


def wait_until(page, predicate: str, arg=None, timeout: float = 10.0) -> None:
    """Poll a JavaScript predicate until it holds. Playwright's wait_for_function evaluates
    its predicate with eval inside the page, which the site's Content-Security-Policy
    forbids; page.evaluate goes through the DevTools protocol, which the policy leaves be."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(predicate, arg):
                return
        except Error as exc:  # the page is navigating: ask the next one
            if "context was destroyed" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {predicate}")
        page.wait_for_timeout(50)
