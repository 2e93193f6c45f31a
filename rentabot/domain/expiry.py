"""Deadlines: lock expiry, the end of a reservation's wait and of a claim window, and the
end of an unavailability and the start and end of a maintenance window.

Each deadline takes effect at its exact instant. The timer calls :func:`process_due`
when the next deadline arrives, and every write transaction calls it first as well,
so no request acts on a state that should already have changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rentabot.domain.availability import apply_availability_deadlines
from rentabot.domain.limits import Limits
from rentabot.domain.locking import release_lock
from rentabot.domain.models import ReservationStatus, Resource
from rentabot.domain.ports import Transaction
from rentabot.domain.queue import (
    end_reservation,
    note_lock_ended,
    release_reservation_locks,
    settle,
)


@dataclass(frozen=True, slots=True, order=True)
class Deadline:
    at: datetime
    # At one instant, resources come first, then claim windows, then waits (RESOURCE,
    # CLAIM, WAIT): a lock that ends exactly when a wait ends, by expiry or by a lapsed
    # claim window, can still serve that reservation.
    rank: int
    key: str


RESOURCE, CLAIM, WAIT = 0, 1, 2


def due_deadlines(tx: Transaction, now: datetime) -> list[Deadline]:
    found: list[Deadline] = []
    for resource in tx.resources_due_by(now):
        deadline = resource.next_deadline()
        assert deadline is not None
        found.append(Deadline(deadline, RESOURCE, str(resource.id)))

    for reservation in tx.reservations_due_by(now):
        if reservation.status is ReservationStatus.PENDING:
            found.append(Deadline(reservation.expires_at, WAIT, reservation.id))
        elif reservation.claim_expires_at is not None:
            found.append(Deadline(reservation.claim_expires_at, CLAIM, reservation.id))
    return sorted(found)


def process_due(tx: Transaction, now: datetime, limits: Limits) -> int:
    """Apply every deadline at or before ``now`` in time order; return how many were applied.

    Each deadline is applied at its own instant, so the queue is matched against the
    state of that instant. New locks and claim windows are stamped ``now``, because a
    client can only see them from now on (this matters after the service was down).
    """
    applied = 0
    while True:
        deadlines = due_deadlines(tx, now)
        if not deadlines:
            return applied

        for group in group_deadlines(deadlines):
            collect_again = apply_deadlines(tx, now, limits, group)
            applied += len(group)
            if collect_again:
                # New or later deadlines may now be due: collect them again, in time order.
                break


def group_deadlines(deadlines: list[Deadline]) -> list[list[Deadline]]:
    """Split sorted deadlines into groups applied together.

    The resource deadlines of one instant form one group, so that every resource that
    changes at that instant has changed before the queue is matched. Otherwise the queue
    could lock a resource whose own expiry or return at that instant was not recorded
    yet. Each reservation deadline is a group of its own.
    """
    groups: list[list[Deadline]] = []
    for deadline in deadlines:
        if groups and joins(groups[-1][-1], deadline):
            groups[-1].append(deadline)
        else:
            groups.append([deadline])
    return groups


def joins(previous: Deadline, deadline: Deadline) -> bool:
    """Tell whether ``deadline`` is applied in the same group as ``previous``."""
    same_instant = previous.at == deadline.at
    return same_instant and previous.rank == RESOURCE and deadline.rank == RESOURCE


def apply_deadlines(tx: Transaction, now: datetime, limits: Limits, group: list[Deadline]) -> bool:
    """Apply one group of deadlines, skipping any whose resource or reservation changed.

    Returns True when the deadlines must be collected again: a reservation was fulfilled
    (new locks and claim windows), or a resource has a further deadline already due.
    """
    first = group[0]
    if first.rank != RESOURCE:
        return expire_reservation(tx, now, limits, first.key, first.at)
    return apply_resource_deadlines(tx, now, limits, [int(d.key) for d in group], first.at)


def apply_resource_deadlines(
    tx: Transaction, now: datetime, limits: Limits, resource_ids: list[int], at: datetime
) -> bool:
    changed: list[Resource] = []
    freed: list[Resource] = []
    for resource_id in resource_ids:
        resource = tx.resource(resource_id)
        if resource is None or resource.next_deadline() != at:
            continue  # Changed since the deadline was read.
        changed.append(resource)
        if apply_resource_changes(tx, resource, at) and not resource.retired:
            freed.append(resource)

    fulfilled = settle(tx, at, limits, freed=freed, stamp=now) if freed else []
    if fulfilled:
        return True
    for resource in changed:
        later = resource.next_deadline()
        if not resource.retired and later is not None and later <= now:
            return True
    return False


def apply_resource_changes(tx: Transaction, resource: Resource, at: datetime) -> bool:
    """End the lock and apply the availability changes of ``resource`` due at ``at``.

    Returns True when the resource may have become lockable.
    """
    freed = False
    lock = resource.lock
    if lock is not None and lock.expires_at <= at:
        release_lock(tx, resource, at, "expired")
        note_lock_ended(tx, at, lock.reservation_id)
        freed = True
        if resource.retired:
            return False  # Removed from the descriptor: deleted with its lock.
    if apply_availability_deadlines(tx, resource, at):
        freed = True
    return freed


def expire_reservation(
    tx: Transaction, now: datetime, limits: Limits, reservation_id: str, at: datetime
) -> bool:
    reservation = tx.reservation(reservation_id)
    if reservation is None:
        return False

    if reservation.status is ReservationStatus.PENDING and reservation.expires_at == at:
        reason = (
            f"not fulfilled within max_wait_time={reservation.max_wait_time} s "
            f"(the wait ended at {at.isoformat()}); create a new reservation"
        )
        end_reservation(tx, at, reservation, ReservationStatus.EXPIRED, reason)
        return bool(settle(tx, at, limits, stamp=now))

    if reservation.status is ReservationStatus.FULFILLED and reservation.claim_expires_at == at:
        reason = (
            f"not claimed within the claim window of {limits.claim_window} s "
            f"(it ended at {at.isoformat()}); its resources were released"
        )
        freed = release_reservation_locks(tx, at, reservation, "claim window passed")
        end_reservation(tx, at, reservation, ReservationStatus.EXPIRED, reason)
        return bool(settle(tx, at, limits, freed=freed, stamp=now))

    return False
