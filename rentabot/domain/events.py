"""State changes, published to listeners after the transaction that made them commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RESOURCE_LOCKED = "resource.locked"
RESOURCE_UNLOCKED = "resource.unlocked"
LOCK_EXTENDED = "lock.extended"
LOCK_EXPIRED = "lock.expired"
RESOURCE_RESERVED = "resource.reserved"
RESOURCE_ADDED = "resource.added"
RESOURCE_UPDATED = "resource.updated"
RESOURCE_REMOVED = "resource.removed"
RESOURCE_UNAVAILABLE = "resource.unavailable"
RESOURCE_AVAILABLE = "resource.available"
MAINTENANCE_SCHEDULED = "maintenance.scheduled"
MAINTENANCE_CANCELLED = "maintenance.cancelled"
RESERVATION_CREATED = "reservation.created"
RESERVATION_FULFILLED = "reservation.fulfilled"
RESERVATION_CLAIMED = "reservation.claimed"
RESERVATION_EXPIRED = "reservation.expired"
RESERVATION_CANCELLED = "reservation.cancelled"
RESERVATION_RELEASED = "reservation.released"
# The whole state was replaced from a backup: listeners should reload everything.
STORE_RESTORED = "store.restored"
# A descriptor sync changed more resources than it is worth announcing one by one.
RESOURCES_SYNCED = "resources.synced"


@dataclass(frozen=True, slots=True)
class Event:
    """One state change. ``id`` is given by the store when the event is committed."""

    name: str
    at: datetime
    resource_id: int | None = None
    reservation_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: int = 0
    # A deadline the change created (a lock's expiry, a wait or claim window's end), so the
    # timer can wake up for it. Not part of the published event.
    deadline: datetime | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.name,
            "at": self.at.isoformat(),
            "resource_id": self.resource_id,
            "reservation_id": self.reservation_id,
            "data": self.data,
        }
