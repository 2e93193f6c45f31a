"""JSON responses that skip FastAPI's encoder, for bodies already made of plain types."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from starlette.responses import Response, StreamingResponse

T = TypeVar("T")

# Lists longer than this are encoded and sent in chunks of this many items, so a listing
# of thousands of resources never keeps all their dictionaries in memory at once.
CHUNK = 500


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)


def encode(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_list_response(
    key: str, items: Sequence[T], render: Callable[[T], dict[str, Any]]
) -> Response:
    """Return ``{key: [render(item), ...]}``, streamed in chunks when the list is long."""
    if len(items) <= CHUNK:
        return FastJSONResponse({key: [render(item) for item in items]})

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"' + key.encode() + b'":['
        for start in range(0, len(items), CHUNK):
            part = encode([render(item) for item in items[start : start + CHUNK]])
            yield (b"," if start else b"") + part[1:-1]
        yield b"]}"

    return StreamingResponse(chunks(), media_type="application/json")
