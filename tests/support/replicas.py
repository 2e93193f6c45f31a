"""Several rentabot processes on one PostgreSQL schema, as replicas behind a load balancer run.

Each replica is a real ``uvicorn rentabot.main:app`` subprocess on its own port of
127.0.0.1, started with ``RENTABOT_PERSIST`` naming the shared schema.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from tests.support.postgres import fresh_schema
from tests.support.servers import ServerProcess, start_server_process


@dataclass
class ReplicaSet:
    """The running replicas, their shared store URL, and how often each was started."""

    store_url: str
    descriptor: Path
    directory: Path
    servers: list[ServerProcess] = field(default_factory=list)
    starts: Counter[int] = field(default_factory=Counter)

    @property
    def base_urls(self) -> list[str]:
        return [server.base_url for server in self.servers]

    def start(self, index: int, port: int | None = None) -> ServerProcess:
        """Start replica ``index`` (on ``port`` if given) and wait until its /health returns 200."""
        self.starts[index] += 1
        log_path = self.directory / f"replica-{index}-start-{self.starts[index]}.log"
        return start_server_process(
            log_path,
            descriptor=self.descriptor,
            env={"RENTABOT_PERSIST": self.store_url},
            port=port,
        )

    def restart_after_kill(self, index: int) -> None:
        """Kill replica ``index`` with SIGKILL, then start it again on the same port."""
        server = self.servers[index]
        server.kill()
        port = urlsplit(server.base_url).port
        self.servers[index] = self.start(index, port)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def log_tails(self, lines: int = 20) -> str:
        """Return the end of every log this set wrote, for an assertion message."""
        tails = []
        for path in sorted(self.directory.glob("replica-*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(tails)


@contextmanager
def running_replicas(count: int, descriptor: Path, directory: Path) -> Iterator[ReplicaSet]:
    """Start ``count`` replicas at once on a fresh schema, then stop them and drop it on exit.

    Starting them together also makes them migrate the empty schema at the same time.
    """
    with fresh_schema() as store_url:
        replicas = ReplicaSet(store_url, descriptor, directory)
        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(replicas.start, index) for index in range(count)]
        failures = [future.exception() for future in futures if future.exception() is not None]
        replicas.servers = [future.result() for future in futures if future.exception() is None]
        if failures:
            replicas.stop()
            raise RuntimeError(
                f"{len(failures)} of {count} replicas did not start, and the cause below is "
                "the first failure, with that replica's output"
            ) from failures[0]
        try:
            yield replicas
        finally:
            replicas.stop()


@dataclass(frozen=True)
class StoredEvent:
    """One row of the ``events`` table, with the fencing token taken out of its data."""

    name: str
    resource_id: int | None
    reservation_id: str | None
    fencing_token: int | None
    at: datetime


def read_events(store_url: str, *names: str) -> list[StoredEvent]:
    """Return every stored event called one of ``names``, in id order.

    Reads the ``events`` table of the schema that ``store_url`` selects.
    """
    with psycopg.connect(store_url) as connection:
        rows = connection.execute(
            "SELECT name, resource_id, reservation_id, data, at FROM events "
            "WHERE name = ANY(%s) ORDER BY id",
            (list(names),),
        ).fetchall()
    return [
        StoredEvent(name, resource_id, reservation_id, json.loads(data).get("fencing_token"), at)
        for name, resource_id, reservation_id, data, at in rows
    ]
