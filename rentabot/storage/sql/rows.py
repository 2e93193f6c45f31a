"""Conversion between domain objects and rows of the SQL tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping

from rentabot.domain.audit import AuditEntry
from rentabot.domain.events import Event
from rentabot.domain.models import (
    EndedLock,
    Holder,
    Lock,
    MaintenanceWindow,
    Reservation,
    ReservationStatus,
    Resource,
    Unavailability,
    UnavailabilitySource,
    parse_tags,
)
from rentabot.storage.columns import ID_LENGTH, MAX_INTEGER

# SQLAlchemy result rows, or plain dictionaries with the same keys.
RowLike = RowMapping | Mapping[str, Any]


def resource_to_row(resource: Resource) -> dict[str, Any]:
    lock = resource.lock
    ended = resource.last_expired_lock
    away = resource.unavailability
    return {
        "id": resource.id,
        "name": resource.name,
        "description": resource.description,
        "endpoint": resource.endpoint,
        "tags_text": resource.tags_text,
        "max_lock_duration": resource.max_lock_duration,
        "retired": resource.retired,
        "last_fencing_token": resource.last_fencing_token,
        "reserved_for": resource.reserved_for,
        "lock_token": lock.token if lock else None,
        "lock_acquired_at": lock.acquired_at if lock else None,
        "lock_expires_at": lock.expires_at if lock else None,
        "lock_fencing_token": lock.fencing_token if lock else None,
        "lock_label": lock.holder.label if lock else None,
        "lock_ip": lock.holder.ip if lock else None,
        "lock_token_name": lock.holder.token_name if lock else None,
        "lock_reservation_id": lock.reservation_id if lock else None,
        "expired_acquired_at": ended.acquired_at if ended else None,
        "expired_at": ended.expired_at if ended else None,
        "expired_fencing_token": ended.fencing_token if ended else None,
        "expired_label": ended.holder.label if ended else None,
        "expired_ip": ended.holder.ip if ended else None,
        "expired_token_name": ended.holder.token_name if ended else None,
        "unavailable_reason": away.reason if away else None,
        "unavailable_since": away.since if away else None,
        "unavailable_until": away.until if away else None,
        "unavailable_source": away.source.value if away else None,
        "maintenance_windows": windows_to_json(resource.windows),
        "next_deadline": resource.next_deadline(),
    }


def resource_from_row(row: RowLike) -> Resource:
    lock = None
    if row["lock_token"] is not None:
        lock = Lock(
            token=row["lock_token"],
            acquired_at=row["lock_acquired_at"],
            expires_at=row["lock_expires_at"],
            fencing_token=row["lock_fencing_token"],
            holder=Holder(row["lock_label"], row["lock_ip"], row["lock_token_name"]),
            reservation_id=row["lock_reservation_id"],
        )
    ended = None
    if row["expired_at"] is not None:
        ended = EndedLock(
            acquired_at=row["expired_acquired_at"],
            expired_at=row["expired_at"],
            fencing_token=row["expired_fencing_token"],
            holder=Holder(row["expired_label"], row["expired_ip"], row["expired_token_name"]),
        )
    return Resource(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        endpoint=row["endpoint"],
        tags_text=row["tags_text"],
        tags=parse_tags(row["tags_text"]),
        max_lock_duration=row["max_lock_duration"],
        lock=lock,
        last_fencing_token=row["last_fencing_token"],
        reserved_for=row["reserved_for"],
        last_expired_lock=ended,
        retired=bool(row["retired"]),
        unavailability=None
        if row["unavailable_reason"] is None
        else Unavailability(
            reason=row["unavailable_reason"],
            since=row["unavailable_since"],
            until=row["unavailable_until"],
            source=UnavailabilitySource(row["unavailable_source"]),
        ),
        windows=windows_from_json(row["maintenance_windows"]),
    )


def reservation_to_row(reservation: Reservation) -> dict[str, Any]:
    deadline = None
    if reservation.status is ReservationStatus.PENDING:
        deadline = reservation.expires_at
    elif reservation.status is ReservationStatus.FULFILLED:
        deadline = reservation.claim_expires_at
    return {
        "id": reservation.id,
        "tags": json.dumps(list(reservation.tags)),
        "quantity": reservation.quantity,
        "ttl": reservation.ttl,
        "max_wait_time": reservation.max_wait_time,
        "priority": reservation.priority,
        "sequence": reservation.sequence,
        "status": reservation.status.value,
        "created_at": reservation.created_at,
        "expires_at": reservation.expires_at,
        "label": reservation.holder.label,
        "ip": reservation.holder.ip,
        "token_name": reservation.holder.token_name,
        "fulfilled_at": reservation.fulfilled_at,
        "claim_expires_at": reservation.claim_expires_at,
        "claimed_at": reservation.claimed_at,
        "ended_at": reservation.ended_at,
        "reason": reservation.reason,
        "resource_ids": json.dumps(reservation.resource_ids),
        "lock_tokens": json.dumps(reservation.lock_tokens),
        "deadline": deadline,
    }


def reservation_from_row(row: RowLike) -> Reservation:
    return Reservation(
        id=row["id"],
        tags=tuple(json.loads(row["tags"])),
        quantity=row["quantity"],
        ttl=row["ttl"],
        max_wait_time=row["max_wait_time"],
        priority=row["priority"],
        sequence=row["sequence"],
        status=ReservationStatus(row["status"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        holder=Holder(row["label"], row["ip"], row["token_name"]),
        fulfilled_at=row["fulfilled_at"],
        claim_expires_at=row["claim_expires_at"],
        claimed_at=row["claimed_at"],
        ended_at=row["ended_at"],
        reason=row["reason"],
        resource_ids=list(json.loads(row["resource_ids"])),
        lock_tokens=list(json.loads(row["lock_tokens"])),
    )


def event_from_row(row: RowLike) -> Event:
    return Event(
        name=row["name"],
        at=row["at"],
        resource_id=row["resource_id"],
        reservation_id=row["reservation_id"],
        data=json.loads(row["data"]),
        id=int(row["id"]),
    )


def storable_id(value: int | None) -> bool:
    """Tell whether an INTEGER id column can hold ``value``."""
    return value is not None and 0 <= value <= MAX_INTEGER


def storable_key(value: str | None) -> bool:
    """Tell whether a string id column can hold ``value``."""
    return value is not None and len(value) <= ID_LENGTH and storable_text(value)


def storable_text(value: str) -> bool:
    """Tell whether a text column can hold ``value``: PostgreSQL text cannot hold NUL.

    A request can name anything, yet no stored name, tag or id contains NUL, so a value
    with one matches nothing and is not sent to the database at all.
    """
    return "\x00" not in value


def escape_nul(value: str | None) -> str | None:
    """Return ``value`` with each NUL written as the four characters ``\\x00``."""
    return value.replace("\x00", "\\x00") if value is not None else None


def audit_to_row(entry: AuditEntry) -> dict[str, Any]:
    row = {
        "at": entry.at,
        "operation": entry.operation,
        "outcome": entry.outcome,
        "status": entry.status,
        # A request may name an id that cannot exist. Its entry keeps the refusal, and
        # the id, which no column could hold, stays in the detail message.
        "resource_id": entry.resource_id if storable_id(entry.resource_id) else None,
        "reservation_id": entry.reservation_id if storable_key(entry.reservation_id) else None,
        "token_name": entry.token_name,
        "role": entry.role,
        "ip": entry.ip,
        "detail": escape_nul(entry.detail),
    }
    if entry.id:
        row["id"] = entry.id
    return row


def audit_from_row(row: RowLike) -> AuditEntry:
    return AuditEntry(
        at=row["at"],
        operation=row["operation"],
        outcome=row["outcome"],
        status=row["status"],
        resource_id=row["resource_id"],
        reservation_id=row["reservation_id"],
        token_name=row["token_name"],
        role=row["role"],
        ip=row["ip"],
        detail=row["detail"],
        id=int(row["id"]),
    )


def windows_to_json(windows: tuple[MaintenanceWindow, ...]) -> str:
    if not windows:
        return "[]"  # Nearly every resource, on every write: skip the encoder.
    return json.dumps(
        [
            {
                "id": w.id,
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "reason": w.reason,
                "from_descriptor": w.from_descriptor,
                "started": w.started,
            }
            for w in windows
        ],
        separators=(",", ":"),
    )


def windows_from_json(text: str | None) -> tuple[MaintenanceWindow, ...]:
    if not text or text == "[]":
        return ()
    return tuple(
        MaintenanceWindow(
            id=item["id"],
            start=datetime.fromisoformat(item["start"]),
            end=datetime.fromisoformat(item["end"]),
            reason=item["reason"],
            from_descriptor=bool(item.get("from_descriptor", False)),
            started=bool(item.get("started", False)),
        )
        for item in json.loads(text or "[]")
    )
