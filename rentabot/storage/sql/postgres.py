"""The PostgreSQL store: state in the database, shared by any number of replicas.

Every write transaction first takes a transaction-scoped advisory lock, so writers run
one at a time across all replicas and the rules always see a consistent state. Reads
take no lock. Transactions run in worker threads, so the event loop does not block on
the network.

Writes use group commit. The operations that queue up in a replica while its previous
transaction runs go into the next one, one after the other, so they share its lock,
its commit (and the commit's wait for the disk) and its NOTIFY. Each operation still
reads the changes of the ones before it, exactly as if they had run alone in that order.
A caller gets its answer only after the commit succeeded.

Each write transaction that emits events also sends a NOTIFY naming their ids and the
earliest deadline it created. Every replica LISTENs: it publishes the events to its
own event bus in id order (its own included, so every replica's stream has the same
order) and wakes its deadline timer. Deadlines are applied by whichever replica gets
the write lock first; the others then find nothing due, so each applies once.

Time comes from the database server's clock (see :class:`DatabaseClock`), so replicas
on hosts whose clocks drift apart still agree on when a lock expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio.to_thread
import psycopg
from sqlalchemy import Connection, create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from rentabot.clock import Clock, SystemClock
from rentabot.domain.audit import AuditEntry, AuditQuery
from rentabot.domain.events import Event
from rentabot.domain.ports import Transaction
from rentabot.storage.base import RemoteChangeHandler, Store, StoreUnavailable
from rentabot.storage.snapshot import Snapshot
from rentabot.storage.sql import migrate
from rentabot.storage.sql.bulk import STATE_TABLES, read_snapshot, snapshot_rows
from rentabot.storage.sql.queries import query_audit
from rentabot.storage.sql.rows import event_from_row
from rentabot.storage.sql.schema import counters, events, reservations, resources
from rentabot.storage.sql.transaction import SqlTransaction, flush

logger = logging.getLogger(__name__)

T = TypeVar("T")

# First half of the advisory lock key taken by every writer. The second half is a hash of
# the schema, so two deployments in one database do not wait for each other.
WRITE_LOCK_KEY = 727_100_002
LEADER_LOCK_KEY = 727_100_003
# The events table keeps this many recent events for replay, as the SQLite store does.
EVENTS_KEPT = 100_000
CONNECT_TIMEOUT_SECONDS = 3
# A statement (waiting for the write lock included) that runs longer fails with 503
# rather than holding a request forever.
STATEMENT_TIMEOUT = "10s"
LISTEN_RETRY_SECONDS = 1.0
CLOCK_SYNC_INTERVAL = 60.0
# At most this many operations share one write transaction, which bounds how long the
# write lock is held.
MAX_BATCH = 64
# SQLSTATE of a statement cancelled by statement_timeout.
QUERY_CANCELED = "57014"


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """Return the URL as libpq reads it, for the listening connection."""
    return normalise_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True, slots=True)
class Notice:
    """Payload of one NOTIFY: which events a commit added, and its earliest new deadline."""

    origin: str
    first_id: int
    last_id: int
    deadline: datetime | None

    def to_json(self) -> str:
        deadline = self.deadline.isoformat() if self.deadline else None
        return json.dumps(
            {
                "origin": self.origin,
                "first": self.first_id,
                "last": self.last_id,
                "deadline": deadline,
            }
        )

    @classmethod
    def from_json(cls, payload: str) -> Notice:
        data = json.loads(payload)
        deadline = datetime.fromisoformat(data["deadline"]) if data["deadline"] else None
        return cls(data["origin"], int(data["first"]), int(data["last"]), deadline)


class PendingWrite:
    """One operation waiting for a write transaction, then its value or its error."""

    __slots__ = ("done", "error", "operation", "value")

    def __init__(self, operation: Callable[[Transaction], Any]) -> None:
        self.operation = operation
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def succeed(self, value: Any) -> None:
        self.done, self.value = True, value

    def fail(self, error: BaseException) -> None:
        self.done, self.error = True, error

    def result(self) -> Any:
        assert self.done, "the write has not run yet"
        if self.error is not None:
            raise self.error
        return self.value


class DatabaseClock:
    """This host's clock, corrected by its measured offset from the database server's.

    The offset is measured at start-up and then every minute; its error is about half
    a round trip to the database.
    """

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.offset = timedelta(0)
        self.system = SystemClock()

    def measure(self) -> None:
        with self.store.engine.connect() as connection:
            before = time.time()
            server_time = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
            after = time.time()
        local_midpoint = datetime.fromtimestamp((before + after) / 2, UTC)
        self.offset = server_time.astimezone(UTC) - local_midpoint

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def wait_until(self, instant: datetime | None, wake: asyncio.Event) -> None:
        local_instant = None if instant is None else instant - self.offset
        await self.system.wait_until(local_instant, wake)


class PostgresStore(Store):
    kind = "postgresql"
    shared = True

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(
            self.url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
        event.listen(self.engine, "connect", configure_connection)
        # Names this process in its own notices, so it can tell them from other replicas'.
        self.replica_id = uuid.uuid4().hex[:12]
        self.schema = "public"
        self.channel = "rentabot"
        self.clock = DatabaseClock(self)
        self._instance_id = self.replica_id
        self._writer = asyncio.Lock()
        # Operations waiting for the next write transaction, in arrival order.
        self._queue: list[PendingWrite] = []
        self._listener: Listener | None = None
        # Held open while this replica leads the background work; closing it lets another.
        self._leader: psycopg.Connection[tuple[object, ...]] | None = None
        self._leader_mutex = threading.Lock()

    def describe(self) -> str:
        return f"postgresql ({make_url(self.url).render_as_string(hide_password=True)})"

    def default_clock(self) -> Clock:
        return self.clock

    # Life cycle

    async def start(self) -> None:
        def prepare() -> None:
            migrate.upgrade(self.engine)
            with self.engine.connect() as connection:
                self.schema = connection.execute(text("SELECT current_schema()")).scalar_one()
                system = connection.execute(
                    text("SELECT system_identifier FROM pg_control_system()")
                ).scalar_one()
            # The same on every replica of this database and schema, so a client moving
            # between replicas keeps resuming its event stream.
            self._instance_id = hashlib.sha256(f"{system}/{self.schema}".encode()).hexdigest()[:16]
            self.channel = channel_name(self.schema)
            self.clock.measure()

        try:
            await anyio.to_thread.run_sync(prepare)
        except (OperationalError, DBAPIError) as error:
            raise StoreUnavailable(f"cannot open {self.describe()}: {error.orig}") from error
        logger.info(
            "store.ready schema=%s channel=%s clock_offset_ms=%.1f",
            self.schema,
            self.channel,
            self.clock.offset.total_seconds() * 1000,
        )

    def listen(self, handler: RemoteChangeHandler) -> None:
        loop = asyncio.get_running_loop()
        self._listener = Listener(self, handler, loop)
        self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await anyio.to_thread.run_sync(self._listener.stop)
            self._listener = None
        with self._leader_mutex:
            if self._leader is not None:
                self._leader.close()
                self._leader = None
        self.engine.dispose()

    async def lead_background_work(self) -> bool:
        return await anyio.to_thread.run_sync(self._lead)

    def _lead(self) -> bool:
        """Hold a session advisory lock on a dedicated connection: its holder leads."""
        with self._leader_mutex:
            try:
                if self._leader is None or self._leader.closed:
                    self._leader = psycopg.connect(
                        libpq_url(self.url),
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    )
                row = self._leader.execute(
                    "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))",
                    (LEADER_LOCK_KEY,),
                ).fetchone()
            except psycopg.Error as error:
                logger.warning("leader.check_failed error=%s", str(error).strip().splitlines()[0])
                if self._leader is not None:
                    self._leader.close()
                self._leader = None
                return False
            # A session lock is re-entrant: the leader gets true again each round.
            return bool(row and row[0])

    # Transactions

    async def write(self, operation: Callable[[Transaction], T]) -> T:
        pending = PendingWrite(operation)
        self._queue.append(pending)
        try:
            async with self._writer:
                # An earlier caller may have committed this operation in its batch.
                if not pending.done:
                    batch = self._queue[:MAX_BATCH]
                    del self._queue[:MAX_BATCH]
                    await self._run_batch(batch)
        except BaseException:
            # A cancelled caller whose operation has not started leaves the queue, so
            # nothing runs on behalf of a request that is gone.
            if pending in self._queue:
                self._queue.remove(pending)
            raise
        return pending.result()  # type: ignore[no-any-return]

    async def _run_batch(self, batch: list[PendingWrite]) -> None:
        """Run the batch in a worker thread, to its end even if this caller is cancelled.

        The other callers of the batch wait for its outcome behind the write lock, so
        the lock is held until the thread is done, and the cancellation comes after.
        """
        runner = asyncio.ensure_future(anyio.to_thread.run_sync(lambda: self._write_batch(batch)))
        cancelled = False
        while not runner.done():
            try:
                await asyncio.shield(runner)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError
        runner.result()

    def _write_batch(self, batch: list[PendingWrite]) -> None:
        """Run the operations in one transaction and record each one's outcome.

        An operation that fails (with a bug, or a constraint the database enforces) is
        dropped from the batch with its error, and the others run again in a new
        transaction without its partial writes. A lost or unreachable database fails
        the whole batch: nothing of it was committed.
        """
        remaining = list(batch)
        flush_each = False
        while remaining:
            try:
                failed = self._try_batch(remaining, flush_each)
            except FlushFailed:
                # Some operation's audit entries or events could not be stored: store them
                # operation by operation, so that the one at fault is found and dropped.
                flush_each = True
                continue
            except (StoreUnavailable, DBAPIError) as error:
                reason = describe_error(error) if isinstance(error, DBAPIError) else error
                logger.warning("store.write_failed operations=%d error=%s", len(remaining), reason)
                for pending in remaining:
                    pending.fail(error)
                return
            except Exception as error:
                # Never leave an operation of the batch without an outcome.
                logger.exception("store.write_failed operations=%d", len(remaining))
                for pending in remaining:
                    pending.fail(error)
                return
            if failed is None:
                return
            remaining.remove(failed)
            if remaining:
                logger.warning(
                    "store.write_retry operations=%d dropped=%s",
                    len(remaining),
                    type(failed.error).__name__,
                )

    def _try_batch(self, batch: list[PendingWrite], flush_each: bool) -> PendingWrite | None:
        """Commit the whole batch and return None, or return the operation that failed."""
        values: list[Any] = []
        with self._connection() as connection, connection.begin() as transaction:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
                {"key": WRITE_LOCK_KEY},
            )
            transactions = []
            for pending in batch:
                tx = SqlTransaction(connection)
                try:
                    values.append(pending.operation(tx))
                    if flush_each:
                        flush(connection, [tx])
                except Exception as error:
                    if is_connection_failure(error):
                        raise
                    transaction.rollback()
                    if isinstance(error, OperationalError):
                        # Its statement timed out. The caller gets 503, as before group commit.
                        error = StoreUnavailable(describe_error(error))
                    pending.fail(error)
                    return pending
                transactions.append(tx)
            if not flush_each:
                try:
                    flush(connection, transactions)
                except Exception as error:
                    if is_connection_failure(error):
                        raise
                    transaction.rollback()
                    raise FlushFailed from error
            self._notify(connection, [event for tx in transactions for event in tx.events])
        for pending, value in zip(batch, values, strict=True):
            pending.succeed(value)
        return None

    def write_now(self, operation: Callable[[Transaction], T]) -> T:
        pending = PendingWrite(operation)
        self._write_batch([pending])
        return pending.result()  # type: ignore[no-any-return]

    async def read(self, operation: Callable[[Transaction], T]) -> T:
        return await anyio.to_thread.run_sync(lambda: self.read_now(operation))

    def read_now(self, operation: Callable[[Transaction], T]) -> T:
        with self._connection() as connection, connection.begin():
            return operation(SqlTransaction(connection, read_only=True))

    def _notify(self, connection: Connection, emitted: list[Event]) -> None:
        """Tell every replica about the events; PostgreSQL delivers it on commit."""
        if not emitted:
            return
        deadlines = [e.deadline for e in emitted if e.deadline is not None]
        notice = Notice(
            origin=self.replica_id,
            first_id=emitted[0].id,
            last_id=emitted[-1].id,
            deadline=min(deadlines) if deadlines else None,
        )
        connection.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": self.channel, "payload": notice.to_json()},
        )

    async def next_deadline(self) -> datetime | None:
        def query() -> datetime | None:
            with self._connection() as connection:
                lock_deadline = connection.execute(
                    select(func.min(resources.c.next_deadline))
                ).scalar()
                reservation_deadline = connection.execute(
                    select(func.min(reservations.c.deadline))
                ).scalar()
            candidates = [d for d in (lock_deadline, reservation_deadline) if d is not None]
            return min(candidates).astimezone(UTC) if candidates else None

        return await anyio.to_thread.run_sync(query)

    async def ping(self) -> None:
        def query() -> None:
            with self._connection() as connection:
                connection.execute(select(counters.c.value).limit(1)).all()

        await anyio.to_thread.run_sync(query)

    async def audit_log(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        def read() -> tuple[list[AuditEntry], int]:
            with self._connection() as connection:
                return query_audit(connection, query)

        return await anyio.to_thread.run_sync(read)

    async def snapshot(self) -> Snapshot:
        def read() -> Snapshot:
            with self._connection() as connection:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin():
                    return read_snapshot(connection)[0]

        return await anyio.to_thread.run_sync(read)

    async def restore(self, snapshot: Snapshot) -> None:
        def replace_state(tx: Transaction) -> None:
            assert isinstance(tx, SqlTransaction)
            for table in reversed(STATE_TABLES):
                tx.connection.execute(delete(table))
            for table, rows in snapshot_rows(snapshot):
                if rows:
                    tx.connection.execute(insert(table), rows)

        await self.write(replace_state)

    @property
    def instance_id(self) -> str:
        return self._instance_id

    async def events_after(self, event_id: int, limit: int) -> list[Event] | None:
        def read() -> list[Event] | None:
            with self._connection() as connection:
                oldest = connection.execute(select(func.min(events.c.id))).scalar()
                if oldest is not None and event_id < oldest - 1:
                    return None
                rows = connection.execute(
                    select(events).where(events.c.id > event_id).order_by(events.c.id).limit(limit)
                ).mappings()
                return [event_from_row(row) for row in rows]

        return await anyio.to_thread.run_sync(read)

    async def prune_history(self) -> int:
        def prune() -> int:
            with self._connection() as connection, connection.begin():
                newest = connection.execute(select(func.max(events.c.id))).scalar()
                if newest is None or newest <= EVENTS_KEPT:
                    return 0
                result = connection.execute(
                    delete(events).where(events.c.id <= newest - EVENTS_KEPT)
                )
                return int(result.rowcount or 0)

        return await anyio.to_thread.run_sync(prune)

    def events_between(self, first_id: int, last_id: int | None = None) -> list[Event]:
        """Return the stored events with ids in first_id..last_id, in id order."""
        query = select(events).where(events.c.id >= first_id).order_by(events.c.id)
        if last_id is not None:
            query = query.where(events.c.id <= last_id)
        with self._connection() as connection:
            return [event_from_row(row) for row in connection.execute(query).mappings()]

    def last_event_id(self) -> int:
        with self._connection() as connection:
            return int(connection.execute(select(func.max(events.c.id))).scalar() or 0)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except OperationalError as error:
            raise StoreUnavailable(describe_error(error)) from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise StoreUnavailable("the database connection was lost") from error
            raise


def configure_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    cursor.close()
    dbapi_connection.commit()


def is_connection_failure(error: Exception) -> bool:
    """Tell whether the error means the database is gone, rather than one statement failed."""
    if isinstance(error, StoreUnavailable):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    # A statement that ran past the statement timeout is that operation's failure.
    return (
        isinstance(error, OperationalError)
        and getattr(error.orig, "sqlstate", None) != QUERY_CANCELED
    )


class FlushFailed(Exception):
    """The audit entries or events of a batch could not be inserted; rolled back."""


def channel_name(schema: str) -> str:
    """Return the NOTIFY channel of a schema: an identifier of at most 63 characters."""
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in schema.lower())
    return f"rentabot_{safe}"[:63]


def describe_error(error: DBAPIError) -> str:
    text_ = str(error.orig).strip().splitlines()
    return text_[0] if text_ else type(error.orig).__name__


class Listener:
    """Receives the notices of all replicas on a dedicated connection, in a thread.

    After a lost connection it reconnects, and reads the events it missed from the
    events table, so no replica's stream skips a change.
    """

    def __init__(
        self, store: PostgresStore, handler: RemoteChangeHandler, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.store = store
        self.handler = handler
        self.loop = loop
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="rentabot-listen", daemon=True)
        self.last_seen = 0

    def start(self) -> None:
        self.last_seen = self.store.last_event_id()
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def run(self) -> None:
        last_sync = time.monotonic()
        while not self.stopping.is_set():
            try:
                with psycopg.connect(
                    libpq_url(self.store.url),
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                ) as connection:
                    connection.execute(f'LISTEN "{self.store.channel}"')
                    logger.info("listen.started channel=%s", self.store.channel)
                    self.catch_up()
                    if not self.stopping.is_set():
                        # Notices may have been missed while disconnected.
                        self.loop.call_soon_threadsafe(self.handler, [], None, True)
                    while not self.stopping.is_set():
                        for notify in connection.notifies(timeout=1.0, stop_after=100):
                            self.receive(Notice.from_json(notify.payload))
                        if time.monotonic() - last_sync > CLOCK_SYNC_INTERVAL:
                            self.store.clock.measure()
                            last_sync = time.monotonic()
            except (psycopg.Error, StoreUnavailable, OperationalError) as error:
                if self.stopping.is_set():
                    return
                logger.warning(
                    "listen.retry channel=%s error=%s in=%.0fs",
                    self.store.channel,
                    str(error).strip().splitlines()[0] if str(error).strip() else error,
                    LISTEN_RETRY_SECONDS,
                )
                self.stopping.wait(LISTEN_RETRY_SECONDS)
        logger.info("listen.stopped channel=%s", self.store.channel)

    def receive(self, notice: Notice) -> None:
        if notice.last_id <= self.last_seen:
            return
        first = max(notice.first_id, self.last_seen + 1)
        self.deliver(self.store.events_between(first, notice.last_id), notice.deadline)

    def catch_up(self) -> None:
        missed = self.store.events_between(self.last_seen + 1)
        if missed:
            logger.info("listen.caught_up events=%d", len(missed))
            self.deliver(missed, None)

    def deliver(self, delivered: list[Event], deadline: datetime | None) -> None:
        if not delivered:
            return
        self.last_seen = delivered[-1].id
        self.loop.call_soon_threadsafe(self.handler, delivered, deadline, False)
