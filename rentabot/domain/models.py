"""Resources, locks and reservations as the rules see them."""

from __future__ import annotations

import enum
import functools
import sys
from dataclasses import dataclass, field
from datetime import datetime


class ResourceStatus(enum.StrEnum):
    """Single-word state of a resource, as shown by the API and the web page."""

    AVAILABLE = "available"
    LOCKED = "locked"
    RESERVED = "reserved"
    UNAVAILABLE = "unavailable"


class ReservationStatus(enum.StrEnum):
    """Life cycle of a reservation: pending, then fulfilled, then claimed, or one of the ends."""

    PENDING = "pending"
    FULFILLED = "fulfilled"
    CLAIMED = "claimed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    RELEASED = "released"


# Reservations in these states are kept only to explain a 404 to a client that asks later.
ENDED_RESERVATION_STATUSES = frozenset(
    {ReservationStatus.EXPIRED, ReservationStatus.CANCELLED, ReservationStatus.RELEASED}
)


class QueuePolicy(enum.StrEnum):
    """Sharing rule of the reservation queue.

    ``strict``: a reservation never takes a resource that an earlier pending reservation
    could use, so large requests are not starved. ``backfill``: any reservation that
    fits right now is fulfilled, even ahead of earlier ones.
    """

    STRICT = "strict"
    BACKFILL = "backfill"


class Role(enum.StrEnum):
    """Permission level of a client: read (anonymous), lock and reserve (user), all (admin).

    ``system`` marks what the service does by itself, such as expiring a lock.
    """

    ANONYMOUS = "anonymous"
    USER = "user"
    ADMIN = "admin"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """The client behind a request: its role, the name of its token, and its IP."""

    role: Role = Role.ANONYMOUS
    token_name: str | None = None
    ip: str | None = None
    # False when authentication is off: then every client may use every lock token.
    authenticated: bool = False

    def holder(self, label: str | None) -> Holder:
        return Holder(label=label or None, ip=self.ip, token_name=self.token_name)

    def may_act_for(self, token_name: str | None) -> bool:
        """Tell whether this actor may act on something created under ``token_name``."""
        return not self.authenticated or self.role is Role.ADMIN or self.token_name == token_name


SYSTEM_ACTOR = Actor(role=Role.SYSTEM)


@dataclass(frozen=True, slots=True)
class Holder:
    """The requester of a lock: free-text label, client IP and, with auth on, the token name."""

    label: str | None = None
    ip: str | None = None
    token_name: str | None = None


@dataclass(frozen=True, slots=True)
class Lock:
    """An exclusive lease on one resource, held while ``now < expires_at``."""

    token: str
    acquired_at: datetime
    expires_at: datetime
    fencing_token: int
    holder: Holder = Holder()
    reservation_id: str | None = None

    def is_held(self, now: datetime) -> bool:
        return now < self.expires_at


class UnavailabilitySource(enum.StrEnum):
    """Origin of an unavailability; a health check never overrides an admin."""

    ADMIN = "admin"
    HEALTH_CHECK = "health-check"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class Unavailability:
    """A resource taken out of rotation by an admin or a failing health check.

    It returns by itself at ``until``, if set.
    """

    reason: str
    since: datetime
    until: datetime | None = None
    source: UnavailabilitySource = UnavailabilitySource.ADMIN

    def active_at(self, instant: datetime) -> bool:
        return self.until is None or instant < self.until


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned work: the resource is unavailable from ``start`` to ``end``.

    ``started`` records that the start was announced, so it is announced once.
    ``from_descriptor`` marks windows the descriptor declares, which sync replaces.
    """

    id: str
    start: datetime
    end: datetime
    reason: str
    from_descriptor: bool = False
    started: bool = False

    def covers(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class EndedLock:
    """The last lock of a resource that ended by expiry, kept to find forgetful pipelines."""

    acquired_at: datetime
    expired_at: datetime
    fencing_token: int
    holder: Holder = Holder()


@dataclass(slots=True)
class Resource:
    """A lockable thing from the descriptor, with its current lock and queue earmark.

    ``tags_text`` keeps the tags as the descriptor wrote them, because rentabot 1.0.0
    returns that exact string; ``tags`` is the parsed set used for matching.
    ``reserved_for`` names the pending reservation that this free resource is kept for
    under the strict queue policy.
    """

    id: int
    name: str
    description: str = ""
    endpoint: str = ""
    tags_text: str = ""
    tags: frozenset[str] = frozenset()
    max_lock_duration: int = 86400
    lock: Lock | None = None
    last_fencing_token: int = 0
    reserved_for: str | None = None
    last_expired_lock: EndedLock | None = None
    retired: bool = False
    unavailability: Unavailability | None = None
    windows: tuple[MaintenanceWindow, ...] = ()

    def clone(self) -> Resource:
        return Resource(
            self.id,
            self.name,
            self.description,
            self.endpoint,
            self.tags_text,
            self.tags,
            self.max_lock_duration,
            self.lock,
            self.last_fencing_token,
            self.reserved_for,
            self.last_expired_lock,
            self.retired,
            self.unavailability,
            self.windows,
        )

    def held_lock(self, now: datetime) -> Lock | None:
        """Return the lock if it is still held at ``now``, else None."""
        lock = self.lock
        if lock is not None and now < lock.expires_at:
            return lock
        return None

    def unavailable_at(self, instant: datetime) -> Unavailability | None:
        """Return why the resource cannot be locked at ``instant``, or None if it can be."""
        if self.unavailability is not None and self.unavailability.active_at(instant):
            return self.unavailability
        for window in self.windows:
            if window.covers(instant):
                return Unavailability(
                    window.reason, window.start, window.end, UnavailabilitySource.MAINTENANCE
                )
        return None

    def window_overlapping(self, start: datetime, end: datetime) -> MaintenanceWindow | None:
        for window in self.windows:
            if window.overlaps(start, end):
                return window
        return None

    def next_deadline(self) -> datetime | None:
        """Return the next instant at which this resource changes by itself, if any.

        That is a lock's expiry, the end of an unavailability, or a window's start or end.
        """
        instants = []
        if self.lock is not None:
            instants.append(self.lock.expires_at)
        if self.unavailability is not None and self.unavailability.until is not None:
            instants.append(self.unavailability.until)
        for window in self.windows:
            instants.append(window.end if window.started else window.start)
        return min(instants) if instants else None

    def status(self, now: datetime) -> ResourceStatus:
        if self.unavailable_at(now) is not None:
            return ResourceStatus.UNAVAILABLE
        if self.held_lock(now) is not None:
            return ResourceStatus.LOCKED
        if self.reserved_for is not None:
            return ResourceStatus.RESERVED
        return ResourceStatus.AVAILABLE

    def has_tags(self, tags: frozenset[str]) -> bool:
        return tags <= self.tags


@dataclass(slots=True)
class Reservation:
    """A request for ``quantity`` resources carrying all of ``tags``, waiting in the queue.

    Queue order is higher ``priority`` first, then lower ``sequence`` (older) first.
    ``expires_at`` is the end of the wait (creation + ``max_wait_time``);
    ``claim_expires_at`` is the end of the claim window once fulfilled.
    """

    id: str
    tags: tuple[str, ...]
    quantity: int
    ttl: int
    max_wait_time: int
    priority: int
    sequence: int
    status: ReservationStatus
    created_at: datetime
    expires_at: datetime
    holder: Holder = Holder()
    fulfilled_at: datetime | None = None
    claim_expires_at: datetime | None = None
    claimed_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str | None = None
    resource_ids: list[int] = field(default_factory=list)
    lock_tokens: list[str] = field(default_factory=list)

    def clone(self) -> Reservation:
        return Reservation(
            self.id,
            self.tags,
            self.quantity,
            self.ttl,
            self.max_wait_time,
            self.priority,
            self.sequence,
            self.status,
            self.created_at,
            self.expires_at,
            self.holder,
            self.fulfilled_at,
            self.claim_expires_at,
            self.claimed_at,
            self.ended_at,
            self.reason,
            list(self.resource_ids),
            list(self.lock_tokens),
        )

    @property
    def tag_set(self) -> frozenset[str]:
        return frozenset(self.tags)

    def queue_key(self) -> tuple[int, int]:
        """Sort key of the queue: higher priority first, then first come, first served."""
        return (-self.priority, self.sequence)

    def wants(self, resource: Resource) -> bool:
        """Tell whether ``resource`` could serve this reservation, free or not."""
        return (
            not resource.retired
            and resource.max_lock_duration >= self.ttl
            and resource.has_tags(self.tag_set)
        )


def parse_tags(text: str | list[str] | tuple[str, ...] | None) -> frozenset[str]:
    """Split a comma-separated tag string (or a list of tags) into a set of tags."""
    if text is None:
        return frozenset()
    if isinstance(text, str):
        return parse_tag_text(text)
    return frozenset(str(part).strip() for part in text if str(part).strip())


@functools.lru_cache(maxsize=4096)
def parse_tag_text(text: str) -> frozenset[str]:
    # Cached, so resources that share a tag text share one set: a lab of thousands of
    # resources has a few hundred distinct tag texts at most.
    return frozenset(sys.intern(part.strip()) for part in text.split(",") if part.strip())
