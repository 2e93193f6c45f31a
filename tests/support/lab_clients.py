"""Simulated CI pipelines that share a pool of resources over real HTTP, for the load tests.

Each client locks by id or by tag, extends, unlocks (sometimes with a wrong or stale
token), lets locks expire, and reserves, claims and releases groups of resources.
TTLs of 1-3 s make locks also end by expiry during the run. Every hold is built from
acknowledged responses only, for the checker in ``tests.support.holds``.

The clients talk to one server or to several replicas. With several, each request goes
to a replica chosen at random, and a request that fails with a connection error or a
503 is sent again to the next replica, as a load balancer with retries would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.holds import (
    Hold,
    format_instant,
    instant_after,
    parse_instant,
    total_held_seconds,
)

POOL_SIZE = 8
POOL_TAG = "pool"
# The second half of the pool also carries RACK_TAG, and most reservations ask for it.
# Under the strict queue policy a pending reservation keeps every free resource it could
# use, so reservations over the whole pool would leave direct locks almost no chance.
RACK_TAG = "rack"
RACK_SHARE_OF_RESERVATIONS = 0.95
# Seconds; the pool descriptor's max_lock_duration, so a closing lock may ask for it all.
POOL_MAX_LOCK_DURATION = 30
CLIENTS = 32
# Each step is one scenario (a lock, a reservation or a bad-token request), so this
# bound only matters if the server responds far faster than expected.
MAX_STEPS_PER_CLIENT = 5_000
MAX_POLLS_PER_RESERVATION = 200
POLL_INTERVAL = 0.1
REQUEST_TIMEOUT = 15.0
# A stale token is tried only this long after the lock certainly ended, to stay clear
# of rounding in the timestamps.
STALE_MARGIN = 0.01
MAX_CLOSING_LOCK_ATTEMPTS = 200

# Errors after which the request may have reached the server and been applied: the
# connection broke before the response came back.
BROKEN_CONNECTION_ERRORS = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)

# A reservation moves only forward through these statuses, so a status read later must
# be one of those reachable from the last status its client saw acknowledged.
LATER_RESERVATION_STATUSES = {
    "pending": {"pending", "fulfilled", "claimed", "expired", "cancelled", "released"},
    "fulfilled": {"fulfilled", "claimed", "expired", "released"},
    "claimed": {"claimed", "released"},
    "expired": {"expired"},
    "cancelled": {"cancelled"},
    "released": {"released"},
}


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
    # The last status each client saw acknowledged for each reservation it created.
    reservation_statuses: dict[str, str] = field(default_factory=dict)
    # Attempts that failed with a connection error or a 503 and were sent to the next
    # replica, counted by cause, with the first few described.
    failovers: Counter[str] = field(default_factory=Counter)
    failover_examples: list[str] = field(default_factory=list)
    requests_by_replica: Counter[str] = field(default_factory=Counter)
    # Locks taken after the run and kept, so the end state has locks to check.
    closing_holds: list[Hold] = field(default_factory=list)

    def count(self, operation: str, status: int) -> int:
        return self.statuses[operation, status]

    def count_all(self, operation: str) -> int:
        return sum(n for (name, _), n in self.statuses.items() if name == operation)

    def note_failover(self, cause: str, description: str) -> None:
        self.failovers[cause] += 1
        if len(self.failover_examples) < 10:
            self.failover_examples.append(description)

    def summary(self) -> str:
        unlocks = self.count("unlock", 200)
        expiries = sum(1 for hold in self.holds if hold.ended_by_expiry)
        responses = ", ".join(
            f"{operation} {status}: {count}"
            for (operation, status), count in sorted(self.statuses.items())
        )
        failovers = ", ".join(
            f"{cause}: {count}" for cause, count in sorted(self.failovers.items())
        )
        replicas = ", ".join(
            f"{url}: {count}" for url, count in sorted(self.requests_by_replica.items())
        )
        return (
            f"acknowledged locks: {self.count('lock', 200)}, refused locks (403): "
            f"{self.count('lock', 403)}, acknowledged unlocks: {unlocks}, holds ended by "
            f"expiry: {expiries}, holds in total: {len(self.holds)} covering "
            f"{total_held_seconds(self.holds):.1f} resource-seconds, reservations fulfilled: "
            f"{self.reservations_fulfilled}, claimed: {self.reservations_claimed}, expired "
            f"while pending: {self.reservations_expired}; responses: {responses}; "
            f"failovers: {failovers or 'none'}; requests by replica: {replicas}"
        )


@dataclass
class Delivery:
    """The outcome of one request after any failover to other replicas."""

    # The last response, or None when no replica sent one.
    response: httpx.Response | None
    # The error of the last attempt when no response came.
    error: str | None = None
    # True when an attempt that failed may still have been applied by its replica.
    maybe_applied: bool = False


class Replicas:
    """HTTP clients for the servers that share one store, so any of them may serve any request."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        if not clients:
            raise ValueError("Replicas needs at least one HTTP client")
        self.clients = clients

    async def send(
        self, first: int, method: str, url: str, tally: Tally, **kwargs: Any
    ) -> Delivery:
        """Send to replica ``first``, then to the next ones while attempts fail over.

        A connection error or a 503 fails over, unless it is the last attempt, which
        returns as it is. A timeout or any other error does not fail over, because a
        replica that does not respond in time is a fault the test must report.
        """
        maybe_applied = False
        attempts = len(self.clients)
        for attempt in range(attempts):
            http = self.clients[(first + attempt) % attempts]
            last_attempt = attempt == attempts - 1
            replica = str(http.base_url).rstrip("/")
            tally.requests_by_replica[replica] += 1
            try:
                response = await http.request(method, url, **kwargs)
            except (httpx.ConnectError, *BROKEN_CONNECTION_ERRORS) as error:
                if not isinstance(error, httpx.ConnectError):
                    maybe_applied = True
                if last_attempt:
                    return Delivery(None, repr(error), maybe_applied)
                tally.note_failover(type(error).__name__, f"{method} {replica}{url}: {error!r}")
                continue
            except httpx.HTTPError as error:
                return Delivery(None, repr(error), maybe_applied=True)

            if response.status_code == 503 and not last_attempt:
                # The replica lost its database connection, possibly during the commit.
                maybe_applied = True
                tally.note_failover("503", f"{method} {replica}{url}: {response.text[:200]}")
                continue
            return Delivery(response, None, maybe_applied)
        raise AssertionError("unreachable: the last attempt always returns")


class LabClient:
    """One simulated pipeline: a random sequence of scenarios until the run deadline."""

    def __init__(
        self,
        name: str,
        replicas: Replicas,
        resource_ids: list[int],
        seed: int,
        tally: Tally,
        deadline: float,
    ) -> None:
        self.name = name
        self.replicas = replicas
        self.resource_ids = resource_ids
        self.random = random.Random(seed)
        # Its own generator, so the scenarios are the same whatever the number of replicas.
        self.replica_choice = random.Random(f"replica-choice-{seed}")
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
        delivery = await self.deliver(operation, method, url, **kwargs)
        return delivery.response

    async def deliver(self, operation: str, method: str, url: str, **kwargs: Any) -> Delivery:
        """Send one request through a randomly chosen replica and count its outcome."""
        first = self.replica_choice.randrange(len(self.replicas.clients))
        delivery = await self.replicas.send(first, method, url, self.tally, **kwargs)
        response = delivery.response
        if response is None:
            self.tally.transport_errors.append(f"{self.name}: {method} {url}: {delivery.error}")
            return delivery
        self.tally.statuses[operation, response.status_code] += 1
        if response.status_code >= 500:
            self.tally.server_errors.append(
                f"{self.name}: {method} {url} -> {response.status_code} {response.text[:300]}"
            )
        return delivery

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

        hold = self.hold_from_lock(response.json())
        self.keep(hold)

        for _ in range(self.random.randint(0, 2)):
            await self.pause(self.random.uniform(0.05, 0.6))
            if not await self.extend(hold):
                break

        await self.pause(self.random.uniform(0.02, 0.5))
        if self.random.random() < 0.8:
            await self.unlock(hold)
        # Otherwise the client walks away and the lock ends by expiry.

    def hold_from_lock(self, locked: dict[str, Any]) -> Hold:
        """Build the hold that an acknowledged lock response describes."""
        return Hold(
            resource_id=locked["resource"]["id"],
            owner=self.name,
            token=locked["lock-token"],
            start=parse_instant(locked["locked-at"]),
            expiry=parse_instant(locked["expires-at"]),
            fencing_token=locked["fencing_token"],
        )

    async def extend(self, hold: Hold) -> bool:
        """Extend ``hold`` by 1-3 s and return whether the server acknowledged it."""
        delivery = await self.deliver(
            "extend",
            "POST",
            f"/api/v1/resources/{hold.resource_id}/extend",
            params={"lock-token": hold.token, "additional-ttl": self.random.randint(1, 3)},
        )
        response = delivery.response
        if response is None or delivery.maybe_applied:
            # A replica may have applied an extension whose response was lost, so the lock
            # may outlast ``expiry``.
            hold.outcome_unknown = True
        if response is None or response.status_code != 200:
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

    async def take_closing_lock(self, ttl: int, give_up_at: float) -> Hold | None:
        """Lock any pool resource for ``ttl`` seconds and keep it; return None if none came free.

        Tries until ``give_up_at`` (a ``time.monotonic()`` reading), for at most
        MAX_CLOSING_LOCK_ATTEMPTS requests, or until the clients together hold a closing
        lock on every resource.
        """
        body = {"ttl": ttl, "locked_by_label": f"{self.name} (closing)"}
        for _ in range(MAX_CLOSING_LOCK_ATTEMPTS):
            if time.monotonic() >= give_up_at:
                return None
            if len(self.tally.closing_holds) >= len(self.resource_ids):
                return None
            response = await self.request(
                "closing lock",
                "POST",
                "/api/v1/resources/lock",
                params={"tag": POOL_TAG},
                json=body,
            )
            if response is not None and response.status_code == 200:
                hold = self.hold_from_lock(response.json())
                self.keep(hold)
                self.tally.closing_holds.append(hold)
                return hold
            await asyncio.sleep(self.random.uniform(0.05, 0.2))
        return None

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
        self.tally.reservation_statuses[reservation_id] = response.json()["status"]

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
                self.tally.reservation_statuses[reservation_id] = "claimed"
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
                ended_status = response.json().get("status")
                if ended_status is not None:
                    self.tally.reservation_statuses[reservation_id] = ended_status
                if ended_status == "expired":
                    self.tally.reservations_expired += 1
                return None
            body: dict[str, Any] = response.json()
            if response.status_code == 200:
                self.tally.reservation_statuses[reservation_id] = body["status"]
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
        self.tally.reservation_statuses[reservation_id] = body["status"]
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
            f"  max_lock_duration: {POOL_MAX_LOCK_DURATION}",
        ]
    path = directory / "pool.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def run_clients(
    base_urls: list[str],
    run_seconds: float,
    closing_lock_ttl: int | None = None,
    closing_seconds: float = 0.0,
) -> Tally:
    """Run CLIENTS clients against ``base_urls`` for ``run_seconds`` and return what they saw.

    With ``closing_lock_ttl``, each client then tries for up to ``closing_seconds`` to
    take one more lock of that many seconds, and keeps it.
    """
    tally = Tally()
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits)
            )
            for url in base_urls
        ]
        listing = await clients[0].get("/api/v1/resources")
        listing.raise_for_status()
        resource_ids = [resource["id"] for resource in listing.json()["resources"]]
        replicas = Replicas(clients)
        deadline = time.monotonic() + run_seconds
        lab_clients = [
            LabClient(f"client-{number}", replicas, resource_ids, number, tally, deadline)
            for number in range(CLIENTS)
        ]
        await asyncio.gather(*(client.run() for client in lab_clients))

        if closing_lock_ttl is not None:
            give_up_at = time.monotonic() + closing_seconds
            await asyncio.gather(
                *(client.take_closing_lock(closing_lock_ttl, give_up_at) for client in lab_clients)
            )
    return tally
