"""The storage interface the rules run on: one transaction of one store.

A store opens a :class:`Transaction`, the rules read and write domain objects through
it, and the store commits everything at once or nothing. Objects returned by a
transaction are copies: changes count only once written back with ``put_*``.
Writers are serialised by the store, so the rules never see a half-done change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from rentabot.domain.audit import AuditEntry
from rentabot.domain.events import Event
from rentabot.domain.models import Reservation, Resource


class Transaction(Protocol):
    # Resources
    def resource(self, resource_id: int) -> Resource | None: ...
    def resource_by_name(self, name: str) -> Resource | None: ...
    def resources(self) -> list[Resource]:
        """Return every resource in id order."""
        ...

    def resources_with_tags(self, tags: Iterable[str]) -> list[Resource]:
        """Return the resources carrying all of ``tags``, in id order."""
        ...

    def iter_resources_with_tags(self, tags: Iterable[str]) -> Iterator[Resource]:
        """Yield the resources carrying all of ``tags`` in id order, reading them lazily."""
        ...

    def reserved_resources(self) -> list[Resource]:
        """Return the resources whose ``reserved_for`` is set."""
        ...

    def put_resource(self, resource: Resource) -> None: ...
    def delete_resource(self, resource_id: int) -> None: ...
    def id_for_name(self, name: str) -> int:
        """Return the id this name had before, or a new one; ids are never reused."""
        ...

    # Reservations
    def reservation(self, reservation_id: str) -> Reservation | None: ...
    def pending_reservations(self) -> list[Reservation]:
        """Return the pending reservations in queue order."""
        ...

    def active_reservations(self) -> list[Reservation]:
        """Return pending, fulfilled and claimed reservations that have not ended."""
        ...

    def put_reservation(self, reservation: Reservation) -> None: ...
    def next_sequence(self) -> int:
        """Return a number larger than any earlier one, to order the queue."""
        ...

    def purge_reservations(self, ended_before: datetime) -> int:
        """Delete ended reservations whose end is older than ``ended_before``."""
        ...

    # Deadlines
    def resources_due_by(self, instant: datetime) -> list[Resource]:
        """Return resources whose ``next_deadline()`` is at or before ``instant``."""
        ...

    def reservations_due_by(self, instant: datetime) -> list[Reservation]:
        """Return pending ones whose wait ends, and fulfilled ones whose claim window ends."""
        ...

    # Audit log
    def add_audit(self, entry: AuditEntry) -> None: ...

    # Events
    def emit(self, event: Event) -> None: ...
    def emitted(self) -> Sequence[Event]:
        """Return the events of this transaction; after commit they carry their ids."""
        ...

    # Partial rollback
    def checkpoint(self) -> None:
        """Remember the current state of the transaction."""
        ...

    def rollback_to_checkpoint(self) -> None:
        """Undo every write and event since the last checkpoint."""
        ...
