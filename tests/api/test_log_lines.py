"""Client text cannot forge log lines: control characters are escaped, one event per line."""

from __future__ import annotations

import logging

import httpx
import pytest

from rentabot.logtext import printable
from tests.support.servers import InProcessServer

FORGED = "job\r\nINFO forged line \x1b[2J\x00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pixel-8 ジョブ", "pixel-8 ジョブ"),
        ("a\nb", "a\\nb"),
        ("\x1b[2J", "\\x1b[2J"),
        ("tab\there", "tab\\there"),
        ("line\u2028sep", "line\\u2028sep"),
        (None, "None"),
    ],
)
def test_printable_cases(text: object, expected: str) -> None:
    assert printable(text) == expected


def rentabot_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("rentabot")]


@pytest.mark.parametrize("label", [FORGED, "job\x00", "tab\tlabel"])
def test_label_with_control_rejected(server: InProcessServer, label: str) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        response = client.post("/api/v1/resources/1/lock", json={"locked_by_label": label})
        resource = client.get("/api/v1/resources/1").json()["resource"]

    assert response.status_code == 422
    assert "locked_by_label" in response.json()["message"]
    assert "control character" in response.json()["message"]
    assert resource["lock-token"] == ""


def test_reason_cannot_forge_lines(
    server: InProcessServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Reasons are checked like labels; a health check's own reason is logged escaped."""
    caplog.set_level(logging.INFO, logger="rentabot")
    with httpx.Client(base_url=server.base_url) as client:
        rejected = client.post("/api/v1/resources/1/unavailable", json={"reason": FORGED})
        marked = client.post(
            "/api/v1/resources/2/unavailable", json={"reason": "firmware \u2028 update"}
        )
    assert rejected.status_code == 422
    assert "reason" in rejected.json()["message"]
    assert marked.status_code == 200, marked.text

    lines = [line for line in rentabot_lines(caplog) if line.startswith("resource.unavailable")]
    assert len(lines) == 1, rentabot_lines(caplog)
    assert "firmware \\u2028 update" in lines[0]


def test_path_cannot_forge_lines(server: InProcessServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rentabot")
    with httpx.Client(base_url=server.base_url) as client:
        invalid = client.get("/api/v1/resources/1%0AINFO%20forged")
        unknown = client.post("/api/v1/reservations/res_x%0AINFO%20forged/claim")
    assert invalid.status_code == 422
    assert unknown.status_code == 404

    lines = [line for line in rentabot_lines(caplog) if "forged" in line]
    assert len(lines) == 2, rentabot_lines(caplog)
    for line in lines:
        assert "\n" not in line
        assert line.startswith("request.")
