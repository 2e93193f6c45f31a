"""Keep lock tokens out of uvicorn's access log.

Unlock and extend carry the lock token in the query string, as rentabot 1.0.0 defined
them, and uvicorn's access log prints each request's path with its query string.
Anyone who could read the log could then unlock or extend another client's lock.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

ACCESS_LOGGER = "uvicorn.access"

# Query parameters whose values are secrets, compared after percent-decoding.
SECRET_PARAMETERS = frozenset({"lock-token"})

REDACTED = "[redacted]"


def redact_query(path: str) -> str:
    """Return ``path`` with the value of every secret query parameter replaced."""
    base, separator, query = path.partition("?")
    if not separator:
        return path

    parts = []
    for part in query.split("&"):
        key = part.split("=", 1)[0]
        if unquote_plus(key).lower() in SECRET_PARAMETERS:
            part = f"{key}={REDACTED}"
        parts.append(part)
    return f"{base}?{'&'.join(parts)}"


class RedactSecrets(logging.Filter):
    """Replace secret query values in the arguments of an access log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Add the filter to uvicorn's access logger, unless it is there already."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, RedactSecrets) for existing in access.filters):
        access.addFilter(RedactSecrets())
