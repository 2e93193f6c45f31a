"""Every outcome a client can see that is not a success, as one exception tree.

::

    RentabotError
    ├── NotFoundError
    │   ├── ResourceNotFound            no resource with that id or name
    │   ├── NoResourceMatchesTags       no resource carries all the requested tags
    │   └── ReservationNotFound         unknown id, or a reservation that has ended
    ├── LockRefused
    │   ├── ResourceLocked              another client holds the lock
    │   ├── ResourceUnavailable         out of rotation (admin, health check, maintenance)
    │   ├── WindowConflict              the lock would run into a maintenance window
    │   ├── ResourceReserved            the queue owes the resource to a reservation
    │   └── NoFreeResource              every match is locked or reserved
    ├── LockTokenRejected
    │   ├── NotLocked                   unlock or extend of a free resource
    │   └── WrongLockToken              the token is not the current lock's token
    ├── InvalidRequest
    │   ├── MissingCriterion            lock by criteria without id, name or tag
    │   ├── TtlTooLong                  above the resource's max-lock-duration
    │   ├── ValueOutOfRange             a number outside the configured limits
    │   ├── NeverSatisfiable            too few resources could ever serve a reservation
    │   └── InstantInPast               an `until` or window end that has already passed
    ├── MaintenanceStateError
    │   ├── WindowNotFound              no such window on this resource
    │   ├── WindowOverlap               a new window overlaps an existing one
    │   └── WindowFromDescriptor        the descriptor declares it; remove it there
    ├── NotAuthenticated                no key, or a key that matches no token
    ├── Forbidden
    │   ├── AdminOnly                   an administrator's request from someone else
    │   ├── NotYourReservation          another token's reservation
    │   └── OriginRejected              a browser request from another web site
    └── ReservationStateError
        ├── ReservationNotFulfilled     claim before fulfilment
        ├── ReservationNotClaimable     claim of a claimed or ended reservation
        ├── ClaimWindowPassed           claim after the claim window closed
        └── ReservationNotCancellable   DELETE of a fulfilled or claimed reservation

The HTTP status of each leaf is chosen in one place, ``rentabot.api.errors``. Error
payloads carry ids and states, never a lock token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def format_instant(instant: datetime) -> str:
    return instant.isoformat(timespec="milliseconds")


class RentabotError(Exception):
    """Base of every error a client can cause; ``message`` states what failed and the fix."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        # Set once the audit log contains this refusal, so the HTTP layer does not add it again.
        self.audited = False

    def payload(self) -> dict[str, Any]:
        """Return the JSON body: rentabot 1.0.0's ``message`` plus the typed fields."""
        return {"message": self.message, **self.fields}


class NotFoundError(RentabotError):
    """The named resource or reservation does not exist."""


class ResourceNotFound(NotFoundError):
    @classmethod
    def by_id(cls, resource_id: int) -> ResourceNotFound:
        return cls(
            f"resource {resource_id} not found; list resources with GET /api/v1/resources",
            resource_id=resource_id,
        )

    @classmethod
    def by_name(cls, name: str) -> ResourceNotFound:
        return cls(
            f"no resource is named {name!r}; names are case-sensitive, "
            "list them with GET /api/v1/resources",
            resource_name=name,
        )


class NoResourceMatchesTags(NotFoundError):
    def __init__(self, tags: list[str]) -> None:
        super().__init__(
            f"no resource carries all of the tags {tags}; check the spelling or ask for fewer tags",
            tags=tags,
        )


class ReservationNotFound(NotFoundError):
    def __init__(
        self,
        reservation_id: str,
        status: str | None = None,
        reason: str | None = None,
    ) -> None:
        if status is None:
            message = f"reservation {reservation_id!r} not found; check the id"
            super().__init__(message, reservation_id=reservation_id)
            return
        message = f"reservation {reservation_id!r} has ended ({status}): {reason}"
        super().__init__(message, reservation_id=reservation_id, status=status, reason=reason)


class LockRefused(RentabotError):
    """The resource exists but cannot be locked right now."""


class ResourceLocked(LockRefused):
    def __init__(self, resource_id: int, name: str, label: str | None, until: datetime) -> None:
        holder = f" by {label!r}" if label else ""
        super().__init__(
            f"resource {resource_id} ({name!r}) is locked{holder} until "
            f"{format_instant(until)}; retry after that, or reserve it with "
            "POST /api/v1/reservations to wait in the queue",
            resource_id=resource_id,
            locked_by_label=label,
            lock_expires_at=until.isoformat(),
        )


class ResourceReserved(LockRefused):
    def __init__(self, resource_id: int, name: str, reservation_id: str) -> None:
        super().__init__(
            f"resource {resource_id} ({name!r}) is kept for the pending reservation "
            f"{reservation_id!r}, which is ahead in the queue; reserve it with "
            "POST /api/v1/reservations to wait your turn",
            resource_id=resource_id,
            reserved_for=reservation_id,
        )


class ResourceUnavailable(LockRefused):
    def __init__(
        self,
        resource_id: int,
        name: str,
        reason: str,
        until: datetime | None,
        action: str = "lock",
    ) -> None:
        back = f" until {format_instant(until)}" if until else ""
        super().__init__(
            f"cannot {action} resource {resource_id} ({name!r}): it is unavailable{back} "
            f"({reason}); pick another resource, or reserve by tags to wait for one",
            resource_id=resource_id,
            unavailable_reason=reason,
            unavailable_until=until.isoformat() if until else None,
        )


class WindowConflict(LockRefused):
    def __init__(
        self,
        resource_id: int,
        name: str,
        window_id: str,
        start: datetime,
        end: datetime,
        reason: str,
        action: str = "a lock",
    ) -> None:
        super().__init__(
            f"{action} of resource {resource_id} ({name!r}) would run into the maintenance "
            f"window {window_id} ({reason}) from {format_instant(start)} to "
            f"{format_instant(end)}; ask for a shorter ttl, or another resource",
            resource_id=resource_id,
            window_id=window_id,
            window_start=start.isoformat(),
            window_end=end.isoformat(),
            window_reason=reason,
        )


class NoFreeResource(LockRefused):
    def __init__(self, tags: list[str], matching: int) -> None:
        super().__init__(
            f"all {matching} resources with the tags {tags} are locked or reserved; "
            "retry later, or reserve one with POST /api/v1/reservations to wait in the queue",
            tags=tags,
        )


class LockTokenRejected(RentabotError):
    """Unlock or extend with a token that does not hold the resource."""


class NotLocked(LockTokenRejected):
    def __init__(self, resource_id: int, name: str, action: str) -> None:
        super().__init__(
            f"cannot {action} resource {resource_id} ({name!r}): it is not locked "
            "(it was unlocked, or its lock expired); lock it again if you still need it",
            resource_id=resource_id,
        )


class WrongLockToken(LockTokenRejected):
    def __init__(self, resource_id: int, name: str, action: str) -> None:
        super().__init__(
            f"cannot {action} resource {resource_id} ({name!r}): the lock-token does not "
            "match its current lock (the lock may have expired and been taken by another "
            "client); pass the lock-token returned when you locked it",
            resource_id=resource_id,
        )


class InvalidRequest(RentabotError):
    """The request is well-formed but exceeds what this service allows."""


class MissingCriterion(InvalidRequest):
    def __init__(self) -> None:
        super().__init__(
            "no lock criterion given; pass one of the query parameters id, name or tag, "
            "for example POST /api/v1/resources/lock?tag=android"
        )


class TtlTooLong(InvalidRequest):
    def __init__(self, resource_id: int, name: str, requested: int, maximum: int) -> None:
        super().__init__(
            f"a lock of {requested} s on resource {resource_id} ({name!r}) would exceed its "
            f"max-lock-duration of {maximum} s; ask for at most {maximum} s in total and "
            "extend while you still need it",
            resource_id=resource_id,
            ttl=requested,
            max_lock_duration=maximum,
        )


class ValueOutOfRange(InvalidRequest):
    def __init__(self, field: str, value: int, low: int, high: int) -> None:
        super().__init__(
            f"{field}={value} is outside the allowed range {low}..{high}; "
            f"send an integer from {low} to {high}",
            field=field,
            value=value,
            minimum=low,
            maximum=high,
        )


class NeverSatisfiable(InvalidRequest):
    def __init__(self, tags: list[str], quantity: int, ttl: int, compatible: int) -> None:
        super().__init__(
            f"the reservation asks for {quantity} resources with the tags {tags} for "
            f"ttl={ttl} s, but only {compatible} such resources allow a lock that long; "
            f"ask for at most {compatible}, or a shorter ttl",
            tags=tags,
            quantity=quantity,
            ttl=ttl,
            compatible_count=compatible,
        )


class NotAuthenticated(RentabotError):
    """The request carries no key, or a key that matches no configured token."""

    def __init__(self, presented: bool) -> None:
        problem = "the API key matches no configured token" if presented else "no API key sent"
        super().__init__(
            f"authentication required: {problem}; send your token in the X-API-Key header "
            "(or Authorization: Bearer)"
        )


class Forbidden(RentabotError):
    """The client is known but may not do this."""


class AdminOnly(Forbidden):
    """The request needs an administrator."""

    @classmethod
    def for_role(cls, action: str, token_name: str | None) -> AdminOnly:
        who = f"token {token_name!r}" if token_name else "this client"
        return cls(f"{action} needs the admin token; {who} is not an administrator")


class NotYourReservation(Forbidden):
    def __init__(self, reservation_id: str, owner: str | None) -> None:
        super().__init__(
            f"reservation {reservation_id!r} belongs to token {owner!r}; only that token or "
            "an admin may claim, cancel or release it",
            reservation_id=reservation_id,
        )


class OriginRejected(Forbidden):
    def __init__(self, origin: str) -> None:
        super().__init__(
            f"requests from web pages at {origin!r} may not change anything; call the API "
            "from a script or CI job, or add that origin to auth.allowed_origins",
            origin=origin,
        )


class InstantInPast(InvalidRequest):
    def __init__(self, field: str, value: datetime, now: datetime) -> None:
        super().__init__(
            f"{field}={value.isoformat()} has already passed (it is now "
            f"{format_instant(now)}); give a time in the future, with a UTC offset",
            field=field,
        )


class MaintenanceStateError(RentabotError):
    """A maintenance window request that conflicts with the windows already there."""


class WindowNotFound(MaintenanceStateError):
    def __init__(self, resource_id: int, window_id: str) -> None:
        super().__init__(
            f"resource {resource_id} has no maintenance window {window_id!r}; list them with "
            f"GET /api/v1/resources/{resource_id}/maintenance",
            resource_id=resource_id,
            window_id=window_id,
        )


class WindowOverlap(MaintenanceStateError):
    def __init__(self, resource_id: int, window_id: str, start: datetime, end: datetime) -> None:
        super().__init__(
            f"the new window overlaps window {window_id} of resource {resource_id} "
            f"({format_instant(start)} to {format_instant(end)}); change its times or delete "
            "that window first",
            resource_id=resource_id,
            window_id=window_id,
        )


class WindowFromDescriptor(MaintenanceStateError):
    def __init__(self, resource_id: int, window_id: str) -> None:
        super().__init__(
            f"window {window_id} of resource {resource_id} is declared in the resource "
            "descriptor; remove it there and restart or import the descriptor",
            resource_id=resource_id,
            window_id=window_id,
        )


class ReservationStateError(RentabotError):
    """The reservation exists but is in the wrong state for the request."""


class ReservationNotFulfilled(ReservationStateError):
    def __init__(self, reservation_id: str, position: int | None) -> None:
        where = f" at position {position} in the queue" if position else ""
        super().__init__(
            f"reservation {reservation_id!r} is still pending{where}; poll it with GET "
            "and claim it once its status is 'fulfilled'",
            reservation_id=reservation_id,
            status="pending",
            position_in_queue=position,
        )


class ReservationNotClaimable(ReservationStateError):
    def __init__(self, reservation_id: str, status: str) -> None:
        super().__init__(
            f"reservation {reservation_id!r} cannot be claimed because it is {status}; "
            "only a fulfilled reservation can be claimed, once",
            reservation_id=reservation_id,
            status=status,
        )


class ClaimWindowPassed(ReservationStateError):
    def __init__(self, reservation_id: str, claim_expires_at: datetime) -> None:
        super().__init__(
            f"the claim window of reservation {reservation_id!r} closed at "
            f"{format_instant(claim_expires_at)} and its resources were released; "
            "create a new reservation",
            reservation_id=reservation_id,
            status="expired",
            claim_expires_at=claim_expires_at.isoformat(),
        )


class ReservationNotCancellable(ReservationStateError):
    def __init__(self, reservation_id: str, status: str) -> None:
        super().__init__(
            f"reservation {reservation_id!r} is {status} and cannot be cancelled with "
            f"DELETE; give its resources back with POST /api/v1/reservations/"
            f"{reservation_id}/release",
            reservation_id=reservation_id,
            status=status,
        )
