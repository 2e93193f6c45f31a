"""Every endpoint, with no key, an unknown key, a user key and the admin key, auth on and off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.auth import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    CAROL_TOKEN,
    UNKNOWN_TOKEN,
    key,
    write_auth_file,
)
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server

WINDOW = {
    "start": "2030-01-01T00:00:00+00:00",
    "end": "2030-01-01T02:00:00+00:00",
    "reason": "firmware",
}
KEYS = {"none": None, "unknown": UNKNOWN_TOKEN, "user": CAROL_TOKEN, "admin": ADMIN_TOKEN}


@dataclass
class Call:
    """A request under test; ``setup`` runs first with the admin key (auth on) or none (off)."""

    client: httpx.Client
    headers: dict[str, str]
    setup_headers: dict[str, str]

    def as_tested(self, method: str, path: str, **options: object) -> httpx.Response:
        return self.client.request(method, path, headers=self.headers, **options)  # type: ignore[arg-type]

    def setup(
        self, method: str, path: str, headers: dict[str, str] | None = None, **options: object
    ) -> httpx.Response:
        response = self.client.request(
            method, path, headers=headers or self.setup_headers, **options
        )  # type: ignore[arg-type]
        assert response.status_code < 300, (
            f"setup {method} {path}: {response.status_code} {response.text}"
        )
        return response

    def locked_token(self, resource_id: int) -> str:
        token: str = self.setup("POST", f"/api/v1/resources/{resource_id}/lock").json()[
            "lock-token"
        ]
        return token

    def reservation(self, headers: dict[str, str] | None = None, tag: str = "matlab") -> str:
        body = {"tags": [tag], "quantity": 1}
        rid: str = self.setup("POST", "/api/v1/reservations", headers=headers, json=body).json()[
            "reservation_id"
        ]
        return rid


def own_reservation(call: Call) -> str:
    """A reservation made with the tested key when it may reserve, else with the setup key."""
    response = call.as_tested(
        "POST", "/api/v1/reservations", json={"tags": ["matlab"], "quantity": 1}
    )
    if response.status_code == 201:
        rid: str = response.json()["reservation_id"]
        return rid
    return call.reservation()


def pending_own_reservation(call: Call) -> str:
    call.locked_token(21)  # staging-env, the only resource tagged staging
    response = call.as_tested(
        "POST", "/api/v1/reservations", json={"tags": ["staging"], "quantity": 1}
    )
    if response.status_code == 201:
        rid: str = response.json()["reservation_id"]
        return rid
    return call.reservation(tag="staging")


def snapshot_text(call: Call) -> str:
    return call.setup("GET", "/api/v1/admin/snapshot").text


CASES: dict[str, tuple[Callable[[Call], httpx.Response], tuple[int, ...], tuple[int, ...]]] = {
    # name: (request, statuses with auth on for none/unknown/user/admin, the same with auth off)
    "health": (lambda c: c.as_tested("GET", "/health"), (200, 200, 200, 200), (200, 200, 200, 200)),
    "readiness": (
        lambda c: c.as_tested("GET", "/readiness"),
        (200, 200, 200, 200),
        (200, 200, 200, 200),
    ),
    "openapi": (
        lambda c: c.as_tested("GET", "/openapi.json"),
        (200, 200, 200, 200),
        (200, 200, 200, 200),
    ),
    "docs": (lambda c: c.as_tested("GET", "/docs"), (200, 200, 200, 200), (200, 200, 200, 200)),
    "page": (lambda c: c.as_tested("GET", "/"), (200, 200, 200, 200), (200, 200, 200, 200)),
    "list-resources": (
        lambda c: c.as_tested("GET", "/api/v1/resources"),
        (200, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "get-resource": (
        lambda c: c.as_tested("GET", "/api/v1/resources/1"),
        (200, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "lock": (
        lambda c: c.as_tested("POST", "/api/v1/resources/1/lock", json={"ttl": 60}),
        (401, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "lock-by-tag": (
        lambda c: c.as_tested("POST", "/api/v1/resources/lock", params={"tag": "android"}),
        (401, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "unlock": (
        lambda c: c.as_tested(
            "POST", "/api/v1/resources/2/unlock", params={"lock-token": c.locked_token(2)}
        ),
        (401, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "force-unlock": (
        lambda c: (c.locked_token(3), c.as_tested("POST", "/api/v1/resources/3/unlock"))[1],
        (401, 401, 403, 200),
        (403, 403, 403, 403),
    ),
    "extend": (
        lambda c: c.as_tested(
            "POST",
            "/api/v1/resources/4/extend",
            params={"lock-token": c.locked_token(4), "additional-ttl": 60},
        ),
        (401, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "reserve": (
        lambda c: c.as_tested(
            "POST", "/api/v1/reservations", json={"tags": ["android"], "quantity": 1}
        ),
        (401, 401, 201, 201),
        (201, 201, 201, 201),
    ),
    "list-reservations": (
        lambda c: c.as_tested("GET", "/api/v1/reservations"),
        (200, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "get-reservation": (
        lambda c: c.as_tested("GET", f"/api/v1/reservations/{c.reservation()}"),
        (200, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "claim-own": (
        lambda c: c.as_tested("POST", f"/api/v1/reservations/{own_reservation(c)}/claim"),
        (401, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "claim-other": (
        lambda c: c.as_tested(
            "POST", f"/api/v1/reservations/{c.reservation(key(ALICE_TOKEN) or None)}/claim"
        ),
        (401, 401, 403, 200),
        (200, 200, 200, 200),
    ),
    "cancel-own": (
        lambda c: c.as_tested("DELETE", f"/api/v1/reservations/{pending_own_reservation(c)}"),
        (401, 401, 204, 204),
        (204, 204, 204, 204),
    ),
    "release-own": (
        lambda c: c.as_tested("POST", f"/api/v1/reservations/{own_reservation(c)}/release"),
        (401, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "mark-unavailable": (
        lambda c: c.as_tested("POST", "/api/v1/resources/5/unavailable", json={"reason": "repair"}),
        (401, 401, 403, 200),
        (200, 200, 200, 200),
    ),
    "mark-available": (
        lambda c: c.as_tested("POST", "/api/v1/resources/5/available"),
        (401, 401, 403, 200),
        (200, 200, 200, 200),
    ),
    "list-windows": (
        lambda c: c.as_tested("GET", "/api/v1/resources/5/maintenance"),
        (200, 401, 200, 200),
        (200, 200, 200, 200),
    ),
    "add-window": (
        lambda c: c.as_tested("POST", "/api/v1/resources/6/maintenance", json=WINDOW),
        (401, 401, 403, 201),
        (201, 201, 201, 201),
    ),
    "delete-window": (
        lambda c: c.as_tested(
            "DELETE",
            f"/api/v1/resources/7/maintenance/{c.setup('POST', '/api/v1/resources/7/maintenance', json=WINDOW).json()['id']}",
        ),
        (401, 401, 403, 204),
        (204, 204, 204, 204),
    ),
    "audit": (
        lambda c: c.as_tested("GET", "/api/v1/audit"),
        (401, 401, 403, 200),
        (200, 200, 200, 200),
    ),
    "backup": (
        lambda c: c.as_tested("GET", "/api/v1/admin/snapshot"),
        (401, 401, 403, 200),
        (200, 200, 200, 200),
    ),
    "restore": (
        lambda c: c.as_tested("PUT", "/api/v1/admin/snapshot", content=snapshot_text(c)),
        (401, 401, 403, 200),
        (200, 200, 200, 200),
    ),
    "import": (
        lambda c: c.as_tested(
            "PUT", "/api/v1/admin/resources", content=LAB_DESCRIPTOR.read_bytes()
        ),
        (401, 401, 403, 200),
        (200, 200, 200, 200),
    ),
}


@pytest.fixture(scope="module", params=["auth-on", "auth-off"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, InProcessServer]]:
    folder = tmp_path_factory.mktemp("auth")
    auth_file = write_auth_file(folder) if request.param == "auth-on" else None
    settings = Settings(descriptor=LAB_DESCRIPTOR, auth_config=auth_file)
    with in_process_server(settings, clock=ManualClock()) as server:
        yield request.param, server


@pytest.fixture
def fresh(served: tuple[str, InProcessServer]) -> Iterator[tuple[str, httpx.Client]]:
    """The module's server, put back into its initial state before each case."""
    mode, server = served
    admin = key(ADMIN_TOKEN) if mode == "auth-on" else {}
    with httpx.Client(base_url=server.base_url) as client:
        if not hasattr(server, "initial"):
            server.initial = client.get("/api/v1/admin/snapshot", headers=admin).text  # type: ignore[attr-defined]
        restored = client.put("/api/v1/admin/snapshot", headers=admin, content=server.initial)  # type: ignore[attr-defined]
        assert restored.status_code == 200, restored.text
        yield mode, client


@pytest.mark.parametrize("who", list(KEYS))
@pytest.mark.parametrize("case", list(CASES))
def test_status_matches_table(fresh: tuple[str, httpx.Client], case: str, who: str) -> None:
    mode, client = fresh
    request, on, off = CASES[case]
    expected = (on if mode == "auth-on" else off)[list(KEYS).index(who)]
    setup_headers = key(ADMIN_TOKEN) if mode == "auth-on" else {}

    response = request(Call(client, key(KEYS[who]), setup_headers))

    assert response.status_code == expected, f"{case} as {who} ({mode}): {response.text[:300]}"
