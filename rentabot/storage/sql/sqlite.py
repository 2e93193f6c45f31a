"""The SQLite store: the in-memory store, with every commit written to a SQLite file first.

Requests are served from memory, and every write transaction is journaled to SQLite
before its response is sent. So a change acknowledged to a client survives a crash or
``kill -9`` of the service, and reads cost no disk access. On start-up the whole state
is loaded back.

Writes from the service use group commit: a transaction takes effect in memory at
once, its changes join the next batch, and one SQLite transaction writes the batch
moments later, in the same event-loop turn. Every request of the batch waits for that
commit. Batches are written in order, so a durable transaction never depends on one
that was lost. If a batch cannot be written, its requests fail with 503 and the
in-memory state is reloaded from the file.

One process owns the file at a time (a lock file enforces it); several replicas need
the PostgreSQL store. The journal writes through the DB-API connection with SQL built
from the SQLAlchemy tables, because SQLAlchemy's per-statement overhead would cost more
than SQLite itself on the lock path.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import json
import logging
import sqlite3
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy.engine import make_url

from rentabot.domain.audit import AuditEntry, AuditQuery
from rentabot.domain.events import Event
from rentabot.storage.base import StoreUnavailable
from rentabot.storage.memory import MemoryStore, MemoryTransaction, snapshot_of, state_from
from rentabot.storage.snapshot import Snapshot
from rentabot.storage.sql import migrate
from rentabot.storage.sql.bulk import STATE_TABLES, read_snapshot, snapshot_rows
from rentabot.storage.sql.queries import query_audit
from rentabot.storage.sql.rows import (
    audit_to_row,
    reservation_to_row,
    resource_to_row,
)
from rentabot.storage.sql.schema import (
    audit,
    counters,
    reservations,
    resources,
)
from rentabot.storage.sql.transaction import RESOURCE_ID_COUNTER, SEQUENCE_COUNTER

logger = logging.getLogger(__name__)

# The events table keeps this many recent events for replay; older ones are deleted.
EVENTS_KEPT = 100_000
PRUNE_EVERY = 1_000


def configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # The journal issues BEGIN and COMMIT itself, instead of pysqlite's implicit ones.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL with synchronous=NORMAL keeps every commit through a crash or kill -9 of the
    # process (not through a power cut), at a fraction of the cost of FULL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def upsert_sql(table: Table) -> str:
    """Return an INSERT ... ON CONFLICT(primary key) DO UPDATE statement with named parameters."""
    columns = [column.name for column in table.c]
    keys = [column.name for column in table.primary_key.columns]
    updates = ", ".join(f"{name}=excluded.{name}" for name in columns if name not in keys)
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + name for name in columns)}) "
        f"ON CONFLICT({', '.join(keys)}) DO UPDATE SET {updates}"
    )


def insert_sql(table: Table) -> str:
    columns = [column.name for column in table.c]
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + name for name in columns)})"
    )


@functools.cache
def update_sql(table_name: str, columns: tuple[str, ...]) -> str:
    """Return an UPDATE of just ``columns`` of one row, cached per set of columns.

    Updating only what changed keeps untouched indexes (the unique name, tags) out of
    the write, which halves the cost of a lock or an unlock.
    """
    assignments = ", ".join(f"{name}=:{name}" for name in columns)
    return f"UPDATE {table_name} SET {assignments} WHERE id=:id"


# One SQL statement, its parameters, and whether the parameters are a list for executemany.
Statement = tuple[str, Any, bool]

RESOURCES = resources.name
RESERVATIONS = reservations.name
INSERT_RESOURCE = insert_sql(resources)
INSERT_RESERVATION = insert_sql(reservations)
INSERT_AUDIT = insert_sql(audit)
UPSERT_COUNTER = upsert_sql(counters)
INSERT_NAME = "INSERT OR IGNORE INTO resource_names (name, id) VALUES (?, ?)"
DELETE_RESOURCE = "DELETE FROM resources WHERE id = ?"
DELETE_TAGS = "DELETE FROM resource_tags WHERE resource_id = ?"
INSERT_TAG = "INSERT INTO resource_tags (resource_id, tag) VALUES (?, ?)"
DELETE_RESERVATION = "DELETE FROM reservations WHERE id = ?"
INSERT_EVENT = (
    "INSERT INTO events (id, name, at, resource_id, reservation_id, data) VALUES (?, ?, ?, ?, ?, ?)"
)
PRUNE_EVENTS = "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?"


def sqlite_value(value: Any) -> Any:
    """Convert a value the way SQLAlchemy stores it in SQLite, so both can read it back."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, bool):
        return int(value)
    return value


def sqlite_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: sqlite_value(value) for key, value in row.items()}


class SqliteStore(MemoryStore):
    kind = "sqlite"

    def __init__(self, url: str) -> None:
        super().__init__(journal=self)
        self.url = url
        self.database = make_url(url).database or ":memory:"
        self.engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", configure_sqlite_connection)
        self._connection: Connection | None = None
        self._raw: sqlite3.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._events_since_prune = 0
        self._batch: list[list[Statement]] = []
        self._batch_done: asyncio.Future[None] | None = None

    def describe(self) -> str:
        return f"sqlite ({self.database})"

    async def start(self) -> None:
        self._take_file_lock()
        try:
            migrate.upgrade(self.engine)
            self._connection = self.engine.connect()
            raw = self._connection.connection.dbapi_connection
            assert isinstance(raw, sqlite3.Connection)
            self._raw = raw
            self._load()
        except Exception:
            self._release()
            raise

    async def close(self) -> None:
        self._release()
        self.engine.dispose()

    async def ping(self) -> None:
        if self._raw is None:
            raise StoreUnavailable(f"{self.database} is not open")
        try:
            self._raw.execute("SELECT 1").fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"{self.database}: {error}") from error

    # Start-up

    def _take_file_lock(self) -> None:
        if self.database == ":memory:":
            return
        path = Path(self.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(f"{path}.lock", "w")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise StoreUnavailable(
                f"another rentabot process is using {path}; stop it first, or run several "
                "replicas on PostgreSQL (--persist postgresql://...)"
            ) from None
        self._lock_file = lock_file

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._raw = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _load(self) -> None:
        """Read the whole state from the file into memory."""
        assert self._connection is not None
        snapshot, last_event, last_audit = read_snapshot(self._connection, with_audit=False)
        self._connection.commit()
        # The audit log stays in the file: queries read it there, and memory stays small.
        self.state = state_from(
            snapshot, first_event_id=last_event + 1, audit_kept=0, last_audit_id=last_audit
        )
        logger.info(
            "store.loaded path=%s resources=%d reservations=%d",
            self.database,
            len(self.state.resources),
            len(self.state.reservations),
        )

    async def snapshot(self) -> Snapshot:
        with self._mutex:
            snapshot = snapshot_of(self.state)
            assert self._connection is not None
            snapshot.audit = read_snapshot(self._connection)[0].audit
            self._connection.commit()
        return snapshot

    async def audit_log(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        with self._mutex:
            assert self._connection is not None
            found = query_audit(self._connection, query)
            self._connection.commit()
        return found

    async def restore(self, snapshot: Snapshot) -> None:
        statements: list[Statement] = [
            (f"DELETE FROM {table.name}", (), False) for table in reversed(STATE_TABLES)
        ]
        for table, rows in snapshot_rows(snapshot):
            if rows:
                statements.append((insert_sql(table), [sqlite_row(r) for r in rows], True))
        with self._mutex:
            self._commit([statements])
            self._load()

    # The journal

    def persist(self, tx: MemoryTransaction) -> None:
        self._commit([self._statements(tx)])

    def stage(self, tx: MemoryTransaction) -> Awaitable[None]:
        self._batch.append(self._statements(tx))
        if self._batch_done is None:
            loop = asyncio.get_running_loop()
            self._batch_done = loop.create_future()
            loop.call_soon(self._flush_batch)
        return self._batch_done

    def _flush_batch(self) -> None:
        batch, done = self._batch, self._batch_done
        self._batch, self._batch_done = [], None
        assert done is not None
        try:
            self._commit(batch)
        except StoreUnavailable as error:
            done.set_exception(error)
            done.exception()  # Mark it retrieved: every waiter re-raises it anyway.
            self._reload_after_failure()
            return
        done.set_result(None)

    def _reload_after_failure(self) -> None:
        """Replace the in-memory state, which is ahead of the file, by the file's state."""
        try:
            self._load()
        except Exception:
            logger.exception("store.reload_failed path=%s", self.database)
        else:
            logger.warning("store.reloaded path=%s after a failed write", self.database)

    def _commit(self, batch: list[list[Statement]]) -> None:
        raw = self._raw
        if raw is None:
            raise StoreUnavailable(f"{self.database} is not open")
        # Event and audit rows only append, with ids given in memory, so the rows of the
        # whole batch go in one statement each. Other changes are applied in order.
        appended: dict[str, list[Any]] = {INSERT_EVENT: [], INSERT_AUDIT: []}
        try:
            raw.execute("BEGIN")
            try:
                for statements in batch:
                    for sql, params, many in statements:
                        if sql in appended:
                            appended[sql].extend(params)
                        elif many:
                            raw.executemany(sql, params)
                        else:
                            raw.execute(sql, params)
                for sql, rows in appended.items():
                    if rows:
                        raw.executemany(sql, rows)
                self._prune_events(raw, batch)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
        except sqlite3.Error as error:
            logger.error("store.write_failed path=%s error=%s", self.database, error)
            raise StoreUnavailable(f"cannot write {self.database}: {error}") from error

    def _prune_events(self, raw: sqlite3.Connection, batch: list[list[Statement]]) -> None:
        self._events_since_prune += sum(
            len(params)
            for statements in batch
            for sql, params, _ in statements
            if sql is INSERT_EVENT
        )
        if self._events_since_prune >= PRUNE_EVERY:
            raw.execute(PRUNE_EVENTS, (EVENTS_KEPT,))
            self._events_since_prune = 0

    def _statements(self, tx: MemoryTransaction) -> list[Statement]:
        """Return the SQL that applies ``tx`` to the file; runs before ``tx`` commits."""
        statements: list[Statement] = []
        statements.extend(self._resource_statements(tx))
        statements.extend(self._reservation_statements(tx))
        statements.extend(self._counter_statements(tx))
        if tx.events:
            statements.append((INSERT_EVENT, [event_row(event_) for event_ in tx.events], True))
        if tx.audit:
            rows = [sqlite_row(audit_to_row(entry)) for entry in tx.audit]
            statements.append((INSERT_AUDIT, rows, True))
        return statements

    def _resource_statements(self, tx: MemoryTransaction) -> list[Statement]:
        statements: list[Statement] = []
        for resource_id, written in tx.resource_writes.items():
            old = self.state.resources.get(resource_id)
            if written is None:
                statements.append((DELETE_RESOURCE, (resource_id,), False))
                continue
            new_row = resource_to_row(written)
            if old is None:
                statements.append((INSERT_RESOURCE, sqlite_row(new_row), False))
            else:
                statements.extend(changes(RESOURCES, resource_to_row(old), new_row))
            if old is None or old.tags != written.tags:
                statements.append((DELETE_TAGS, (resource_id,), False))
                tags = [(resource_id, tag) for tag in sorted(written.tags)]
                statements.append((INSERT_TAG, tags, True))
        return statements

    def _reservation_statements(self, tx: MemoryTransaction) -> list[Statement]:
        statements: list[Statement] = []
        for reservation in tx.reservation_writes.values():
            old = self.state.reservations.get(reservation.id)
            new_row = reservation_to_row(reservation)
            if old is None:
                statements.append((INSERT_RESERVATION, sqlite_row(new_row), False))
            else:
                statements.extend(changes(RESERVATIONS, reservation_to_row(old), new_row))
        for reservation_id in tx.reservation_deletes:
            statements.append((DELETE_RESERVATION, (reservation_id,), False))
        return statements

    def _counter_statements(self, tx: MemoryTransaction) -> list[Statement]:
        statements: list[Statement] = [
            (INSERT_NAME, (name, resource_id), False)
            for name, resource_id in tx.name_writes.items()
        ]
        if tx.next_resource_id != self.state.next_resource_id:
            counter = {"name": RESOURCE_ID_COUNTER, "value": tx.next_resource_id - 1}
            statements.append((UPSERT_COUNTER, counter, False))
        if tx.sequence != self.state.next_sequence:
            counter = {"name": SEQUENCE_COUNTER, "value": tx.sequence - 1}
            statements.append((UPSERT_COUNTER, counter, False))
        return statements


def changes(table_name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Statement]:
    """Return an UPDATE of the columns whose value differs, or nothing.

    Rows are compared as the domain gives them; only changed values are converted.
    """
    changed = tuple(name for name, value in new.items() if old.get(name) != value)
    if not changed:
        return []
    params = {name: sqlite_value(new[name]) for name in changed}
    params["id"] = new["id"]
    return [(update_sql(table_name, changed), params, False)]


def event_row(event_: Event) -> tuple[Any, ...]:
    return (
        event_.id,
        event_.name,
        sqlite_value(event_.at),
        event_.resource_id,
        event_.reservation_id,
        json.dumps(event_.data, separators=(",", ":")),
    )
