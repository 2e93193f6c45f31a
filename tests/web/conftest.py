"""Headless Chromium for the page tests, driven by Playwright's sync API.

The browser is Debian's /usr/bin/chromium. Its proxy points at a closed port on
127.0.0.1 and only 127.0.0.1 and localhost bypass it, so a request to any other host
fails instead of leaving the machine. The tests also record every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.browser import CHROMIUM, launch_chromium


# Per module, not per session: while Playwright's sync API runs, its event loop counts as
# running in this thread, and tests elsewhere that run their own loop would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; install it with: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is missing; install the test extras: pip install -e '.[test]'")

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
