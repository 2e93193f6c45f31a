"""Routes for reservations: queue, read, claim, cancel and release."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from rentabot.api.audit import request_audit
from rentabot.api.auth import Reader, User
from rentabot.api.deps import get_service
from rentabot.api.errors import error_responses
from rentabot.api.responses import FastJSONResponse
from rentabot.api.schemas import ReservationBody, ReservationListBody, ReservationRequest
from rentabot.api.views import reservation_body
from rentabot.service import LockService

router = APIRouter(prefix="/api/v1", tags=["reservations"])

Service = Annotated[LockService, Depends(get_service)]


@router.post(
    "/reservations",
    status_code=201,
    response_model=ReservationBody,
    responses=error_responses(400, 401, 403, 404, 422, 503),
)
async def create_reservation(
    body: ReservationRequest, request: Request, service: Service, actor: User
) -> Response:
    """Queue a request for ``quantity`` resources carrying all of ``tags``.

    The response describes the reservation as queued (status ``pending``). When enough
    resources are free it is fulfilled in the same transaction: GET it, then claim it
    within the claim window. 404 when no resource has the tags; 400 when too few could
    ever serve it.
    """
    reservation, position = await service.reserve(
        body.tags,
        body.quantity,
        body.ttl,
        body.max_wait_time,
        body.priority,
        actor.holder(body.locked_by_label),
        request_audit(request, actor, 201),
    )
    return FastJSONResponse(reservation_body(reservation, position, actor), status_code=201)


@router.get(
    "/reservations", response_model=ReservationListBody, responses=error_responses(401, 503)
)
async def list_reservations(service: Service, viewer: Reader) -> Response:
    """List pending, fulfilled and claimed reservations, oldest first.

    Pending ones carry ``position_in_queue``: priority first, then age.
    """
    listing = await service.list_reservations()
    ordered = sorted(listing.reservations, key=lambda reservation: reservation.sequence)
    bodies = [
        reservation_body(reservation, listing.positions.get(reservation.id), viewer)
        for reservation in ordered
    ]
    return FastJSONResponse({"reservations": bodies})


@router.get(
    "/reservations/{reservation_id}",
    response_model=ReservationBody,
    responses=error_responses(401, 404, 503),
)
async def get_reservation(reservation_id: str, service: Service, viewer: Reader) -> Response:
    """Read a reservation. An ended one returns 404 with its ``status`` and ``reason``."""
    reservation, position = await service.get_reservation(reservation_id)
    return FastJSONResponse(reservation_body(reservation, position, viewer))


@router.post(
    "/reservations/{reservation_id}/claim",
    response_model=ReservationBody,
    responses=error_responses(401, 403, 404, 409, 410, 503),
)
async def claim_reservation(
    reservation_id: str, request: Request, service: Service, actor: User
) -> Response:
    """Take a fulfilled reservation: its ``lock_tokens`` unlock each resource.

    409 while still pending or when already claimed; 410 once the claim window passed.
    """
    reservation = await service.claim(reservation_id, actor, request_audit(request, actor, 200))
    return FastJSONResponse(reservation_body(reservation, None, actor))


@router.delete(
    "/reservations/{reservation_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409, 503),
)
async def cancel_reservation(
    reservation_id: str, request: Request, service: Service, actor: User
) -> Response:
    """Cancel a pending reservation. 409 once fulfilled or claimed: use release instead."""
    await service.cancel(reservation_id, actor, request_audit(request, actor, 204))
    return Response(status_code=204)


@router.post(
    "/reservations/{reservation_id}/release",
    response_model=ReservationBody,
    responses=error_responses(401, 403, 404, 503),
)
async def release_reservation(
    reservation_id: str, request: Request, service: Service, actor: User
) -> Response:
    """Give back every resource a fulfilled or claimed reservation holds, in one step.

    A pending reservation is cancelled instead.
    """
    reservation = await service.release(reservation_id, actor, request_audit(request, actor, 200))
    return FastJSONResponse(reservation_body(reservation, None, actor))
