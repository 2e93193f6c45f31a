"""A JSON response that skips FastAPI's encoder, for bodies already made of plain types."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
