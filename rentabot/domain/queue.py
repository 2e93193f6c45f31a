"""Rules of the reservation queue: ordering, fulfilment, claim, cancel and release.

The queue is kept *settled*: after every transaction no pending reservation could be
fulfilled with the free resources. :func:`settle` restores that state and runs in the
same transaction as the change that freed a resource or changed the queue, so a
waiting reservation is fulfilled by the very request that unlocks what it needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from rentabot.domain import events
from rentabot.domain.errors import (
    ClaimWindowPassed,
    NeverSatisfiable,
    NoResourceMatchesTags,
    NotYourReservation,
    ReservationNotCancellable,
    ReservationNotClaimable,
    ReservationNotFound,
    ReservationNotFulfilled,
)
from rentabot.domain.events import Event
from rentabot.domain.limits import Limits
from rentabot.domain.locking import (
    check_no_window,
    check_range,
    grant_lock,
    lockable_for,
    release_lock,
)
from rentabot.domain.models import (
    ENDED_RESERVATION_STATUSES,
    Actor,
    Holder,
    QueuePolicy,
    Reservation,
    ReservationStatus,
    Resource,
)
from rentabot.domain.ports import Transaction

# The actor of a request when authentication is off: allowed to act on everything.
ANYONE = Actor()


def new_reservation_id() -> str:
    return "res_" + uuid.uuid4().hex


def require_reservation(tx: Transaction, reservation_id: str) -> Reservation:
    """Return a reservation that has not ended.

    Raises ReservationNotFound, carrying the status and reason when the reservation ended.
    """
    reservation = tx.reservation(reservation_id)
    if reservation is None:
        raise ReservationNotFound(reservation_id)

    if reservation.status in ENDED_RESERVATION_STATUSES:
        raise ReservationNotFound(reservation_id, reservation.status.value, reservation.reason)
    return reservation


def queue_positions(pending: Iterable[Reservation]) -> dict[str, int]:
    """Map each pending reservation id to its 1-based place, given queue order."""
    return {reservation.id: index for index, reservation in enumerate(pending, start=1)}


def create_reservation(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    tags: list[str],
    quantity: int,
    ttl: int | None,
    max_wait_time: int | None,
    priority: int,
    holder: Holder,
) -> tuple[Reservation, int]:
    """Queue a reservation and settle the queue at once.

    Returns the reservation as queued and its position then. When enough resources
    are free it is fulfilled in this same transaction, so a GET right after shows it.
    """
    ttl = limits.default_ttl if ttl is None else ttl
    wait = limits.default_max_wait_time if max_wait_time is None else max_wait_time
    check_range("quantity", quantity, 1, limits.max_quantity)
    check_range("ttl", ttl, 1, limits.max_ttl)
    check_range("max_wait_time", wait, 1, limits.max_wait_time)
    check_range("priority", priority, limits.min_priority, limits.max_priority)

    matching = [r for r in tx.resources_with_tags(tags) if not r.retired]
    if not matching:
        raise NoResourceMatchesTags(tags)
    compatible = sum(1 for r in matching if r.max_lock_duration >= ttl)
    if compatible < quantity:
        raise NeverSatisfiable(tags, quantity, ttl, compatible)

    reservation = Reservation(
        id=new_reservation_id(),
        tags=tuple(dict.fromkeys(tags)),
        quantity=quantity,
        ttl=ttl,
        max_wait_time=wait,
        priority=priority,
        sequence=tx.next_sequence(),
        status=ReservationStatus.PENDING,
        created_at=now,
        expires_at=now + timedelta(seconds=wait),
        holder=holder,
    )
    tx.put_reservation(reservation)
    tx.emit(
        Event(
            events.RESERVATION_CREATED,
            now,
            reservation_id=reservation.id,
            data={"tags": list(reservation.tags), "quantity": quantity, "priority": priority},
            deadline=reservation.expires_at,
        )
    )

    queued = reservation.clone()
    position = queue_positions(tx.pending_reservations())[reservation.id]
    settle(tx, now, limits)
    return queued, position


def settle(
    tx: Transaction,
    at: datetime,
    limits: Limits,
    freed: Iterable[Resource] | None = None,
    stamp: datetime | None = None,
) -> list[Reservation]:
    """Fulfil every pending reservation that can be, in queue order; return those fulfilled.

    ``at`` is the instant whose state is matched (locks held at ``at`` are busy) and
    ``stamp`` the time written on new locks and claim windows (default: ``at``). They
    differ only when late deadlines are caught up after a restart.

    ``freed`` lists the resources that just became free, when the caller knows them. If
    no pending reservation can use any of them, nothing can change, so the walk is skipped.
    """
    stamp = at if stamp is None else stamp
    pending = tx.pending_reservations()
    if freed is not None and not any(r.wants(f) for r in pending for f in freed):
        return []

    earmarks: dict[int, str] = {}
    fulfilled: list[Reservation] = []
    for reservation in pending:
        wanted = [r for r in tx.resources_with_tags(reservation.tags) if reservation.wants(r)]
        candidates = [
            resource
            for resource in wanted
            if resource.held_lock(at) is None
            and lockable_for(resource, at, reservation.ttl)
            and resource.id not in earmarks
        ]
        if len(candidates) >= reservation.quantity:
            fulfil(tx, stamp, limits, reservation, candidates[: reservation.quantity])
            fulfilled.append(reservation)
        elif end_if_hopeless(tx, at, reservation, wanted):
            continue
        elif limits.queue_policy is QueuePolicy.STRICT:
            # Keep what this reservation could use, so nothing younger takes it first.
            for resource in candidates:
                earmarks[resource.id] = reservation.id

    write_earmarks(tx, at, earmarks)
    return fulfilled


def end_if_hopeless(
    tx: Transaction, at: datetime, reservation: Reservation, wanted: list[Resource]
) -> bool:
    """End a reservation that cannot be served before its wait ends, saying why.

    Only known ends count: an unavailability with an ``until``, or a maintenance window,
    that lasts past the end of the wait. A resource out of rotation with no end in sight
    may come back at any moment, so it still counts as possible.
    """
    blocked = [r for r in wanted if blocked_past(r, at, reservation.expires_at)]
    possible = len(wanted) - len(blocked)
    if possible >= reservation.quantity:
        return False

    reasons = "; ".join(
        f"{r.name}: {unavailable.reason}"
        for r in blocked
        if (unavailable := r.unavailable_at(at)) is not None
    )
    end_reservation(
        tx,
        at,
        reservation,
        ReservationStatus.EXPIRED,
        f"can never be fulfilled before its wait ends at {reservation.expires_at.isoformat()}: "
        f"it needs {reservation.quantity}, and only {possible} of the resources it can use "
        f"will be available by then ({reasons})",
    )
    return True


def blocked_past(resource: Resource, at: datetime, instant: datetime) -> bool:
    """Tell whether ``resource`` is known to stay unavailable from ``at`` past ``instant``.

    A return exactly at ``instant`` still counts as in time: deadlines of resources are
    applied before those of reservations due at the same instant.
    """
    current = resource.unavailability
    if current is not None and current.until is not None:
        if current.active_at(at) and current.until > instant:
            return True
    return any(w.start <= at and w.end > instant for w in resource.windows)


def write_earmarks(tx: Transaction, at: datetime, earmarks: dict[int, str]) -> None:
    """Set ``reserved_for`` to match ``earmarks`` on every resource whose value changes."""
    previous = {resource.id for resource in tx.reserved_resources()}
    for resource_id in sorted(previous | earmarks.keys()):
        resource = tx.resource(resource_id)
        if resource is None:
            continue
        wanted = earmarks.get(resource_id)
        if resource.reserved_for == wanted:
            continue

        resource.reserved_for = wanted
        tx.put_resource(resource)
        tx.emit(Event(events.RESOURCE_RESERVED, at, resource_id=resource_id, reservation_id=wanted))


def fulfil(
    tx: Transaction,
    now: datetime,
    limits: Limits,
    reservation: Reservation,
    resources: list[Resource],
) -> None:
    """Lock ``resources`` for ``reservation`` and open its claim window."""
    locks = [
        grant_lock(tx, resource, now, reservation.ttl, reservation.holder, reservation.id)
        for resource in resources
    ]

    reservation.status = ReservationStatus.FULFILLED
    reservation.fulfilled_at = now
    reservation.claim_expires_at = now + timedelta(seconds=limits.claim_window)
    reservation.resource_ids = [resource.id for resource in resources]
    reservation.lock_tokens = [lock.token for lock in locks]
    tx.put_reservation(reservation)
    tx.emit(
        Event(
            events.RESERVATION_FULFILLED,
            now,
            reservation_id=reservation.id,
            data={
                "resource_ids": reservation.resource_ids,
                "claim_expires_at": reservation.claim_expires_at.isoformat(),
            },
            deadline=reservation.claim_expires_at,
        )
    )


def check_owner(reservation: Reservation, actor: Actor) -> None:
    if not actor.may_act_for(reservation.holder.token_name):
        raise NotYourReservation(reservation.id, reservation.holder.token_name)


def claim(
    tx: Transaction, now: datetime, reservation_id: str, actor: Actor = ANYONE
) -> Reservation:
    reservation = tx.reservation(reservation_id)
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    check_owner(reservation, actor)

    if reservation.status is ReservationStatus.EXPIRED and reservation.fulfilled_at is not None:
        assert reservation.claim_expires_at is not None
        raise ClaimWindowPassed(reservation_id, reservation.claim_expires_at)
    reservation = require_reservation(tx, reservation_id)

    if reservation.status is ReservationStatus.PENDING:
        position = queue_positions(tx.pending_reservations()).get(reservation_id)
        raise ReservationNotFulfilled(reservation_id, position)
    if reservation.status is not ReservationStatus.FULFILLED:
        raise ReservationNotClaimable(reservation_id, reservation.status.value)
    assert reservation.claim_expires_at is not None
    if reservation.claim_expires_at <= now:
        raise ClaimWindowPassed(reservation_id, reservation.claim_expires_at)
    check_locks_clear_of_windows(tx, now, reservation)

    reservation.status = ReservationStatus.CLAIMED
    reservation.claimed_at = now
    tx.put_reservation(reservation)
    tx.emit(Event(events.RESERVATION_CLAIMED, now, reservation_id=reservation_id))
    return reservation


def check_locks_clear_of_windows(tx: Transaction, now: datetime, reservation: Reservation) -> None:
    """Refuse a claim whose locks run into maintenance planned after the fulfilment."""
    for resource_id, token in zip(reservation.resource_ids, reservation.lock_tokens, strict=True):
        resource = tx.resource(resource_id)
        if resource is None or resource.lock is None or resource.lock.token != token:
            continue
        check_no_window(resource, now, resource.lock.expires_at, "a claim")


def cancel(
    tx: Transaction, now: datetime, limits: Limits, reservation_id: str, actor: Actor = ANYONE
) -> Reservation:
    """Take a pending reservation out of the queue (rentabot 1.0.0's DELETE)."""
    reservation = require_reservation(tx, reservation_id)
    check_owner(reservation, actor)
    if reservation.status is not ReservationStatus.PENDING:
        raise ReservationNotCancellable(reservation_id, reservation.status.value)

    end_reservation(
        tx, now, reservation, ReservationStatus.CANCELLED, "cancelled by its client with DELETE"
    )
    settle(tx, now, limits)
    return reservation


def release(
    tx: Transaction, now: datetime, limits: Limits, reservation_id: str, actor: Actor = ANYONE
) -> Reservation:
    """Give back everything a reservation holds, or leave the queue if it is still pending."""
    reservation = require_reservation(tx, reservation_id)
    check_owner(reservation, actor)
    if reservation.status is ReservationStatus.PENDING:
        end_reservation(
            tx, now, reservation, ReservationStatus.CANCELLED, "cancelled by its client (release)"
        )
        settle(tx, now, limits)
        return reservation

    freed = release_reservation_locks(tx, now, reservation, "released")
    end_reservation(tx, now, reservation, ReservationStatus.RELEASED, "released by its client")
    settle(tx, now, limits, freed=freed)
    return reservation


def release_reservation_locks(
    tx: Transaction, at: datetime, reservation: Reservation, reason: str
) -> list[Resource]:
    """Unlock each resource still locked by one of this reservation's tokens."""
    freed: list[Resource] = []
    for resource_id, token in zip(reservation.resource_ids, reservation.lock_tokens, strict=True):
        resource = tx.resource(resource_id)
        if resource is None or resource.lock is None or resource.lock.token != token:
            continue
        release_lock(tx, resource, at, reason)
        freed.append(resource)
    return freed


def end_reservation(
    tx: Transaction,
    at: datetime,
    reservation: Reservation,
    status: ReservationStatus,
    reason: str,
) -> None:
    reservation.status = status
    reservation.reason = reason
    reservation.ended_at = at
    tx.put_reservation(reservation)

    name = {
        ReservationStatus.EXPIRED: events.RESERVATION_EXPIRED,
        ReservationStatus.CANCELLED: events.RESERVATION_CANCELLED,
        ReservationStatus.RELEASED: events.RESERVATION_RELEASED,
    }[status]
    tx.emit(Event(name, at, reservation_id=reservation.id, data={"reason": reason}))


def note_lock_ended(tx: Transaction, at: datetime, reservation_id: str | None) -> None:
    """Mark a claimed reservation as finished once none of its locks is held any more."""
    if reservation_id is None:
        return
    reservation = tx.reservation(reservation_id)
    if reservation is None or reservation.status is not ReservationStatus.CLAIMED:
        return
    if reservation.ended_at is not None:
        return

    for resource_id, token in zip(reservation.resource_ids, reservation.lock_tokens, strict=True):
        resource = tx.resource(resource_id)
        if resource is not None and resource.lock is not None and resource.lock.token == token:
            return

    reservation.ended_at = at
    tx.put_reservation(reservation)
