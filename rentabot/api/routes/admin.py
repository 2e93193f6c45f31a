"""Administration: the whole state as a snapshot (backup and restore), and descriptor import.

These routes let ``rentabot backup``, ``restore`` and ``import`` reach a running
service, which is the only way to reach the in-memory store. They replace state
wholesale, so they are open only to administrators.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from rentabot.api.audit import request_audit
from rentabot.api.auth import StateAdmin
from rentabot.api.deps import get_service
from rentabot.api.errors import error_responses
from rentabot.api.responses import FastJSONResponse
from rentabot.clock import utc_now
from rentabot.config.descriptor import DescriptorError, parse_descriptor
from rentabot.service import LockService
from rentabot.storage.snapshot import Snapshot, SnapshotError

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Service = Annotated[LockService, Depends(get_service)]

SNAPSHOT_BODY = {
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}
}
DESCRIPTOR_BODY = {"content": {"application/yaml": {"schema": {"type": "string"}}}}


class RestoreBody(BaseModel):
    message: str
    resources: int
    reservations: int


class ImportBody(BaseModel):
    message: str
    added: int
    updated: int
    removed: int
    retired: int


@router.get(
    "/snapshot",
    responses={200: SNAPSHOT_BODY, **error_responses(401, 403, 503)},
    response_class=Response,
)
async def get_snapshot(service: Service, _admin: StateAdmin) -> Response:
    """Return the whole state as a portable snapshot (what ``rentabot backup`` saves)."""
    snapshot = await service.snapshot()
    return Response(snapshot.to_json(utc_now()), media_type="application/json")


@router.put(
    "/snapshot",
    response_model=RestoreBody,
    openapi_extra={"requestBody": {"required": True, **SNAPSHOT_BODY}},
    responses=error_responses(401, 403, 422, 503),
)
async def put_snapshot(request: Request, service: Service, actor: StateAdmin) -> Response:
    """Replace the whole state by a snapshot (what ``rentabot restore`` loads)."""
    body = await request.body()
    try:
        snapshot = Snapshot.from_json(body.decode("utf-8", errors="replace"), "request body")
    except SnapshotError as error:
        await service.record_audit(
            request_audit(request, actor, 200), 422, "SnapshotError", str(error)
        )
        return FastJSONResponse({"message": str(error)}, status_code=422)

    await service.restore(snapshot)
    await service.record_audit(request_audit(request, actor, 200), 200, "ok", None)
    return FastJSONResponse(
        {
            "message": "State restored from the snapshot",
            "resources": len(snapshot.resources),
            "reservations": len(snapshot.reservations),
        }
    )


@router.put(
    "/resources",
    response_model=ImportBody,
    openapi_extra={"requestBody": {"required": True, **DESCRIPTOR_BODY}},
    responses=error_responses(401, 403, 422, 503),
)
async def put_resources(request: Request, service: Service, actor: StateAdmin) -> Response:
    """Make the resources match a descriptor (YAML), by name, as at start-up.

    New names are added, changed fields updated, and resources no longer declared are
    removed (once unlocked, if locked).
    """
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        specs = parse_descriptor(text, "request body", max_ttl=service.limits.max_ttl)
    except DescriptorError as error:
        await service.record_audit(
            request_audit(request, actor, 200), 422, "DescriptorError", str(error)
        )
        return FastJSONResponse({"message": str(error)}, status_code=422)

    counts = await service.sync_resources(specs, request_audit(request, actor, 200))
    return FastJSONResponse({"message": "Resources synchronised with the descriptor", **counts})
