"""Launch Debian's Chromium and open the resource page with everything it does recorded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")

# No background traffic of the browser's own, and a proxy on a closed local port for
# every host except this machine, so nothing can reach another host.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost",
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Upper bound of every wait in the page tests, in milliseconds. Only a broken page
# waits this long; the acceptance bound of one second is asserted separately.
WAIT_MS = 10_000


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


@dataclass
class Recorder:
    """What a page did: every request URL, dialogs opened, console errors, uncaught errors."""

    requests: list[str] = field(default_factory=list)
    event_stream_headers: list[dict[str, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_request(self, request: Any) -> None:
        self.requests.append(request.url)
        if "/api/v1/events" in request.url:
            self.event_stream_headers.append(request.all_headers())

    def on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_page_error(self, error: Any) -> None:
        self.page_errors.append(str(error))


@contextmanager
def open_page(
    browser: Any, url: str, viewport: dict[str, int] | None = None, timezone_id: str = "UTC"
) -> Iterator[tuple[Any, Recorder]]:
    """Open ``url`` in a fresh browser context and wait until the stream is live."""
    context = browser.new_context(
        viewport=viewport or DESKTOP, timezone_id=timezone_id, locale="en-US"
    )
    recorder = Recorder()
    context.on("request", recorder.on_request)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("dialog", recorder.on_dialog)
    page.on("console", recorder.on_console)
    page.on("pageerror", recorder.on_page_error)
    try:
        page.goto(url)
        wait_until_live(page)
        yield page, recorder
    finally:
        context.close()


def wait_until_live(page: Any) -> None:
    """Wait until the stream is connected and the resources are listed."""
    page.wait_for_selector("#connection[data-state='live']")
    page.wait_for_selector("#resources tbody tr")


ROW_STATUS = """([id, status]) => {
  const row = document.querySelector(`#resources tbody tr[data-id="${id}"]`);
  return row !== null && row.dataset.status === status;
}"""


def wait_for_status(page: Any, resource_id: int, status: str, timeout: int = WAIT_MS) -> None:
    page.wait_for_function(ROW_STATUS, arg=[resource_id, status], polling="raf", timeout=timeout)


RESERVATION_STATUS = """([id, status]) => {
  const row = document.querySelector(`#reservations tbody tr[data-id="${id}"]`);
  return status === null ? row === null : row !== null && row.dataset.status === status;
}"""


def wait_for_reservation(page: Any, reservation_id: str, status: str | None) -> None:
    """Wait until the reservation's row shows ``status``, or is gone when it is None."""
    page.wait_for_function(
        RESERVATION_STATUS, arg=[reservation_id, status], polling="raf", timeout=WAIT_MS
    )


def seconds_until(change: Callable[[], object], wait_until_shown: Callable[[], object]) -> float:
    """Run ``change`` (an API call), wait until the page shows it, return the seconds between."""
    started = time.monotonic()
    change()
    wait_until_shown()
    return time.monotonic() - started


def row(page: Any, resource_id: int) -> Any:
    return page.locator(f"#resources tbody tr[data-id='{resource_id}']")


def column_texts(page: Any, column: str) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(
        f"#resources tbody tr .cell-{column}", "cells => cells.map(cell => cell.textContent)"
    )
    return texts


def shown_ids(page: Any) -> list[int]:
    ids: list[str] = page.eval_on_selector_all(
        "#resources tbody tr", "rows => rows.map(row => row.dataset.id)"
    )
    return [int(value) for value in ids]


IS_FOCUSED = "(selector) => document.activeElement?.matches(selector) ?? false"


def is_focused(page: Any, selector: str) -> bool:
    focused: bool = page.evaluate(IS_FOCUSED, selector)
    return focused


def press_until_focused(page: Any, selector: str, key: str = "Tab", max_presses: int = 200) -> None:
    """Press ``key`` until the focused element matches ``selector``, as a keyboard user would."""
    for _ in range(max_presses):
        page.keyboard.press(key)
        if is_focused(page, selector):
            return
    raise AssertionError(f"no element matching {selector!r} got focus after {max_presses} x {key}")
