"""The application service: runs each request's rules in one store transaction.

Every write follows the same steps: take the time, apply deadlines that are due,
run the command, commit, then publish the events and wake the deadline timer. A
command that raises a :class:`RentabotError` rolls back its own writes but keeps
the deadlines applied before it, so a refused request still leaves the state current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from rentabot.clock import Clock
from rentabot.domain import availability, commands, events, expiry, locking, queue
from rentabot.domain.audit import AuditEntry, AuditQuery, AuditRequest, automatic_entries
from rentabot.domain.commands import ResourceSpec
from rentabot.domain.errors import RentabotError, ResourceNotFound
from rentabot.domain.events import Event
from rentabot.domain.limits import Limits
from rentabot.domain.models import (
    Actor,
    Holder,
    Lock,
    MaintenanceWindow,
    Reservation,
    Resource,
    UnavailabilitySource,
)
from rentabot.domain.ports import Transaction
from rentabot.domain.queue import ANYONE
from rentabot.eventbus import EventBus
from rentabot.logtext import printable
from rentabot.storage.base import Store
from rentabot.storage.snapshot import Snapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The timer re-reads the next deadline at least this often, in case another process
# sharing the store created an earlier one.
TIMER_MAX_SLEEP = timedelta(seconds=5)
PURGE_INTERVAL = timedelta(minutes=10)


@dataclass(slots=True)
class Outcome(Generic[T]):
    value: T | None = None
    error: RentabotError | None = None


@dataclass(frozen=True, slots=True)
class ResourceList:
    now: datetime
    resources: list[Resource]


@dataclass(frozen=True, slots=True)
class ReservationList:
    now: datetime
    reservations: list[Reservation]
    positions: dict[str, int]


class LockService:
    """Locks, reservations and deadlines over one store, for the API, the page and the CLI."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        limits: Limits,
        bus: EventBus | None = None,
        error_status: Callable[[RentabotError], int] | None = None,
    ) -> None:
        self.store = store
        # Maps a refused request's error to the HTTP status written in its audit entry.
        self.error_status = error_status or (lambda error: 400)
        self.clock = clock
        self.limits = limits
        self.bus = bus or EventBus()
        self._next_deadline: datetime | None = None
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._last_purge: datetime | None = None
        self._refresh_deadline = False

    # Life cycle

    async def start(self, specs: list[ResourceSpec] | None = None) -> None:
        """Sync the descriptor, catch up on deadlines missed while down, start the timer."""
        if self.store.shared:
            # Listen first, so the sync's own events reach this process's stream too.
            self.store.listen(self._on_remote_change)
        if specs is not None:
            counts = await self.sync_resources(specs)
            logger.info(
                "resources.synced added=%d updated=%d removed=%d retired=%d",
                counts["added"],
                counts["updated"],
                counts["removed"],
                counts["retired"],
            )
        applied = await self.process_due()
        if applied:
            logger.info("deadlines.caught_up count=%d", applied)

        self._wake = asyncio.Event()
        self._timer = asyncio.create_task(self._run_timer(), name="rentabot-deadline-timer")
        logger.info("timer.started next_deadline=%s", self._next_deadline)

    async def stop(self) -> None:
        if self._timer is None:
            return
        self._timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._timer
        self._timer = None
        logger.info("timer.stopped")

    # Reads

    async def list_resources(self) -> ResourceList:
        now = await self._now_with_deadlines_applied()
        resources = await self.store.read(lambda tx: tx.resources())
        return ResourceList(now, resources)

    async def get_resource(self, resource_id: int) -> tuple[datetime, Resource]:
        now = await self._now_with_deadlines_applied()
        resource = await self.store.read(lambda tx: tx.resource(resource_id))
        if resource is None:
            raise ResourceNotFound.by_id(resource_id)
        return now, resource

    async def list_reservations(self) -> ReservationList:
        now = await self._now_with_deadlines_applied()

        def read(tx: Transaction) -> tuple[list[Reservation], dict[str, int]]:
            return tx.active_reservations(), queue.queue_positions(tx.pending_reservations())

        reservations, positions = await self.store.read(read)
        return ReservationList(now, reservations, positions)

    async def get_reservation(self, reservation_id: str) -> tuple[Reservation, int | None]:
        await self._now_with_deadlines_applied()

        def read(tx: Transaction) -> tuple[Reservation, int | None]:
            reservation = queue.require_reservation(tx, reservation_id)
            positions = queue.queue_positions(tx.pending_reservations())
            return reservation, positions.get(reservation_id)

        return await self.store.read(read)

    # Writes

    async def lock(
        self, resource_id: int, ttl: int | None, holder: Holder, audit: AuditRequest | None = None
    ) -> tuple[Resource, Lock]:
        return await self._write(
            lambda tx, now: locking.lock_by_id(tx, now, self.limits, resource_id, ttl, holder),
            audit,
        )

    async def lock_matching(
        self,
        resource_id: int | None,
        name: str | None,
        tags: list[str] | None,
        ttl: int | None,
        holder: Holder,
        audit: AuditRequest | None = None,
    ) -> tuple[Resource, Lock]:
        return await self._write(
            lambda tx, now: locking.lock_by_criteria(
                tx, now, self.limits, resource_id, name, tags, ttl, holder
            ),
            audit,
        )

    async def unlock(
        self, resource_id: int, token: str | None, audit: AuditRequest | None = None
    ) -> Resource:
        return await self._write(
            lambda tx, now: commands.unlock(tx, now, self.limits, resource_id, token), audit
        )

    async def force_unlock(self, resource_id: int, audit: AuditRequest | None = None) -> Resource:
        """Release a lock without its token; the caller checked the administrator role."""
        return await self._write(
            lambda tx, now: commands.force_unlock(tx, now, self.limits, resource_id), audit
        )

    async def extend(
        self,
        resource_id: int,
        token: str | None,
        additional_ttl: int,
        audit: AuditRequest | None = None,
    ) -> tuple[Resource, int]:
        return await self._write(
            lambda tx, now: locking.extend(
                tx, now, self.limits, resource_id, token, additional_ttl
            ),
            audit,
        )

    async def reserve(
        self,
        tags: list[str],
        quantity: int,
        ttl: int | None,
        max_wait_time: int | None,
        priority: int,
        holder: Holder,
        audit: AuditRequest | None = None,
    ) -> tuple[Reservation, int]:
        return await self._write(
            lambda tx, now: queue.create_reservation(
                tx, now, self.limits, tags, quantity, ttl, max_wait_time, priority, holder
            ),
            audit,
        )

    async def claim(
        self, reservation_id: str, actor: Actor = ANYONE, audit: AuditRequest | None = None
    ) -> Reservation:
        return await self._write(lambda tx, now: queue.claim(tx, now, reservation_id, actor), audit)

    async def cancel(
        self, reservation_id: str, actor: Actor = ANYONE, audit: AuditRequest | None = None
    ) -> Reservation:
        return await self._write(
            lambda tx, now: queue.cancel(tx, now, self.limits, reservation_id, actor), audit
        )

    async def release(
        self, reservation_id: str, actor: Actor = ANYONE, audit: AuditRequest | None = None
    ) -> Reservation:
        return await self._write(
            lambda tx, now: queue.release(tx, now, self.limits, reservation_id, actor), audit
        )

    # Unavailability and maintenance

    async def mark_unavailable(
        self,
        resource_id: int,
        reason: str,
        until: datetime | None,
        source: UnavailabilitySource = UnavailabilitySource.ADMIN,
        audit: AuditRequest | None = None,
    ) -> tuple[datetime, Resource]:
        return await self._write(
            lambda tx, now: (
                now,
                availability.mark_unavailable(
                    tx, now, self.limits, resource_id, reason, until, source
                ),
            ),
            audit,
        )

    async def mark_available(
        self,
        resource_id: int,
        source: UnavailabilitySource = UnavailabilitySource.ADMIN,
        audit: AuditRequest | None = None,
    ) -> tuple[datetime, Resource]:
        return await self._write(
            lambda tx, now: (
                now,
                availability.mark_available(tx, now, self.limits, resource_id, source),
            ),
            audit,
        )

    async def add_window(
        self,
        resource_id: int,
        start: datetime,
        end: datetime,
        reason: str,
        audit: AuditRequest | None = None,
    ) -> MaintenanceWindow:
        return await self._write(
            lambda tx, now: availability.add_window(
                tx, now, self.limits, resource_id, start, end, reason
            ),
            audit,
        )

    async def remove_window(
        self, resource_id: int, window_id: str, audit: AuditRequest | None = None
    ) -> None:
        await self._write(
            lambda tx, now: availability.remove_window(
                tx, now, self.limits, resource_id, window_id
            ),
            audit,
        )

    # The audit log

    async def audit_log(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        return await self.store.audit_log(query)

    async def record_audit(
        self, audit: AuditRequest, status: int, outcome: str, detail: str | None
    ) -> None:
        """Write the audit entry of a request decided outside the rules (401, 422, a restore)."""

        def record(tx: Transaction) -> None:
            tx.add_audit(audit.entry(self.clock.now(), status, outcome, detail=detail))

        await self.store.write(record)

    async def sync_resources(
        self, specs: list[ResourceSpec], audit: AuditRequest | None = None
    ) -> dict[str, int]:
        return await self._write(
            lambda tx, now: commands.sync_resources(tx, now, self.limits, specs), audit
        )

    async def snapshot(self) -> Snapshot:
        """Return the whole state, for a backup."""
        return await self.store.snapshot()

    async def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole state by a backup, then tell every listener to reload."""
        await self.store.restore(snapshot.complete())
        await self._write(lambda tx, now: tx.emit(Event(events.STORE_RESTORED, now)))
        self._next_deadline = await self.store.next_deadline()
        self._wake.set()
        logger.info(
            "store.restored resources=%d reservations=%d",
            len(snapshot.resources),
            len(snapshot.reservations),
        )

    async def process_due(self) -> int:
        """Apply every deadline that has arrived; return how many were applied."""
        _, applied = await self._transact(lambda tx, now: None, force_deadlines=True)
        self._next_deadline = await self.store.next_deadline()
        return applied

    # The write path

    async def _write(
        self, command: Callable[[Transaction, datetime], T], audit: AuditRequest | None = None
    ) -> T:
        value, applied = await self._transact(command, audit=audit)
        if applied:
            self._next_deadline = await self.store.next_deadline()
        return value

    async def _transact(
        self,
        command: Callable[[Transaction, datetime], T],
        force_deadlines: bool = False,
        audit: AuditRequest | None = None,
    ) -> tuple[T, int]:
        """Run ``command`` after the due deadlines; return its value and the deadline count.

        With ``audit``, the request's audit entry is written in the same transaction,
        whether the command succeeds or is refused. So are entries for the automatic
        events (expiry, fulfilment) that the transaction caused.
        """

        def run(tx: Transaction) -> tuple[Outcome[T], int, Transaction]:
            now = self.clock.now()
            applied = 0
            if force_deadlines or self._deadline_may_be_due(now):
                applied = expiry.process_due(tx, now, self.limits)

            tx.checkpoint()
            from_deadlines = len(tx.emitted())
            try:
                outcome: Outcome[T] = Outcome(value=command(tx, now))
            except RentabotError as error:
                tx.rollback_to_checkpoint()
                outcome = Outcome(error=error)
            self._audit(tx, now, audit, outcome, from_deadlines)
            return outcome, applied, tx

        outcome, applied, tx = await self.store.write(run)
        self._after_commit(tx.emitted())
        if outcome.error is not None:
            raise outcome.error
        return outcome.value, applied  # type: ignore[return-value]

    def _audit(
        self,
        tx: Transaction,
        now: datetime,
        audit: AuditRequest | None,
        outcome: Outcome[T],
        from_deadlines: int,
    ) -> None:
        """Add the request's audit entry, then one per automatic event of the transaction.

        ``from_deadlines`` counts the events that deadlines caused before the command ran.
        """
        emitted = list(tx.emitted())
        if audit is not None:
            # A request that names no target (a lock by tags) gets the one it acted on.
            own = emitted[from_deadlines:]
            first = own[0] if own else None
            resource_id = first.resource_id if first else None
            reservation_id = first.reservation_id if first else None
            if outcome.error is None:
                entry = audit.entry(now, audit.success_status, "ok", resource_id, reservation_id)
            else:
                outcome.error.audited = True
                entry = audit.entry(
                    now,
                    self.error_status(outcome.error),
                    type(outcome.error).__name__,
                    resource_id,
                    reservation_id,
                    detail=outcome.error.message,
                )
            tx.add_audit(entry)
        for automatic in automatic_entries(emitted):
            tx.add_audit(automatic)

    def _deadline_may_be_due(self, now: datetime) -> bool:
        if self.store.shared:
            return True
        return self._next_deadline is not None and now >= self._next_deadline

    async def _now_with_deadlines_applied(self) -> datetime:
        """Return the time after applying any deadline that has passed, so reads are exact.

        A shared store may have deadlines created by another process, so it is asked;
        otherwise the local hint is exact.
        """
        now = self.clock.now()
        if self.store.shared:
            deadline = await self.store.next_deadline()
            due = deadline is not None and deadline <= now
        else:
            due = self._deadline_may_be_due(now)
        if due:
            await self.process_due()
            now = self.clock.now()
        return now

    def _after_commit(self, committed: Sequence[Event]) -> None:
        if not committed:
            return
        earliest = self._next_deadline
        for event in committed:
            if event.deadline is not None and (earliest is None or event.deadline < earliest):
                earliest = event.deadline
            log_event(event)

        if earliest != self._next_deadline:
            self._next_deadline = earliest
            self._wake.set()
        if not self.store.shared:
            # A shared store delivers every process's events, these included, in id order
            # through _on_remote_change, so each replica's stream has the same order.
            self.bus.publish(committed)

    def _on_remote_change(
        self, committed: list[Event], deadline: datetime | None, refresh: bool
    ) -> None:
        """Publish events committed by any process sharing the store; mind their deadlines."""
        self.bus.publish(committed)
        if deadline is not None and (self._next_deadline is None or deadline < self._next_deadline):
            self._next_deadline = deadline
            self._wake.set()
        if refresh:
            self._refresh_deadline = True
            self._wake.set()

    # The deadline timer

    async def _run_timer(self) -> None:
        last_round = self.clock.now()
        while True:
            wake_at = self.clock.now() + TIMER_MAX_SLEEP
            if self._next_deadline is not None and self._next_deadline < wake_at:
                wake_at = self._next_deadline
            await self.clock.wait_until(wake_at, self._wake)
            self._wake.clear()

            try:
                if self._refresh_deadline:
                    self._refresh_deadline = False
                    self._next_deadline = await self.store.next_deadline()
                now = self.clock.now()
                hint_due = self._next_deadline is not None and now >= self._next_deadline
                # On a shared store another process may have created an earlier deadline
                # that this one missed; a round every TIMER_MAX_SLEEP catches it.
                if hint_due or (self.store.shared and now - last_round >= TIMER_MAX_SLEEP):
                    last_round = now
                    await self.process_due()
                await self._purge_if_due()
            except Exception:
                # The timer must outlive a store outage: log, pause, and try again.
                logger.exception("timer.failed next_deadline=%s", self._next_deadline)
                await asyncio.sleep(1)

    async def _purge_if_due(self) -> None:
        now = self.clock.now()
        if self._last_purge is not None and now - self._last_purge < PURGE_INTERVAL:
            return
        self._last_purge = now
        cutoff = now - timedelta(seconds=self.limits.ended_reservation_retention)
        purged = await self.store.write(lambda tx: tx.purge_reservations(cutoff))
        if purged:
            logger.info("reservations.purged count=%d ended_before=%s", purged, cutoff)
        pruned = await self.store.prune_history()
        if pruned:
            logger.info("events.pruned count=%d", pruned)


def log_event(event: Event) -> None:
    """Log one committed event; events carry ids and states, never a lock token."""
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info(
        "%s resource_id=%s reservation_id=%s %s",
        event.name,
        event.resource_id,
        event.reservation_id,
        " ".join(f"{key}={printable(value)}" for key, value in event.data.items()),
    )
