"""Mutual exclusion and durability with three replicas on one PostgreSQL schema.

The 32 clients of ``tests.support.lab_clients`` share 8 resources for 30 s, each
request going to a replica chosen at random. One run keeps every replica up. The other
kills one replica with SIGKILL every 4-6 s, rotating, and restarts it on the same port.
There a request that fails with a connection error or a 503 is sent to the next replica.

After each run, ``tests.support.holds`` finds no two acknowledged holds of a resource
at the same instant and no fencing token out of order. Each client then takes one long
lock and keeps it. Every replica must show each lock still held, with its token and
fencing token. It must also show every reservation a client created, with a status
that the client's acknowledged responses allow. The run with kills also finds every
acknowledged lock in the ``events`` table. Both runs check there that each lock ended
exactly once before its resource was locked again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.holds import (
    Hold,
    describe_pairs,
    find_fencing_violations,
    find_overlaps,
    parse_instant,
)
from tests.support.lab_clients import (
    LATER_RESERVATION_STATUSES,
    POOL_MAX_LOCK_DURATION,
    Tally,
    run_clients,
    write_pool_descriptor,
)
from tests.support.replicas import ReplicaSet, read_events, running_replicas

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

logger = logging.getLogger(__name__)

REPLICA_COUNT = 3
RUN_SECONDS = 30.0
# Seconds between one restart and the next kill, drawn uniformly.
KILL_INTERVAL_RANGE = (4.0, 6.0)
MAX_KILLS = 20
# After the run each client takes one lock this long, so the end state has locks to read.
CLOSING_LOCK_TTL = POOL_MAX_LOCK_DURATION
CLOSING_SECONDS = 8.0
# A hold that ends less than this many seconds after the final reads begin may end
# during them, so it is not checked.
STILL_HELD_MARGIN = 2.0
READ_TIMEOUT = 15.0


@dataclass
class EndState:
    """Differences between what the clients were acknowledged and what each replica shows."""

    held_checked: int = 0
    lock_token_mismatches: list[str] = field(default_factory=list)
    fencing_token_mismatches: list[str] = field(default_factory=list)
    earlier_expiries: list[str] = field(default_factory=list)
    reservations_checked: int = 0
    lost_reservations: list[str] = field(default_factory=list)
    disagreeing_reservations: list[str] = field(default_factory=list)
    regressed_reservations: list[str] = field(default_factory=list)


def still_held(holds: list[Hold], now: float) -> list[Hold]:
    """Return the holds whose client never gave them back and that last past the reads."""
    return [
        hold for hold in holds if hold.released_at is None and hold.end > now + STILL_HELD_MARGIN
    ]


def compare_held_locks(clients: list[httpx.Client], holds: list[Hold], state: EndState) -> None:
    """Read each still-held resource from every replica and note what differs from its hold."""
    for hold in still_held(holds, time.time()):
        state.held_checked += 1
        for client in clients:
            response = client.get(f"/api/v1/resources/{hold.resource_id}")
            response.raise_for_status()
            resource = response.json()["resource"]
            where = f"{client.base_url} for {hold.describe()}"
            if resource["lock-token"] != hold.token:
                shown = "another lock-token" if resource["lock-token"] else "no lock"
                state.lock_token_mismatches.append(f"{where}: shows {shown}")
                continue
            if hold.fencing_token is not None and resource["fencing_token"] != hold.fencing_token:
                state.fencing_token_mismatches.append(
                    f"{where}: shows fencing_token {resource['fencing_token']}"
                )
            if parse_instant(resource["lock-expires-at"]) < hold.expiry:
                state.earlier_expiries.append(
                    f"{where}: shows lock-expires-at {resource['lock-expires-at']}"
                )


def reservation_status(client: httpx.Client, reservation_id: str) -> str | None:
    """Return the status a replica shows, or None when it does not know the id at all.

    An ended reservation gets a 404 whose body contains its status.
    """
    response = client.get(f"/api/v1/reservations/{reservation_id}")
    if response.status_code not in (200, 404):
        return f"HTTP {response.status_code}"
    status: str | None = response.json().get("status")
    return status


def compare_reservations(
    clients: list[httpx.Client], statuses: dict[str, str], state: EndState
) -> None:
    """Read each reservation from every replica and note any that is lost or out of order."""
    for reservation_id, acknowledged in statuses.items():
        state.reservations_checked += 1
        shown = {
            str(client.base_url): reservation_status(client, reservation_id) for client in clients
        }
        where = f"{reservation_id} (last acknowledged status {acknowledged!r}): {shown}"
        if None in shown.values():
            state.lost_reservations.append(where)
            continue
        if len(set(shown.values())) > 1:
            state.disagreeing_reservations.append(where)
            continue
        if not set(shown.values()) <= LATER_RESERVATION_STATUSES[acknowledged]:
            state.regressed_reservations.append(where)


def read_end_state(base_urls: list[str], tally: Tally) -> EndState:
    state = EndState()
    clients = [httpx.Client(base_url=url, timeout=READ_TIMEOUT) for url in base_urls]
    try:
        compare_held_locks(clients, tally.holds, state)
        compare_reservations(clients, tally.reservation_statuses, state)
    finally:
        for client in clients:
            client.close()
    return state


async def kill_replicas_until(replicas: ReplicaSet, deadline: float, seed: int) -> list[str]:
    """Kill and restart one replica every few seconds, rotating, until ``deadline``.

    Returns one line per kill: which replica and how long it was down. The restart runs
    in a thread, so the clients on this event loop keep running meanwhile.
    """
    choice = random.Random(seed)
    kills: list[str] = []
    for number in range(MAX_KILLS):
        interval = choice.uniform(*KILL_INTERVAL_RANGE)
        if time.monotonic() + interval >= deadline:
            break
        await asyncio.sleep(interval)
        index = number % len(replicas.servers)
        killed_at = time.monotonic()
        await asyncio.to_thread(replicas.restart_after_kill, index)
        kills.append(f"replica {index} down {time.monotonic() - killed_at:.2f} s")
    return kills


async def run_with_kills(replicas: ReplicaSet) -> tuple[Tally, list[str]]:
    deadline = time.monotonic() + RUN_SECONDS
    killer = asyncio.create_task(kill_replicas_until(replicas, deadline, seed=7))
    try:
        tally = await run_clients(
            replicas.base_urls, RUN_SECONDS, CLOSING_LOCK_TTL, CLOSING_SECONDS
        )
    finally:
        kills = await killer
    return tally, kills


def assert_exclusion_held(tally: Tally, summary: str, logs: str) -> None:
    """Assert the checks shared by both runs: responses, contention, exclusion, fencing."""
    assert not tally.transport_errors, (
        f"{len(tally.transport_errors)} requests got no response from any replica, first: "
        f"{tally.transport_errors[:3]}\n{summary}\nreplica logs:\n{logs}"
    )
    assert not tally.server_errors, (
        f"{len(tally.server_errors)} responses were 5xx, first: {tally.server_errors[:3]}\n"
        f"{summary}\nreplica logs:\n{logs}"
    )

    # The run exercised contention, so the checks below are not vacuous.
    assert tally.count("lock", 200) > 0, summary
    assert tally.count("lock", 403) > 0, summary
    assert tally.count("unlock", 200) > 0, summary
    assert any(hold.ended_by_expiry for hold in tally.holds), summary
    assert tally.reservations_claimed > 0, summary
    assert tally.count("release", 200) > 0, summary

    assert not tally.accepted_bad_tokens, (
        f"wrong or stale lock tokens were accepted: {tally.accepted_bad_tokens[:5]}\n{summary}"
    )
    assert not tally.shortened_extensions, (
        f"extend moved an expiry earlier: {tally.shortened_extensions[:5]}\n{summary}"
    )

    overlaps = find_overlaps(tally.holds)
    assert not overlaps, (
        f"{len(overlaps)} pairs of clients held the same resource at once:\n"
        f"{describe_pairs(overlaps)}\n{summary}"
    )
    fencing_violations = find_fencing_violations(tally.holds)
    assert not fencing_violations, (
        f"{len(fencing_violations)} fencing tokens did not grow with acquisition order:\n"
        f"{describe_pairs(fencing_violations)}\n{summary}"
    )


def assert_end_state_visible(state: EndState, tally: Tally, summary: str) -> None:
    """Assert that every replica shows the held locks and the reservations as acknowledged."""
    logger.info(
        "end state: %d holds still held (%d of them closing locks) and %d reservations, "
        "each read from %d replicas",
        state.held_checked,
        len(tally.closing_holds),
        state.reservations_checked,
        REPLICA_COUNT,
    )
    held = f"{state.held_checked} holds still held, each read from {REPLICA_COUNT} replicas"
    assert len(tally.closing_holds) > 0, f"no client took a closing lock\n{summary}"
    assert state.held_checked >= len(tally.closing_holds), (
        f"only {held}, fewer than the {len(tally.closing_holds)} closing locks"
    )
    assert not state.lock_token_mismatches, (
        f"{len(state.lock_token_mismatches)} reads of {held} did not show the lock:\n"
        + "\n".join(state.lock_token_mismatches[:5])
    )
    assert not state.fencing_token_mismatches, (
        f"{len(state.fencing_token_mismatches)} reads of {held} showed another fencing_token:\n"
        + "\n".join(state.fencing_token_mismatches[:5])
    )
    assert not state.earlier_expiries, (
        f"{len(state.earlier_expiries)} reads of {held} showed an expiry earlier than "
        "acknowledged:\n" + "\n".join(state.earlier_expiries[:5])
    )

    reservations = f"{state.reservations_checked} acknowledged reservations"
    assert state.reservations_checked > 0, summary
    assert not state.lost_reservations, (
        f"{len(state.lost_reservations)} of {reservations} were unknown to a replica:\n"
        + "\n".join(state.lost_reservations[:5])
    )
    assert not state.disagreeing_reservations, (
        f"replicas showed {len(state.disagreeing_reservations)} of {reservations} "
        "with different statuses:\n" + "\n".join(state.disagreeing_reservations[:5])
    )
    assert not state.regressed_reservations, (
        f"{len(state.regressed_reservations)} of {reservations} showed a status that their "
        "last acknowledged status cannot lead to:\n" + "\n".join(state.regressed_reservations[:5])
    )


def lock_lifecycle_gaps(store_url: str) -> list[str]:
    """Return each lock in the event history that did not end exactly once before the next.

    Every ``resource.locked`` must be followed by one ``resource.unlocked`` or
    ``lock.expired`` with its fencing token before the resource is locked again. The
    last lock of a resource may still be held.
    """
    history: dict[int, list[tuple[str, int | None]]] = {}
    for event in read_events(store_url, "resource.locked", "resource.unlocked", "lock.expired"):
        assert event.resource_id is not None
        history.setdefault(event.resource_id, []).append((event.name, event.fencing_token))

    gaps = []
    for resource_id, steps in history.items():
        open_lock: int | None = None
        for name, fencing_token in steps:
            if name == "resource.locked":
                if open_lock is not None:
                    gaps.append(f"resource {resource_id}: lock {open_lock} never ended")
                open_lock = fencing_token
            elif fencing_token != open_lock:
                gaps.append(f"resource {resource_id}: {name} of lock {fencing_token} unmatched")
            else:
                open_lock = None
    return gaps


def test_three_replicas_keep_exclusion(tmp_path: Path) -> None:
    descriptor = write_pool_descriptor(tmp_path)
    with running_replicas(REPLICA_COUNT, descriptor, tmp_path) as replicas:
        tally = asyncio.run(
            run_clients(replicas.base_urls, RUN_SECONDS, CLOSING_LOCK_TTL, CLOSING_SECONDS)
        )
        state = read_end_state(replicas.base_urls, tally)
        gaps = lock_lifecycle_gaps(replicas.store_url)
        logs = replicas.log_tails()
    summary = tally.summary()
    logger.info("three replicas: %s", summary)

    assert not tally.failovers, (
        f"{sum(tally.failovers.values())} requests failed over although no replica was "
        f"killed, first: {tally.failover_examples[:3]}\n{summary}\nreplica logs:\n{logs}"
    )
    for url in replicas.base_urls:
        assert tally.requests_by_replica[url] > 0, f"no request went to {url}\n{summary}"
    assert_exclusion_held(tally, summary, logs)
    assert_end_state_visible(state, tally, summary)
    assert not gaps, f"{len(gaps)} locks without exactly one end:\n" + "\n".join(gaps[:5])


@pytest.mark.timeout(180)
def test_killed_replicas_lose_nothing(tmp_path: Path) -> None:
    descriptor = write_pool_descriptor(tmp_path)
    with running_replicas(REPLICA_COUNT, descriptor, tmp_path) as replicas:
        tally, kills = asyncio.run(run_with_kills(replicas))
        # One more kill after the closing locks were acknowledged, before they are read.
        last_killed = len(kills) % REPLICA_COUNT
        replicas.restart_after_kill(last_killed)
        kills.append(f"replica {last_killed} after the closing locks")
        state = read_end_state(replicas.base_urls, tally)
        locked_events = {
            (event.resource_id, event.fencing_token)
            for event in read_events(replicas.store_url, "resource.locked")
        }
        gaps = lock_lifecycle_gaps(replicas.store_url)
        logs = replicas.log_tails()
    summary = f"{tally.summary()}; kills: {kills}"
    logger.info("three replicas, one killed every few seconds: %s", summary)

    failovers = sum(tally.failovers.values())
    assert failovers > 0, f"no request failed over, so the kills went unnoticed\n{summary}"
    logger.info("failovers: %d, first: %s", failovers, tally.failover_examples[:3])
    assert_exclusion_held(tally, summary, logs)

    known = [hold for hold in tally.holds if hold.fencing_token is not None]
    unrecorded = [
        hold for hold in known if (hold.resource_id, hold.fencing_token) not in locked_events
    ]
    assert not unrecorded, (
        f"{len(unrecorded)} of {len(known)} acknowledged locks have no resource.locked event "
        f"in the database:\n" + "\n".join(hold.describe() for hold in unrecorded[:5])
    )
    assert_end_state_visible(state, tally, summary)
    assert not gaps, f"{len(gaps)} locks without exactly one end:\n" + "\n".join(gaps[:5])
