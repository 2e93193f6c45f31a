"""In-process publish and subscribe for committed events.

The service publishes each committed transaction's events here, and the web page's
stream, metrics and tests subscribe. A subscriber whose queue fills up is dropped and
marked as overflowed, so a slow reader never slows down the requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

from rentabot.domain.events import Event

logger = logging.getLogger(__name__)


class Subscription:
    def __init__(self, bus: EventBus, size: int) -> None:
        self.bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    """Fan-out of events to subscribers, with the most recent ones kept for replay."""

    def __init__(self, history: int = 10_000) -> None:
        self._subscribers: set[Subscription] = set()
        self.recent: deque[Event] = deque(maxlen=history)

    def subscribe(self, size: int = 10_000) -> Subscription:
        subscription = Subscription(self, size)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            self.recent.append(event)
            for subscription in list(self._subscribers):
                try:
                    subscription.queue.put_nowait(event)
                except asyncio.QueueFull:
                    subscription.overflowed = True
                    self._subscribers.discard(subscription)
                    logger.warning(
                        "events.subscriber_dropped reason=queue_full size=%d",
                        subscription.queue.maxsize,
                    )
