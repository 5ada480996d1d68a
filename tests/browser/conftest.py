"""The browser tier: Playwright drives Debian's Chromium against a live server.

The tier skips, naming what is missing, when the ``playwright`` package or
``/usr/bin/chromium`` is absent; ``TROVE_REQUIRE_BROWSER=1`` turns that into a failure.
Browsers are never downloaded. Set ``TROVE_SCREENSHOT_DIR`` to keep screenshots of the
pages the tests visit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One Chromium for the whole run; each test gets a fresh context (cookies, downloads)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require(
        "TROVE_REQUIRE_BROWSER",
        sync_playwright is not None,
        "the playwright package is not installed",
    )
    require(
        "TROVE_REQUIRE_BROWSER",
        os.access(CHROMIUM, os.X_OK),
        f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)",
    )
    # Playwright's sync API keeps an event loop running in this thread, which Django's
    # guard against blocking calls inside async code mistakes for an async context.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server) -> Iterator:
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page, request):
    """``screenshot(name)`` saves the page as ``<dir>/<backend>-<name>.png`` when
    ``TROVE_SCREENSHOT_DIR`` is set, for people to look at; it asserts nothing."""
    directory = os.environ.get("TROVE_SCREENSHOT_DIR")
    suffix = request.node.callspec.id if hasattr(request.node, "callspec") else "default"

    def take(name: str) -> None:
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(directory) / f"{suffix}-{name}.png"), full_page=True)

    return take
