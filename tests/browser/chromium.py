"""Debian's chromium for the browser tests: where it is, how it starts, and a page that records what went wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="Debian chromium is not installed at /usr/bin/chromium")


def open_page(browser, server, javascript: bool = True):
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.outside = []  # requests that left our server
    page.problems = []  # console errors, CSP violations
    page.on("request", lambda r: None if r.url.startswith(server) else page.outside.append(r.url))
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    return context, page
