"""Plumbing for browser tests: Debian's Chromium driven by Playwright's async API, in the
test's own event loop, with a full-page screenshot of every page a test looks at.

Playwright's own browser download cannot reach its servers on these machines, so the
browser is the one the system has: ``BOT_TEST_CHROMIUM`` or ``/usr/bin/chromium``. Without
it the tests are skipped with the reason, unless ``BOT_TEST_REQUIRE_BROWSER=1`` (set by
``.ci/run``): then they fail, so a CI run can never pass without having opened a browser.

Screenshots go to ``var/screenshots/<test>/NN-<what>.png`` (``var/`` is not versioned).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from playwright.async_api import async_playwright

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = os.environ.get("BOT_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("BOT_TEST_REQUIRE_BROWSER") == "1"
# Tests run as root (no sandbox possible) on a machine without internet: nothing in the
# background may try to reach Google.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
# Whatever the machine's own settings: a Vietnamese reader in Vietnam.
LOCALE: dict[str, Any] = {"locale": "vi-VN", "timezone_id": "Asia/Ho_Chi_Minh"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test (no browser here), or fail it where a browser is required."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (BOT_TEST_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    """The browser to drive; skips (or fails, see ``unavailable``) when there is none."""
    found = shutil.which(CHROMIUM)
    if found is None:
        unavailable(
            f"no Chromium at {CHROMIUM} (install Debian's 'chromium' package "
            "or point BOT_TEST_CHROMIUM at a Chromium binary)"
        )
    return found


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "page"


class BrowserSession:
    """One Chromium for one test. ``page()`` opens a page in a fresh context (a person on a
    device of their own: cookies are not shared), ``shot()`` saves a screenshot.

    Use as ``async with BrowserSession(test_name) as browser``; closing it closes every
    context and stops Playwright, leaving no task behind in the event loop."""

    def __init__(self, test_name: str) -> None:
        self.folder = SCREENSHOTS / _slug(test_name.removeprefix("test_"))
        self.shots: list[Path] = []
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._contexts: list[BrowserContext] = []

    async def __aenter__(self) -> BrowserSession:
        executable = chromium_path()
        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=executable, args=ARGS
            )
        except Exception as exc:
            await self._playwright.stop()
            self._playwright = None
            unavailable(f"Chromium at {executable} did not start: {exc}")
        if self.folder.exists():  # screenshots of an earlier run of this test
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for context in self._contexts:
            await context.close()
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()

    async def page(self, device: dict[str, Any] | None = None) -> Page:
        """A page in a context of its own; ``device``: ``PHONE`` or ``DESKTOP`` (default)."""
        assert self._browser is not None, "use BrowserSession as an async context manager"
        context = await self._browser.new_context(**(device or DESKTOP), **LOCALE)
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        return await context.new_page()

    async def shot(self, page: Page, what: str) -> Path:
        """A full-page screenshot, numbered in the order the test took them."""
        path = self.folder / f"{len(self.shots) + 1:02d}-{_slug(what)}.png"
        await page.screenshot(path=path, full_page=True)
        self.shots.append(path)
        return path
