"""Open the store named by ``--persist``: none for memory, or a SQLAlchemy database URL."""

from __future__ import annotations

from rentabot.storage.base import Store
from rentabot.storage.memory import MemoryStore


class StoreURLError(ValueError):
    """The ``--persist`` value names no store this service supports."""


def open_store(url: str | None) -> Store:
    """Return the store for ``url``: memory when empty, else SQLite or PostgreSQL."""
    if not url or url == "memory":
        return MemoryStore()

    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("sqlite"):
        from rentabot.storage.sql.sqlite import SqliteStore

        return SqliteStore(url)
    if scheme.startswith("postgres"):
        from rentabot.storage.sql.store import SqlStore

        return SqlStore(url)

    raise StoreURLError(
        f"--persist {url!r}: unsupported store; use sqlite:///path/to/rentabot.db, "
        "postgresql://user@host:5432/dbname, or leave it out for the in-memory store"
    )
