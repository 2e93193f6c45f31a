"""Dependencies shared by the routes."""

from __future__ import annotations

from fastapi import Request

from rentabot.domain.models import Holder
from rentabot.service import LockService


async def get_service(request: Request) -> LockService:
    # Async on purpose: FastAPI runs plain-function dependencies in a thread pool.
    service: LockService = request.app.state.service
    return service


def holder_of(request: Request, label: str | None) -> Holder:
    """Describe the client: its label and its IP (a trusted proxy's header, else the peer)."""
    client = request.client
    return Holder(label=label or None, ip=client.host if client is not None else None)
