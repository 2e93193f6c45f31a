"""Requests whose rules span more than one module: unlock, and the descriptor sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rentabot.domain import availability, events, locking, queue
from rentabot.domain.events import Event
from rentabot.domain.limits import Limits
from rentabot.domain.models import Resource, parse_tags
from rentabot.domain.ports import Transaction


def unlock(
    tx: Transaction, now: datetime, limits: Limits, resource_id: int, token: str | None
) -> Resource:
    """Release a lock with its token and hand the resource to the queue in the same step."""
    resource, lock = locking.unlock(tx, now, resource_id, token)
    queue.note_lock_ended(tx, now, lock.reservation_id)
    queue.settle(tx, now, limits, freed=[resource])
    return resource


def force_unlock(tx: Transaction, now: datetime, limits: Limits, resource_id: int) -> Resource:
    """Release a lock without its token and hand the resource to the queue."""
    resource, lock = locking.force_unlock(tx, now, resource_id)
    queue.note_lock_ended(tx, now, lock.reservation_id)
    queue.settle(tx, now, limits, freed=[resource])
    return resource


# A sync that changes more resources than this announces itself with one event.
MAX_SYNC_EVENTS = 100


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A maintenance window as the descriptor declares it."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    """A probe of a resource: ``tcp`` connects to host:port, ``http`` expects a status.

    After ``failures`` failed probes in a row the resource is marked unavailable with
    the failure as the reason; it returns when a probe passes again. Times in seconds.
    """

    kind: str
    target: str
    expect_status: int = 200
    interval: float = 30.0
    timeout: float = 5.0
    failures: int = 3


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """One resource as the descriptor declares it."""

    name: str
    description: str = ""
    endpoint: str = ""
    tags_text: str = ""
    max_lock_duration: int = 86400
    windows: tuple[WindowSpec, ...] = ()
    health_check: HealthCheckSpec | None = None


def sync_resources(
    tx: Transaction, now: datetime, limits: Limits, specs: list[ResourceSpec]
) -> dict[str, int]:
    """Make the stored resources match the descriptor, matching them by name.

    New names are added (a name seen before gets its old id back), changed fields are
    updated, and resources no longer declared are deleted, or retired until their lock
    ends when they are locked. Returns counts of added, updated, removed and retired.
    """
    counts = {"added": 0, "updated": 0, "removed": 0, "retired": 0}
    declared = {spec.name for spec in specs}
    changes: list[Event] = []

    for spec in specs:
        existing = tx.resource_by_name(spec.name)
        if existing is None:
            changes.append(add_resource(tx, now, spec))
            counts["added"] += 1
        elif (updated := update_resource(tx, now, existing, spec)) is not None:
            changes.append(updated)
            counts["updated"] += 1
        sync_windows(tx, now, limits, spec)

    for resource in tx.resources():
        if resource.name in declared:
            continue
        if resource.held_lock(now) is not None:
            if not resource.retired:
                resource.retired = True
                tx.put_resource(resource)
                counts["retired"] += 1
            continue
        tx.delete_resource(resource.id)
        changes.append(Event(events.RESOURCE_REMOVED, now, resource_id=resource.id))
        counts["removed"] += 1

    announce_changes(tx, now, changes, counts)
    queue.settle(tx, now, limits)
    return counts


def announce_changes(
    tx: Transaction, now: datetime, changes: list[Event], counts: dict[str, int]
) -> None:
    """Emit one event per changed resource, or a single summary for a large sync."""
    if len(changes) <= MAX_SYNC_EVENTS:
        for change in changes:
            tx.emit(change)
        return
    tx.emit(Event(events.RESOURCES_SYNCED, now, data=dict(counts)))


def sync_windows(tx: Transaction, now: datetime, limits: Limits, spec: ResourceSpec) -> None:
    """Make the descriptor's windows on a resource match ``spec``; others stay as they are.

    A declared window that has ended, or that overlaps a window added through the API,
    is left out; the descriptor loader warns about ended ones.
    """
    resource = tx.resource_by_name(spec.name)
    assert resource is not None
    wanted = {(w.start, w.end, w.reason) for w in spec.windows if w.end > now}
    present = {(w.start, w.end, w.reason): w for w in resource.windows if w.from_descriptor}

    for key, window in present.items():
        if key not in wanted:
            availability.remove_window(tx, now, limits, resource.id, window.id, True)
    for start, end, reason in sorted(wanted - present.keys()):
        current = tx.resource(resource.id)
        assert current is not None
        if current.window_overlapping(start, end) is None:
            availability.add_window(tx, now, limits, resource.id, start, end, reason, True)


def add_resource(tx: Transaction, now: datetime, spec: ResourceSpec) -> Event:
    resource = Resource(
        id=tx.id_for_name(spec.name),
        name=spec.name,
        description=spec.description,
        endpoint=spec.endpoint,
        tags_text=spec.tags_text,
        tags=parse_tags(spec.tags_text),
        max_lock_duration=spec.max_lock_duration,
    )
    tx.put_resource(resource)
    return Event(events.RESOURCE_ADDED, now, resource_id=resource.id)


def update_resource(
    tx: Transaction, now: datetime, resource: Resource, spec: ResourceSpec
) -> Event | None:
    """Copy the declared fields onto ``resource``; return its event if anything changed."""
    before = (
        resource.description,
        resource.endpoint,
        resource.tags_text,
        resource.max_lock_duration,
        resource.retired,
    )
    after = (spec.description, spec.endpoint, spec.tags_text, spec.max_lock_duration, False)
    if before == after:
        return None

    resource.description = spec.description
    resource.endpoint = spec.endpoint
    resource.tags_text = spec.tags_text
    resource.tags = parse_tags(spec.tags_text)
    resource.max_lock_duration = spec.max_lock_duration
    resource.retired = False
    tx.put_resource(resource)
    return Event(events.RESOURCE_UPDATED, now, resource_id=resource.id)
