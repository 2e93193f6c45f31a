"""The audit log of a scripted session, in every store kind, and its filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rentabot.cli.main import main
from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.auth import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    BOB_TOKEN,
    CAROL_TOKEN,
    key,
    write_auth_file,
)
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server

LOCK = "POST /api/v1/resources/{resource_id}/lock"
EXTEND = "POST /api/v1/resources/{resource_id}/extend"
UNLOCK = "POST /api/v1/resources/{resource_id}/unlock"
RESERVE = "POST /api/v1/reservations"
CLAIM = "POST /api/v1/reservations/{reservation_id}/claim"


@pytest.fixture
def secured(store_url: str | None, tmp_path: Path) -> Iterator[tuple[InProcessServer, ManualClock]]:
    clock = ManualClock()
    settings = Settings(
        descriptor=LAB_DESCRIPTOR, persist=store_url, auth_config=write_auth_file(tmp_path)
    )
    with in_process_server(settings, clock=clock) as server:
        yield server, clock


def run_session(client: httpx.Client, clock: ManualClock) -> str:
    """Lock, extend, a refused lock, unlock, a fulfilment by expiry, a claim; return the reservation id."""
    token = client.post(
        "/api/v1/resources/1/lock", headers=key(ALICE_TOKEN), json={"ttl": 600}
    ).json()["lock-token"]
    client.post(
        "/api/v1/resources/1/extend",
        headers=key(ALICE_TOKEN),
        params={"lock-token": token, "additional-ttl": 900},
    )
    refused = client.post("/api/v1/resources/1/lock", headers=key(BOB_TOKEN))
    assert refused.status_code == 403
    client.post(
        "/api/v1/resources/1/unlock", headers=key(ALICE_TOKEN), params={"lock-token": token}
    )
    client.post("/api/v1/resources/21/lock", headers=key(CAROL_TOKEN), json={"ttl": 30})
    rid: str = client.post(
        "/api/v1/reservations", headers=key(BOB_TOKEN), json={"tags": ["staging"], "quantity": 1}
    ).json()["reservation_id"]
    clock.advance(30)
    status = client.get(f"/api/v1/reservations/{rid}", headers=key(BOB_TOKEN)).json()["status"]
    assert status == "fulfilled"
    claimed = client.post(f"/api/v1/reservations/{rid}/claim", headers=key(BOB_TOKEN))
    assert claimed.status_code == 200
    return rid


def oldest_first(client: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    page = client.get(
        "/api/v1/audit", headers=key(ADMIN_TOKEN), params={"limit": 1000, **filters}
    ).json()
    return list(reversed(page["entries"]))


def test_session_audited_in_order(secured: tuple[InProcessServer, ManualClock]) -> None:
    server, clock = secured
    with httpx.Client(base_url=server.base_url) as client:
        rid = run_session(client, clock)
        entries = oldest_first(client)

    steps = [
        (
            entry["operation"],
            entry["token_name"],
            entry["role"],
            entry["status"],
            entry["outcome"],
            entry["resource_id"],
            entry["reservation_id"],
        )
        for entry in entries
    ]
    assert steps == [
        (LOCK, "alice", "user", 200, "ok", 1, None),
        (EXTEND, "alice", "user", 200, "ok", 1, None),
        (LOCK, "bob", "user", 403, "ResourceLocked", 1, None),
        (UNLOCK, "alice", "user", 200, "ok", 1, None),
        (LOCK, "user-3", "user", 200, "ok", 21, None),
        (RESERVE, "bob", "user", 201, "ok", None, rid),
        ("lock.expired", None, "system", None, "ok", 21, None),
        ("reservation.fulfilled", None, "system", None, "ok", None, rid),
        (CLAIM, "bob", "user", 200, "ok", None, rid),
    ]
    assert all(entry["ip"] == "127.0.0.1" for entry in entries if entry["role"] != "system")


def test_refused_before_rules_audited(secured: tuple[InProcessServer, ManualClock]) -> None:
    server, _ = secured
    with httpx.Client(base_url=server.base_url) as client:
        client.post("/api/v1/resources/2/lock", headers={"X-API-Key": "wrong-key-123456789"})
        client.post("/api/v1/resources/2/lock", headers=key(ALICE_TOKEN), json={"ttl": 0})
        client.post("/api/v1/resources/2/unlock", headers=key(CAROL_TOKEN))
        entries = oldest_first(client, resource_id=2)

    outcomes = [(entry["status"], entry["outcome"], entry["token_name"]) for entry in entries]
    assert outcomes == [
        (401, "NotAuthenticated", None),
        (422, "invalid", "alice"),
        (403, "NotLocked", "user-3"),
    ]


def test_audit_filters_and_pages(secured: tuple[InProcessServer, ManualClock]) -> None:
    server, clock = secured
    with httpx.Client(base_url=server.base_url) as client:
        rid = run_session(client, clock)
        by_bob = oldest_first(client, token_name="bob")
        by_reservation = oldest_first(client, reservation_id=rid)
        locks = oldest_first(client, operation=LOCK)
        first_page = client.get(
            "/api/v1/audit", headers=key(ADMIN_TOKEN), params={"limit": 2, "page": 1}
        ).json()
        second_page = client.get(
            "/api/v1/audit", headers=key(ADMIN_TOKEN), params={"limit": 2, "page": 2}
        ).json()
        naive = client.get(
            "/api/v1/audit", headers=key(ADMIN_TOKEN), params={"since": "2026-01-01T00:00:00"}
        )
        later = oldest_first(client, since=clock.now().isoformat())

    assert [entry["operation"] for entry in by_bob] == [LOCK, RESERVE, CLAIM]
    assert [entry["operation"] for entry in by_reservation] == [
        RESERVE,
        "reservation.fulfilled",
        CLAIM,
    ]
    assert len(locks) == 3
    assert first_page["total"] == 9
    assert [entry["operation"] for entry in first_page["entries"]] == [
        CLAIM,
        "reservation.fulfilled",
    ]
    assert [entry["operation"] for entry in second_page["entries"]] == ["lock.expired", RESERVE]
    assert naive.status_code == 422
    assert [entry["operation"] for entry in later] == [
        "lock.expired",
        "reservation.fulfilled",
        CLAIM,
    ]


def test_audit_command_prints_entries(secured: tuple[InProcessServer, ManualClock]) -> None:
    server, clock = secured
    with httpx.Client(base_url=server.base_url) as client:
        run_session(client, clock)

    result = CliRunner().invoke(
        main, ["audit", "--url", server.base_url, "--api-key", ADMIN_TOKEN, "--token-name", "bob"]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert "reservations/{reservation_id}/claim" in lines[0]
    assert "ResourceLocked" in lines[2]
    assert ADMIN_TOKEN not in result.output


@pytest.mark.parametrize("parameter", ["since", "until"])
def test_audit_instant_beyond_9999_422(
    secured: tuple[InProcessServer, ManualClock], parameter: str
) -> None:
    server, _ = secured
    late = "9999-12-31T23:59:59-23:59"
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get("/api/v1/audit", headers=key(ADMIN_TOKEN), params={parameter: late})

    assert response.status_code == 422
    assert f"invalid query field {parameter!r}={late!r}" in response.json()["message"]
    assert "9999-12-31T23:59:59.999999+00:00, the latest instant" in response.json()["message"]
