"""Rules for taking resources out of rotation: by an admin, a health check, or a window.

An unavailable resource cannot be locked and is skipped by tag locks and by the queue.
A lock already held runs to its expiry and may be unlocked, but not extended. The
resource returns by itself at ``until``, or at the end of its maintenance window, and
waiting reservations are served at that instant.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from rentabot.domain import events
from rentabot.domain.errors import (
    InstantInPast,
    WindowFromDescriptor,
    WindowNotFound,
    WindowOverlap,
)
from rentabot.domain.events import Event
from rentabot.domain.limits import Limits
from rentabot.domain.locking import require_resource
from rentabot.domain.models import (
    MaintenanceWindow,
    Resource,
    Unavailability,
    UnavailabilitySource,
)
from rentabot.domain.ports import Transaction
from rentabot.domain.queue import settle

MAX_REASON = 256


def new_window_id() -> str:
    return "mw_" + uuid.uuid4().hex[:16]


def mark_unavailable(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    resource_id: int,
    reason: str,
    until: datetime | None,
    source: UnavailabilitySource = UnavailabilitySource.ADMIN,
) -> Resource:
    """Take a resource out of rotation until ``until`` (or until marked available).

    A health check never replaces an admin's reason.
    """
    resource = require_resource(tx, resource_id)
    if until is not None and until <= now:
        raise InstantInPast("until", until, now)

    current = resource.unavailability
    if source is UnavailabilitySource.HEALTH_CHECK and current is not None:
        if current.source is UnavailabilitySource.ADMIN and current.active_at(now):
            return resource

    since = current.since if current is not None and current.active_at(now) else now
    resource.unavailability = Unavailability(reason[:MAX_REASON], since, until, source)
    resource.reserved_for = None
    tx.put_resource(resource)
    tx.emit(
        Event(
            events.RESOURCE_UNAVAILABLE,
            now,
            resource_id=resource.id,
            data={
                "reason": resource.unavailability.reason,
                "until": until.isoformat() if until else None,
                "source": source.value,
            },
            deadline=until,
        )
    )
    # The resource may have been kept for a reservation that must now look elsewhere.
    settle(tx, now, limits)
    return resource


def mark_available(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    resource_id: int,
    source: UnavailabilitySource = UnavailabilitySource.ADMIN,
) -> Resource:
    """Bring a resource back into rotation; waiting reservations are served at once.

    A passing health check clears only what a health check set. Maintenance windows
    are not touched: delete a window to end it early.
    """
    resource = require_resource(tx, resource_id)
    current = resource.unavailability
    if current is None:
        return resource
    if source is UnavailabilitySource.HEALTH_CHECK and current.source is not source:
        return resource

    resource.unavailability = None
    tx.put_resource(resource)
    tx.emit(
        Event(
            events.RESOURCE_AVAILABLE,
            now,
            resource_id=resource.id,
            data={"source": source.value},
        )
    )
    settle(tx, now, limits, freed=[resource])
    return resource


def add_window(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    resource_id: int,
    start: datetime,
    end: datetime,
    reason: str,
    from_descriptor: bool = False,
) -> MaintenanceWindow:
    """Schedule maintenance; locks may not run into it, and the queue skips the resource."""
    resource = require_resource(tx, resource_id)
    if end <= now:
        raise InstantInPast("end", end, now)
    for existing in resource.windows:
        if existing.overlaps(start, end):
            raise WindowOverlap(resource.id, existing.id, existing.start, existing.end)

    window = MaintenanceWindow(
        id=new_window_id(),
        start=start,
        end=end,
        reason=reason[:MAX_REASON],
        from_descriptor=from_descriptor,
        started=start <= now,
    )
    resource.windows = tuple(sorted((*resource.windows, window), key=lambda w: w.start))
    if window.started:
        resource.reserved_for = None
    tx.put_resource(resource)
    tx.emit(
        Event(
            events.RESOURCE_UNAVAILABLE if window.started else events.MAINTENANCE_SCHEDULED,
            now,
            resource_id=resource.id,
            data=window_data(window),
            deadline=window.end if window.started else window.start,
        )
    )
    if window.started:
        settle(tx, now, limits)
    return window


def remove_window(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    resource_id: int,
    window_id: str,
    from_descriptor: bool = False,
) -> None:
    """Delete a window; if it was under way, the resource comes back at once."""
    resource = require_resource(tx, resource_id)
    window = next((w for w in resource.windows if w.id == window_id), None)
    if window is None:
        raise WindowNotFound(resource.id, window_id)
    if window.from_descriptor and not from_descriptor:
        raise WindowFromDescriptor(resource.id, window_id)

    resource.windows = tuple(w for w in resource.windows if w.id != window_id)
    tx.put_resource(resource)
    tx.emit(
        Event(
            events.MAINTENANCE_CANCELLED,
            now,
            resource_id=resource.id,
            data=window_data(window),
        )
    )
    if window.covers(now):
        settle(tx, now, limits, freed=[resource])


def window_data(window: MaintenanceWindow) -> dict[str, str]:
    return {
        "window_id": window.id,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "reason": window.reason,
    }


def apply_availability_deadlines(tx: Transaction, resource: Resource, at: datetime) -> bool:
    """Apply the ends of unavailability and the starts and ends of windows due at ``at``.

    Returns True if the resource may have become lockable, so the queue should look.
    """
    changed = False
    freed = False
    current = resource.unavailability
    if current is not None and current.until is not None and current.until <= at:
        resource.unavailability = None
        tx.emit(
            Event(
                events.RESOURCE_AVAILABLE,
                current.until,
                resource_id=resource.id,
                data={"source": current.source.value},
            )
        )
        changed = freed = True

    kept = []
    for window in resource.windows:
        if window.end <= at:
            tx.emit(
                Event(
                    events.RESOURCE_AVAILABLE,
                    window.end,
                    resource_id=resource.id,
                    data={"source": "maintenance", **window_data(window)},
                )
            )
            changed = freed = True
            continue
        if not window.started and window.start <= at:
            window = MaintenanceWindow(
                window.id,
                window.start,
                window.end,
                window.reason,
                window.from_descriptor,
                started=True,
            )
            resource.reserved_for = None
            tx.emit(
                Event(
                    events.RESOURCE_UNAVAILABLE,
                    window.start,
                    resource_id=resource.id,
                    data={"source": "maintenance", **window_data(window)},
                    deadline=window.end,
                )
            )
            changed = True
        kept.append(window)
    resource.windows = tuple(kept)

    if changed:
        tx.put_resource(resource)
    return freed
