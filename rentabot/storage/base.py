"""The interface every store offers the service: transactions, health and a description."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from rentabot.domain.ports import Transaction

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store cannot be reached (database down, file unwritable); the request may be retried."""


class Store(abc.ABC):
    """A place where resources, locks and reservations live.

    ``write`` runs a function in one serialised write transaction and commits it;
    ``read`` runs one in a read transaction. Both run the function synchronously;
    stores that block on I/O move it to a worker thread.
    """

    #: Short name shown in logs and /readiness ("memory", "sqlite", "postgresql").
    kind: str = "abstract"
    #: True when other processes may change the same data, so no cached hint can be trusted.
    shared: bool = False

    @abc.abstractmethod
    async def write(self, operation: Callable[[Transaction], T]) -> T: ...

    @abc.abstractmethod
    async def read(self, operation: Callable[[Transaction], T]) -> T: ...

    @abc.abstractmethod
    def write_now(self, operation: Callable[[Transaction], T]) -> T:
        """Run ``operation`` in a write transaction on the calling thread (CLI, start-up)."""

    @abc.abstractmethod
    async def next_deadline(self) -> datetime | None:
        """Return the earliest lock expiry, wait end or claim-window end still ahead."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot serve requests now."""

    async def start(self) -> None:  # noqa: B027 - optional hook, most stores need nothing
        """Prepare the store when the service starts (migrations, connections)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most stores need nothing
        """Release connections and files when the service stops."""

    def describe(self) -> str:
        return self.kind
