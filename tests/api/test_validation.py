"""Bad input gets a 4xx whose message names the value and the fix, and changes nothing."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.support.servers import InProcessServer

# Ids that no store column can hold: a resource id past 32 bits, a 65-character key.
HUGE_ID = "99999999999"
LONG_ID = "res_" + "r" * 61


def raw_json(text: str) -> dict[str, Any]:
    """Request options sending ``text`` as a JSON body, for numbers JSON cannot carry."""
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


# method, path, request options, expected status, a word the message must contain
BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/api/v1/resources/1/lock", raw_json('{"ttl": 1e400}'), 422, "ttl"),
    ("POST", "/api/v1/resources/1/lock", raw_json('{"ttl": NaN}'), 422, "ttl"),
    ("POST", "/api/v1/resources/1/lock", raw_json('{"ttl": -Infinity}'), 422, "ttl"),
    ("POST", "/api/v1/resources/lock?name=pixel-8-a", raw_json('{"ttl": 1e400}'), 422, "ttl"),
    (
        "POST",
        "/api/v1/reservations",
        raw_json('{"tags": ["android"], "quantity": 1e400}'),
        422,
        "quantity",
    ),
    (
        "POST",
        "/api/v1/reservations",
        raw_json('{"tags": ["android"], "quantity": 1, "priority": NaN}'),
        422,
        "priority",
    ),
    (
        "POST",
        "/api/v1/reservations",
        raw_json('{"tags": ["android"], "quantity": 1, "max_wait_time": Infinity}'),
        422,
        "max_wait_time",
    ),
    (
        "POST",
        "/api/v1/resources/1/unavailable",
        raw_json('{"reason": "x", "until": 1e400}'),
        422,
        "until",
    ),
    (
        "POST",
        "/api/v1/resources/1/maintenance",
        raw_json('{"reason": "x", "start": NaN, "end": Infinity}'),
        422,
        "start",
    ),
    ("POST", "/api/v1/resources/1/lock", {"json": {"ttl": 0}}, 422, "ttl"),
    ("POST", "/api/v1/resources/1/lock", {"json": {"ttl": -1}}, 422, "ttl"),
    ("POST", "/api/v1/resources/1/lock", {"json": {"ttl": 2.5}}, 422, "ttl"),
    ("POST", "/api/v1/resources/1/lock", {"json": {"ttl": True}}, 422, "ttl"),
    ("POST", "/api/v1/resources/1/lock", {"json": {"ttl": "soon"}}, 422, "ttl"),
    ("POST", "/api/v1/resources/1/lock", {"json": {"ttl": 10**12}}, 400, "ttl"),
    ("POST", "/api/v1/resources/1/lock", {"json": {"ttl": 7201}}, 400, "max-lock-duration"),
    (
        "POST",
        "/api/v1/resources/1/lock",
        {"json": {"locked_by_label": "x" * 300}},
        422,
        "locked_by_label",
    ),
    ("POST", "/api/v1/resources/1/lock", {"json": [1]}, 422, "body"),
    ("POST", "/api/v1/resources/abc/lock", {}, 422, "resource_id"),
    ("POST", "/api/v1/resources/lock", {}, 400, "id, name or tag"),
    ("POST", "/api/v1/resources/lock", {"params": {"id": "x"}}, 422, "id"),
    ("POST", "/api/v1/resources/lock", {"params": {"name": "nope"}}, 404, "nope"),
    ("POST", "/api/v1/resources/lock", {"params": {"tag": "nope"}}, 404, "nope"),
    ("GET", "/api/v1/resources/abc", {}, 422, "resource_id"),
    ("GET", "/api/v1/resources/9999", {}, 404, "9999"),
    ("POST", "/api/v1/resources/1/unlock", {"params": {"lock-token": "bad"}}, 403, "not locked"),
    ("POST", "/api/v1/resources/1/extend", {"params": {"lock-token": "t"}}, 422, "additional-ttl"),
    ("POST", "/api/v1/resources/1/extend", {"params": {"additional-ttl": "5"}}, 422, "lock-token"),
    (
        "POST",
        "/api/v1/resources/1/extend",
        {"params": {"lock-token": "t", "additional-ttl": "0"}},
        422,
        "additional-ttl",
    ),
    ("POST", "/api/v1/reservations", {"json": {"tags": [], "quantity": 1}}, 422, "tags"),
    ("POST", "/api/v1/reservations", {"json": {"tags": ["android"]}}, 422, "quantity"),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android"], "quantity": 0}},
        422,
        "quantity",
    ),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android"], "quantity": 5000}},
        400,
        "quantity",
    ),
    ("POST", "/api/v1/reservations", {"json": {"tags": ["android"], "quantity": 99}}, 400, "only"),
    ("POST", "/api/v1/reservations", {"json": {"tags": ["gpu"], "quantity": 1}}, 404, "gpu"),
    ("POST", "/api/v1/reservations", {"json": {"tags": [""], "quantity": 1}}, 422, "tags"),
    ("POST", "/api/v1/reservations", {"json": {"tags": "android", "quantity": 1}}, 422, "tags"),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android"], "quantity": 1, "ttl": 0}},
        422,
        "ttl",
    ),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android"], "quantity": 1, "max_wait_time": -3}},
        422,
        "max_wait_time",
    ),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android"], "quantity": 1, "priority": 1000}},
        400,
        "priority",
    ),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android"], "quantity": 1, "priority": "high"}},
        422,
        "priority",
    ),
    (
        "POST",
        "/api/v1/reservations",
        {"content": b"{", "headers": {"content-type": "application/json"}},
        422,
        "body",
    ),
    ("GET", "/api/v1/reservations/res_unknown", {}, 404, "res_unknown"),
    ("POST", "/api/v1/reservations/res_unknown/claim", {}, 404, "res_unknown"),
    ("POST", "/api/v1/reservations/res_unknown/release", {}, 404, "res_unknown"),
    ("DELETE", "/api/v1/reservations/res_unknown", {}, 404, "res_unknown"),
    ("GET", f"/api/v1/resources/{HUGE_ID}", {}, 404, HUGE_ID),
    ("POST", f"/api/v1/resources/{HUGE_ID}/lock", {}, 404, HUGE_ID),
    ("POST", f"/api/v1/resources/{HUGE_ID}/unlock", {"params": {"lock-token": "t"}}, 404, HUGE_ID),
    ("POST", "/api/v1/resources/lock", {"params": {"id": HUGE_ID}}, 404, HUGE_ID),
    ("GET", f"/api/v1/resources/{HUGE_ID}/maintenance", {}, 404, HUGE_ID),
    ("GET", f"/api/v1/reservations/{LONG_ID}", {}, 404, LONG_ID),
    ("POST", f"/api/v1/reservations/{LONG_ID}/claim", {}, 404, LONG_ID),
    ("DELETE", f"/api/v1/reservations/{LONG_ID}", {}, 404, LONG_ID),
    # PostgreSQL cannot hold NUL: a name or tag with one matches nothing, anywhere.
    ("POST", "/api/v1/resources/lock", {"params": {"name": "pixel\x00"}}, 404, "pixel"),
    ("POST", "/api/v1/resources/lock", {"params": {"tag": "android\x00"}}, 404, "android"),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android\x00"], "quantity": 1}},
        422,
        "control character",
    ),
    (
        "POST",
        "/api/v1/reservations",
        {"json": {"tags": ["android"], "quantity": 1, "locked_by_label": "ci\x00"}},
        422,
        "locked_by_label",
    ),
    ("POST", "/api/v1/resources/1/unavailable", {"json": {"reason": "x\x00"}}, 422, "reason"),
    (
        "POST",
        "/api/v1/resources/1/maintenance",
        {
            "json": {
                "reason": "x\ny",
                "start": "2030-01-01T00:00:00Z",
                "end": "2030-01-02T00:00:00Z",
            }
        },
        422,
        "reason",
    ),
    ("GET", "/api/v1/nothing-here", {}, 404, "/api/v1/nothing-here"),
    ("PUT", "/api/v1/resources", {}, 405, "PUT"),
]


def state(client: httpx.Client) -> tuple[Any, Any]:
    return (
        client.get("/api/v1/resources").json(),
        client.get("/api/v1/reservations").json(),
    )


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "named"),
    BAD_REQUESTS,
    ids=[f"{method} {path} {status} {named}" for method, path, _, status, named in BAD_REQUESTS],
)
def test_bad_request_rejected_cleanly(
    server: InProcessServer,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    named: str,
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        before = state(client)

        response = client.request(method, path, **options)

        assert response.status_code == status
        assert named in response.json()["message"]
        assert state(client) == before


def test_unstorable_ids_audited(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.post(f"/api/v1/resources/{HUGE_ID}/lock")
        client.post(f"/api/v1/reservations/{LONG_ID}/claim")

        entries = client.get("/api/v1/audit").json()["entries"]

    claim, lock = entries[0], entries[1]
    assert claim["outcome"] == "ReservationNotFound"
    assert LONG_ID in claim["detail"]
    assert lock["outcome"] == "ResourceNotFound"
    assert HUGE_ID in lock["detail"]


def test_errors_never_echo_lock_token(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        token = client.post("/api/v1/resources/1/lock").json()["lock-token"]

        answers = [
            client.post("/api/v1/resources/1/lock"),
            client.post("/api/v1/resources/1/unlock", params={"lock-token": "wrong"}),
            client.post(
                "/api/v1/resources/1/extend", params={"lock-token": "wrong", "additional-ttl": 5}
            ),
            client.post(
                "/api/v1/resources/1/extend", params={"lock-token": token, "additional-ttl": 10**6}
            ),
        ]

    for answer in answers:
        assert answer.status_code in (400, 403)
        assert token not in answer.text


def test_label_and_ip_recorded(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        locked = client.post("/api/v1/resources/1/lock", json={"locked_by_label": "nightly#4"})
        resource = client.get("/api/v1/resources/1").json()["resource"]
        client.post(
            "/api/v1/resources/1/unlock", params={"lock-token": locked.json()["lock-token"]}
        )
        after = client.get("/api/v1/resources/1").json()["resource"]

    assert resource["locked_by_label"] == "nightly#4"
    assert resource["locked_by_ip"] == "127.0.0.1"
    assert after["locked_by_label"] is None
    assert after["locked_by_ip"] is None


def test_non_finite_number_audited(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.post("/api/v1/resources/1/lock", **raw_json('{"ttl": 1e400}'))

        [entry] = client.get("/api/v1/audit").json()["entries"]

    assert entry["status"] == 422
    assert "ttl" in entry["detail"]
    assert "inf" in entry["detail"]


def test_huge_value_not_echoed(server: InProcessServer) -> None:
    label = "x" * 1_000_000
    with httpx.Client(base_url=server.base_url) as client:
        response = client.post("/api/v1/resources/1/lock", json={"locked_by_label": label})

    assert response.status_code == 422
    assert "locked_by_label" in response.json()["message"]
    assert len(response.content) < 5_000


@pytest.mark.parametrize(
    "params",
    [{"token_name": "ci\x00"}, {"operation": "POST\x00"}, {"reservation_id": "res_\x00"}],
)
def test_audit_filter_with_nul_matches_nothing(
    server: InProcessServer, params: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.post("/api/v1/resources/1/lock")

        response = client.get("/api/v1/audit", params=params)

    assert response.status_code == 200, response.text
    assert response.json()["entries"] == []


def test_tag_filter_with_nul_matches_nothing(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get("/api/v1/resources", params={"tag": "android\x00"})

    assert response.status_code == 200, response.text
    assert response.json()["resources"] == []


def test_reservation_id_with_nul_not_found(server: InProcessServer) -> None:
    """httpx will not send a NUL in a path, so this request goes over a plain socket."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"GET /api/v1/reservations/res_%00x HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
