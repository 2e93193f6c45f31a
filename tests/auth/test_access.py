"""Authentication details: who sees lock tokens, key forms, origins, force unlock, secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.auth import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    ALL_TOKENS,
    BOB_TOKEN,
    CAROL_TOKEN,
    UNKNOWN_TOKEN,
    key,
    write_auth_file,
)
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[InProcessServer]:
    settings = Settings(descriptor=LAB_DESCRIPTOR, auth_config=write_auth_file(tmp_path))
    with in_process_server(settings, clock=ManualClock()) as server:
        yield server


def test_lock_token_shown_to_holder_and_admin(secured: InProcessServer) -> None:
    with httpx.Client(base_url=secured.base_url) as client:
        token = client.post("/api/v1/resources/1/lock", headers=key(ALICE_TOKEN)).json()[
            "lock-token"
        ]

        def shown(headers: dict[str, str]) -> str:
            body = client.get("/api/v1/resources/1", headers=headers).json()["resource"]
            value: str = body["lock-token"]
            return value

        assert shown(key(ALICE_TOKEN)) == token
        assert shown(key(ADMIN_TOKEN)) == token
        assert shown(key(CAROL_TOKEN)) == ""
        assert shown({}) == ""
        listed = client.get("/api/v1/resources", headers=key(BOB_TOKEN)).json()["resources"][0]
        assert listed["lock-token"] == ""
        assert listed["locked_by_token"] == "alice"


def test_reservation_tokens_shown_to_owner(secured: InProcessServer) -> None:
    with httpx.Client(base_url=secured.base_url) as client:
        rid = client.post(
            "/api/v1/reservations",
            headers=key(ALICE_TOKEN),
            json={"tags": ["matlab"], "quantity": 1},
        ).json()["reservation_id"]

        def tokens(headers: dict[str, str]) -> list[str]:
            value: list[str] = client.get(f"/api/v1/reservations/{rid}", headers=headers).json()[
                "lock_tokens"
            ]
            return value

        assert len(tokens(key(ALICE_TOKEN))) == 1
        assert len(tokens(key(ADMIN_TOKEN))) == 1
        assert tokens(key(CAROL_TOKEN)) == []


def test_bearer_header_accepted(secured: InProcessServer) -> None:
    response = httpx.post(
        secured.base_url + "/api/v1/resources/1/lock",
        headers={"Authorization": f"Bearer {BOB_TOKEN}"},
    )

    assert response.status_code == 200
    assert response.json()["resource"]["locked_by_token"] == "bob"


def test_unknown_key_message_clear(secured: InProcessServer) -> None:
    response = httpx.post(secured.base_url + "/api/v1/resources/1/lock", headers=key(UNKNOWN_TOKEN))

    assert response.status_code == 401
    assert "matches no configured token" in response.json()["message"]
    assert UNKNOWN_TOKEN not in response.text


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example.net", 403),
        ("null", 403),
        ("https://ci.example.com", 200),
        (None, 200),
    ],
    ids=["other-site", "opaque-origin", "allowed-origin", "no-origin"],
)
def test_browser_origin_checked(secured: InProcessServer, origin: str | None, status: int) -> None:
    headers = key(ALICE_TOKEN) | ({"Origin": origin} if origin else {})

    response = httpx.post(secured.base_url + "/api/v1/resources/5/lock", headers=headers)

    assert response.status_code == status


def test_own_origin_allowed(secured: InProcessServer) -> None:
    headers = key(ALICE_TOKEN) | {"Origin": secured.base_url}

    response = httpx.post(secured.base_url + "/api/v1/resources/5/lock", headers=headers)

    assert response.status_code == 200


def test_origin_checked_with_auth_off() -> None:
    with in_process_server(Settings(descriptor=LAB_DESCRIPTOR), clock=ManualClock()) as server:
        response = httpx.post(
            server.base_url + "/api/v1/resources/5/lock",
            headers={"Origin": "https://evil.example.net"},
        )
        resource = httpx.get(server.base_url + "/api/v1/resources/5").json()["resource"]

    assert response.status_code == 403
    assert resource["status"] == "available"


def test_protected_reads_need_key(tmp_path: Path) -> None:
    settings = Settings(
        descriptor=LAB_DESCRIPTOR, auth_config=write_auth_file(tmp_path, protect_reads=True)
    )
    with in_process_server(settings, clock=ManualClock()) as server:
        anonymous = httpx.get(server.base_url + "/api/v1/resources")
        with_key = httpx.get(server.base_url + "/api/v1/resources", headers=key(CAROL_TOKEN))
        health = httpx.get(server.base_url + "/health")

    assert anonymous.status_code == 401
    assert with_key.status_code == 200
    assert health.status_code == 200


def test_force_unlock_hands_over(secured: InProcessServer) -> None:
    with httpx.Client(base_url=secured.base_url) as client:
        client.post("/api/v1/resources/lock", params={"tag": "staging"}, headers=key(ALICE_TOKEN))
        rid = client.post(
            "/api/v1/reservations",
            headers=key(BOB_TOKEN),
            json={"tags": ["staging"], "quantity": 1},
        ).json()["reservation_id"]

        forced = client.post("/api/v1/resources/21/unlock", headers=key(ADMIN_TOKEN))
        reservation = client.get(f"/api/v1/reservations/{rid}", headers=key(BOB_TOKEN)).json()

    assert forced.status_code == 200
    assert reservation["status"] == "fulfilled"
    assert reservation["resource_ids"] == [21]


def test_force_unlock_by_user_refused(secured: InProcessServer) -> None:
    with httpx.Client(base_url=secured.base_url) as client:
        token = client.post("/api/v1/resources/21/lock", headers=key(ALICE_TOKEN)).json()[
            "lock-token"
        ]
        rid = client.post(
            "/api/v1/reservations",
            headers=key(BOB_TOKEN),
            json={"tags": ["staging"], "quantity": 1},
        ).json()["reservation_id"]

        refused = client.post("/api/v1/resources/21/unlock", headers=key(CAROL_TOKEN))
        resource = client.get("/api/v1/resources/21", headers=key(ADMIN_TOKEN)).json()["resource"]
        reservation = client.get(f"/api/v1/reservations/{rid}", headers=key(BOB_TOKEN)).json()

    assert refused.status_code == 403
    assert resource["lock-token"] == token
    assert reservation["status"] == "pending"


def test_no_token_in_logs_or_audit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A full session with every token: no configured token appears in a log line or audit entry."""
    settings = Settings(
        descriptor=LAB_DESCRIPTOR, auth_config=write_auth_file(tmp_path), log_level="debug"
    )
    caplog.set_level(logging.DEBUG)
    with (
        in_process_server(settings, clock=ManualClock()) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        for token in (*ALL_TOKENS, UNKNOWN_TOKEN):
            locked = client.post(
                "/api/v1/resources/lock", params={"tag": "android"}, headers=key(token)
            )
            if locked.status_code == 200:
                lock_token = locked.json()["lock-token"]
                client.post(
                    "/api/v1/resources/lock",
                    params={"id": locked.json()["resource"]["id"]},
                    headers=key(token),
                )
                client.post(
                    f"/api/v1/resources/{locked.json()['resource']['id']}/unlock",
                    params={"lock-token": lock_token},
                    headers=key(token),
                )
            client.post(
                "/api/v1/reservations",
                json={"tags": ["matlab"], "quantity": 1},
                headers={"Authorization": f"Bearer {token}"},
            )
            client.get("/api/v1/audit", headers=key(token))
        audit = client.get("/api/v1/audit", params={"limit": 1000}, headers=key(ADMIN_TOKEN)).text

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "request.rejected" in logged
    assert '"token_name":"alice"' in audit
    for token in (*ALL_TOKENS, UNKNOWN_TOKEN):
        assert token not in logged
        assert token not in audit


def test_openapi_declares_security(secured: InProcessServer) -> None:
    document = httpx.get(secured.base_url + "/openapi.json").json()

    schemes = document["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} >= {"apiKey", "http"}
