"""A lock's expiry is applied exactly once when three replicas share one database.

Every replica's timer wakes for every lock's expiry (the deadline reaches the others
through NOTIFY), and every read applies the deadlines that are due, so all three
race to expire each lock. The one that gets the write lock first applies it; the
others must find nothing left to do. The test takes 1 s and 2 s locks through all
three replicas. The 1 s locks run out with no request in flight, and the 2 s locks
while every replica is being read. Then the test counts the ``lock.expired`` rows in
the ``events`` table directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.support.replicas import read_events, running_replicas

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

logger = logging.getLogger(__name__)

REPLICA_COUNT = 3
LEASE_TAG = "lease"
EXPIRING_COUNT = 30
UNLOCKED_COUNT = 6
# Seconds each phase goes on after its last expiry, so that a second expiry of a lock by
# a slower replica would be in the table before it is read.
GRACE_SECONDS = 1.0
MAX_READS_PER_REPLICA = 2_000
REQUEST_TIMEOUT = 15.0


@dataclass(frozen=True)
class AcknowledgedLock:
    resource_id: int
    fencing_token: int
    ttl: int
    expires_at: datetime
    replica: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.resource_id, self.fencing_token)


def write_lease_descriptor(directory: Path) -> Path:
    lines = [
        f"lease-{number}:\n  tags: {LEASE_TAG}\n"
        for number in range(1, EXPIRING_COUNT + UNLOCKED_COUNT + 1)
    ]
    path = directory / "leases.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def lock(
    client: httpx.Client, replica: int, resource_id: int, ttl: int
) -> tuple[AcknowledgedLock, str]:
    response = client.post(f"/api/v1/resources/{resource_id}/lock", json={"ttl": ttl})
    assert response.status_code == 200, (
        f"lock {resource_id} through replica {replica}: {response.text}"
    )
    body = response.json()
    acknowledged = AcknowledgedLock(
        resource_id, body["fencing_token"], ttl, datetime.fromisoformat(body["expires-at"]), replica
    )
    return acknowledged, body["lock-token"]


async def read_until(base_url: str, until: float) -> int:
    """List the resources through one replica again and again until ``until``; return how often."""
    reads = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        while reads < MAX_READS_PER_REPLICA and time.monotonic() < until:
            response = await client.get("/api/v1/resources")
            response.raise_for_status()
            reads += 1
    return reads


async def read_from_all(base_urls: list[str], until: float) -> list[int]:
    return list(await asyncio.gather(*(read_until(url, until) for url in base_urls)))


def test_lock_expires_exactly_once(tmp_path: Path) -> None:
    descriptor = write_lease_descriptor(tmp_path)
    with running_replicas(REPLICA_COUNT, descriptor, tmp_path) as replicas:
        clients = [
            httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) for url in replicas.base_urls
        ]
        try:
            expiring = []
            for number in range(EXPIRING_COUNT):
                replica = number % REPLICA_COUNT
                ttl = 1 + number % 2
                acknowledged, _ = lock(clients[replica], replica, number + 1, ttl)
                expiring.append(acknowledged)

            unlocked = []
            for number in range(UNLOCKED_COUNT):
                replica = number % REPLICA_COUNT
                resource_id = EXPIRING_COUNT + number + 1
                acknowledged, token = lock(clients[replica], replica, resource_id, ttl=2)
                other = clients[(replica + 1) % REPLICA_COUNT]
                response = other.post(
                    f"/api/v1/resources/{resource_id}/unlock", params={"lock-token": token}
                )
                assert response.status_code == 200, f"unlock {resource_id}: {response.text}"
                unlocked.append(acknowledged)
        finally:
            for client in clients:
                client.close()

        # No request is sent while the 1 s locks run out, so the replicas' timers race to
        # expire them. Every replica is read again and again while the 2 s locks run out,
        # so the read paths race as well.
        short_locks_end = max(item.expires_at for item in expiring if item.ttl == 1)
        time.sleep(max(0.0, short_locks_end.timestamp() - time.time()) + GRACE_SECONDS)
        last_expiry = max(item.expires_at for item in expiring)
        seconds_left = max(0.0, last_expiry.timestamp() - time.time())
        reads = asyncio.run(
            read_from_all(replicas.base_urls, time.monotonic() + seconds_left + GRACE_SECONDS)
        )
        expired_events = read_events(replicas.store_url, "lock.expired")

    expiries = Counter((event.resource_id, event.fencing_token) for event in expired_events)
    context = (
        f"{len(expired_events)} lock.expired events for {EXPIRING_COUNT} locks taken through "
        f"{REPLICA_COUNT} replicas, which were read {reads} times while the 2 s locks ran out"
    )
    logger.info("exactly-once expiry: %s", context)
    missing = [acknowledged for acknowledged in expiring if expiries[acknowledged.key] == 0]
    repeated = [acknowledged for acknowledged in expiring if expiries[acknowledged.key] > 1]
    assert not missing, f"{len(missing)} locks never expired: {missing[:5]}; {context}"
    assert not repeated, (
        f"{len(repeated)} locks expired more than once: "
        f"{[(item.key, expiries[item.key]) for item in repeated[:5]]}; {context}"
    )

    expired_after_unlock = [item for item in unlocked if expiries[item.key] > 0]
    assert not expired_after_unlock, (
        f"{len(expired_after_unlock)} of {UNLOCKED_COUNT} unlocked locks also expired: "
        f"{expired_after_unlock}; {context}"
    )

    expiry_by_key: dict[tuple[int | None, int | None], datetime] = {
        acknowledged.key: acknowledged.expires_at for acknowledged in expiring
    }
    off_instant = [
        event
        for event in expired_events
        if (event.resource_id, event.fencing_token) in expiry_by_key
        and event.at != expiry_by_key[event.resource_id, event.fencing_token]
    ]
    assert not off_instant, (
        f"{len(off_instant)} lock.expired events are not stamped with their lock's "
        f"expires-at: {off_instant[:5]}; {context}"
    )
