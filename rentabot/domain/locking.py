"""Rules for locking one resource: who may lock, unlock and extend, and for how long."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import NoReturn

from rentabot.domain import events
from rentabot.domain.errors import (
    MissingCriterion,
    NoFreeResource,
    NoResourceMatchesTags,
    NotLocked,
    ResourceLocked,
    ResourceNotFound,
    ResourceReserved,
    ResourceUnavailable,
    TtlTooLong,
    ValueOutOfRange,
    WindowConflict,
    WrongLockToken,
)
from rentabot.domain.events import Event
from rentabot.domain.limits import Limits
from rentabot.domain.models import EndedLock, Holder, Lock, QueuePolicy, Resource
from rentabot.domain.ports import Transaction


def new_lock_token() -> str:
    # A random UUID, in rentabot 1.0.0's format, so clients that store or validate it keep working.
    return str(uuid.uuid4())


def check_range(field: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueOutOfRange(field, value, low, high)
    return value


def require_resource(tx: Transaction, resource_id: int) -> Resource:
    resource = tx.resource(resource_id)
    if resource is None:
        raise ResourceNotFound.by_id(resource_id)
    return resource


def resolve_ttl(resource: Resource, ttl: int | None, limits: Limits) -> int:
    """Return the lock length to grant, or raise when the request is too long.

    With no ``ttl`` the lock lasts ``limits.default_ttl``, shortened to the resource's
    max-lock-duration so that a client that never sends a ttl is not refused.
    """
    if ttl is None:
        return min(limits.default_ttl, resource.max_lock_duration)

    check_range("ttl", ttl, 1, limits.max_ttl)
    if ttl > resource.max_lock_duration:
        raise TtlTooLong(resource.id, resource.name, ttl, resource.max_lock_duration)
    return ttl


def ensure_lockable(resource: Resource, now: datetime, limits: Limits) -> None:
    lock = resource.held_lock(now)
    if lock is not None:
        raise ResourceLocked(resource.id, resource.name, lock.holder.label, lock.expires_at)

    check_available(resource, now)

    if resource.reserved_for is not None and limits.queue_policy is QueuePolicy.STRICT:
        raise ResourceReserved(resource.id, resource.name, resource.reserved_for)

    if resource.retired:
        # Removed from the descriptor while locked; it is deleted once its lock ends.
        raise ResourceNotFound.by_id(resource.id)


def grant_lock(
    tx: Transaction,
    resource: Resource,
    now: datetime,
    ttl: int,
    holder: Holder,
    reservation_id: str | None = None,
) -> Lock:
    """Lock ``resource`` from ``now`` for ``ttl`` seconds and record the change."""
    fencing_token = resource.last_fencing_token + 1
    lock = Lock(
        token=new_lock_token(),
        acquired_at=now,
        expires_at=now + timedelta(seconds=ttl),
        fencing_token=fencing_token,
        holder=holder,
        reservation_id=reservation_id,
    )
    resource.lock = lock
    resource.last_fencing_token = fencing_token
    resource.reserved_for = None
    tx.put_resource(resource)

    tx.emit(
        Event(
            events.RESOURCE_LOCKED,
            now,
            resource_id=resource.id,
            reservation_id=reservation_id,
            data={
                "expires_at": lock.expires_at.isoformat(),
                "fencing_token": fencing_token,
                "locked_by_label": holder.label,
            },
            deadline=lock.expires_at,
        )
    )
    return lock


def lock_by_id(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    resource_id: int,
    ttl: int | None,
    holder: Holder,
) -> tuple[Resource, Lock]:
    resource = require_resource(tx, resource_id)
    ensure_lockable(resource, now, limits)
    granted_ttl = resolve_ttl(resource, ttl, limits)
    check_no_window(resource, now, now + timedelta(seconds=granted_ttl))

    lock = grant_lock(tx, resource, now, granted_ttl, holder)
    return resource, lock


def lock_by_criteria(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    resource_id: int | None,
    name: str | None,
    tags: list[str] | None,
    ttl: int | None,
    holder: Holder,
) -> tuple[Resource, Lock]:
    """Lock by id, else by name, else the first free resource carrying all ``tags``."""
    if resource_id is not None:
        return lock_by_id(tx, now, limits, resource_id, ttl, holder)

    if name:
        resource = tx.resource_by_name(name)
        if resource is None:
            raise ResourceNotFound.by_name(name)
        return lock_by_id(tx, now, limits, resource.id, ttl, holder)

    if tags:
        return lock_first_tagged(tx, now, limits, tags, ttl, holder)

    raise MissingCriterion()


def lock_first_tagged(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    tags: list[str],
    ttl: int | None,
    holder: Holder,
) -> tuple[Resource, Lock]:
    # The first match in id order that can be locked as asked. Matches are read one at a
    # time, so a pool of thousands costs only what comes before the first free one.
    for resource in tx.iter_resources_with_tags(tags):
        if resource.retired or not is_free_for_direct_lock(resource, now, limits):
            continue
        if resource.unavailable_at(now) is not None:
            continue
        if ttl is not None and ttl > resource.max_lock_duration:
            continue
        granted_ttl = resolve_ttl(resource, ttl, limits)
        if lockable_for(resource, now, granted_ttl):
            return resource, grant_lock(tx, resource, now, granted_ttl, holder)

    raise_why_none_fits(tx, now, limits, tags, ttl)


def raise_why_none_fits(
    tx: Transaction, now: datetime, limits: Limits, tags: list[str], ttl: int | None
) -> NoReturn:
    """Raise the error that explains why no resource carrying ``tags`` can be locked."""
    matches = [r for r in tx.resources_with_tags(tags) if not r.retired]
    if not matches:
        raise NoResourceMatchesTags(tags)

    free = [r for r in matches if is_free_for_direct_lock(r, now, limits)]
    if not free:
        raise NoFreeResource(tags, len(matches))
    available = [r for r in free if r.unavailable_at(now) is None]
    if not available:
        check_available(free[0], now)

    # Every available match is too short for the ttl or runs into a window: the checks
    # raise for the first one.
    first = available[0]
    granted_ttl = resolve_ttl(first, ttl, limits)
    check_no_window(first, now, now + timedelta(seconds=granted_ttl))
    raise AssertionError("an available resource passed every check and was not locked")


def is_free_for_direct_lock(resource: Resource, now: datetime, limits: Limits) -> bool:
    if resource.held_lock(now) is not None:
        return False
    return resource.reserved_for is None or limits.queue_policy is QueuePolicy.BACKFILL


def check_available(resource: Resource, now: datetime, action: str = "lock") -> None:
    unavailable = resource.unavailable_at(now)
    if unavailable is not None:
        raise ResourceUnavailable(
            resource.id, resource.name, unavailable.reason, unavailable.until, action
        )


def check_no_window(
    resource: Resource, start: datetime, end: datetime, action: str = "a lock"
) -> None:
    window = resource.window_overlapping(start, end)
    if window is not None:
        raise WindowConflict(
            resource.id,
            resource.name,
            window.id,
            window.start,
            window.end,
            window.reason,
            action,
        )


def lockable_for(resource: Resource, at: datetime, ttl: int) -> bool:
    """Tell whether ``resource`` may be locked from ``at`` for ``ttl`` seconds."""
    if resource.unavailable_at(at) is not None:
        return False
    return resource.window_overlapping(at, at + timedelta(seconds=ttl)) is None


def held_lock_with_token(resource: Resource, now: datetime, token: str | None, action: str) -> Lock:
    """Return the current lock if ``token`` is its token; raise otherwise."""
    lock = resource.held_lock(now)
    if lock is None:
        raise NotLocked(resource.id, resource.name, action)

    # Constant-time comparison, so response timing reveals nothing about the real token.
    if token is None or not hmac.compare_digest(token.encode(), lock.token.encode()):
        raise WrongLockToken(resource.id, resource.name, action)
    return lock


def release_lock(tx: Transaction, resource: Resource, at: datetime, reason: str) -> Lock:
    """End the current lock of ``resource`` at ``at``; ``reason`` is "unlocked", "expired", ..."""
    lock = resource.lock
    assert lock is not None, "release_lock needs a locked resource"

    resource.lock = None
    if reason == "expired":
        resource.last_expired_lock = EndedLock(
            acquired_at=lock.acquired_at,
            expired_at=lock.expires_at,
            fencing_token=lock.fencing_token,
            holder=lock.holder,
        )

    name = events.LOCK_EXPIRED if reason == "expired" else events.RESOURCE_UNLOCKED
    data = {"fencing_token": lock.fencing_token, "reason": reason}
    tx.emit(Event(name, at, resource_id=resource.id, reservation_id=lock.reservation_id, data=data))

    if resource.retired:
        tx.delete_resource(resource.id)
        tx.emit(Event(events.RESOURCE_REMOVED, at, resource_id=resource.id))
    else:
        tx.put_resource(resource)
    return lock


def unlock(
    tx: Transaction, now: datetime, resource_id: int, token: str | None
) -> tuple[Resource, Lock]:
    resource = require_resource(tx, resource_id)
    held_lock_with_token(resource, now, token, "unlock")

    lock = release_lock(tx, resource, now, "unlocked")
    return resource, lock


def force_unlock(tx: Transaction, now: datetime, resource_id: int) -> tuple[Resource, Lock]:
    """Release a lock without its token (an administrator's action)."""
    resource = require_resource(tx, resource_id)
    if resource.held_lock(now) is None:
        raise NotLocked(resource.id, resource.name, "force-unlock")

    lock = release_lock(tx, resource, now, "force-unlocked")
    return resource, lock


def extend(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    resource_id: int,
    token: str | None,
    additional_ttl: int,
) -> tuple[Resource, int]:
    """Renew a lease: the expiry becomes the later of the current one and now + additional_ttl.

    Returns the resource and the lock's total duration in whole seconds. An extension
    never shortens a lock, and the total may not pass the resource's max-lock-duration.
    """
    resource = require_resource(tx, resource_id)
    lock = held_lock_with_token(resource, now, token, "extend")
    check_range("additional-ttl", additional_ttl, 1, limits.max_ttl)
    check_available(resource, now, "extend the lock of")

    new_expiry = max(lock.expires_at, now + timedelta(seconds=additional_ttl))
    check_no_window(resource, now, new_expiry, "an extension")
    total = new_expiry - lock.acquired_at
    if total > timedelta(seconds=resource.max_lock_duration):
        raise TtlTooLong(
            resource.id, resource.name, int(total.total_seconds()), resource.max_lock_duration
        )

    resource.lock = replace(lock, expires_at=new_expiry)
    tx.put_resource(resource)
    tx.emit(
        Event(
            events.LOCK_EXTENDED,
            now,
            resource_id=resource.id,
            reservation_id=lock.reservation_id,
            data={"expires_at": new_expiry.isoformat(), "fencing_token": lock.fencing_token},
        )
    )
    return resource, int(total.total_seconds())
