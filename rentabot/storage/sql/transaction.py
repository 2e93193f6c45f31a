"""One SQL transaction behind the domain's ``Transaction`` interface.

Writes go to the database as soon as they are made, so later queries in the same
transaction read them. A small cache of rows read saves repeated SELECTs of one
resource. Audit entries and events are only added, never read back in a transaction,
so they wait in memory and :func:`flush` inserts those of several transactions
sharing one connection in one statement per table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import (
    Connection,
    RowMapping,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from rentabot.domain.audit import AuditEntry
from rentabot.domain.events import Event
from rentabot.domain.models import Reservation, ReservationStatus, Resource
from rentabot.storage.sql.rows import (
    audit_to_row,
    reservation_from_row,
    reservation_to_row,
    resource_from_row,
    resource_to_row,
    storable_id,
    storable_text,
)
from rentabot.storage.sql.schema import (
    audit,
    counters,
    events,
    reservations,
    resource_names,
    resource_tags,
    resources,
)

# Statements are built once with bind parameters: building them per call, with the values
# inline, cost more than running them.
SELECT_RESOURCE = select(resources).where(resources.c.id == bindparam("resource_id"))
INSERT_RESOURCE = insert(resources)
UPDATE_RESOURCE = (
    update(resources)
    .where(resources.c.id == bindparam("target_id"))
    .values({column.name: bindparam(column.name) for column in resources.c if column.name != "id"})
)
SELECT_RESERVATION = select(reservations).where(reservations.c.id == bindparam("reservation_id"))
INSERT_RESERVATION = insert(reservations)
UPDATE_RESERVATION = (
    update(reservations)
    .where(reservations.c.id == bindparam("target_id"))
    .values(
        {column.name: bindparam(column.name) for column in reservations.c if column.name != "id"}
    )
)
SELECT_PENDING = (
    select(reservations)
    .where(reservations.c.status == ReservationStatus.PENDING.value)
    .order_by(reservations.c.priority.desc(), reservations.c.sequence)
)
SELECT_COUNTER = select(counters.c.value).where(counters.c.name == bindparam("counter"))
UPDATE_COUNTER = (
    update(counters).where(counters.c.name == bindparam("counter")).values(value=bindparam("value"))
)
INSERT_AUDIT = insert(audit)
INSERT_EVENTS = insert(events).returning(events.c.id, sort_by_parameter_order=True)
# The earliest deadline of any kind, so that the common case, nothing due, costs one query.
SELECT_EARLIEST_DEADLINE = select(
    func.least(
        select(func.min(resources.c.next_deadline)).scalar_subquery(),
        select(func.min(reservations.c.deadline)).scalar_subquery(),
    )
)

SEQUENCE_COUNTER = "reservation_sequence"
RESOURCE_ID_COUNTER = "resource_id"
ACTIVE_STATUSES = (ReservationStatus.PENDING.value, ReservationStatus.FULFILLED.value)


class Unknown:
    """Marks a value that must be read again from the database."""


UNKNOWN = Unknown()


class SqlTransaction:
    def __init__(self, connection: Connection, read_only: bool = False) -> None:
        self.connection = connection
        self.read_only = read_only
        self.cache: dict[int, Resource | None] = {}
        self.events: list[Event] = []
        self.audit_rows: list[dict[str, object]] = []
        self.writes = 0
        self.has_checkpoint = False
        self.checkpoint_events = 0
        self.checkpoint_audit = 0
        # The earliest deadline as last read (None: there is none), or UNKNOWN after a write.
        self.earliest_deadline: datetime | Unknown | None = UNKNOWN

    # Resources

    def resource(self, resource_id: int) -> Resource | None:
        if not storable_id(resource_id):
            # A request can name any id; one the column cannot hold exists nowhere.
            return None
        if resource_id not in self.cache:
            row = (
                self.connection.execute(SELECT_RESOURCE, {"resource_id": resource_id})
                .mappings()
                .first()
            )
            self.cache[resource_id] = resource_from_row(row) if row is not None else None
        cached = self.cache[resource_id]
        return cached.clone() if cached is not None else None

    def resource_by_name(self, name: str) -> Resource | None:
        if not storable_text(name):
            return None
        rows = self.connection.execute(select(resources).where(resources.c.name == name))
        loaded = self._load(rows.mappings())
        return loaded[0] if loaded else None

    def resources(self) -> list[Resource]:
        rows = self.connection.execute(select(resources).order_by(resources.c.id))
        return self._load(rows.mappings())

    def resources_with_tags(self, tags: Iterable[str]) -> list[Resource]:
        wanted = sorted(set(tags))
        if not wanted:
            return self.resources()
        if not all(storable_text(tag) for tag in wanted):
            return []
        matching_ids = (
            select(resource_tags.c.resource_id)
            .where(resource_tags.c.tag.in_(wanted))
            .group_by(resource_tags.c.resource_id)
            .having(func.count() == len(wanted))
        )
        rows = self.connection.execute(
            select(resources).where(resources.c.id.in_(matching_ids)).order_by(resources.c.id)
        )
        return self._load(rows.mappings())

    def iter_resources_with_tags(self, tags: Iterable[str]) -> Iterator[Resource]:
        yield from self.resources_with_tags(tags)

    def reserved_resources(self) -> list[Resource]:
        rows = self.connection.execute(
            select(resources).where(resources.c.reserved_for.is_not(None)).order_by(resources.c.id)
        )
        return self._load(rows.mappings())

    def _load(self, rows: Iterable[RowMapping]) -> list[Resource]:
        loaded = []
        for row in rows:
            resource = resource_from_row(row)
            self.cache[resource.id] = resource
            loaded.append(resource.clone())
        return loaded

    def put_resource(self, resource: Resource) -> None:
        self.writes += 1
        self.earliest_deadline = UNKNOWN
        values = resource_to_row(resource)
        previous = self.resource(resource.id)
        if previous is None:
            self.connection.execute(INSERT_RESOURCE, values)
            self._write_tags(resource.id, resource.tags, frozenset())
        else:
            values["target_id"] = values.pop("id")
            self.connection.execute(UPDATE_RESOURCE, values)
            if previous.tags != resource.tags:
                self._write_tags(resource.id, resource.tags, previous.tags)
        self.cache[resource.id] = resource.clone()

    def _write_tags(self, resource_id: int, new: frozenset[str], old: frozenset[str]) -> None:
        removed = old - new
        if removed:
            self.connection.execute(
                delete(resource_tags).where(
                    resource_tags.c.resource_id == resource_id, resource_tags.c.tag.in_(removed)
                )
            )
        added = sorted(new - old)
        if added:
            self.connection.execute(
                insert(resource_tags), [{"resource_id": resource_id, "tag": tag} for tag in added]
            )

    def delete_resource(self, resource_id: int) -> None:
        self.writes += 1
        self.earliest_deadline = UNKNOWN
        self.connection.execute(
            delete(resource_tags).where(resource_tags.c.resource_id == resource_id)
        )
        self.connection.execute(delete(resources).where(resources.c.id == resource_id))
        self.cache[resource_id] = None

    def id_for_name(self, name: str) -> int:
        known = self.connection.execute(
            select(resource_names.c.id).where(resource_names.c.name == name)
        ).scalar()
        if known is not None:
            return int(known)
        resource_id = self._next_counter(RESOURCE_ID_COUNTER)
        self.connection.execute(insert(resource_names).values(name=name, id=resource_id))
        return resource_id

    # Reservations

    def reservation(self, reservation_id: str) -> Reservation | None:
        if not storable_text(reservation_id):
            return None
        row = (
            self.connection.execute(SELECT_RESERVATION, {"reservation_id": reservation_id})
            .mappings()
            .first()
        )
        return reservation_from_row(row) if row is not None else None

    def pending_reservations(self) -> list[Reservation]:
        rows = self.connection.execute(SELECT_PENDING).mappings()
        return [reservation_from_row(row) for row in rows]

    def active_reservations(self) -> list[Reservation]:
        rows = self.connection.execute(
            select(reservations)
            .where(
                or_(
                    reservations.c.status.in_(ACTIVE_STATUSES),
                    and_(
                        reservations.c.status == ReservationStatus.CLAIMED.value,
                        reservations.c.ended_at.is_(None),
                    ),
                )
            )
            .order_by(reservations.c.sequence)
        ).mappings()
        return [reservation_from_row(row) for row in rows]

    def put_reservation(self, reservation: Reservation) -> None:
        self.writes += 1
        self.earliest_deadline = UNKNOWN
        values = reservation_to_row(reservation)
        update_values = dict(values, target_id=values["id"])
        del update_values["id"]
        updated = self.connection.execute(UPDATE_RESERVATION, update_values)
        if updated.rowcount == 0:
            self.connection.execute(INSERT_RESERVATION, values)

    def next_sequence(self) -> int:
        return self._next_counter(SEQUENCE_COUNTER)

    def purge_reservations(self, ended_before: datetime) -> int:
        self.writes += 1
        self.earliest_deadline = UNKNOWN
        result = self.connection.execute(
            delete(reservations).where(
                reservations.c.ended_at.is_not(None),
                reservations.c.ended_at < ended_before,
                reservations.c.status != ReservationStatus.PENDING.value,
                reservations.c.status != ReservationStatus.FULFILLED.value,
            )
        )
        return int(result.rowcount or 0)

    def _next_counter(self, name: str) -> int:
        self.writes += 1
        self.earliest_deadline = UNKNOWN
        current = self.connection.execute(SELECT_COUNTER, {"counter": name}).scalar()
        if current is None:
            self.connection.execute(insert(counters), {"name": name, "value": 1})
            return 1
        self.connection.execute(UPDATE_COUNTER, {"counter": name, "value": current + 1})
        return int(current) + 1

    # Deadlines

    def resources_due_by(self, instant: datetime) -> list[Resource]:
        if self._nothing_due(instant):
            return []
        rows = self.connection.execute(
            select(resources)
            .where(resources.c.next_deadline <= instant)
            .order_by(resources.c.next_deadline, resources.c.id)
        )
        return self._load(rows.mappings())

    def reservations_due_by(self, instant: datetime) -> list[Reservation]:
        if self._nothing_due(instant):
            return []
        rows = self.connection.execute(
            select(reservations)
            .where(reservations.c.deadline <= instant)
            .order_by(reservations.c.deadline, reservations.c.sequence)
        ).mappings()
        return [reservation_from_row(row) for row in rows]

    def _nothing_due(self, instant: datetime) -> bool:
        """Tell whether no deadline is at or before ``instant``, asking once per state."""
        if isinstance(self.earliest_deadline, Unknown):
            self.earliest_deadline = self.connection.execute(SELECT_EARLIEST_DEADLINE).scalar()
        return self.earliest_deadline is None or self.earliest_deadline > instant

    # Audit log, events and partial rollback

    def add_audit(self, entry: AuditEntry) -> None:
        self.writes += 1
        self.audit_rows.append(audit_to_row(entry))

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def emitted(self) -> Sequence[Event]:
        return self.events

    def checkpoint(self) -> None:
        # A savepoint, not a full rollback, because the transaction goes on after a refused
        # command: its audit entry is written in it. PostgreSQL lets a savepoint name be
        # reused, and ROLLBACK TO goes back to the latest one, so none is released.
        self.checkpoint_events = len(self.events)
        self.checkpoint_audit = len(self.audit_rows)
        self.connection.exec_driver_sql("SAVEPOINT rentabot_checkpoint")
        self.has_checkpoint = True

    def rollback_to_checkpoint(self) -> None:
        assert self.has_checkpoint, "rollback_to_checkpoint needs a checkpoint"
        self.cache.clear()
        self.earliest_deadline = UNKNOWN
        del self.events[self.checkpoint_events :]
        del self.audit_rows[self.checkpoint_audit :]
        self.connection.exec_driver_sql("ROLLBACK TO SAVEPOINT rentabot_checkpoint")
        self.has_checkpoint = False


def flush(connection: Connection, transactions: Sequence[SqlTransaction]) -> None:
    """Insert the audit entries and events of ``transactions``, in order, then forget them.

    Events get their ids in emission order, transaction after transaction.
    """
    audit_rows = [row for tx in transactions for row in tx.audit_rows]
    if audit_rows:
        connection.execute(INSERT_AUDIT, audit_rows)
    event_rows = [
        {
            "name": event.name,
            "at": event.at,
            "resource_id": event.resource_id,
            "reservation_id": event.reservation_id,
            "data": json.dumps(event.data, separators=(",", ":")),
        }
        for tx in transactions
        for event in tx.events
    ]
    ids = iter(connection.execute(INSERT_EVENTS, event_rows).scalars().all() if event_rows else [])
    for tx in transactions:
        tx.audit_rows = []
        tx.events = [replace(event, id=int(next(ids))) for event in tx.events]
