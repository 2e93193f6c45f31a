"""The event stream GET /api/v1/events, read over real HTTP from an in-process server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from rentabot.api.routes import events
from rentabot.api.routes.events import OpenStreams, event_stream
from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from rentabot.domain.events import Event
from rentabot.eventbus import EventBus
from tests.support.lab import Lab, specs
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server
from tests.support.sse import EventStreamReader, Message

PIXEL = 1
GALAXY = 4


@pytest.fixture
def server(clock: ManualClock) -> Iterator[InProcessServer]:
    """The in-memory store: these tests follow the in-process event history step by step.

    The stream over PostgreSQL, replayed from the database across replicas, is tested in
    test_events_shared.py.
    """
    with in_process_server(Settings(descriptor=LAB_DESCRIPTOR), clock=clock) as running:
        yield running


def lock(client: httpx.Client, resource_id: int, label: str | None = None) -> str:
    body: dict[str, object] = {"ttl": 600}
    if label is not None:
        body["locked_by_label"] = label
    response = client.post(f"/api/v1/resources/{resource_id}/lock", json=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["lock-token"]
    return token


def unlock(client: httpx.Client, resource_id: int, token: str) -> None:
    response = client.post(f"/api/v1/resources/{resource_id}/unlock", params={"lock-token": token})
    assert response.status_code == 200, response.text


def subscriber_count(server: InProcessServer) -> int:
    # The bus has no public count, so the tests read its set of subscriptions.
    return len(server.service.bus._subscribers)


def wait_for_subscribers(server: InProcessServer, expected: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while subscriber_count(server) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return subscriber_count(server)


def ids_of(messages: list[Message]) -> list[int]:
    return [int(message.id) for message in messages if message.id is not None]


# A first connection


def test_stream_starts_with_hello(server: InProcessServer, clock: ManualClock) -> None:
    with EventStreamReader(server.base_url) as stream:
        hello = stream.next_event()

    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert hello.event == "hello"
    assert hello.id is None
    assert hello.retry == events.RECONNECT_DELAY_MS
    assert hello.json()["now"] == clock.now().isoformat()
    assert hello.json()["last_event_id"] == server.service.bus.recent[-1].id
    assert hello.json()["resumed_from"] is None


def test_lock_and_unlock_streamed(server: InProcessServer) -> None:
    with (
        EventStreamReader(server.base_url) as stream,
        httpx.Client(base_url=server.base_url) as client,
    ):
        stream.next_event()
        token = lock(client, PIXEL, label="nightly#42")
        unlock(client, PIXEL, token)
        locked = stream.next_event()
        unlocked = stream.next_event()

    assert locked.event == "resource.locked"
    assert locked.json()["resource_id"] == PIXEL
    assert locked.json()["data"]["locked_by_label"] == "nightly#42"
    assert locked.id == str(locked.json()["id"])
    assert unlocked.event == "resource.unlocked"
    assert int(unlocked.id or 0) > int(locked.id or 0)


def test_events_carry_no_lock_token(server: InProcessServer, clock: ManualClock) -> None:
    tokens: list[str] = []
    with (
        EventStreamReader(server.base_url) as stream,
        httpx.Client(base_url=server.base_url) as client,
    ):
        stream.next_event()
        tokens.append(lock(client, PIXEL))
        extended = client.post(
            f"/api/v1/resources/{PIXEL}/extend",
            params={"lock-token": tokens[0], "additional-ttl": 900},
        )
        assert extended.status_code == 200
        unlock(client, PIXEL, tokens[0])
        reserved = client.post("/api/v1/reservations", json={"tags": ["ios"], "quantity": 2})
        reservation_id = reserved.json()["reservation_id"]
        claimed = client.post(f"/api/v1/reservations/{reservation_id}/claim")
        tokens.extend(claimed.json()["lock_tokens"])
        released = client.post(f"/api/v1/reservations/{reservation_id}/release")
        assert released.status_code == 200
        tokens.append(lock(client, GALAXY))
        clock.advance(601)
        read = stream.events_until(lambda message: message.event == "lock.expired")

    names = {message.event for message in read}
    assert len(tokens) == 4
    assert {"lock.extended", "reservation.fulfilled", "reservation.claimed"} <= names
    assert [
        message.data for message in read if any(token in message.data for token in tokens)
    ] == []


# Resuming after a disconnect


def test_reconnect_resumes_after_last_id(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        with EventStreamReader(server.base_url) as first:
            first.next_event()
            token = lock(client, PIXEL, label="before")
            seen = first.next_event()
        assert wait_for_subscribers(server, 0) == 0

        unlock(client, PIXEL, token)
        galaxy_token = lock(client, GALAXY, label="while away")
        client.post("/api/v1/reservations", json={"tags": ["ios"], "quantity": 1})
        latest = server.service.bus.recent[-1].id

        with EventStreamReader(server.base_url, last_event_id=seen.id) as second:
            hello = second.next_event()
            missed = second.events_until(lambda message: int(message.id or 0) == latest)
            unlock(client, GALAXY, galaxy_token)
            live = second.next_event()

    assert hello.json()["resumed_from"] == int(seen.id or 0)
    assert [message.event for message in missed] == [
        "resource.unlocked",
        "resource.locked",
        "reservation.created",
        "resource.locked",
        "reservation.fulfilled",
    ]
    assert ids_of(missed) == list(range(int(seen.id or 0) + 1, latest + 1))
    assert live.event == "resource.unlocked"
    assert int(live.id or 0) == latest + 1


def test_query_parameter_resumes_too(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        first_id = server.service.bus.recent[-1].id
        lock(client, PIXEL)
        lock(client, GALAXY)
        with EventStreamReader(server.base_url, params={"last_event_id": first_id}) as stream:
            stream.next_event()
            missed = [stream.next_event(), stream.next_event()]

    assert ids_of(missed) == [first_id + 1, first_id + 2]


def test_header_wins_over_query(server: InProcessServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        first_id = server.service.bus.recent[-1].id
        lock(client, PIXEL)
        lock(client, GALAXY)
        with EventStreamReader(
            server.base_url, last_event_id=first_id + 1, params={"last_event_id": first_id}
        ) as stream:
            hello = stream.next_event()
            missed = stream.next_event()

    assert hello.json()["resumed_from"] == first_id + 1
    assert ids_of([missed]) == [first_id + 2]


def test_latest_id_replays_nothing(server: InProcessServer) -> None:
    latest = server.service.bus.recent[-1].id
    with (
        EventStreamReader(server.base_url, last_event_id=latest) as stream,
        httpx.Client(base_url=server.base_url) as client,
    ):
        stream.next_event()
        lock(client, PIXEL)
        following = stream.next_event()

    assert following.event == "resource.locked"
    assert ids_of([following]) == [latest + 1]


@pytest.fixture
def short_history(server: InProcessServer) -> EventBus:
    """Give the running service a bus that keeps only the last 5 events."""
    bus = EventBus(history=5)
    server.service.bus = bus
    return bus


def test_forgotten_id_gets_reset(server: InProcessServer, short_history: EventBus) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        for resource_id in range(1, 9):
            lock(client, resource_id)
        oldest_kept = short_history.recent[0].id
        latest = short_history.recent[-1].id

        with EventStreamReader(server.base_url, last_event_id=oldest_kept - 2) as stream:
            stream.next_event()
            reset = stream.next_event()
            lock(client, 9)
            live = stream.next_event()

    assert reset.event == "reset"
    assert reset.id == str(latest)
    assert reset.json()["last_event_id"] == latest
    assert live.event == "resource.locked"
    assert ids_of([live]) == [latest + 1]


def test_id_before_oldest_kept_resumes(server: InProcessServer, short_history: EventBus) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        for resource_id in range(1, 9):
            lock(client, resource_id)
    oldest_kept = short_history.recent[0].id

    with EventStreamReader(server.base_url, last_event_id=oldest_kept - 1) as stream:
        stream.next_event()
        missed = [stream.next_event() for _ in range(5)]

    assert ids_of(missed) == list(range(oldest_kept, oldest_kept + 5))


def test_unknown_future_id_gets_reset(server: InProcessServer) -> None:
    with EventStreamReader(server.base_url, last_event_id=10**9) as stream:
        stream.next_event()
        reset = stream.next_event()

    assert reset.event == "reset"
    assert reset.id == str(server.service.bus.recent[-1].id)


def test_reset_without_history_clears_id(server: InProcessServer, short_history: EventBus) -> None:
    with EventStreamReader(server.base_url, last_event_id=3) as stream:
        stream.next_event()
        reset = stream.next_event()

    assert reset.event == "reset"
    assert reset.id == ""


@pytest.mark.parametrize(
    ("headers", "params"),
    [({"Last-Event-ID": "abc"}, {}), ({}, {"last_event_id": "-1"})],
    ids=["header-not-integer", "query-negative"],
)
def test_invalid_last_event_id_422(
    server: InProcessServer, headers: dict[str, str], params: dict[str, str]
) -> None:
    response = httpx.get(server.base_url + "/api/v1/events", headers=headers, params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert "last" in response.json()["message"].lower()


# Heartbeat, disconnect and shutdown


def test_idle_stream_sends_heartbeat(
    server: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "HEARTBEAT_SECONDS", 0.2)
    with EventStreamReader(server.base_url) as stream:
        stream.next_event()
        started = time.monotonic()
        heartbeat = stream.next()
        waited = time.monotonic() - started

    assert heartbeat.comment == "heartbeat"
    assert heartbeat.fields == []
    assert waited < 5


def test_disconnect_unsubscribes(server: InProcessServer) -> None:
    with EventStreamReader(server.base_url) as stream:
        stream.next_event()
        assert subscriber_count(server) == 1

    assert wait_for_subscribers(server, 0) == 0
    assert len(server.app.state.event_streams.subscriptions) == 0  # type: ignore[attr-defined]


def test_server_shutdown_ends_stream() -> None:
    """rentabot's uvicorn Server ends open streams when it stops, so it stops promptly."""
    with in_process_server(Settings(descriptor=LAB_DESCRIPTOR), clock=ManualClock()) as running:
        stream = EventStreamReader(running.base_url)
        stream.next_event()
        started = time.monotonic()
        running.server.should_exit = True
        running.thread.join(timeout=10)
        stopped_after = time.monotonic() - started
        with pytest.raises(EOFError):
            stream.next()
        stream.close()

    assert not running.thread.is_alive()
    assert stopped_after < 5
    assert len(running.service.bus._subscribers) == 0


# The stream as a generator, for the case HTTP cannot produce on demand


def test_overflowed_stream_ends_after_queue() -> None:
    lab = Lab(specs(("board", "arm")))
    try:

        async def read_all() -> list[str | None]:
            stream = event_stream(lab.service, OpenStreams(), None, heartbeat_seconds=60)
            hello = await anext(stream)
            names = [hello.event]
            flood = [
                Event("resource.updated", datetime.now(UTC), resource_id=1, id=index)
                for index in range(100, 10_102)
            ]
            lab.service.bus.publish(flood)
            async for message in stream:
                names.append(message.event)
            return names

        names = lab.run(asyncio.wait_for(read_all(), timeout=30))
    finally:
        lab.close()

    assert names[0] == "hello"
    assert len(names) == 1 + 10_000
    assert lab.service.bus._subscribers == set()


def test_openapi_declares_event_stream(server: InProcessServer) -> None:
    document = httpx.get(server.base_url + "/openapi.json").json()
    responses = document["paths"]["/api/v1/events"]["get"]["responses"]

    assert "text/event-stream" in responses["200"]["content"]
    assert "application/json" in responses["422"]["content"]
