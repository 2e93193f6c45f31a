"""The audit log over HTTP, and the audit description of each request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BeforeValidator
from starlette.responses import Response

from rentabot.api.auth import Admin
from rentabot.api.deps import get_service
from rentabot.api.errors import error_responses
from rentabot.api.responses import FastJSONResponse
from rentabot.api.schemas import AuditPageBody, StorableDatetime
from rentabot.domain.audit import AuditQuery, AuditRequest
from rentabot.domain.models import Actor
from rentabot.service import LockService

router = APIRouter(prefix="/api/v1", tags=["audit"])

MAX_PAGE_SIZE = 1000


def iso_8601(value: object) -> object:
    # Pydantic would also read a number as a Unix time; the API promises ISO 8601 only.
    if isinstance(value, str):
        datetime.fromisoformat(value)
    return value


Instant = Annotated[StorableDatetime, BeforeValidator(iso_8601)]


def request_audit(request: Request, actor: Actor, success_status: int) -> AuditRequest:
    """Describe this request for the audit log: method and route template, caller, targets."""
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    parameters = request.path_params
    # A request refused for a malformed id (/resources/abc) still gets its entry.
    resource_id = str(parameters.get("resource_id", ""))
    return AuditRequest(
        operation=f"{request.method} {template}",
        actor=actor,
        success_status=success_status,
        resource_id=int(resource_id) if resource_id.isdecimal() else None,
        reservation_id=parameters.get("reservation_id"),
    )


@router.get("/audit", response_model=AuditPageBody, responses=error_responses(401, 403, 422, 503))
async def read_audit_log(
    _admin: Admin,
    service: Annotated[LockService, Depends(get_service)],
    resource_id: int | None = None,
    reservation_id: str | None = None,
    token_name: str | None = None,
    operation: Annotated[
        str | None,
        Query(description="Exact operation, e.g. 'POST /api/v1/resources/{resource_id}/lock'."),
    ] = None,
    since: Annotated[
        Instant | None, Query(description="Entries at or after, ISO 8601 with offset.")
    ] = None,
    until: Annotated[
        Instant | None, Query(description="Entries before, ISO 8601 with offset.")
    ] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
) -> Response:
    """Read the audit log, newest first (administrators only).

    Every request that changes state is there, refused ones included, with the time,
    the operation, its targets, the token name, role and IP, and the HTTP status. So are
    the service's own actions: lock expiry, reservation fulfilment and expiry.
    """
    query = AuditQuery(
        resource_id=resource_id,
        reservation_id=reservation_id,
        token_name=token_name,
        operation=operation,
        since=since,
        until=until,
        offset=(page - 1) * limit,
        limit=limit,
    )
    entries, total = await service.audit_log(query)
    return FastJSONResponse(
        {
            "entries": [entry.to_dict() for entry in entries],
            "total": total,
            "page": page,
            "limit": limit,
        }
    )
