"""Routes for resources: list, read, lock, unlock and extend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from starlette.responses import Response

from rentabot.api.audit import request_audit
from rentabot.api.auth import Reader, User
from rentabot.api.deps import get_service
from rentabot.api.errors import error_responses
from rentabot.api.responses import FastJSONResponse, json_list_response
from rentabot.api.schemas import (
    ExtendBody,
    LockBody,
    LockRequest,
    MessageBody,
    ResourceEnvelope,
    ResourceListBody,
)
from rentabot.api.views import instant, lock_body, resource_body
from rentabot.domain.models import ResourceStatus, Role
from rentabot.service import LockService

router = APIRouter(prefix="/api/v1", tags=["resources"])


def split_tags(entries: list[str] | None) -> list[str]:
    """Read tag parameters, each one tag or several separated by commas."""
    return [part.strip() for entry in entries or [] for part in entry.split(",") if part.strip()]


def is_available(status: ResourceStatus) -> bool:
    return status is ResourceStatus.AVAILABLE


Service = Annotated[LockService, Depends(get_service)]
ResourceId = Annotated[
    int, Path(description="Resource id, as listed by GET /api/v1/resources.", examples=[1])
]
OptionalLockBody = Annotated[LockRequest | None, Body()]


@router.get("/resources", response_model=ResourceListBody, responses=error_responses(401, 503))
async def list_resources(
    service: Service,
    viewer: Reader,
    available: Annotated[
        bool | None,
        Query(description="true: only resources that can be locked now; false: the others."),
    ] = None,
    tag: Annotated[
        list[str] | None, Query(description="Only resources carrying all these tags.")
    ] = None,
) -> Response:
    """List every resource with its lock state, optionally filtered.

    With no filter the response is rentabot 1.0.0's: every resource, in id order.
    """
    listing = await service.list_resources()
    wanted = frozenset(split_tags(tag))
    selected = [
        resource
        for resource in listing.resources
        if resource.has_tags(wanted)
        and (available is None or is_available(resource.status(listing.now)) == available)
    ]
    return json_list_response(
        "resources", selected, lambda resource: resource_body(resource, listing.now, viewer)
    )


@router.get(
    "/resources/{resource_id}",
    response_model=ResourceEnvelope,
    responses=error_responses(401, 404, 422, 503),
)
async def get_resource(resource_id: ResourceId, service: Service, viewer: Reader) -> Response:
    """Read one resource."""
    now, resource = await service.get_resource(resource_id)
    return FastJSONResponse({"resource": resource_body(resource, now, viewer)})


@router.post(
    "/resources/lock",
    response_model=LockBody,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def lock_by_criteria(
    request: Request,
    service: Service,
    actor: User,
    body: OptionalLockBody = None,
    id: Annotated[int | None, Query(description="Lock this resource id.")] = None,
    name: Annotated[str | None, Query(description="Lock the resource with this name.")] = None,
    tag: Annotated[
        list[str] | None,
        Query(description="Lock the first free resource carrying all these tags (repeatable)."),
    ] = None,
) -> Response:
    """Lock one resource chosen by id, else by name, else by tags.

    With tags, the first free resource in id order that carries all of them is locked.
    """
    tags = split_tags(tag)
    # rentabot 1.0.0 reads id=0 as no id at all; ids start at 1, so nothing is lost.
    resource_id = id or None
    ttl, label = (body.ttl, body.locked_by_label) if body is not None else (None, None)
    resource, lock = await service.lock_matching(
        resource_id,
        name,
        tags or None,
        ttl,
        actor.holder(label),
        request_audit(request, actor, 200),
    )
    return FastJSONResponse(lock_body(resource, lock))


@router.post(
    "/resources/{resource_id}/lock",
    response_model=LockBody,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def lock_resource(
    resource_id: ResourceId,
    request: Request,
    service: Service,
    actor: User,
    body: OptionalLockBody = None,
) -> Response:
    """Lock a resource for ``ttl`` seconds and return the lock token needed to unlock it.

    403 when it is locked, or kept for a pending reservation ahead in the queue.
    """
    ttl, label = (body.ttl, body.locked_by_label) if body is not None else (None, None)
    resource, lock = await service.lock(
        resource_id, ttl, actor.holder(label), request_audit(request, actor, 200)
    )
    return FastJSONResponse(lock_body(resource, lock))


@router.post(
    "/resources/{resource_id}/unlock",
    response_model=MessageBody,
    responses=error_responses(401, 403, 404, 422, 503),
)
async def unlock_resource(
    resource_id: ResourceId,
    request: Request,
    service: Service,
    actor: User,
    lock_token: Annotated[
        str | None, Query(alias="lock-token", description="The token returned by the lock.")
    ] = None,
) -> Response:
    """Release a lock. A reservation waiting for the resource is fulfilled in this request.

    With authentication on, an administrator may leave out the lock-token to force the
    unlock of someone else's lock.
    """
    audit = request_audit(request, actor, 200)
    if lock_token is None and actor.authenticated and actor.role is Role.ADMIN:
        await service.force_unlock(resource_id, audit)
        return FastJSONResponse({"message": "Resource unlocked by an administrator"})
    await service.unlock(resource_id, lock_token, audit)
    return FastJSONResponse({"message": "Resource unlocked"})


@router.post(
    "/resources/{resource_id}/extend",
    response_model=ExtendBody,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def extend_lock(
    resource_id: ResourceId,
    request: Request,
    service: Service,
    actor: User,
    lock_token: Annotated[str, Query(alias="lock-token")],
    additional_ttl: Annotated[
        int,
        Query(
            alias="additional-ttl",
            ge=1,
            description="The lock then lasts at least this many seconds from now.",
        ),
    ],
) -> Response:
    """Renew a lock: it then expires at the later of its current expiry and now + additional-ttl.

    An extension never shortens a lock. 400 when the total would pass max-lock-duration.
    """
    resource, total = await service.extend(
        resource_id, lock_token, additional_ttl, request_audit(request, actor, 200)
    )
    lock = resource.lock
    assert lock is not None
    return FastJSONResponse(
        {
            "message": "Lock extended",
            "new-expires-at": instant(lock.expires_at),
            "total-lock-duration": total,
            "fencing_token": lock.fencing_token,
        }
    )
