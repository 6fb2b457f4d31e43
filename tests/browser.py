"""Open a local HTML file in headless Chromium and collect what went wrong.

Shared by the browser tests (the curation report, the slides and the site). The stack:
Debian's ``chromium`` package (``apt-get install chromium``; CI does this before the tests)
driven by Python Playwright (``requirements-dev.txt``) with that system browser, so no
browser download is needed. Where either is missing, :func:`open_page` skips the test
with a message saying what to install; every other test still runs.

    with open_page(path) as (page, problems):
        assert problems.console_errors == [] and problems.requests == []
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from headless import CHROMIUM_FLAGS

#: The system browser; ``CHROMIUM`` overrides it.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

FLAGS = CHROMIUM_FLAGS  # the scripts' own flags: tests and builds open pages the same way


@dataclass
class Problems:
    """Console errors, uncaught page errors, failed requests and requests that left ``file:``."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # anything not file: or data:


def browser_available() -> str:
    """``""`` when the browser test can run, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (pip install -r requirements-dev.txt)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM=/path/to/chromium)"
    return ""


@contextlib.contextmanager
def open_page(path: str | os.PathLike, wait_ms: int = 300):
    """Load ``path`` (a local file) in headless Chromium; yield ``(page, problems)``."""
    reason = browser_available()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    from playwright.sync_api import sync_playwright

    problems = Problems()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.on(
                "console", lambda m: problems.console_errors.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda e: problems.console_errors.append(str(e)))
            page.on("requestfailed", lambda r: problems.failed_requests.append(r.url))
            page.on(
                "request",
                lambda r: None if r.url.startswith(("file:", "data:")) else problems.requests.append(r.url),
            )
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(wait_ms)
            yield page, problems
        finally:
            browser.close()
