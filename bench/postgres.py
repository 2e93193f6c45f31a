"""PostgreSQL for the store comparison: a fresh schema per measurement, and its CPU time.

The service reaches its schema through ``options=-csearch_path=<schema>`` in its URL,
as tests/support/postgres.py does, and names its connections with
``application_name=<schema>``. The benchmark finds the server processes (backends)
of those connections in pg_stat_activity and reads their CPU time from /proc, so the
database's share of the CPU counts as part of the system under test instead of as
other load.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from servers import BenchmarkError, cpu_seconds

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_SECONDS = 3


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """Open an autocommit connection, or raise ``BenchmarkError`` with the reason and the fix."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.Error as error:
        reason = str(error).strip() or type(error).__name__
        raise BenchmarkError(
            f"connecting to PostgreSQL at {url} failed: {reason}\n"
            "Start it, pass another server with --postgres-url, or pass --no-postgres "
            "to skip the comparison of stores and replicas."
        ) from error


def server_facts(url: str) -> dict[str, str]:
    """Return where the server is, its version and the settings that decide commit speed."""
    with connect(url) as connection:
        info = connection.info
        facts = {"host": info.host, "port": str(info.port), "dbname": info.dbname}
        for name in ("server_version", "fsync", "synchronous_commit"):
            row = connection.execute(f"SHOW {name}").fetchone()
            facts[name] = str(row[0]) if row else "unknown"
        return facts


@dataclass(frozen=True, slots=True)
class Schema:
    name: str
    # RENTABOT_PERSIST value whose connections use this schema and carry its name.
    service_url: str


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[Schema]:
    """Create an empty schema ``rentabot_bench_<random>``, yield it, then drop it."""
    name = f"rentabot_bench_{uuid.uuid4().hex[:12]}"
    with connect(url) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    try:
        separator = "&" if "?" in url else "?"
        options = quote(f"-csearch_path={name}")
        yield Schema(name, f"{url}{separator}options={options}&application_name={name}")
    finally:
        with connect(url) as connection:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE')


class Backends:
    """Reader of the CPU time of the PostgreSQL backends whose application_name is ``name``."""

    def __init__(self, connection: psycopg.Connection[tuple[object, ...]], name: str) -> None:
        self.connection = connection
        self.name = name

    def cpu_seconds(self) -> dict[int, float]:
        """Return the CPU seconds of each backend, by process id.

        NOTE: a backend that exits between two readings takes its last CPU time with
        it, so the database share can come out low when the services reconnect.
        """
        rows = self.connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.name,)
        ).fetchall()
        times = {}
        for (pid,) in rows:
            assert isinstance(pid, int)
            # A backend that exited after the query has no CPU time left to read.
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                    times[pid] = cpu_seconds(pid)
        if rows and not times:
            raise BenchmarkError(
                f"none of the {len(rows)} PostgreSQL backends of {self.name} appears in "
                "/proc; the benchmark needs PostgreSQL on this machine, in the same process "
                "namespace, to count its CPU time"
            )
        return times


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """Return the CPU seconds the backends used between two ``Backends.cpu_seconds`` readings.

    A backend that started in between counts from zero.
    """
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@contextlib.contextmanager
def backends(url: str, schema: Schema) -> Iterator[Backends]:
    """Yield a reader of the CPU time of ``schema``'s backends, on one monitoring connection."""
    with connect(url) as connection:
        yield Backends(connection, schema.name)
