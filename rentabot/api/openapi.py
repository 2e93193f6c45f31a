"""Complete the OpenAPI document with what only the running service knows.

FastAPI builds the document from the routes; this adds the configured maxima of
numbers (so a client or fuzzer can tell that a ttl above ``--max-ttl`` is rejected) and
states which operations really need a key: none with authentication off, and reads
only when ``auth.protect_reads`` is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from rentabot.config.auth import AuthConfig
from rentabot.domain.limits import Limits

# Schema properties and query parameters bounded by a configured limit.
MAXIMA: dict[str, Callable[[Limits], int]] = {
    "ttl": lambda limits: limits.max_ttl,
    "additional-ttl": lambda limits: limits.max_ttl,
    "max_wait_time": lambda limits: limits.max_wait_time,
    "quantity": lambda limits: limits.max_quantity,
    "priority": lambda limits: limits.max_priority,
}
MINIMA: dict[str, Callable[[Limits], int]] = {"priority": lambda limits: limits.min_priority}
BOUNDED_SCHEMAS = ("LockRequest", "ReservationRequest")


def install(app: FastAPI, limits: Limits) -> None:
    """Replace ``app.openapi`` by one that completes FastAPI's document once, when first asked."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            add_limits(document, limits)
            config: AuthConfig | None = getattr(app.state, "auth_config", None)
            if config is not None:
                state_security(document, config)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def add_limits(document: dict[str, Any], limits: Limits) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    for name in BOUNDED_SCHEMAS:
        for field, schema in schemas.get(name, {}).get("properties", {}).items():
            bound(schema, field, limits)
    for operation in operations(document):
        for parameter in operation.get("parameters", []):
            bound(parameter.get("schema", {}), parameter.get("name", ""), limits)


def bound(schema: dict[str, Any], field: str, limits: Limits) -> None:
    """Set ``maximum``/``minimum`` on the integer form of ``field``'s schema."""
    for variant in [schema, *schema.get("anyOf", [])]:
        if variant.get("type") != "integer":
            continue
        if field in MAXIMA:
            variant["maximum"] = MAXIMA[field](limits)
        if field in MINIMA:
            variant["minimum"] = MINIMA[field](limits)


def state_security(document: dict[str, Any], config: AuthConfig) -> None:
    for path, method, operation in operations_with_paths(document):
        if "security" not in operation:
            continue
        if not config.enabled:
            del operation["security"]
        elif method == "get" and is_open_read(path) and not config.protect_reads:
            # An empty requirement makes the key optional.
            operation["security"] = [{}, *operation["security"]]


def is_open_read(path: str) -> bool:
    return not path.startswith(("/api/v1/admin", "/api/v1/audit"))


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [operation for _, _, operation in operations_with_paths(document)]


def operations_with_paths(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict):
                found.append((path, method, operation))
    return found
