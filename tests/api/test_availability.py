"""The unavailability and maintenance routes over real HTTP, bad input included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from rentabot.clock import ManualClock
from tests.support.servers import InProcessServer


def at(clock: ManualClock, **delta: float) -> str:
    return (clock.now() + timedelta(**delta)).isoformat()


def resource(client: httpx.Client, resource_id: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/resources/{resource_id}").json()["resource"]
    return body


def test_mark_unavailable_then_available(server: InProcessServer, clock: ManualClock) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        marked = client.post(
            "/api/v1/resources/1/unavailable",
            json={"reason": "screen cracked", "until": at(clock, hours=2)},
        )
        refused = client.post("/api/v1/resources/1/lock")
        available_only = [
            r["id"]
            for r in client.get("/api/v1/resources", params={"available": "true"}).json()[
                "resources"
            ]
        ]
        back = client.post("/api/v1/resources/1/available")
        locked = client.post("/api/v1/resources/1/lock")

    body = marked.json()["resource"]
    assert marked.status_code == 200
    assert body["status"] == "unavailable"
    assert body["unavailable"] is True
    assert body["unavailable_reason"] == "screen cracked"
    assert body["unavailable_until"] == at(clock, hours=2)
    assert body["unavailable_source"] == "admin"
    assert refused.status_code == 409
    assert "screen cracked" in refused.json()["message"]
    assert 1 not in available_only
    assert 2 in available_only
    assert back.json()["resource"]["status"] == "available"
    assert locked.status_code == 200


def test_available_filter_false(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.post("/api/v1/resources/3/lock")
        others = [
            r["id"]
            for r in client.get("/api/v1/resources", params={"available": "false"}).json()[
                "resources"
            ]
        ]

    assert others == [3]


def test_no_filter_lists_everything(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.post("/api/v1/resources/1/unavailable", json={"reason": "x"})
        listed = client.get("/api/v1/resources").json()["resources"]

    assert len(listed) == 21


def test_returns_at_until_over_http(server: InProcessServer, clock: ManualClock) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.post(
            "/api/v1/resources/18/unavailable",
            json={"reason": "recalibration", "until": at(clock, minutes=30)},
        )
        reservation = client.post(
            "/api/v1/reservations", json={"tags": ["hil"], "quantity": 1}
        ).json()
        clock.advance(minutes=30)
        after = client.get(f"/api/v1/reservations/{reservation['reservation_id']}").json()

    assert reservation["status"] == "pending"
    assert after["status"] == "fulfilled"


def test_window_lifecycle(server: InProcessServer, clock: ManualClock) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        created = client.post(
            "/api/v1/resources/2/maintenance",
            json={"start": at(clock, hours=1), "end": at(clock, hours=3), "reason": "OS upgrade"},
        )
        listed = client.get("/api/v1/resources/2/maintenance").json()["windows"]
        into = client.post("/api/v1/resources/2/lock", json={"ttl": 7200})
        before = client.post("/api/v1/resources/2/lock", json={"ttl": 3600})
        shown = resource(client, 2)["maintenance_windows"]
        deleted = client.delete(f"/api/v1/resources/2/maintenance/{created.json()['id']}")
        after = client.get("/api/v1/resources/2/maintenance").json()["windows"]

    assert created.status_code == 201
    assert created.json()["reason"] == "OS upgrade"
    assert [w["id"] for w in listed] == [created.json()["id"]]
    assert into.status_code == 409
    assert created.json()["id"] in into.json()["message"]
    assert before.status_code == 200
    assert [w["reason"] for w in shown] == ["OS upgrade"]
    assert deleted.status_code == 204
    assert after == []


def test_window_under_way_unavailable(server: InProcessServer, clock: ManualClock) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.post(
            "/api/v1/resources/4/maintenance",
            json={"start": at(clock, hours=1), "end": at(clock, hours=2), "reason": "firmware"},
        )
        clock.advance(hours=1)
        during = resource(client, 4)
        clock.advance(hours=1)
        after = resource(client, 4)

    assert during["status"] == "unavailable"
    assert during["unavailable_source"] == "maintenance"
    assert during["unavailable_until"] == at(clock)
    assert after["status"] == "available"


# Instants late on this day with a negative offset fall after the year 9999 in UTC.
LAST_DAY = "9999-12-31"
LATEST = f"{LAST_DAY}T23:59:59.999999+00:00"

# method, path, body, expected status, a word the message must contain
BAD_REQUESTS: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
    ("POST", "/api/v1/resources/1/unavailable", {}, 422, "reason"),
    ("POST", "/api/v1/resources/1/unavailable", {"reason": ""}, 422, "reason"),
    ("POST", "/api/v1/resources/1/unavailable", {"reason": "x" * 300}, 422, "reason"),
    (
        "POST",
        "/api/v1/resources/1/unavailable",
        {"reason": "x", "until": "2020-01-01T00:00:00+00:00"},
        400,
        "already passed",
    ),
    (
        "POST",
        "/api/v1/resources/1/unavailable",
        {"reason": "x", "until": "2030-01-01T00:00:00"},
        422,
        "until",
    ),
    ("POST", "/api/v1/resources/1/unavailable", {"reason": "x", "until": "tomorrow"}, 422, "until"),
    (
        "POST",
        "/api/v1/resources/5/unavailable",
        {"reason": "x", "until": f"{LAST_DAY}T23:59:59.999999-23:59"},
        422,
        f"field 'until'='{LAST_DAY}T23:59:59.999999-23:59': Value error, "
        f"{LAST_DAY}T23:59:59.999999-23:59 is after {LATEST}, the latest instant",
    ),
    (
        "POST",
        "/api/v1/resources/5/maintenance",
        {"start": "2030-01-01T01:00:00+00:00", "end": f"{LAST_DAY}T23:00:00-05:00", "reason": "x"},
        422,
        f"field 'end'='{LAST_DAY}T23:00:00-05:00'",
    ),
    (
        "POST",
        "/api/v1/resources/5/maintenance",
        {"start": f"{LAST_DAY}T22:00:00-05:00", "end": f"{LAST_DAY}T23:00:00-05:00", "reason": "x"},
        422,
        f"field 'start'='{LAST_DAY}T22:00:00-05:00'",
    ),
    ("POST", "/api/v1/resources/99/unavailable", {"reason": "x"}, 404, "99"),
    ("POST", "/api/v1/resources/99/available", None, 404, "99"),
    (
        "POST",
        "/api/v1/resources/1/maintenance",
        {"start": "2030-01-01T02:00:00+00:00", "end": "2030-01-01T01:00:00+00:00", "reason": "x"},
        422,
        "not after start",
    ),
    (
        "POST",
        "/api/v1/resources/1/maintenance",
        {"start": "2030-01-01T01:00:00+00:00", "end": "2030-01-01T01:00:00+00:00", "reason": "x"},
        422,
        "not after start",
    ),
    (
        "POST",
        "/api/v1/resources/1/maintenance",
        {"start": "2020-01-01T01:00:00+00:00", "end": "2020-01-01T02:00:00+00:00", "reason": "x"},
        400,
        "already passed",
    ),
    (
        "POST",
        "/api/v1/resources/1/maintenance",
        {"start": "2030-01-01T01:00:00+00:00", "end": "2030-01-01T02:00:00+00:00"},
        422,
        "reason",
    ),
    (
        "POST",
        "/api/v1/resources/1/maintenance",
        {
            "start": "2030-01-01T01:00:00+00:00",
            "end": "2030-01-01T02:00:00+00:00",
            "reason": "overlap",
        },
        409,
        "overlaps",
    ),
    (
        "POST",
        "/api/v1/resources/99/maintenance",
        {"start": "2030-01-01T01:00:00+00:00", "end": "2030-01-01T02:00:00+00:00", "reason": "x"},
        404,
        "99",
    ),
    ("GET", "/api/v1/resources/99/maintenance", None, 404, "99"),
    ("DELETE", "/api/v1/resources/1/maintenance/mw_missing", None, 404, "mw_missing"),
    ("GET", "/api/v1/resources?available=perhaps", None, 422, "available"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "named"),
    BAD_REQUESTS,
    ids=[f"{method} {path} {status} {named}" for method, path, _, status, named in BAD_REQUESTS],
)
def test_bad_request_changes_nothing(
    server: InProcessServer,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    named: str,
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        # One window exists, for the overlap case.
        client.post(
            "/api/v1/resources/1/maintenance",
            json={
                "start": "2030-01-01T00:30:00+00:00",
                "end": "2030-01-01T01:30:00+00:00",
                "reason": "planned",
            },
        )
        before = client.get("/api/v1/resources").json()

        response = client.request(method, path, json=body)

        assert response.status_code == status
        assert named in response.json()["message"]
        assert client.get("/api/v1/resources").json() == before
