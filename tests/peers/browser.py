"""A real Chromium (Debian's ``chromium`` package) driven by Playwright, for tests of HTML pages.

Playwright's own browser download does not work here; the system browser does
(``apt-get install chromium``, which ``.ci/run`` does). :meth:`BrowserPeer.launch` starts it
once per test session (headless, with a fresh temporary profile that Playwright deletes on
close); each test opens pages in its own context (:meth:`BrowserPeer.page`), so cookies, storage
and permissions never leak between tests.

A :class:`WatchedPage` records what a test usually wants to assert on afterwards: console
errors and uncaught exceptions (a CSP violation is one), and every navigation of the main
frame (to prove a page changed without reloading). Any page of the gateway (the checkout now,
admin pages later) is tested the same way, against a real HTTP server (``tests/web/live.py``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS_ENV = "LNGATE_SCREENSHOTS"
"""When set to a folder (``docs/img``), :func:`save_screenshot` writes the documentation's
screenshots there; otherwise into the test's temporary folder."""


class BrowserUnavailable(RuntimeError):
    """The system Chromium is not installed (or cannot start)."""


def chromium_path() -> str:
    """The system Chromium: ``$LNGATE_CHROMIUM``, else ``chromium`` on the PATH."""
    path = os.environ.get("LNGATE_CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        raise BrowserUnavailable(
            "chromium not found: install it with `apt-get install -y --no-install-recommends "
            "chromium` (.ci/run does), or point LNGATE_CHROMIUM at a Chromium binary")
    return path


@dataclass
class WatchedPage:
    """A page in its own browser context, with what happened on it."""

    page: Page
    context: BrowserContext
    console_errors: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)
    """URLs the main frame navigated to, in order (the first load included)."""

    async def horizontal_overflow(self) -> int:
        """How many CSS pixels the document is wider than the viewport (0: no horizontal scroll)."""
        width: int = await self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        return width


class BrowserPeer:
    """One running Chromium; open pages with :meth:`page`."""

    def __init__(self, playwright: Playwright, browser: Browser) -> None:
        self.playwright, self.browser = playwright, browser

    @classmethod
    @asynccontextmanager
    async def launch(cls) -> AsyncIterator[BrowserPeer]:
        """Start the system Chromium (headless) until the block ends."""
        executable = chromium_path()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_ARGS),
                timeout=60_000)
            try:
                yield cls(playwright, browser)
            finally:
                await browser.close()

    @asynccontextmanager
    async def page(
        self, *, viewport: dict[str, int] | None = None, java_script_enabled: bool = True,
        locale: str = "fr-FR", init_script: str | None = None, **context_options: Any,
    ) -> AsyncIterator[WatchedPage]:
        """A new page in a fresh context; ``locale`` also sets ``Accept-Language``;
        ``init_script`` runs in every document before the page's own scripts."""
        context = await self.browser.new_context(
            viewport=viewport or DESKTOP, java_script_enabled=java_script_enabled,
            locale=locale, **context_options)
        context.set_default_timeout(15_000)
        if init_script:
            await context.add_init_script(init_script)
        page = await context.new_page()
        watched = WatchedPage(page, context)
        page.on("console", lambda message: watched.console_errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: watched.console_errors.append(f"uncaught: {error}"))
        page.on("framenavigated", lambda frame: watched.navigations.append(frame.url)
                if frame == page.main_frame else None)
        try:
            yield watched
        finally:
            await context.close()


async def save_screenshot(watched: WatchedPage, name: str, fallback_dir: Path) -> Path:
    """A full-page PNG ``<name>.png`` in ``$LNGATE_SCREENSHOTS`` (or ``fallback_dir``)."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or fallback_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await watched.page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path
