"""Read a whole SQL store into a snapshot, and turn a snapshot into rows to insert."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func, select

from rentabot.storage.snapshot import Snapshot
from rentabot.storage.sql.rows import (
    audit_from_row,
    audit_to_row,
    reservation_from_row,
    reservation_to_row,
    resource_from_row,
    resource_to_row,
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

RESOURCE_ID_COUNTER = "resource_id"
SEQUENCE_COUNTER = "reservation_sequence"

# Tables in the order rows are inserted; deleting goes the other way (tags need resources).
STATE_TABLES = (resources, resource_tags, resource_names, reservations, counters, audit)


def read_snapshot(connection: Connection, with_audit: bool = True) -> tuple[Snapshot, int, int]:
    """Return the stored state and the ids of the last stored event and audit entry.

    Without ``with_audit`` the snapshot leaves the audit log out, which may be large.
    """
    snapshot = Snapshot(
        resources=[
            resource_from_row(row)
            for row in connection.execute(select(resources).order_by(resources.c.id)).mappings()
        ],
        reservations=[
            reservation_from_row(row)
            for row in connection.execute(
                select(reservations).order_by(reservations.c.sequence)
            ).mappings()
        ],
        names={row.name: row.id for row in connection.execute(select(resource_names))},
    )
    if with_audit:
        snapshot.audit = [
            audit_from_row(row)
            for row in connection.execute(select(audit).order_by(audit.c.id)).mappings()
        ]
    counter_values = {row.name: row.value for row in connection.execute(select(counters))}
    snapshot.last_resource_id = int(counter_values.get(RESOURCE_ID_COUNTER, 0))
    snapshot.last_sequence = int(counter_values.get(SEQUENCE_COUNTER, 0))
    last_event = connection.execute(select(func.max(events.c.id))).scalar()
    last_audit = connection.execute(select(func.max(audit.c.id))).scalar()
    return snapshot, int(last_event or 0), int(last_audit or 0)


def snapshot_rows(snapshot: Snapshot) -> list[tuple[Table, list[dict[str, Any]]]]:
    """Return the rows that represent ``snapshot``, table by table, in insertion order."""
    tags = [
        {"resource_id": resource.id, "tag": tag}
        for resource in snapshot.resources
        for tag in sorted(resource.tags)
    ]
    counter_rows = [
        {"name": RESOURCE_ID_COUNTER, "value": snapshot.last_resource_id},
        {"name": SEQUENCE_COUNTER, "value": snapshot.last_sequence},
    ]
    return [
        (resources, [resource_to_row(resource) for resource in snapshot.resources]),
        (resource_tags, tags),
        (resource_names, [{"name": n, "id": i} for n, i in sorted(snapshot.names.items())]),
        (reservations, [reservation_to_row(r) for r in snapshot.reservations]),
        (counters, counter_rows),
        (audit, [audit_to_row(entry) for entry in snapshot.audit]),
    ]
