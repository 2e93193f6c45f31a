"""Authentication: the caller's role from its API key, and the checks routes depend on.

Keys come in the ``X-API-Key`` header or as ``Authorization: Bearer KEY``. With
authentication off every caller acts as an administrator, as rentabot 1.0.0 allowed,
except that the routes replacing the whole state accept only clients on this host.
A mutating request from a web page of another site (its ``Origin`` header) is
rejected unless that origin is allowed, so a page elsewhere cannot drive the API
through a visitor's browser.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rentabot.config.auth import AuthConfig
from rentabot.domain.errors import AdminOnly, NotAuthenticated, OriginRejected
from rentabot.domain.models import Actor, Role

LOOPBACK = frozenset({"127.0.0.1", "::1"})

# Declared for the OpenAPI document, so /docs offers an Authorize button; the keys are
# read by Authenticator below, which also accepts requests without any.
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API token")
bearer_scheme = HTTPBearer(auto_error=False, description="API token as a bearer token")


class Authenticator:
    """Turns request headers into an Actor, following one AuthConfig."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def actor(self, headers: Iterable[tuple[bytes, bytes]], ip: str | None) -> Actor:
        """Return the caller; raise NotAuthenticated for a key that matches no token."""
        if not self.config.enabled:
            return Actor(role=Role.ADMIN, ip=ip, authenticated=False)

        key = presented_key(headers)
        if key is None:
            return Actor(role=Role.ANONYMOUS, ip=ip, authenticated=True)
        entry = self.config.identify(key)
        if entry is None:
            raise NotAuthenticated(presented=True)
        return Actor(role=entry.role, token_name=entry.name, ip=ip, authenticated=True)

    def check_origin(self, headers: Iterable[tuple[bytes, bytes]], scheme: str) -> None:
        """Reject a browser request sent by a page of another site."""
        origin = header(headers, b"origin")
        if origin is None:
            return  # Not a browser page: scripts and CI jobs send no Origin.
        host = header(headers, b"host")
        own = f"{scheme}://{host}".lower() if host else None
        if origin.lower() == own or origin.lower() in self.config.allowed_origins:
            return
        raise OriginRejected(origin)


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").strip()
    return None


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Return the key from X-API-Key, else from Authorization: Bearer, else None."""
    key = header(headers, b"x-api-key")
    if key:
        return key
    authorization = header(headers, b"authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def authenticator_of(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


async def current_actor(
    request: Request,
    _key: Annotated[str | None, Depends(api_key_scheme)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Actor:
    """Return the caller of this request; async, so FastAPI keeps it off worker threads."""
    client = request.client
    return authenticator_of(request).actor(
        request.scope["headers"], client.host if client is not None else None
    )


Caller = Annotated[Actor, Depends(current_actor)]


async def reader(request: Request, actor: Caller) -> Actor:
    """Let anyone read, unless auth.protect_reads requires a key."""
    if authenticator_of(request).config.protect_reads:
        require_role(actor, Role.USER, "reading")
    return actor


async def user(request: Request, actor: Caller) -> Actor:
    """Let users and administrators change state; check the Origin of browser requests."""
    authenticator_of(request).check_origin(request.scope["headers"], request.url.scheme)
    require_role(actor, Role.USER, "this request")
    return actor


async def admin(request: Request, actor: Caller) -> Actor:
    """Let only administrators through."""
    if request.method not in ("GET", "HEAD"):
        authenticator_of(request).check_origin(request.scope["headers"], request.url.scheme)
    require_role(actor, Role.ADMIN, f"{request.method} {request.url.path}")
    return actor


async def state_admin(request: Request, actor: Annotated[Actor, Depends(admin)]) -> Actor:
    """Let through an administrator, and with authentication off a client on this host.

    These routes return every lock token or replace the whole state, so with
    authentication off they must not be open to the whole network.
    """
    if not actor.authenticated and actor.ip not in LOOPBACK:
        raise AdminOnly(
            "with authentication off, the backup, restore and import routes accept only "
            f"clients on the service's own host (this request came from {actor.ip}); run the "
            "command on that host, or turn authentication on and use the admin token"
        )
    return actor


def require_role(actor: Actor, role: Role, action: str) -> None:
    if actor.role is Role.ADMIN or actor.role is role:
        return
    if actor.role is Role.ANONYMOUS:
        raise NotAuthenticated(presented=False)
    raise AdminOnly.for_role(action, actor.token_name)


Reader = Annotated[Actor, Depends(reader)]
User = Annotated[Actor, Depends(user)]
Admin = Annotated[Actor, Depends(admin)]
StateAdmin = Annotated[Actor, Depends(state_admin)]
