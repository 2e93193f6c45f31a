"""Open the store named by ``--persist``: none for memory, or a SQLAlchemy database URL."""

from __future__ import annotations

from pathlib import Path

from rentabot.storage.base import Store
from rentabot.storage.memory import MemoryStore


class StoreURLError(ValueError):
    """The ``--persist`` value names no store this service supports."""


def check_store_url(url: str | None) -> str:
    """Return the store kind ``url`` names ("memory", "sqlite", "postgresql"), or raise."""
    if not url or url == "memory":
        return "memory"
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("sqlite", "sqlite+pysqlite") and url.startswith(f"{scheme}:///"):
        return "sqlite"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg") and "://" in url:
        return "postgresql"
    raise StoreURLError(
        f"--persist {url!r}: unsupported store; use sqlite:///path/to/rentabot.db, "
        "postgresql://user@host:5432/dbname, or leave it out for the in-memory store"
    )


def sqlite_path(url: str) -> Path | None:
    """Return the file a sqlite:/// URL names, or None for an in-memory SQLite database."""
    # Imported here, as the SQL stores are: the in-memory store runs without SQLAlchemy.
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def open_store(url: str | None) -> Store:
    """Return the store for ``url``: memory when empty, else SQLite or PostgreSQL."""
    kind = check_store_url(url)
    if kind == "memory":
        return MemoryStore()
    assert url is not None
    if kind == "sqlite":
        from rentabot.storage.sql.sqlite import SqliteStore

        return SqliteStore(url)
    from rentabot.storage.sql.postgres import PostgresStore

    return PostgresStore(url)
