"""The measurements, each against one running server over the raw HTTP client.

Every loop is bounded both by a count and by a time cap. A request that gets an
unexpected status raises ``BenchmarkError`` with the status and body, because a
figure built on failed requests would be wrong.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from httpclient import Connection, Response, lock_path, unlock_path
from postgres import Backends, cpu_since
from servers import (
    HOST,
    BenchmarkError,
    Server,
    cpu_seconds,
    machine_cpu_seconds,
    memory_kib,
)

CYCLE_TTL = 60
HOLD_TTL = 600
MAX_SET_ASIDE = 30


def expect(response: Response, status: int, action: str) -> Any:
    """Return the JSON body of ``response``, or raise if its status is not ``status``."""
    if response.status != status:
        body = response.body[:300].decode("utf-8", errors="replace")
        raise BenchmarkError(f"{action}: expected status {status}, got {response.status}: {body}")
    return response.json() if response.body else None


def percentile(samples: list[float], percent: float) -> float:
    """Return the nearest-rank percentile: the smallest sample with ``percent``% at or below it."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"count": 0}
    return {
        "count": len(samples),
        "min": min(samples),
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "max": max(samples),
        "mean": statistics.fmean(samples),
    }


async def resource_ids(server: Server) -> dict[str, int]:
    """Return the id of every resource by name, as the server numbered them."""
    connection = Connection(HOST, server.port)
    try:
        body = expect(await connection.request("GET", "/api/v1/resources"), 200, "list resources")
    finally:
        await connection.close()
    return {resource["name"]: resource["id"] for resource in body["resources"]}


# 1 and 6: lock+unlock throughput


@dataclass(slots=True)
class CycleCounter:
    deadline: float
    cycles: int = 0
    latencies: list[float] | None = None


async def cycle(connection: Connection, resource_id: int) -> None:
    """Lock ``resource_id`` and unlock it with the returned token."""
    response = await connection.request("POST", lock_path(resource_id), {"ttl": CYCLE_TTL})
    token = expect(response, 200, f"lock resource {resource_id}")["lock-token"]
    response = await connection.request("POST", unlock_path(resource_id, token))
    expect(response, 200, f"unlock resource {resource_id}")


async def cycle_until(
    connection: Connection, resource_id: int, counter: CycleCounter, max_cycles: int
) -> None:
    for _ in range(max_cycles):
        started = time.perf_counter()
        if started >= counter.deadline:
            return
        await cycle(connection, resource_id)
        finished = time.perf_counter()
        # A cycle still running at the deadline is finished but not counted.
        if finished <= counter.deadline:
            counter.cycles += 1
            if counter.latencies is not None:
                counter.latencies.append(finished - started)


async def cycle_round(
    servers: list[Server],
    ids: list[int],
    seconds: float,
    max_cycles: int,
    database: Backends | None = None,
) -> dict[str, Any]:
    """Run one timed round of lock+unlock cycles, one keep-alive connection per resource.

    The connections go to ``servers`` round-robin, and the server CPU share is the sum
    over all of them. With ``database``, the CPU of those PostgreSQL backends is
    reported apart and left out of the other work.
    """
    connections = [
        Connection(HOST, servers[index % len(servers)].port) for index in range(len(ids))
    ]
    database_cpu: dict[int, float] = {}
    database_cpu_used = 0.0
    try:
        for connection in connections:
            await connection.open()

        if database is not None:
            database_cpu = database.cpu_seconds()
        server_cpu = sum(cpu_seconds(server.pid) for server in servers)
        client_cpu = time.process_time()
        machine_cpu = machine_cpu_seconds()
        started = time.perf_counter()
        counter = CycleCounter(deadline=started + seconds, latencies=[])
        await asyncio.gather(
            *(
                cycle_until(connection, resource_id, counter, max_cycles)
                for connection, resource_id in zip(connections, ids, strict=True)
            )
        )
        elapsed = time.perf_counter() - started
        if database is not None:
            database_cpu_used = cpu_since(database_cpu, database.cpu_seconds())
        server_cpu = sum(cpu_seconds(server.pid) for server in servers) - server_cpu
        client_cpu = time.process_time() - client_cpu
        machine_cpu = machine_cpu_seconds() - machine_cpu
    finally:
        for connection in connections:
            await connection.close()

    assert counter.latencies is not None
    ours = server_cpu + client_cpu
    result: dict[str, Any] = {
        "seconds": seconds,
        "cycles": counter.cycles,
        "cycles_per_second": counter.cycles / seconds,
        "server_cpu_share": server_cpu / elapsed,
        "client_cpu_share": client_cpu / elapsed,
    }
    if database is not None:
        result["database_cpu_share"] = database_cpu_used / elapsed
        ours += database_cpu_used
    # Everything else the machine did meanwhile: other processes and kernel network work.
    result["other_cpu_share"] = max(0.0, machine_cpu - ours) / elapsed
    result["cycle_latency_ms"] = summarize([value * 1000 for value in counter.latencies])
    result["hit_count_cap"] = counter.cycles >= max_cycles * len(ids)
    return result


async def measure_cycles(
    servers: list[Server],
    ids: list[int],
    warmup_seconds: float,
    rounds: int,
    round_seconds: float,
    max_cycles: int,
    max_other_share: float,
    retry_seconds: float,
    settle: Callable[[], Awaitable[object]],
    database: Backends | None = None,
) -> dict[str, Any]:
    """Measure lock+unlock cycles per second: a warm-up round, then the median of ``rounds``.

    A round during which other work on the machine took more than ``max_other_share``
    of a core is set aside and run again after ``settle``. After ``retry_seconds`` of
    retrying, or ``MAX_SET_ASIDE`` rounds, every round counts. Set-aside rounds are
    returned too, so the report can show them. ``servers`` and ``database`` are as
    for ``cycle_round``.
    """
    await cycle_round(servers, ids, warmup_seconds, max_cycles, database)
    counted: list[dict[str, Any]] = []
    set_aside: list[dict[str, Any]] = []
    retry_deadline = time.perf_counter() + retry_seconds
    while len(counted) < rounds:
        result = await cycle_round(servers, ids, round_seconds, max_cycles, database)
        retrying = time.perf_counter() < retry_deadline and len(set_aside) < MAX_SET_ASIDE
        if result["other_cpu_share"] > max_other_share and retrying:
            set_aside.append(result)
            await settle()
        else:
            counted.append(result)
    return {
        "clients": len(ids),
        "replicas": len(servers),
        "warmup_seconds": warmup_seconds,
        "max_other_share": max_other_share,
        "rounds": counted,
        "set_aside_rounds": set_aside,
        "cycles_per_second": statistics.median(r["cycles_per_second"] for r in counted),
    }


# 2: delay from an unlock to the waiting reservation being fulfilled


async def measure_fulfilment(
    server: Server,
    resource_id: int,
    tag: str,
    warmup: int,
    samples: int,
    poll_interval: float,
    cap_seconds: float,
) -> dict[str, Any]:
    """Time unlock -> first GET that shows the waiting reservation ``fulfilled``.

    ``resource_id`` must be the only resource carrying ``tag``. Each sample queues a
    reservation while the resource is held, unlocks it, polls the reservation, then
    claims it, so the claim's lock token is what the next sample unlocks.
    """
    connection = Connection(HOST, server.port)
    delays: list[float] = []
    first_poll_hits = 0
    timeouts = 0
    try:
        response = await connection.request("POST", lock_path(resource_id), {"ttl": HOLD_TTL})
        token = expect(response, 200, f"lock resource {resource_id}")["lock-token"]

        for index in range(warmup + samples):
            reservation = expect(
                await connection.request(
                    "POST",
                    "/api/v1/reservations",
                    {"tags": [tag], "quantity": 1, "max_wait_time": HOLD_TTL, "ttl": HOLD_TTL},
                ),
                201,
                f"reserve tag {tag}",
            )
            reservation_id = reservation["reservation_id"]
            if reservation["status"] != "pending":
                raise BenchmarkError(
                    f"reservation {reservation_id} is {reservation['status']!r} on creation; "
                    f"resource {resource_id} should still be locked"
                )

            started = time.perf_counter()
            response = await connection.request("POST", unlock_path(resource_id, token))
            expect(response, 200, f"unlock resource {resource_id}")
            delay, polls = await poll_until_fulfilled(
                connection, reservation_id, started, poll_interval, cap_seconds
            )
            if delay is None:
                timeouts += 1
                break

            if index >= warmup:
                delays.append(delay)
                first_poll_hits += polls == 1
            claimed = expect(
                await connection.request("POST", f"/api/v1/reservations/{reservation_id}/claim"),
                200,
                f"claim reservation {reservation_id}",
            )
            token = claimed["lock_tokens"][0]
    finally:
        await connection.close()

    return {
        "samples_ms": [value * 1000 for value in delays],
        "summary_ms": summarize([value * 1000 for value in delays]),
        "first_get_fulfilled": first_poll_hits,
        "poll_interval_ms": poll_interval * 1000,
        "cap_seconds": cap_seconds,
        "timeouts": timeouts,
    }


async def poll_until_fulfilled(
    connection: Connection,
    reservation_id: str,
    started: float,
    poll_interval: float,
    cap_seconds: float,
) -> tuple[float | None, int]:
    """Return (seconds from ``started`` to the response showing fulfilment, GETs sent)."""
    path = f"/api/v1/reservations/{reservation_id}"
    max_polls = int(cap_seconds / max(poll_interval, 0.001)) + 1
    for polls in range(1, max_polls + 1):
        body = expect(await connection.request("GET", path), 200, f"read {reservation_id}")
        answered = time.perf_counter()
        if body["status"] == "fulfilled":
            return answered - started, polls
        if body["status"] != "pending":
            raise BenchmarkError(f"reservation {reservation_id} became {body['status']!r}")
        if answered - started > cap_seconds:
            break
        await asyncio.sleep(poll_interval)
    return None, max_polls


# 3: lateness of expiry


def parse_instant(text: str) -> float:
    """Return an ISO 8601 timestamp with a UTC offset as seconds since the epoch."""
    return datetime.fromisoformat(text).timestamp()


async def measure_expiry(
    server: Server,
    resource_id: int,
    warmup: int,
    samples: int,
    lead_seconds: float,
    retry_interval: float,
    cap_seconds: float,
) -> dict[str, Any]:
    """Time how late after ``expires-at`` a new lock of the same resource first succeeds.

    Each sample locks with ttl=1, then from ``lead_seconds`` before the expiry tries
    to lock again every ``retry_interval``. The successful lock starts the next sample.
    The server and this process read the same system clock.
    """
    connection = Connection(HOST, server.port)
    lateness: list[float] = []
    granted_early = 0
    timeouts = 0
    try:
        response = await connection.request("POST", lock_path(resource_id), {"ttl": 1})
        expires_at = parse_instant(expect(response, 200, "lock with ttl 1")["expires-at"])

        for index in range(warmup + samples):
            await asyncio.sleep(max(0.0, expires_at - lead_seconds - time.time()))
            max_attempts = int((lead_seconds + cap_seconds) / retry_interval) + 1
            for _ in range(max_attempts):
                response = await connection.request("POST", lock_path(resource_id), {"ttl": 1})
                answered = time.time()
                if response.status == 200:
                    break
                expect(response, 403, f"lock resource {resource_id} while held")
                if answered - expires_at > cap_seconds:
                    break
                await asyncio.sleep(retry_interval)

            if response.status != 200:
                timeouts += 1
                break
            granted = response.json()
            if index >= warmup:
                lateness.append(answered - expires_at)
                # The server granted the new lock while, by its own clock, the old one held.
                granted_early += parse_instant(granted["locked-at"]) < expires_at
            expires_at = parse_instant(granted["expires-at"])
    finally:
        await connection.close()

    return {
        "samples_ms": [value * 1000 for value in lateness],
        "summary_ms": summarize([value * 1000 for value in lateness]),
        "locked_before_old_expiry": granted_early,
        "retry_interval_ms": retry_interval * 1000,
        "cap_seconds": cap_seconds,
        "timeouts": timeouts,
    }


# 4: lock by tag among many tagged resources


async def measure_tag_lock(
    server: Server, query: str, warmup: int, samples: int, cap_seconds: float
) -> dict[str, Any]:
    """Time POST /api/v1/resources/lock?``query`` followed by the unlock, one at a time."""
    connection = Connection(HOST, server.port)
    pairs: list[float] = []
    locks: list[float] = []
    locked_ids: set[int] = set()
    deadline = time.perf_counter() + cap_seconds
    try:
        for index in range(warmup + samples):
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            body = expect(
                await connection.request(
                    "POST", f"/api/v1/resources/lock?{query}", {"ttl": CYCLE_TTL}
                ),
                200,
                f"lock by {query}",
            )
            locked = time.perf_counter()
            resource_id = body["resource"]["id"]
            response = await connection.request(
                "POST", unlock_path(resource_id, body["lock-token"])
            )
            expect(response, 200, f"unlock resource {resource_id}")
            finished = time.perf_counter()
            if index >= warmup:
                pairs.append(finished - started)
                locks.append(locked - started)
                locked_ids.add(resource_id)
    finally:
        await connection.close()

    return {
        "query": query,
        "lock_and_unlock_ms": summarize([value * 1000 for value in pairs]),
        "lock_only_ms": summarize([value * 1000 for value in locks]),
        "locked_ids": sorted(locked_ids),
    }


# 5: listing many pending reservations


async def measure_listing(
    server: Server,
    pool_ids: list[int],
    tag: str,
    reservations: int,
    warmup: int,
    samples: int,
) -> dict[str, Any]:
    """Time GET /api/v1/reservations while ``reservations`` reservations wait for ``tag``.

    Every resource carrying ``tag`` is locked first, so the reservations stay pending.
    """
    connection = Connection(HOST, server.port)
    timings: list[float] = []
    try:
        for resource_id in pool_ids:
            response = await connection.request("POST", lock_path(resource_id), {"ttl": 3600})
            expect(response, 200, f"lock resource {resource_id}")

        for _ in range(reservations):
            body = expect(
                await connection.request(
                    "POST",
                    "/api/v1/reservations",
                    {"tags": [tag], "quantity": 1, "max_wait_time": 3600, "ttl": CYCLE_TTL},
                ),
                201,
                f"reserve tag {tag}",
            )
            if body["status"] != "pending":
                raise BenchmarkError(f"reservation {body['reservation_id']} is not pending")

        for index in range(warmup + samples):
            started = time.perf_counter()
            listing = expect(
                await connection.request("GET", "/api/v1/reservations"), 200, "list reservations"
            )
            elapsed = time.perf_counter() - started
            if index >= warmup:
                timings.append(elapsed)
    finally:
        await connection.close()

    statuses = [entry["status"] for entry in listing["reservations"]]
    return {
        "listed": len(statuses),
        "pending": statuses.count("pending"),
        "samples_ms": [value * 1000 for value in timings],
        "median_ms": statistics.median(timings) * 1000,
        "summary_ms": summarize([value * 1000 for value in timings]),
    }


# 7: resident memory


async def measure_memory(server: Server, expected_resources: int) -> dict[str, Any]:
    """Read VmRSS after one GET /api/v1/resources that lists every resource."""
    connection = Connection(HOST, server.port)
    try:
        listing = expect(
            await connection.request("GET", "/api/v1/resources"), 200, "list resources"
        )
    finally:
        await connection.close()
    if len(listing["resources"]) != expected_resources:
        raise BenchmarkError(
            f"{server.spec.label} lists {len(listing['resources'])} resources, "
            f"expected {expected_resources}"
        )
    await asyncio.sleep(0.5)
    memory = memory_kib(server.pid)
    return {
        "resources": expected_resources,
        "rss_mib": memory["VmRSS"] / 1024,
        "peak_rss_mib": memory["VmHWM"] / 1024,
        "startup_seconds": server.startup_seconds,
    }
