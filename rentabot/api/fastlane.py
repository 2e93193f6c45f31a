"""A shortcut for the three hottest routes: lock, unlock and extend of a resource by id.

Pipelines call these far more than anything else, and FastAPI's routing and
dependency resolution cost more than the lock itself. This ASGI middleware handles
well-formed requests to those routes directly, through the same service and the same
response builders as the FastAPI routes in ``routes/resources.py``. Anything it
does not fully recognise (an unexpected query parameter or body key, a value of the
wrong type, another content type) goes on to FastAPI unchanged, so validation errors
and the OpenAPI document come from one place. So does every refusal by
authentication: a caller without the right role, a browser page of another site, and
an administrator's force unlock all go on to FastAPI too. ``tests/api/test_fastlane.py``
checks that both paths respond alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from rentabot.api.auth import Authenticator
from rentabot.api.errors import (
    log_rejection,
    log_store_unavailable,
    status_for,
    store_unavailable_payload,
)
from rentabot.api.views import instant, lock_body
from rentabot.domain.audit import AuditRequest
from rentabot.domain.errors import NotAuthenticated, OriginRejected, RentabotError
from rentabot.domain.models import Actor, Role
from rentabot.service import LockService
from rentabot.storage.base import StoreUnavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROUTE = re.compile(r"^/api/v1/resources/([1-9][0-9]{0,17})/(lock|unlock|extend)$")
DIGITS = re.compile(r"^[1-9][0-9]{0,17}$")
LOCK_BODY_KEYS = frozenset({"ttl", "locked_by_label"})
# The route templates these requests have in FastAPI, which the audit log records.
OPERATIONS = {
    action: f"POST /api/v1/resources/{{resource_id}}/{action}"
    for action in ("lock", "unlock", "extend")
}
MAX_LABEL = 256
JSON_HEADERS = [(b"content-type", b"application/json")]


class Decline(Exception):
    """The request is not a plain well-formed one; FastAPI handles it."""


class FastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = ROUTE.match(scope["path"])
        if match is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return

        body = await read_body(receive)
        if body is None:
            return
        try:
            status, payload = await self.handle(scope, int(match[1]), match[2], body)
        except Decline:
            await self.app(scope, replay(body, receive), send)
            return
        await respond(send, status, payload)

    async def handle(
        self, scope: Scope, resource_id: int, action: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        state = scope["app"].state
        service: LockService = state.service
        query = parse_query(scope.get("query_string", b""))
        actor = allowed_caller(state.authenticator, scope)
        audit = AuditRequest(OPERATIONS[action], actor, 200, resource_id)
        try:
            if action == "lock":
                return 200, await lock(service, scope, resource_id, query, body, actor, audit)
            if body:
                raise Decline()
            if action == "unlock":
                return 200, await unlock(service, resource_id, query, actor, audit)
            return 200, await extend(service, resource_id, query, audit)
        except RentabotError as error:
            status = status_for(error)
            log_rejection(scope["method"], scope["path"], status, error)
            return status, error.payload()
        except StoreUnavailable as error:
            log_store_unavailable(scope["method"], scope["path"], error)
            return 503, store_unavailable_payload(error)


def allowed_caller(authenticator: Authenticator, scope: Scope) -> Actor:
    """Return the caller if it may change state; decline anything FastAPI must refuse."""
    client = scope.get("client")
    headers = scope["headers"]
    try:
        actor = authenticator.actor(headers, client[0] if client else None)
        authenticator.check_origin(headers, scope.get("scheme", "http"))
    except (NotAuthenticated, OriginRejected):
        raise Decline() from None
    if actor.role not in (Role.USER, Role.ADMIN):
        raise Decline()
    return actor


async def lock(
    service: LockService,
    scope: Scope,
    resource_id: int,
    query: dict[str, str],
    body: bytes,
    actor: Actor,
    audit: AuditRequest,
) -> dict[str, Any]:
    if query:
        raise Decline()
    ttl, label = parse_lock_body(scope, body)
    resource, lock_ = await service.lock(resource_id, ttl, actor.holder(label), audit)
    return lock_body(resource, lock_)


async def unlock(
    service: LockService,
    resource_id: int,
    query: dict[str, str],
    actor: Actor,
    audit: AuditRequest,
) -> dict[str, Any]:
    if set(query) - {"lock-token"}:
        raise Decline()
    if "lock-token" not in query and actor.authenticated and actor.role is Role.ADMIN:
        raise Decline()  # An administrator's force unlock.
    await service.unlock(resource_id, query.get("lock-token"), audit)
    return {"message": "Resource unlocked"}


async def extend(
    service: LockService, resource_id: int, query: dict[str, str], audit: AuditRequest
) -> dict[str, Any]:
    if set(query) != {"lock-token", "additional-ttl"}:
        raise Decline()
    if not DIGITS.match(query["additional-ttl"]):
        raise Decline()
    resource, total = await service.extend(
        resource_id, query["lock-token"], int(query["additional-ttl"]), audit
    )
    assert resource.lock is not None
    return {
        "message": "Lock extended",
        "new-expires-at": instant(resource.lock.expires_at),
        "total-lock-duration": total,
        "fencing_token": resource.lock.fencing_token,
    }


def parse_query(raw: bytes) -> dict[str, str]:
    """Parse the query string; a repeated key declines, as FastAPI would read it differently."""
    if not raw:
        return {}
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs):
        raise Decline()
    return query


def parse_lock_body(scope: Scope, body: bytes) -> tuple[int | None, str | None]:
    if not body:
        return None, None
    if content_type(scope) != b"application/json":
        raise Decline()
    try:
        data = json.loads(body)
    except ValueError:
        raise Decline() from None
    if data is None:
        return None, None
    if not isinstance(data, dict) or not data.keys() <= LOCK_BODY_KEYS:
        raise Decline()

    ttl = data.get("ttl")
    if ttl is not None and (type(ttl) is not int or ttl < 1):
        raise Decline()
    label = data.get("locked_by_label")
    if label is not None and (type(label) is not str or len(label) > MAX_LABEL):
        raise Decline()
    if label and not label.isprintable():
        raise Decline()  # FastAPI rejects control characters and names the field.
    return ttl, label or None


def content_type(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value.split(b";", 1)[0].strip().lower())
    return None


async def read_body(receive: Receive) -> bytes | None:
    """Return the whole request body, or None if the client disconnected first."""
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that yields the already-read body once, then defers to the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = [*JSON_HEADERS, (b"content-length", str(len(content)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"2"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
