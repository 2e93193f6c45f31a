"""Write screenshots of the resource page at desktop and phone width.

Run from the repository root:

    .venv/bin/python -m tests.web.screenshots

It serves examples/lab.yaml in this process on 127.0.0.1 with a manual clock. It puts
a few locks, reservations, an unavailable resource and a planned maintenance window in
place. Then it writes docs/page-desktop.png (1280 px wide) and docs/page-phone.png
(390 px wide) with headless /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from rentabot.clock import ManualClock
from tests.support.servers import REPO, in_process_server
from tests.web.browser import DESKTOP, PHONE, launch_chromium, open_page

START = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)

# Locks by resource id: (seconds left, holder label), one in each colour band.
LOCKS = {
    1: (45 * 60, "firmware-nightly#4711"),
    4: (10 * 60, "android-ui-tests#88"),
    9: (3 * 60, "kernel-ci#2042"),
    14: (2 * 3600, "release-build 1.4.0"),
}

# Out of rotation: stm32-nucleo-01 by hand, windows-vm on a schedule tomorrow morning.
UNAVAILABLE_ID = 11
UNAVAILABLE = {
    "reason": "ST-LINK probe replaced",
    "until": (START + timedelta(hours=6)).isoformat(),
}
MAINTENANCE_ID = 17
MAINTENANCE = {
    "start": (START + timedelta(hours=22, minutes=30)).isoformat(),
    "end": (START + timedelta(hours=24, minutes=30)).isoformat(),
    "reason": "Windows updates",
}


def set_up_lab(api: httpx.Client) -> None:
    for resource_id, (ttl, label) in LOCKS.items():
        response = api.post(
            f"/api/v1/resources/{resource_id}/lock", json={"ttl": ttl, "locked_by_label": label}
        )
        response.raise_for_status()

    claimed = api.post(
        "/api/v1/reservations",
        json={"tags": ["matlab"], "quantity": 2, "locked_by_label": "simulink-regression"},
    )
    claimed.raise_for_status()
    api.post(f"/api/v1/reservations/{claimed.json()['reservation_id']}/claim").raise_for_status()

    fulfilled = api.post(
        "/api/v1/reservations",
        json={"tags": ["ios"], "quantity": 1, "locked_by_label": "ios-smoke#301"},
    )
    fulfilled.raise_for_status()

    # Resource 1 is locked, so three pixels cannot be served yet: this one waits and
    # keeps the two free pixels for itself.
    pending = api.post(
        "/api/v1/reservations",
        json={"tags": ["pixel"], "quantity": 3, "locked_by_label": "camera-benchmark"},
    )
    pending.raise_for_status()

    # Authentication is off on this server, so these need no admin token.
    api.post(f"/api/v1/resources/{UNAVAILABLE_ID}/unavailable", json=UNAVAILABLE).raise_for_status()
    api.post(f"/api/v1/resources/{MAINTENANCE_ID}/maintenance", json=MAINTENANCE).raise_for_status()


def write_screenshots(output_dir: Path) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    clock = ManualClock(START)
    written = []
    with in_process_server(clock=clock) as server, sync_playwright() as playwright:
        with httpx.Client(base_url=server.base_url) as api:
            set_up_lab(api)
        browser = launch_chromium(playwright)
        try:
            for name, viewport in (("page-desktop.png", DESKTOP), ("page-phone.png", PHONE)):
                with open_page(browser, server.base_url + "/", viewport=viewport) as (page, _):
                    page.wait_for_selector("#reservations tbody tr")
                    path = output_dir / name
                    page.screenshot(path=str(path), full_page=True)
                    written.append(path)
        finally:
            browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=REPO / "docs",
        help="directory for page-desktop.png and page-phone.png (default: docs/)",
    )
    arguments = parser.parse_args()
    for path in write_screenshots(arguments.output_dir):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
