"""The SQL store: state in SQLite or PostgreSQL, one serialised write transaction at a time.

Writers take a database-wide write lock (``BEGIN IMMEDIATE`` on SQLite, a transaction
advisory lock on PostgreSQL), so the rules see a consistent state even when several
processes share one PostgreSQL database. Reads need no lock. SQLite transactions run
on the calling thread because they take well under a millisecond. PostgreSQL ones run
in a worker thread, so network waits do not block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection, create_engine, event, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from rentabot.domain.ports import Transaction
from rentabot.storage.base import Store, StoreUnavailable
from rentabot.storage.sql import migrate
from rentabot.storage.sql.schema import counters, reservations, resources
from rentabot.storage.sql.transaction import SqlTransaction

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Any fixed number works; every writer of one PostgreSQL database takes this lock.
WRITE_LOCK_KEY = 727_100_002


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class SqlStore(Store):
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}; use sqlite or postgresql")
        self.kind = self.dialect
        self.shared = self.dialect == "postgresql"
        self.engine = self._create_engine()
        self._writer = asyncio.Lock()

    def describe(self) -> str:
        return f"{self.kind} ({make_url(self.url).render_as_string(hide_password=True)})"

    def _create_engine(self) -> Engine:
        if self.dialect == "sqlite":
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", configure_sqlite_connection)
            event.listen(engine, "begin", begin_sqlite_transaction)
            return engine
        return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    # Life cycle

    async def start(self) -> None:
        try:
            await self._in_thread(lambda: migrate.upgrade(self.engine))
        except (OperationalError, DBAPIError) as error:
            raise StoreUnavailable(f"cannot open {self.describe()}: {error.orig}") from error

    async def close(self) -> None:
        self.engine.dispose()

    # Transactions

    async def write(self, operation: Callable[[Transaction], T]) -> T:
        async with self._writer:
            return await self._in_thread(lambda: self.write_now(operation))

    async def read(self, operation: Callable[[Transaction], T]) -> T:
        return await self._in_thread(lambda: self.read_now(operation))

    def write_now(self, operation: Callable[[Transaction], T]) -> T:
        with self._connection() as connection:
            with connection.begin():
                if self.dialect == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY}
                    )
                tx = SqlTransaction(connection)
                result = operation(tx)
                if tx.rolled_back:
                    return result
                tx.flush_events()
            return result

    def read_now(self, operation: Callable[[Transaction], T]) -> T:
        with self._connection(read_only=True) as connection:
            with connection.begin():
                return operation(SqlTransaction(connection, read_only=True))

    async def next_deadline(self) -> datetime | None:
        def query() -> datetime | None:
            with self._connection() as connection:
                lock_deadline = connection.execute(
                    select(func.min(resources.c.lock_expires_at))
                ).scalar()
                reservation_deadline = connection.execute(
                    select(func.min(reservations.c.deadline))
                ).scalar()
            candidates = [d for d in (lock_deadline, reservation_deadline) if d is not None]
            return min(candidates) if candidates else None

        return await self._in_thread(query)

    async def ping(self) -> None:
        def query() -> None:
            with self._connection() as connection:
                connection.execute(select(counters.c.value).limit(1)).all()

        await self._in_thread(query)

    # Plumbing

    async def _in_thread(self, function: Callable[[], T]) -> T:
        if self.dialect == "sqlite":
            return function()
        return await anyio.to_thread.run_sync(function)

    @contextmanager
    def _connection(self, read_only: bool = False) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                if read_only:
                    connection = connection.execution_options(rentabot_read_only=True)
                yield connection
        except OperationalError as error:
            raise StoreUnavailable(str(error.orig).strip() or type(error.orig).__name__) from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise StoreUnavailable("the database connection was lost") from error
            raise


def configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself, instead of pysqlite's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL with synchronous=NORMAL keeps every commit through a crash or kill -9 of the
    # process (not through a power cut), at a fraction of the cost of FULL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def begin_sqlite_transaction(connection: Connection) -> None:
    if connection.get_execution_options().get("rentabot_read_only"):
        connection.exec_driver_sql("BEGIN")
        return
    # IMMEDIATE takes the write lock at BEGIN. With a deferred BEGIN, two transactions that
    # both read and then write could fail with SQLITE_BUSY when upgrading to a write lock.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
