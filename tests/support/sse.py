"""Read a Server-Sent Events stream over real HTTP, one message at a time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    """One block of the stream. A block of comment lines only has ``comment`` set."""

    event: str | None = None
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comment: str | None = None
    fields: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


class EventStreamReader:
    """An open ``GET /api/v1/events`` whose every read waits at most ``timeout`` seconds.

    A read that times out raises ``httpx.ReadTimeout``, so a test never hangs on a
    message that does not come.
    """

    def __init__(
        self,
        base_url: str,
        last_event_id: int | str | None = None,
        params: dict[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> None:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self._client = httpx.Client(base_url=base_url, timeout=timeout)
        self._stream = self._client.stream("GET", "/api/v1/events", headers=headers, params=params)
        self.response = self._stream.__enter__()
        self._lines: Iterator[str] = self.response.iter_lines()

    def __enter__(self) -> EventStreamReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.__exit__(None, None, None)
        self._client.close()

    def next(self) -> Message:
        """Return the next message, comments included, or raise EOFError at the stream's end."""
        message = Message()
        seen_any = False
        for line in self._lines:
            if line == "":
                if seen_any:
                    return message
                continue
            seen_any = True
            parse_line(message, line)
        raise EOFError("the event stream ended")

    def next_event(self) -> Message:
        """Return the next message that is not a comment."""
        while True:
            message = self.next()
            if message.comment is None or message.fields:
                return message

    def events_until(self, condition: Callable[[Message], bool]) -> list[Message]:
        """Return the events read up to and including the first one meeting ``condition``."""
        read = []
        while True:
            message = self.next_event()
            read.append(message)
            if condition(message):
                return read


def parse_line(message: Message, line: str) -> None:
    if line.startswith(":"):
        text = line[1:].removeprefix(" ")
        message.comment = text if message.comment is None else f"{message.comment}\n{text}"
        return

    name, _, value = line.partition(":")
    value = value.removeprefix(" ")
    message.fields.append(name)
    if name == "event":
        message.event = value
    elif name == "data":
        message.data = value if not message.data else f"{message.data}\n{value}"
    elif name == "id":
        message.id = value
    elif name == "retry":
        message.retry = int(value)
