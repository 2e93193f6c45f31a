"""The event stream on PostgreSQL: every replica streams every change, and resumes any."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.postgres import fresh_schema
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server
from tests.support.sse import EventStreamReader

pytestmark = pytest.mark.postgres


@pytest.fixture
def replicas() -> Iterator[tuple[InProcessServer, InProcessServer]]:
    """Two replicas on one PostgreSQL schema, sharing a manual clock."""
    clock = ManualClock()
    with fresh_schema() as url:
        settings = Settings(descriptor=LAB_DESCRIPTOR, persist=url)
        with (
            in_process_server(settings, clock=clock) as first,
            in_process_server(settings, clock=clock) as second,
        ):
            yield first, second


def test_change_streamed_by_other_replica(
    replicas: tuple[InProcessServer, InProcessServer],
) -> None:
    first, second = replicas
    with EventStreamReader(second.base_url) as stream:
        stream.next_event()
        locked = httpx.post(
            first.base_url + "/api/v1/resources/2/lock", json={"locked_by_label": "job-9"}
        )
        event = stream.events_until(lambda message: message.event == "resource.locked")[-1]

    assert locked.status_code == 200
    assert event.json()["resource_id"] == 2
    assert event.json()["data"]["locked_by_label"] == "job-9"


def test_resume_on_other_replica(replicas: tuple[InProcessServer, InProcessServer]) -> None:
    first, second = replicas
    with EventStreamReader(first.base_url) as stream:
        hello = stream.next_event().json()
        token = httpx.post(first.base_url + "/api/v1/resources/3/lock").json()["lock-token"]
        seen = stream.events_until(lambda message: message.event == "resource.locked")[-1]
    httpx.post(first.base_url + "/api/v1/resources/3/unlock", params={"lock-token": token})
    httpx.post(first.base_url + "/api/v1/resources/5/lock")

    with EventStreamReader(second.base_url, last_event_id=seen.id) as resumed:
        second_hello = resumed.next_event().json()
        replayed = resumed.events_until(lambda message: message.json().get("resource_id") == 5)

    assert second_hello["instance"] == hello["instance"]
    assert [m.event for m in replayed] == ["resource.unlocked", "resource.locked"]
    assert [int(m.id or 0) for m in replayed] == sorted(int(m.id or 0) for m in replayed)
    assert int(replayed[0].id or 0) == int(seen.id or 0) + 1


def test_startup_history_resumable(replicas: tuple[InProcessServer, InProcessServer]) -> None:
    """A client that saw only the first event of the descriptor sync gets the rest replayed."""
    _, second = replicas

    with EventStreamReader(second.base_url, last_event_id="1") as resumed:
        resumed.next_event()
        replayed = resumed.events_until(lambda message: message.json().get("resource_id") == 21)

    assert replayed[0].event == "resource.added"
    assert int(replayed[0].id or 0) == 2
