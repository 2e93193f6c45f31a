"""The page's admin controls in headless Chromium, against a service with authentication on.

The admin flows are driven by keyboard alone: Tab, Enter and Escape, the way a user
without a mouse works. The server runs on a manual clock, and every wait is bounded
by ``WAIT_MS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.auth import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    UNKNOWN_TOKEN,
    key,
    write_auth_file,
)
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server
from tests.web.browser import (
    PHONE,
    is_focused,
    open_page,
    press_until_focused,
    row,
    wait_for_status,
)

pytestmark = pytest.mark.browser

PIXEL_8_A = 1
PIXEL_8_B = 2
GALAXY_S23 = 4

GREY = "rgb(110, 119, 129)"
STORAGE_KEY = "rentabot-admin-token"


@pytest.fixture
def auth_server(tmp_path: Path, clock: ManualClock) -> Iterator[InProcessServer]:
    """rentabot on examples/lab.yaml with the test tokens of tests/support/auth.py."""
    settings = Settings(descriptor=LAB_DESCRIPTOR, auth_config=write_auth_file(tmp_path))
    with in_process_server(settings, clock=clock) as running:
        yield running


@pytest.fixture
def admin_api(auth_server: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=auth_server.base_url, headers=key(ADMIN_TOKEN), timeout=30
    ) as client:
        yield client


def lock_as(api: httpx.Client, resource_id: int, token: str, label: str) -> None:
    response = api.post(
        f"/api/v1/resources/{resource_id}/lock",
        json={"ttl": 3600, "locked_by_label": label},
        headers=key(token),
    )
    assert response.status_code == 200, response.text


def resource_state(api: httpx.Client, resource_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/resources/{resource_id}")
    assert response.status_code == 200, response.text
    resource: dict[str, Any] = response.json()["resource"]
    return resource


def audit_total(api: httpx.Client) -> int:
    response = api.get("/api/v1/audit", params={"limit": 1})
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def sign_in_by_keyboard(page: Any, token: str) -> None:
    press_until_focused(page, "#admin-entry summary")
    page.keyboard.press("Enter")
    press_until_focused(page, "#admin-token")
    page.keyboard.type(token)
    page.keyboard.press("Enter")


def wait_for_text(page: Any, selector: str) -> str:
    page.wait_for_function(
        "(selector) => document.querySelector(selector).textContent !== ''", arg=selector
    )
    text: str = page.locator(selector).inner_text()
    return text


def wait_for_result(page: Any, fragment: str) -> str:
    """Wait until the feedback bar's status message contains ``fragment``, and return it."""
    page.wait_for_function(
        "(fragment) => document.getElementById('admin-result').textContent.includes(fragment)",
        arg=fragment,
    )
    text: str = page.locator("#admin-result").inner_text()
    return text


def wait_until_admin_on(page: Any) -> None:
    page.wait_for_selector("#resources.admin-on .row-actions")


def dialog_is_open(page: Any, dialog_id: str) -> bool:
    is_open: bool = page.locator(f"#{dialog_id}").evaluate("dialog => dialog.open")
    return is_open


def wait_until_closed(page: Any, dialog_id: str) -> None:
    page.wait_for_function("(id) => !document.getElementById(id).open", arg=dialog_id)


def stored_token(page: Any) -> str | None:
    token: str | None = page.evaluate("(key) => sessionStorage.getItem(key)", STORAGE_KEY)
    return token


def action_button(resource_id: int, action: str) -> str:
    return f"#resources tr[data-id='{resource_id}'] .action-{action}"


def badge_selector(resource_id: int) -> str:
    return f"#resources tr[data-id='{resource_id}'] .cell-status .badge"


def computed(page: Any, selector: str, property_name: str) -> str:
    value: str = page.locator(selector).evaluate(
        "(node, name) => getComputedStyle(node).getPropertyValue(name)", property_name
    )
    return value


def type_until(page: Any, month: str, day: str, year: str, hour: str, minute: str) -> None:
    """Type a date and time into the focused datetime-local input (en-US: MM/DD/YYYY hh:mm AM)."""
    page.keyboard.type(month)
    page.keyboard.type(day)
    page.keyboard.type(year)
    # The year takes up to six digits, so Tab moves on to the hour.
    page.keyboard.press("Tab")
    page.keyboard.type(hour)
    page.keyboard.type(minute)
    page.keyboard.type("A")


# The whole admin flow


def test_admin_flow_by_keyboard(
    browser: Any, auth_server: InProcessServer, admin_api: httpx.Client
) -> None:
    lock_as(admin_api, GALAXY_S23, ALICE_TOKEN, "ui-tests#17")
    # Berlin is at UTC+01:00 in January: the page sends the typed time with that offset.
    with open_page(browser, auth_server.base_url + "/", timezone_id="Europe/Berlin") as (
        page,
        recorder,
    ):
        sign_in_by_keyboard(page, ADMIN_TOKEN)
        wait_until_admin_on(page)
        signed_in = wait_for_text(page, "#admin-login-status")
        token_in_session = stored_token(page)

        # Mark unavailable through the dialog.
        press_until_focused(page, action_button(PIXEL_8_A, "unavailable"))
        page.keyboard.press("Enter")
        unavailable_dialog_open = dialog_is_open(page, "unavailable-dialog")
        reason_focused = is_focused(page, "#unavailable-reason")
        page.keyboard.type("USB hub replaced")
        press_until_focused(page, "#unavailable-until")
        type_until(page, "01", "02", "2026", "10", "30")
        press_until_focused(page, "#unavailable-dialog button[type='submit']")
        page.keyboard.press("Enter")
        wait_for_status(page, PIXEL_8_A, "unavailable")
        wait_until_closed(page, "unavailable-dialog")
        unavailable_result = wait_for_result(page, "now unavailable")
        page.wait_for_function(
            "(selector) => document.activeElement.matches(selector)",
            arg=action_button(PIXEL_8_A, "available"),
        )
        marked = resource_state(admin_api, PIXEL_8_A)

        # The grey badge shows the reason on keyboard focus.
        press_until_focused(page, badge_selector(PIXEL_8_A), key="Shift+Tab")
        tip = row(page, PIXEL_8_A).locator(".tip")
        tip_shown = tip.is_visible()
        tip_text = tip.inner_text()
        badge_colour = computed(page, badge_selector(PIXEL_8_A), "background-color")

        # Mark available, after confirming.
        press_until_focused(page, action_button(PIXEL_8_A, "available"))
        page.keyboard.press("Enter")
        cancel_focused = is_focused(page, "#confirm-dialog .dialog-cancel")
        available_title = page.locator("#confirm-title").inner_text()
        press_until_focused(page, "#confirm-button")
        page.keyboard.press("Enter")
        wait_for_status(page, PIXEL_8_A, "available")
        wait_until_closed(page, "confirm-dialog")
        available_result = wait_for_result(page, "available again")

        # Force unlock a lock that a user token took, after confirming.
        holder = row(page, GALAXY_S23).locator(".cell-holder").inner_text()
        press_until_focused(page, action_button(GALAXY_S23, "unlock"))
        page.keyboard.press("Enter")
        unlock_text = page.locator("#confirm-text").inner_text()
        press_until_focused(page, "#confirm-button")
        page.keyboard.press("Enter")
        wait_for_status(page, GALAXY_S23, "available")
        wait_until_closed(page, "confirm-dialog")
        unlock_result = wait_for_result(page, "galaxy-s23")
        local_storage_size = page.evaluate("localStorage.length")

    assert "Admin controls are on" in signed_in
    assert token_in_session == ADMIN_TOKEN
    assert local_storage_size == 0

    assert unavailable_dialog_open
    assert reason_focused
    assert (
        unavailable_result
        == "pixel-8-a is now unavailable: USB hub replaced, until 2026-01-02 10:30."
    )
    assert marked["unavailable_reason"] == "USB hub replaced"
    assert marked["unavailable_until"] == "2026-01-02T10:30:00+01:00"
    assert marked["unavailable_source"] == "admin"

    assert tip_shown
    assert tip_text == "USB hub replaced (until 2026-01-02 10:30)"
    assert badge_colour == GREY

    assert cancel_focused
    assert available_title == "Mark pixel-8-a available?"
    assert available_result == "pixel-8-a is available again."
    assert resource_state(admin_api, PIXEL_8_A)["unavailable"] is False

    assert "ui-tests#17" in holder
    assert "token alice" in holder
    assert '"ui-tests#17" (token alice, 127.0.0.1)' in unlock_text
    assert unlock_result == "galaxy-s23 is unlocked (Resource unlocked by an administrator)."
    assert resource_state(admin_api, GALAXY_S23)["lock-expires-at"] is None

    origins = {
        urlsplit(url)._replace(path="", query="", fragment="").geturl() for url in recorder.requests
    }
    assert origins == {auth_server.base_url}
    assert [url for url in recorder.requests if ADMIN_TOKEN in url] == []
    assert recorder.page_errors == []


def test_escape_closes_dialog(
    browser: Any, auth_server: InProcessServer, admin_api: httpx.Client
) -> None:
    total_before = audit_total(admin_api)
    with open_page(browser, auth_server.base_url + "/") as (page, _):
        sign_in_by_keyboard(page, ADMIN_TOKEN)
        wait_until_admin_on(page)
        press_until_focused(page, action_button(PIXEL_8_B, "unavailable"))
        page.keyboard.press("Enter")
        page.keyboard.type("typed, then abandoned")
        page.keyboard.press("Escape")
        wait_until_closed(page, "unavailable-dialog")
        page.wait_for_function(
            "(selector) => document.activeElement.matches(selector)",
            arg=action_button(PIXEL_8_B, "unavailable"),
        )
        status = page.locator(f"#resources tr[data-id='{PIXEL_8_B}']").get_attribute("data-status")

    assert status == "available"
    assert resource_state(admin_api, PIXEL_8_B)["unavailable"] is False
    assert audit_total(admin_api) == total_before


def test_past_until_shows_error(
    browser: Any, auth_server: InProcessServer, admin_api: httpx.Client
) -> None:
    with open_page(browser, auth_server.base_url + "/") as (page, _):
        sign_in_by_keyboard(page, ADMIN_TOKEN)
        wait_until_admin_on(page)
        press_until_focused(page, action_button(PIXEL_8_A, "unavailable"))
        page.keyboard.press("Enter")
        page.keyboard.type("rack move")
        press_until_focused(page, "#unavailable-until")
        # The service's clock reads 2026-01-01 12:00 UTC.
        type_until(page, "12", "31", "2025", "09", "00")
        press_until_focused(page, "#unavailable-dialog button[type='submit']")
        page.keyboard.press("Enter")
        error = wait_for_text(page, "#unavailable-dialog .dialog-error")
        still_open = dialog_is_open(page, "unavailable-dialog")
        error_role = page.locator("#unavailable-dialog .dialog-error").get_attribute("role")

    assert error.startswith("Could not mark pixel-8-a unavailable (HTTP 400): until=")
    assert "has already passed" in error
    assert still_open
    assert error_role == "alert"
    assert resource_state(admin_api, PIXEL_8_A)["unavailable"] is False


def test_reason_markup_stays_text(
    browser: Any, auth_server: InProcessServer, admin_api: httpx.Client
) -> None:
    reason = "<img src=x onerror=alert(1)><b>hub</b>"
    with open_page(browser, auth_server.base_url + "/") as (page, recorder):
        sign_in_by_keyboard(page, ADMIN_TOKEN)
        wait_until_admin_on(page)
        press_until_focused(page, action_button(PIXEL_8_A, "unavailable"))
        page.keyboard.press("Enter")
        page.keyboard.type(reason)
        press_until_focused(page, "#unavailable-dialog button[type='submit']")
        page.keyboard.press("Enter")
        wait_for_status(page, PIXEL_8_A, "unavailable")
        result = wait_for_result(page, "now unavailable")
        tip_text = row(page, PIXEL_8_A).locator(".tip").text_content()
        press_until_focused(page, action_button(PIXEL_8_A, "available"))
        page.keyboard.press("Enter")
        confirm_text = page.locator("#confirm-text").inner_text()
        page.keyboard.press("Escape")
        elements = page.locator("img, b").count()

    assert result == f"pixel-8-a is now unavailable: {reason}."
    assert tip_text == reason
    assert reason in confirm_text
    assert elements == 0
    assert recorder.dialogs == []
    assert [url for url in recorder.requests if urlsplit(url).path == "/x"] == []


# Tokens that are not the admin token


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (UNKNOWN_TOKEN, "This token matches no token configured on the service."),
        (ALICE_TOKEN, "This is a user token, and the admin controls need the admin token."),
    ],
    ids=["unknown-token", "user-token"],
)
def test_wrong_token_changes_nothing(
    browser: Any,
    auth_server: InProcessServer,
    admin_api: httpx.Client,
    token: str,
    message: str,
) -> None:
    resources_before = admin_api.get("/api/v1/resources").json()
    total_before = audit_total(admin_api)
    with open_page(browser, auth_server.base_url + "/") as (page, _):
        sign_in_by_keyboard(page, token)
        error = wait_for_text(page, "#admin-login-error")
        error_role = page.locator("#admin-login-error").get_attribute("role")
        error_visible = page.locator("#admin-login-error").is_visible()
        admin_column = page.locator("#resources.admin-on").count()
        row_buttons = page.locator("#resources .row-actions").count()
        sign_in_shown = page.locator("#admin-token").is_visible()
        token_in_session = stored_token(page)

    assert error.startswith(message)
    assert error.endswith("Nothing was changed.")
    assert error_role == "alert"
    assert error_visible
    assert admin_column == 0
    assert row_buttons == 0
    assert sign_in_shown
    assert token_in_session is None
    assert admin_api.get("/api/v1/resources").json() == resources_before
    assert audit_total(admin_api) == total_before


def test_stored_user_token_forgotten(browser: Any, auth_server: InProcessServer) -> None:
    with open_page(browser, auth_server.base_url + "/") as (page, _):
        page.evaluate(
            "([key, token]) => sessionStorage.setItem(key, token)", [STORAGE_KEY, ALICE_TOKEN]
        )
        page.reload()
        error = wait_for_text(page, "#admin-login-error")
        token_in_session = stored_token(page)
        row_buttons = page.locator("#resources .row-actions").count()

    assert error.startswith("The admin token kept in this tab was rejected, so the page forgot it.")
    assert "user token" in error
    assert token_in_session is None
    assert row_buttons == 0


def test_token_kept_until_forgotten(browser: Any, auth_server: InProcessServer) -> None:
    with open_page(browser, auth_server.base_url + "/") as (page, _):
        sign_in_by_keyboard(page, ADMIN_TOKEN)
        wait_until_admin_on(page)
        page.reload()
        wait_until_admin_on(page)
        token_after_reload = stored_token(page)

        # After a reload the Admin entry is closed again.
        press_until_focused(page, "#admin-entry summary")
        page.keyboard.press("Enter")
        press_until_focused(page, "#forget-token")
        page.keyboard.press("Enter")
        page.wait_for_selector("#resources:not(.admin-on)")
        forgotten = stored_token(page)
        row_buttons = page.locator("#resources .row-actions").count()
        input_focused = is_focused(page, "#admin-token")
        status = page.locator("#admin-login-status").inner_text()

    assert token_after_reload == ADMIN_TOKEN
    assert forgotten is None
    assert row_buttons == 0
    assert input_focused
    assert status == "Admin token forgotten. The admin controls are hidden."


# Authentication off


def test_auth_off_hides_force_unlock(browser: Any, server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as api:
        lock = api.post(f"/api/v1/resources/{PIXEL_8_A}/lock", json={"ttl": 600})
        assert lock.status_code == 200, lock.text
    with open_page(browser, server.base_url + "/") as (page, _):
        hint = page.locator("#admin-sign-in .hint").text_content()
        sign_in_by_keyboard(page, "any text")
        wait_until_admin_on(page)
        session_text = page.locator("#admin-session-text").inner_text()
        unlock_shown = page.locator(action_button(PIXEL_8_A, "unlock")).is_visible()
        unavailable_shown = page.locator(action_button(PIXEL_8_A, "unavailable")).is_visible()

    assert (
        hint == "Authentication is off on this service, so any token turns the admin controls on."
    )
    assert "Force unlock needs authentication on" in session_text
    assert not unlock_shown
    assert unavailable_shown


# Maintenance windows


def test_maintenance_window_in_row(
    browser: Any, auth_server: InProcessServer, admin_api: httpx.Client, clock: ManualClock
) -> None:
    with open_page(browser, auth_server.base_url + "/") as (page, _):
        sign_in_by_keyboard(page, ADMIN_TOKEN)
        wait_until_admin_on(page)
        window = admin_api.post(
            f"/api/v1/resources/{GALAXY_S23}/maintenance",
            json={
                "start": "2026-01-02T08:00:00+00:00",
                "end": "2026-01-02T12:00:00+00:00",
                "reason": "<i>firmware</i> upgrade",
            },
        )
        assert window.status_code == 201, window.text
        note = row(page, GALAXY_S23).locator(".maintenance-note")
        note.wait_for()
        note_text = note.inner_text()

        clock.advance(hours=21)
        wait_for_status(page, GALAXY_S23, "unavailable")
        tip_text = row(page, GALAXY_S23).locator(".tip").text_content()
        notes_during = row(page, GALAXY_S23).locator(".maintenance-note").count()
        available_offered = page.locator(action_button(GALAXY_S23, "available")).is_visible()
        elements = page.locator("main i").count()

    assert note_text == "Maintenance from 2026-01-02 08:00 to 12:00: <i>firmware</i> upgrade"
    assert tip_text == "Maintenance: <i>firmware</i> upgrade (until 2026-01-02 12:00)"
    assert notes_during == 0
    assert not available_offered
    assert elements == 0


# Phone width


def test_admin_fits_phone_width(
    browser: Any, auth_server: InProcessServer, admin_api: httpx.Client
) -> None:
    lock_as(admin_api, PIXEL_8_A, ALICE_TOKEN, "x" * 256)
    with open_page(browser, auth_server.base_url + "/", viewport=PHONE) as (page, _):
        sign_in_by_keyboard(page, ADMIN_TOKEN)
        wait_until_admin_on(page)
        widths = page.evaluate(
            "({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth})"
        )
        unlock_button = page.locator(action_button(PIXEL_8_A, "unlock"))
        unlock_box = unlock_button.bounding_box()
        unlock_button.focus()
        page.keyboard.press("Enter")
        dialog_box = page.locator("#confirm-dialog").bounding_box()
        text_box = page.locator("#confirm-text").bounding_box()

    assert widths["scroll"] <= widths["client"]
    assert unlock_box is not None
    assert unlock_box["x"] + unlock_box["width"] <= PHONE["width"]
    assert dialog_box is not None
    assert dialog_box["x"] >= 0
    assert dialog_box["x"] + dialog_box["width"] <= PHONE["width"]
    assert text_box is not None
    assert text_box["x"] + text_box["width"] <= dialog_box["x"] + dialog_box["width"]
