"""Run the Alembic migrations from code, at start-up or from ``rentabot db upgrade``."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number works; replicas use it to take turns migrating one PostgreSQL database.
MIGRATION_LOCK_KEY = 727_100_001


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision. Safe when several replicas start at once."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together wait here for each other instead of racing.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        before = current_revision(connection)
        head = head_revision()
        if before == head:
            return
        command.upgrade(alembic_config(connection), "head")
        logger.info("store.migrated from=%s to=%s", before, head)
