"""The interface every store offers the service: transactions, health and a description."""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from rentabot.clock import Clock
from rentabot.domain.audit import AuditEntry, AuditQuery
from rentabot.domain.events import Event
from rentabot.domain.ports import Transaction
from rentabot.storage.snapshot import Snapshot

T = TypeVar("T")

# Called on the event loop with events committed by any process sharing the store, in id
# order, the earliest deadline they created, and whether the caller should re-read the
# next deadline because some notices were missed.
RemoteChangeHandler = Callable[[list[Event], datetime | None, bool], None]


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
    async def audit_log(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        """Return the entries matching ``query``, newest first, and how many match in all."""

    @abc.abstractmethod
    async def snapshot(self) -> Snapshot:
        """Return the whole state, consistent as of one instant."""

    @abc.abstractmethod
    async def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole state by ``snapshot`` (the event history is kept)."""

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

    def listen(self, handler: RemoteChangeHandler) -> None:
        """Deliver every committed change to ``handler``; only shared stores implement it."""
        raise NotImplementedError(f"the {self.kind} store is not shared between processes")

    async def lead_background_work(self) -> bool:
        """Tell whether this process runs the background work (health checks) now.

        Only one process sharing a store may; a store used by one process always leads.
        """
        return True

    @property
    def instance_id(self) -> str:
        """Name of the event history: event ids compare only within one instance.

        A store whose history lives in this process gets a new one at each start.
        """
        token: str | None = self.__dict__.get("_instance_token")
        if token is None:
            token = self.__dict__["_instance_token"] = secrets.token_hex(8)
        return token

    async def events_after(self, event_id: int, limit: int) -> list[Event] | None:
        """Return up to ``limit`` stored events after ``event_id``, in id order.

        Returns None when the store keeps no event history, or no longer keeps all the
        events after ``event_id``.
        """
        return None

    async def prune_history(self) -> int:
        """Delete the oldest stored events beyond what replay needs; return how many."""
        return 0

    def default_clock(self) -> Clock | None:
        """Return the clock this store's service should use, or None for the system clock."""
        return None

    def describe(self) -> str:
        return self.kind
