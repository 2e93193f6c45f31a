"""A service on the in-memory store and a manual clock, driven synchronously by tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from rentabot.clock import ManualClock
from rentabot.domain.commands import ResourceSpec
from rentabot.domain.events import Event
from rentabot.domain.limits import Limits
from rentabot.domain.models import Holder, QueuePolicy, Reservation, Resource
from rentabot.service import LockService
from rentabot.storage.base import Store
from rentabot.storage.factory import open_store

T = TypeVar("T")

TICK = timedelta(microseconds=1)


def specs(*entries: tuple[str, str] | tuple[str, str, int]) -> list[ResourceSpec]:
    """Build resource specs from (name, tags) or (name, tags, max_lock_duration) tuples."""
    built = []
    for entry in entries:
        name, tags, *rest = entry
        built.append(
            ResourceSpec(name=name, tags_text=tags, max_lock_duration=rest[0] if rest else 86400)
        )
    return built


class Lab:
    """Synchronous access to a LockService for tests; time moves only through ``clock``."""

    def __init__(
        self,
        resources: list[ResourceSpec],
        policy: QueuePolicy = QueuePolicy.STRICT,
        store_url: str | None = None,
        clock: ManualClock | None = None,
        **limits: Any,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = clock or ManualClock()
        self.limits = Limits(queue_policy=policy, **limits)
        self.store: Store = open_store(store_url)
        try:
            self.run(self.store.start())
        except BaseException:
            self.loop.close()
            raise
        self.service = LockService(self.store, self.clock, self.limits)
        self.run(self.service.sync_resources(resources))

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    # Shortcuts used by most tests

    def lock(self, resource_id: int, ttl: int | None = 60, label: str | None = None) -> str:
        _, lock = self.run(self.service.lock(resource_id, ttl, Holder(label=label)))
        return lock.token

    def unlock(self, resource_id: int, token: str) -> None:
        self.run(self.service.unlock(resource_id, token))

    def resource(self, resource_id: int) -> Resource:
        _, resource = self.run(self.service.get_resource(resource_id))
        return resource

    def reserve(
        self,
        tags: list[str],
        quantity: int = 1,
        ttl: int = 600,
        max_wait_time: int = 3600,
        priority: int = 0,
    ) -> str:
        reservation, _ = self.run(
            self.service.reserve(tags, quantity, ttl, max_wait_time, priority, Holder())
        )
        return reservation.id

    def reservation(self, reservation_id: str) -> tuple[Reservation, int | None]:
        return self.run(self.service.get_reservation(reservation_id))

    def status(self, reservation_id: str) -> str:
        return self.reservation(reservation_id)[0].status.value

    def events(self) -> list[Event]:
        """Return every event committed so far, oldest first, from the store or this process."""
        stored = self.run(self.store.events_after(0, 100_000))
        return list(self.service.bus.recent) if stored is None else stored
