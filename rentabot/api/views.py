"""Turn domain objects into response dictionaries with rentabot 1.0.0's keys.

Built by hand rather than through Pydantic models because these run on every request
and the lock route is the service's hot path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rentabot.domain.models import (
    Actor,
    Lock,
    MaintenanceWindow,
    Reservation,
    Resource,
    ResourceStatus,
)


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def lock_details(resource: Resource, status: ResourceStatus, lock: Lock | None) -> str:
    # The first two strings are rentabot 1.0.0's, which some clients compare against.
    if status is ResourceStatus.AVAILABLE:
        return "Resource is available"
    if status is ResourceStatus.RESERVED:
        return f"Resource reserved for reservation {resource.reserved_for}"
    if status is ResourceStatus.UNAVAILABLE:
        return "Resource unavailable"
    if lock is not None and lock.reservation_id:
        return f"Resource locked (reservation {lock.reservation_id})"
    return "Resource locked"


def may_see(viewer: Actor | None, token_name: str | None) -> bool:
    """Tell whether ``viewer`` may see secrets (lock tokens) created under ``token_name``.

    With authentication off (``viewer`` None or not authenticated) everyone may, as in
    rentabot 1.0.0; with it on, only the same token and administrators.
    """
    return viewer is None or viewer.may_act_for(token_name)


def resource_body(resource: Resource, now: datetime, viewer: Actor | None = None) -> dict[str, Any]:
    lock = resource.held_lock(now)
    status = resource.status(now)
    holder = lock.holder if lock is not None else None
    away = resource.unavailable_at(now)
    shown_token = lock.token if lock is not None and may_see(viewer, lock.holder.token_name) else ""
    return {
        "id": resource.id,
        "name": resource.name,
        "description": resource.description,
        "lock-token": shown_token,
        "lock-details": lock_details(resource, status, lock),
        "endpoint": resource.endpoint,
        "tags": resource.tags_text,
        "lock-acquired-at": instant(lock.acquired_at) if lock is not None else None,
        "lock-expires-at": instant(lock.expires_at) if lock is not None else None,
        "max-lock-duration": resource.max_lock_duration,
        "status": status.value,
        "locked_by_label": holder.label if holder is not None else None,
        "locked_by_ip": holder.ip if holder is not None else None,
        "locked_by_token": holder.token_name if holder is not None else None,
        "fencing_token": lock.fencing_token if lock is not None else None,
        "reserved_for": resource.reserved_for if lock is None else None,
        "unavailable": away is not None,
        "unavailable_reason": away.reason if away else None,
        "unavailable_since": instant(away.since) if away else None,
        "unavailable_until": instant(away.until) if away else None,
        "unavailable_source": away.source.value if away else None,
        "maintenance_windows": [
            window_body(window) for window in resource.windows if window.end > now
        ],
    }


def window_body(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "start": instant(window.start),
        "end": instant(window.end),
        "reason": window.reason,
        "from_descriptor": window.from_descriptor,
    }


def lock_body(resource: Resource, lock: Lock) -> dict[str, Any]:
    return {
        "message": "Resource locked",
        "lock-token": lock.token,
        "resource": resource_body(resource, lock.acquired_at),
        "locked-at": instant(lock.acquired_at),
        "expires-at": instant(lock.expires_at),
        "fencing_token": lock.fencing_token,
    }


def reservation_body(
    reservation: Reservation, position: int | None, viewer: Actor | None = None
) -> dict[str, Any]:
    tokens = reservation.lock_tokens if may_see(viewer, reservation.holder.token_name) else []
    return {
        "reservation_id": reservation.id,
        "status": reservation.status.value,
        "tags": list(reservation.tags),
        "quantity": reservation.quantity,
        "ttl": reservation.ttl,
        "max_wait_time": reservation.max_wait_time,
        "priority": reservation.priority,
        "position_in_queue": position,
        "created_at": instant(reservation.created_at),
        "expires_at": instant(reservation.expires_at),
        "fulfilled_at": instant(reservation.fulfilled_at),
        "claim_expires_at": instant(reservation.claim_expires_at),
        "claimed_at": instant(reservation.claimed_at),
        "resource_ids": list(reservation.resource_ids),
        "lock_tokens": list(tokens),
        "locked_by_label": reservation.holder.label,
        "locked_by_ip": reservation.holder.ip,
        "locked_by_token": reservation.holder.token_name,
        "reason": reservation.reason,
    }
