"""Mutual exclusion under load: 32 clients share 8 resources over real HTTP for 20 s.

Each client locks by id or by tag, extends, unlocks (sometimes with a wrong or stale
token), lets locks expire, and reserves, claims and releases groups of resources.
TTLs of 1-3 s make locks also end by expiry during the run. Afterwards
``tests.support.holds`` rebuilds every hold from acknowledged responses only and checks
that no two of them overlap and that fencing tokens grow in order of acquisition.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.holds import (
    Hold,
    describe_pairs,
    find_fencing_violations,
    find_overlaps,
    format_instant,
    instant_after,
    parse_instant,
    total_held_seconds,
)
from tests.support.servers import ServerProcess, start_server_process

logger = logging.getLogger(__name__)

POOL_SIZE = 8
POOL_TAG = "pool"
# The second half of the pool also carries RACK_TAG, and most reservations ask for it.
# Under the strict queue policy a pending reservation keeps every free resource it could
# use, so reservations over the whole pool would leave direct locks almost no chance.
RACK_TAG = "rack"
RACK_SHARE_OF_RESERVATIONS = 0.95
CLIENTS = 32
RUN_SECONDS = 20.0
# Each step is one scenario (a lock, a reservation or a bad-token request), so this
# bound only matters if the server responds far faster than expected.
MAX_STEPS_PER_CLIENT = 5_000
MAX_POLLS_PER_RESERVATION = 200
POLL_INTERVAL = 0.1
REQUEST_TIMEOUT = 15.0
# A stale token is tried only this long after the lock certainly ended, to stay clear
# of rounding in the timestamps.
STALE_MARGIN = 0.01


@dataclass
class Tally:
    """Responses seen by the clients, counted by operation and status, and every acknowledged hold."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    holds: list[Hold] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    accepted_bad_tokens: list[str] = field(default_factory=list)
    shortened_extensions: list[str] = field(default_factory=list)
    reservations_fulfilled: int = 0
    reservations_claimed: int = 0
    reservations_expired: int = 0

    def count(self, operation: str, status: int) -> int:
        return self.statuses[operation, status]

    def count_all(self, operation: str) -> int:
        return sum(n for (name, _), n in self.statuses.items() if name == operation)

    def summary(self) -> str:
        unlocks = self.count("unlock", 200)
        expiries = sum(1 for hold in self.holds if hold.ended_by_expiry)
        responses = ", ".join(
            f"{operation} {status}: {count}"
            for (operation, status), count in sorted(self.statuses.items())
        )
        return (
            f"acknowledged locks: {self.count('lock', 200)}, refused locks (403): "
            f"{self.count('lock', 403)}, acknowledged unlocks: {unlocks}, holds ended by "
            f"expiry: {expiries}, holds in total: {len(self.holds)} covering "
            f"{total_held_seconds(self.holds):.1f} resource-seconds, reservations fulfilled: "
            f"{self.reservations_fulfilled}, claimed: {self.reservations_claimed}, expired "
            f"while pending: {self.reservations_expired}; responses: {responses}"
        )


class LabClient:
    """One simulated pipeline: a random sequence of scenarios until the run deadline."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        resource_ids: list[int],
        seed: int,
        tally: Tally,
        deadline: float,
    ) -> None:
        self.name = name
        self.http = http
        self.resource_ids = resource_ids
        self.random = random.Random(seed)
        self.tally = tally
        self.deadline = deadline
        self.own_holds: list[Hold] = []

    async def run(self) -> None:
        for _ in range(MAX_STEPS_PER_CLIENT):
            if time.monotonic() >= self.deadline:
                return
            roll = self.random.random()
            if roll < 0.40:
                await self.lock_and_work(by_tag=False)
            elif roll < 0.80:
                await self.lock_and_work(by_tag=True)
            elif roll < 0.88:
                await self.reserve_and_work()
            else:
                await self.send_bad_token()

    # Requests

    async def request(
        self, operation: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Send one request and return its response, or None (noting the error) if none came back."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.tally.transport_errors.append(f"{self.name}: {method} {url}: {error!r}")
            return None
        self.tally.statuses[operation, response.status_code] += 1
        if response.status_code >= 500:
            self.tally.server_errors.append(
                f"{self.name}: {method} {url} -> {response.status_code} {response.text[:300]}"
            )
        return response

    async def pause(self, seconds: float) -> None:
        """Sleep, but never past the run deadline, so the last locks end promptly."""
        remaining = self.deadline - time.monotonic()
        await asyncio.sleep(max(0.0, min(seconds, remaining)))

    # Direct locks

    async def lock_and_work(self, by_tag: bool) -> None:
        ttl = self.random.randint(1, 3)
        body = {"ttl": ttl, "locked_by_label": self.name}
        if by_tag:
            response = await self.request(
                "lock", "POST", "/api/v1/resources/lock", params={"tag": POOL_TAG}, json=body
            )
        else:
            resource_id = self.random.choice(self.resource_ids)
            response = await self.request(
                "lock", "POST", f"/api/v1/resources/{resource_id}/lock", json=body
            )
        if response is None or response.status_code != 200:
            await self.pause(self.random.uniform(0.05, 0.3))
            return

        locked = response.json()
        hold = Hold(
            resource_id=locked["resource"]["id"],
            owner=self.name,
            token=locked["lock-token"],
            start=parse_instant(locked["locked-at"]),
            expiry=parse_instant(locked["expires-at"]),
            fencing_token=locked["fencing_token"],
        )
        self.keep(hold)

        for _ in range(self.random.randint(0, 2)):
            await self.pause(self.random.uniform(0.05, 0.6))
            if not await self.extend(hold):
                break

        await self.pause(self.random.uniform(0.02, 0.5))
        if self.random.random() < 0.8:
            await self.unlock(hold)
        # Otherwise the client walks away and the lock ends by expiry.

    async def extend(self, hold: Hold) -> bool:
        """Extend ``hold`` by 1-3 s and return whether the server acknowledged it."""
        response = await self.request(
            "extend",
            "POST",
            f"/api/v1/resources/{hold.resource_id}/extend",
            params={"lock-token": hold.token, "additional-ttl": self.random.randint(1, 3)},
        )
        if response is None:
            hold.outcome_unknown = True
            return False
        if response.status_code != 200:
            return False

        new_expiry = parse_instant(response.json()["new-expires-at"])
        if new_expiry < hold.expiry:
            self.tally.shortened_extensions.append(
                f"{hold.describe()}: extend returned new-expires-at {format_instant(new_expiry)}"
            )
        hold.expiry = new_expiry
        return True

    async def unlock(self, hold: Hold) -> None:
        hold.released_at = time.time()
        response = await self.request(
            "unlock",
            "POST",
            f"/api/v1/resources/{hold.resource_id}/unlock",
            params={"lock-token": hold.token},
        )
        if response is not None and response.status_code == 200:
            hold.release_acknowledged = True

    def keep(self, hold: Hold) -> None:
        self.tally.holds.append(hold)
        self.own_holds.append(hold)

    # Reservations

    async def reserve_and_work(self) -> None:
        ttl = self.random.randint(1, 3)
        max_wait_time = self.random.randint(1, 3)
        if self.random.random() < RACK_SHARE_OF_RESERVATIONS:
            tags = [POOL_TAG, RACK_TAG]
        else:
            tags = [POOL_TAG]
        request = {
            "tags": tags,
            "quantity": self.random.randint(1, 3),
            "max_wait_time": max_wait_time,
            "ttl": ttl,
            "locked_by_label": self.name,
        }
        response = await self.request("reserve", "POST", "/api/v1/reservations", json=request)
        if response is None or response.status_code != 201:
            return
        reservation_id = response.json()["reservation_id"]

        fulfilled = await self.wait_for_fulfilment(reservation_id, max_wait_time)
        if fulfilled is None:
            return
        self.tally.reservations_fulfilled += 1

        claimed = False
        if self.random.random() < 0.8:
            claim = await self.request(
                "claim", "POST", f"/api/v1/reservations/{reservation_id}/claim"
            )
            if claim is not None and claim.status_code == 200:
                claimed = True
                self.tally.reservations_claimed += 1
                fulfilled = claim.json()
        holds = self.reservation_holds(fulfilled, ttl, claimed)
        await self.learn_fencing_tokens(holds)

        await self.pause(self.random.uniform(0.1, 1.5))
        if self.random.random() < 0.7:
            await self.release(reservation_id, holds)

    async def wait_for_fulfilment(
        self, reservation_id: str, max_wait_time: int
    ) -> dict[str, Any] | None:
        """Poll until the reservation is fulfilled and return its body, or None if it never is.

        A reservation still pending after its wait (plus a second of slack) is released,
        which cancels it, or gives back its resources if it was fulfilled meanwhile.
        """
        give_up_at = time.monotonic() + max_wait_time + 1.0
        url = f"/api/v1/reservations/{reservation_id}"
        for _ in range(MAX_POLLS_PER_RESERVATION):
            response = await self.request("poll", "GET", url)
            if response is None:
                return None
            if response.status_code == 404:
                if response.json().get("status") == "expired":
                    self.tally.reservations_expired += 1
                return None
            body: dict[str, Any] = response.json()
            if body["status"] == "fulfilled":
                return body
            if time.monotonic() >= give_up_at:
                break
            await asyncio.sleep(POLL_INTERVAL)

        await self.release(reservation_id, [])
        return None

    def reservation_holds(self, body: dict[str, Any], ttl: int, claimed: bool) -> list[Hold]:
        """Turn a fulfilled reservation's body into one hold per resource.

        Its locks start at ``fulfilled_at`` and expire ``ttl`` seconds later. Unless the
        client claimed the reservation, the end of the claim window may end them sooner.
        """
        claim_deadline = None if claimed else parse_instant(body["claim_expires_at"])
        holds = []
        for resource_id, token in zip(body["resource_ids"], body["lock_tokens"], strict=True):
            hold = Hold(
                resource_id=resource_id,
                owner=f"{self.name} ({body['reservation_id']})",
                token=token,
                start=parse_instant(body["fulfilled_at"]),
                expiry=instant_after(body["fulfilled_at"], ttl),
                claim_deadline=claim_deadline,
            )
            self.keep(hold)
            holds.append(hold)
        return holds

    async def learn_fencing_tokens(self, holds: list[Hold]) -> None:
        """Read each resource; while it still carries our token, its fencing_token is ours."""
        for hold in holds:
            response = await self.request("read", "GET", f"/api/v1/resources/{hold.resource_id}")
            if response is None or response.status_code != 200:
                continue
            resource = response.json()["resource"]
            if resource["lock-token"] == hold.token:
                hold.fencing_token = resource["fencing_token"]

    async def release(self, reservation_id: str, holds: list[Hold]) -> None:
        sent_at = time.time()
        for hold in holds:
            hold.released_at = sent_at
        response = await self.request(
            "release", "POST", f"/api/v1/reservations/{reservation_id}/release"
        )
        if response is None or response.status_code != 200:
            return
        for hold in holds:
            hold.release_acknowledged = True

        body = response.json()
        if not holds and body["fulfilled_at"] is not None:
            # Fulfilled between the last poll and the release, so held until the release.
            self.tally.reservations_fulfilled += 1
            for hold in self.reservation_holds(body, body["ttl"], claimed=False):
                hold.released_at = sent_at
                hold.release_acknowledged = True

    # Wrong and stale tokens

    async def send_bad_token(self) -> None:
        """Unlock or extend with a token that locks nothing, which the server must reject."""
        now = time.time()
        ended = [hold for hold in self.own_holds if hold.certainly_ended(now - STALE_MARGIN)]
        if ended and self.random.random() < 0.5:
            stale = self.random.choice(ended)
            kind, resource_id, token = "stale", stale.resource_id, stale.token
        else:
            kind, resource_id = "wrong", self.random.choice(self.resource_ids)
            token = str(uuid.uuid4())

        action = self.random.choice(["unlock", "extend"])
        params = {"lock-token": token}
        if action == "extend":
            params["additional-ttl"] = "2"
        operation = f"{action} with {kind} token"
        url = f"/api/v1/resources/{resource_id}/{action}"
        response = await self.request(operation, "POST", url, params=params)
        if response is not None and response.is_success:
            self.tally.accepted_bad_tokens.append(
                f"{self.name}: {operation} on resource {resource_id} returned "
                f"{response.status_code} {response.text[:200]}"
            )
        await self.pause(self.random.uniform(0.01, 0.1))


def write_pool_descriptor(directory: Path) -> Path:
    """Write a descriptor of POOL_SIZE resources that all carry POOL_TAG.

    The second half also carries RACK_TAG.
    """
    lines = []
    for number in range(1, POOL_SIZE + 1):
        tags = f"{POOL_TAG}, {RACK_TAG}" if number > POOL_SIZE // 2 else POOL_TAG
        lines += [
            f"board-{number}:",
            f"  description: test board {number}",
            f"  tags: {tags}",
            "  max_lock_duration: 30",
        ]
    path = directory / "pool.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def run_clients(base_url: str) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits) as http:
        listing = await http.get("/api/v1/resources")
        listing.raise_for_status()
        resource_ids = [resource["id"] for resource in listing.json()["resources"]]
        deadline = time.monotonic() + RUN_SECONDS
        clients = [
            LabClient(f"client-{number}", http, resource_ids, number, tally, deadline)
            for number in range(CLIENTS)
        ]
        await asyncio.gather(*(client.run() for client in clients))
    return tally


def server_log_tail(server: ServerProcess, lines: int = 40) -> str:
    return "\n".join(server.log().splitlines()[-lines:])


# The checker on hand-made holds, so the acceptance run below cannot pass vacuously.


def make_hold(resource_id: int, start: float, expiry: float, fencing: int) -> Hold:
    return Hold(resource_id, f"owner-{fencing}", f"token-{fencing}", start, expiry, fencing)


def test_checker_reports_overlap() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    second = make_hold(1, start=102.0, expiry=104.0, fencing=2)
    assert find_overlaps([first, second]) == [(first, second)]


def test_checker_accepts_handover_at_expiry() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    second = make_hold(1, start=103.0, expiry=104.0, fencing=2)
    assert find_overlaps([first, second]) == []


def test_checker_ends_hold_at_unlock() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    first.released_at = 101.0
    second = make_hold(1, start=101.5, expiry=104.0, fencing=2)
    assert find_overlaps([first, second]) == []


def test_checker_separates_resources() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    second = make_hold(2, start=101.0, expiry=104.0, fencing=1)
    assert find_overlaps([first, second]) == []


def test_checker_reports_fencing_decrease() -> None:
    first = make_hold(1, start=100.0, expiry=101.0, fencing=5)
    second = make_hold(1, start=102.0, expiry=103.0, fencing=4)
    assert find_fencing_violations([first, second]) == [(first, second)]


def test_checker_reports_repeated_fencing() -> None:
    first = make_hold(1, start=100.0, expiry=101.0, fencing=5)
    second = make_hold(1, start=102.0, expiry=103.0, fencing=5)
    assert find_fencing_violations([first, second]) == [(first, second)]


# The acceptance run.


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory", "sqlite"], ids=["memory", "sqlite"])
def test_holds_never_overlap(store: str, tmp_path: Path) -> None:
    descriptor = write_pool_descriptor(tmp_path)
    env = {}
    if store == "sqlite":
        env["RENTABOT_PERSIST"] = f"sqlite:///{tmp_path / 'rentabot.db'}"

    server = start_server_process(tmp_path / "server.log", descriptor=descriptor, env=env)
    try:
        tally = asyncio.run(run_clients(server.base_url))
        log_tail = server_log_tail(server)
    finally:
        server.stop()
    summary = tally.summary()
    logger.info("%s store: %s", store, summary)

    assert not tally.transport_errors, (
        f"{len(tally.transport_errors)} requests got no response, first: "
        f"{tally.transport_errors[:3]}\n{summary}\nserver log:\n{log_tail}"
    )
    assert not tally.server_errors, (
        f"{len(tally.server_errors)} responses were 5xx, first: {tally.server_errors[:3]}\n"
        f"{summary}\nserver log:\n{log_tail}"
    )

    # The run exercised contention, so the checks below are not vacuous.
    assert tally.count("lock", 200) > 0, summary
    assert tally.count("lock", 403) > 0, summary
    assert tally.count("unlock", 200) > 0, summary
    assert any(hold.ended_by_expiry for hold in tally.holds), summary
    assert tally.reservations_claimed > 0, summary
    assert tally.count("release", 200) > 0, summary
    assert (
        tally.count_all("unlock with wrong token") + tally.count_all("extend with wrong token") > 0
    ), summary
    assert (
        tally.count_all("unlock with stale token") + tally.count_all("extend with stale token") > 0
    ), summary

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
