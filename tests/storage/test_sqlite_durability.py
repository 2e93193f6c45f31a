"""Acknowledged changes survive ``kill -9`` of a server on the SQLite store.

A server in a subprocess takes a burst of locks, extends, unlocks, reservations and
claims, and is killed with SIGKILL right after the last response. A restarted server
must show every acknowledged change. Then the same file is opened in this process on
a manual clock one hour later, and start-up must apply the deadlines that passed
while the service was down, without the test sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.servers import in_process_server, start_server_process

BENCH_COUNT = 200
RIG_COUNT = 4
BENCH_TAG = "bench"
RIG_TAG = "rig"
SHORT_TTL = 30
LONG_TTL = 2 * 3600
SHORT_WAIT = 60
LONG_WAIT = 3 * 3600
# Reservations made while the rig pool is free, so all of them are fulfilled at once.
FULFILLED_COUNT = RIG_COUNT
CLAIMED_COUNT = 3
PENDING_COUNT = 16
CONCURRENT_LOCKS = 16
DOWNTIME = timedelta(hours=1)


@dataclass
class LockRecord:
    """A lock as its acknowledged responses describe it."""

    resource_id: int
    token: str
    expires_at: datetime
    fencing_token: int
    unlocked: bool = False


@dataclass
class ReservationRecord:
    """A reservation as its acknowledged responses describe it."""

    reservation_id: str
    status: str
    priority: int
    max_wait_time: int
    resource_ids: list[int] = field(default_factory=list)
    lock_tokens: list[str] = field(default_factory=list)


@dataclass
class CrashedDatabase:
    """A SQLite file written by a server that was killed, and what that server acknowledged."""

    descriptor: Path
    url: str
    directory: Path
    locks: list[LockRecord]
    # In creation order.
    reservations: list[ReservationRecord]

    def pending(self) -> list[ReservationRecord]:
        """Return the pending reservations in queue order: higher priority, then older."""
        pending = [record for record in self.reservations if record.status == "pending"]
        # sorted() is stable, so reservations of equal priority keep their creation order.
        return sorted(pending, key=lambda record: -record.priority)


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def write_descriptor(directory: Path) -> Path:
    """Write BENCH_COUNT bench resources (ids 1-200) and then RIG_COUNT rig resources."""
    lines = []
    for number in range(1, BENCH_COUNT + 1):
        lines += [f"bench-{number:03d}:", f"  tags: {BENCH_TAG}"]
    for number in range(1, RIG_COUNT + 1):
        lines += [f"rig-{number}:", f"  tags: {RIG_TAG}"]
    path = directory / "lab.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pending_plan(index: int) -> tuple[int, int]:
    """Return the priority and max_wait_time of the ``index``-th pending reservation.

    The head of the queue (index 1, priority 10) has a long wait, so it is still waiting
    when the claim window of the unclaimed reservation ends and frees a rig.
    """
    if index % 5 == 1:
        priority = 10
    elif index % 3 == 0:
        priority = 5
    else:
        priority = 0
    max_wait_time = LONG_WAIT if index % 2 == 1 else SHORT_WAIT
    return priority, max_wait_time


def expect_status(response: httpx.Response, status: int, action: str) -> dict[str, Any]:
    assert response.status_code == status, (
        f"{action}: expected {status}, got {response.status_code} {response.text[:300]}"
    )
    body: dict[str, Any] = response.json()
    return body


async def lock_bench(http: httpx.AsyncClient, number: int, limit: asyncio.Semaphore) -> LockRecord:
    """Lock bench resource ``number``, then extend or unlock it if its number selects that.

    Even numbers get SHORT_TTL, odd ones LONG_TTL. Numbers ending in 3 or 4 are extended
    by three times their TTL, numbers ending in 7 or 8 are unlocked.
    """
    ttl = SHORT_TTL if number % 2 == 0 else LONG_TTL
    async with limit:
        response = await http.post(f"/api/v1/resources/{number}/lock", json={"ttl": ttl})
        locked = expect_status(response, 200, f"lock of resource {number}")
        record = LockRecord(
            resource_id=locked["resource"]["id"],
            token=locked["lock-token"],
            expires_at=parse_instant(locked["expires-at"]),
            fencing_token=locked["fencing_token"],
        )

        if number % 10 in (3, 4):
            response = await http.post(
                f"/api/v1/resources/{number}/extend",
                params={"lock-token": record.token, "additional-ttl": 3 * ttl},
            )
            extended = expect_status(response, 200, f"extend of resource {number}")
            record.expires_at = parse_instant(extended["new-expires-at"])

        if number % 10 in (7, 8):
            response = await http.post(
                f"/api/v1/resources/{number}/unlock", params={"lock-token": record.token}
            )
            expect_status(response, 200, f"unlock of resource {number}")
            record.unlocked = True
    return record


async def reserve_rigs(http: httpx.AsyncClient) -> list[ReservationRecord]:
    """Fill the rig pool with reservations, claim some, then queue more behind them."""
    records = []
    for _ in range(FULFILLED_COUNT):
        request = {"tags": [RIG_TAG], "quantity": 1, "ttl": LONG_TTL, "max_wait_time": 600}
        response = await http.post("/api/v1/reservations", json=request)
        created = expect_status(response, 201, "reservation of a free rig")
        records.append(ReservationRecord(created["reservation_id"], "pending", 0, 600))

    for record in records:
        response = await http.get(f"/api/v1/reservations/{record.reservation_id}")
        current = expect_status(response, 200, f"read of {record.reservation_id}")
        assert current["status"] == "fulfilled", f"a free rig did not fulfil {current}"
        record.status = "fulfilled"
        record.resource_ids = current["resource_ids"]
        record.lock_tokens = current["lock_tokens"]

    for record in records[:CLAIMED_COUNT]:
        response = await http.post(f"/api/v1/reservations/{record.reservation_id}/claim")
        claimed = expect_status(response, 200, f"claim of {record.reservation_id}")
        record.status = claimed["status"]

    for index in range(PENDING_COUNT):
        priority, max_wait_time = pending_plan(index)
        request = {
            "tags": [RIG_TAG],
            "quantity": 1,
            "ttl": LONG_TTL,
            "max_wait_time": max_wait_time,
            "priority": priority,
        }
        response = await http.post("/api/v1/reservations", json=request)
        created = expect_status(response, 201, f"reservation {index} behind a busy rig pool")
        records.append(
            ReservationRecord(created["reservation_id"], created["status"], priority, max_wait_time)
        )
    return records


async def send_burst(base_url: str) -> tuple[list[LockRecord], list[ReservationRecord]]:
    limit = asyncio.Semaphore(CONCURRENT_LOCKS)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        lock_tasks = [lock_bench(http, number, limit) for number in range(1, BENCH_COUNT + 1)]
        locks, reservations = await asyncio.gather(asyncio.gather(*lock_tasks), reserve_rigs(http))
    return locks, reservations


@pytest.fixture(scope="module")
def crashed_database(tmp_path_factory: pytest.TempPathFactory) -> CrashedDatabase:
    """Run the burst against a server on SQLite, then kill it with SIGKILL."""
    directory = tmp_path_factory.mktemp("durability")
    descriptor = write_descriptor(directory)
    url = f"sqlite:///{directory / 'rentabot.db'}"
    server = start_server_process(
        directory / "crashed-server.log", descriptor=descriptor, env={"RENTABOT_PERSIST": url}
    )
    try:
        locks, reservations = asyncio.run(send_burst(server.base_url))
    finally:
        server.kill()
    return CrashedDatabase(descriptor, url, directory, locks, reservations)


@pytest.fixture
def restarted_url(crashed_database: CrashedDatabase) -> Iterator[str]:
    """Start a new server process on the crashed file and stop it after the test."""
    server = start_server_process(
        crashed_database.directory / "restarted-server.log",
        descriptor=crashed_database.descriptor,
        env={"RENTABOT_PERSIST": crashed_database.url},
    )
    try:
        yield server.base_url
    finally:
        server.stop()


def resources_by_id(http: httpx.Client) -> dict[int, dict[str, Any]]:
    listing = expect_status(http.get("/api/v1/resources"), 200, "list of resources")
    return {resource["id"]: resource for resource in listing["resources"]}


@pytest.mark.slow
def test_burst_was_acknowledged(crashed_database: CrashedDatabase) -> None:
    statuses = [record.status for record in crashed_database.reservations]
    assert len(crashed_database.locks) == BENCH_COUNT
    assert statuses.count("claimed") == CLAIMED_COUNT
    assert statuses.count("fulfilled") == FULFILLED_COUNT - CLAIMED_COUNT
    assert statuses.count("pending") == PENDING_COUNT


@pytest.mark.slow
def test_restart_keeps_acknowledged_locks(
    crashed_database: CrashedDatabase, restarted_url: str
) -> None:
    with httpx.Client(base_url=restarted_url) as http:
        read_from = datetime.now(UTC)
        resources = resources_by_id(http)
        read_until = datetime.now(UTC)

    missing: list[int] = []
    freed: list[int] = []
    changed_token: list[int] = []
    changed_expiry: list[tuple[int, str, datetime]] = []
    changed_fencing: list[int] = []
    still_locked: list[int] = []
    held_checked = 0
    for record in crashed_database.locks:
        resource = resources.get(record.resource_id)
        if resource is None:
            missing.append(record.resource_id)
        elif record.unlocked or record.expires_at <= read_from:
            # Unlocked before the kill, or expired before the listing was requested.
            if resource["lock-token"] != "":
                still_locked.append(record.resource_id)
        elif record.expires_at > read_until:
            held_checked += 1
            if resource["lock-token"] == "":
                freed.append(record.resource_id)
            elif resource["lock-token"] != record.token:
                changed_token.append(record.resource_id)
            elif parse_instant(resource["lock-expires-at"]) != record.expires_at:
                changed_expiry.append(
                    (record.resource_id, resource["lock-expires-at"], record.expires_at)
                )
            elif resource["fencing_token"] != record.fencing_token:
                changed_fencing.append(record.resource_id)
        # A lock that expired while the listing was in flight may show either way.

    assert held_checked > 0, "no acknowledged lock was still due to be held after the restart"
    assert missing == [], "resources missing after the restart"
    assert freed == [], "acknowledged locks were lost in the kill"
    assert changed_token == [], "locks came back with another lock-token"
    assert changed_expiry == [], "locks came back with another expiry"
    assert changed_fencing == [], "locks came back with another fencing_token"
    assert still_locked == [], "acknowledged unlocks were lost in the kill"


@pytest.mark.slow
def test_restart_keeps_acknowledged_reservations(
    crashed_database: CrashedDatabase, restarted_url: str
) -> None:
    with httpx.Client(base_url=restarted_url) as http:
        listing = expect_status(http.get("/api/v1/reservations"), 200, "list of reservations")
        resources = resources_by_id(http)
    found = {body["reservation_id"]: body for body in listing["reservations"]}

    expected_ids = [record.reservation_id for record in crashed_database.reservations]
    assert sorted(found) == sorted(expected_ids), "the set of reservations changed"
    for record in crashed_database.reservations:
        body = found[record.reservation_id]
        assert body["status"] == record.status, f"{record.reservation_id} changed status"
        assert body["resource_ids"] == record.resource_ids, f"{record.reservation_id} resources"
        assert body["lock_tokens"] == record.lock_tokens, f"{record.reservation_id} tokens"

    held = [record for record in crashed_database.reservations if record.lock_tokens]
    for record in held:
        resource = resources[record.resource_ids[0]]
        assert resource["lock-token"] == record.lock_tokens[0], (
            f"rig {record.resource_ids[0]} lost the lock of {record.reservation_id}"
        )

    queue = sorted(
        (body for body in listing["reservations"] if body["status"] == "pending"),
        key=lambda body: body["position_in_queue"],
    )
    expected_queue = [record.reservation_id for record in crashed_database.pending()]
    assert [body["reservation_id"] for body in queue] == expected_queue
    assert [body["position_in_queue"] for body in queue] == list(range(1, PENDING_COUNT + 1))


@pytest.mark.slow
def test_late_start_applies_missed_deadlines(crashed_database: CrashedDatabase) -> None:
    # No server runs on the file now, because the SQLite store allows one process at a time.
    clock = ManualClock(start=datetime.now(UTC) + DOWNTIME)
    settings = Settings(descriptor=crashed_database.descriptor, persist=crashed_database.url)
    with in_process_server(settings=settings, clock=clock) as server:
        with httpx.Client(base_url=server.base_url) as http:
            resources = resources_by_id(http)
            reservations = {
                record.reservation_id: http.get(f"/api/v1/reservations/{record.reservation_id}")
                for record in crashed_database.reservations
            }
            listing = expect_status(http.get("/api/v1/reservations"), 200, "reservations")

    now = clock.now()
    expired_locks = [
        record
        for record in crashed_database.locks
        if not record.unlocked and record.expires_at <= now
    ]
    live_locks = [
        record
        for record in crashed_database.locks
        if not record.unlocked and record.expires_at > now
    ]
    assert expired_locks, "the burst made no lock that expires during the downtime"
    assert live_locks, "the burst made no lock that outlives the downtime"

    not_released = [
        record.resource_id
        for record in expired_locks
        if resources[record.resource_id]["status"] != "available"
    ]
    token_left = [
        record.resource_id
        for record in expired_locks
        if resources[record.resource_id]["lock-token"] != ""
    ]
    lost = [
        record.resource_id
        for record in live_locks
        if resources[record.resource_id]["lock-token"] != record.token
    ]
    moved_expiry = [
        record.resource_id
        for record in live_locks
        if resources[record.resource_id]["lock-expires-at"] is None
        or parse_instant(resources[record.resource_id]["lock-expires-at"]) != record.expires_at
    ]
    assert not_released == [], "locks that expired while down were not released on start"
    assert token_left == [], "released locks kept their lock-token"
    assert lost == [], "locks that outlive the downtime lost their lock-token"
    assert moved_expiry == [], "locks that outlive the downtime changed their expiry"

    claimed = [record for record in crashed_database.reservations if record.status == "claimed"]
    for record in claimed:
        body = expect_status(reservations[record.reservation_id], 200, record.reservation_id)
        assert body["status"] == "claimed"
        assert resources[record.resource_ids[0]]["lock-token"] == record.lock_tokens[0]

    # The unclaimed reservation's claim window ended an hour ago, which freed its rig.
    unclaimed = [r for r in crashed_database.reservations if r.status == "fulfilled"]
    for record in unclaimed:
        ended = expect_status(reservations[record.reservation_id], 404, record.reservation_id)
        assert ended["status"] == "expired"
        assert ended["reason"]

    queue = crashed_database.pending()
    waited_out = [record for record in queue if record.max_wait_time == SHORT_WAIT]
    for record in waited_out:
        ended = expect_status(reservations[record.reservation_id], 404, record.reservation_id)
        assert ended["status"] == "expired", f"{record.reservation_id} did not expire"
        assert ended["reason"], f"{record.reservation_id} expired without a reason"

    # The freed rig went to the head of the queue, when the claim window ended.
    still_waiting = [record for record in queue if record.max_wait_time == LONG_WAIT]
    head, *rest = still_waiting
    head_body = expect_status(reservations[head.reservation_id], 200, head.reservation_id)
    assert head_body["status"] == "fulfilled"
    assert head_body["resource_ids"] == unclaimed[0].resource_ids

    pending_now = sorted(
        (body for body in listing["reservations"] if body["status"] == "pending"),
        key=lambda body: body["position_in_queue"],
    )
    assert [body["reservation_id"] for body in pending_now] == [r.reservation_id for r in rest]
