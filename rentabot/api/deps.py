"""Dependencies shared by the routes."""

from __future__ import annotations

from fastapi import Request

from rentabot.domain.errors import AdminOnly
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


LOOPBACK = frozenset({"127.0.0.1", "::1"})


async def require_admin(request: Request) -> None:
    """Let only administrators through.

    Until authentication exists, an administrator is a client on this host: the
    admin routes replace state wholesale and must not be open to the whole network.
    """
    client = request.client
    if client is None or client.host not in LOOPBACK:
        host = client.host if client is not None else "unknown"
        raise AdminOnly(
            f"the admin routes accept only clients on the service's own host while "
            f"authentication is off (this request came from {host}); run the command "
            "on that host"
        )
