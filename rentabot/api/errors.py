"""The one place where errors become HTTP responses.

Each leaf of the domain's exception tree has its status code here. rentabot 1.0.0
fixed most of them: 403 for a refused lock, 409 for a claim too early, 410 for a
claim too late. Bodies are JSON with a ``message``, never a stack trace or a token.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from rentabot.api.schemas import ErrorBody
from rentabot.domain import errors
from rentabot.logtext import printable
from rentabot.storage.base import StoreUnavailable

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.RentabotError], int] = {
    errors.ResourceNotFound: 404,
    errors.NoResourceMatchesTags: 404,
    errors.ReservationNotFound: 404,
    errors.ResourceLocked: 403,
    errors.ResourceReserved: 403,
    errors.NoFreeResource: 403,
    errors.NotLocked: 403,
    errors.WrongLockToken: 403,
    errors.MissingCriterion: 400,
    errors.TtlTooLong: 400,
    errors.ValueOutOfRange: 400,
    errors.NeverSatisfiable: 400,
    errors.ReservationNotFulfilled: 409,
    errors.ReservationNotClaimable: 409,
    errors.ClaimWindowPassed: 410,
    errors.ReservationNotCancellable: 409,
    errors.AdminOnly: 403,
    errors.ResourceUnavailable: 409,
    errors.WindowConflict: 409,
    errors.InstantInPast: 400,
    errors.WindowNotFound: 404,
    errors.WindowOverlap: 409,
    errors.WindowFromDescriptor: 409,
    errors.NotYourReservation: 403,
    errors.OriginRejected: 403,
    errors.NotAuthenticated: 401,
}

# Hints appended to validation messages, by field name.
FIELD_HINTS = {
    "ttl": "send the lock length as a whole number of seconds, at least 1",
    "additional-ttl": "send the extra time as a whole number of seconds, at least 1",
    "max_wait_time": "send the wait as a whole number of seconds, at least 1",
    "quantity": "send how many resources you need, a whole number of at least 1",
    "priority": "send a whole number; higher is served first",
    "tags": 'send a non-empty list of tags, for example ["android"]',
    "locked_by_label": "send a text of at most 256 characters",
    "resource_id": "use the numeric id from GET /api/v1/resources",
    "id": "use the numeric id from GET /api/v1/resources",
    "lock-token": "pass the lock-token returned by the lock request",
}


def status_for(error: errors.RentabotError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def describe_validation_error(error: dict[str, Any]) -> str:
    """Turn one Pydantic error into a sentence naming the field, the value and the fix."""
    location = [str(part) for part in error.get("loc", ())]
    place = location[0] if location else "request"
    field = ".".join(location[1:])
    problem = str(error.get("msg", "invalid value"))

    if error.get("type") == "json_invalid":
        position = error.get("ctx", {}).get("error", "")
        return (
            f"the request body is not valid JSON ({position}); send a JSON object, "
            'for example {"ttl": 600}'
        )
    if error.get("type") == "missing":
        text = f"{place} field {field!r} is missing" if field else f"{place} is missing"
    elif field:
        value = repr(error.get("input"))
        if len(value) > 80:
            value = value[:77] + "..."
        text = f"invalid {place} field {field!r}={value}: {problem}"
    else:
        text = f"invalid {place}: {problem}"

    hint = FIELD_HINTS.get(location[-1]) if location else None
    return f"{text}; {hint}" if hint else text


# Maximum length of a client's value echoed back in an error, so that a huge body is
# not sent back whole.
MAX_ECHO = 200


def echoable(value: Any) -> Any:
    """Return ``value`` in a form a JSON error body can carry, clipped to MAX_ECHO.

    JSON has no NaN or infinity, yet Python's parser reads ``NaN``, ``Infinity`` and
    ``1e400`` into floats. Such a value is echoed as its text.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHO else value[: MAX_ECHO - 3] + "..."
    if isinstance(value, dict | list):
        text = repr(value)
        if len(text) > MAX_ECHO:
            return text[: MAX_ECHO - 3] + "..."
        if isinstance(value, dict):
            return {key: echoable(item) for key, item in value.items()}
        return [echoable(item) for item in value]
    return value


def echoable_details(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return Pydantic's error list with each client value made echoable."""
    cleaned = []
    for detail in details:
        detail = dict(detail)
        if "input" in detail:
            detail["input"] = echoable(detail["input"])
        if "ctx" in detail:
            detail["ctx"] = echoable(detail["ctx"])
        cleaned.append(detail)
    return cleaned


def log_rejection(method: str, path: str, status: int, error: errors.RentabotError) -> None:
    logger.info(
        "request.rejected method=%s path=%s status=%d error=%s",
        method,
        printable(path),
        status,
        type(error).__name__,
    )


def log_store_unavailable(method: str, path: str, error: StoreUnavailable) -> None:
    logger.error("store.unavailable method=%s path=%s error=%s", method, printable(path), error)


def store_unavailable_payload(error: StoreUnavailable) -> dict[str, Any]:
    return {"message": f"the store is unavailable ({error}); retry in a few seconds"}


async def audit_refusal(request: Request, status: int, outcome: str, detail: str) -> None:
    """Audit a refused request that changes state, when the rules never saw it."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.scope.get("route") is None:
        return
    # Imported here: the audit module's routes depend on this module's responses.
    from rentabot.api.audit import request_audit
    from rentabot.domain.models import Actor

    client = request.client
    actor = Actor(ip=client.host if client is not None else None)
    try:
        headers = request.scope["headers"]
        actor = request.app.state.authenticator.actor(headers, actor.ip)
    except errors.NotAuthenticated:
        pass  # The key was unknown: audit the refusal without a token name.
    try:
        await request.app.state.service.record_audit(
            request_audit(request, actor, status), status, outcome, detail
        )
    except StoreUnavailable as failure:
        logger.error(
            "audit.write_failed method=%s path=%s error=%s",
            request.method,
            printable(request.url.path),
            failure,
        )


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def allowed_methods(request: Request) -> list[str]:
    """List every method the API documents on this path; FastAPI has one route per method."""
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern, _, _ = compile_path(template)
        if pattern.match(request.url.path):
            methods.update(method.upper() for method in item if method in HTTP_METHODS)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.RentabotError)
    async def domain_error(request: Request, error: errors.RentabotError) -> JSONResponse:
        status = status_for(error)
        log_rejection(request.method, request.url.path, status, error)
        if not error.audited:
            await audit_refusal(request, status, type(error).__name__, error.message)
        return JSONResponse(error.payload(), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        details = list(error.errors())
        message = "; ".join(describe_validation_error(detail) for detail in details)
        # ``detail`` keeps FastAPI's list as rentabot 1.0.0 returns it, which clients may read.
        detail = jsonable_encoder(echoable_details(details))
        logger.info(
            "request.invalid method=%s path=%s problems=%d",
            request.method,
            printable(request.url.path),
            len(details),
        )
        await audit_refusal(request, 422, "invalid", message)
        return JSONResponse({"message": message, "detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = getattr(error, "headers", None)
        if error.status_code == 404:
            message = f"no route {request.url.path!r}; see /docs for the API"
        elif error.status_code == 405:
            allowed = allowed_methods(request) or (headers or {}).get("Allow", "").split(", ")
            message = (
                f"method {request.method} is not allowed on {request.url.path!r}; "
                f"use {', '.join(allowed)}"
            )
            headers = {"Allow": ", ".join(allowed)}
        else:
            message = str(error.detail)
        return JSONResponse(
            {"message": message, "detail": error.detail},
            status_code=error.status_code,
            headers=headers,
        )

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, error: StoreUnavailable) -> JSONResponse:
        log_store_unavailable(request.method, request.url.path, error)
        return JSONResponse(
            store_unavailable_payload(error), status_code=503, headers={"Retry-After": "2"}
        )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Declare ``statuses`` with the error body, for a route's ``responses=``."""
    descriptions = {
        400: "Invalid value or a limit exceeded",
        403: "Refused: locked, reserved, or wrong lock token",
        404: "Not found",
        409: "Conflict with the reservation's state",
        410: "Claim window has passed",
        422: "Malformed request",
        503: "Store unavailable",
    }
    return {
        status: {"model": ErrorBody, "description": descriptions.get(status, "Error")}
        for status in statuses
    }
