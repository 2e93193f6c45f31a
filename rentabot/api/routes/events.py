"""The event stream: every committed state change, sent as Server-Sent Events.

Each event is sent as ``id: <event id>``, ``event: <name>`` and ``data: <JSON>``, the JSON
being :meth:`Event.to_dict`. A client that reconnects with ``Last-Event-ID`` (or
``?last_event_id=``) first gets the events it missed from the bus's recent history, then
the live ones. When that history no longer reaches back to its id, it gets one ``reset``
event and must reload ``GET /api/v1/resources`` and ``GET /api/v1/reservations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette

from rentabot.api.deps import get_service
from rentabot.domain.events import Event
from rentabot.eventbus import Subscription
from rentabot.service import LockService

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["events"])

# Seconds without an event after which the stream sends a comment line, so that proxies
# and load balancers do not close an idle connection.
HEARTBEAT_SECONDS = 15.0

# Milliseconds an EventSource waits before it reconnects after the connection drops.
RECONNECT_DELAY_MS = 1000

# Events read back from the store for one reconnecting client, at most; a client that
# missed more reloads instead.
MAX_REPLAY = 10_000

# Declared by hand: with ``model=`` FastAPI would list the JSON error under the route's
# media type, text/event-stream. The resource routes put ErrorBody in the components.
VALIDATION_ERROR_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Malformed request",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
}

STREAM_DESCRIPTION = """\
Server-Sent Events, one per committed state change, in the order they were published:

```
id: 42
event: resource.locked
data: {"id": 42, "event": "resource.locked", "at": "...", "resource_id": 1,
       "reservation_id": null, "data": {...}}
```

Event names: `resource.locked`, `resource.unlocked`, `lock.extended`, `lock.expired`,
`resource.reserved`, `resource.added`, `resource.updated`, `resource.removed`,
`reservation.created`, `reservation.fulfilled`, `reservation.claimed`,
`reservation.expired`, `reservation.cancelled`, `reservation.released`, and
`store.restored` when a backup replaced the whole state (reload everything).
No event contains a lock token.

Every connection starts with `event: hello`, whose data gives the service clock's `now`,
the id of the latest event (`last_event_id`), the id it resumed from (`resumed_from`)
and the service `instance`. To resume after a disconnect, send the last id received as
the `Last-Event-ID` header (browsers do this on their own) or as `?last_event_id=`; the
header wins when both are given. The missed events follow in order. If they are no
longer all kept, one `event: reset` follows instead: reload the resources and
reservations, then continue. Comment lines (`: heartbeat`) keep idle connections open.
"""


@router.get(
    "/events",
    response_class=EventSourceResponse,
    response_description="The event stream (text/event-stream), open until the client leaves.",
    responses=VALIDATION_ERROR_RESPONSE,
    summary="Follow state changes",
    description=STREAM_DESCRIPTION,
)
async def stream_events(
    request: Request,
    service: Annotated[LockService, Depends(get_service)],
    last_event_id_header: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            description="Id of the last event received; the stream resumes after it.",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, description="As the Last-Event-ID header, for clients that cannot set it."),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    resume_from = last_event_id_header if last_event_id_header is not None else last_event_id
    client = request.client.host if request.client is not None else None
    streams = open_streams(request.app)
    async for message in event_stream(service, streams, resume_from, HEARTBEAT_SECONDS, client):
        yield message


class OpenStreams:
    """The open event streams of one application, so that a server shutting down can end them.

    uvicorn waits for every open response to finish before it stops, and an event stream
    never finishes by itself, so whatever runs the server calls :func:`close_event_streams`
    when shutdown begins.
    """

    def __init__(self) -> None:
        self.subscriptions: set[Subscription] = set()
        self.closing = False

    def close_all(self) -> None:
        self.closing = True
        for subscription in list(self.subscriptions):
            subscription.close()
            # Wakes the stream if it waits for an event. A full queue needs no wake-up,
            # because the stream sends what is queued and then ends as ``closing`` is set.
            with contextlib.suppress(asyncio.QueueFull):
                subscription.queue.put_nowait(STREAM_CLOSING)


# Put into a subscription's queue to end its stream. It is never sent to a client.
STREAM_CLOSING = Event(name="stream.closing", at=datetime.min.replace(tzinfo=UTC))


def open_streams(app: Starlette) -> OpenStreams:
    streams: OpenStreams | None = getattr(app.state, "event_streams", None)
    if streams is None:
        streams = OpenStreams()
        app.state.event_streams = streams
    return streams


def close_event_streams(app: Starlette) -> None:
    """End every open event stream of ``app``, and any opened later, so the server can stop.

    Call it on the server's event loop when shutdown begins, before the server waits for
    open connections to finish. Clients reconnect to the next server and resume there.
    """
    # NOTE: ``uvicorn rentabot.main:app`` started by hand does not call this; there,
    # --timeout-graceful-shutdown bounds the wait for open streams.
    streams = open_streams(app)
    logger.info("events.streams_closing count=%d", len(streams.subscriptions))
    streams.close_all()


async def event_stream(
    service: LockService,
    streams: OpenStreams,
    resume_from: int | None,
    heartbeat_seconds: float,
    client: str | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """Yield ``hello``, the missed events (or ``reset``), then live events and heartbeats.

    The stream ends in three ways, each of which closes the subscription. When the bus
    drops the subscription because its queue overflowed, the stream first sends what is
    queued, so the client reconnects and resumes from the last event it got. When
    ``streams`` is closed, the stream ends after the queued events as well. When the
    client disconnects, the framework cancels it.
    """
    if streams.closing:
        return

    bus = service.bus
    # No await between subscribing and copying the history: every event published from
    # here on reaches the queue, and every earlier one is in the copy, so nothing falls
    # between replay and live events and nothing is sent twice.
    subscription = bus.subscribe()
    streams.subscriptions.add(subscription)
    backlog = list(bus.recent)
    latest_id = backlog[-1].id if backlog else None
    logger.info(
        "events.stream_opened client=%s resume_from=%s latest_id=%s",
        client,
        resume_from,
        latest_id,
    )
    sent = 0
    ended_by = "cancelled"
    try:
        yield hello_message(service, latest_id, resume_from)

        last_sent = resume_from if resume_from is not None else latest_id or 0
        if resume_from is not None:
            missed = events_after(backlog, resume_from)
            if missed is None:
                # This process's memory does not reach back; the store may keep them.
                missed = await stored_events_after(service, resume_from)
            if missed is None:
                logger.info(
                    "events.stream_reset client=%s resume_from=%s oldest_kept=%s",
                    client,
                    resume_from,
                    backlog[0].id if backlog else None,
                )
                yield reset_message(latest_id, resume_from)
            else:
                for missed_event in missed:
                    yield event_message(missed_event)
                    last_sent = missed_event.id
                    sent += 1

        while True:
            event = await next_event(subscription, heartbeat_seconds)
            if event is STREAM_CLOSING:
                ended_by = "server_closing"
                return
            if event is None:
                yield ServerSentEvent(comment="heartbeat")
                continue

            if event.id <= last_sent:
                continue  # Replayed from the store already.
            yield event_message(event)
            last_sent = event.id
            sent += 1
            if subscription.queue.empty() and (subscription.overflowed or streams.closing):
                ended_by = "overflow" if subscription.overflowed else "server_closing"
                return
    finally:
        subscription.close()
        streams.subscriptions.discard(subscription)
        logger.info("events.stream_closed client=%s sent=%d ended_by=%s", client, sent, ended_by)


async def stored_events_after(service: LockService, event_id: int) -> list[Event] | None:
    """Return the events after ``event_id`` from the store's history, if it keeps them all."""
    stored = await service.store.events_after(event_id, MAX_REPLAY + 1)
    if stored is None or len(stored) > MAX_REPLAY:
        return None
    return stored


async def next_event(subscription: Subscription, timeout: float) -> Event | None:
    """Return the next published event, or None when none came within ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(subscription.get(), timeout)
    except TimeoutError:
        return None


def events_after(backlog: Sequence[Event], last_id: int) -> list[Event] | None:
    """Return the events published after event ``last_id``, or None if some are no longer kept.

    An id not in ``backlog`` is resumable only when it is the one just before the oldest
    kept event, because only then is it certain that nothing between them was dropped.
    """
    for index in range(len(backlog) - 1, -1, -1):
        if backlog[index].id == last_id:
            return list(backlog[index + 1 :])
    if backlog and backlog[0].id == last_id + 1:
        return list(backlog)
    return None


def hello_message(
    service: LockService, latest_id: int | None, resume_from: int | None
) -> ServerSentEvent:
    body = {
        "now": service.clock.now().isoformat(),
        "last_event_id": latest_id,
        "resumed_from": resume_from,
        "instance": service.store.instance_id,
    }
    return ServerSentEvent(event="hello", raw_data=to_json(body), retry=RECONNECT_DELAY_MS)


def reset_message(latest_id: int | None, resume_from: int) -> ServerSentEvent:
    """Build the ``reset`` event. Its id moves the client's Last-Event-ID to the latest event.

    With no event kept at all the id is empty, which makes a browser stop sending
    Last-Event-ID, so its next reconnection starts fresh instead of resetting again.
    """
    body = {
        "message": f"events after id {resume_from} are no longer kept; reload the resources "
        "and reservations, then keep following this stream",
        "last_event_id": latest_id,
    }
    event_id = str(latest_id) if latest_id is not None else ""
    return ServerSentEvent(event="reset", id=event_id, raw_data=to_json(body))


def event_message(event: Event) -> ServerSentEvent:
    return ServerSentEvent(event=event.name, id=str(event.id), raw_data=to_json(event.to_dict()))


def to_json(body: object) -> str:
    # One line per message, because json.dumps escapes line breaks inside strings.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
