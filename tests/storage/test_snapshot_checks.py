"""A restore rejects a snapshot whose parts contradict each other, and changes nothing.

Each case edits a real backup by hand, as a user might, into something no store could
hold whole: two resources with one id, a lock token held twice, an instant past the
year 9999 in UTC. The API and the CLI must reject it on every store kind, naming the
request or file, the value and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rentabot.cli.main import main
from rentabot.clock import ManualClock, utc_now
from rentabot.config.settings import Settings
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server

Document = dict[str, Any]

BEYOND_9999 = "9999-12-31T23:59:59.999999-23:59"


def populate(base_url: str) -> None:
    """Two locks, a reservation fulfilled with two resources and a pending one."""
    with httpx.Client(base_url=base_url) as client:
        for resource_id in (1, 2):
            locked = client.post(f"/api/v1/resources/{resource_id}/lock", json={"ttl": 3600})
            assert locked.status_code == 200
        for quantity in (2, 1):
            reserved = client.post(
                "/api/v1/reservations", json={"tags": ["matlab"], "quantity": quantity}
            )
            assert reserved.status_code == 201


def set_in(path: tuple[str | int, ...], value: Any) -> Callable[[Document], None]:
    """Return an edit that sets the value at ``path`` in a snapshot document."""

    def edit(document: Document) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def copy_from(
    source: tuple[str | int, ...], path: tuple[str | int, ...]
) -> Callable[[Document], None]:
    """Return an edit that copies the value at ``source`` to ``path``."""

    def edit(document: Document) -> None:
        value: Any = document
        for key in source:
            value = value[key]
        set_in(path, value)(document)

    return edit


def fencing_ahead(document: Document) -> None:
    resource = document["resources"][0]
    resource["lock"]["fencing_token"] = resource["last_fencing_token"] + 1


def name_to_other_id(document: Document) -> None:
    document["names"]["pixel-8-a"] = 2


def infinite_counter(document: Document) -> None:
    # JSON 1e400 reads as infinity, as does Infinity, which json.dumps writes for it.
    document["last_resource_id"] = float("1e400")


# (id, edit, words the message must contain)
CASES: list[tuple[str, Callable[[Document], None], str]] = [
    (
        "resource-id-twice",
        copy_from(("resources", 0, "id"), ("resources", 1, "id")),
        "two resources have id 1 ('pixel-8-a' and 'pixel-8-b'); give each resource its own id",
    ),
    (
        "resource-name-twice",
        copy_from(("resources", 0, "name"), ("resources", 1, "name")),
        "two resources are named 'pixel-8-a' (ids 1 and 2)",
    ),
    (
        "names-entry-other-id",
        name_to_other_id,
        "names maps 'pixel-8-a' to id 2, which is resource 'pixel-8-b'",
    ),
    (
        "reservation-id-twice",
        copy_from(("reservations", 0, "id"), ("reservations", 1, "id")),
        "two reservations have id 'res_",
    ),
    (
        "sequence-twice",
        copy_from(("reservations", 0, "sequence"), ("reservations", 1, "sequence")),
        "have the same sequence 1; give each its own place in the queue",
    ),
    (
        "lock-token-twice",
        copy_from(("resources", 0, "lock", "token"), ("resources", 1, "lock", "token")),
        "resources 1 and 2 are locked with the same lock token",
    ),
    ("fencing-token-ahead", fencing_ahead, "the next lock would reuse a token"),
    (
        "lock-tokens-missing",
        set_in(("reservations", 0, "lock_tokens"), []),
        "lists 2 resource_ids but 0 lock_tokens",
    ),
    (
        "audit-id-twice",
        copy_from(("audit", 0, "id"), ("audit", 1, "id")),
        "two audit entries have id",
    ),
    (
        "instant-beyond-9999",
        set_in(("resources", 0, "lock", "expires_at"), BEYOND_9999),
        f"resources[0]: ValueError: {BEYOND_9999} is after 9999-12-31T23:59:59.999999+00:00, "
        "the latest instant rentabot can store",
    ),
    ("counter-infinite", infinite_counter, "last_resource_id: OverflowError"),
    # Numbers and texts the SQL columns cannot hold: rejected for every store kind, so
    # that a backup restored into memory can still move to PostgreSQL later.
    (
        "resource-id-past-32-bits",
        set_in(("resources", 0, "id"), 2**31),
        "resources[0].id is 2147483648, outside 1..2147483647",
    ),
    (
        "sequence-past-64-bits",
        set_in(("reservations", 0, "sequence"), 2**63),
        "reservations[0].sequence is 9223372036854775808, outside 0..9223372036854775807",
    ),
    (
        "tag-too-long",
        set_in(("resources", 0, "tags"), "t" * 300),
        "has 300 characters, more than the 256 a store can keep",
    ),
]
CASE_IDS = [case[0] for case in CASES]


def edited(text: str, edit: Callable[[Document], None]) -> str:
    document = json.loads(text)
    edit(document)
    return json.dumps(document)


def without_time(text: str) -> Document:
    document: Document = json.loads(text)
    document.pop("taken_at")
    return document


@pytest.mark.parametrize(("case", "edit", "expected"), CASES, ids=CASE_IDS)
def test_put_contradicting_snapshot_422(
    server: InProcessServer, case: str, edit: Callable[[Document], None], expected: str
) -> None:
    populate(server.base_url)
    with httpx.Client(base_url=server.base_url) as client:
        before = client.get("/api/v1/admin/snapshot").text

        response = client.put("/api/v1/admin/snapshot", content=edited(before, edit))

        after = client.get("/api/v1/admin/snapshot").text

    assert response.status_code == 422
    message = response.json()["message"]
    assert message.startswith("request body: ")
    assert expected in message
    assert without_time(after)["resources"] == without_time(before)["resources"]
    assert without_time(after)["reservations"] == without_time(before)["reservations"]
    assert without_time(after)["names"] == without_time(before)["names"]


@contextmanager
def populated_target(store_url: str | None) -> Iterator[list[str]]:
    """Yield the CLI options that reach a populated store: --url for memory, else --persist."""
    clock = ManualClock(start=utc_now())
    settings = Settings(descriptor=LAB_DESCRIPTOR, persist=store_url)
    with in_process_server(settings, clock=clock) as server:
        populate(server.base_url)
        if store_url is None:
            yield ["--url", server.base_url]
            return
    yield ["--persist", store_url]


def run(*arguments: str) -> Any:
    return CliRunner().invoke(main, list(arguments), catch_exceptions=False)


CLI_CASES = [case for case in CASES if case[0] in ("resource-name-twice", "reservation-id-twice")]


@pytest.mark.parametrize(
    ("case", "edit", "expected"), CLI_CASES, ids=[case[0] for case in CLI_CASES]
)
def test_restore_contradicting_snapshot_exits_1(
    store_url: str | None,
    tmp_path: Path,
    case: str,
    edit: Callable[[Document], None],
    expected: str,
) -> None:
    backup, bad, again = tmp_path / "backup.json", tmp_path / "bad.json", tmp_path / "again.json"
    with populated_target(store_url) as target:
        assert run("backup", str(backup), *target).exit_code == 0
        bad.write_text(edited(backup.read_text(), edit))

        result = run("restore", str(bad), *target)

        assert run("backup", str(again), *target).exit_code == 0

    assert result.exit_code == 1
    assert f"{bad}: " in result.output
    assert expected in result.output
    assert without_time(again.read_text()) == without_time(backup.read_text())
