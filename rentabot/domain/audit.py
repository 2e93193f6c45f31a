"""The audit log: who did what to which resource or reservation, when, and the outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rentabot.domain import events
from rentabot.domain.events import Event
from rentabot.domain.models import SYSTEM_ACTOR, Actor

# Events the service causes by itself; each gets an audit entry with the role "system".
AUTOMATIC_EVENTS = frozenset(
    {events.LOCK_EXPIRED, events.RESERVATION_FULFILLED, events.RESERVATION_EXPIRED}
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited operation.

    ``operation`` is the HTTP method and route template of a request (for example
    ``POST /api/v1/resources/{resource_id}/lock``) or the name of an automatic event.
    ``status`` is the HTTP status the client received, None for automatic events.
    ``outcome`` is "ok" or the name of the error.
    """

    at: datetime
    operation: str
    outcome: str
    status: int | None = None
    resource_id: int | None = None
    reservation_id: str | None = None
    token_name: str | None = None
    role: str = "anonymous"
    ip: str | None = None
    detail: str | None = None
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as JSON-ready values: the audit API's body and the backup's."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "operation": self.operation,
            "outcome": self.outcome,
            "status": self.status,
            "resource_id": self.resource_id,
            "reservation_id": self.reservation_id,
            "token_name": self.token_name,
            "role": self.role,
            "ip": self.ip,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of the audit log; entries come newest first."""

    resource_id: int | None = None
    reservation_id: str | None = None
    token_name: str | None = None
    operation: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    offset: int = 0
    limit: int = 100

    def matches(self, entry: AuditEntry) -> bool:
        checks = (
            self.resource_id is None or entry.resource_id == self.resource_id,
            self.reservation_id is None or entry.reservation_id == self.reservation_id,
            self.token_name is None or entry.token_name == self.token_name,
            self.operation is None or entry.operation == self.operation,
            self.since is None or entry.at >= self.since,
            self.until is None or entry.at < self.until,
        )
        return all(checks)


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """The description of a request that the API passes to the service for its audit entry."""

    operation: str
    actor: Actor
    success_status: int
    resource_id: int | None = None
    reservation_id: str | None = None

    def entry(
        self,
        at: datetime,
        status: int,
        outcome: str,
        resource_id: int | None = None,
        reservation_id: str | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            at=at,
            operation=self.operation,
            outcome=outcome,
            status=status,
            resource_id=self.resource_id if self.resource_id is not None else resource_id,
            reservation_id=self.reservation_id or reservation_id,
            token_name=self.actor.token_name,
            role=self.actor.role.value,
            ip=self.actor.ip,
            detail=detail,
        )


def automatic_entries(emitted: list[Event] | tuple[Event, ...]) -> list[AuditEntry]:
    """Return an entry for each event the service caused by itself."""
    return [
        AuditEntry(
            at=event.at,
            operation=event.name,
            outcome="ok",
            resource_id=event.resource_id,
            reservation_id=event.reservation_id,
            role=SYSTEM_ACTOR.role.value,
            detail=str(event.data.get("reason")) if event.data.get("reason") else None,
        )
        for event in emitted
        if event.name in AUTOMATIC_EVENTS
    ]
