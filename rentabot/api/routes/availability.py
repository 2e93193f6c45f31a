"""Routes that take resources out of rotation and back: by hand, and maintenance windows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from rentabot.api.audit import request_audit
from rentabot.api.auth import Admin, Reader
from rentabot.api.deps import get_service
from rentabot.api.errors import error_responses
from rentabot.api.responses import FastJSONResponse
from rentabot.api.schemas import (
    ResourceEnvelope,
    UnavailableRequest,
    WindowBody,
    WindowListBody,
    WindowRequest,
)
from rentabot.api.views import resource_body, window_body
from rentabot.service import LockService

router = APIRouter(prefix="/api/v1/resources", tags=["availability"])

Service = Annotated[LockService, Depends(get_service)]
ResourceId = Annotated[
    int, Path(description="Resource id, as listed by GET /api/v1/resources.", examples=[1])
]


@router.post(
    "/{resource_id}/unavailable",
    response_model=ResourceEnvelope,
    responses=error_responses(400, 401, 403, 404, 422, 503),
)
async def mark_unavailable(
    resource_id: ResourceId,
    body: UnavailableRequest,
    request: Request,
    service: Service,
    actor: Admin,
) -> Response:
    """Take a resource out of rotation (admin): no new locks, skipped by tags and the queue.

    A lock already held runs to its expiry and may be unlocked but not extended. With
    ``until`` the resource returns by itself at that instant; 400 if it has passed.
    Calling it again replaces the reason and ``until``.
    """
    now, resource = await service.mark_unavailable(
        resource_id, body.reason, body.until, audit=request_audit(request, actor, 200)
    )
    return FastJSONResponse({"resource": resource_body(resource, now, actor)})


@router.post(
    "/{resource_id}/available",
    response_model=ResourceEnvelope,
    responses=error_responses(401, 403, 404, 503),
)
async def mark_available(
    resource_id: ResourceId, request: Request, service: Service, actor: Admin
) -> Response:
    """Bring a resource back into rotation (admin); waiting reservations are served at once.

    Maintenance windows stay: delete one to end it early.
    """
    now, resource = await service.mark_available(
        resource_id, audit=request_audit(request, actor, 200)
    )
    return FastJSONResponse({"resource": resource_body(resource, now, actor)})


@router.get(
    "/{resource_id}/maintenance",
    response_model=WindowListBody,
    responses=error_responses(401, 404, 422, 503),
)
async def list_windows(resource_id: ResourceId, service: Service, _viewer: Reader) -> Response:
    """List the current and planned maintenance windows of a resource."""
    now, resource = await service.get_resource(resource_id)
    windows = [window_body(window) for window in resource.windows if window.end > now]
    return FastJSONResponse({"windows": windows})


@router.post(
    "/{resource_id}/maintenance",
    status_code=201,
    response_model=WindowBody,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def add_window(
    resource_id: ResourceId,
    body: WindowRequest,
    request: Request,
    service: Service,
    actor: Admin,
) -> Response:
    """Schedule maintenance (admin): the resource is unavailable from start to end.

    Locks, extensions and claims that would run into the window are refused with 409
    naming it, so no job is cut off by planned work. 409 if it overlaps another window.
    """
    window = await service.add_window(
        resource_id, body.start, body.end, body.reason, request_audit(request, actor, 201)
    )
    return FastJSONResponse(window_body(window), status_code=201)


@router.delete(
    "/{resource_id}/maintenance/{window_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def remove_window(
    resource_id: ResourceId,
    window_id: str,
    request: Request,
    service: Service,
    actor: Admin,
) -> Response:
    """Delete a maintenance window (admin); one under way ends at once.

    409 for a window the descriptor declares: remove it there.
    """
    await service.remove_window(resource_id, window_id, request_audit(request, actor, 204))
    return Response(status_code=204)
