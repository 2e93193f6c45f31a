"""The in-memory store: the default, with nothing to set up and nothing kept on restart.

State lives in dictionaries owned by the event loop's thread. A transaction collects
its writes in an overlay and applies them on commit, so a failed request changes
nothing. Indexes keep the hot paths short: resources by tag in id order, the pending
queue in order, and heaps of deadlines.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol, TypeVar

from rentabot.domain.audit import AuditEntry, AuditQuery
from rentabot.domain.events import Event
from rentabot.domain.models import (
    ENDED_RESERVATION_STATUSES,
    Reservation,
    ReservationStatus,
    Resource,
)
from rentabot.domain.ports import Transaction
from rentabot.storage.base import Store
from rentabot.storage.snapshot import Snapshot

T = TypeVar("T")

AUDIT_KEPT_IN_MEMORY = 100_000


class MemoryState:
    """Committed state of the in-memory store, with its indexes."""

    def __init__(self, audit_kept: int = AUDIT_KEPT_IN_MEMORY) -> None:
        self.resources: dict[int, Resource] = {}
        self.ids_by_name: dict[str, int] = {}
        # Every name ever seen keeps its id, so a resource removed and added back gets it again.
        self.name_registry: dict[str, int] = {}
        self.next_resource_id = 1
        self.ids_by_tag: dict[str, list[int]] = {}
        self.reserved_ids: set[int] = set()

        self.reservations: dict[str, Reservation] = {}
        self.pending_order: list[tuple[int, int, str]] = []  # (-priority, sequence, id)
        self.active_ids: dict[str, None] = {}  # insertion-ordered set
        self.next_sequence = 1
        self.next_event_id = 1
        # The in-memory store keeps the latest entries only, so memory stays bounded.
        self.audit: deque[AuditEntry] = deque(maxlen=audit_kept)
        self.next_audit_id = 1

        # Deadline heaps; entries go stale when a lock or reservation changes, and are
        # skipped when read. The heaps are rebuilt when stale entries pile up.
        self.resource_deadlines: list[tuple[datetime, int]] = []
        self.reservation_deadlines: list[tuple[datetime, str]] = []

    # Index maintenance

    def index_resource(self, old: Resource | None, new: Resource | None) -> None:
        if old is not None and (new is None or old.tags != new.tags):
            for tag in old.tags:
                ids = self.ids_by_tag[tag]
                del ids[bisect.bisect_left(ids, old.id)]
                if not ids:
                    del self.ids_by_tag[tag]
        if new is not None and (old is None or old.tags != new.tags):
            for tag in new.tags:
                bisect.insort(self.ids_by_tag.setdefault(tag, []), new.id)

        if old is not None and old.name != (new.name if new else None):
            self.ids_by_name.pop(old.name, None)
        if new is not None:
            self.ids_by_name[new.name] = new.id

        resource_id = (new or old).id  # type: ignore[union-attr]
        if new is not None and new.reserved_for is not None:
            self.reserved_ids.add(resource_id)
        else:
            self.reserved_ids.discard(resource_id)

        if new is not None:
            deadline = new.next_deadline()
            if deadline is not None and (old is None or old.next_deadline() != deadline):
                heapq.heappush(self.resource_deadlines, (deadline, new.id))

    def index_reservation(self, old: Reservation | None, new: Reservation) -> None:
        was_pending = old is not None and old.status is ReservationStatus.PENDING
        is_pending = new.status is ReservationStatus.PENDING
        key = (-new.priority, new.sequence, new.id)
        if was_pending and not is_pending:
            del self.pending_order[bisect.bisect_left(self.pending_order, key)]
        elif is_pending and not was_pending:
            bisect.insort(self.pending_order, key)

        if is_active(new):
            self.active_ids[new.id] = None
        else:
            self.active_ids.pop(new.id, None)

        deadline = reservation_deadline(new)
        if deadline is not None and (old is None or reservation_deadline(old) != deadline):
            heapq.heappush(self.reservation_deadlines, (deadline, new.id))

    def compact_deadlines(self) -> None:
        """Rebuild a deadline heap once most of its entries are stale."""
        if len(self.resource_deadlines) > 2 * len(self.resources) + 1024:
            self.resource_deadlines = [
                (deadline, r.id)
                for r in self.resources.values()
                if (deadline := r.next_deadline()) is not None
            ]
            heapq.heapify(self.resource_deadlines)
        if len(self.reservation_deadlines) > 2 * len(self.active_ids) + 1024:
            self.reservation_deadlines = []
            for reservation_id in self.active_ids:
                deadline = reservation_deadline(self.reservations[reservation_id])
                if deadline is not None:
                    self.reservation_deadlines.append((deadline, reservation_id))
            heapq.heapify(self.reservation_deadlines)

    def next_deadline(self) -> datetime | None:
        lock_heap = self.resource_deadlines
        while lock_heap and not self.resource_deadline_stands(*lock_heap[0]):
            heapq.heappop(lock_heap)
        reservation_heap = self.reservation_deadlines
        while reservation_heap and not self.reservation_deadline_stands(*reservation_heap[0]):
            heapq.heappop(reservation_heap)

        candidates = [heap[0][0] for heap in (lock_heap, reservation_heap) if heap]
        return min(candidates) if candidates else None

    def resource_deadline_stands(self, at: datetime, resource_id: int) -> bool:
        resource = self.resources.get(resource_id)
        return resource is not None and resource.next_deadline() == at

    def reservation_deadline_stands(self, at: datetime, reservation_id: str) -> bool:
        reservation = self.reservations.get(reservation_id)
        return reservation is not None and reservation_deadline(reservation) == at


def is_active(reservation: Reservation) -> bool:
    if reservation.status in ENDED_RESERVATION_STATUSES:
        return False
    return reservation.ended_at is None


def reservation_deadline(reservation: Reservation) -> datetime | None:
    if reservation.status is ReservationStatus.PENDING:
        return reservation.expires_at
    if reservation.status is ReservationStatus.FULFILLED:
        return reservation.claim_expires_at
    return None


def heap_items_up_to(
    heap: Sequence[tuple[datetime, T]], limit: datetime
) -> list[tuple[datetime, T]]:
    """Return the heap entries with a time at or before ``limit``, without popping them."""
    found: list[tuple[datetime, T]] = []
    stack = [0] if heap else []
    while stack:
        index = stack.pop()
        entry = heap[index]
        if entry[0] > limit:
            continue  # Children of a later entry are later still.
        found.append(entry)
        stack.extend(child for child in (2 * index + 1, 2 * index + 2) if child < len(heap))
    return found


class MemoryTransaction:
    """A transaction over :class:`MemoryState`: reads see its own writes, commit applies them."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.resource_writes: dict[int, Resource | None] = {}
        self.reservation_writes: dict[str, Reservation] = {}
        self.reservation_deletes: set[str] = set()
        self.name_writes: dict[str, int] = {}
        self.events: list[Event] = []
        self.audit: list[AuditEntry] = []
        self.sequence = state.next_sequence
        self.next_resource_id = state.next_resource_id
        self.saved: tuple[dict[int, Resource | None], dict[str, Reservation], int, int] | None = (
            None
        )

    # Resources

    def _current(self, resource_id: int) -> Resource | None:
        if resource_id in self.resource_writes:
            return self.resource_writes[resource_id]
        return self.state.resources.get(resource_id)

    def resource(self, resource_id: int) -> Resource | None:
        resource = self._current(resource_id)
        return resource.clone() if resource is not None else None

    def resource_by_name(self, name: str) -> Resource | None:
        for written in self.resource_writes.values():
            if written is not None and written.name == name:
                return written.clone()
        resource_id = self.state.ids_by_name.get(name)
        if resource_id is None:
            return None
        return self.resource(resource_id)

    def resources(self) -> list[Resource]:
        ids = set(self.state.resources) | set(self.resource_writes)
        return self._clones(sorted(ids))

    def resources_with_tags(self, tags: Iterable[str]) -> list[Resource]:
        wanted = frozenset(tags)
        if not wanted:
            return self.resources()

        index = self.state.ids_by_tag
        smallest = min(wanted, key=lambda tag: len(index.get(tag, ())))
        ids: Iterable[int] = index.get(smallest, ())
        if self.resource_writes:
            ids = sorted(set(ids) | set(self.resource_writes))
        found = []
        for resource_id in ids:
            resource = self._current(resource_id)
            if resource is not None and wanted <= resource.tags:
                found.append(resource.clone())
        return found

    def iter_resources_with_tags(self, tags: Iterable[str]) -> Iterator[Resource]:
        wanted = frozenset(tags)
        if not wanted or self.resource_writes:
            yield from self.resources_with_tags(wanted)
            return
        index = self.state.ids_by_tag
        smallest = min(wanted, key=lambda tag: len(index.get(tag, ())))
        resources = self.state.resources
        for resource_id in index.get(smallest, ()):
            resource = resources.get(resource_id)
            if resource is not None and wanted <= resource.tags:
                yield resource.clone()

    def reserved_resources(self) -> list[Resource]:
        ids = set(self.state.reserved_ids) | set(self.resource_writes)
        return [r for r in self._clones(sorted(ids)) if r.reserved_for is not None]

    def _clones(self, ids: Iterable[int]) -> list[Resource]:
        found = []
        for resource_id in ids:
            resource = self._current(resource_id)
            if resource is not None:
                found.append(resource.clone())
        return found

    def put_resource(self, resource: Resource) -> None:
        self.resource_writes[resource.id] = resource.clone()

    def delete_resource(self, resource_id: int) -> None:
        self.resource_writes[resource_id] = None

    def id_for_name(self, name: str) -> int:
        known = self.name_writes.get(name, self.state.name_registry.get(name))
        if known is not None:
            return known
        resource_id = self.next_resource_id
        self.next_resource_id += 1
        self.name_writes[name] = resource_id
        return resource_id

    # Reservations

    def _current_reservation(self, reservation_id: str) -> Reservation | None:
        if reservation_id in self.reservation_writes:
            return self.reservation_writes[reservation_id]
        return self.state.reservations.get(reservation_id)

    def reservation(self, reservation_id: str) -> Reservation | None:
        reservation = self._current_reservation(reservation_id)
        return reservation.clone() if reservation is not None else None

    def pending_reservations(self) -> list[Reservation]:
        ids = [key[2] for key in self.state.pending_order]
        if self.reservation_writes:
            ids.extend(self.reservation_writes)
        found: dict[str, Reservation] = {}
        for reservation_id in ids:
            reservation = self._current_reservation(reservation_id)
            if reservation is not None and reservation.status is ReservationStatus.PENDING:
                found[reservation_id] = reservation
        return sorted((r.clone() for r in found.values()), key=Reservation.queue_key)

    def active_reservations(self) -> list[Reservation]:
        ids = list(self.state.active_ids)
        ids.extend(i for i in self.reservation_writes if i not in self.state.active_ids)
        found = []
        for reservation_id in ids:
            reservation = self._current_reservation(reservation_id)
            if reservation is not None and is_active(reservation):
                found.append(reservation.clone())
        return found

    def put_reservation(self, reservation: Reservation) -> None:
        self.reservation_writes[reservation.id] = reservation.clone()

    def next_sequence(self) -> int:
        value = self.sequence
        self.sequence += 1
        return value

    def purge_reservations(self, ended_before: datetime) -> int:
        doomed = [
            r.id
            for r in self.state.reservations.values()
            if not is_active(r) and r.ended_at is not None and r.ended_at < ended_before
        ]
        self.reservation_deletes.update(doomed)
        return len(doomed)

    # Deadlines

    def resources_due_by(self, instant: datetime) -> list[Resource]:
        found = {}
        candidates = [i for _, i in heap_items_up_to(self.state.resource_deadlines, instant)]
        candidates.extend(self.resource_writes)
        for resource_id in candidates:
            resource = self._current(resource_id)
            if resource is None:
                continue
            deadline = resource.next_deadline()
            if deadline is not None and deadline <= instant:
                found[resource_id] = resource.clone()
        return list(found.values())

    def reservations_due_by(self, instant: datetime) -> list[Reservation]:
        ids = {key for _, key in heap_items_up_to(self.state.reservation_deadlines, instant)}
        ids.update(self.reservation_writes)
        found = []
        for reservation_id in ids:
            reservation = self._current_reservation(reservation_id)
            if reservation is None:
                continue
            deadline = reservation_deadline(reservation)
            if deadline is not None and deadline <= instant:
                found.append(reservation.clone())
        return found

    # Audit log, events and partial rollback

    def add_audit(self, entry: AuditEntry) -> None:
        self.audit.append(entry)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def emitted(self) -> Sequence[Event]:
        return self.events

    def checkpoint(self) -> None:
        self.saved = (
            dict(self.resource_writes),
            dict(self.reservation_writes),
            len(self.events),
            len(self.audit),
        )

    def rollback_to_checkpoint(self) -> None:
        assert self.saved is not None, "rollback_to_checkpoint needs a checkpoint"
        resource_writes, reservation_writes, event_count, audit_count = self.saved
        self.resource_writes = dict(resource_writes)
        self.reservation_writes = dict(reservation_writes)
        del self.events[event_count:]
        del self.audit[audit_count:]

    # Commit

    def assign_event_ids(self) -> None:
        """Number the events and audit entries in order, following the last committed ones."""
        first = self.state.next_event_id
        self.events = [
            replace(event, id=first + offset) for offset, event in enumerate(self.events)
        ]
        first = self.state.next_audit_id
        self.audit = [replace(entry, id=first + offset) for offset, entry in enumerate(self.audit)]

    def commit(self) -> None:
        state = self.state
        for resource_id, written in self.resource_writes.items():
            old = state.resources.get(resource_id)
            if written is None:
                state.resources.pop(resource_id, None)
            else:
                state.resources[resource_id] = written
            if old is not None or written is not None:
                state.index_resource(old, written)

        for reservation_id, reservation in self.reservation_writes.items():
            old_reservation = state.reservations.get(reservation_id)
            state.reservations[reservation_id] = reservation
            state.index_reservation(old_reservation, reservation)

        for reservation_id in self.reservation_deletes:
            state.reservations.pop(reservation_id, None)

        state.name_registry.update(self.name_writes)
        state.next_resource_id = self.next_resource_id
        state.next_sequence = self.sequence
        if self.events:
            state.next_event_id = self.events[-1].id + 1
        if self.audit:
            state.audit.extend(self.audit)
            state.next_audit_id = self.audit[-1].id + 1
        state.compact_deadlines()


class Journal(Protocol):
    """Makes transactions durable; the in-memory state is the working copy."""

    def persist(self, tx: MemoryTransaction) -> None:
        """Write the transaction's changes durably now, or raise StoreUnavailable."""

    def stage(self, tx: MemoryTransaction) -> Awaitable[None]:
        """Queue the changes for the next group commit; the awaitable ends once they are durable."""


class MemoryStore(Store):
    """Keeps everything in this process; the default store.

    With a ``journal``, every transaction is written there before it takes effect
    here, which is how the SQLite store keeps state across restarts.
    """

    kind = "memory"

    def __init__(self, journal: Journal | None = None) -> None:
        self.state = MemoryState()
        self.journal = journal
        # The service runs transactions on the event loop, one at a time; the CLI and
        # tests may call write_now from other threads, hence the lock.
        self._mutex = threading.RLock()

    async def write(self, operation: Callable[[Transaction], T]) -> T:
        if self.journal is None:
            return self.write_now(operation)

        # Group commit: the change takes effect in memory now, so the next request reads it,
        # and this request returns only once the journal has made it durable.
        with self._mutex:
            tx = MemoryTransaction(self.state)
            result = operation(tx)
            tx.assign_event_ids()
            durable = self.journal.stage(tx)
            tx.commit()
        await durable
        return result

    async def read(self, operation: Callable[[Transaction], T]) -> T:
        with self._mutex:
            return operation(MemoryTransaction(self.state))

    def write_now(self, operation: Callable[[Transaction], T]) -> T:
        with self._mutex:
            tx = MemoryTransaction(self.state)
            result = operation(tx)
            tx.assign_event_ids()
            if self.journal is not None:
                self.journal.persist(tx)
            tx.commit()
            return result

    async def next_deadline(self) -> datetime | None:
        with self._mutex:
            return self.state.next_deadline()

    async def snapshot(self) -> Snapshot:
        with self._mutex:
            return snapshot_of(self.state)

    async def restore(self, snapshot: Snapshot) -> None:
        with self._mutex:
            self.state = state_from(snapshot, first_event_id=self.state.next_event_id)

    async def audit_log(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        with self._mutex:
            matching = [entry for entry in reversed(self.state.audit) if query.matches(entry)]
        return matching[query.offset : query.offset + query.limit], len(matching)

    async def ping(self) -> None:
        return None


def snapshot_of(state: MemoryState) -> Snapshot:
    return Snapshot(
        resources=[state.resources[i].clone() for i in sorted(state.resources)],
        reservations=sorted(
            (r.clone() for r in state.reservations.values()), key=lambda r: r.sequence
        ),
        names=dict(state.name_registry),
        last_resource_id=state.next_resource_id - 1,
        last_sequence=state.next_sequence - 1,
        audit=list(state.audit),
    )


def state_from(
    snapshot: Snapshot,
    first_event_id: int = 1,
    audit_kept: int = AUDIT_KEPT_IN_MEMORY,
    last_audit_id: int = 0,
) -> MemoryState:
    """Build a state with its indexes from a snapshot."""
    state = MemoryState(audit_kept)
    tx = MemoryTransaction(state)
    for resource in snapshot.resources:
        tx.put_resource(resource)
    for reservation in snapshot.reservations:
        tx.put_reservation(reservation)
    tx.name_writes.update(snapshot.names)
    tx.next_resource_id = snapshot.last_resource_id + 1
    tx.sequence = snapshot.last_sequence + 1
    tx.commit()
    state.next_event_id = first_event_id
    state.audit.extend(snapshot.audit)
    state.next_audit_id = max([last_audit_id, *(entry.id for entry in snapshot.audit)]) + 1
    return state
