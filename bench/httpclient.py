"""A lean HTTP/1.1 keep-alive client over asyncio streams, for load generation.

It sends one request at a time per connection and reads responses framed by
Content-Length or by chunked transfer coding, which uvicorn uses for streamed
bodies. Informational (1xx) responses and other transfer codings are not supported
and raise ``HTTPError``, so a change in the servers' framing shows up as an error
instead of a wrong figure. The client shares a 2-core machine with the server under
test, so it must spend as little CPU per request as it can.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

MAX_HEADER_BYTES = 64 * 1024


class HTTPError(Exception):
    """The server sent a response this client cannot parse, or closed the connection."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to ``host:port``; reopened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode("ascii")

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=MAX_HEADER_BYTES
        )

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass

    async def request(self, method: str, path: str, json_body: Any = None) -> Response:
        """Send one request and return its status and body."""
        if self._writer is None:
            await self.open()
        assert self._reader is not None and self._writer is not None

        head = [f"{method} {path} HTTP/1.1\r\n".encode("ascii"), self._host_header]
        body = b""
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            head.append(b"Content-Type: application/json\r\n")
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body)}\r\n".encode("ascii"))
        head.append(b"\r\n")
        self._writer.write(b"".join(head) + body)

        try:
            return await self._read_response(method)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            await self.close()
            raise HTTPError(
                f"{method} {path}: connection closed before the full response"
            ) from error

    async def _read_response(self, method: str) -> Response:
        assert self._reader is not None
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as error:
            raise HTTPError(f"response headers longer than {MAX_HEADER_BYTES} bytes") from error

        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
            raise HTTPError(f"invalid status line {lines[0]!r}")
        status = int(status_line[1])

        length = 0
        chunked = False
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                if value != "chunked":
                    raise HTTPError(f"transfer-encoding {value!r} is not supported")
                chunked = True
            elif name == "connection" and value == "close":
                close = True

        if status < 200:
            raise HTTPError(f"informational status {status} is not supported")
        body = b""
        if method != "HEAD" and status not in (204, 304):
            if chunked:
                body = await self._read_chunked_body()
            elif length:
                body = await self._reader.readexactly(length)
        if close:
            await self.close()
        return Response(status, body)

    async def _read_chunked_body(self) -> bytes:
        """Read chunks until the zero-size one, then skip any trailer fields."""
        assert self._reader is not None
        parts = []
        while True:
            size_line = await self._reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as error:
                raise HTTPError(f"invalid chunk size line {size_line!r}") from error
            if size == 0:
                break
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

        while await self._reader.readuntil(b"\r\n") != b"\r\n":
            pass
        return b"".join(parts)


def lock_path(resource_id: int) -> str:
    return f"/api/v1/resources/{resource_id}/lock"


def unlock_path(resource_id: int, token: str) -> str:
    return f"/api/v1/resources/{resource_id}/unlock?lock-token={quote(token, safe='')}"
