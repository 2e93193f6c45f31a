"""Check over real HTTP that rentabot 1.0.0's requests get 1.0.0's status codes and keys.

By default the server under test is this repository's rentabot. With
``RENTABOT_COMPAT_PYTHON`` set to the interpreter of a virtual environment that has
``rentabot==1.0.0`` installed, that environment's rentabot is started instead, and the
tests of behaviour that differs from 1.0.0 on purpose are skipped.

Besides status codes and key spellings, the tests check the values a client acts on:
which resource a lock took, a lock's length, and a reservation's status.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import rentabot
from tests.support.servers import ServerProcess, start_server_process

V1_PYTHON = os.environ.get("RENTABOT_COMPAT_PYTHON") or None
if V1_PYTHON is not None and os.sep in V1_PYTHON:
    # The server starts in a scratch directory, so a relative path must be made absolute
    # here. abspath keeps the virtual environment's symlink, which resolve() would follow.
    V1_PYTHON = os.path.abspath(V1_PYTHON)
TESTING_V1 = V1_PYTHON is not None

# rentabot 1.0.0 matches pending reservations in a background loop every 10 s, so a
# test waits up to 25 s for it. This service fulfils a reservation in the request that
# frees its resources, so the test reads the reservation once.
FULFILMENT_TIMEOUT = 25.0 if TESTING_V1 else 0.0

# The endpoints are documentation addresses (RFC 5737), and no test connects to them.
DESCRIPTOR = """\
phone-1:
  description: Pixel 8, rack A slot 1
  endpoint: adb://192.0.2.11:5555
  tags: android, phone
phone-2:
  description: Pixel 8, rack A slot 2
  endpoint: adb://192.0.2.12:5555
  tags: android, phone
tablet-1:
  description: Galaxy Tab S9
  endpoint: adb://192.0.2.13:5555
  tags: android, tablet
board-1:
  description: Raspberry Pi 5
  endpoint: ssh://192.0.2.21
  tags: arm, board
board-2:
  description: Raspberry Pi 5
  endpoint: ssh://192.0.2.22
  tags: arm, board
licence-1:
  description: Licence seat limited to 10 minutes
  endpoint: ""
  tags: licence
  max_lock_duration: 600
"""
NAMES = ["phone-1", "phone-2", "tablet-1", "board-1", "board-2", "licence-1"]
PHONE_1, PHONE_2, TABLET_1, BOARD_1, BOARD_2, LICENCE_1 = range(1, 7)
UNKNOWN_ID = 999
# rentabot 1.0.0 gives every resource this max-lock-duration and ignores the descriptor's.
V1_MAX_LOCK_DURATION = 86400

RESOURCE_KEYS = [
    "id",
    "name",
    "description",
    "endpoint",
    "tags",
    "lock-token",
    "lock-details",
    "lock-acquired-at",
    "lock-expires-at",
    "max-lock-duration",
]
LOCK_KEYS = {"message", "lock-token", "resource", "locked-at", "expires-at"}
EXTEND_KEYS = {"message", "new-expires-at", "total-lock-duration"}
RESERVATION_KEYS = {
    "reservation_id",
    "status",
    "tags",
    "quantity",
    "ttl",
    "position_in_queue",
    "created_at",
    "expires_at",
    "fulfilled_at",
    "claim_expires_at",
    "claimed_at",
    "resource_ids",
    "lock_tokens",
}
# A lock token in the right format that belongs to no lock.
FOREIGN_TOKEN = "00000000-0000-4000-8000-000000000000"


def intended_difference(reason: str) -> pytest.MarkDecorator:
    """Skip the test against rentabot 1.0.0, which behaves otherwise on purpose."""
    return pytest.mark.skipif(
        TESTING_V1, reason=f"differs from rentabot 1.0.0 on purpose: {reason}"
    )


# Fixtures and helpers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("compat")
    descriptor = directory / "lab.yaml"
    descriptor.write_text(DESCRIPTOR, encoding="utf-8")
    running = start_server_process(
        directory / "server.log", descriptor=descriptor, python=V1_PYTHON
    )
    try:
        check_target_version(running)
        yield running
    finally:
        running.stop()


def check_target_version(server: ServerProcess) -> None:
    """Raise unless the server is the rentabot this run means to test.

    A PYTHONPATH that reaches this repository would make the 1.0.0 interpreter import
    this repository's rentabot, and the run would then compare the service with itself.
    """
    info = httpx.get(f"{server.base_url}/openapi.json", timeout=10.0).json()["info"]
    expected = "1.0.0" if TESTING_V1 else rentabot.__version__
    if info["version"] != expected:
        raise RuntimeError(
            f"the server under test reports version {info['version']!r}, expected "
            f"{expected!r}; check RENTABOT_COMPAT_PYTHON and PYTHONPATH"
        )


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        yield http


@pytest.fixture(autouse=True)
def reset_after_test(client: httpx.Client) -> Iterator[None]:
    """Cancel pending reservations and unlock every resource after each test.

    Tests can then run in any order. Pending reservations go first, because on this
    service an unlock would otherwise hand the resource to one of them.
    """
    yield
    for reservation in client.get("/api/v1/reservations").json()["reservations"]:
        if reservation["status"] == "pending":
            client.delete(
                f"/api/v1/reservations/{reservation['reservation_id']}"
            ).raise_for_status()
    for resource in client.get("/api/v1/resources").json()["resources"]:
        if resource["lock-token"]:
            unlock(client, resource["id"], resource["lock-token"]).raise_for_status()


@pytest.fixture
def busy_boards(client: httpx.Client) -> list[str]:
    """Lock both arm boards, so that reservations for "arm" stay pending."""
    return [take_lock(client, BOARD_1), take_lock(client, BOARD_2)]


def lock(client: httpx.Client, resource_id: int, ttl: int | None = None) -> httpx.Response:
    body = {"ttl": ttl} if ttl is not None else None
    return client.post(f"/api/v1/resources/{resource_id}/lock", json=body)


def take_lock(client: httpx.Client, resource_id: int, ttl: int | None = None) -> str:
    """Lock a resource as a test's setup step and return its lock token."""
    response = lock(client, resource_id, ttl)
    assert response.status_code == 200, f"setup lock of {resource_id} failed: {response.text}"
    token: str = response.json()["lock-token"]
    return token


def unlock(client: httpx.Client, resource_id: int, token: str | None) -> httpx.Response:
    params = {"lock-token": token} if token is not None else {}
    return client.post(f"/api/v1/resources/{resource_id}/unlock", params=params)


def extend(
    client: httpx.Client, resource_id: int, token: str, additional_ttl: int
) -> httpx.Response:
    params: dict[str, str | int] = {"lock-token": token, "additional-ttl": additional_ttl}
    return client.post(f"/api/v1/resources/{resource_id}/extend", params=params)


def lock_by_criteria(
    client: httpx.Client, params: list[tuple[str, Any]], ttl: int | None = None
) -> httpx.Response:
    body = {"ttl": ttl} if ttl is not None else None
    return client.post("/api/v1/resources/lock", params=params, json=body)


def get_resource(client: httpx.Client, resource_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/resources/{resource_id}")
    assert response.status_code == 200, response.text
    resource: dict[str, Any] = response.json()["resource"]
    return resource


def reserve(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/api/v1/reservations", json=body)


def create_reservation(client: httpx.Client, body: dict[str, Any]) -> str:
    """Create a reservation as a test's setup step and return its id."""
    response = reserve(client, body)
    assert response.status_code == 201, f"setup reservation failed: {response.text}"
    created: str = response.json()["reservation_id"]
    return created


def wait_for_fulfilment(client: httpx.Client, reservation_id: str) -> dict[str, Any]:
    """Return the reservation once it is no longer pending, or as it is at the timeout."""
    deadline = time.monotonic() + FULFILMENT_TIMEOUT
    while True:
        response = client.get(f"/api/v1/reservations/{reservation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "pending" or time.monotonic() >= deadline:
            return body
        time.sleep(0.25)


def fetch_ids_by_name(base_url: str) -> dict[str, int]:
    resources = httpx.get(f"{base_url}/api/v1/resources", timeout=10.0).json()["resources"]
    return {resource["name"]: resource["id"] for resource in resources}


def lock_length(body: dict[str, Any]) -> timedelta:
    """Return expires-at minus locked-at of a lock response."""
    return datetime.fromisoformat(body["expires-at"]) - datetime.fromisoformat(body["locked-at"])


# GET /api/v1/resources and /api/v1/resources/{id}


def test_list_resources_names_all(client: httpx.Client) -> None:
    response = client.get("/api/v1/resources")

    assert response.status_code == 200
    assert [resource["name"] for resource in response.json()["resources"]] == NAMES


def test_list_ids_follow_descriptor_order(client: httpx.Client) -> None:
    resources = client.get("/api/v1/resources").json()["resources"]

    assert [resource["id"] for resource in resources] == list(range(1, len(NAMES) + 1))


@pytest.mark.parametrize("key", RESOURCE_KEYS)
def test_list_resources_has_key(client: httpx.Client, key: str) -> None:
    resources = client.get("/api/v1/resources").json()["resources"]

    without_key = [resource["name"] for resource in resources if key not in resource]
    assert without_key == []


def test_resource_fields_from_descriptor(client: httpx.Client) -> None:
    resource = get_resource(client, PHONE_1)

    assert resource["description"] == "Pixel 8, rack A slot 1"
    assert resource["endpoint"] == "adb://192.0.2.11:5555"
    assert resource["tags"] == "android, phone"
    assert resource["max-lock-duration"] == V1_MAX_LOCK_DURATION


def test_free_resource_lock_fields_empty(client: httpx.Client) -> None:
    resource = get_resource(client, PHONE_2)

    assert resource["lock-token"] == ""
    assert resource["lock-acquired-at"] is None
    assert resource["lock-expires-at"] is None
    assert isinstance(resource["lock-details"], str)


def test_get_resource_by_id(client: httpx.Client) -> None:
    response = client.get(f"/api/v1/resources/{PHONE_2}")

    assert response.status_code == 200
    assert response.json()["resource"]["id"] == PHONE_2
    assert response.json()["resource"]["name"] == "phone-2"


def test_get_unknown_resource_404(client: httpx.Client) -> None:
    response = client.get(f"/api/v1/resources/{UNKNOWN_ID}")

    assert response.status_code == 404
    assert isinstance(response.json()["message"], str)
    assert response.json()["resource_id"] == UNKNOWN_ID


def test_get_non_integer_id_422(client: httpx.Client) -> None:
    response = client.get("/api/v1/resources/first")

    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


# POST /api/v1/resources/{id}/lock


@pytest.mark.parametrize("ttl", [None, 120], ids=["without-body", "with-ttl"])
def test_lock_by_id_returns_keys(client: httpx.Client, ttl: int | None) -> None:
    response = lock(client, PHONE_1, ttl)

    assert response.status_code == 200
    assert LOCK_KEYS - set(response.json()) == set()


def test_lock_body_resource_is_locked(client: httpx.Client) -> None:
    body = lock(client, PHONE_1).json()

    assert body["resource"]["id"] == PHONE_1
    assert body["resource"]["lock-token"] == body["lock-token"]
    assert set(RESOURCE_KEYS) - set(body["resource"]) == set()


def test_lock_shows_on_resource(client: httpx.Client) -> None:
    token = take_lock(client, PHONE_1)

    resource = get_resource(client, PHONE_1)
    assert resource["lock-token"] == token
    assert resource["lock-acquired-at"] is not None
    assert resource["lock-expires-at"] is not None


def test_lock_default_ttl_one_hour(client: httpx.Client) -> None:
    body = lock(client, PHONE_1).json()

    assert lock_length(body) == timedelta(seconds=3600)


def test_lock_ttl_sets_expiry(client: httpx.Client) -> None:
    body = lock(client, PHONE_1, ttl=120).json()

    assert lock_length(body) == timedelta(seconds=120)


def test_lock_locked_resource_403(client: httpx.Client) -> None:
    token = take_lock(client, PHONE_1)

    response = lock(client, PHONE_1)

    assert response.status_code == 403
    assert isinstance(response.json()["message"], str)
    assert get_resource(client, PHONE_1)["lock-token"] == token


def test_lock_ttl_above_max_400(client: httpx.Client) -> None:
    response = lock(client, PHONE_1, ttl=V1_MAX_LOCK_DURATION + 1)

    assert response.status_code == 400
    assert isinstance(response.json()["message"], str)
    assert get_resource(client, PHONE_1)["lock-token"] == ""


def test_lock_unknown_id_404(client: httpx.Client) -> None:
    response = lock(client, UNKNOWN_ID)

    assert response.status_code == 404
    assert isinstance(response.json()["message"], str)


# POST /api/v1/resources/lock?id=|name=|tag=


@pytest.mark.parametrize(
    ("params", "expected_id"),
    [
        ([("id", PHONE_2)], PHONE_2),
        ([("name", "board-1")], BOARD_1),
        ([("tag", "android")], PHONE_1),
        ([("tag", "android"), ("tag", "tablet")], TABLET_1),
        ([("id", PHONE_2), ("name", "board-1")], PHONE_2),
        ([("id", PHONE_2), ("tag", "tablet")], PHONE_2),
        ([("name", "board-1"), ("tag", "tablet")], BOARD_1),
    ],
    ids=[
        "by-id",
        "by-name",
        "by-tag-first-match",
        "all-tags-must-match",
        "id-beats-name",
        "id-beats-tag",
        "name-beats-tag",
    ],
)
def test_criteria_lock_picks_resource(
    client: httpx.Client, params: list[tuple[str, Any]], expected_id: int
) -> None:
    response = lock_by_criteria(client, params)

    assert response.status_code == 200
    assert response.json()["resource"]["id"] == expected_id
    assert LOCK_KEYS - set(response.json()) == set()


def test_criteria_tag_skips_locked(client: httpx.Client) -> None:
    take_lock(client, PHONE_1)

    response = lock_by_criteria(client, [("tag", "phone")])

    assert response.status_code == 200
    assert response.json()["resource"]["id"] == PHONE_2


def test_criteria_lock_uses_ttl_body(client: httpx.Client) -> None:
    response = lock_by_criteria(client, [("tag", "arm")], ttl=120)

    assert response.status_code == 200
    assert lock_length(response.json()) == timedelta(seconds=120)


def test_criteria_no_free_tag_403(client: httpx.Client) -> None:
    take_lock(client, TABLET_1)

    response = lock_by_criteria(client, [("tag", "tablet")])

    assert response.status_code == 403
    assert isinstance(response.json()["message"], str)


def test_criteria_locked_name_403(client: httpx.Client) -> None:
    take_lock(client, BOARD_1)

    response = lock_by_criteria(client, [("name", "board-1")])

    assert response.status_code == 403


@pytest.mark.parametrize(
    "params",
    [
        [("id", UNKNOWN_ID)],
        [("name", "no-such-resource")],
        [("tag", "no-such-tag")],
        [("tag", "android"), ("tag", "arm")],
    ],
    ids=["unknown-id", "unknown-name", "unknown-tag", "no-resource-has-all-tags"],
)
def test_criteria_no_match_404(client: httpx.Client, params: list[tuple[str, Any]]) -> None:
    response = lock_by_criteria(client, params)

    assert response.status_code == 404
    assert isinstance(response.json()["message"], str)


@pytest.mark.parametrize(
    ("params", "expected_status"),
    [([("id", 0), ("tag", "tablet")], 200), ([("id", 0)], 400)],
    ids=["falls-back-to-tag", "alone-is-no-criterion"],
)
def test_criteria_id_zero_ignored(
    client: httpx.Client, params: list[tuple[str, Any]], expected_status: int
) -> None:
    """rentabot 1.0.0 reads id=0 as no id at all."""
    response = lock_by_criteria(client, params)

    assert response.status_code == expected_status


@intended_difference(
    "1.0.0 matches a tag parameter as sent, so a comma or space in it matches nothing"
)
@pytest.mark.parametrize("tag", ["android,phone", " phone "], ids=["comma", "spaces"])
def test_criteria_tag_split_and_trimmed(client: httpx.Client, tag: str) -> None:
    """Tags never contain commas or outer spaces, so this service splits and trims them."""
    response = lock_by_criteria(client, [("tag", tag)])

    assert response.status_code == 200


def test_criteria_missing_400(client: httpx.Client) -> None:
    response = lock_by_criteria(client, [])

    assert response.status_code == 400
    assert isinstance(response.json()["message"], str)


# POST /api/v1/resources/{id}/unlock


def test_unlock_with_token_frees(client: httpx.Client) -> None:
    token = take_lock(client, PHONE_1)

    response = unlock(client, PHONE_1, token)

    assert response.status_code == 200
    assert isinstance(response.json()["message"], str)
    assert get_resource(client, PHONE_1)["lock-token"] == ""


@pytest.mark.parametrize(
    ("locked", "token"),
    [(False, FOREIGN_TOKEN), (False, None), (True, FOREIGN_TOKEN), (True, None)],
    ids=["not-locked", "not-locked-no-token", "wrong-token", "missing-token"],
)
def test_unlock_refused_403(client: httpx.Client, locked: bool, token: str | None) -> None:
    held_token = take_lock(client, PHONE_1) if locked else ""

    response = unlock(client, PHONE_1, token)

    assert response.status_code == 403
    assert isinstance(response.json()["message"], str)
    assert get_resource(client, PHONE_1)["lock-token"] == held_token


def test_unlock_unknown_id_404(client: httpx.Client) -> None:
    response = unlock(client, UNKNOWN_ID, FOREIGN_TOKEN)

    assert response.status_code == 404
    assert isinstance(response.json()["message"], str)


# POST /api/v1/resources/{id}/extend


def test_extend_returns_keys(client: httpx.Client) -> None:
    token = take_lock(client, PHONE_1, ttl=60)

    response = extend(client, PHONE_1, token, 120)

    assert response.status_code == 200
    assert EXTEND_KEYS - set(response.json()) == set()
    assert isinstance(response.json()["total-lock-duration"], int)


def test_extend_moves_expiry_later(client: httpx.Client) -> None:
    token = take_lock(client, PHONE_1, ttl=60)
    before = datetime.fromisoformat(get_resource(client, PHONE_1)["lock-expires-at"])

    body = extend(client, PHONE_1, token, 120).json()

    assert datetime.fromisoformat(body["new-expires-at"]) > before
    assert body["total-lock-duration"] >= 120


@pytest.mark.parametrize("locked", [False, True], ids=["not-locked", "wrong-token"])
def test_extend_refused_403(client: httpx.Client, locked: bool) -> None:
    if locked:
        take_lock(client, PHONE_1)

    response = extend(client, PHONE_1, FOREIGN_TOKEN, 120)

    assert response.status_code == 403
    assert isinstance(response.json()["message"], str)


def test_extend_over_max_400(client: httpx.Client) -> None:
    token = take_lock(client, PHONE_1)

    response = extend(client, PHONE_1, token, V1_MAX_LOCK_DURATION + 1)

    assert response.status_code == 400
    assert isinstance(response.json()["message"], str)


def test_extend_unknown_id_404(client: httpx.Client) -> None:
    response = extend(client, UNKNOWN_ID, FOREIGN_TOKEN, 120)

    assert response.status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"additional-ttl": 120}, {"lock-token": FOREIGN_TOKEN}, {}],
    ids=["no-lock-token", "no-additional-ttl", "no-parameters"],
)
def test_extend_missing_parameter_422(client: httpx.Client, params: dict[str, Any]) -> None:
    take_lock(client, PHONE_1)

    response = client.post(f"/api/v1/resources/{PHONE_1}/extend", params=params)

    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


# POST /api/v1/reservations, GET /api/v1/reservations and /api/v1/reservations/{id}


@pytest.mark.usefixtures("busy_boards")
def test_reservation_create_pending(client: httpx.Client) -> None:
    response = reserve(client, {"tags": ["arm"], "quantity": 1, "max_wait_time": 600, "ttl": 300})

    assert response.status_code == 201
    body = response.json()
    assert body["reservation_id"].startswith("res_")
    assert body["status"] == "pending"
    assert RESERVATION_KEYS - set(body) == set()


@pytest.mark.usefixtures("busy_boards")
def test_reservation_echoes_request(client: httpx.Client) -> None:
    body = reserve(client, {"tags": ["arm"], "quantity": 2, "ttl": 300}).json()

    assert body["tags"] == ["arm"]
    assert body["quantity"] == 2
    assert body["ttl"] == 300
    assert body["resource_ids"] == []
    assert body["lock_tokens"] == []


def test_reservation_unknown_tags_404(client: httpx.Client) -> None:
    response = reserve(client, {"tags": ["no-such-tag"], "quantity": 1})

    assert response.status_code == 404
    assert isinstance(response.json()["message"], str)


def test_reservation_too_many_400(client: httpx.Client) -> None:
    response = reserve(client, {"tags": ["arm"], "quantity": 3})

    assert response.status_code == 400
    assert isinstance(response.json()["message"], str)


@pytest.mark.parametrize(
    "body",
    [
        {"tags": ["arm"], "quantity": 0},
        {"tags": [], "quantity": 1},
        {"tags": ["arm"]},
        {"quantity": 1},
        {"tags": "arm", "quantity": 1},
        {"tags": ["arm"], "quantity": "two"},
        {"tags": ["arm"], "quantity": 1, "ttl": 0},
        {"tags": ["arm"], "quantity": 1, "max_wait_time": 0},
    ],
    ids=[
        "quantity-zero",
        "empty-tags",
        "missing-quantity",
        "missing-tags",
        "tags-not-list",
        "quantity-not-integer",
        "ttl-zero",
        "max-wait-time-zero",
    ],
)
def test_reservation_invalid_body_422(client: httpx.Client, body: dict[str, Any]) -> None:
    response = reserve(client, body)

    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


@intended_difference(
    "1.0.0 matches each reservation tag as sent, so a comma or space matches nothing"
)
@pytest.mark.parametrize("tags", [["android,phone"], [" android "]], ids=["comma", "spaces"])
def test_reservation_tag_split_and_trimmed(client: httpx.Client, tags: list[str]) -> None:
    response = reserve(client, {"tags": tags, "quantity": 1})

    assert response.status_code == 201


@intended_difference("1.0.0 answers 404 for an empty tag, which no resource can carry")
def test_reservation_empty_tag_422(client: httpx.Client) -> None:
    response = reserve(client, {"tags": [""], "quantity": 1})

    assert response.status_code == 422
    assert "tags" in response.json()["message"]


def test_validation_detail_has_v1_keys(client: httpx.Client) -> None:
    response = reserve(client, {"tags": ["arm"], "quantity": 0})

    item = response.json()["detail"][0]
    assert {"type", "loc", "msg", "input"} - set(item) == set()


@pytest.mark.usefixtures("busy_boards")
def test_reservation_list_shows_pending(client: httpx.Client) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    response = client.get("/api/v1/reservations")

    assert response.status_code == 200
    listed = {item["reservation_id"]: item for item in response.json()["reservations"]}
    assert RESERVATION_KEYS - set(listed[reservation_id]) == set()
    assert listed[reservation_id]["status"] == "pending"
    assert listed[reservation_id]["position_in_queue"] == 1


@pytest.mark.usefixtures("busy_boards")
def test_reservation_get_pending(client: httpx.Client) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    response = client.get(f"/api/v1/reservations/{reservation_id}")

    assert response.status_code == 200
    assert RESERVATION_KEYS - set(response.json()) == set()
    assert response.json()["reservation_id"] == reservation_id
    assert response.json()["status"] == "pending"


@pytest.mark.usefixtures("busy_boards")
def test_reservation_positions_follow_age(client: httpx.Client) -> None:
    first = create_reservation(client, {"tags": ["arm"], "quantity": 1})
    second = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    assert client.get(f"/api/v1/reservations/{first}").json()["position_in_queue"] == 1
    assert client.get(f"/api/v1/reservations/{second}").json()["position_in_queue"] == 2


def test_reservation_get_unknown_404(client: httpx.Client) -> None:
    response = client.get("/api/v1/reservations/res_unknown")

    assert response.status_code == 404
    assert isinstance(response.json()["message"], str)


# POST /api/v1/reservations/{id}/claim and DELETE /api/v1/reservations/{id}


@pytest.mark.usefixtures("busy_boards")
def test_claim_pending_409(client: httpx.Client) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    response = client.post(f"/api/v1/reservations/{reservation_id}/claim")

    assert response.status_code == 409
    assert isinstance(response.json()["message"], str)


def test_claim_unknown_404(client: httpx.Client) -> None:
    response = client.post("/api/v1/reservations/res_unknown/claim")

    assert response.status_code == 404


@pytest.mark.usefixtures("busy_boards")
def test_delete_pending_204(client: httpx.Client) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    response = client.delete(f"/api/v1/reservations/{reservation_id}")

    assert response.status_code == 204
    assert client.get(f"/api/v1/reservations/{reservation_id}").status_code == 404


def test_delete_unknown_404(client: httpx.Client) -> None:
    response = client.delete("/api/v1/reservations/res_unknown")

    assert response.status_code == 404


def test_reservation_fulfil_claim_flow(client: httpx.Client) -> None:
    """Fulfilled: DELETE is 409 and claim is 200. Claimed: DELETE and a second claim are 409."""
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 2, "ttl": 300})

    fulfilled = wait_for_fulfilment(client, reservation_id)
    assert fulfilled["status"] == "fulfilled"
    assert client.delete(f"/api/v1/reservations/{reservation_id}").status_code == 409

    claim = client.post(f"/api/v1/reservations/{reservation_id}/claim")
    assert claim.status_code == 200
    claimed = claim.json()
    assert claimed["status"] == "claimed"
    assert RESERVATION_KEYS - set(claimed) == set()
    assert sorted(claimed["resource_ids"]) == [BOARD_1, BOARD_2]
    assert len(claimed["lock_tokens"]) == 2

    held_tokens = {get_resource(client, board)["lock-token"] for board in (BOARD_1, BOARD_2)}
    assert held_tokens == set(claimed["lock_tokens"])
    assert client.delete(f"/api/v1/reservations/{reservation_id}").status_code == 409
    assert client.post(f"/api/v1/reservations/{reservation_id}/claim").status_code == 409


# GET /health, /readiness and /


@pytest.mark.parametrize("path", ["/health", "/readiness"])
def test_probe_returns_200(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_index_page_names_resources(client: httpx.Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    missing = [name for name in NAMES if name not in response.text]
    assert missing == []


# Behaviour that differs from rentabot 1.0.0 on purpose


@intended_difference("1.0.0 grants a lock of ttl <= 0, already expired, and reads true as 1")
@pytest.mark.parametrize("ttl", [0, -60, True], ids=["zero", "negative", "boolean"])
def test_lock_ttl_invalid_422(client: httpx.Client, ttl: int) -> None:
    response = lock(client, PHONE_1, ttl)

    assert response.status_code == 422
    assert get_resource(client, PHONE_1)["lock-token"] == ""


@intended_difference("1.0.0 accepts additional-ttl <= 0 and moves the expiry to the past")
@pytest.mark.parametrize("additional_ttl", [0, -5], ids=["zero", "negative"])
def test_extend_ttl_not_positive_422(client: httpx.Client, additional_ttl: int) -> None:
    token = take_lock(client, PHONE_1)

    response = extend(client, PHONE_1, token, additional_ttl)

    assert response.status_code == 422
    assert get_resource(client, PHONE_1)["lock-token"] == token


@intended_difference("1.0.0 accepts any max_wait_time")
def test_reservation_wait_above_max_400(client: httpx.Client) -> None:
    response = reserve(client, {"tags": ["arm"], "quantity": 1, "max_wait_time": 8 * 86400})

    assert response.status_code == 400
    assert response.json()["field"] == "max_wait_time"


@intended_difference("1.0.0 sets now + additional-ttl even when that is earlier")
def test_extend_never_shortens(client: httpx.Client) -> None:
    locked = lock(client, PHONE_1, ttl=600).json()

    body = extend(client, PHONE_1, locked["lock-token"], 60).json()

    assert body["new-expires-at"] == locked["expires-at"]
    assert body["total-lock-duration"] == 600


@intended_difference("1.0.0 returns the real lock token in the 403 body")
@pytest.mark.parametrize("action", ["unlock", "extend"])
def test_refusal_hides_lock_token(client: httpx.Client, action: str) -> None:
    token = take_lock(client, PHONE_1)

    if action == "unlock":
        response = unlock(client, PHONE_1, FOREIGN_TOKEN)
    else:
        response = extend(client, PHONE_1, FOREIGN_TOKEN, 120)

    assert response.status_code == 403
    assert token not in response.text


@intended_difference("1.0.0 ignores max_lock_duration in the descriptor")
def test_descriptor_max_duration_listed(client: httpx.Client) -> None:
    assert get_resource(client, LICENCE_1)["max-lock-duration"] == 600


@intended_difference("1.0.0 ignores max_lock_duration in the descriptor")
def test_lock_above_descriptor_max_400(client: httpx.Client) -> None:
    response = lock(client, LICENCE_1, ttl=601)

    assert response.status_code == 400
    assert response.json()["max_lock_duration"] == 600


@intended_difference("1.0.0 locks for 3600 s whatever the resource's limit")
def test_default_ttl_capped_by_max(client: httpx.Client) -> None:
    response = lock(client, LICENCE_1)

    assert response.status_code == 200
    assert lock_length(response.json()) == timedelta(seconds=600)


@intended_difference("1.0.0 fulfils reservations in a loop every 10 s")
def test_reservation_fulfilled_at_once(client: httpx.Client) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    body = client.get(f"/api/v1/reservations/{reservation_id}").json()

    assert body["status"] == "fulfilled"
    assert body["resource_ids"] == [BOARD_1]


@intended_difference("1.0.0 fulfils reservations in a loop every 10 s")
def test_unlock_fulfils_waiting_reservation(client: httpx.Client, busy_boards: list[str]) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    unlock(client, BOARD_1, busy_boards[0]).raise_for_status()

    body = client.get(f"/api/v1/reservations/{reservation_id}").json()
    assert body["status"] == "fulfilled"
    assert body["resource_ids"] == [BOARD_1]


@intended_difference("1.0.0 lets a direct lock take a resource the queue is waiting for")
def test_pending_reservation_keeps_resource(client: httpx.Client) -> None:
    take_lock(client, BOARD_1)
    create_reservation(client, {"tags": ["arm"], "quantity": 2})

    assert get_resource(client, BOARD_2)["status"] == "reserved"
    assert lock(client, BOARD_2).status_code == 403


@intended_difference("1.0.0 fulfils any reservation that fits, ahead of older ones")
def test_strict_queue_serves_oldest_first(client: httpx.Client, busy_boards: list[str]) -> None:
    older = create_reservation(client, {"tags": ["arm"], "quantity": 2})
    younger = create_reservation(client, {"tags": ["arm"], "quantity": 1})

    unlock(client, BOARD_1, busy_boards[0]).raise_for_status()

    assert client.get(f"/api/v1/reservations/{younger}").json()["status"] == "pending"
    assert get_resource(client, BOARD_1)["status"] == "reserved"

    unlock(client, BOARD_2, busy_boards[1]).raise_for_status()

    assert client.get(f"/api/v1/reservations/{older}").json()["status"] == "fulfilled"
    assert client.get(f"/api/v1/reservations/{younger}").json()["status"] == "pending"


@intended_difference("1.0.0 has no release endpoint")
def test_release_frees_reservation_resources(client: httpx.Client) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 2})

    response = client.post(f"/api/v1/reservations/{reservation_id}/release")

    assert response.status_code == 200
    assert response.json()["status"] == "released"
    assert get_resource(client, BOARD_1)["lock-token"] == ""
    assert get_resource(client, BOARD_2)["lock-token"] == ""


@intended_difference("1.0.0 forgets an ended reservation, so its 404 cannot say why")
@pytest.mark.usefixtures("busy_boards")
def test_ended_reservation_404_explains(client: httpx.Client) -> None:
    reservation_id = create_reservation(client, {"tags": ["arm"], "quantity": 1})
    client.delete(f"/api/v1/reservations/{reservation_id}").raise_for_status()

    response = client.get(f"/api/v1/reservations/{reservation_id}")

    assert response.status_code == 404
    assert response.json()["status"] == "cancelled"
    assert isinstance(response.json()["reason"], str)


@intended_difference("1.0.0 writes some timestamps with Z and others with +00:00")
@pytest.mark.usefixtures("busy_boards")
def test_timestamps_use_utc_offset(client: httpx.Client) -> None:
    locked = lock(client, PHONE_1).json()
    reservation = reserve(client, {"tags": ["arm"], "quantity": 1}).json()
    timestamps = {
        "locked-at": locked["locked-at"],
        "expires-at": locked["expires-at"],
        "resource lock-acquired-at": locked["resource"]["lock-acquired-at"],
        "resource lock-expires-at": locked["resource"]["lock-expires-at"],
        "reservation created_at": reservation["created_at"],
        "reservation expires_at": reservation["expires_at"],
    }

    without_offset = {
        key: value for key, value in timestamps.items() if not value.endswith("+00:00")
    }
    assert without_offset == {}


@intended_difference("1.0.0 returns FastAPI's detail list without a message")
def test_validation_error_has_message(client: httpx.Client) -> None:
    response = reserve(client, {"tags": ["arm"], "quantity": 0})

    assert response.status_code == 422
    assert "quantity" in response.json()["message"]
    assert isinstance(response.json()["detail"], list)


@intended_difference("1.0.0 returns FastAPI's detail without a message")
def test_unknown_route_has_message(client: httpx.Client) -> None:
    response = client.get("/api/v1/no-such-route")

    assert response.status_code == 404
    assert isinstance(response.json()["message"], str)


@intended_difference("1.0.0 numbers resources by descriptor line on every start")
def test_ids_follow_names_across_restart(tmp_path: Path) -> None:
    descriptor = tmp_path / "lab.yaml"
    env = {"RENTABOT_PERSIST": f"sqlite:///{tmp_path / 'rentabot.db'}"}

    descriptor.write_text("alpha: {}\nbeta: {}\ngamma: {}\n", encoding="utf-8")
    first = start_server_process(
        tmp_path / "first.log", descriptor=descriptor, env=env, python=V1_PYTHON
    )
    try:
        first_ids = fetch_ids_by_name(first.base_url)
    finally:
        first.stop()

    descriptor.write_text("gamma: {}\ndelta: {}\nalpha: {}\n", encoding="utf-8")
    second = start_server_process(
        tmp_path / "second.log", descriptor=descriptor, env=env, python=V1_PYTHON
    )
    try:
        second_ids = fetch_ids_by_name(second.base_url)
    finally:
        second.stop()

    assert first_ids == {"alpha": 1, "beta": 2, "gamma": 3}
    assert second_ids == {"gamma": 3, "delta": 4, "alpha": 1}
