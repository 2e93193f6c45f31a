"""Queries shared by the SQL stores."""

from __future__ import annotations

from sqlalchemy import Connection, false, func, select

from rentabot.domain.audit import AuditEntry, AuditQuery
from rentabot.storage.sql.rows import audit_from_row, storable_id, storable_text
from rentabot.storage.sql.schema import audit


def query_audit(connection: Connection, query: AuditQuery) -> tuple[list[AuditEntry], int]:
    """Return the audit entries matching ``query``, newest first, and the number matching."""
    conditions = []
    if query.resource_id is not None:
        # An id the column cannot hold matches nothing, and comparing it would fail.
        matches = storable_id(query.resource_id)
        conditions.append(audit.c.resource_id == query.resource_id if matches else false())
    # Text with NUL matches nothing, and PostgreSQL would refuse to compare it.
    for column, value in (
        (audit.c.reservation_id, query.reservation_id),
        (audit.c.token_name, query.token_name),
        (audit.c.operation, query.operation),
    ):
        if value is not None:
            conditions.append(column == value if storable_text(value) else false())
    if query.since is not None:
        conditions.append(audit.c.at >= query.since)
    if query.until is not None:
        conditions.append(audit.c.at < query.until)

    total = connection.execute(select(func.count()).select_from(audit).where(*conditions)).scalar()
    rows = connection.execute(
        select(audit)
        .where(*conditions)
        .order_by(audit.c.id.desc())
        .offset(query.offset)
        .limit(query.limit)
    ).mappings()
    return [audit_from_row(row) for row in rows], int(total or 0)
