"""The one source of time: a real clock in production, a manual one in tests.

Times are timezone-aware UTC datetimes. Besides ``now()``, a clock can wait until an
instant, so the deadline timer can run on a manual clock without sleeping.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

# The stores keep instants in UTC, and Python's datetime has no year after 9999.
EARLIEST_INSTANT = datetime.min.replace(tzinfo=UTC)
LATEST_INSTANT = datetime.max.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def storable_instant(value: datetime) -> datetime:
    """Return ``value`` if the stores can keep it, else raise ValueError naming the bound.

    The stores convert instants to UTC, and Python's datetime ends with the year 9999:
    9999-12-31T23:00:00-05:00, for one, has no UTC equivalent.
    """
    try:
        value.astimezone(UTC)
    except OverflowError:
        offset = value.utcoffset()
        if offset is not None and offset > timedelta(0):
            raise ValueError(
                f"{value.isoformat()} is before {EARLIEST_INSTANT.isoformat()}, the earliest "
                "instant rentabot can store; give a later one"
            ) from None
        raise ValueError(
            f"{value.isoformat()} is after {LATEST_INSTANT.isoformat()}, the latest instant "
            "rentabot can store; give an earlier one"
        ) from None
    return value


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def wait_until(self, instant: datetime | None, wake: asyncio.Event) -> None:
        """Return at ``instant`` (never, if None) or as soon as ``wake`` is set."""
        ...


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait_until(self, instant: datetime | None, wake: asyncio.Event) -> None:
        timeout = None if instant is None else (instant - self.now()).total_seconds()
        if timeout is not None and timeout <= 0:
            return
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            pass


class ManualClock:
    """A clock that moves only when a test calls :meth:`advance` or :meth:`set`.

    Waiters are woken on every move, from any thread, so a server running in another
    thread reads the new time at once.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        """Move forward by ``seconds`` (or timedelta keywords) and wake the waiters."""
        with self._lock:
            self._now += timedelta(seconds=seconds, **delta)
            now = self._now
        self._wake_all()
        return now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = instant
        self._wake_all()

    def _wake_all(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait_until(self, instant: datetime | None, wake: asyncio.Event) -> None:
        if instant is not None and instant <= self.now():
            return
        entry = (asyncio.get_running_loop(), wake)
        with self._lock:
            self._waiters.add(entry)
        try:
            await wake.wait()
        finally:
            with self._lock:
                self._waiters.discard(entry)
