"""Dependencies shared by the routes."""

from __future__ import annotations

from fastapi import Request

from rentabot.service import LockService


async def get_service(request: Request) -> LockService:
    # Async on purpose: FastAPI runs plain-function dependencies in a thread pool.
    service: LockService = request.app.state.service
    return service
