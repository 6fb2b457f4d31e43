"""Headless Chromium for the editions: screenshots in the builds, checks in tests/test_editions.py.

Uses Debian's ``chromium`` (``apt-get install chromium``) driven by Playwright;
Playwright's own browser download is never needed. ``CHROMIUM`` names another
binary. Every network feature that Chromium would use on its own is switched off,
so the only requests a page makes are the ones it asks for.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "chromium_path", "chromium", "screenshot_deck", "screenshot_page"]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium binary to use, or None when there is none (or Playwright is not installed)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return None
    for candidate in (
        os.environ.get("CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextmanager
def chromium() -> Iterator[object]:
    """A Playwright ``Browser`` on the system Chromium; RuntimeError if there is none."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("no Chromium found: apt-get install chromium, and pip install playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_deck(page) -> None:
    """Wait until reveal.js has laid the deck out and MathJax has typeset it."""
    page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("MathJax.startup.promise")


def screenshot_deck(browser, deck: Path, out: Path, width: int, height: int) -> None:
    """A PNG of the deck's first slide that shows a figure (else its title slide)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(deck.resolve().as_uri())
    wait_for_deck(page)
    page.evaluate("""() => {
        const s = Reveal.getSlides().find(s => s.querySelector('.jp-OutputArea-output img'));
        if (s) { const i = Reveal.getIndices(s); Reveal.slide(i.h, i.v); }
    }""")
    page.wait_for_timeout(200)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out))
    page.close()


def screenshot_page(browser, html: Path, out: Path, width: int = 1280, height: int = 900) -> None:
    """A PNG of a web page as a reader first sees it."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(html.resolve().as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out))
    page.close()
