"""Liveness and readiness probes for load balancers and Kubernetes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from rentabot.api.deps import get_service
from rentabot.api.errors import error_responses
from rentabot.api.responses import FastJSONResponse
from rentabot.api.schemas import HealthBody, ReadinessBody
from rentabot.service import LockService
from rentabot.storage.base import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthBody)
async def health() -> Response:
    """Return 200 while the process runs."""
    return FastJSONResponse({"status": "ok"})


@router.get("/readiness", response_model=ReadinessBody, responses=error_responses(503))
async def readiness(service: Annotated[LockService, Depends(get_service)]) -> Response:
    """Return 200 when the store can serve requests, 503 while it cannot."""
    try:
        await service.store.ping()
    except StoreUnavailable as error:
        return FastJSONResponse(
            {
                "message": f"not ready: the {service.store.kind} store is unavailable ({error})",
                "status": "unavailable",
                "store": service.store.kind,
            },
            status_code=503,
        )
    return FastJSONResponse({"status": "ready", "store": service.store.kind})
